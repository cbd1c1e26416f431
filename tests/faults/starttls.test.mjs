// The STARTTLS attack classes of "Why TLS is better without STARTTLS"
// (Poddebniak et al., USENIX Security 2021), against the npm package over
// real loopback sockets: stripping (in 'starttls' and 'tls' modes), response
// injection after "220 Ready to start TLS", and tampering with the plaintext
// capabilities. In every case: no AUTH, no MAIL, a clear error.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { AUTH_PLAIN_OK, EHLO, GREET, HELO, QUIT, SENSITIVE, caps, implicitTlsUp, starttlsUp, transaction } from '../kit/dialogs.mjs';
import { startFakeServer } from '../kit/fake-server.mjs';
import { ca, client, passwordAuth, rawMessage, rejectsWith, settle, useSecretScanner } from '../kit/harness.mjs';

useSecretScanner();

/** Runs one send against `script`; returns { err, conn } after the connection closed. */
async function attempt({ script, security, auth = passwordAuth, expected, name, tlsEngine, op = 'send' }) {
  const server = await startFakeServer({ script });
  const c = client(server.port, { security, auth, ...(tlsEngine ? { tls: { engine: tlsEngine, ca: ca() } } : {}) });
  try {
    const promise = op === 'verify' ? c.verify() : c.send(rawMessage());
    const err = await rejectsWith(promise, expected, name);
    await settle(c.close(), 'close()');
    const conn = await server.connection(0);
    await settle(conn.done, 'the server side of the connection closing');
    return { err, conn };
  } finally {
    await server.close();
  }
}

function assertNothingSensitive(conn, name) {
  const bad = conn.commands.filter((c) => SENSITIVE.test(c.text));
  assert.deepEqual(bad, [], `${name}: the client sent\n${conn.describe()}`);
}

describe('stripping in starttls mode: no HELO, no AUTH, no MAIL, ESTARTTLS_UNAVAILABLE', { concurrency: 4 }, () => {
  for (const code of [500, 501, 502, 504, 550, 554]) {
    test(`EHLO refused with ${code} (the client would fall back to HELO)`, async () => {
      const { err, conn } = await attempt({
        security: 'starttls',
        script: `${GREET}\n${EHLO}\nS: ${code} 5.5.1 EHLO not here\n`,
        expected: { code: 'ESTARTTLS_UNAVAILABLE', phase: 'ehlo', deliveryState: 'not-sent', replyCode: code },
        name: `EHLO ${code}`,
      });
      assertNothingSensitive(conn, `EHLO ${code}`);
      assert.match(err.hint, /TLS/);
    });
  }

  for (const [label, offer] of [
    ['not advertised', caps('AUTH PLAIN LOGIN', '8BITMIME')],
    ['rewritten by a middlebox (XXXXXXXA)', caps('XXXXXXXA', 'AUTH PLAIN')],
    ['advertised in lower case inside another keyword (X-STARTTLS)', caps('X-STARTTLS', 'AUTH PLAIN')],
  ]) {
    test(`STARTTLS ${label}`, async () => {
      const { err, conn } = await attempt({
        security: 'starttls',
        script: `${GREET}\n${EHLO}\n${offer}\n`,
        expected: { code: 'ESTARTTLS_UNAVAILABLE', phase: 'starttls', deliveryState: 'not-sent' },
        name: label,
      });
      assertNothingSensitive(conn, label);
      assert.match(err.detail, /nothing was sent/i);
    });
  }

  for (const code of [502, 454, 354, 250, 500, 501, 530, 550, 554, 999]) {
    test(`STARTTLS advertised, answered ${code}`, async () => {
      const { conn } = await attempt({
        security: 'starttls',
        script: `${GREET}\n${EHLO}\n${caps('AUTH PLAIN', 'STARTTLS')}\nC: STARTTLS\nS: ${code} not now\n`,
        expected: code === 999 ? { code: 'EPROTOCOL', phase: 'starttls' } : { code: 'ESTARTTLS_UNAVAILABLE', phase: 'starttls', deliveryState: 'not-sent', replyCode: code },
        name: `STARTTLS ${code}`,
      });
      assertNothingSensitive(conn, `STARTTLS ${code}`);
    });
  }

  test('STARTTLS answered 421: ECLOSED, nothing sensitive', async () => {
    const { conn } = await attempt({
      security: 'starttls',
      script: `${GREET}\n${EHLO}\n${caps('STARTTLS')}\nC: STARTTLS\nS: 421 4.3.2 shutting down\nCLOSE`,
      expected: { code: 'ECLOSED', phase: 'starttls', deliveryState: 'not-sent', replyCode: 421 },
      name: 'STARTTLS 421',
    });
    assertNothingSensitive(conn, 'STARTTLS 421');
  });

  test('STARTTLS answered 220, then the server keeps talking plaintext SMTP instead of TLS', async () => {
    const { conn } = await attempt({
      security: 'starttls',
      script: `${GREET}\n${EHLO}\n${caps('STARTTLS')}\nC: STARTTLS\nS: 220 go ahead\nREAD 1\nS: 250-mx.test\nS: 250 AUTH PLAIN\n`,
      // Fail-closed is what matters here; the wording is checked below.
      expected: { code: ['ETLS', 'EPROTOCOL', 'ETLS_PORT_MISMATCH'], phase: ['starttls', 'tls'], deliveryState: 'not-sent' },
      name: 'plaintext after 220',
    });
    assertNothingSensitive(conn, 'plaintext after 220');
  });

  test(
    'STARTTLS answered 220, then plaintext: the error does not tell a starttls user to use starttls',
    async () => {
      const { err } = await attempt({
        security: 'starttls',
        script: `${GREET}\n${EHLO}\n${caps('STARTTLS')}\nC: STARTTLS\nS: 220 go ahead\nREAD 1\nS: 250 AUTH PLAIN\n`,
        expected: { deliveryState: 'not-sent' },
        name: 'plaintext after 220 (wording)',
      });
      assert.notEqual(err.code, 'ETLS_PORT_MISMATCH', err.message);
      assert.doesNotMatch(err.hint ?? '', /use security: 'starttls'/, err.message);
    },
  );
});

