// The Cloudflare Workers transport: `connect()` from `cloudflare:sockets`.
// No SMTP knowledge here: bytes in, bytes out.
//
//   secureTransport 'on'       implicit TLS (security: 'tls')
//   secureTransport 'starttls' plaintext now, socket.startTls() later
//   secureTransport 'off'      plaintext only, or a raw pipe for TLS inside
//                              the engine (tls: { engine: 'wasm' })
//
// Reading is pulled, one read at a time, the next only after the driver has
// acted on the bytes (the promise `onData` returns): so when the driver
// calls startTls no read is pending, and the reader and writer locks can be
// released before `socket.startTls()`, as workerd requires.
//
// Platform errors (port 25 blocked, "proxy request failed", a certificate
// refused at the first read after the upgrade) are passed on as the
// platform's text; the engine classifies them.

import { connect as openSocket } from 'cloudflare:sockets';

/** @type {import('../../index.d.ts').Transport} */
export const workersTransport = {
  /** Names the runtime when an option it cannot honour (proxy, client certificate, ...) is refused. */
  supports: Object.freeze({ runtime: 'Cloudflare Workers' }),

  async connect({ host, port, tls, upgradable }) {
    const secureTransport = tls ? 'on' : upgradable ? 'starttls' : 'off';
    // Throws at once for a destination the platform refuses (port 25).
    const socket = openSocket({ hostname: host, port }, { secureTransport, allowHalfOpen: false });
    try {
      await socket.opened;
    } catch (error) {
      closeQuietly(socket);
      throw error;
    }
    return new WorkersSocket(socket, tls);
  },
};

class WorkersSocket {
  /** Set by the driver: end of stream or error. */
  onClose = null;

  #socket;
  #reader;
  #writer;
  #onData = null;
  #secure;
  /** Identifies the current read loop; a TLS upgrade ends the old one. */
  #loop = 0;
  #readInFlight = false;
  #paused = false;
  #closed = false;

  constructor(socket, secure) {
    this.#socket = socket;
    this.#secure = secure;
    this.#reader = socket.readable.getReader();
    this.#writer = socket.writable.getWriter();
  }

  /** Set by the driver; reading starts then. */
  set onData(fn) {
    this.#onData = fn;
    this.#read();
  }

  get onData() {
    return this.#onData;
  }

  /**
   * Workers report no TLS version or cipher, and always verify; a refused
   * certificate shows only at the first read or write (handshakePending).
   */
  get tlsInfo() {
    return this.#secure ? { version: 'TLS', authorized: true, handshakePending: true } : undefined;
  }

  write(bytes) {
    return this.#writer.write(bytes);
  }

  /** Upgrades in place (after the server's 220 to STARTTLS). */
  async startTls() {
    this.#paused = true;
    this.#loop += 1; // the loop that delivered the 220 stops before reading again
    if (this.#readInFlight) throw new Error('a read was in flight when the TLS upgrade began');
    // workerd refuses startTls() while the streams are locked.
    this.#reader.releaseLock();
    this.#writer.releaseLock();
    const secure = this.#socket.startTls();
    this.#socket = secure;
    this.#reader = secure.readable.getReader();
    this.#writer = secure.writable.getWriter();
    // A refused certificate may only show at the first read or write; the
    // engine names it (it reaches socketFailed right after the upgrade).
    await secure.opened;
    this.#secure = true;
    this.#paused = false;
    this.#read();
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#socket);
  }

  #read() {
    if (this.#paused || this.#closed || !this.#onData) return;
    this.#loop += 1;
    this.#pump(this.#loop);
  }

  async #pump(loop) {
    const reader = this.#reader;
    try {
      for (;;) {
        this.#readInFlight = true;
        let chunk;
        try {
          chunk = await reader.read();
        } finally {
          this.#readInFlight = false;
        }
        if (chunk.done) return this.#reportClose(undefined);
        // Waits until the driver acted on these bytes (it may call startTls).
        await this.#onData(chunk.value);
        if (loop !== this.#loop || this.#paused || this.#closed) return;
      }
    } catch (error) {
      if (loop === this.#loop) this.#reportClose(error);
    }
  }

  #reportClose(error) {
    if (this.#closed) return;
    this.#closed = true;
    closeQuietly(this.#socket);
    this.onClose?.(error);
  }
}

/**
 * Closes without waiting on the platform: socket.close() may never settle
 * on a broken connection, so it is observed (never unhandled), never awaited.
 */
function closeQuietly(socket) {
  try {
    socket.close().catch(() => {});
  } catch {}
}
