// The Node.js transport (also used by Deno and Bun through their node:net /
// node:tls support): TCP with `net`, TLS with `tls`, STARTTLS by wrapping the
// same socket in place. No SMTP knowledge here: bytes in, bytes out.
// With `proxy`, the TCP connection goes to the proxy and carries a tunnel
// (transports/proxy.js); TLS then runs over the tunnel as over TCP.

import { SmtpError } from '../errors.js';
import { openTunnel, proxyError } from './proxy.js';

// `node:net` and `node:tls` are imported by the first connection (TCP) and
// the first TLS connection: importing them costs start-up time.
let net = null;
let tls = null;
const loadTls = async () => (tls ??= (await import('node:tls')).default);
/** node:crypto, for checking a passphrase (loaded only when one is given). */
let crypto = null;

/** @type {import('../../index.d.ts').Transport} */
export const nodeTransport = {
  /** What this transport honours beyond the basics (see Transport.supports). */
  supports: Object.freeze({ runtime: 'Node.js', proxy: true, localAddress: true, clientCertificate: true, pfx: true, passphrase: true, ciphers: true }),

  async connect({ host, port, tls: implicitTls, servername, ca, rejectUnauthorized = true, proxy, localAddress, clientTls }) {
    net ??= (await import('node:net')).default;
    // node:tls and the context for a custom CA are made ready while the
    // network is busy: during the TCP handshake (and, for STARTTLS, the
    // greeting and EHLO that follow), not before the first packet.
    let tlsReady = null;
    const dial = proxy ? { host: proxy.host, port: proxy.port, localAddress } : { host, port, localAddress };
    const tcp = await openTcp(dial, () => {
      // Resolves with the error, if any: it is thrown below, after the tunnel.
      if (implicitTls || ca != null || clientTls) {
        tlsReady = loadTls()
          .then(async () => {
            if (clientTls?.passphrase !== undefined) crypto ??= await import('node:crypto');
            secureContext(ca, clientTls);
          })
          .catch((error) => error);
      }
    }).catch((error) => {
      throw proxy ? proxyError(proxy, `cannot be reached: ${error?.message ?? error}.`, 'check the proxy URL (host and port) and that the proxy is running.', true) : error;
    });
    if (proxy) await tunnel(tcp, proxy, { host, port });
    const failed = await tlsReady;
    if (failed) {
      tcp.destroy();
      throw failed;
    }
    if (!implicitTls) {
      const socket = new NodeSocket(tcp, { host, rejectUnauthorized, clientTls });
      tcp.resume(); // paused after a tunnel, so that no byte of the server's was lost
      return socket;
    }
    return new NodeSocket(await openTls(tcp, { servername, ca, rejectUnauthorized, clientTls }), { host, rejectUnauthorized, clientTls });
  },
};

/** Opens the proxy's tunnel on `tcp`; the bytes after the proxy's answer are put back. */
async function tunnel(tcp, proxy, target) {
  const chunks = [];
  let waiting = null;
  let ended = false;
  let failure = null;
  const wake = () => {
    waiting?.();
    waiting = null;
  };
  const listeners = {
    data: (chunk) => (chunks.push(new Uint8Array(chunk)), wake()),
    end: () => ((ended = true), wake()),
    close: () => ((ended = true), wake()),
    error: (error) => ((failure = error), wake()),
  };
  for (const [name, fn] of Object.entries(listeners)) tcp.on(name, fn);
  const stream = {
    async read() {
      while (chunks.length === 0 && !ended && failure === null) await new Promise((resolve) => (waiting = resolve));
      if (chunks.length > 0) return chunks.shift();
      if (failure !== null) throw failure;
      return null;
    },
    write: (bytes) => new Promise((resolve, reject) => tcp.write(bytes, (error) => (error ? reject(error) : resolve()))),
  };
  try {
    const rest = await openTunnel(stream, proxy, target);
    tcp.pause();
    if (rest.length > 0) tcp.unshift(Buffer.from(rest));
  } catch (error) {
    tcp.destroy();
    throw error;
  } finally {
    for (const [name, fn] of Object.entries(listeners)) tcp.off(name, fn);
  }
}

// Node's `ca` option replaces the bundled roots, so extra trust means a
// context with every bundled root plus the user's CA. Building one parses
// some 150 PEM certificates, about 17 ms of CPU: as long as a round trip on
// a 20 ms link. So each CA's context is built once and kept (a few at most).
const MAX_TRUST_CONTEXTS = 8;
const trustContexts = new Map();

