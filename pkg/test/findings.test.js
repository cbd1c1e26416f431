// The remaining findings of the nodemailer comparison, each against a real
// server with what crossed the wire checked: IDN domains as A-labels, raw
// 8-bit bodies refused by a server without 8BITMIME (RFC 6152), the user
// name escaped in EAUTH, a QUIT that is never answered, and the default
// EHLO name.

import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';

import { createClient, SmtpError } from '../src/index.js';
import { setHostNameSource } from '../src/options.js';
import { startServer } from './helpers/server.js';

const HOST = '127.0.0.1';

describe('a server without SMTPUTF8 and 8BITMIME', () => {
  let server;
  let client;
  const lines = [];
  before(async () => {
    server = await startServer({ tls: 'none', hideSMTPUTF8: true, hide8BITMIME: true });
    client = createClient({ host: HOST, port: server.port, security: 'none', onTranscript: (l) => lines.push(`${l.dir} ${l.text}`) });
  });
  after(async () => {
    await client.close();
    await server.close();
  });

  test('an IDN domain goes as its A-label, in the envelope and the headers', async () => {
    await client.send({ from: 'Jörg <joerg@bücher.example>', to: ['anna@münchen.de', { name: 'Zoë', address: 'zoe@zürich.ch' }], text: 'Grüße' });
    // smtp-server reports envelope domains decoded: the transcript has what was sent.
    const got = server.messages.at(-1);
    for (const line of ['C MAIL FROM:<joerg@xn--bcher-kva.example>', 'C RCPT TO:<anna@xn--mnchen-3ya.de>', 'C RCPT TO:<zoe@xn--zrich-kva.ch>']) {
      assert.ok(lines.includes(line), `${line}\n${lines.join('\n')}`);
    }
    assert.equal(got.utf8, false);
    const raw = got.raw.toString('latin1');
    assert.match(raw, /^To: anna@xn--mnchen-3ya.de, =\?UTF-8\?Q\?Zo=C3=AB\?= <zoe@xn--zrich-kva.ch>\r\n/m);
    assert.ok(/^[\x00-\x7f]*$/.test(raw), 'the message is 7-bit');
    // A raw message's envelope too.
    const before = lines.length;
    await client.send({ raw: 'Subject: x\r\n\r\nx\r\n', envelope: { from: 'a@bücher.example', to: 'anna@münchen.de' } });
    assert.ok(lines.slice(before).includes('C RCPT TO:<anna@xn--mnchen-3ya.de>'), lines.join('\n'));
  });

  test('a non-ASCII local part still needs SMTPUTF8: EUTF8, nothing sent', async () => {
    const count = server.messages.length;
    await assert.rejects(client.send({ from: 'ann@example.com', to: 'jörg@münchen.de', text: 'x' }), (error) => error.code === 'EUTF8');
    assert.equal(server.messages.length, count);
  });

  test('raw 8-bit bytes in hand are refused at MAIL FROM, before any data (RFC 6152)', async () => {
    const count = server.messages.length;
    const before = lines.length;
    for (const raw of ['Subject: x\r\n\r\nGrüße\r\n', new TextEncoder().encode('Subject: x\r\n\r\nGrüße\r\n')]) {
      await assert.rejects(client.send({ raw, envelope: { from: 'ann@example.com', to: 'bob@example.org' } }), (error) => {
        assert.equal(error.code, 'EMESSAGE', error.message);
        assert.match(error.message, /8BITMIME \(RFC 6152\)/);
        assert.match(error.hint, /quoted-printable or base64/);
        return true;
      });
    }
    assert.equal(server.messages.length, count);
    assert.ok(!lines.slice(before).some((l) => l === 'C DATA' || /^C MAIL.*BODY=8BITMIME/.test(l)), lines.slice(before).join('\n'));
  });

  test('a raw 8-bit stream is stopped before its end of data', async () => {
    const before = lines.length;
    const raw = Readable.from([Buffer.from('Subject: x\r\n\r\nplain start\r\n'), Buffer.from('then Grüße\r\n')]);
    await assert.rejects(client.send({ raw, envelope: { from: 'ann@example.com', to: 'bob@example.org' } }), (error) => {
      assert.equal(error.code, 'EMESSAGE', error.message);
      assert.match(error.message, /8-bit bytes.*8BITMIME \(RFC 6152\).*end of data was not sent/);
      return true;
    });
    // No end of data went out: the server never got the terminating dot.
    // (smtp-server's own record cannot tell: it keeps a message whose
    // connection closed mid-data, which real MTAs discard.)
    const sent = lines.slice(before);
    assert.ok(sent.includes('C DATA') && !sent.includes('C .'), sent.join('\n'));
    // ASCII still goes through, and a structured message with UTF-8 text too (encoded).
    const ascii = await client.send({ raw: 'Subject: x\r\n\r\nplain\r\n', envelope: { from: 'ann@example.com', to: 'bob@example.org' } });
    const structured = await client.send({ from: 'ann@example.com', to: 'bob@example.org', text: 'Grüße' });
    assert.match(ascii.response, /^250 /);
    assert.match(structured.response, /^250 /);
  });
});

