// DKIM signing for send(): the `dkim` option, private keys, and the two
// passes that keep memory bounded.
//
// A signature covers the body's hash (bh=), which must be known before the
// first header goes out. So a message is read twice: a first pass through
// the DKIM artifact (pkg/wasm/wasmtp_dkim_bg.wasm: canonicalization, SHA-256,
// the DKIM-Signature layout), then the real send with the finished fields
// put first (a structured message's first copy is built inside the DKIM
// artifact, which also has the MIME builder). What can be read twice (strings, bytes, content given as a
// function that opens a fresh stream) is simply read again; a one-shot
// stream is spooled during the first pass, to a temporary file where there
// is a file system (set by the Node/Deno/Bun entry), otherwise to memory up
// to MEMORY_SPOOL_LIMIT.
//
// The private-key operation is the host's WebCrypto (RSASSA-PKCS1-v1_5 with
// SHA-256, or Ed25519), or the caller's own signer function (a KMS, an
// HSM): no signing code ships in wasm.

import { BodySource } from './body.js';
import { loadEngine } from './engine.js';
import { SmtpError, isEngineError } from './errors.js';

/** Largest one-shot stream spooled in memory where there is no file system (Workers, browsers). */
export const MEMORY_SPOOL_LIMIT = 32 * 1024 * 1024;

const OPTION_KEYS = ['domain', 'selector', 'privateKey', 'algorithm', 'headers', 'canonicalization', 'expires'];
const ALGORITHMS = ['rsa-sha256', 'ed25519-sha256'];
const CANONICALIZATIONS = ['relaxed/relaxed', 'relaxed/simple', 'simple/relaxed', 'simple/simple', 'relaxed', 'simple'];
const KEY_EXPECTED =
  'an unencrypted PEM private key: PKCS#8 (-----BEGIN PRIVATE KEY-----, RSA or Ed25519) or PKCS#1 (-----BEGIN RSA PRIVATE KEY-----), a CryptoKey, or a signer function (data) => Promise<Uint8Array>';
const KEY_HINT = '`wasmtp dkim keygen` writes a new key in that form; `openssl pkey -in key.pem -out pkcs8.pem` converts an existing unencrypted one to PKCS#8.';

/**
 * Checks the `dkim` option (one key or an array of keys), synchronously, so
 * that a mistake is EINPUT before anything connects. Returns the keys
 * ready for signMessage, or null when there is nothing to sign.
 * @param {unknown} value
 * @param {string} name how the option is named in errors ('dkim', 'send() options.dkim')
 */
export function normalizeDkim(value, name = 'dkim') {
  if (value === undefined || value === null || value === false) return null;
  const list = Array.isArray(value) ? value : [value];
  if (list.length === 0) {
    throw SmtpError.input(`${name} is an empty array.`, 'give at least one key { domain, selector, privateKey }, or leave dkim out.', 'data');
  }
  return list.map((entry, index) => normalizeKey(entry, Array.isArray(value) ? `${name}[${index}]` : name));
}

function normalizeKey(entry, name) {
  if (entry === null || typeof entry !== 'object') {
    throw SmtpError.input(`${name} must be an object.`, 'pass dkim: { domain, selector, privateKey }.', 'data');
  }
  for (const key of Object.keys(entry)) {
    if (!OPTION_KEYS.includes(key)) {
      throw SmtpError.input(`${name}.${key} is not a DKIM option.`, `the options are ${OPTION_KEYS.join(', ')}.`, 'data');
    }
  }
  for (const key of ['domain', 'selector']) {
    if (typeof entry[key] !== 'string' || entry[key] === '') {
      throw SmtpError.input(`${name}.${key} must be a non-empty string.`, 'pass dkim: { domain: "example.com", selector: "mail2026", privateKey }.', 'data');
    }
  }
  const { algorithm, canonicalization, headers, expires } = entry;
  if (algorithm !== undefined && !ALGORITHMS.includes(algorithm)) {
    throw SmtpError.input(`${name}.algorithm "${algorithm}" is not supported.`, 'use "rsa-sha256" (the default) or "ed25519-sha256".', 'data');
  }
  if (canonicalization !== undefined && !CANONICALIZATIONS.includes(canonicalization)) {
    throw SmtpError.input(
      `${name}.canonicalization "${canonicalization}" is not known.`,
      'use "relaxed/relaxed" (the default), "simple/simple", "relaxed/simple" or "simple/relaxed".',
      'data',
    );
  }
  if (headers !== undefined && !(Array.isArray(headers) && headers.length > 0 && headers.every((h) => typeof h === 'string' && /^[!-9;-~]+$/.test(h)))) {
    throw SmtpError.input(`${name}.headers must be a non-empty array of header names.`, 'pass for example headers: ["From", "To", "Subject", "Date"], or leave it out for the default list.', 'data');
  }
  if (expires !== undefined && !(Number.isInteger(expires) && expires > 0)) {
    throw SmtpError.input(`${name}.expires must be a whole number of seconds.`, 'pass for example expires: 7 * 24 * 3600 (x= one week after signing), or leave it out.', 'data');
  }
  const key = parseKey(entry.privateKey, `${name}.privateKey`);
  if (algorithm !== undefined && key.algorithm !== undefined && algorithm !== key.algorithm) {
    throw SmtpError.input(
      `${name}.algorithm is "${algorithm}" but the private key is ${key.algorithm === 'rsa-sha256' ? 'an RSA' : 'an Ed25519'} key.`,
      `leave algorithm out (it follows the key), or set it to "${key.algorithm}".`,
      'data',
    );
  }
  return {
    domain: entry.domain,
    selector: entry.selector,
    algorithm: algorithm ?? key.algorithm ?? 'rsa-sha256',
    canonicalization: canonicalization ?? 'relaxed/relaxed',
    headers,
    expires,
    key,
    name,
    /** The imported CryptoKey (a promise), once per key. */
    imported: null,
  };
}

