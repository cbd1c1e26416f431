// Round trip: a structured message (text, html, UTF-8 subject, a small
// attachment in memory and a 20 MB one streamed from a ReadableStream) goes
// through wasmtp to a real smtp-server, whose data stream is parsed as it
// arrives by `mailparser`; every part must come back identical.
//
// Neither side holds the 20 MB: the client generates it chunk by chunk
// (deterministic pseudo-random bytes, hashed while generated) and the server
// hashes the decoded attachment as mailparser streams it.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';

import { MailParser } from 'mailparser';

import { createClient } from '../src/index.js';
import { startServer } from './helpers/server.js';

const BIG_SIZE = 20 * 1024 * 1024;
const CHUNK = 64 * 1024;

/**
 * A ReadableStream of `size` pseudo-random bytes (xorshift32, fixed seed),
 * one 64 KiB chunk per pull; `digest()` gives the sha256 of what was
 * produced once the stream is done.
 */
function randomStream(size, seed = 0x9e3779b9) {
  const hash = createHash('sha256');
  let state = seed >>> 0;
  let produced = 0;
  let digest = null;
  const stream = new ReadableStream(
    {
      pull(controller) {
        if (produced >= size) {
          digest = hash.digest('hex');
          controller.close();
          return;
        }
        const n = Math.min(CHUNK, size - produced);
        const words = new Uint32Array(Math.ceil(n / 4));
        for (let i = 0; i < words.length; i++) {
          state ^= state << 13;
          state ^= state >>> 17;
          state ^= state << 5;
          state >>>= 0;
          words[i] = state;
        }
        const chunk = new Uint8Array(words.buffer, 0, n);
        hash.update(chunk);
        produced += n;
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 1 },
  );
  return { stream, digest: () => digest, produced: () => produced };
}

/** Parses a message stream with mailparser's streaming API; attachments are hashed, not kept. */
function parseStreaming(input) {
  return new Promise((resolve, reject) => {
    const parser = new MailParser();
    const parsed = { headers: null, subject: undefined, text: undefined, html: undefined, attachments: [] };
    const pending = [];
    parser.on('headers', (headers) => {
      parsed.headers = headers;
      parsed.subject = headers.get('subject');
    });
    parser.on('data', (data) => {
      if (data.type === 'text') {
        parsed.text = data.text;
        parsed.html = data.html;
        return;
      }
      const hash = createHash('sha256');
      let size = 0;
      const entry = {
        filename: data.filename,
        contentType: data.contentType,
        contentDisposition: data.contentDisposition,
        sha256: null,
        size: 0,
      };
      parsed.attachments.push(entry);
      pending.push(
        new Promise((done, fail) => {
          data.content.on('data', (chunk) => {
            hash.update(chunk);
            size += chunk.length;
          });
          data.content.on('end', () => {
            entry.sha256 = hash.digest('hex');
            entry.size = size;
            data.release();
            done();
          });
          data.content.on('error', fail);
        }),
      );
    });
    parser.on('end', () => Promise.all(pending).then(() => resolve(parsed), reject));
    parser.on('error', reject);
    input.on('error', reject);
    input.pipe(parser);
  });
}

test('text, html, UTF-8 subject and two attachments (one of 20 MB, streamed) arrive identical', { timeout: 90_000 }, async (t) => {
  const received = [];
  const server = await startServer({
    size: 64 * 1024 * 1024,
    onData(stream, session, callback) {
      let rawSize = 0;
      stream.on('data', (chunk) => {
        rawSize += chunk.length;
      });
      parseStreaming(stream).then(
        (parsed) => {
          received.push({ ...parsed, rawSize, to: session.envelope.rcptTo.map((r) => r.address) });
          callback(null, `OK queued as R${received.length}`);
        },
        (error) => callback(error),
      );
    },
  });
  const client = createClient({ host: '127.0.0.1', port: server.port, security: 'none' });
  try {
    const subject = 'Grüße aus Köln – 20 MB über wasmtp ✓ 😀';
    const text = 'Hallo Bob,\n\nanbei die Dateien (ça va? 日本語 📎).\nA line that is rather long: ' + 'lorem ipsum '.repeat(20) + '\n';
    const html = '<p>Hallo <b>Bob</b>, anbei die Dateien — ça va? 日本語</p>';
    const small = new Uint8Array(5000).map((_, i) => (i * 131 + 7) % 256); // every byte value, CR and LF included
    const big = randomStream(BIG_SIZE);

    const started = Date.now();
    const result = await client.send({
      from: 'Ann Example <ann@example.com>',
      to: 'Bob <bob@example.org>',
      subject,
      text,
      html,
      attachments: [
        { filename: 'résumé.pdf', content: small, contentType: 'application/pdf' },
        { filename: 'random-20MB.bin', content: big.stream, contentType: 'application/octet-stream' },
      ],
    });
    const elapsed = Date.now() - started;
    assert.deepEqual(result.accepted, ['bob@example.org']);
    assert.equal(big.produced(), BIG_SIZE);
    assert.equal(received.length, 1);
    const got = received[0];
    assert.ok(got.rawSize > BIG_SIZE * 4 / 3, `the message on the wire is ${got.rawSize} bytes`);

    assert.equal(got.subject, subject);
    assert.equal(got.text, text);
    assert.equal(got.html, html);
    assert.equal(got.attachments.length, 2);
    const [a, b] = got.attachments;
    assert.equal(a.filename, 'résumé.pdf');
    assert.equal(a.contentType, 'application/pdf');
    assert.equal(a.size, small.length);
    assert.equal(a.sha256, createHash('sha256').update(small).digest('hex'));
    assert.equal(b.filename, 'random-20MB.bin');
    assert.equal(b.contentType, 'application/octet-stream');
    assert.equal(b.size, BIG_SIZE);
    assert.equal(b.sha256, big.digest());
    assert.equal(a.contentDisposition, 'attachment');
    assert.equal(b.contentDisposition, 'attachment');
    t.diagnostic(`20 MB round trip in ${elapsed} ms`);
  } finally {
    await client.close();
    await server.close();
  }
});