describe('EAUTH', () => {
  test('the user name is escaped in the message: control and bidi characters never raw', async () => {
    const server = await startServer({ tls: 'none' });
    try {
      const client = createClient({ host: HOST, port: server.port, security: 'none', allowInsecureAuth: true, auth: { user: 'ann\u001b[31m\u202eevil', pass: 'wrong' } });
      await assert.rejects(client.send({ from: 'ann@example.com', to: 'bob@example.org', text: 'x' }), (error) => {
        assert.equal(error.code, 'EAUTH');
        assert.ok(error.message.includes('user "ann\\x1B[31m\\u{202E}evil"'), error.message);
        assert.ok(!/[\u0000-\u001f\u202e]/.test(error.message), error.message);
        return true;
      });
      await client.close();
    } finally {
      await server.close();
    }
  });
});

/**
 * A scripted server that delivers one message and never answers QUIT;
 * `ended` resolves when the client drops the connection.
 */
async function silentQuitServer() {
  const state = { sawQuit: false, ended: null, close: null, port: 0 };
  let endedResolve;
  state.ended = new Promise((resolve) => (endedResolve = resolve));
  const sockets = new Set();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => endedResolve());
    let inData = false;
    let buffer = '';
    socket.write('220 silent.example ESMTP\r\n');
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      let at;
      while ((at = buffer.indexOf('\r\n')) !== -1) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        if (inData) {
          if (line === '.') {
            inData = false;
            socket.write('250 2.0.0 queued\r\n');
          }
        } else if (/^EHLO/i.test(line)) socket.write('250-silent.example\r\n250 8BITMIME\r\n');
        else if (/^(MAIL|RCPT)/i.test(line)) socket.write('250 ok\r\n');
        else if (/^DATA/i.test(line)) {
          inData = true;
          socket.write('354 go\r\n');
        } else if (/^QUIT/i.test(line)) state.sawQuit = true; // and no reply, ever
      }
    });
  });
  await new Promise((resolve) => server.listen(0, HOST, resolve));
  state.port = server.address().port;
  state.close = () => {
    for (const s of sockets) s.destroy();
    return new Promise((resolve) => server.close(resolve));
  };
  return state;
}

describe('closing', () => {
  test('close() resolves once the result is known, and an unanswered QUIT is cut after a few seconds', async () => {
    const server = await silentQuitServer();
    try {
      // The command time-out is long, so only the QUIT limit can end this soon.
      const client = createClient({ host: HOST, port: server.port, security: 'none', timeouts: { command: 120_000 } });
      const result = await client.send({ from: 'ann@example.com', to: 'bob@example.org', text: 'x' });
      assert.equal(result.response, '250 2.0.0 queued');
      let timer;
      const tooLong = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error('close() waited for the QUIT reply')), 60_000)));
      await Promise.race([client.close(), tooLong]);
      await Promise.race([server.ended, tooLong]);
      clearTimeout(timer);
      assert.equal(server.sawQuit, true, 'QUIT was sent');
    } finally {
      await server.close();
    }
  });
});

describe('EHLO name', () => {
  test("defaults to the machine's fully qualified name; a name without a dot keeps localhost", async () => {
    const server = await startServer({ tls: 'none' });
    try {
      for (const [machine, expected] of [['mail.example.net', 'mail.example.net'], ['vm', 'localhost']]) {
        setHostNameSource(() => machine);
        const lines = [];
        const client = createClient({ host: HOST, port: server.port, security: 'none', onTranscript: (l) => lines.push(`${l.dir} ${l.text}`) });
        await client.verify();
        await client.close();
        assert.ok(lines.includes(`C EHLO ${expected}`), lines.join('\n'));
      }
      // clientName wins.
      const lines = [];
      const named = createClient({ host: HOST, port: server.port, security: 'none', clientName: 'relay.example.org', onTranscript: (l) => lines.push(`${l.dir} ${l.text}`) });
      await named.verify();
      assert.ok(lines.includes('C EHLO relay.example.org'));
    } finally {
      setHostNameSource(() => import('node:os').then((os) => os.hostname()));
      await server.close();
    }
  });
});

test('SmtpError is exported for instanceof checks', () => assert.equal(typeof SmtpError, 'function'));