describe('stripping in tls mode (implicit TLS)', { concurrency: 4 }, () => {
  test('a plaintext SMTP server on the TLS port (TLS stripped): ETLS_PORT_MISMATCH, no SMTP command sent', async () => {
    const { err, conn } = await attempt({
      security: 'tls',
      script: `${GREET}\n`,
      expected: { code: 'ETLS_PORT_MISMATCH', phase: ['tls', 'connect', 'greeting'], deliveryState: 'not-sent' },
      name: 'plaintext on the TLS port',
    });
    assertNothingSensitive(conn, 'plaintext on the TLS port');
    assert.ok(!conn.sent(/^EHLO/), 'no EHLO in plaintext');
    assert.match(err.hint, /starttls/i);
  });

  test('garbage instead of a TLS handshake: ETLS, nothing sent', async () => {
    const { conn } = await attempt({
      security: 'tls',
      script: 'HANDSHAKE-GARBAGE 64\n',
      expected: { code: ['ETLS', 'ETLS_PORT_MISMATCH'], deliveryState: 'not-sent' },
      name: 'handshake garbage',
    });
    assertNothingSensitive(conn, 'handshake garbage');
  });

  for (const code of [500, 502, 550]) {
    test(`EHLO refused with ${code} inside TLS: no HELO fallback, no AUTH, no MAIL`, async () => {
      const { conn } = await attempt({
        security: 'tls',
        script: `TLS\n${GREET}\n${EHLO}\nS: ${code} no EHLO\n`,
        expected: { code: ['EPROTOCOL', 'ESTARTTLS_UNAVAILABLE'], phase: 'ehlo', deliveryState: 'not-sent', replyCode: code },
        name: `tls EHLO ${code}`,
      });
      assertNothingSensitive(conn, `tls EHLO ${code}`);
    });
  }

  test('STARTTLS offered inside implicit TLS is not used (no second upgrade)', async () => {
    const server = await startFakeServer({ script: `${implicitTlsUp(['STARTTLS', 'AUTH PLAIN'])}\n${AUTH_PLAIN_OK}\n${transaction()}\n${QUIT}` });
    const c = client(server.port, { security: 'tls', auth: passwordAuth });
    const sent = await settle(c.send(rawMessage()), 'send');
    assert.equal(sent.ok, true, sent.error?.message);
    await settle(c.close(), 'close');
    const conn = await server.connection(0);
    assert.deepEqual(conn.failures, []);
    assert.ok(!conn.sent(/^STARTTLS/));
    await server.close();
  });
});

