// Secrets: the test password and token never appear in a transcript, an
// error (message, hint, reply, transcript, inspect output), a result, a
// diagnose() report, or the output of the CLI — for every SASL mechanism,
// on success, refusal, a drop and a stall in the middle of AUTH. Every other
// test file runs the same scanner over everything it sees (kit/harness.js);
// this file makes the secrets actually flow, and proves the scanner would
// see them (positive controls).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';

import { createOutbox, diagnose, oauth2, spoolStore } from '../../pkg/src/index.js';
import { startTokenEndpoint } from '../../pkg/test/helpers/token-endpoint.js';
import { GREET, QUIT, starttlsUp, transaction } from '../kit/dialogs.mjs';
import { startFakeServer } from '../kit/fake-server.mjs';
import {
  CLIENT_SECRET,
  FRESH_TOKEN,
  PASSWORD,
  REFRESH_TOKEN,
  SHORT_TIMEOUTS,
  TOKEN,
  USER,
  ca,
  client,
  findSecrets,
  passwordAuth,
  rawMessage,
  scanner,
  settle,
  tokenAuth,
  useSecretScanner,
} from '../kit/harness.mjs';

useSecretScanner();

const b64 = (s) => Buffer.from(s, 'latin1').toString('base64');
const CLI = fileURLToPath(new URL('../../pkg/bin/wasmtp.js', import.meta.url));

/** The AUTH exchange per mechanism, as the server side of a script: success, then refusal. */
const MECHANISMS = {
  PLAIN: { auth: passwordAuth, ok: 'C~ ^AUTH PLAIN \\S+$\nS: 235 2.7.0 ok', refused: 'C~ ^AUTH PLAIN \\S+$\nS: 535 5.7.8 Authentication credentials invalid' },
  LOGIN: {
    auth: passwordAuth,
    ok: 'C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC~ ^\\S+$\nS: 334 UGFzc3dvcmQ6\nC~ ^\\S+$\nS: 235 2.7.0 ok',
    refused: 'C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC~ ^\\S+$\nS: 334 UGFzc3dvcmQ6\nC~ ^\\S+$\nS: 535 5.7.8 nope',
  },
  'CRAM-MD5': {
    auth: passwordAuth,
    ok: `C: AUTH CRAM-MD5\nS: 334 ${b64('<1896.697170952@mx.test>')}\nC~ ^\\S+$\nS: 235 2.7.0 ok`,
    refused: `C: AUTH CRAM-MD5\nS: 334 ${b64('<1896.697170952@mx.test>')}\nC~ ^\\S+$\nS: 535 5.7.8 nope`,
  },
  XOAUTH2: {
    auth: tokenAuth,
    ok: 'C~ ^AUTH XOAUTH2 \\S+$\nS: 235 2.7.0 ok',
    refused: `C~ ^AUTH XOAUTH2 \\S+$\nS: 334 ${b64('{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}')}\nC:\nS: 535 5.7.8 Username and Password not accepted`,
  },
  OAUTHBEARER: {
    auth: tokenAuth,
    ok: 'C~ ^AUTH OAUTHBEARER \\S+$\nS: 235 2.7.0 ok',
    refused: `C~ ^AUTH OAUTHBEARER \\S+$\nS: 334 ${b64('{"status":"invalid_token"}')}\nC~ ^\\S*$\nS: 535 5.7.8 nope`,
  },
};

describe('the scanner itself (positive controls)', () => {
  test('it finds the password and token in clear and base64-encoded as every mechanism sends them', () => {
    assert.ok(findSecrets(`x ${PASSWORD} y`).length > 0);
    assert.ok(findSecrets(`AUTH PLAIN ${b64(`\0${USER}\0${PASSWORD}`)}`).length > 0);
    assert.ok(findSecrets(b64(PASSWORD)).length > 0);
    assert.ok(findSecrets(`AUTH XOAUTH2 ${b64(`user=${USER}\x01auth=Bearer ${TOKEN}\x01\x01`)}`).length > 0);
    assert.ok(findSecrets(`AUTH OAUTHBEARER ${b64(`n,a=${USER},\x01host=mx.test\x01port=587\x01auth=Bearer ${TOKEN}\x01\x01`)}`).length > 0);
    assert.deepEqual(findSecrets('AUTH PLAIN <redacted> 235 2.7.0 ok ann@example.com'), []);
  });

  test('the fake server really received the secrets the client kept out of its logs', async () => {
    const server = await startFakeServer({ script: `${starttlsUp([], ['AUTH PLAIN'])}\n${MECHANISMS.PLAIN.ok}\n${QUIT}` });
    const c = client(server.port, { security: 'starttls', auth: passwordAuth });
    assert.equal((await settle(c.verify())).ok, true);
    await c.close();
    const conn = await server.connection(0);
    await settle(conn.done);
    assert.ok(findSecrets(conn.bytes().toString('latin1')).length > 0, 'the credentials crossed the (TLS) connection');
    assert.deepEqual(findSecrets(conn.describe()), [], 'the kit redacts them from its own printouts');
    await server.close();
  });
});

