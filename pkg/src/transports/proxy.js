// Proxies: an HTTP CONNECT or SOCKS5 tunnel to the SMTP server, opened on a
// socket to the proxy before anything else is sent. After the tunnel is up
// the socket is an ordinary byte stream to the server: TLS (implicit,
// STARTTLS or inside the engine) runs end to end through it, the proxy
// sees only ciphertext. No runtime here: the transports (node.js, deno.js)
// open the socket to the proxy and hand over a { read, write } pair.
//
// The server's host name goes to the proxy as a name (HTTP CONNECT always,
// SOCKS5 as address type 3): the proxy resolves it, so no DNS query for it
// leaves this machine, and a server reachable only from the proxy works.

import { SmtpError } from '../errors.js';

/** Proxy URL schemes; socks5 and socks5h both let the proxy resolve names. */
const SCHEMES = Object.freeze({ 'http:': 'http', 'socks5:': 'socks5', 'socks5h:': 'socks5' });
const DEFAULT_PORTS = Object.freeze({ http: 8080, socks5: 1080 });
/** The most an HTTP proxy's answer to CONNECT may take (status line and headers). */
const MAX_HTTP_HEAD = 16 * 1024;

/**
 * Parses `proxy` ('http://user:pass@host:port' or 'socks5://…') into
 * { kind, host, port, user, pass, url } (url without the password, for
 * messages), or throws EINPUT naming what is wrong.
 */
export function parseProxy(value) {
  const bad = (why, hint = "pass proxy: 'http://user:pass@proxy.example.com:3128' or 'socks5://user:pass@proxy.example.com:1080'.") =>
    SmtpError.input(`proxy ${why}`, hint, 'connect');
  if (typeof value !== 'string') throw bad(`must be a URL string, not ${value === null ? 'null' : typeof value}.`);
  let url;
  try {
    url = new URL(value);
  } catch {
    throw bad('is not a URL.');
  }
  const kind = SCHEMES[url.protocol];
  if (kind === undefined) {
    throw bad(`has the scheme "${url.protocol}", which wasmtp does not speak.`, "use http:// (HTTP CONNECT) or socks5:// (SOCKS5; the proxy resolves the server's name).");
  }
  if ((url.pathname !== '' && url.pathname !== '/') || url.search !== '' || url.hash !== '') {
    throw bad('has a path, query or fragment; only scheme, credentials, host and port belong there.');
  }
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  if (host === '') throw bad('has no host.');
  const user = url.username === '' ? undefined : decodeURIComponent(url.username);
  const pass = url.password === '' ? undefined : decodeURIComponent(url.password);
  if (kind === 'socks5' && (byteLength(user ?? '') > 255 || byteLength(pass ?? '') > 255)) {
    throw bad('has a user or password longer than 255 bytes, more than SOCKS5 can carry (RFC 1929).');
  }
  const port = url.port === '' ? DEFAULT_PORTS[kind] : Number(url.port);
  return Object.freeze({ kind, host, port, user, pass, url: `${url.protocol}//${url.host}` });
}

/**
 * The proxy URL from the environment, when the caller opted in with
 * `proxy: 'env'`: WASMTP_PROXY, else ALL_PROXY / all_proxy (HTTPS_PROXY is
 * for HTTPS and is not used). Undefined when none is set.
 */
export function proxyFromEnv(env) {
  for (const name of ['WASMTP_PROXY', 'ALL_PROXY', 'all_proxy']) {
    const value = env?.[name];
    if (typeof value === 'string' && value !== '') return value;
  }
  return undefined;
}

/** An EPROXY error: the proxy, not the SMTP server, failed. */
export function proxyError(proxy, message, hint, retryable = false) {
  const error = new SmtpError({ code: 'EPROXY', phase: 'proxy', message: `proxy ${proxy.url}: ${message}`, hint, retryable });
  error.proxyError = true;
  return error;
}

/** Codes of a connection that ended or stalled: behind a proxy, the proxy may be why. */
const LOST = new Set(['ECLOSED', 'ETIMEDOUT', 'ECONNECT']);

/** Adds to the hint of a lost connection that it ran through `proxy`. */
export function withProxyHint(error, proxy) {
  if (proxy === undefined || !LOST.has(error.code)) return error;
  const note = `The connection runs through the proxy ${proxy.url}, which may have closed it (check its idle and session time-outs and its logs).`;
  error.hint = error.hint ? `${error.hint} ${note}` : note;
  error.message = `${error.code} (${error.phase}): ${error.detail} Hint: ${error.hint}`;
  return error;
}

