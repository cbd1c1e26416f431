// The options about how the socket reaches the server and what the client
// shows in the TLS handshake: `proxy`, `localAddress`, and tls.cert / key /
// passphrase / pfx / ciphers. Each is checked here, and refused with EINPUT
// naming the option and the runtime when the transport in use cannot honour
// it: a security option is never silently ignored.
//
// A transport says what it honours with `supports` (see Transport.supports
// in index.d.ts); a custom transport without it honours none of these.

import { SmtpError } from './errors.js';
import { absent, describeValue } from './strict.js';
import { parseProxy, proxyFromEnv } from './transports/proxy.js';

/**
 * `proxy`: a URL, or 'env' to read WASMTP_PROXY / ALL_PROXY (opt-in).
 * Undefined: direct. `timeoutMs` (timeouts.connect) bounds the proxy's answer.
 */
export function normalizeProxy(value, timeoutMs) {
  if (absent(value)) return undefined;
  const url = value === 'env' ? proxyFromTheEnvironment() : value;
  if (url === undefined) return undefined;
  return Object.freeze({ ...parseProxy(url), ...(timeoutMs === undefined ? {} : { timeoutMs }) });
}

/** WASMTP_PROXY / ALL_PROXY from the process environment (Node, Bun, Deno's `process`). */
function proxyFromTheEnvironment() {
  try {
    return proxyFromEnv(globalThis.process?.env ?? globalThis.Deno?.env?.toObject());
  } catch (error) {
    // Deno without --allow-env refuses to read variables.
    throw SmtpError.input(
      `proxy: 'env' could not read the environment (${error?.message ?? error}).`,
      'allow reading WASMTP_PROXY and ALL_PROXY (Deno: --allow-env), or pass the proxy URL itself.',
      'connect',
    );
  }
}

/** `localAddress`: the local IP address to connect from. */
export function normalizeLocalAddress(value) {
  if (absent(value)) return undefined;
  if (typeof value !== 'string' || !/^[0-9a-fA-F:.]+$/.test(value)) {
    throw SmtpError.input(`localAddress is ${describeValue(value)}.`, 'pass a local IP address of this machine, like "192.0.2.10" or "2001:db8::10".', 'connect');
  }
  return value;
}

const isText = (v) => typeof v === 'string';
const isBytes = (v) => v instanceof Uint8Array;
const isPemList = (v) => isText(v) || isBytes(v) || (Array.isArray(v) && v.every((x) => isText(x) || isBytes(x)));

/**
 * The settings for the runtime's TLS beyond trust: client certificate
 * (cert + key, or pfx), passphrase, cipher list, minimum version.
 * Undefined when none is set (the runtime's defaults, shared contexts).
 */
export function clientTlsSettings(tls, engine, minVersion) {
  const bad = (what, hint) => {
    throw SmtpError.input(`${what} is ${describeValue(tls[what.slice(4)])}.`, hint, 'tls');
  };
  if (!absent(tls.cert) && !isPemList(tls.cert)) bad('tls.cert', 'pass the client certificate chain as PEM text.');
  if (!absent(tls.key) && !isPemList(tls.key)) bad('tls.key', 'pass the private key as PEM text.');
  if (!absent(tls.passphrase) && !isText(tls.passphrase)) bad('tls.passphrase', 'pass the passphrase of the encrypted key as a string.');
  if (!absent(tls.pfx) && !isPemList(tls.pfx)) bad('tls.pfx', 'pass the PKCS#12 file as bytes (a Uint8Array or Buffer).');
  if (!absent(tls.ciphers) && !(isText(tls.ciphers) && tls.ciphers !== '')) bad('tls.ciphers', 'pass an OpenSSL cipher list, like "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256".');
  if (absent(tls.cert) !== absent(tls.key)) {
    throw SmtpError.input(
      `tls.${absent(tls.cert) ? 'key' : 'cert'} is set without tls.${absent(tls.cert) ? 'cert' : 'key'}.`,
      'a client certificate needs both: tls: { cert, key } (PEM), or tls: { pfx } (PKCS#12).',
      'tls',
    );
  }
  if (!absent(tls.passphrase) && absent(tls.key) && absent(tls.pfx)) {
    throw SmtpError.input('tls.passphrase is set without tls.key or tls.pfx.', 'the passphrase decrypts tls.key or tls.pfx; pass one of them too.', 'tls');
  }
  if (engine === 'wasm') return undefined; // the engine takes cert and key itself
  const settings = {};
  for (const key of ['cert', 'key', 'passphrase', 'pfx', 'ciphers']) if (!absent(tls[key])) settings[key] = tls[key];
  if (Object.keys(settings).length === 0) return undefined;
  // The runtime's TLS enforces the minimum in the handshake too.
  if (minVersion !== undefined) settings.minVersion = minVersion;
  return Object.freeze(settings);
}