// ----- private keys

/** { algorithm?, pkcs8? (DER), cryptoKey?, signer? } from what the caller gave. */
function parseKey(value, name) {
  if (typeof value === 'function') return { signer: value };
  if (value instanceof Uint8Array) value = new TextDecoder().decode(value); // a PEM file's bytes
  if (typeof value === 'string') return parsePem(value, name);
  if (value && typeof value === 'object' && typeof value.type === 'string' && value.algorithm) return checkCryptoKey(value, name);
  throw SmtpError.input(`${name} is not usable: received ${describe(value)}; expected ${KEY_EXPECTED}.`, KEY_HINT, 'data');
}

function parsePem(text, name) {
  const match = /-----BEGIN ([A-Z0-9 ]+)-----([^-]*)-----END \1-----/.exec(text);
  if (!match) {
    const received = text.trim() === '' ? 'an empty string' : text.includes('-----BEGIN') ? 'a damaged PEM block' : 'text that is not PEM';
    throw SmtpError.input(`${name} is not a PEM key: received ${received}; expected ${KEY_EXPECTED}.`, KEY_HINT, 'data');
  }
  const label = match[1];
  const received = `a PEM "${label}" block`;
  const refuse = (why, hint = KEY_HINT) => SmtpError.input(`${name} is not usable: received ${received} (${why}); expected ${KEY_EXPECTED}.`, hint, 'data');
  let der;
  try {
    der = Uint8Array.from(atob(match[2].replace(/\s+/g, '')), (c) => c.charCodeAt(0));
  } catch {
    throw refuse('its base64 does not decode');
  }
  switch (label) {
    case 'PRIVATE KEY': {
      const algorithm = pkcs8Algorithm(der);
      if (!algorithm) throw refuse('a PKCS#8 key that is neither RSA nor Ed25519');
      return { algorithm, pkcs8: der };
    }
    case 'RSA PRIVATE KEY':
      if (der[0] !== 0x30) throw refuse('not a DER structure');
      return { algorithm: 'rsa-sha256', pkcs8: pkcs1ToPkcs8(der) };
    case 'ENCRYPTED PRIVATE KEY':
      throw refuse('an encrypted key', 'decrypt it first: openssl pkey -in key.pem -out plain.pem (keep plain.pem private, mode 0600).');
    case 'OPENSSH PRIVATE KEY':
      throw refuse("OpenSSH's own format", 'convert it: ssh-keygen -p -N "" -m PKCS8 -f key (or generate one with `wasmtp dkim keygen`).');
    case 'EC PRIVATE KEY':
      throw refuse('an EC key, which DKIM does not use');
    case 'PUBLIC KEY':
    case 'RSA PUBLIC KEY':
      throw refuse('a public key; signing needs the private one', 'pass the private key; the public key goes into the DNS TXT record.');
    default:
      throw refuse('not a private key');
  }
}

/** Reads one DER header at `at`: { tag, start (of the contents), end }. */
function der(bytes, at) {
  const tag = bytes[at];
  let length = bytes[at + 1];
  let start = at + 2;
  if (length & 0x80) {
    const count = length & 0x7f;
    length = 0;
    for (let i = 0; i < count; i++) length = length * 256 + bytes[start + i];
    start += count;
  }
  return { tag, start, end: start + length };
}

