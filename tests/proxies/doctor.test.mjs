// The doctor behind a proxy: `wasmtp doctor --proxy URL` (and diagnose()
// with `proxy`) probes through danted / tinyproxy, and a proxy that refuses
// the credentials is reported as EPROXY, not as a server that is down.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import { diagnose } from '../../pkg/src/index.js';
import { startServer } from '../../pkg/test/helpers/server.js';
import { certificates } from './certs.mjs';
import { DANTE_ADDRESS, HTTP_PASS, HTTP_USER, startDante, startTinyproxy } from './proxies.mjs';

const CLI = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'pkg', 'bin', 'wasmtp.js');
const { key, cert, ca, clientCert, clientKey } = certificates();
let server;
let dante;
let tinyproxy;
const peers = [];

before(async () => {
  server = await startServer({
    tls: 'starttls',
    key,
    cert,
    ca: [ca],
    requestCert: true,
    rejectUnauthorized: true,
    onConnect(session, callback) {
      peers.push(session.remoteAddress);
      callback();
    },
  });
  dante = await startDante({ ports: [server.port] });
  tinyproxy = await startTinyproxy({ ports: [server.port] });
});

after(async () => {
  await Promise.all([dante?.stop(), tinyproxy?.stop()]);
  await server?.close();
});

/** Runs the CLI without blocking this process (the server lives here). */
function cli(args, env = {}) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 60_000 }, (error, stdout, stderr) =>
      resolve({ status: error ? (error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('diagnose() through SOCKS5 with a client certificate: the port works, every probe came through the proxy', async () => {
  peers.length = 0;
  const report = await diagnose({
    host: 'localhost',
    probes: [{ port: server.port, security: 'starttls' }],
    proxy: `socks5://127.0.0.1:${dante.port}`,
    tls: { ca, cert: clientCert, key: clientKey },
  });
  const codes = report.findings.map((f) => f.code);
  assert.ok(codes.includes('PORT_WORKS'), JSON.stringify(report.findings));
  assert.equal(report.ports[0].tls.authorized, true);
  assert.ok(peers.length > 0);
  assert.deepEqual(new Set(peers), new Set([DANTE_ADDRESS]));
});

test('wasmtp doctor --proxy-env with --cert/--key: the port works', async () => {
  const { writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-doctor-proxy-'));
  try {
    for (const [name, text] of Object.entries({ 'ca.pem': ca, 'client.pem': clientCert, 'client.key': clientKey })) writeFileSync(join(dir, name), text);
    const { status, stdout, stderr } = await cli(
      ['doctor', 'localhost', '--port', String(server.port), '--security', 'starttls', '--proxy-env', 'TEST_PROXY_URL', '--ca', join(dir, 'ca.pem'), '--cert', join(dir, 'client.pem'), '--key', join(dir, 'client.key'), '--json'],
      { TEST_PROXY_URL: `http://${HTTP_USER}:${HTTP_PASS}@127.0.0.1:${tinyproxy.port}` },
    );
    const report = JSON.parse(stdout);
    const works = report.findings.find((f) => f.code === 'PORT_WORKS');
    assert.ok(works && works.port === server.port, `${status}\n${stdout}\n${stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('wasmtp doctor --proxy with refused credentials: EPROXY and its hint, exit status 1', async () => {
  const { status, stderr } = await cli(['doctor', 'localhost', '--port', String(server.port), '--proxy', `http://${HTTP_USER}:wrong@127.0.0.1:${tinyproxy.port}`]);
  assert.equal(status, 1, stderr);
  assert.match(stderr, /EPROXY \(proxy\): proxy http:\/\/127\.0\.0\.1:\d+: refused the credentials/);
  assert.match(stderr, /hint: check the user and password/);
  assert.ok(!stderr.includes('wrong'), 'the password is not printed');
});
