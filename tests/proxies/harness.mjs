// Runs cases.mjs in the runtime executing this file (deno or bun) through
// the package's default entry, and prints one line: RESULT <json>.

import * as wasmtp from '../../pkg/src/index.js';

import { runCases } from './cases.mjs';

const arg = globalThis.Deno ? globalThis.Deno.args[0] : globalThis.process.argv[2];
const results = await runCases({ createClient: wasmtp.createClient, config: JSON.parse(arg) });
console.log(`RESULT ${JSON.stringify({ runtime: wasmtp.runtime, results })}`);
if (globalThis.Deno) globalThis.Deno.exit(0);
else globalThis.process.exit(0);