const OID_RSA = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
const OID_ED25519 = [0x2b, 0x65, 0x70];

/** The algorithm of a PKCS#8 PrivateKeyInfo, from its AlgorithmIdentifier's OID. */
function pkcs8Algorithm(bytes) {
  const outer = der(bytes, 0);
  if (outer.tag !== 0x30) return null;
  const version = der(bytes, outer.start);
  const identifier = der(bytes, version.end);
  const oid = der(bytes, identifier.start);
  if (identifier.tag !== 0x30 || oid.tag !== 0x06) return null;
  const value = Array.from(bytes.subarray(oid.start, oid.end)).join();
  if (value === OID_RSA.join()) return 'rsa-sha256';
  if (value === OID_ED25519.join()) return 'ed25519-sha256';
  return null;
}

/** PKCS#1 RSAPrivateKey wrapped as PKCS#8 (what WebCrypto imports). */
function pkcs1ToPkcs8(pkcs1) {
  const encode = (tag, contents) => {
    const n = contents.length;
    const length = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
    return [tag, ...length, ...contents];
  };
  const algorithm = encode(0x30, [0x06, OID_RSA.length, ...OID_RSA, 0x05, 0x00]);
  return Uint8Array.from(encode(0x30, [0x02, 0x01, 0x00, ...algorithm, ...encode(0x04, Array.from(pkcs1))]));
}

function checkCryptoKey(key, name) {
  const algorithm = key.algorithm.name === 'RSASSA-PKCS1-v1_5' && key.algorithm.hash?.name === 'SHA-256' ? 'rsa-sha256' : key.algorithm.name === 'Ed25519' ? 'ed25519-sha256' : undefined;
  const what = `a ${key.type} CryptoKey for ${key.algorithm.name}${key.algorithm.hash ? ` with ${key.algorithm.hash.name}` : ''}`;
  if (key.type !== 'private' || !algorithm || !key.usages?.includes('sign')) {
    throw SmtpError.input(
      `${name} is not usable: received ${what}; expected a private CryptoKey for RSASSA-PKCS1-v1_5 with SHA-256, or Ed25519, with the "sign" usage.`,
      "import it with crypto.subtle.importKey('pkcs8', der, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } or { name: 'Ed25519' }, false, ['sign']).",
      'data',
    );
  }
  return { algorithm, cryptoKey: key };
}

function describe(value) {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'no prototype'})`;
  return `a ${typeof value}`;
}

function webCryptoAlgorithm(algorithm) {
  return algorithm === 'rsa-sha256' ? { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } : { name: 'Ed25519' };
}

/** The CryptoKey for a PEM key, imported once. */
function cryptoKeyFor(config) {
  const { key } = config;
  if (key.cryptoKey) return Promise.resolve(key.cryptoKey);
  config.imported ??= (async () => {
    const subtle = globalThis.crypto?.subtle;
    let imported;
    try {
      imported = await subtle.importKey('pkcs8', key.pkcs8, webCryptoAlgorithm(config.algorithm), false, ['sign']);
    } catch (error) {
      config.imported = null;
      throw SmtpError.input(
        `${config.name} could not be imported as ${config.algorithm === 'rsa-sha256' ? 'an RSA' : 'an Ed25519'} key by this runtime's WebCrypto (${error?.message ?? error}).`,
        config.algorithm === 'rsa-sha256'
          ? 'check that the PEM is a complete, unencrypted RSA private key.'
          : 'Ed25519 in WebCrypto needs Node 18.4 or later, Deno, Bun or Workers; elsewhere pass a signer function.',
        'data',
      );
    }
    const bits = imported.algorithm.modulusLength;
    if (bits !== undefined && bits < 1024) {
      config.imported = null;
      throw SmtpError.input(`${config.name} is a ${bits}-bit RSA key; verifiers ignore DKIM keys under 1024 bits (RFC 8301).`, 'generate a 2048-bit key: wasmtp dkim keygen --domain D --selector S.', 'data');
    }
    return imported;
  })();
  return config.imported;
}

/** Signs `data` (what the engine's DkimPending.toSign gave) with one key. */
async function signWith(config, data) {
  if (config.key.signer) {
    let signature;
    try {
      signature = await config.key.signer(data, { algorithm: config.algorithm, domain: config.domain, selector: config.selector });
    } catch (error) {
      throw SmtpError.input(`the DKIM signer function of ${config.name} failed: ${error?.message ?? error}.`, 'the message was not sent; check the signer (its KMS or HSM).', 'data');
    }
    if (signature instanceof ArrayBuffer) signature = new Uint8Array(signature);
    if (!(signature instanceof Uint8Array) || signature.byteLength === 0) {
      throw SmtpError.input(`the DKIM signer function of ${config.name} did not resolve to the signature bytes.`, 'resolve to a non-empty Uint8Array (or ArrayBuffer).', 'data');
    }
    return signature;
  }
  const key = await cryptoKeyFor(config);
  const algorithm = config.algorithm === 'rsa-sha256' ? { name: 'RSASSA-PKCS1-v1_5' } : { name: 'Ed25519' };
  return new Uint8Array(await globalThis.crypto.subtle.sign(algorithm, key, data));
}

