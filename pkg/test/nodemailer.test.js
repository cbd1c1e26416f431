// wasmtp/nodemailer: nodemailer's createTransport names on wasmtp, against
// real smtp-server instances: sendMail (promise and callback), the options
// (secure, requireTLS, ignoreTLS, name, time-outs, pool, rate, auth with
// OAuth2, logger), nodemailer's result shape and error fields, and refusals.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import nodemailer, { createTransport } from 'wasmtp/nodemailer';

import { testCertificates } from './helpers/certs.js';
import { PASS, TOKEN, USER, startServer } from './helpers/server.js';
import { startTokenEndpoint } from './helpers/token-endpoint.js';

const { ca } = testCertificates();
const HOST = '127.0.0.1';
const mail = { from: 'Ann <ann@example.com>', to: 'bob@example.org', subject: 'hi', text: 'hello' };

describe('wasmtp/nodemailer', () => {
  let plain;
  let starttls;
  let implicit;
  before(async () => {
    plain = await startServer({ tls: 'none', hideDSN: false, authMethods: ['PLAIN', 'LOGIN', 'XOAUTH2'] });
    starttls = await startServer({ tls: 'starttls' });
    implicit = await startServer({ tls: 'implicit' });
  });
  after(async () => {
    await plain.close();
    await starttls.close();
    await implicit.close();
  });

  test('sendMail resolves with nodemailer\'s info; the callback form works too', async () => {
    const transporter = nodemailer.createTransport({ host: HOST, port: plain.port, name: 'mta.example.net' });
    const info = await transporter.sendMail({ ...mail, to: ['bob@example.org', 'reject-me@example.org'], dsn: { id: 'e1', return: 'headers', notify: 'failure,delay' } });
    assert.match(info.messageId, /^<.+@example\.com>$/);
    assert.deepEqual(info.envelope, { from: 'ann@example.com', to: ['bob@example.org', 'reject-me@example.org'] });
    assert.deepEqual(info.accepted, ['bob@example.org']);
    assert.deepEqual(info.rejected, ['reject-me@example.org']);
    assert.equal(info.rejectedErrors[0].responseCode, 550);
    assert.deepEqual(info.pending, []);
    assert.match(info.response, /^250 OK queued as Q\d+$/);
    const got = plain.messages.at(-1);
    assert.equal(got.mailArgs.ENVID, 'e1');
    assert.equal(got.mailArgs.RET, 'HDRS');
    assert.equal(got.rcptArgs[0].NOTIFY, 'FAILURE,DELAY');
    const viaCallback = await new Promise((resolve, reject) => {
      const returned = transporter.sendMail(mail, (error, result) => (error ? reject(error) : resolve(result)));
      assert.equal(returned, undefined);
    });
    assert.deepEqual(viaCallback.accepted, ['bob@example.org']);
    assert.equal(await transporter.verify(), true);
    await transporter.close();
  });

  test('name is the EHLO name; logger gets the dialog; defaults fill messages', async () => {
    const logged = [];
    const transporter = createTransport(
      { host: HOST, port: plain.port, name: 'mta.example.net', logger: { debug: (meta, line) => logged.push([meta.tnx, line]) } },
      { from: 'Defaults <defaults@example.com>', headers: { 'X-App': 'demo' } },
    );
    await transporter.sendMail({ to: 'bob@example.org', text: 'x', headers: { 'X-Extra': { prepared: true, value: 'yes' } } });
    await transporter.close();
    assert.ok(logged.some(([who, line]) => who === 'client' && line === 'EHLO mta.example.net'), JSON.stringify(logged));
    const raw = plain.messages.at(-1).raw.toString();
    assert.match(raw, /^From: Defaults <defaults@example.com>\r\n/m);
    assert.match(raw, /^X-App: demo\r\n/m);
    assert.match(raw, /^X-Extra: yes\r\n/m);
  });

  test('In-Reply-To, References, Sender and Message-ID given as headers become their fields', async () => {
    const transporter = createTransport({ host: HOST, port: plain.port });
    const info = await transporter.sendMail({ ...mail, headers: { 'In-Reply-To': '<a@example.com>', References: '<r@example.com> <a@example.com>', Sender: 'robot@example.com', 'Message-ID': '<mine@example.com>' } });
    await transporter.close();
    assert.equal(info.messageId, '<mine@example.com>');
    const raw = plain.messages.at(-1).raw.toString();
    for (const line of ['In-Reply-To: <a@example.com>', 'References: <r@example.com> <a@example.com>', 'Sender: robot@example.com', 'Message-ID: <mine@example.com>']) {
      assert.equal(raw.split('\r\n').filter((l) => l === line).length, 1, line);
    }
  });

  test('secure: true is implicit TLS; requireTLS refuses a server without STARTTLS; ignoreTLS never upgrades', async () => {
    const secure = createTransport({ host: HOST, port: implicit.port, secure: true, tls: { ca } });
    await secure.sendMail(mail);
    await secure.close();
    assert.equal(implicit.messages.length, 1);

    const required = createTransport({ host: HOST, port: plain.port, requireTLS: true });
    await assert.rejects(required.sendMail(mail), (error) => {
      assert.equal(error.code, 'ETLS');
      assert.equal(error.smtpError.code, 'ESTARTTLS_UNAVAILABLE');
      return true;
    });
    await required.close();

    const lines = [];
    const ignored = createTransport({ host: HOST, port: starttls.port, ignoreTLS: true, onTranscript: (l) => lines.push(l.text) });
    await ignored.sendMail(mail);
    await ignored.close();
    assert.ok(!lines.includes('STARTTLS'));

    // Default (none of them): STARTTLS when offered.
    const upgraded = [];
    const opportunistic = createTransport({ host: HOST, port: starttls.port, tls: { ca }, onTranscript: (l) => upgraded.push(l.text) });
    await opportunistic.sendMail(mail);
    await opportunistic.close();
    assert.ok(upgraded.includes('STARTTLS'));
  });

  test('OAuth2 with an accessToken, and nodemailer\'s error fields for a refused login', async () => {
    const oauth = createTransport({ host: HOST, port: plain.port, ignoreTLS: true, allowInsecureAuth: true, auth: { type: 'OAuth2', user: USER, accessToken: TOKEN } });
    await oauth.sendMail(mail);
    await oauth.close();
    assert.equal(plain.messages.at(-1).user, USER);

    const wrong = createTransport({ host: HOST, port: plain.port, ignoreTLS: true, allowInsecureAuth: true, auth: { user: USER, pass: 'wrong' }, authMethod: 'PLAIN' });
    await assert.rejects(wrong.sendMail(mail), (error) => {
      assert.equal(error.code, 'EAUTH');
      assert.equal(error.responseCode, 535);
      assert.match(error.response, /^535 /);
      assert.equal(error.command, 'AUTH PLAIN');
      assert.equal(error.smtpError.phase, 'auth');
      return true;
    });
    await wrong.close();
    const right = createTransport(`smtp://${USER}:${encodeURIComponent(PASS)}@${HOST}:${plain.port}`);
    // An smtp:// URL: STARTTLS when offered, none here, and credentials need TLS: EAUTH_INSECURE.
    await assert.rejects(right.sendMail(mail), (error) => error.code === 'EAUTH' && error.smtpError.code === 'EAUTH_INSECURE');
    await right.close();
  });

  test("OAuth2 with a refresh token (nodemailer's clientId, clientSecret, refreshToken, accessUrl, expires): refreshed, with the 'token' event", async () => {
    const endpoint = await startTokenEndpoint();
    const server = await startServer({
      tls: 'starttls',
      authMethods: ['XOAUTH2'],
      onAuth: (auth, session, callback) => (auth.accessToken === 'tok-1' ? callback(null, { user: auth.username }) : callback(null, { data: { status: '401', schemes: 'bearer' } })),
    });
    const auth = { type: 'OAuth2', user: USER, clientId: 'cid', clientSecret: 'csecret', refreshToken: 'rtoken', accessUrl: endpoint.url, accessToken: 'stale-token', expires: Date.now() + 3_600_000 };
    const transporter = createTransport({ host: HOST, port: server.port, requireTLS: true, tls: { ca }, auth });
    const events = [];
    assert.equal(transporter.on('token', (token) => events.push(token)), transporter);
    assert.throws(() => transporter.on('idle', () => {}), (error) => error.code === 'EINPUT' && /sendMail at any time/.test(error.message));
    try {
      await transporter.sendMail(mail);
      // The given accessToken went first (still valid per `expires`), was refused, then refreshed.
      assert.equal(endpoint.calls.length, 1);
      assert.equal(endpoint.calls[0].get('refresh_token'), 'rtoken');
      assert.equal(events.length, 1);
      assert.equal(events[0].user, USER);
      assert.equal(events[0].accessToken, 'tok-1');
      assert.ok(events[0].expires > Date.now());
      // provisionCallback(user, renew, callback), nodemailer's own hook.
      const renews = [];
      const provisioned = createTransport({
        host: HOST,
        port: server.port,
        requireTLS: true,
        tls: { ca },
        auth: { type: 'OAuth2', user: USER, provisionCallback: (user, renew, callback) => (renews.push([user, renew]), callback(null, renew ? 'tok-1' : 'old', Date.now() + 3_600_000)) },
      });
      await provisioned.sendMail(mail);
      await provisioned.close();
      assert.deepEqual(renews, [[USER, false], [USER, true]]);
    } finally {
      await transporter.close();
      await server.close();
      await endpoint.close();
    }
  });

  test('time-outs, pool and rate options are honoured', async () => {
    const transporter = createTransport({ host: HOST, port: plain.port, pool: true, maxConnections: 2, maxMessages: 3, rateLimit: 50, rateDelta: 1000, connectionTimeout: 5000, greetingTimeout: 5000, socketTimeout: 5000 });
    const before = plain.connections;
    await Promise.all(Array.from({ length: 6 }, () => transporter.sendMail(mail)));
    await transporter.close();
    const used = plain.connections - before;
    assert.ok(used >= 2 && used <= 3, `connections: ${used}`);
  });

  test('what cannot be honoured is refused, naming the way', async () => {
    const cases = [
      [{ service: 'gmail' }, /service.*host smtp.gmail.com/],
      [{ host: HOST, dnsTimeout: 1000 }, /dnsTimeout/],
      [{ host: HOST, auth: { type: 'OAuth2', user: 'a', serviceClient: 'sa', privateKey: 'k' } }, /service accounts/],
      [{ host: HOST, auth: { type: 'OAuth2', user: 'a', accessToken: 'x', refreshToken: 'r', clientId: 'c', provisionCallback: () => {} } }, /provisionCallback and a refresh-token grant/],
      [{ host: HOST, auth: { type: 'OAuth2', user: 'a', accessToken: 'x', expires: 'soon' } }, /auth.expires/],
      [{ host: HOST, auth: { user: 'a', pass: 'p', refreshToken: 'r' } }, /belongs to OAuth2/],
      [{ host: HOST, auth: { type: 'OAuth2', user: 'a', refreshToken: 'r', clientId: 'c', accessUrl: 'http://oauth.example.com/token' } }, /in clear/],
      [{ host: HOST, secure: true, ignoreTLS: true }, /contradict/],
      [{ host: HOST, proxy: 'https://proxy:3128' }, /scheme "https:"/],
      [{ host: HOST, tls: { ciphers: 42 } }, /tls\.ciphers/],
      ['http://example.com', /http: URLs/],
    ];
    for (const [options, pattern] of cases) {
      assert.throws(() => createTransport(options), (error) => error.code === 'EINPUT' && error.smtpError.code === 'EINPUT' && pattern.test(error.message), JSON.stringify(options));
    }
    const transporter = createTransport({ host: HOST, port: plain.port, disableFileAccess: true });
    await assert.rejects(transporter.sendMail({ ...mail, attachments: [{ path: '/etc/hostname' }] }), (error) => error.code === 'EINPUT' && /disableFileAccess/.test(error.message));
    await assert.rejects(transporter.sendMail({ ...mail, amp: '<html amp>' }), (error) => error.code === 'EINPUT' && /AMP/.test(error.message));
    await assert.rejects(transporter.sendMail({ ...mail, dsn: { recipient: 'x@y.z' } }), (error) => error.code === 'EINPUT');
    await transporter.close();
  });
});