/**
 * The secure context for a connection: trust (`ca`) and, when set, the
 * client certificate, cipher list and minimum version (`clientTls`). A
 * context with a client certificate is kept per settings object: one per client.
 */
const clientContexts = new WeakMap();
function secureContext(ca, clientTls) {
  if (!clientTls) return trustContext(ca);
  let context = clientContexts.get(clientTls);
  if (context === undefined) {
    const { cert, key, passphrase, pfx, ciphers, minVersion } = clientTls;
    const extra = ca === undefined || ca === null ? undefined : [ca].flat();
    try {
      // Deno's node:tls drops a key whose passphrase is wrong and sends no
      // certificate: the key is opened here first, so that is an error everywhere.
      if (key !== undefined && passphrase !== undefined) for (const one of [key].flat()) crypto.createPrivateKey({ key: one, passphrase });
      context = tls.createSecureContext({
        ca: extra && [...tls.rootCertificates, ...extra],
        cert,
        key,
        passphrase,
        pfx,
        ciphers,
        minVersion,
      });
    } catch (error) {
      throw clientTlsError(error, clientTls);
    }
    clientContexts.set(clientTls, context);
  }
  return context;
}

/** A client certificate, key or cipher list OpenSSL refused: the caller's input. */
function clientTlsError(error, { ciphers }) {
  const text = String(error?.message ?? error);
  const what = /cipher/i.test(text) && ciphers !== undefined ? 'tls.ciphers' : 'tls.cert / tls.key / tls.pfx';
  return SmtpError.input(
    `${what} could not be loaded: ${text}.`,
    what === 'tls.ciphers' ? 'pass an OpenSSL cipher list, like "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256".' : 'pass PEM text (tls.cert, tls.key) or PKCS#12 bytes (tls.pfx), and tls.passphrase when the key is encrypted.',
    'tls',
  );
}

/** The secure context that trusts the bundled roots plus `ca`, or undefined for the defaults. */
function trustContext(ca) {
  if (ca === undefined || ca === null) return undefined;
  const extra = Array.isArray(ca) ? ca : [ca];
  const key = extra.join('\n');
  let context = trustContexts.get(key);
  if (context === undefined) {
    context = tls.createSecureContext({ ca: [...tls.rootCertificates, ...extra] });
    if (trustContexts.size >= MAX_TRUST_CONTEXTS) trustContexts.delete(trustContexts.keys().next().value);
    trustContexts.set(key, context);
  }
  return context;
}

/** TLS options naming the server: SNI only for host names (RFC 6066 forbids
 *  IP addresses there), the certificate checked against the name either way. */
function tlsName(name) {
  const checkServerIdentity = (_, cert) => tls.checkServerIdentity(name, cert);
  return net.isIP(name) ? { checkServerIdentity } : { servername: name, checkServerIdentity };
}

/** Opens TCP; `whileConnecting` runs once the SYN is on its way, so CPU work hides in the wait. */
function openTcp({ host, port, localAddress }, whileConnecting) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port, localAddress });
    socket.setNoDelay(true);
    // A host name is looked up first, and the SYN leaves when that answer
    // comes; an address connects on the next tick.
    let busy = null;
    const afterSyn = () => (busy = setImmediate(whileConnecting));
    if (net.isIP(host)) afterSyn();
    else socket.once('lookup', afterSyn);
    socket.once('connect', () => {
      socket.off('error', fail);
      resolve(socket);
    });
    function fail(error) {
      if (busy !== null) clearImmediate(busy);
      reject(error);
    }
    socket.once('error', fail);
  });
}

/** TLS from the first byte over an open TCP socket. */
function openTls(tcp, { servername, ca, rejectUnauthorized, clientTls }) {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ socket: tcp, ...tlsName(servername), secureContext: secureContext(ca, clientTls), rejectUnauthorized });
    // Errors surface on the TLS socket; Deno's node:tls raises them on the TCP one too.
    tcp.on('error', () => {});
    socket.once('secureConnect', () => {
      socket.off('error', fail);
      resolve(socket);
    });
    function fail(error) {
      // The TCP connection is open, so this is a TLS failure: the engine
      // names the cause (certificate, plaintext port...).
      error.tlsHandshake = true;
      socket.destroy();
      reject(error);
    }
    socket.once('error', fail);
  });
}

