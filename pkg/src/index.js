// The default entry point: Node.js, Deno and Bun. It picks the runtime's
// transport (Deno.connect / Deno.startTls on Deno, node:net / node:tls on
// Node and Bun; Bun.connect as an opt-in) and reads the wasm artifacts from
// the package directory.
// The TLS-in-wasm artifact is read only when a client asks for it
// (tls: { engine: 'wasm' }), the doctor's only by diagnose().

import { access, constants, readFile } from 'node:fs/promises';

import { setFileReader } from './body.js';
import { setSystemResolver } from './dns/index.js';
import { createClient as createClientWith } from './client.js';
import { memorySpool, setDkimSpool } from './dkim.js';
import { loadEngine, setRandomSource, setWasmSource } from './engine.js';
import { fileSpool } from './file-spool.js';
import { buildMessage as buildMessageWith } from './message.js';
import { setHostNameSource } from './options.js';
import { createOutbox as createOutboxWith } from './outbox/index.js';
import { spoolStore } from './outbox/spool.js';
import { bunTransport } from './transports/bun.js';
import { denoTransport } from './transports/deno.js';
import { nodeTransport } from './transports/node.js';

// Read from the package directory; the engine is used only after one of
// these has loaded, so it is also where Node 18 gets its WebCrypto (below).
const wasmFile = (name) => async () => {
  await webCryptoReady();
  return readFile(new URL(`../wasm/${name}`, import.meta.url));
};
setWasmSource('core', { glue: () => import('../wasm/wasmtp.js'), load: wasmFile('wasmtp_bg.wasm') });
setWasmSource('tls', { glue: () => import('../wasm/wasmtp_tls.js'), load: wasmFile('wasmtp_tls_bg.wasm') });
setWasmSource('doctor', { glue: () => import('../wasm/wasmtp_doctor.js'), load: wasmFile('wasmtp_doctor_bg.wasm') });
setWasmSource('dkim', { glue: () => import('../wasm/wasmtp_dkim.js'), load: wasmFile('wasmtp_dkim_bg.wasm') });
setWasmSource('mx', { glue: () => import('../wasm/wasmtp_mx.js'), load: wasmFile('wasmtp_mx_bg.wasm') });
// A one-shot stream in a DKIM-signed message is spooled to a temporary file
// (in memory, up to its limit, where files cannot be written: Deno without --allow-write).
setDkimSpool(() => fileSpool().catch(() => memorySpool()));

// Attachments and bodies given as { path }: checked before connecting, then
// read in chunks as the message is sent.
setFileReader({
  check: (path) => access(path, constants.R_OK),
  async *open(path) {
    // Stopping early (the message failed) destroys the stream, closing the file.
    const { createReadStream } = await import('node:fs');
    yield* createReadStream(path, { highWaterMark: 64 * 1024 });
  },
});

// The EHLO name defaults to this machine's name (node:os, also on Deno and
// Bun), imported on the first connection.
setHostNameSource(() => import('node:os').then((os) => os.hostname()));

// DNS (MX delivery, the domain doctor): Deno.resolveDns on Deno, node:dns
// on Node and Bun, imported on the first lookup.
setSystemResolver(() =>
  globalThis.Deno?.resolveDns ? import('./dns/deno.js').then((m) => m.denoLookup()) : import('./dns/node.js').then((m) => m.nodeLookup()),
);

// Node 18 has no global `crypto` (the TLS artifact's ring reads it too).
// It is imported with the first wasm artifact rather than at start-up: no
// top-level await, so the entry can also be a CommonJS module
// (require('wasmtp')). `in`, not a read: Node builds its global `crypto`
// (WebCrypto and the streams it needs, ~2 ms) on first access, which
// start-up need not pay.
let webCrypto = null;
function webCryptoReady() {
  if ('crypto' in globalThis) return undefined;
  webCrypto ??= import('node:crypto').then(({ webcrypto }) => {
    setRandomSource((bytes) => webcrypto.getRandomValues(bytes));
    globalThis.crypto ??= webcrypto;
  });
  return webCrypto;
}

/** Which runtime this is: 'deno', 'bun' or 'node'. */
export const runtime = globalThis.Deno?.version?.deno ? 'deno' : globalThis.Bun?.version ? 'bun' : 'node';

/** The transport this runtime uses unless `transport` is passed. */
// Bun: node:net / node:tls (see transports/bun.js for why not Bun.connect).
export const defaultTransport = runtime === 'deno' ? denoTransport : nodeTransport;

/** Creates a client; see index.d.ts. Uses the runtime's sockets unless `transport` is given. */
export function createClient(options) {
  return createClientWith(options, transportFor(options));
}

/**
 * The default transport for these options. On Deno: Deno.connect /
 * Deno.startTls, unless an option needs what only Deno's node:net /
 * node:tls can do (a client certificate, a cipher list, a local address,
 * a TLS 1.3 minimum: Deno.startTls does not report the version it
 * negotiated); then the node:net / node:tls transport.
 */
function transportFor(options) {
  if (runtime !== 'deno') return defaultTransport;
  const tls = options?.tls ?? {};
  const runtimeTls = tls.engine !== 'wasm';
  const needsNodeTls =
    options?.localAddress != null ||
    (runtimeTls && (tls.minVersion === 'TLSv1.3' || ['cert', 'key', 'pfx', 'passphrase', 'ciphers'].some((key) => tls[key] != null)));
  return needsNodeTls ? denoNodeTransport : denoTransport;
}

/** nodeTransport, named for Deno in its errors. */
const denoNodeTransport = { ...nodeTransport, supports: Object.freeze({ ...nodeTransport.supports, runtime: 'Deno (node:tls)' }) };

/** Probes 465 / 587 / 25 and explains what works and why not; see index.d.ts. */
export function diagnose(options) {
  // Loaded on first use: start-up does not pay for the doctor's module.
  return import('./diagnose.js').then(({ diagnose: diagnoseWith }) => diagnoseWith(options, transportFor(options)));
}

/** A durable outbox with retries; the store defaults to a spool directory ./wasmtp-outbox. See index.d.ts. */
export function createOutbox(options) {
  return createOutboxWith(options, { defaultStore: () => spoolStore({ dir: 'wasmtp-outbox' }) });
}

/** The message `send` would transmit, built without sending: { envelope, messageId, raw } (or `stream`). See index.d.ts. */
export async function buildMessage(message, options) {
  return buildMessageWith(await loadEngine('core'), message, options);
}

export { createTestClient } from './capture.js';
export { oauth2 } from './oauth2.js';
export { createResolver } from './dns/index.js';
export { ready } from './engine.js';
export { SmtpError } from './errors.js';
export { bullmqStore } from './outbox/bullmq.js';
export { spoolStore };
export { bunTransport, denoTransport, nodeTransport };
