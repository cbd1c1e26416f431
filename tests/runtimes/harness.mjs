// Runs the send suite in the runtime executing this file (node, deno or
// bun), through the package's default entry point `wasmtp` (resolved by the
// runtime from the exports map, via tests/runtimes/node_modules/wasmtp).
// The configuration comes as one JSON argument; the outcome is printed as
// one line starting with RESULT.

import * as wasmtp from 'wasmtp';

import { runSuite } from './suite.js';

const arg = globalThis.Deno ? globalThis.Deno.args[0] : globalThis.process.argv[2];
const config = JSON.parse(arg);

// `transport` lets the runner compare transports in one runtime (Bun: node:net vs Bun.connect).
const transport = config.transport ? wasmtp[`${config.transport}Transport`] : undefined;
const createClient = transport ? (options) => wasmtp.createClient({ transport, ...options }) : wasmtp.createClient;

const outcome = await runSuite({
  createClient,
  oauth2: wasmtp.oauth2,
  ready: wasmtp.ready,
  SmtpError: wasmtp.SmtpError,
  config: { ...config, runtime: config.label ?? wasmtp.runtime },
});
console.log(`RESULT ${JSON.stringify({ detected: wasmtp.runtime, ...outcome })}`);
if (globalThis.Deno) globalThis.Deno.exit(0);
else globalThis.process.exit(0);
