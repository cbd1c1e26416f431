// One cold send in workerd (through miniflare): a fresh workerd process
// and isolate load wasmtp's Workers entry, send one short message on a
// fresh connection (TLS, AUTH PLAIN) and report. The workerd twin of
// lib/cold.mjs; nodemailer cannot run there, so only wasmtp is measured.
//
//   node lib/cold-workerd.mjs '<json spec>'
// spec: { port, security: 'starttls'|'tls', caPath,
//         tlsEngine?: 'wasm' (wasmtp/workers/tls: TLS inside the engine) }
// prints: { sentMs, sentAt, importMs: null, phases: {} }
//
// The clock starts when the request reaches the worker's fetch handler
// (workerd is up, the modules are compiled: what an edge request pays is
// the engine's instantiation and the send) and stops at the message's
// final reply; the worker reports that moment, so the delay proxy counts
// the round trips up to it, without the QUIT.
// miniflare comes from the runtime suite's install (scripts/test-runtimes.sh).

import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const PKG = join(ROOT, 'pkg');
const spec = JSON.parse(process.argv[2]);
const ca = readFileSync(spec.caPath, 'utf8');
const { Miniflare } = await import(pathToFileURL(join(ROOT, 'tests/runtimes/node_modules/miniflare/dist/src/index.js')).href);

const entry = spec.tlsEngine === 'wasm' ? 'workers-tls.js' : 'workers.js';
const tls = spec.tlsEngine === 'wasm' ? { engine: 'wasm', ca } : {};
const worker = `
import { createClient } from './pkg/src/${entry}';
export default {
  async fetch(request, env, ctx) {
    const started = Date.now();
    const client = createClient({
      host: 'localhost',
      port: ${Number(spec.port)},
      security: ${JSON.stringify(spec.security)},
      tls: ${JSON.stringify(tls)},
      auth: { user: 'bench', pass: 'bench' },
    });
    try {
      await client.send({ from: 'sender@bench.test', to: ['rcpt@bench.test'], subject: 'Cold send', text: 'One short message.\\r\\n' });
    } catch (error) {
      return Response.json({ error: error.code + ': ' + error.message });
    }
    // workerd's clock stands still between I/O events: this is the moment
    // the final reply arrived (epoch ms, the clock the delay proxy uses).
    const sentAt = Date.now();
    ctx.waitUntil(client.close());
    return Response.json({ sentAt, sentMs: sentAt - started });
  },
};`;

const modules = [{ type: 'ESModule', path: join(ROOT, 'cold-worker.js'), contents: worker }];
for (const name of readdirSync(join(PKG, 'src'), { recursive: true })) {
  if (name.endsWith('.js')) modules.push({ type: 'ESModule', path: join(PKG, 'src', name) });
}
for (const name of readdirSync(join(PKG, 'wasm'))) {
  if (name.endsWith('.js')) modules.push({ type: 'ESModule', path: join(PKG, 'wasm', name) });
  if (name.endsWith('.wasm')) modules.push({ type: 'CompiledWasm', path: join(PKG, 'wasm', name) });
}

const mf = new Miniflare({
  modules,
  modulesRoot: ROOT,
  compatibilityDate: '2025-09-01',
  outboundService: {
    network: {
      allow: ['public', 'private'],
      // The platform's TLS trusts the test CA here; TLS in the engine gets it as tls.ca.
      tlsOptions: { trustBrowserCas: true, trustedCertificates: [ca] },
    },
  },
});
try {
  await mf.ready;
  const result = await (await mf.dispatchFetch('http://bench/')).json();
  if (result.error) throw new Error(`workerd cold send failed: ${result.error}`);
  // Wait for the QUIT and the close (waitUntil) before workerd is disposed.
  await new Promise((resolve) => setTimeout(resolve, 500));
  process.stdout.write(JSON.stringify({ ...result, importMs: null, phases: {} }) + '\n');
} finally {
  await mf.dispose();
}
