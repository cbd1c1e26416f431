// Loads the wasm engine once per process. Each entry point (Node, Workers...)
// registers how to obtain the module: bytes read from disk, a precompiled
// `WebAssembly.Module` (workerd cannot compile from bytes), or a URL.

import init, * as engine from '../wasm/wasmtp.js';

let source = null;
let loading = null;

/**
 * Registers where the wasm module comes from: a function returning (a
 * promise of) bytes, a `WebAssembly.Module`, a `Response` or a URL.
 */
export function setWasmSource(load) {
  source = load;
}

/** The initialised bindings (`Connection`, `Options`, `Envelope`...). */
export function loadEngine() {
  loading ??= (async () => {
    if (!source) throw new Error('wasmtp: no wasm source registered; import "wasmtp" (or "wasmtp/workers"), not an internal module');
    const module_or_path = await source();
    await init({ module_or_path });
    return engine;
  })();
  // A failed load (missing file...) may be retried by the next call.
  loading.catch(() => {
    loading = null;
  });
  return loading;
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
