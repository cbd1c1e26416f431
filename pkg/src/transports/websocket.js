// The WebSocket transport (browsers): the TCP byte stream rides binary
// WebSocket frames through a WebSocket-to-TCP bridge such as websockify. No
// SMTP knowledge here: bytes in, bytes out.
//
// The bridge sees every byte, so TLS must run inside the engine
// (tls: { engine: 'wasm' }): after STARTTLS (or from the first byte with
// implicit TLS) the bridge carries only ciphertext, and credentials are
// never sent before TLS is up and its certificate verified.
//
// Opening: the bridge accepts the WebSocket first and connects to the
// target afterwards; when that fails it closes the WebSocket (websockify:
// code 1011). So `connect` resolves on the first bytes from the target, or
// when the bridge has not closed within `openGraceMs` (an implicit-TLS
// server waits for the client to speak first), and rejects when the bridge
// closes first: the connection was refused.

/**
 * @param {object} options
 * @param {string | ((target: { host: string, port: number }) => string | Promise<string>)} options.url
 *   the bridge's address (`ws://127.0.0.1:6080/`), or a function picking one per target
 *   (websockify's token plugins map a token in the URL to a host and port)
 * @param {typeof WebSocket} [options.WebSocket] default: globalThis.WebSocket
 * @param {number} [options.openGraceMs] default 300
 * @returns {import('../../index.d.ts').Transport}
 */
export function websocketTransport({ url, WebSocket: Ws = globalThis.WebSocket, openGraceMs = 300 } = {}) {
  if (url === undefined) throw new TypeError('websocketTransport needs the bridge url');
  return {
    /** Names the transport when an option it cannot honour (proxy, client certificate, ...) is refused. */
    supports: Object.freeze({ runtime: 'WebSocket bridge' }),

    async connect({ host, port, tls }) {
      if (tls) {
        throw new Error("a WebSocket bridge carries raw bytes: TLS must run inside the engine (tls: { engine: 'wasm' })");
      }
      const address = typeof url === 'function' ? await url({ host, port }) : url;
      const ws = new Ws(address, ['binary']);
      ws.binaryType = 'arraybuffer';
      const early = [];
      await new Promise((resolve, reject) => {
        let timer;
        let opened = false;
        const settle = (fn, value) => {
          clearTimeout(timer);
          ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
          fn(value);
        };
        ws.onopen = () => {
          opened = true;
          timer = setTimeout(() => settle(resolve), openGraceMs);
        };
        ws.onmessage = (event) => {
          early.push(new Uint8Array(event.data));
          settle(resolve);
        };
        ws.onerror = () => {};
        ws.onclose = (event) => {
          const why = event.reason ? `: ${event.reason}` : '';
          settle(
            reject,
            new Error(
              opened
                ? `connection refused: the bridge could not connect to ${host}:${port} (WebSocket close ${event.code}${why})`
                : `the WebSocket bridge ${address.split('?')[0]} is not reachable (WebSocket close ${event.code}${why})`,
            ),
          );
        };
      });
      return new WebSocketSocket(ws, early);
    },
  };
}

/** Bytes waiting in the WebSocket's send buffer before `write` waits for it to drain. */
const HIGH_WATER = 1 << 20;

class WebSocketSocket {
  /** Set by the driver: end of stream or error. */
  onClose = null;

  #onData = null;
  #ws;
  #early;
  #closeReported = false;

  constructor(ws, early) {
    this.#ws = ws;
    this.#early = early;
    ws.onmessage = (event) => this.#deliver(new Uint8Array(event.data));
    ws.onerror = () => {};
    ws.onclose = (event) => {
      // 1000: the target closed the TCP connection (websockify: "Target closed").
      this.#reportClose(event.code === 1000 || event.code === 1005 ? undefined : new Error(`the bridge closed the connection (WebSocket close ${event.code}${event.reason ? `: ${event.reason}` : ''})`));
    };
  }

  /** Set by the driver. Bytes that arrived while connecting follow, after
   *  the driver's own set-up (it reports the connection open first). */
  set onData(fn) {
    this.#onData = fn;
    queueMicrotask(() => this.#flushEarly());
  }

  get onData() {
    return this.#onData;
  }

  /** Resolves once the bytes are queued, waiting while too many are buffered. */
  async write(bytes) {
    if (this.#ws.readyState !== 1) throw new Error('the WebSocket bridge connection is closed');
    this.#ws.send(bytes);
    while (this.#ws.bufferedAmount > HIGH_WATER && this.#ws.readyState === 1) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  startTls() {
    return Promise.reject(new Error("a WebSocket bridge cannot upgrade to TLS: use tls: { engine: 'wasm' }"));
  }

  close() {
    if (this.#ws.readyState <= 1) this.#ws.close(1000);
  }

  #flushEarly() {
    if (!this.#onData) return;
    for (const bytes of this.#early.splice(0)) this.#onData(bytes);
  }

  #deliver(bytes) {
    this.#early.push(bytes);
    this.#flushEarly();
  }

  #reportClose(error) {
    if (this.#closeReported) return;
    this.#closeReported = true;
    this.#flushEarly();
    this.onClose?.(error);
  }
}
