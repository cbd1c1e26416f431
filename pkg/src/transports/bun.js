// A Bun-native transport: `Bun.connect` for TCP and TLS, `socket.upgradeTLS()`
// for STARTTLS. No SMTP knowledge here: bytes in, bytes out.
//
// Not the default on Bun: the default entry uses node:net / node:tls there
// (transports/node.js), which passes the same suite, shares its code with
// Node, and reports TLS facts (authorized, authorizationError, cipher) the
// way Node does. This one is kept as an opt-in (`transport: bunTransport`)
// and runs in the runtime suite too. Its quirks: writes may be partial
// (the rest goes on `drain`), and after upgradeTLS the raw socket's
// handlers keep firing with ciphertext.

/** @type {import('../../index.d.ts').Transport} */
export const bunTransport = {
  /** Names the transport when an option it cannot honour (proxy, client certificate, ...) is refused: the default node:tls transport on Bun honours them. */
  supports: Object.freeze({ runtime: 'Bun.connect' }),

  connect({ host, port, tls, servername, ca, rejectUnauthorized = true }) {
    return new Promise((resolve, reject) => {
      const wrapper = new BunSocket();
      let opened = false;
      Bun.connect({
        hostname: host,
        port,
        tls: tls ? tlsOptions({ servername: servername ?? host, ca, rejectUnauthorized }) : undefined,
        socket: wrapper.handlers({
          open() {
            opened = true;
            if (!tls) resolve(wrapper);
          },
          handshake(ok, error) {
            if (ok || !rejectUnauthorized) resolve(wrapper);
            else reject(markTls(error));
          },
          failed(error) {
            reject(opened ? markTls(error) : error);
          },
        }),
      }).then((socket) => wrapper.attach(socket), reject);
    });
  },
};

function tlsOptions({ servername, ca, rejectUnauthorized }) {
  // Bun adds `ca` to its bundled roots.
  return { serverName: servername, ca: ca === undefined ? undefined : [ca].flat(), rejectUnauthorized };
}

function markTls(error) {
  const marked = error instanceof Error ? error : new Error(String(error?.message ?? error ?? 'TLS handshake failed'));
  marked.tlsHandshake = true;
  return marked;
}

class BunSocket {
  /** Set by the driver: bytes arrived / end of stream or error. */
  onData = null;
  onClose = null;

  #socket = null;
  #pending = null; // bytes not yet taken by the kernel, and their promise
  #early = [];
  #closeReported = false;
  #tlsInfo;
  #upgrade = null;

  attach(socket) {
    this.#socket = socket;
  }

  /**
   * Socket handlers forwarding to this wrapper; `hooks` see the set-up.
   * After upgradeTLS the raw socket's handlers still fire (with ciphertext):
   * only the current socket is listened to.
   */
  handlers(hooks = {}) {
    const current = (socket) => this.#socket === null || socket === this.#socket;
    return {
      open: (socket) => {
        this.#socket ??= socket;
        socket.setNoDelay?.(true); // every flight goes out at once (no Nagle delay)
        hooks.open?.();
      },
      handshake: (socket, ok, error) => {
        if (!current(socket)) return;
        this.#tlsInfo = {
          version: socket.getTLSVersion?.() ?? 'TLS',
          cipher: socket.getCipher?.()?.name,
          // `ok` is the handshake; with rejectUnauthorized: false it
          // succeeds and `error` says why the certificate is not trusted.
          authorized: ok && !error,
          authorizationError: error ? String(error.message ?? error) : undefined,
        };
        if (this.#upgrade) {
          const { resolve, reject } = this.#upgrade;
          this.#upgrade = null;
          if (ok) resolve();
          else reject(error ?? new Error('TLS handshake failed'));
        }
        hooks.handshake?.(ok, error);
      },
      data: (socket, bytes) => {
        if (current(socket)) this.#deliver(new Uint8Array(bytes));
      },
      drain: (socket) => {
        if (current(socket)) this.#drain();
      },
      end: (socket) => {
        if (current(socket)) this.#reportClose(undefined);
      },
      close: (socket, error) => {
        if (current(socket)) this.#reportClose(error);
      },
      error: (socket, error) => {
        if (!current(socket)) return;
        hooks.failed?.(error);
        this.#reportClose(error);
      },
      connectError: (_socket, error) => hooks.failed?.(error),
    };
  }

  get tlsInfo() {
    return this.#tlsInfo;
  }

  /** Resolves once the kernel took every byte (Bun writes may be partial). */
  write(bytes) {
    const written = this.#socket.write(bytes);
    if (written === bytes.byteLength) return;
    return new Promise((resolve, reject) => {
      this.#pending = { bytes: bytes.subarray(Math.max(0, written)), resolve, reject };
    });
  }

  startTls({ servername, ca, rejectUnauthorized = true }) {
    return new Promise((resolve, reject) => {
      this.#upgrade = { resolve, reject };
      const [, secure] = this.#socket.upgradeTLS({
        tls: tlsOptions({ servername, ca, rejectUnauthorized }),
        socket: this.handlers({}),
      });
      this.#socket = secure;
    });
  }

  close() {
    this.#socket?.end();
  }

  ref() {
    this.#socket?.ref();
  }

  unref() {
    this.#socket?.unref();
  }

  #drain() {
    const pending = this.#pending;
    if (!pending) return;
    const written = this.#socket.write(pending.bytes);
    if (written === pending.bytes.byteLength) {
      this.#pending = null;
      pending.resolve();
    } else if (written > 0) {
      pending.bytes = pending.bytes.subarray(written);
    }
  }

  #deliver(bytes) {
    if (this.onData) {
      for (const early of this.#early.splice(0)) this.onData(early);
      this.onData(bytes);
    } else {
      this.#early.push(bytes);
    }
  }

  #reportClose(error) {
    if (this.#closeReported) return;
    this.#closeReported = true;
    if (this.#upgrade) {
      this.#upgrade.reject(error ?? new Error('the connection closed during the TLS handshake'));
      this.#upgrade = null;
    }
    this.#pending?.reject(error ?? new Error('the connection closed'));
    if (this.onData) for (const early of this.#early.splice(0)) this.onData(early);
    this.onClose?.(error);
  }
}
