// Sending raw messages over plaintext: exact bytes, envelopes, recipients,
// SIZE, SMTPUTF8 and streamed bodies.

import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';

import { createClient, SmtpError } from '../src/index.js';
import { startServer } from './helpers/server.js';

const FROM = 'ann@example.com';

function message(body = 'Hello Bob.\r\n') {
  return `From: Ann <${FROM}>\r\nTo: bob@example.org\r\nSubject: test\r\nMessage-ID: <m1@example.com>\r\n\r\n${body}`;
}

describe('plaintext server', () => {
  let server;
  let client;
  before(async () => {
    server = await startServer({ size: 4096 });
    client = createClient({ host: '127.0.0.1', port: server.port, security: 'none' });
  });
  after(async () => {
    await client.close();
    await server.close();
  });

  test('delivers the exact bytes, dot-stuffing undone by the server', async () => {
    const raw = message('Hello Bob.\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n');
    const result = await client.send({ raw, envelope: { from: FROM, to: ['bob@example.org'] } });
    assert.deepEqual(result.accepted, ['bob@example.org']);
    assert.deepEqual(result.rejected, []);
    assert.equal(result.messageId, '<m1@example.com>');
    assert.match(result.response, /^250 OK queued as Q\d+$/);
    assert.match(result.queueId, /^Q\d+$/);
    const got = server.messages.at(-1);
    assert.equal(got.raw.toString('utf8'), raw);
    assert.equal(got.from, FROM);
    assert.deepEqual(got.to, ['bob@example.org']);
  });

  test('accepts Uint8Array bodies byte for byte (8-bit content)', async () => {
    const raw = new TextEncoder().encode(message('Grüße, ça va? \u{1F600}\r\n'));
    await client.send({ raw, envelope: { from: FROM, to: 'bob@example.org' } });
    assert.deepEqual(new Uint8Array(server.messages.at(-1).raw), raw);
  });

  test('declares BODY=8BITMIME for raw messages only when a byte is above 127 (streams: when offered)', async () => {
    const lines = [];
    const c = createClient({ host: '127.0.0.1', port: server.port, security: 'none', onTranscript: (l) => lines.push(l.text) });
    const envelope = { from: FROM, to: 'bob@example.org' };
    try {
      await c.send({ raw: message('plain ASCII\r\n'), envelope });
      await c.send({ raw: new TextEncoder().encode(message('plain ASCII bytes\r\n')), envelope });
      await c.send({ raw: message('Grüße\r\n'), envelope });
      await c.send({ raw: new TextEncoder().encode(message('Grüße\r\n')), envelope });
      // A stream cannot be read ahead: 8BITMIME is the declaration that holds either way.
      await c.send({ raw: Readable.from([Buffer.from(message('streamed\r\n'))]), envelope });
    } finally {
      await c.close();
    }
    const mails = lines.filter((t) => t.startsWith('MAIL FROM'));
    assert.deepEqual(
      mails.map((t) => t.includes(' BODY=8BITMIME')),
      [false, false, true, true, true],
      mails.join('\n'),
    );
  });

  test('reports refused recipients when others are accepted', async () => {
    const result = await client.send({
      raw: message(),
      envelope: { from: FROM, to: ['bob@example.org', 'reject-me@example.org', 'carol@example.org'] },
    });
    assert.deepEqual(result.accepted, ['bob@example.org', 'carol@example.org']);
    assert.equal(result.rejected.length, 1);
    const [rejected] = result.rejected;
    assert.equal(rejected.address, 'reject-me@example.org');
    assert.equal(rejected.code, 550);
    assert.match(rejected.message, /No such user/);
    assert.deepEqual(server.messages.at(-1).to, ['bob@example.org', 'carol@example.org']);
  });

  test('fails with ERECIPIENTS when every recipient is refused', async () => {
    const before = server.messages.length;
    await assert.rejects(
      client.send({ raw: message(), envelope: { from: FROM, to: ['reject-1@example.org', 'reject-2@example.org'] } }),
      (err) => {
        assert.ok(err instanceof SmtpError);
        assert.equal(err.code, 'ERECIPIENTS');
        assert.equal(err.phase, 'rcpt');
        assert.equal(err.reply.code, 550);
        assert.equal(err.deliveryState, 'not-sent');
        assert.ok(err.hint);
        return true;
      },
    );
    assert.equal(server.messages.length, before);
  });

  test('refuses a message over the SIZE limit before sending it (ESIZE)', async () => {
    const before = server.messages.length;
    const raw = message('x'.repeat(70) + '\r\n'.repeat(1) + ('y'.repeat(70) + '\r\n').repeat(80));
    await assert.rejects(client.send({ raw, envelope: { from: FROM, to: ['bob@example.org'] } }), (err) => {
      assert.equal(err.code, 'ESIZE');
      assert.match(err.message, /4096/);
      assert.ok(err.hint);
      return true;
    });
    assert.equal(server.messages.length, before);
  });

  test('a streamed message of unknown size over the limit fails with ESIZE after the data', async () => {
    const before = server.messages.length;
    const body = new TextEncoder().encode(message(('y'.repeat(70) + '\r\n').repeat(100)));
    const stream = new ReadableStream({
      start(controller) {
        controller.enqueue(body);
        controller.close();
      },
    });
    await assert.rejects(client.send({ raw: stream, envelope: { from: FROM, to: ['bob@example.org'] } }), (err) => {
      assert.equal(err.code, 'ESIZE');
      assert.equal(err.phase, 'data');
      assert.equal(err.reply.code, 552);
      assert.equal(err.deliveryState, 'not-sent');
      return true;
    });
    assert.equal(server.messages.length, before);
    // The connection stays usable after a refused message.
    const ok = await client.send({ raw: message(), envelope: { from: FROM, to: ['bob@example.org'] } });
    assert.deepEqual(ok.accepted, ['bob@example.org']);
  });

  test('uses SMTPUTF8 for internationalised addresses', async () => {
    const to = 'bjørn@exämple.org';
    const result = await client.send({ raw: message(), envelope: { from: 'ann@example.com', to: [to] } });
    assert.deepEqual(result.accepted, [to]);
    const got = server.messages.at(-1);
    assert.deepEqual(got.to, [to]);
    assert.equal(got.utf8, true);
  });

  test('streams a ReadableStream body with back-pressure', async () => {
    const line = 'The quick brown fox jumps over the lazy dog 0123456789.\r\n';
    const head = message('');
    const chunks = [head, ...Array.from({ length: 60 }, () => line)];
    const stream = new ReadableStream({
      pull(controller) {
        const next = chunks.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(next));
      },
    });
    const big = createClient({ host: '127.0.0.1', port: server.port, security: 'none' });
    await big.send({ raw: stream, envelope: { from: FROM, to: ['bob@example.org'] } });
    await big.close();
    assert.equal(server.messages.at(-1).raw.toString(), head + line.repeat(60));
  });

  test('rejects invalid input with EINPUT before connecting', async () => {
    await assert.rejects(client.send({ raw: message() }), { code: 'EINPUT' });
    await assert.rejects(client.send({ raw: message(), envelope: { from: FROM, to: ['not an address'] } }), {
      code: 'EINPUT',
    });
  });
});

test('streams a large Node Readable body exactly (engine back-pressure)', async () => {
  const server = await startServer();
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none' });
  try {
    const line = `${'z'.repeat(76)}\r\n`;
    const lines = 20_000; // ~1.5 MB: far more than the engine buffers at once
    const head = message('');
    async function* generate() {
      yield head;
      for (let i = 0; i < lines; i += 100) yield line.repeat(100);
    }
    await client.send({ raw: Readable.from(generate()), envelope: { from: FROM, to: ['bob@example.org'] } });
    const got = server.messages.at(-1).raw;
    assert.equal(got.length, head.length + line.length * lines);
    assert.equal(got.toString(), head + line.repeat(lines));
  } finally {
    await client.close();
    await server.close();
  }
});
