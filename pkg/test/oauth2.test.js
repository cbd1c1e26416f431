// OAuth2 that keeps working: auth.accessToken as a token provider and the
// ready-made oauth2() refresh-token provider, against a real SMTP server
// (smtp-server, XOAUTH2 over STARTTLS) and a local token endpoint: tokens
// cached until shortly before they expire and shared by a pool's
// connections, a refused token refreshed once and AUTH retried on the same
// connection, EAUTH after a second refusal or a revoked refresh token, and
// no token in transcripts or errors.

import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';

import { createClient, diagnose, oauth2 } from '../src/index.js';
import { testCertificates } from './helpers/certs.js';
import { USER, startServer } from './helpers/server.js';
import { startTokenEndpoint } from './helpers/token-endpoint.js';

const { ca } = testCertificates();
const CLIENT_ID = 'client-id.apps.example';
const CLIENT_SECRET = 'client-secret-Zq81';
const REFRESH_TOKEN = '1//refresh-token-Kx42';
const raw = 'From: ann@example.com\r\nTo: bob@example.org\r\nSubject: oauth2\r\n\r\nhello\r\n';
const message = { raw, envelope: { from: 'ann@example.com', to: ['bob@example.org'] } };

/** An SMTP server whose XOAUTH2 accepts the tokens `accepts` approves; `tokens` lists every token tried. */
async function smtpServer(accepts) {
  const tokens = [];
  const server = await startServer({
    tls: 'starttls',
    authMethods: ['XOAUTH2'],
    onAuth(auth, session, callback) {
      tokens.push(auth.accessToken);
      if (auth.username === USER && accepts(auth.accessToken)) return callback(null, { user: auth.username });
      // Gmail's way: a 334 with the error document, then 535.
      return callback(null, { data: { status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' } });
    },
  });
  return Object.assign(server, { tokens });
}

function provider(endpoint) {
  return oauth2({ tokenUrl: endpoint.url, clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, refreshToken: REFRESH_TOKEN });
}

function client(server, accessToken, options = {}) {
  const lines = [];
  const c = createClient({
    host: '127.0.0.1',
    port: server.port,
    security: 'starttls',
    tls: { ca },
    auth: { user: USER, accessToken },
    onTranscript: (line) => lines.push(`${line.dir}: ${line.text}`),
    ...options,
  });
  return Object.assign(c, { lines });
}

/** No token, refresh token or client secret anywhere in `text`, plainly or base64-encoded. */
function assertNoSecret(text, where) {
  const secrets = [REFRESH_TOKEN, CLIENT_SECRET, 'tok-'];
  for (const secret of secrets) assert.ok(!text.includes(secret), `${where} contains ${secret === 'tok-' ? 'an access token' : 'a secret'}:\n${text}`);
  for (const match of text.matchAll(/[A-Za-z0-9+/]{16,}={0,2}/g)) {
    const decoded = Buffer.from(match[0], 'base64').toString('latin1');
    assert.ok(!decoded.includes('auth=Bearer'), `${where} contains an AUTH payload`);
  }
}

describe('oauth2(): the refresh-token grant against a local token endpoint', () => {
  test('the form is the refresh-token grant; a token is reused until shortly before it expires', async () => {
    const endpoint = await startTokenEndpoint({ expiresIn: 61 }); // cached for about 1 s (a minute's margin)
    const server = await smtpServer(() => true);
    const tokens = provider(endpoint);
    try {
      const first = client(server, tokens);
      await first.send(message);
      await first.close();
      const form = endpoint.calls[0];
      assert.deepEqual(Object.fromEntries(form), { grant_type: 'refresh_token', refresh_token: REFRESH_TOKEN, client_id: CLIENT_ID, client_secret: CLIENT_SECRET });
      // Another client with the same provider: the cached token, no call.
      const second = client(server, tokens);
      await second.send(message);
      await second.close();
      assert.equal(endpoint.calls.length, 1);
      assert.deepEqual(server.tokens, ['tok-1', 'tok-1']);
      await new Promise((resolve) => setTimeout(resolve, 1200));
      const third = client(server, tokens);
      await third.send(message);
      await third.close();
      assert.equal(endpoint.calls.length, 2, 'refreshed once expired');
      assert.deepEqual(server.tokens, ['tok-1', 'tok-1', 'tok-2']);
      for (const c of [first, second, third]) assertNoSecret(c.lines.join('\n'), 'the transcript');
    } finally {
      await server.close();
      await endpoint.close();
    }
  });

  test('10 concurrent connections of a pool share one token-endpoint call', async () => {
    const endpoint = await startTokenEndpoint({ delayMs: 200 });
    const server = await smtpServer(() => true);
    const c = client(server, provider(endpoint), { pool: { maxConnections: 10 } });
    try {
      await Promise.all(Array.from({ length: 10 }, () => c.send(message)));
      assert.equal(server.connections, 10, 'ten connections');
      assert.equal(endpoint.calls.length, 1);
      assert.deepEqual(new Set(server.tokens), new Set(['tok-1']));
    } finally {
      await c.close();
      await server.close();
      await endpoint.close();
    }
  });

  test('a stale token the server refuses is refreshed once and AUTH retried on the same connection', async () => {
    const endpoint = await startTokenEndpoint();
    const server = await smtpServer((token) => token === 'tok-2');
    const inner = provider(endpoint);
    const asked = [];
    const c = client(server, (ctx) => {
      asked.push(ctx);
      return inner(ctx);
    });
    try {
      const sent = await c.send(message);
      assert.match(sent.response, /^250 /);
      assert.deepEqual(server.tokens, ['tok-1', 'tok-2']);
      assert.equal(server.connections, 1, 'the same connection');
      assert.deepEqual(asked, [{ user: USER, refresh: false }, { user: USER, refresh: true }]);
      const log = c.lines.join('\n');
      assert.equal(log.match(/C: AUTH XOAUTH2 <redacted>/g).length, 2, log);
      assert.match(log, /token refused; asking for a fresh one/);
      assertNoSecret(log, 'the transcript');
    } finally {
      await c.close();
      await server.close();
      await endpoint.close();
    }
  });

  test('ten connections refused at once share one refresh', async () => {
    const endpoint = await startTokenEndpoint({ delayMs: 100 });
    const server = await smtpServer((token) => token === 'tok-2');
    const c = client(server, provider(endpoint), { pool: { maxConnections: 10 } });
    try {
      await Promise.all(Array.from({ length: 10 }, () => c.send(message)));
      assert.equal(endpoint.calls.length, 2, 'the first token and one refresh');
      assert.equal(server.tokens.filter((t) => t === 'tok-1').length, 10);
    } finally {
      await c.close();
      await server.close();
      await endpoint.close();
    }
  });

  test('a fresh token refused too: EAUTH naming the token, after exactly one refresh', async () => {
    const endpoint = await startTokenEndpoint();
    const server = await smtpServer(() => false);
    const c = client(server, provider(endpoint));
    try {
      await assert.rejects(c.send(message), (err) => {
        assert.equal(err.code, 'EAUTH');
        assert.equal(err.phase, 'auth');
        assert.equal(err.reply.code, 535);
        assert.match(err.hint, /fresh token was refused too/);
        assertNoSecret(inspect(err, { depth: 10 }), 'the error');
        return true;
      });
      assert.equal(endpoint.calls.length, 2);
      assert.deepEqual(server.tokens, ['tok-1', 'tok-2']);
    } finally {
      await c.close();
      await server.close();
      await endpoint.close();
    }
  });

  test('a revoked refresh token is EAUTH with a hint: before connecting, or when renewing', async () => {
    const invalidGrant = { status: 400, body: { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' } };
    const revoked = await startTokenEndpoint({ respond: () => invalidGrant });
    const server = await smtpServer((token) => token === 'tok-2');
    const c = client(server, provider(revoked));
    const check = (err) => {
      assert.equal(err.code, 'EAUTH');
      assert.equal(err.phase, 'auth');
      assert.equal(err.retryable, false);
      assert.match(err.message, /invalid_grant: Token has been expired or revoked/);
      assert.match(err.hint, /refresh token was revoked or has expired/);
      assertNoSecret(inspect(err, { depth: 10 }), 'the error');
      return true;
    };
    // Revoked later: the first token works until the server refuses it.
    const later = await startTokenEndpoint({ respond: (form, n) => (n === 1 ? null : invalidGrant) });
    const d = client(server, provider(later));
    try {
      await assert.rejects(c.send(message), check);
      assert.equal(server.connections, 0, 'nothing connected without a token');
      await assert.rejects(d.send(message), check);
      assert.deepEqual(server.tokens, ['tok-1']);
      assert.match(d.lines.at(-1), /^C: QUIT$/, 'the session ended politely');
    } finally {
      await c.close();
      await d.close();
      await server.close();
      await revoked.close();
      await later.close();
    }
  });

  test("the endpoint's other failures: wrong client, an outage, unreachable", async () => {
    const endpoint = await startTokenEndpoint({ respond: (form, n) => (n === 1 ? { status: 401, body: { error: 'invalid_client' } } : { status: 503, body: {} }) });
    const server = await smtpServer(() => true);
    try {
      const wrongClient = client(server, provider(endpoint));
      await assert.rejects(wrongClient.send(message), (err) => err.code === 'EAUTH' && /clientId and clientSecret/.test(err.hint) && !err.retryable);
      await wrongClient.close();
      const outage = client(server, provider(endpoint));
      await assert.rejects(outage.send(message), (err) => err.code === 'EAUTH' && /HTTP 503/.test(err.message) && err.retryable);
      await outage.close();
      const closed = `http://127.0.0.1:${server.port}/nothing-here`; // an SMTP port: not HTTP
      const unreachable = client(server, oauth2({ tokenUrl: closed, clientId: CLIENT_ID, refreshToken: REFRESH_TOKEN }), { timeouts: { command: 3000 } });
      await assert.rejects(unreachable.send(message), (err) => ['EAUTH', 'ETIMEDOUT'].includes(err.code) && err.phase === 'auth' && err.retryable);
      await unreachable.close();
    } finally {
      await server.close();
      await endpoint.close();
    }
  });

  test('diagnose() takes the same provider, and renews a refused token too', async () => {
    const endpoint = await startTokenEndpoint();
    const server = await smtpServer((token) => token === 'tok-2');
    try {
      const report = await diagnose({ host: '127.0.0.1', auth: { user: USER, accessToken: provider(endpoint) }, tls: { ca }, probes: [{ port: server.port, security: 'starttls' }] });
      const [port] = report.ports;
      assert.equal(port.error, null, JSON.stringify(port.error));
      assert.equal(port.auth.method, 'XOAUTH2');
      assert.deepEqual(server.tokens, ['tok-1', 'tok-2']);
      assertNoSecret(JSON.stringify(report), 'the report');
    } finally {
      await server.close();
      await endpoint.close();
    }
  });

  test('options are checked, and secrets are never quoted', () => {
    const good = { tokenUrl: 'https://oauth2.googleapis.com/token', clientId: CLIENT_ID, clientSecret: CLIENT_SECRET, refreshToken: REFRESH_TOKEN };
    assert.equal(typeof oauth2(good), 'function');
    assert.equal(typeof oauth2({ ...good, clientSecret: undefined, tokenUrl: 'https://login.microsoftonline.com/common/oauth2/v2.0/token', scope: 'https://outlook.office.com/SMTP.Send offline_access' }), 'function');
    const cases = [
      [{ ...good, tokenUrl: 'http://oauth.example.com/token' }, /in clear/],
      [{ ...good, tokenUrl: 'not a url' }, /not a URL/],
      [{ ...good, refreshToken: undefined }, /refreshToken is not text/],
      [{ ...good, clientSecret: 42 }, /clientSecret is not text/],
      [{ ...good, client_id: 'x' }, /client_id/],
    ];
    for (const [options, pattern] of cases) {
      assert.throws(() => oauth2(options), (err) => err.code === 'EINPUT' && pattern.test(err.message) && !err.message.includes(REFRESH_TOKEN), JSON.stringify(Object.keys(options)));
    }
  });
});

describe('auth.accessToken as a function', () => {
  let server;
  before(async () => {
    server = await smtpServer((token) => token.startsWith('good'));
  });
  after(() => server.close());

  test('{ accessToken, expires } is cached per provider; a bare string is asked for on every connection', async () => {
    let calls = 0;
    const cached = async () => ({ accessToken: `good-${++calls}`, expires: new Date(Date.now() + 3_600_000) });
    for (let i = 0; i < 2; i++) {
      const c = client(server, cached);
      await c.send(message);
      await c.close();
    }
    assert.equal(calls, 1);
    let bare = 0;
    const uncached = () => `good-bare-${++bare}`;
    for (let i = 0; i < 2; i++) {
      const c = client(server, uncached);
      await c.send(message);
      await c.close();
    }
    assert.equal(bare, 2);
  });

  test('a provider that throws or resolves with something else is EAUTH naming the provider', async () => {
    const failing = client(server, () => {
      throw new Error('vault unreachable');
    });
    await assert.rejects(failing.send(message), (err) => err.code === 'EAUTH' && /token provider \(auth\.accessToken\) failed: vault unreachable/.test(err.message));
    await failing.close();
    const wrongShape = client(server, async () => ({ token: 'x' }));
    await assert.rejects(wrongShape.send(message), (err) => err.code === 'EAUTH' && /an object with token/.test(err.message) && /\{ accessToken, expires \}/.test(err.hint));
    await wrongShape.close();
    const seconds = client(server, async () => ({ accessToken: 'good', expires: 3600 }));
    await assert.rejects(seconds.send(message), (err) => err.code === 'EAUTH' && /not a number of seconds/.test(err.hint));
    await seconds.close();
    let called = false;
    const noUser = createClient({ host: '127.0.0.1', port: server.port, tls: { ca }, auth: { accessToken: () => (called = true) } });
    await assert.rejects(noUser.send(message), (err) => err.code === 'EINPUT' && err.phase === 'auth');
    await noUser.close();
    assert.equal(called, false, 'a malformed auth never calls the provider');
    const hanging = client(server, () => new Promise(() => {}), { timeouts: { command: 300 } });
    await assert.rejects(hanging.send(message), (err) => err.code === 'ETIMEDOUT' && err.phase === 'auth' && /token provider/.test(err.message));
    await hanging.close();
  });

  test('with TLS inside the engine the renewal works the same', async () => {
    let calls = 0;
    const renewing = async ({ refresh }) => ({ accessToken: refresh ? 'good-fresh' : 'stale', expires: Date.now() + 3_600_000 + calls++ });
    const c = client(server, renewing, { tls: { ca, engine: 'wasm' } });
    try {
      await c.send(message);
      assert.equal(calls, 2);
      assert.deepEqual(server.tokens.slice(-2), ['stale', 'good-fresh']);
    } finally {
      await c.close();
    }
  });
});