describe('every SASL mechanism, over STARTTLS', { concurrency: 5 }, () => {
  for (const [mechanism, spec] of Object.entries(MECHANISMS)) {
    const offer = ['AUTH PLAIN LOGIN CRAM-MD5 XOAUTH2 OAUTHBEARER'];
    const auth = { ...spec.auth, method: mechanism };

    test(`${mechanism}: success, a message sent, the transcript and result carry no secret`, async () => {
      const lines = [];
      const server = await startFakeServer({ script: `${starttlsUp([], offer)}\n${spec.ok}\n${transaction()}\n${QUIT}` });
      const c = client(server.port, { security: 'starttls', auth, lines });
      const sent = await settle(c.send(rawMessage()), `${mechanism} send`);
      assert.equal(sent.ok, true, sent.error?.message);
      await settle(c.close());
      assert.ok(lines.some((l) => l.dir === 'C' && l.text.startsWith(`AUTH ${mechanism}`)), 'AUTH is in the transcript, redacted');
      assert.deepEqual(lines.flatMap((l) => findSecrets(l.text)), []);
      await server.close();
    });

    test(`${mechanism}: refused (535): EAUTH whose message, hint, transcript and inspect output carry no secret`, async () => {
      const server = await startFakeServer({ script: `${starttlsUp([], offer)}\n${spec.refused}\n` });
      const c = client(server.port, { security: 'starttls', auth });
      const sent = await settle(c.send(rawMessage()), `${mechanism} refused`);
      assert.equal(sent.ok, false);
      assert.equal(sent.error.code, 'EAUTH', sent.error.message);
      assert.equal(sent.error.phase, 'auth');
      scanner.add('inspect(err)', inspect(sent.error, { depth: 10 }));
      scanner.add('String(err)', String(sent.error));
      assert.deepEqual(findSecrets(inspect(sent.error, { depth: 10 })), []);
      await settle(c.close());
      await server.close();
    });

    for (const fault of ['CLOSE', 'STALL']) {
      test(`${mechanism}: the server ${fault === 'CLOSE' ? 'hangs up' : 'stalls'} right after the credentials: no secret in the error`, async () => {
        const firstLine = spec.ok.split('\n')[0];
        const script = mechanism === 'LOGIN' || mechanism === 'CRAM-MD5'
          ? `${starttlsUp([], offer)}\n${spec.ok.split('\n').slice(0, 3).join('\n')}\n${fault}`
          : `${starttlsUp([], offer)}\n${firstLine}\n${fault}`;
        const server = await startFakeServer({ script });
        const c = client(server.port, { security: 'starttls', auth, timeouts: SHORT_TIMEOUTS });
        const sent = await settle(c.send(rawMessage()));
        assert.equal(sent.ok, false);
        assert.equal(sent.error.code, fault === 'CLOSE' ? 'ECLOSED' : 'ETIMEDOUT', sent.error.message);
        assert.equal(sent.error.phase, 'auth');
        scanner.add('inspect(err)', inspect(sent.error, { depth: 10 }));
        await settle(c.close());
        await server.close();
      });
    }
  }

  test('allowInsecureAuth over plaintext: the transcript is redacted there too', async () => {
    const lines = [];
    const server = await startFakeServer({ script: `${GREET}\nC: EHLO client.test\nS: 250-mx.test\nS: 250 AUTH PLAIN\n${MECHANISMS.PLAIN.ok}\n${QUIT}` });
    const c = client(server.port, { security: 'none', allowInsecureAuth: true, auth: passwordAuth, lines });
    assert.equal((await settle(c.verify())).ok, true);
    await c.close();
    assert.ok(lines.some((l) => l.text === 'AUTH PLAIN <redacted>'));
    await server.close();
  });

  test('diagnose() with credentials: the report (and its transcript) carries no secret', async () => {
    // diagnose() may open several connections per port (before/after TLS, login): each gets the same dialog.
    const server = await startFakeServer({ script: `${starttlsUp([], ['AUTH PLAIN'])}\n${MECHANISMS.PLAIN.refused}\n` });
    const report = await diagnose({
      host: '127.0.0.1',
      auth: passwordAuth,
      clientName: 'client.test',
      tls: { ca: ca() },
      timeouts: SHORT_TIMEOUTS,
      probes: [{ port: server.port, security: 'starttls' }],
      onTranscript: scanner.transcript('diagnose onTranscript'),
    });
    scanner.value(report, 'diagnose report');
    assert.ok(report && typeof report === 'object');
    assert.ok(server.connections.some((k) => k.sent(/^AUTH PLAIN /)), 'diagnose tried the credentials');
    assert.deepEqual(findSecrets(JSON.stringify(report)), []);
    assert.deepEqual(findSecrets(inspect(report, { depth: 20 })), []);
    await server.close();
  });
});