// ----- spooling one-shot streams

/** Makes a spool for one stream: { write(chunk), source(): BodySource, release() }. */
let spoolFactory = memorySpool;

/** Where one-shot streams go during the first pass (the Node/Deno/Bun entry sets a temporary-file spool). */
export function setDkimSpool(factory) {
  spoolFactory = factory;
}

/** Spools in memory, up to MEMORY_SPOOL_LIMIT bytes. */
export function memorySpool() {
  const chunks = [];
  let size = 0;
  return {
    write(chunk) {
      size += chunk.byteLength;
      if (size > MEMORY_SPOOL_LIMIT) {
        throw SmtpError.input(
          `a streamed part of a DKIM-signed message is over ${MEMORY_SPOOL_LIMIT / 1024 / 1024} MiB, the most this runtime spools in memory to sign it.`,
          'give the content as a function that opens a fresh stream (content: () => stream), which is read twice instead of spooled, or as bytes.',
          'data',
        );
      }
      chunks.push(chunk.slice());
    },
    source: () => new BodySource({ size, replayable: true, open: () => chunks[Symbol.iterator]() }),
    release() {
      chunks.length = 0;
    },
  };
}

// ----- signing a prepared message

/**
 * Signs a prepared message (message.js) with every key: the first pass,
 * one signature per key, then the fields handed back to the message so
 * every attempt sends them first.
 */
export async function signMessage(prepared, configs) {
  const dkim = await loadEngine('dkim');
  const { signing } = prepared;
  const spools = [];
  prepared.release = async () => {
    const all = spools.splice(0);
    await Promise.all(all.map((spool) => spool.release()));
  };
  // "relaxed" alone is relaxed headers and a simple body (RFC 6376 §3.5).
  const bodies = configs.map((c) => c.canonicalization.split('/')[1] ?? 'simple');
  const hasher = new dkim.DkimHasher(bodies.includes('simple'), bodies.includes('relaxed'));
  try {
    const update = (bytes) => callDkim(() => hasher.update(bytes));
    // A source that can be read twice is read here on a fresh copy; a
    // one-shot stream is spooled as it is read, and the spool is sent.
    const reread = async (source) => {
      if (source.replayable) return { first: source.replay(), second: source };
      const spool = await spoolFactory();
      spools.push(spool);
      const first = new BodySource({
        size: source.size,
        replayable: false,
        open: async function* () {
          for (let chunk = await source.next(); chunk !== null; chunk = await source.next()) {
            await spool.write(chunk);
            yield chunk;
          }
        },
      });
      return { first, second: null, spool };
    };
    const absorb = (builder) => callDkim(() => hasher.absorbBuilder(builder));
    await signing.firstPass({ dkim, update, absorb }, reread);
    const size = callDkim(() => hasher.finish());
    const timestamp = Math.floor(Date.now() / 1000);
    let fields = '';
    for (const config of configs) {
      const pending = callDkim(() =>
        hasher.prepare(config.domain, config.selector, config.algorithm, config.canonicalization, config.headers?.join(':'), config.expires, timestamp),
      );
      try {
        const signature = await signWith(config, pending.toSign());
        fields += callDkim(() => pending.finish(signature));
      } finally {
        pending.free();
      }
    }
    signing.setFields(fields, size + new TextEncoder().encode(fields).byteLength);
  } catch (thrown) {
    await prepared.release();
    if (thrown instanceof SmtpError) throw thrown;
    if (isEngineError(thrown)) throw SmtpError.fromEngine(thrown);
    throw SmtpError.input(`reading the message to sign it failed: ${thrown?.message ?? thrown}.`, 'check the streams given as attachment content or raw.', 'data');
  } finally {
    hasher.free();
  }
}

/** Errors from the DKIM artifact are JS Errors: "message\nhint". */
function callDkim(call) {
  try {
    return call();
  } catch (thrown) {
    if (thrown instanceof SmtpError || !(thrown instanceof Error)) throw thrown;
    const [message, hint] = thrown.message.split('\n');
    throw SmtpError.input(message, hint || undefined, 'data');
  }
}
