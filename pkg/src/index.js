// The Node.js entry point (also Deno and Bun, through their node: modules).

import { webcrypto } from 'node:crypto';
import { readFile } from 'node:fs/promises';

import { createClient as createClientWith } from './client.js';
import { diagnose as diagnoseWith } from './diagnose.js';
import { setRandomSource, setWasmSource } from './engine.js';
import { nodeTransport } from './transports/node.js';

setWasmSource(() => readFile(new URL('../wasm/wasmtp_bg.wasm', import.meta.url)));
setRandomSource((bytes) => webcrypto.getRandomValues(bytes));

/** Creates a client; see index.d.ts. Uses node:net / node:tls unless `transport` is given. */
export function createClient(options) {
  return createClientWith(options, nodeTransport);
}

/** Probes 465 / 587 / 25 and explains what works and why not; see index.d.ts. */
export function diagnose(options) {
  return diagnoseWith(options, nodeTransport);
}

export { SmtpError } from './errors.js';
export { nodeTransport };