describe('opportunistic and none never send credentials in clear', { concurrency: 4 }, () => {
  test('opportunistic, EHLO refused, HELO accepted: EAUTH_INSECURE, no AUTH', async () => {
    const { conn } = await attempt({
      security: 'opportunistic',
      script: `${GREET}\n${EHLO}\nS: 502 5.5.2 no\n${HELO}\nS: 250 mx.test\n`,
      expected: { code: 'EAUTH_INSECURE', phase: 'auth', deliveryState: 'not-sent' },
      name: 'opportunistic HELO',
    });
    assert.ok(!conn.sent(/^(AUTH|MAIL)/));
  });

  test('opportunistic, STARTTLS answered 454: EAUTH_INSECURE, no AUTH', async () => {
    const { conn } = await attempt({
      security: 'opportunistic',
      script: `${GREET}\n${EHLO}\n${caps('STARTTLS', 'AUTH PLAIN')}\nC: STARTTLS\nS: 454 4.7.0 TLS not available\n`,
      expected: { code: 'EAUTH_INSECURE', phase: 'auth', deliveryState: 'not-sent' },
      name: 'opportunistic 454',
    });
    assert.ok(!conn.sent(/^(AUTH|MAIL)/));
  });

  test('none: STARTTLS offered is never used, and credentials are refused', async () => {
    const { err, conn } = await attempt({
      security: 'none',
      script: `${GREET}\n${EHLO}\n${caps('STARTTLS', 'AUTH PLAIN')}\n`,
      expected: { code: 'EAUTH_INSECURE', phase: 'auth', deliveryState: 'not-sent' },
      name: 'none',
    });
    assert.ok(!conn.sent(/^(AUTH|MAIL|STARTTLS)/));
    assert.match(err.hint, /starttls/);
  });
});

describe('response injection after "220 Ready to start TLS"', { concurrency: 4 }, () => {
  const injections = {
    'a fake post-TLS EHLO reply': '250-mx.test\\r\\n250 AUTH PLAIN\\r\\n',
    'a fake AUTH success': '235 2.7.0 ok\\r\\n',
    'one byte': '2',
    'a partial line': '250 ',
    'a blank line': '\\r\\n',
    'many replies': '250 ok\\r\\n'.repeat(50),
  };
  for (const tlsEngine of ['native', 'wasm']) {
    for (const [label, injected] of Object.entries(injections)) {
      test(`in the same segment (${label}; TLS ${tlsEngine}): EPROTOCOL, nothing after STARTTLS`, async () => {
        const { err, conn } = await attempt({
          security: 'starttls',
          tlsEngine,
          script: `${GREET}\n${EHLO}\n${caps('STARTTLS', 'AUTH PLAIN')}\nC: STARTTLS\nS+ 220 2.0.0 Ready to start TLS\\r\\n${injected}\nSTALL`,
          expected: { code: 'EPROTOCOL', phase: 'starttls', deliveryState: 'not-sent' },
          name: `injection ${label}`,
        });
        assert.match(err.detail, /before the TLS handshake/);
        assertNothingSensitive(conn, label);
        assert.deepEqual(conn.commandsAfter(/^STARTTLS$/).filter((c) => /^[A-Z]{4}/.test(c.text)), [], conn.describe());
      });
    }
  }

  test('in a later segment (the client may already be in its handshake): fails closed, no AUTH, no MAIL', async () => {
    const { conn } = await attempt({
      security: 'starttls',
      script: `${GREET}\n${EHLO}\n${caps('STARTTLS', 'AUTH PLAIN')}\nC: STARTTLS\nSPLIT 24 20\nS+ 220 2.0.0 Ready to start TLS\\r\\n250-mx.test\\r\\n250 AUTH PLAIN\\r\\n\nSTALL`,
      expected: { code: ['EPROTOCOL', 'ETLS', 'ETLS_PORT_MISMATCH'], phase: ['starttls', 'tls'], deliveryState: 'not-sent' },
      name: 'split injection',
    });
    assertNothingSensitive(conn, 'split injection');
  });

  test('the 220 itself arriving byte by byte, injection behind it: fails closed', async () => {
    const { conn } = await attempt({
      security: 'starttls',
      script: `${GREET}\n${EHLO}\n${caps('STARTTLS', 'AUTH PLAIN')}\nC: STARTTLS\nSPLIT 1 2\nS+ 220 go\\r\\n235 ok\\r\\n\nSTALL`,
      expected: { code: ['EPROTOCOL', 'ETLS', 'ETLS_PORT_MISMATCH'], deliveryState: 'not-sent' },
      name: 'bytewise injection',
    });
    assertNothingSensitive(conn, 'bytewise injection');
  });
});