/**
 * Asks the proxy for a tunnel to host:port over `stream`
 * ({ read(): Promise<Uint8Array|null>, write(bytes): Promise }), already
 * connected to the proxy. Resolves with the bytes that came after the
 * proxy's answer (the server's greeting may share its packet), or rejects
 * with an EPROXY error.
 */
export async function openTunnel(stream, proxy, { host, port }) {
  const reader = new Reader(stream, proxy);
  // A proxy that accepts and then says nothing must not hold the socket
  // forever: the caller closes it when this rejects.
  let timer;
  const silence = new Promise((_, reject) => {
    timer = setTimeout(
      () => reject(proxyError(proxy, `did not answer within ${proxy.timeoutMs} ms.`, 'check that the URL names a proxy of that kind (http:// or socks5://) and that it is not overloaded.', true)),
      proxy.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    );
  });
  const handshake = proxy.kind === 'http' ? httpConnect(stream, reader, proxy, host, port) : socks5Connect(stream, reader, proxy, host, port);
  try {
    await Promise.race([handshake, silence]);
  } finally {
    clearTimeout(timer);
  }
  return reader.rest();
}

/** How long a proxy may take to open the tunnel when no connect time-out is set. */
const DEFAULT_TIMEOUT_MS = 30_000;

// ------------------------------------------------------------- HTTP CONNECT

async function httpConnect(stream, reader, proxy, host, port) {
  const authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const lines = [`CONNECT ${authority} HTTP/1.1`, `Host: ${authority}`];
  if (proxy.user !== undefined) {
    lines.push(`Proxy-Authorization: Basic ${base64(`${proxy.user}:${proxy.pass ?? ''}`)}`);
  }
  await stream.write(new TextEncoder().encode(`${lines.join('\r\n')}\r\n\r\n`));
  const head = await reader.through('\r\n\r\n', MAX_HTTP_HEAD);
  const statusLine = head.split('\r\n', 1)[0];
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1];
  if (status === undefined) {
    throw proxyError(proxy, `answered CONNECT with "${clip(statusLine)}", not HTTP.`, 'check that the proxy URL names an HTTP proxy (socks5:// for a SOCKS proxy).');
  }
  if (status.startsWith('2')) return;
  // 407 is the standard answer; some proxies (tinyproxy) send 401 for wrong credentials.
  if (status === '407' || (status === '401' && proxy.user !== undefined)) {
    throw proxyError(
      proxy,
      `${proxy.user === undefined ? 'asks for credentials' : 'refused the credentials'} (${clip(statusLine)}).`,
      proxy.user === undefined ? 'the proxy needs a user and password: proxy: "http://user:pass@host:port".' : 'check the user and password in the proxy URL (percent-encode special characters).',
    );
  }
  throw proxyError(
    proxy,
    `refused to connect to ${authority} (${clip(statusLine)}).`,
    'the proxy does not allow this server or port, or cannot reach it: ask its administrator to allow CONNECT to the SMTP port.',
    status.startsWith('5'),
  );
}

// ------------------------------------------------------------------- SOCKS5

const SOCKS_REPLIES = {
  1: 'general failure',
  2: 'connection not allowed by its rules',
  3: 'network unreachable',
  4: 'host unreachable',
  5: 'connection refused by the server',
  6: 'time-to-live expired',
  7: 'command not supported',
  8: 'address type not supported',
};

