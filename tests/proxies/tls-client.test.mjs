// TLS client settings and proxies on every runtime: client certificates
// (PEM, encrypted PEM + passphrase, PKCS#12, and TLS inside the engine)
// against smtp-server instances that require one (requestCert +
// rejectUnauthorized, the test CA), minVersion against a TLS 1.2-only
// server on every path, ciphers, localAddress, and sends through danted
// and tinyproxy. The cases (cases.mjs) run in this Node.js process, then in
// Deno and Bun (harness.mjs, the binaries from tests/runtimes/node_modules).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { createClient } from '../../pkg/src/index.js';
import { startServer } from '../../pkg/test/helpers/server.js';
import { runCases } from './cases.mjs';
import { certificates, PASSPHRASE } from './certs.mjs';
import { DANTE_ADDRESS, SOCKS_PASS, SOCKS_USER, TINYPROXY_ADDRESS, HTTP_PASS, HTTP_USER, startDante, startTinyproxy } from './proxies.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const BIN = join(HERE, '..', 'runtimes', 'node_modules', '.bin');
const LOCAL_ADDRESS = '127.0.0.5';
const certs = certificates();
const servers = {};
const peers = { plain: [], starttls: [], tls: [] };
let dante;
let tinyproxy;
let config;

before(async () => {
  const { key, cert, ca } = certs;
  const requireCert = { key, cert, ca: [ca], requestCert: true, rejectUnauthorized: true };
  servers.certStarttls = await startServer({ tls: 'starttls', ...requireCert });
  servers.certImplicit = await startServer({ tls: 'implicit', ...requireCert });
  servers.tls12Starttls = await startServer({ tls: 'starttls', key, cert, maxVersion: 'TLSv1.2' });
  servers.tls12Implicit = await startServer({ tls: 'implicit', key, cert, maxVersion: 'TLSv1.2' });
  const recordPeers = (into) => (session, callback) => (into.push(session.remoteAddress), callback());
  servers.none = await startServer({ tls: 'none', onConnect: recordPeers(peers.plain) });
  servers.starttls = await startServer({ tls: 'starttls', key, cert, onConnect: recordPeers(peers.starttls) });
  servers.tls = await startServer({ tls: 'implicit', key, cert, onConnect: recordPeers(peers.tls) });
  const ports = Object.values(servers).map((s) => s.port);
  dante = await startDante({ ports, auth: true });
  tinyproxy = await startTinyproxy({ ports });
  config = {
    certs: { ...certs, clientPfx: [...certs.clientPfx], passphrase: PASSPHRASE },
    ports: {
      certStarttls: servers.certStarttls.port,
      certImplicit: servers.certImplicit.port,
      tls12Starttls: servers.tls12Starttls.port,
      tls12Implicit: servers.tls12Implicit.port,
      plain: { none: servers.none.port, starttls: servers.starttls.port, tls: servers.tls.port },
    },
    proxies: {
      socks: `socks5://${encodeURIComponent(SOCKS_USER)}:${encodeURIComponent(SOCKS_PASS)}@127.0.0.1:${dante.port}`,
      http: `http://${HTTP_USER}:${HTTP_PASS}@127.0.0.1:${tinyproxy.port}`,
    },
    wrongProxy: `socks5://${encodeURIComponent(SOCKS_USER)}:wrong@127.0.0.1:${dante.port}`,
    localAddress: LOCAL_ADDRESS,
    runtimeTlsOptions: true,
  };
});

after(async () => {
  await Promise.all([dante, tinyproxy].map((p) => p?.stop()));
  await Promise.all(Object.values(servers).map((s) => s.close()));
});

/** Asserts every case passed and the proxied servers saw only proxies (and localAddress). */
function check(results) {
  const failed = results.filter((r) => !r.ok);
  assert.ok(results.length >= 30, `ran ${results.length} cases`);
  assert.deepEqual(failed, [], failed.map((r) => `${r.name}: ${r.detail}`).join('\n'));
  for (const [mode, seen] of Object.entries(peers)) {
    const allowed = new Set([DANTE_ADDRESS, TINYPROXY_ADDRESS, ...(mode === 'plain' ? [LOCAL_ADDRESS] : [])]);
    assert.ok(seen.length > 0, `${mode}: no connection`);
    for (const peer of seen) assert.ok(allowed.has(peer), `${mode}: a connection came from ${peer}, around the proxy`);
    seen.length = 0;
  }
}

describe('TLS client settings and proxies', () => {
  test('Node.js', async () => {
    const results = await runCases({ createClient, config: config });
    check(results);
    assert.ok(peers.plain.length === 0); // reset by check
  });

  for (const [runtime, args] of [
    ['deno', ['run', '--allow-net', '--allow-read', '--allow-env', '--allow-sys']],
    ['bun', ['run']],
  ]) {
    test(runtime, async () => {
      assert.ok(existsSync(join(BIN, runtime)), `${runtime} is not installed: run scripts/setup-runtimes.sh`);
      const output = await run(join(BIN, runtime), [...args, join(HERE, 'harness.mjs'), JSON.stringify(config)]);
      const line = output.split('\n').find((l) => l.startsWith('RESULT '));
      assert.ok(line, output.slice(-4000));
      const { runtime: detected, results } = JSON.parse(line.slice('RESULT '.length));
      assert.equal(detected, runtime);
      check(results);
    });
  }
});

function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DENO_NO_UPDATE_CHECK: '1', DENO_NO_PROMPT: '1' } });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.on('error', reject);
    child.on('exit', () => (clearTimeout(timer), resolve(output)));
  });
}