describe('tampering: capabilities and AUTH mechanisms come only from the post-TLS EHLO', { concurrency: 4 }, () => {
  const dozens = Array.from({ length: 60 }, (_, i) => `X-MECH-${i}`).join(' ');

  test('pre-TLS EHLO offers CRAM-MD5, LOGIN, dozens of mechanisms, CHUNKING, SIZE; post-TLS only AUTH PLAIN: PLAIN is used, the plaintext offer is ignored', async () => {
    const script = `${starttlsUp([`AUTH CRAM-MD5 LOGIN ${dozens}`, 'CHUNKING', 'SIZE 10', 'PIPELINING', 'SMTPUTF8'], ['AUTH PLAIN'])}\n${AUTH_PLAIN_OK}\n${QUIT}`;
    const server = await startFakeServer({ script });
    const c = client(server.port, { security: 'starttls', auth: passwordAuth });
    const verified = await settle(c.verify(), 'verify');
    assert.equal(verified.ok, true, verified.error?.message);
    const info = verified.value;
    assert.deepEqual(info.capabilities.auth, ['PLAIN']);
    assert.equal(info.capabilities.chunking, false);
    assert.equal(info.capabilities.pipelining, false);
    assert.equal(info.capabilities.smtpUtf8, false);
    assert.ok(!info.capabilities.sizeLimit, `size limit ${info.capabilities.sizeLimit} came from the plaintext EHLO`);
    assert.equal(info.authMethod, 'PLAIN');
    const conn = await server.connection(0);
    await settle(conn.done, 'close');
    assert.deepEqual(conn.failures, []);
    await server.close();
  });

  test('pre-TLS offers dozens of mechanisms and PLAIN, post-TLS offers none: EAUTH_UNSUPPORTED, no AUTH', async () => {
    const { conn } = await attempt({
      security: 'starttls',
      script: `${starttlsUp([`AUTH PLAIN LOGIN ${dozens}`], ['8BITMIME'])}\n`,
      expected: { code: ['EAUTH_UNSUPPORTED', 'EAUTH'], phase: 'auth', deliveryState: 'not-sent' },
      name: 'no AUTH after TLS',
    });
    assert.ok(!conn.sent(/^(AUTH|MAIL)/), conn.describe());
  });

  test('a server that advertises dozens of mechanisms (none usable) after TLS: EAUTH_UNSUPPORTED naming them, no AUTH', async () => {
    const { err, conn } = await attempt({
      security: 'starttls',
      script: `${starttlsUp([], [`AUTH GSSAPI NTLM ${dozens}`])}\n`,
      expected: { code: 'EAUTH_UNSUPPORTED', phase: 'auth', deliveryState: 'not-sent' },
      name: 'dozens unusable',
    });
    assert.match(err.message, /GSSAPI|NTLM/);
    assert.ok(!conn.sent(/^(AUTH|MAIL)/), conn.describe());
  });

  test('post-TLS EHLO offers LOGIN after a pre-TLS EHLO with 60 mechanisms: LOGIN over TLS, message delivered', async () => {
    const script = [
      starttlsUp([`AUTH ${dozens} PLAIN`], ['AUTH LOGIN']),
      'C: AUTH LOGIN',
      'S: 334 VXNlcm5hbWU6',
      'C~ ^\\S+$',
      'S: 334 UGFzc3dvcmQ6',
      'C~ ^\\S+$',
      'S: 235 2.7.0 ok',
      transaction(),
      QUIT,
    ].join('\n');
    const server = await startFakeServer({ script });
    const c = client(server.port, { security: 'starttls', auth: passwordAuth });
    const sent = await settle(c.send(rawMessage()), 'send');
    assert.equal(sent.ok, true, sent.error?.message);
    await settle(c.close(), 'close');
    const conn = await server.connection(0);
    await settle(conn.done, 'close');
    assert.deepEqual(conn.failures, []);
    assert.ok(conn.commands.filter((c) => /^AUTH/.test(c.text)).every((c) => c.tls));
    await server.close();
  });
});
