// The Deno transport: `Deno.connect` for TCP, `Deno.startTls` to upgrade it
// in place (STARTTLS, and implicit TLS too, so that tls.servername can
// differ from the host dialled). No SMTP knowledge here: bytes in, bytes out.
//
// Deno refuses to upgrade a connection with a read in flight, so reading is
// pulled: one `read()` at a time, the next only after the driver has acted
// on the bytes (the promise `onData` returns). When the driver calls
// `startTls`, no read is pending.
//
// With `proxy`, the TCP connection goes to the proxy and carries a tunnel
// (transports/proxy.js) before anything else. Client certificates, cipher
// lists and a local address are beyond Deno.connect / Deno.startTls: the
// Deno entry uses the node:net / node:tls transport when they are set.

import { openTunnel, proxyError } from './proxy.js';

/** @type {import('../../index.d.ts').Transport} */
export const denoTransport = {
  /** What this transport honours beyond the basics (see Transport.supports). */
  supports: Object.freeze({ runtime: 'Deno', proxy: true }),

  async connect({ host, port, tls, servername, ca, proxy }) {
    const { conn, early } = proxy ? await openProxied(proxy, { host, port }) : { conn: await Deno.connect({ hostname: host, port, transport: 'tcp' }) };
    conn.setNoDelay?.(true); // every flight goes out at once (no Nagle delay)
    if (!tls) return new DenoSocket(conn, false, early);
    if (early?.length) {
      conn.close();
      throw proxyError(proxy, 'passed on bytes from the server before TLS began.', 'the port does not speak implicit TLS; check port and security.');
    }
    try {
      return new DenoSocket(await handshake(conn, { hostname: servername ?? host, ca }), true);
    } catch (error) {
      // After the TCP connection opened: a TLS failure, for the engine to name.
      throw markTls(error);
    }
  },
};

/** A TCP connection to the proxy carrying a tunnel to host:port; `early`: the server's first bytes, if they came along. */
async function openProxied(proxy, target) {
  let conn;
  try {
    conn = await Deno.connect({ hostname: proxy.host, port: proxy.port, transport: 'tcp' });
  } catch (error) {
    throw proxyError(proxy, `cannot be reached: ${error?.message ?? error}.`, 'check the proxy URL (host and port) and that the proxy is running.', true);
  }
  const stream = {
    async read() {
      const buffer = new Uint8Array(4096);
      const n = await conn.read(buffer);
      return n === null ? null : buffer.subarray(0, n);
    },
    async write(bytes) {
      let at = 0;
      while (at < bytes.byteLength) at += await conn.write(bytes.subarray(at));
    },
  };
  try {
    const early = await openTunnel(stream, proxy, target);
    return { conn, early: early.length > 0 ? early.slice() : undefined };
  } catch (error) {
    try {
      conn.close();
    } catch {}
    throw error;
  }
}

/** Runs the TLS handshake on a TCP connection; certificate errors surface here. */
async function handshake(conn, { hostname, ca }) {
  let secure;
  try {
    // caCerts adds to Deno's trusted roots (it does not replace them).
    secure = await Deno.startTls(conn, { hostname, caCerts: ca === undefined ? undefined : [ca].flat() });
    await secure.handshake();
    return secure;
  } catch (error) {
    try {
      (secure ?? conn).close();
    } catch {}
    throw error;
  }
}

function markTls(error) {
  const marked = error instanceof Error ? error : new Error(String(error));
  marked.tlsHandshake = true;
  return marked;
}

class DenoSocket {
  /** Set by the driver: end of stream or error. */
  onClose = null;

  #conn;
  #onData = null;
  /** Identifies the current read loop; a TLS upgrade ends the old one. */
  #loop = 0;
  #readInFlight = false;
  #paused = false;
  #closed = false;
  #secure;
  /** Bytes that arrived with the proxy's answer, delivered before the first read. */
  #early;

  constructor(conn, secure = false, early = undefined) {
    this.#conn = conn;
    this.#secure = secure;
    this.#early = early;
  }

  /** Set by the driver; reading starts then. */
  set onData(fn) {
    this.#onData = fn;
    this.#read();
  }

  get onData() {
    return this.#onData;
  }

  /** Deno reports no protocol version or cipher for a TLS connection. */
  get tlsInfo() {
    return this.#secure ? { version: 'TLS', authorized: true } : undefined;
  }

  /** `write` is done with its bytes once it resolves: the driver may reuse its buffer. */
  releasesWrites = true;

  /** Resolves once every byte is handed to the OS. */
  async write(bytes) {
    let at = 0;
    while (at < bytes.byteLength) at += await this.#conn.write(bytes.subarray(at));
  }

  /** Upgrades this connection in place (after the server's 220 to STARTTLS). */
  async startTls({ servername, ca }) {
    this.#paused = true;
    this.#loop += 1; // the loop that delivered the 220 stops before reading again
    if (this.#readInFlight) throw new Error('a read was in flight when the TLS upgrade began (Deno cannot upgrade a connection being read)');
    this.#conn = await handshake(this.#conn, { hostname: servername, ca });
    this.#secure = true;
    this.#paused = false;
    this.#read();
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {}
  }

  ref() {
    this.#conn.ref?.();
  }

  unref() {
    this.#conn.unref?.();
  }

  #read() {
    if (this.#paused || this.#closed || !this.#onData) return;
    this.#loop += 1;
    this.#pump(this.#loop);
  }

  async #pump(loop) {
    const conn = this.#conn;
    const buffer = new Uint8Array(16 * 1024);
    try {
      if (this.#early) {
        const early = this.#early;
        this.#early = undefined;
        await this.#onData(early);
        if (loop !== this.#loop || this.#paused || this.#closed) return;
      }
      for (;;) {
        this.#readInFlight = true;
        let n;
        try {
          n = await conn.read(buffer);
        } finally {
          this.#readInFlight = false;
        }
        if (n === null) return this.#reportClose(undefined);
        // Waits until the driver acted on these bytes (it may call startTls).
        await this.#onData(buffer.slice(0, n));
        if (loop !== this.#loop || this.#paused || this.#closed) return;
      }
    } catch (error) {
      if (loop === this.#loop) this.#reportClose(error);
    }
  }

  #reportClose(error) {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {}
    this.onClose?.(error);
  }
}
