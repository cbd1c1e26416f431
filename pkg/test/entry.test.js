// The package entry as shipped: `import 'wasmtp'` on Node resolves to the
// bundled dist/index.js (scripts/bundle.mjs). These tests check that the
// bundle is the current source, exports what src/index.js exports, sends a
// message, and that importing it stays cheap: no sockets, TLS or WebCrypto
// loaded before they are used (start-up time itself is measured by
// bench/, not asserted here), and `ready()` loads the engine up front.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

import { bundleOptions } from '../scripts/bundle.mjs';
import * as source from '../src/index.js';
import { startServer } from './helpers/server.js';

const pkgDir = new URL('../', import.meta.url);
const pkgJson = JSON.parse(readFileSync(new URL('package.json', pkgDir), 'utf8'));
const entryUrl = new URL(pkgJson.exports['.'].default, pkgDir);

/** Runs a module body in a fresh Node process and returns what it prints as JSON. */
function fresh(body) {
  const out = execFileSync(process.execPath, ['--input-type=module', '-e', body], { encoding: 'utf8' });
  return JSON.parse(out);
}

test('the package\'s "." export is the bundle, and the bundle is built from the current source', async () => {
  assert.equal(fileURLToPath(entryUrl), fileURLToPath(new URL('dist/index.js', pkgDir)));
  assert.equal(pkgJson.main, pkgJson.exports['.'].default);
  const { outputFiles } = await build({ ...bundleOptions, write: false });
  const expected = outputFiles.find((file) => file.path.endsWith('index.js')).text;
  assert.ok(
    readFileSync(entryUrl, 'utf8') === expected,
    'pkg/dist/index.js is stale: run node pkg/scripts/bundle.mjs (scripts/setup-js.sh does)',
  );
});

test('the bundle exports exactly what src/index.js exports', async () => {
  const bundled = await import(entryUrl.href);
  assert.deepEqual(Object.keys(bundled).sort(), Object.keys(source).sort());
  assert.equal(bundled.runtime, 'node');
  // Names survive bundling (logs and util.inspect show them).
  const error = new bundled.SmtpError({ code: 'EINPUT', phase: 'data', message: 'x' });
  assert.equal(error.constructor.name, 'SmtpError');
  assert.ok(error instanceof bundled.SmtpError);
  for (const name of ['createClient', 'createOutbox', 'diagnose', 'ready', 'spoolStore', 'bullmqStore']) {
    assert.equal(typeof bundled[name], 'function', name);
  }
});

test('importing the entry loads no sockets, TLS or WebCrypto; ready() compiles the engine once', () => {
  const loaded = fresh(`
    let compiles = 0;
    const compile = WebAssembly.compile;
    WebAssembly.compile = (...args) => { compiles += 1; return compile(...args); };
    // Node 18 has no global crypto (the entry then imports node:crypto and sets one).
    const globalCrypto = 'crypto' in globalThis;
    const before = new Set(process.moduleLoadList);
    const wasmtp = await import(${JSON.stringify(entryUrl.href)});
    const atImport = process.moduleLoadList.filter((m) => !before.has(m));
    const compilesAtImport = compiles;
    const first = wasmtp.ready();
    const again = wasmtp.ready();
    await Promise.all([first, again]);
    console.log(JSON.stringify({ atImport, globalCrypto, compilesAtImport, compiles, result: (await wasmtp.ready()) ?? null }));
  `);
  const lazy = ['NativeModule net', 'NativeModule tls'];
  if (loaded.globalCrypto) lazy.push('NativeModule internal/crypto/webcrypto', 'NativeModule crypto');
  for (const name of lazy) {
    assert.ok(!loaded.atImport.includes(name), `${name} loaded at import: ${loaded.atImport.join(', ')}`);
  }
  assert.equal(loaded.compilesAtImport, 0, 'the engine is compiled on first use or ready(), not at import');
  assert.equal(loaded.compiles, 1, 'concurrent and repeated ready() calls share one compilation');
  assert.equal(loaded.result, null);
});

test('ready() names the missing file and the fix when the engine cannot be loaded', () => {
  const { message, cause } = fresh(`
    const engine = await import(${JSON.stringify(new URL('src/engine.js', pkgDir).href)});
    engine.setWasmSource('core', {
      glue: () => import(${JSON.stringify(new URL('wasm/wasmtp.js', pkgDir).href)}),
      load: () => import('node:fs/promises').then((fs) => fs.readFile('/nonexistent/wasmtp_bg.wasm')),
    });
    const error = await engine.ready().then(() => null, (e) => e);
    console.log(JSON.stringify({ message: error?.message, cause: error?.cause?.code }));
  `);
  assert.match(message, /could not load the 'core' wasm engine \(ENOENT.*\/nonexistent\/wasmtp_bg\.wasm/);
  assert.match(message, /reinstall wasmtp/);
  assert.equal(cause, 'ENOENT');
});

let server;
before(async () => {
  server = await startServer();
});
after(() => server.close());

test('a message sent through the bundled entry arrives intact', async () => {
  const { createClient, ready } = await import(entryUrl.href);
  await ready();
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none' });
  try {
    const result = await client.send({ from: 'ann@example.com', to: 'bob@example.org', subject: 'bundled', text: 'Hello from dist/.' });
    assert.deepEqual(result.accepted, ['bob@example.org']);
    const got = server.messages.at(-1).raw.toString('utf8');
    assert.match(got, /^Subject: bundled\r$/m);
    assert.match(got, /Hello from dist\//);
  } finally {
    await client.close();
  }
});
