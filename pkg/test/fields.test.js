// The message fields people bring from nodemailer, sent through a real
// smtp-server and read back with mailparser (and as raw bytes): threading,
// date, priority, sender, List-* headers, calendar invitations,
// alternatives, attachment encodings, files and URLs (streamed), bodies
// from streams, files and URLs.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';

import { simpleParser } from 'mailparser';

import { createClient, SmtpError } from '../src/index.js';
import { startServer } from './helpers/server.js';

const base = { from: 'Ann <ann@example.com>', to: 'bob@example.org' };
const sha = (bytes) => createHash('sha256').update(bytes).digest('hex');
const bytesOf = (n, seed = 7) => Uint8Array.from({ length: n }, (_, i) => (i * seed + (i >> 8)) & 0xff);

describe('message fields', () => {
  let server;
  let client;
  let http;
  let httpUrl;
  let dir;
  const served = bytesOf(300_000, 13);
  before(async () => {
    server = await startServer({ tls: 'none' });
    client = createClient({ host: '127.0.0.1', port: server.port, security: 'none' });
    dir = mkdtempSync(join(tmpdir(), 'wasmtp-fields-'));
    http = createServer((req, res) => {
      if (req.url === '/file.bin') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        res.end(Buffer.from(served));
      } else if (req.url === '/body.html') {
        res.end(req.headers['x-token'] === 'secret' ? '<p>from a URL</p>' : '<p>no token</p>');
      } else {
        res.writeHead(404);
        res.end('not here');
      }
    });
    await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
    httpUrl = `http://127.0.0.1:${http.address().port}`;
  });
  after(async () => {
    await client.close();
    await server.close();
    await new Promise((resolve) => http.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  async function sendAndParse(message) {
    await client.send(message);
    const raw = server.messages.at(-1).raw;
    return { raw: raw.toString('latin1'), mail: await simpleParser(raw), got: server.messages.at(-1) };
  }

  test('threading, date, priority and sender', async () => {
    const { raw, mail } = await sendAndParse({
      ...base,
      sender: { name: 'List Robot', address: 'robot@example.com' },
      inReplyTo: '<first@example.com>',
      references: ['<root@example.com>', '<a@example.com> <first@example.com>'],
      date: new Date('2024-02-29T12:34:56Z'),
      priority: 'high',
      text: 'x',
    });
    assert.match(raw, /^Sender: List Robot <robot@example.com>\r\n/m);
    assert.match(raw, /^In-Reply-To: <first@example.com>\r\n/m);
    assert.match(raw, /^References: <root@example.com> <a@example.com> <first@example.com>\r\n/m);
    assert.match(raw, /^Date: Thu, 29 Feb 2024 12:34:56 \+0000\r\n/m);
    assert.match(raw, /^X-Priority: 1 \(Highest\)\r\nX-MSMail-Priority: High\r\nImportance: High\r\n/m);
    assert.equal(mail.inReplyTo, '<first@example.com>');
    assert.deepEqual(mail.references, ['<root@example.com>', '<a@example.com>', '<first@example.com>']);
    assert.equal(mail.date.toISOString(), '2024-02-29T12:34:56.000Z');
    const low = await sendAndParse({ ...base, priority: 'low', date: '2024-01-01T00:00:00Z', text: 'x' });
    assert.match(low.raw, /^X-Priority: 5 \(Lowest\)\r\nX-MSMail-Priority: Low\r\nImportance: Low\r\n/m);
    assert.match(low.raw, /^Date: Mon, 01 Jan 2024 00:00:00 \+0000\r\n/m);
    const normal = await sendAndParse({ ...base, priority: 'normal', text: 'x' });
    assert.doesNotMatch(normal.raw, /Priority|Importance/);
  });

  test('list: List-* headers and one-click unsubscribe (RFC 8058)', async () => {
    const { raw } = await sendAndParse({
      ...base,
      text: 'x',
      list: {
        help: 'admin@example.com?subject=help',
        unsubscribe: [{ url: 'https://example.com/u?id=42', comment: 'Unsubscribe' }, ['mailto:u@example.com', 'example.com/unsub']],
        id: { url: 'news.example.com', comment: 'Example News' },
        oneClick: true,
      },
    });
    assert.match(raw, /^List-Help: <mailto:admin@example.com\?subject=help>\r\n/m);
    assert.match(raw, /^List-Unsubscribe: <https:\/\/example.com\/u\?id=42> \(Unsubscribe\)\r\n/m);
    assert.match(raw, /^List-Unsubscribe: <mailto:u@example.com>, <http:\/\/example.com\/unsub>\r\n/m);
    assert.match(raw, /^List-Id: "Example News" <news.example.com>\r\n/m);
    assert.match(raw, /^List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n/m);
    await assert.rejects(client.send({ ...base, text: 'x', list: { unsubscribe: 'mailto:u@example.com', oneClick: true } }), /EINPUT.*one-click unsubscribe needs an https/);
    await assert.rejects(client.send({ ...base, text: 'x', list: { unsubscribe: 'https://e.example/u\r\nBcc: x' } }), /EINPUT/);
    await assert.rejects(client.send({ ...base, text: 'x', list: { bogus: 'x' } }), /EINPUT.*`bogus` in list/);
    await assert.rejects(client.send({ ...base, text: 'x', list: { help: { url: 'https://h.example', comment: 'Hilfe für Käufer' } } }), /EINPUT.*printable ASCII/);
    await assert.rejects(client.send({ ...base, text: 'x', list: { id: ['a.example', 'b.example'] } }), (e) => e.code === 'EINPUT');
  });

  test('Sender, In-Reply-To and References are written from their fields only', async () => {
    await assert.rejects(
      client.send({ ...base, text: 'x', headers: { 'In-Reply-To': '<a@b.c>' } }),
      /EINPUT.*In-Reply-To cannot be set through headers.*inReplyTo field/,
    );
    await assert.rejects(client.send({ ...base, text: 'x', headers: [['references', '<a@b.c>']] }), /EINPUT.*references field/);
    await assert.rejects(client.send({ ...base, text: 'x', inReplyTo: 'not an id' }), /EINPUT.*not a valid Message-ID/);
    await assert.rejects(client.send({ ...base, text: 'x', date: 'yesterday' }), /EINPUT.*not a valid time/);
    await assert.rejects(client.send({ ...base, text: 'x', priority: 'urgent' }), /EINPUT.*priority/);
    await assert.rejects(client.send({ ...base, text: 'x', sender: 'not an address' }), /EINPUT/);
  });

  test('icalEvent: a text/calendar alternative with its method, and invite.ics attached', async () => {
    const ics = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nSUMMARY:Réunion\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';
    const { raw, mail } = await sendAndParse({ ...base, text: 'Meeting', html: '<p>Meeting</p>', icalEvent: { method: 'request', content: ics } });
    assert.match(raw, /Content-Type: multipart\/alternative/);
    assert.match(raw, /Content-Type: text\/calendar; charset=utf-8; method=REQUEST\r\n/);
    assert.equal(mail.text.trim(), 'Meeting');
    const invite = mail.attachments.find((a) => a.filename === 'invite.ics');
    assert.ok(invite, 'invite.ics attached');
    assert.equal(invite.contentType, 'application/ics');
    assert.equal(invite.content.toString('utf8'), ics);
    const calendar = mail.attachments.find((a) => a.contentType === 'text/calendar');
    assert.ok(calendar, 'the text/calendar alternative');
    assert.equal(calendar.content.toString('utf8'), ics);
  });

  test('alternatives sit next to text and html', async () => {
    const { raw, mail } = await sendAndParse({
      ...base,
      text: 'plain',
      alternatives: [{ contentType: 'text/x-web-markdown', content: '**bold**' }],
    });
    assert.match(raw, /multipart\/alternative/);
    assert.doesNotMatch(raw, /multipart\/mixed/);
    assert.equal(mail.text.trim(), 'plain');
    const md = mail.attachments.find((a) => a.contentType === 'text/x-web-markdown');
    assert.equal(md.content.toString(), '**bold**');
  });

  test("attachment encodings: base64, hex and binary strings are the bytes they stand for", async () => {
    const pdf = bytesOf(5000, 31);
    const { mail } = await sendAndParse({
      ...base,
      text: 'x',
      attachments: [
        { filename: 'invoice.pdf', content: Buffer.from(pdf).toString('base64'), encoding: 'base64' },
        { filename: 'a.bin', content: Buffer.from(pdf).toString('hex'), encoding: 'hex' },
        { filename: 'b.bin', content: Buffer.from(pdf).toString('binary'), encoding: 'binary' },
        { filename: 'c.txt', content: 'Grüße' },
      ],
    });
    const byName = Object.fromEntries(mail.attachments.map((a) => [a.filename, a.content]));
    for (const name of ['invoice.pdf', 'a.bin', 'b.bin']) assert.equal(sha(byName[name]), sha(pdf), name);
    assert.equal(byName['c.txt'].toString('utf8'), 'Grüße');
    await assert.rejects(client.send({ ...base, attachments: [{ content: 'not base64!', encoding: 'base64' }] }), /EINPUT.*not valid base64/);
    await assert.rejects(client.send({ ...base, attachments: [{ content: 'abc', encoding: 'hex' }] }), /EINPUT.*not valid hex/);
    await assert.rejects(client.send({ ...base, attachments: [{ content: 'ĀĀ', encoding: 'binary' }] }), /EINPUT.*above 255/);
    await assert.rejects(client.send({ ...base, attachments: [{ content: 'x', encoding: 'ebcdic' }] }), /EINPUT.*ebcdic/);
    await assert.rejects(client.send({ ...base, attachments: [{ content: new Uint8Array(1), encoding: 'base64' }] }), /EINPUT.*encoding applies to content given as a string/);
  });

  test('attachments from path (streamed) and href (fetched), with their own headers', async () => {
    const file = join(dir, 'big.bin');
    const data = bytesOf(1_000_000, 3);
    writeFileSync(file, data);
    const { mail, raw } = await sendAndParse({
      ...base,
      text: 'x',
      attachments: [
        { filename: 'big.bin', path: file, headers: { 'X-Part': 'one' } },
        { filename: 'served.bin', href: `${httpUrl}/file.bin` },
        { filename: 'data.txt', path: 'data:text/plain;base64,aGVsbG8=' },
        { filename: 'b64.bin', content: 'AAEC', encoding: 'base64', contentTransferEncoding: 'base64' },
      ],
    });
    const byName = Object.fromEntries(mail.attachments.map((a) => [a.filename, a.content]));
    assert.equal(sha(byName['big.bin']), sha(data));
    assert.equal(sha(byName['served.bin']), sha(served));
    assert.equal(byName['data.txt'].toString(), 'hello');
    assert.deepEqual([...byName['b64.bin']], [0, 1, 2]);
    assert.match(raw, /filename="big.bin"\r\nX-Part: one\r\n/);
  });

  test('a missing file is EINPUT before connecting; a failed fetch ends the message unsent', async () => {
    const before = server.connections;
    const count = server.messages.length;
    await assert.rejects(client.send({ ...base, attachments: [{ path: join(dir, 'nope.pdf') }] }), (error) => {
      assert.equal(error.code, 'EINPUT');
      assert.match(error.message, /nope.pdf.*cannot be read/);
      return true;
    });
    assert.equal(server.connections, before);
    await assert.rejects(client.send({ ...base, text: 'x', attachments: [{ filename: 'x', href: `${httpUrl}/missing` }] }), (error) => {
      assert.ok(error instanceof SmtpError);
      assert.equal(error.code, 'EINPUT');
      assert.match(error.message, /HTTP 404/);
      return true;
    });
    assert.equal(server.messages.length, count, 'nothing delivered');
  });

  test('refused attachment forms name what to use', async () => {
    const before = server.messages.length;
    await assert.rejects(client.send({ ...base, attachments: [{ raw: 'Content-Type: text/plain\r\n\r\nx', filename: 'x.txt' }] }), /EINPUT.*raw MIME and also has filename/);
    await assert.rejects(client.send({ ...base, attachments: [{ content: 'x', contentTransferEncoding: 'x-uuencode' }] }), /EINPUT.*"x-uuencode".*quoted-printable/);
    // Checked before anything is sent: 7bit content that is not, raw parts that are not MIME.
    await assert.rejects(client.send({ ...base, attachments: [{ content: 'Grüße', contentTransferEncoding: '7bit' }] }), /EINPUT.*attachment 0 has a byte above 127/);
    await assert.rejects(client.send({ ...base, attachments: [{ content: 'x'.repeat(999), contentTransferEncoding: '7bit' }] }), /EINPUT.*longer than 998/);
    await assert.rejects(client.send({ ...base, attachments: [{ raw: 'no headers here\r\n\r\nbody' }] }), /EINPUT.*'Name: value'/);
    await assert.rejects(client.send({ ...base, attachments: [{ raw: 'Content-Type: text/plain' }] }), /EINPUT.*no empty line/);
    assert.equal(server.messages.length, before);
    await assert.rejects(client.send({ ...base, attachments: [{ content: 'x', path: '/etc/hosts' }] }), /EINPUT.*both content and path/);
    await assert.rejects(client.send({ ...base, attachments: [{ content: 'x', headers: { 'Content-Type': 'text/html' } }] }), /EINPUT.*Content-Type of attachment 0 cannot be set/);
  });

  test('contentTransferEncoding and raw parts: the bytes on the wire', async () => {
    const sent = await sendAndParse({
      ...base,
      text: 'x',
      attachments: [
        { filename: 'q.txt', content: 'caf\u00e9 = ok\r\n', contentTransferEncoding: 'quoted-printable' },
        { filename: 's.txt', content: 'seven\nbits', contentTransferEncoding: '7bit' },
        { filename: 'e.txt', content: 'Grüße', contentTransferEncoding: '8BIT' },
        { raw: 'Content-Type: text/plain; charset=us-ascii\nContent-Disposition: attachment; filename="r.txt"\n\nraw\rbody' },
      ],
    });
    assert.match(sent.raw, /Content-Type: text\/plain; name="q.txt"\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Disposition: attachment; filename="q.txt"\r\n\r\ncaf=C3=A9 =3D ok\r\n\r\n--/);
    assert.match(sent.raw, /Content-Transfer-Encoding: 7bit\r\nContent-Disposition: attachment; filename="s.txt"\r\n\r\nseven\r\nbits\r\n--/);
    // 8bit: the UTF-8 bytes as they are, and the message declared BODY=8BITMIME.
    assert.ok(sent.got.raw.includes(Buffer.from('Content-Transfer-Encoding: 8bit\r\nContent-Disposition: attachment; filename="e.txt"\r\n\r\nGrüße\r\n')));
    assert.equal(sent.got.mailArgs.BODY, '8BITMIME');
    // raw: the part as given, bare CR and LF made CRLF.
    assert.match(sent.raw, /\r\n--[^\r]+\r\nContent-Type: text\/plain; charset=us-ascii\r\nContent-Disposition: attachment; filename="r.txt"\r\n\r\nraw\r\nbody\r\n--/);
    assert.deepEqual(sent.mail.attachments.map((a) => [a.filename, a.content.toString()]), [['q.txt', 'café = ok\r\n'], ['s.txt', 'seven\r\nbits'], ['e.txt', 'Grüße'], ['r.txt', 'raw\r\nbody']]);
  });

  test('raw parts from a file and from a function that opens a stream', async () => {
    const part = 'Content-Type: text/plain\r\nContent-Disposition: attachment; filename="f.txt"\r\n\r\nfrom a file';
    const file = join(dir, 'part.eml');
    writeFileSync(file, part);
    const sent = await sendAndParse({
      ...base,
      text: 'x',
      attachments: [{ raw: { path: file } }, { raw: () => Readable.from([part.replace(/f\.txt/, 'g.txt').replace('from a file', 'from a function')]) }],
    });
    assert.deepEqual(sent.mail.attachments.map((a) => [a.filename, a.content.toString()]), [['f.txt', 'from a file'], ['g.txt', 'from a function']]);
    await assert.rejects(client.send({ ...base, attachments: [{ raw: { path: join(dir, 'missing.eml') } }] }), /EINPUT.*missing\.eml/);
  });

  test('an 8bit part to a server without 8BITMIME is refused before DATA', async () => {
    const plain = await startServer({ tls: 'none', hide8BITMIME: true });
    const other = createClient({ host: '127.0.0.1', port: plain.port, security: 'none' });
    try {
      await assert.rejects(other.send({ ...base, attachments: [{ content: 'Grüße', contentTransferEncoding: '8bit' }] }), (error) => error.code === 'EMESSAGE' && /8BITMIME/.test(error.message));
      assert.equal(plain.messages.length, 0);
    } finally {
      await other.close();
      await plain.close();
    }
  });

  test('a streamed part that breaks its encoding fails the message, and nothing is delivered', async () => {
    const before = server.messages.length;
    const lines = Readable.from(['fine\r\n', 'x'.repeat(600), 'x'.repeat(600)]);
    await assert.rejects(client.send({ ...base, attachments: [{ filename: 'l.txt', content: lines, contentTransferEncoding: '7bit' }] }), /EINPUT.*longer than 998/);
    await assert.rejects(client.send({ ...base, text: Readable.from([Buffer.from([0x6f, 0x6b, 0xc3]), Buffer.from([0x28])]) }), /EINPUT.*text body is not valid UTF-8/);
    assert.equal(server.messages.length, before);
  });

  test('bodies from a stream, a file and a URL', async () => {
    const file = join(dir, 'body.txt');
    writeFileSync(file, 'text from a file, ünïcode\n');
    const streamed = await sendAndParse({ ...base, text: { path: file }, html: Readable.from(['<p>from ', 'a stream</p>']) });
    assert.equal(streamed.mail.text, 'text from a file, ünïcode\n');
    assert.equal(streamed.mail.html, '<p>from a stream</p>');
    const fetched = await sendAndParse({ ...base, html: { href: `${httpUrl}/body.html`, httpHeaders: { 'x-token': 'secret' } } });
    assert.equal(fetched.mail.html.trim(), '<p>from a URL</p>');
    const web = await sendAndParse({ ...base, text: new Blob(['from a web stream']).stream() });
    assert.equal(web.mail.text.trim(), 'from a web stream');
    await assert.rejects(client.send({ ...base, text: { path: join(dir, 'missing.txt') } }), /EINPUT.*missing.txt/);
  });
});
