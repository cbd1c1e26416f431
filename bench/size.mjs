#!/usr/bin/env node
// Sizes of the two wasm artifacts of the npm package (raw, gzip -9,
// brotli -q 11), with their wasm-bindgen glue for reference. Exits non-zero
// when an artifact is over its budget (gzip):
//   core (pkg/wasm/wasmtp_bg.wasm)     100 KB  — every client pays for it
//   tls  (pkg/wasm/wasmtp_tls_bg.wasm) 350 KB  — only tls: { engine: 'wasm' }
//   dkim (pkg/wasm/wasmtp_dkim_bg.wasm) 130 KB — only clients that sign (DKIM; the core's bindings too)
//   mx   (pkg/wasm/wasmtp_mx_bg.wasm)    30 KB — only clients with mx: true (host order, MTA-STS)
// KB = 1000 bytes. Usage: node bench/size.mjs [--json]

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const WASM = join(dirname(fileURLToPath(import.meta.url)), '..', 'pkg', 'wasm');
const ARTIFACTS = [
  { name: 'core', file: 'wasmtp_bg.wasm', glue: 'wasmtp.js', budgetGzip: 100_000 },
  { name: 'tls', file: 'wasmtp_tls_bg.wasm', glue: 'wasmtp_tls.js', budgetGzip: 350_000 },
  { name: 'dkim', file: 'wasmtp_dkim_bg.wasm', glue: 'wasmtp_dkim.js', budgetGzip: 130_000 },
  { name: 'mx', file: 'wasmtp_mx_bg.wasm', glue: 'wasmtp_mx.js', budgetGzip: 30_000 },
];

// GNU gzip -9 when present (what the budgets were set with): Node's zlib
// (Chromium's fork) compresses wasm about 4% worse at the same level.
const gnuGzip = (() => {
  try {
    return /GNU|gzip 1\./.test(execFileSync('gzip', ['--version'], { encoding: 'utf8' }).split('\n')[0]);
  } catch {
    return false;
  }
})();
const gzipTool = gnuGzip ? 'gzip -9 (GNU)' : "zlib level 9 (Node; GNU gzip not found)";

function gzipSize(bytes) {
  if (gnuGzip) return execFileSync('gzip', ['-9', '-n', '-c'], { input: bytes, maxBuffer: 64 << 20 }).length;
  return gzipSync(bytes, { level: 9 }).length;
}

function sizes(bytes) {
  return {
    raw: bytes.length,
    gzip: gzipSize(bytes),
    brotli: brotliCompressSync(bytes, {
      params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
    }).length,
  };
}

const kb = (n) => `${(n / 1000).toFixed(1)} KB`;
const report = [];
let over = false;
for (const a of ARTIFACTS) {
  const path = join(WASM, a.file);
  if (!existsSync(path)) {
    console.error(`bench/size: ${path} is missing; run scripts/build-wasm.sh`);
    process.exit(2);
  }
  const wasm = sizes(readFileSync(path));
  if (wasm.raw < 1000) {
    console.error(`bench/size: ${path} is ${wasm.raw} bytes: a build is in progress or failed; run scripts/build-wasm.sh`);
    process.exit(2);
  }
  const glue = sizes(readFileSync(join(WASM, a.glue)));
  const ok = wasm.gzip <= a.budgetGzip;
  over ||= !ok;
  report.push({ artifact: a.name, file: `pkg/wasm/${a.file}`, ...wasm, budgetGzip: a.budgetGzip, ok, glue });
}

if (process.argv.includes('--json')) {
  console.log(JSON.stringify({ gzip: gzipTool, artifacts: report }, null, 2));
} else {
  console.log(`wasm artifact sizes (gzip: ${gzipTool}; brotli: quality 11; KB = 1000 bytes)`);
  console.log('artifact  raw        gzip       brotli     budget (gzip)   glue js (gzip)');
  for (const r of report) {
    console.log(
      `${r.artifact.padEnd(9)} ${kb(r.raw).padEnd(10)} ${kb(r.gzip).padEnd(10)} ${kb(r.brotli).padEnd(10)} ` +
        `${`${kb(r.budgetGzip)} ${r.ok ? 'ok' : 'OVER'}`.padEnd(15)} ${kb(r.glue.gzip)}`,
    );
  }
}
if (over) {
  console.error('bench/size: an artifact is over its gzip budget');
  process.exit(1);
}