/** Which capability of a transport (Transport.supports) each option needs. */
const NEEDS = Object.freeze({
  proxy: 'proxy',
  localAddress: 'localAddress',
  'tls.cert': 'clientCertificate',
  'tls.key': 'clientCertificate',
  'tls.pfx': 'pfx',
  'tls.passphrase': 'passphrase',
  'tls.ciphers': 'ciphers',
});

/** What TLS inside the engine does with each TLS option (true: honoured). */
const IN_ENGINE = Object.freeze({ 'tls.cert': true, 'tls.key': true, 'tls.pfx': false, 'tls.passphrase': false, 'tls.ciphers': false });

/** Throws EINPUT for an option the transport (or TLS inside the engine) cannot honour. */
export function checkTransportSupport(transport, { proxy, localAddress, tls, engine, isDefault }) {
  const given = [];
  if (proxy !== undefined) given.push('proxy');
  if (localAddress !== undefined) given.push('localAddress');
  for (const key of ['cert', 'key', 'pfx', 'passphrase', 'ciphers']) if (!absent(tls[key])) given.push(`tls.${key}`);
  const supports = transport.supports ?? {};
  const runtime = supports.runtime ?? (isDefault ? 'this runtime' : 'the custom transport');
  for (const option of given) {
    if (engine === 'wasm' && option in IN_ENGINE) {
      if (IN_ENGINE[option]) continue;
      throw SmtpError.input(
        `${option} cannot be honoured with tls.engine 'wasm': TLS inside the engine ${option === 'tls.ciphers' ? 'uses its fixed set of modern cipher suites' : 'takes an unencrypted PEM key (tls.cert and tls.key)'}.`,
        option === 'tls.ciphers' ? "leave tls.ciphers out, or use the runtime's TLS (leave tls.engine out)." : "decrypt the key and pass tls: { cert, key } as PEM, or use the runtime's TLS (leave tls.engine out).",
        'tls',
      );
    }
    if (supports[NEEDS[option]] === true) continue;
    throw SmtpError.input(
      `${option} cannot be honoured by ${runtime === 'the custom transport' || runtime === 'this runtime' ? runtime : `the ${runtime} transport`}, so nothing was sent.`,
      hintFor(option, runtime),
      option === 'proxy' || option === 'localAddress' ? 'connect' : 'tls',
    );
  }
}

function hintFor(option, runtime) {
  if (runtime === 'the custom transport') return `a custom transport that handles ${option} declares it in supports (see the Transport type); otherwise leave ${option} out.`;
  if (option === 'proxy') return 'proxies work with the Node.js, Deno and Bun entry points (wasmtp); on this runtime leave proxy out or pass a transport that tunnels.';
  if (option.startsWith('tls.') && option !== 'tls.ciphers') return "run on Node.js or Bun, or use TLS inside the engine for a PEM client certificate: tls: { engine: 'wasm', cert, key }.";
  return `run on Node.js or Bun, where ${option} is honoured, or leave it out.`;
}
