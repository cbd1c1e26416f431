// Structured messages through the Rust MIME builder: headers, bodies,
// attachments in hand and streamed, Bcc kept out of the headers.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createClient } from '../src/index.js';
import { startServer } from './helpers/server.js';

/** The decoded body of the part whose headers mention `marker`. */
function partBody(raw, marker) {
  const at = raw.indexOf(marker);
  assert.ok(at >= 0, `no part with ${marker}`);
  const start = raw.indexOf('\r\n\r\n', at) + 4;
  const end = raw.indexOf('\r\n--', start);
  return Buffer.from(raw.slice(start, end).replace(/\r\n/g, ''), 'base64');
}

describe('structured messages', () => {
  let server;
  let client;
  before(async () => {
    server = await startServer();
    client = createClient({ host: '127.0.0.1', port: server.port, security: 'none' });
  });
  after(async () => {
    await client.close();
    await server.close();
  });

  test('text, html, attachments and Bcc', async () => {
    const pdf = new Uint8Array(3000).map((_, i) => (i * 7) % 256);
    const csvChunks = ['a,b\n', '1,2\n', '3,4\n'];
    const csv = new ReadableStream({
      pull(controller) {
        const next = csvChunks.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(next));
      },
    });
    const result = await client.send({
      from: 'Ann Example <ann@example.com>',
      to: ['bob@example.org'],
      cc: 'Carol <carol@example.org>',
      bcc: ['dave@example.org'],
      subject: 'Grüße from wasmtp',
      text: 'plain body',
      html: '<p>html body</p>',
      headers: { 'X-Tag': 'v1' },
      attachments: [
        { filename: 'a.pdf', content: pdf, contentType: 'application/pdf' },
        { filename: 'data.csv', content: csv },
      ],
    });
    assert.deepEqual(result.accepted, ['bob@example.org', 'carol@example.org', 'dave@example.org']);
    const got = server.messages.at(-1);
    assert.equal(got.from, 'ann@example.com');
    assert.deepEqual(got.to, ['bob@example.org', 'carol@example.org', 'dave@example.org']);
    const raw = got.raw.toString('latin1');
    const headers = raw.slice(0, raw.indexOf('\r\n\r\n'));
    assert.match(headers, /^From: Ann Example <ann@example\.com>$/m);
    assert.match(headers, /^Cc: Carol <carol@example\.org>$/m);
    assert.doesNotMatch(headers, /dave/i, 'Bcc stays out of the headers');
    assert.match(headers, /^Subject: =\?UTF-8\?/m);
    assert.match(headers, /^X-Tag: v1$/m);
    assert.match(headers, new RegExp(`^Message-ID: ${result.messageId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'));
    assert.match(raw, /multipart\/alternative/);
    assert.match(raw, /plain body/);
    assert.match(raw, /<p>html body<\/p>/);
    assert.deepEqual(new Uint8Array(partBody(raw, 'filename="a.pdf"')), pdf);
    assert.equal(partBody(raw, 'filename="data.csv"').toString(), 'a,b\n1,2\n3,4\n');
    assert.ok(raw.split('\r\n').every((line) => line.length <= 998));
  });

  test('a UTF-8 address uses SMTPUTF8', async () => {
    await client.send({ from: 'ann@example.com', to: 'jörg@exämple.org', subject: 'hi', text: 'x' });
    const got = server.messages.at(-1);
    assert.deepEqual(got.to, ['jörg@exämple.org']);
    assert.equal(got.utf8, true);
  });

  test('input mistakes are EINPUT before anything is sent', async () => {
    const before = server.connections;
    await assert.rejects(client.send({ from: 'ann@example.com', subject: 'no recipients', text: 'x' }), {
      code: 'EINPUT',
    });
    await assert.rejects(
      client.send({ from: 'ann@example.com', to: 'bob@example.org', headers: { 'X-Bad': 'a\r\nBcc: evil@example.org' } }),
      { code: 'EINPUT' },
    );
    await assert.rejects(client.send({ from: 'not an address', to: 'bob@example.org', text: 'x' }), { code: 'EINPUT' });
    assert.equal(server.connections, before);
  });
});