async function socks5Connect(stream, reader, proxy, host, port) {
  // Methods: 0 (none) and, with credentials, 2 (user/password, RFC 1929).
  const methods = proxy.user === undefined ? [0] : [0, 2];
  await stream.write(Uint8Array.from([5, methods.length, ...methods]));
  const [version, method] = await reader.take(2);
  if (version !== 5) throw proxyError(proxy, `answered with version ${version}, not SOCKS5.`, 'check that the proxy URL names a SOCKS5 proxy (http:// for an HTTP proxy).');
  if (method === 0xff || !methods.includes(method)) {
    throw proxyError(
      proxy,
      'accepted none of the offered authentication methods.',
      proxy.user === undefined ? 'the proxy needs a user and password: proxy: "socks5://user:pass@host:port".' : 'the proxy wants an authentication method wasmtp does not speak (only user/password).',
    );
  }
  if (method === 2) {
    const user = new TextEncoder().encode(proxy.user);
    const pass = new TextEncoder().encode(proxy.pass ?? '');
    await stream.write(Uint8Array.from([1, user.length, ...user, pass.length, ...pass]));
    const [, status] = await reader.take(2);
    if (status !== 0) throw proxyError(proxy, 'refused the user name and password.', 'check the user and password in the proxy URL (percent-encode special characters).');
  }
  await stream.write(Uint8Array.from([5, 1, 0, ...socksAddress(host), port >> 8, port & 0xff]));
  const [replyVersion, reply, , addressType] = await reader.take(4);
  if (replyVersion !== 5) throw proxyError(proxy, `answered CONNECT with version ${replyVersion}, not SOCKS5.`, 'check the proxy URL.');
  if (reply !== 0) {
    throw proxyError(
      proxy,
      `refused to connect to ${host}:${port}: ${SOCKS_REPLIES[reply] ?? `reply ${reply}`}.`,
      reply === 2 ? 'the proxy does not allow this server or port: ask its administrator to allow it.' : 'check the host and port, and that the proxy can reach the server.',
      reply !== 2 && reply !== 7 && reply !== 8,
    );
  }
  // The proxy's bound address, which nothing here needs.
  const addressLength = addressType === 1 ? 4 : addressType === 4 ? 16 : addressType === 3 ? (await reader.take(1))[0] : -1;
  if (addressLength < 0) throw proxyError(proxy, `answered with address type ${addressType}.`, 'the proxy does not speak SOCKS5 as RFC 1928 defines it.');
  await reader.take(addressLength + 2);
}

/** ATYP and address: IPv4 (1), IPv6 (4), or the name for the proxy to resolve (3). */
function socksAddress(host) {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (v4 && v4.slice(1).every((n) => Number(n) <= 255)) return [1, ...v4.slice(1).map(Number)];
  if (host.includes(':')) return [4, ...ipv6Bytes(host)];
  const name = new TextEncoder().encode(host);
  if (name.length > 255) throw SmtpError.input('host is longer than 255 bytes, more than SOCKS5 can carry.', 'check the host name.', 'connect');
  return [3, name.length, ...name];
}

function ipv6Bytes(text) {
  const [head, tail = ''] = text.split('::');
  const parse = (part) => (part === '' ? [] : part.split(':').map((group) => parseInt(group, 16)));
  const left = parse(head);
  const right = text.includes('::') ? parse(tail) : [];
  const groups = [...left, ...new Array(8 - left.length - right.length).fill(0), ...right];
  if (groups.length !== 8 || groups.some((g) => !(g >= 0 && g <= 0xffff))) {
    throw SmtpError.input(`host ${text} is not an IPv6 address SOCKS5 can carry.`, 'use a host name or a full IPv6 address.', 'connect');
  }
  return groups.flatMap((g) => [g >> 8, g & 0xff]);
}

// ------------------------------------------------------------------ helpers

/** Reads exact byte counts or up to a delimiter, keeping what comes after. */
class Reader {
  #stream;
  #proxy;
  #buffer = new Uint8Array(0);

  constructor(stream, proxy) {
    this.#stream = stream;
    this.#proxy = proxy;
  }

  async take(n) {
    while (this.#buffer.length < n) await this.#more();
    const out = this.#buffer.subarray(0, n);
    this.#buffer = this.#buffer.subarray(n);
    return out;
  }

  /** Text up to and including `delimiter`, at most `limit` bytes. */
  async through(delimiter, limit) {
    for (;;) {
      const text = latin1(this.#buffer);
      const end = text.indexOf(delimiter);
      if (end >= 0) return latin1(await this.take(end + delimiter.length));
      if (this.#buffer.length > limit) throw proxyError(this.#proxy, `sent more than ${limit} bytes of headers.`, 'check that the proxy URL names an HTTP proxy.');
      await this.#more();
    }
  }

  rest() {
    return this.#buffer;
  }

  async #more() {
    const chunk = await this.#stream.read();
    if (chunk === null) {
      throw proxyError(this.#proxy, 'closed the connection before the tunnel was open.', 'the proxy dropped the request: check its logs and access rules, and the proxy URL.', true);
    }
    const joined = new Uint8Array(this.#buffer.length + chunk.length);
    joined.set(this.#buffer);
    joined.set(chunk, this.#buffer.length);
    this.#buffer = joined;
  }
}

const byteLength = (text) => new TextEncoder().encode(text).length;
const latin1 = (bytes) => String.fromCharCode(...bytes);
const clip = (text) => (text.length > 120 ? `${text.slice(0, 120)}…` : text);

function base64(text) {
  let binary = '';
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary);
}