describe('token providers: no access token, refresh token or client secret in any output or outbox record', () => {
  const offer = ['AUTH XOAUTH2'];
  const challenge = b64('{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}');
  const refusal = `C~ ^AUTH XOAUTH2 \\S+$\nS: 334 ${challenge}\nC:\nS: 535 5.7.8 Username and Password not accepted`;
  const ok = 'C~ ^AUTH XOAUTH2 \\S+$\nS: 235 2.7.0 ok';
  const tokenAnswer = (accessToken) => ({ status: 200, body: { access_token: accessToken, token_type: 'Bearer', expires_in: 3600 } });

  /** A token endpoint that hands out TOKEN, then FRESH_TOKEN (or what `respond` says); and oauth2() for it. */
  async function endpointAndProvider(respond = (form, n) => tokenAnswer(n === 1 ? TOKEN : FRESH_TOKEN)) {
    const endpoint = await startTokenEndpoint({ respond });
    const provider = oauth2({ tokenUrl: endpoint.url, clientId: 'client.test', clientSecret: CLIENT_SECRET, refreshToken: REFRESH_TOKEN });
    return { endpoint, provider };
  }

  test('a refused token, renewed: the transcript and result carry neither token; the server got both', async () => {
    const { endpoint, provider } = await endpointAndProvider();
    const lines = [];
    const server = await startFakeServer({ script: `${starttlsUp([], offer)}\n${refusal}\n${ok}\n${transaction()}\n${QUIT}` });
    const c = client(server.port, { security: 'starttls', auth: { user: USER, accessToken: provider }, lines });
    const sent = await settle(c.send(rawMessage()), 'renewed send');
    assert.equal(sent.ok, true, sent.error?.message);
    await settle(c.close());
    assert.deepEqual(lines.flatMap((l) => findSecrets(l.text)), []);
    assert.equal(lines.filter((l) => l.text === 'AUTH XOAUTH2 <redacted>').length, 2);
    const conn = await server.connection(0);
    await settle(conn.done);
    const received = findSecrets(conn.bytes().toString('latin1'));
    assert.ok(received.some((f) => f.startsWith('the token')), 'positive control: the stale token crossed the connection');
    assert.ok(received.some((f) => f.startsWith('the fresh token')), 'positive control: the fresh token crossed the connection');
    // The endpoint really received the refresh token and the client secret (form-encoded).
    assert.ok(findSecrets(endpoint.calls.map(String).join('&')).some((f) => f.startsWith('the refresh token')));
    await server.close();
    await endpoint.close();
  });

  test('refused twice, and a revoked refresh token: EAUTH whose message, hint, transcript and inspect output carry no secret', async () => {
    const { endpoint, provider } = await endpointAndProvider();
    const server = await startFakeServer({ script: `${starttlsUp([], offer)}\n${refusal}\n${refusal}\n${QUIT}` });
    const c = client(server.port, { security: 'starttls', auth: { user: USER, accessToken: provider } });
    const twice = await settle(c.send(rawMessage()), 'refused twice');
    assert.equal(twice.error?.code, 'EAUTH');
    scanner.add('inspect(err)', inspect(twice.error, { depth: 10 }));
    await settle(c.close());
    await server.close();
    await endpoint.close();

    const revoked = await endpointAndProvider(() => ({ status: 400, body: { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' } }));
    const d = client(1, { auth: { user: USER, accessToken: revoked.provider } });
    const refused = await settle(d.send(rawMessage()), 'revoked');
    assert.equal(refused.error?.code, 'EAUTH');
    assert.match(refused.error.hint, /revoked/);
    scanner.add('inspect(err)', inspect(refused.error, { depth: 10 }));
    await settle(d.close());
    await revoked.endpoint.close();
  });

  test("the outbox's stored records (spool files) carry no secret after a refused and a failed renewal", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasmtp-faults-outbox-'));
    const { endpoint, provider } = await endpointAndProvider((form, n) => (n === 1 ? tokenAnswer(TOKEN) : { status: 503, body: { error: 'temporarily_unavailable' } }));
    const server = await startFakeServer({ script: `${starttlsUp([], offer)}\n${refusal}\n${QUIT}` });
    const c = client(server.port, { security: 'starttls', auth: { user: USER, accessToken: provider } });
    const outbox = createOutbox({ client: c, store: spoolStore({ dir }), retry: { maxAttempts: 1 } });
    try {
      const id = await outbox.enqueue(rawMessage());
      await outbox.work({ concurrency: 1 });
      let status;
      for (let i = 0; i < 200 && !['failed', 'sent'].includes(status?.state); i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        status = await outbox.status(id);
      }
      assert.equal(status.state, 'failed', JSON.stringify(status));
      assert.equal(status.error.code, 'EAUTH');
      scanner.value(status, 'outbox status');
      const files = readdirSync(dir, { recursive: true }).map((f) => join(dir, String(f))).filter((f) => statSync(f).isFile());
      assert.ok(files.length > 0);
      for (const file of files) scanner.add(`outbox file ${file.slice(dir.length)}`, readFileSync(file, 'latin1'));
      assert.deepEqual(files.flatMap((f) => findSecrets(readFileSync(f, 'latin1'))), []);
    } finally {
      await outbox.close();
      await settle(c.close());
      await server.close();
      await endpoint.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the CLI (a child process): stdout and stderr carry no secret', { concurrency: 3 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-faults-'));
  const caFile = join(dir, 'ca.pem');
  writeFileSync(caFile, ca());
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

  /** Runs the CLI; resolves { code, stdout, stderr } (all scanned). */
  function cli(args, env = {}) {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => (stdout += d));
      child.stderr.on('data', (d) => (stderr += d));
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        scanner.add('cli stdout', stdout);
        scanner.add('cli stderr', stderr);
        resolve({ code, stdout, stderr });
      });
    });
  }

  const common = (port) => ['--host', '127.0.0.1', '--port', String(port), '--security', 'starttls', '--ca', caFile, '--client-name', 'client.test', '--user', USER];
  const send = ['--from', 'ann@example.com', '--to', 'bob@example.org', '--subject', 'cli', '--text', 'hello', '-v'];

  for (const [label, args, env] of [
    ['--pass-env, verbose', ['--pass-env', 'FAULTS_PASS'], { FAULTS_PASS: PASSWORD }],
    ['WASMTP_PASSWORD, verbose, --json', ['--json'], { WASMTP_PASSWORD: PASSWORD }],
    ['--pass on the command line, verbose', ['--pass', PASSWORD], {}],
    ['--token-env (XOAUTH2), verbose', ['--token-env', 'FAULTS_TOKEN', '--auth-method', 'XOAUTH2'], { FAULTS_TOKEN: TOKEN }],
  ]) {
    for (const outcome of ['ok', 'refused']) {
      test(`send with ${label}: ${outcome}`, async () => {
        const mech = label.includes('XOAUTH2') ? MECHANISMS.XOAUTH2 : MECHANISMS.PLAIN;
        const script = outcome === 'ok'
          ? `${starttlsUp([], ['AUTH PLAIN XOAUTH2'])}\n${mech.ok}\n${transaction()}\n${QUIT}`
          : `${starttlsUp([], ['AUTH PLAIN XOAUTH2'])}\n${mech.refused}\n`;
        const server = await startFakeServer({ script });
        try {
          const { code, stdout, stderr } = await cli(['send', ...common(server.port), ...args, ...send], env);
          assert.equal(code, outcome === 'ok' ? 0 : 1, `${stdout}\n${stderr}`);
          assert.match(stderr, /AUTH (PLAIN|XOAUTH2)/, 'the verbose dialog was printed');
          if (outcome === 'refused') assert.match(stderr, /EAUTH/);
          assert.deepEqual(findSecrets(stdout + stderr), []);
        } finally {
          await server.close();
        }
      });
    }
  }
});