class NodeSocket {
  /** Set by the driver: end of stream or error. */
  onClose = null;
  /** `write` is done with its bytes once it resolves: the driver may reuse its buffer. */
  releasesWrites = true;

  #socket;
  #host;
  #rejectUnauthorized;
  #clientTls;
  #early = [];
  #closeReported = false;
  #listeners = null;
  #onData = null;

  constructor(socket, { host, rejectUnauthorized, clientTls }) {
    this.#host = host;
    this.#rejectUnauthorized = rejectUnauthorized;
    this.#clientTls = clientTls;
    this.#attach(socket);
  }

  /** Set by the driver: bytes arrived. Bytes that came earlier (the server's
   *  greeting can share a packet with a proxy's answer) follow once the
   *  driver has finished setting up, in a microtask. */
  get onData() {
    return this.#onData;
  }

  set onData(fn) {
    this.#onData = fn;
    if (fn && this.#early.length > 0) {
      queueMicrotask(() => {
        if (this.#onData) for (const early of this.#early.splice(0)) this.#onData(early);
      });
    }
  }

  /** TLS facts when the socket is encrypted. */
  get tlsInfo() {
    const socket = this.#socket;
    if (tls === null || !(socket instanceof tls.TLSSocket)) return undefined;
    const cipher = socket.getCipher();
    return {
      version: socket.getProtocol() ?? 'TLS',
      cipher: cipher?.standardName ?? cipher?.name,
      authorized: socket.authorized === true,
      authorizationError: socket.authorizationError ? String(socket.authorizationError) : undefined,
    };
  }

  /** The server's certificate (DER) and its SHA-256 fingerprint, when the
   *  socket is encrypted: what the connection doctor reports. */
  get peerCertificate() {
    const socket = this.#socket;
    if (tls === null || !(socket instanceof tls.TLSSocket)) return undefined;
    const cert = socket.getPeerCertificate();
    if (!cert?.raw) return undefined;
    return { der: new Uint8Array(cert.raw), sha256: cert.fingerprint256 };
  }

  /** Resolves once the bytes are handed to the OS (back-pressure per flight). */
  write(bytes) {
    return new Promise((resolve, reject) => {
      this.#socket.write(bytes, (error) => (error ? reject(error) : resolve()));
    });
  }

  /** Upgrades this connection in place (after the server's 220 to STARTTLS). */
  startTls({ servername, ca, rejectUnauthorized = this.#rejectUnauthorized }) {
    const plain = this.#socket;
    // Stop reading plaintext first: from here on every byte belongs to TLS.
    this.#detach();
    return loadTls().then((tls) => new Promise((resolve, reject) => {
      const secure = tls.connect({ socket: plain, ...tlsName(servername ?? this.#host), secureContext: secureContext(ca, this.#clientTls), rejectUnauthorized });
      secure.once('secureConnect', () => {
        secure.off('error', reject);
        this.#attach(secure);
        resolve();
      });
      secure.once('error', (error) => {
        secure.destroy();
        reject(error);
      });
    }));
  }

  close() {
    const socket = this.#socket;
    this.#detach();
    socket.end();
    // end() lets the final bytes (QUIT, TLS close_notify) leave; destroy() after a grace period.
    setTimeout(() => socket.destroy(), 2000).unref?.(); // Deno's timers are numbers
  }

  ref() {
    this.#socket.ref();
  }

  unref() {
    this.#socket.unref();
  }

  #attach(socket) {
    this.#socket = socket;
    const listeners = {
      data: (chunk) => this.#deliver(chunk),
      end: () => this.#reportClose(undefined),
      error: (error) => this.#reportClose(error),
      close: () => this.#reportClose(undefined),
    };
    for (const [name, fn] of Object.entries(listeners)) socket.on(name, fn);
    this.#listeners = listeners;
  }

  #detach() {
    if (!this.#listeners) return;
    for (const [name, fn] of Object.entries(this.#listeners)) this.#socket.off(name, fn);
    // An error on a socket without listeners would crash the process.
    this.#socket.on('error', () => {});
    this.#listeners = null;
  }

  #deliver(chunk) {
    if (this.onData) {
      for (const early of this.#early.splice(0)) this.onData(early);
      this.onData(chunk);
    } else {
      this.#early.push(chunk); // arrived before the driver attached
    }
  }

  #reportClose(error) {
    if (this.#closeReported) return;
    this.#closeReported = true;
    if (this.onData) for (const early of this.#early.splice(0)) this.onData(early);
    this.onClose?.(error);
  }
}
