// Loads the wasm engine once per process. There are three artifacts:
//   'core'   — the SMTP engine (hosts with native TLS use only this one);
//   'tls'    — the same engine plus TLS inside wasm (`SecureConnection`,
//              rustls + ring), loaded only by clients with tls: { engine: 'wasm' };
//   'doctor' — 'tls' plus the connection doctor (`Probe`, `Doctor`),
//              loaded only by diagnose();
//   'dkim'   — the core's bindings plus DKIM canonicalization, hashing and
//              the signature layout (`DkimHasher`, `DkimPending`): a signed
//              message's first pass is built and hashed inside it. Loaded
//              only by clients that sign.
//   'mx'     — no engine: MX host order and MTA-STS policies (`mxRoute`,
//              `MtaStsPolicy`), loaded only by clients with mx: true.
// Each entry point (Node/Deno/Bun, Workers) registers, per artifact, its JS
// glue and how to obtain the module: bytes read from disk, a precompiled
// `WebAssembly.Module` (workerd cannot compile from bytes), a `Response` or
// a URL. An entry that registers only 'core' never bundles the TLS artifact.

import { SmtpError } from './errors.js';

const variants = { core: null, tls: null, doctor: null, dkim: null, mx: null };
const loading = { core: null, tls: null, doctor: null, dkim: null, mx: null };

/**
 * Registers an artifact: `glue` imports its wasm-bindgen module, `load`
 * returns (a promise of) the bytes, a `WebAssembly.Module`, a `Response` or a URL.
 * @param {'core'|'tls'|'doctor'|'dkim'} variant
 * @param {{ glue: () => Promise<object>, load: () => unknown }} source
 */
export function setWasmSource(variant, { glue, load }) {
  check(variant);
  variants[variant] = { glue, load };
  loading[variant] = null;
}

/** Whether an artifact is available from this entry point. */
export function hasWasmSource(variant) {
  check(variant);
  return variants[variant] !== null;
}

/**
 * The initialised bindings (`Connection`, `Options`, `Envelope`... and, for
 * 'tls', `SecureConnection` and `TlsOptions`). Objects of one artifact must
 * never be passed to the other: a client uses one artifact throughout.
 * @param {'core'|'tls'|'doctor'|'dkim'} [variant]
 */
export function loadEngine(variant = 'core') {
  check(variant);
  loading[variant] ??= (async () => {
    const source = variants[variant];
    if (!source && variant === 'tls') {
      throw SmtpError.input(
        "tls.engine 'wasm' needs the TLS build of the engine, which this entry point does not load.",
        "on Cloudflare Workers import { createClient } from 'wasmtp/workers/tls'; elsewhere from 'wasmtp'.",
        'tls',
      );
    }
    if (!source && variant === 'dkim') {
      throw SmtpError.input('DKIM signing needs the dkim build of the engine, which this entry point does not load.', "import createClient from 'wasmtp' (Node, Deno, Bun), 'wasmtp/workers' or 'wasmtp/browser'.", 'data');
    }
    if (!source) {
      throw new Error(`wasmtp: no wasm engine registered; import "wasmtp" (or "wasmtp/workers"), not an internal module`);
    }
    try {
      // Bytes compile (off the main thread) while the glue module loads.
      const [glue, loaded] = await Promise.all([source.glue(), Promise.resolve(source.load()).then(compileBytes)]);
      if (loaded.compiled) {
        // Instantiate what was compiled here with initSync: the glue's async
        // path tests for `Response`, which in Node loads the whole fetch
        // implementation (undici): some 20 ms at start-up.
        glue.initSync({ module: loaded.compiled });
      } else {
        await glue.default({ module_or_path: loaded.given });
      }
      return glue;
    } catch (cause) {
      throw new Error(
        `wasmtp: could not load the '${variant}' wasm engine (${cause?.message ?? cause}). ` +
          'Its files in the package\'s wasm/ directory are missing or damaged: reinstall wasmtp (in a checkout, run bash scripts/setup-js.sh).',
        { cause },
      );
    }
  })();
  const current = loading[variant];
  // A failed load (missing file...) may be retried by the next call.
  current.catch(() => {
    if (loading[variant] === current) loading[variant] = null;
  });
  return current;
}

/**
 * The public `ready()`: loads, compiles and instantiates the engine now
 * instead of at the first connection (a server's start-up, a warm-up
 * request). Rejects when the wasm cannot be loaded, so a broken install
 * shows before the first message. Calling it again costs nothing.
 * @returns {Promise<void>}
 */
export function ready() {
  return loadEngine('core').then(() => undefined);
}

/** Bytes are compiled here; a Module, Response or URL is left to the glue. */
async function compileBytes(given) {
  if (given instanceof ArrayBuffer || ArrayBuffer.isView(given)) return { compiled: await WebAssembly.compile(given) };
  return { given };
}

function check(variant) {
  if (!(variant in variants)) throw new Error(`wasmtp: unknown engine variant '${variant}'`);
}

let randomSource = (bytes) => globalThis.crypto.getRandomValues(bytes);

/** Replaces the source of random bytes (Node 18 has no global `crypto`). */
export function setRandomSource(fill) {
  randomSource = fill;
}

/** `n` fresh random bytes (MIME boundaries and Message-IDs). */
export function randomBytes(n) {
  return randomSource(new Uint8Array(n));
}
