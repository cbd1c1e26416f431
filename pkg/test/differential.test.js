// The same message objects sent through nodemailer (pinned in
// devDependencies) and through wasmtp/nodemailer to the same smtp-server,
// both parsed with mailparser: every header that matters, every part and
// every attachment's bytes must agree. A difference fails unless ALLOWED
// lists it with its reason.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';

import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';

import { createTransport } from 'wasmtp/nodemailer';
import { startServer } from './helpers/server.js';

/**
 * Differences that are expected, with the reason. Fields not listed here
 * must be equal.
 */
const ALLOWED = {
  // Generated from random bytes by each library (compared when the message gives one).
  messageId: 'a generated Message-ID is random',
  // The time of sending (compared when the message gives a date).
  date: 'a generated Date is the time of sending',
  // Boundaries and transfer encodings are not compared at all: the parts are compared decoded.
};

const ICS = 'BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:42@example.com\r\nSUMMARY:Réunion\r\nDTSTART:20240501T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n';
const bytes = (n, seed) => Buffer.from(Uint8Array.from({ length: n }, (_, i) => (i * seed + (i >> 9)) & 0xff));
const BIN = bytes(70_000, 11);
const BIG = bytes(1_200_000, 7);

/** The message shapes: functions, because a stream can be read once. */
const RAW_PART = `Content-Type: application/octet-stream; name="raw.bin"\r\nContent-Disposition: attachment; filename="raw.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\n${BIN.subarray(0, 3000).toString('base64').replace(/.{76}/g, '$&\r\n')}`;
const LARGE_TEXT_CHUNKS = Array.from({ length: 40 }, (_, i) => `Chunk ${i}: Grüße, ☕ 😀 and a line longer than seventy-eight characters, which gets wrapped.\n`.repeat(300));

function shapes({ file, bodyFile, httpUrl, icsFile }) {
  const base = { from: 'Ann <ann@example.com>', to: 'bob@example.org' };
  return {
    'text only': () => ({ ...base, subject: 'plain', text: 'Hello Bob,\nsee you.\n' }),
    'html only': () => ({ ...base, subject: 'html', html: '<p>Hello <b>Bob</b></p>' }),
    'text and html': () => ({ ...base, subject: 'both', text: 'Hello', html: '<p>Hello</p>' }),
    'no body at all': () => ({ ...base, subject: 'empty' }),
    'unicode subject and text': () => ({ ...base, subject: 'Grüße aus Köln – ☕ 😀', text: 'Ünïcödé body ✓\n' }),
    'long subject is folded': () => ({ ...base, subject: 'A very long subject line '.repeat(12).trim(), text: 'x' }),
    'display names and address forms': () => ({
      from: { name: 'Doe, Ann "A."', address: 'ann@example.com' },
      to: ['Bob <bob@example.org>', { name: 'Zoë Ärger', address: 'zoe@example.org' }, 'carol@example.org'],
      text: 'x',
    }),
    'cc and bcc': () => ({ ...base, cc: ['cc1@example.org', 'Cc Two <cc2@example.org>'], bcc: 'hidden@example.org', text: 'x' }),
    'reply-to': () => ({ ...base, replyTo: 'Replies <replies@example.com>', text: 'x' }),
    sender: () => ({ ...base, sender: 'Robot <robot@example.com>', text: 'x' }),
    'threading with an array of references': () => ({ ...base, inReplyTo: '<first@example.com>', references: ['<root@example.com>', '<first@example.com>'], subject: 'Re: x', text: 'x' }),
    'threading given as headers': () => ({ ...base, headers: { 'In-Reply-To': '<first@example.com>', References: '<root@example.com> <first@example.com>' }, text: 'x' }),
    'references as a string': () => ({ ...base, references: '<a@example.com> <b@example.com>', text: 'x' }),
    'a given date': () => ({ ...base, date: new Date('2024-02-29T12:34:56Z'), text: 'x' }),
    'a given message id': () => ({ ...base, messageId: '<given-id@example.com>', text: 'x' }),
    'priority high': () => ({ ...base, priority: 'high', text: 'x' }),
    'priority low': () => ({ ...base, priority: 'low', text: 'x' }),
    'priority normal': () => ({ ...base, priority: 'normal', text: 'x' }),
    'list headers': () => ({ ...base, text: 'x', list: { help: 'admin@example.com?subject=help', unsubscribe: { url: 'https://example.com/u?id=1', comment: 'Unsubscribe' }, id: { url: 'news.example.com', comment: 'Example News' } } }),
    'list with several urls and headers': () => ({ ...base, text: 'x', list: { unsubscribe: [['mailto:u@example.com', 'https://example.com/u']], archive: 'https://example.com/archive', post: 'post@example.com' } }),
    'custom headers': () => ({ ...base, text: 'x', headers: { 'X-Campaign': 'spring-2024', 'X-Unicode': 'Grüße' } }),
    'repeated custom header': () => ({ ...base, text: 'x', headers: { 'X-Tag': ['one', 'two'] } }),
    'calendar invitation (string)': () => ({ ...base, subject: 'Meeting', text: 'Please come', icalEvent: ICS }),
    'calendar invitation with method and filename': () => ({ ...base, subject: 'Meeting', text: 'Please come', html: '<p>Please come</p>', icalEvent: { method: 'request', filename: 'meeting.ics', content: ICS } }),
    alternatives: () => ({ ...base, text: 'plain', alternatives: [{ contentType: 'text/x-web-markdown', content: '**bold**' }] }),
    'attachment from a string': () => ({ ...base, text: 'x', attachments: [{ filename: 'notes.txt', content: 'Some notes, ünïcode.\n' }] }),
    'attachment from a buffer': () => ({ ...base, text: 'x', attachments: [{ filename: 'data.bin', content: BIN }] }),
    'attachment in base64': () => ({ ...base, text: 'x', attachments: [{ filename: 'invoice.pdf', content: BIN.toString('base64'), encoding: 'base64' }] }),
    'attachment in hex': () => ({ ...base, text: 'x', attachments: [{ filename: 'a.bin', content: BIN.subarray(0, 5000).toString('hex'), encoding: 'hex' }] }),
    'attachment in binary': () => ({ ...base, text: 'x', attachments: [{ filename: 'b.bin', content: BIN.subarray(0, 5000).toString('binary'), encoding: 'binary' }] }),
    'attachment from a file path': () => ({ ...base, text: 'x', attachments: [{ filename: 'report.pdf', path: file }] }),
    'attachment from a URL': () => ({ ...base, text: 'x', attachments: [{ filename: 'served.bin', href: `${httpUrl}/file.bin` }] }),
    'attachment from a data: URL': () => ({ ...base, text: 'x', attachments: [{ filename: 'hello.txt', path: 'data:text/plain;base64,aGVsbG8gd29ybGQ=' }] }),
    'attachment from a stream': () => ({ ...base, text: 'x', attachments: [{ filename: 'stream.bin', content: Readable.from([BIN.subarray(0, 30_000), BIN.subarray(30_000)]) }] }),
    'inline image with cid in html': () => ({ ...base, text: 'see html', html: '<img src="cid:logo@example.com">', attachments: [{ filename: 'logo.png', content: BIN.subarray(0, 2000), cid: 'logo@example.com' }] }),
    'inline disposition without cid': () => ({ ...base, text: 'x', attachments: [{ filename: 'shown.txt', content: 'inline text', contentDisposition: 'inline' }] }),
    'attachment with its own headers': () => ({ ...base, text: 'x', attachments: [{ filename: 'tagged.txt', content: 'x', headers: { 'X-Part-Tag': 'tagged' } }] }),
    'explicit content type': () => ({ ...base, text: 'x', attachments: [{ filename: 'data.csv', content: 'a,b\n1,2\n', contentType: 'text/csv' }] }),
    'unicode file names': () => ({ ...base, text: 'x', attachments: [{ filename: 'Größenübersicht März.pdf', content: BIN.subarray(0, 100) }, { filename: '日本語のファイル.txt', content: 'x' }] }),
    'a large attachment': () => ({ ...base, text: 'x', attachments: [{ filename: 'big.zip', content: BIG }] }),
    'html from a file path': () => ({ ...base, text: 'x', html: { path: bodyFile } }),
    'text from a buffer': () => ({ ...base, text: Buffer.from('from a buffer: ünïcode\n') }),
    'html from a stream': () => ({ ...base, html: Readable.from(['<p>from ', 'a stream</p>']) }),
    'text from a URL': () => ({ ...base, text: { href: `${httpUrl}/body.txt` } }),
    'lines with dots and long lines': () => ({ ...base, text: `.leading dot\n..two\n.\n${'x'.repeat(1500)}\nend` }),
    'CRLF and LF mixed text': () => ({ ...base, text: 'one\r\ntwo\nthree\r\n' }),
    // contentTransferEncoding per attachment (8bit: smtp-server announces 8BITMIME).
    'attachment in quoted-printable (text)': () => ({ ...base, text: 'x', attachments: [{ filename: 'qp.txt', content: 'Grüße = 100%\r\nline two \r\n' + 'long '.repeat(40) + '\r\n', contentTransferEncoding: 'quoted-printable' }] }),
    'attachment in quoted-printable (binary)': () => ({ ...base, text: 'x', attachments: [{ filename: 'qp.bin', content: BIN.subarray(0, 4000), contentTransferEncoding: 'quoted-printable' }] }),
    'attachment in quoted-printable from a stream': () => ({ ...base, text: 'x', attachments: [{ filename: 'qps.bin', content: Readable.from([BIN.subarray(0, 1001), BIN.subarray(1001, 3000)]), contentTransferEncoding: 'quoted-printable' }] }),
    'attachment in 7bit': () => ({ ...base, text: 'x', attachments: [{ filename: 'seven.txt', content: 'plain ascii\r\nlines\r\n', contentTransferEncoding: '7bit' }] }),
    'attachment in 8bit': () => ({ ...base, text: 'x', attachments: [{ filename: 'eight.txt', content: 'Grüße aus Köln\r\n', contentTransferEncoding: '8bit' }] }),
    'attachment in base64, named': () => ({ ...base, text: 'x', attachments: [{ filename: 'named.bin', content: BIN.subarray(0, 999), contentTransferEncoding: 'base64' }] }),
    // raw: the whole MIME part, given by the caller.
    'raw attachment': () => ({ ...base, text: 'x', attachments: [{ raw: RAW_PART }] }),
    'raw attachment from a stream': () => ({ ...base, text: 'x', attachments: [{ raw: Readable.from([RAW_PART.slice(0, 50), RAW_PART.slice(50)]) }] }),
    'raw alternative': () => ({ ...base, text: 'plain', alternatives: [{ raw: 'Content-Type: text/x-web-markdown; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n**raw md**' }] }),
    // Bodies streamed through the encoder.
    'large text from a stream': () => ({ ...base, text: Readable.from(LARGE_TEXT_CHUNKS), html: Readable.from(['<p>', 'é'.repeat(50_000), '</p>']) }),
    'calendar invitation from a file path': () => ({ ...base, subject: 'Meeting', text: 'Please come', icalEvent: { method: 'REQUEST', path: icsFile } }),
    'envelope override': () => ({ ...base, to: 'list@example.org', envelope: { from: 'bounces+42@example.com', to: ['only@example.org'] }, text: 'x' }),
    'dsn options': () => ({ ...base, text: 'x', dsn: { id: 'env-1', return: 'headers', notify: ['failure', 'delay'] } }),
    'international domains': () => ({ from: 'Jörg <joerg@bücher.example>', to: 'anna@münchen.de', text: 'x' }),
    'raw message': () => ({ raw: 'From: ann@example.com\r\nTo: bob@example.org\r\nSubject: raw\r\nMessage-ID: <raw@example.com>\r\n\r\nraw body\r\n', envelope: { from: 'ann@example.com', to: ['bob@example.org'] } }),
    'everything at once': () => ({
      ...base,
      cc: 'cc@example.org',
      replyTo: 'r@example.com',
      subject: 'All of it ✓',
      text: 'text',
      html: '<p>html <img src="cid:pic@example.com"></p>',
      attachments: [{ filename: 'pic.png', content: BIN.subarray(0, 500), cid: 'pic@example.com' }, { filename: 'doc.pdf', content: BIN.subarray(0, 9000) }],
      alternatives: [{ contentType: 'text/x-web-markdown', content: '# md' }],
      icalEvent: { method: 'PUBLISH', content: ICS },
      headers: { 'X-All': 'yes' },
      priority: 'high',
      list: { unsubscribe: 'https://example.com/u' },
    }),
  };
}

const sha = (buffer) => createHash('sha256').update(buffer).digest('hex');

/** What a reader sees of a message, normalized for comparison. */
function view(parsed, envelope, message) {
  const addresses = (field) => parsed[field]?.value?.map(({ name, address }) => ({ name, address })) ?? null;
  const customHeaders = [...parsed.headerLines]
    .filter(({ key }) => /^x-|^importance$|^list-|^sender$/.test(key))
    .map(({ key, line }) => `${key}: ${line.slice(line.indexOf(':') + 1).replace(/\r?\n[ \t]+/g, ' ').trim()}`)
    .sort();
  const out = {
    envelope,
    from: addresses('from'),
    to: addresses('to'),
    cc: addresses('cc'),
    bcc: addresses('bcc'),
    replyTo: addresses('replyTo'),
    subject: parsed.subject ?? null,
    inReplyTo: parsed.inReplyTo ?? null,
    references: parsed.references ?? null,
    messageId: parsed.messageId ?? null,
    date: parsed.date?.toISOString() ?? null,
    headers: customHeaders,
    text: parsed.text?.replace(/\n$/, '') ?? null,
    html: typeof parsed.html === 'string' ? parsed.html.replace(/\n$/, '') : null,
    attachments: parsed.attachments
      .map((a) => ({
        filename: a.filename ?? null,
        contentType: a.contentType,
        disposition: a.contentDisposition ?? null,
        cid: a.cid ?? null,
        related: a.related === true,
        method: a.contentType === 'text/calendar' ? (a.headers.get('content-type')?.params?.method ?? null) : undefined,
        size: a.content.length,
        sha256: sha(a.content),
        headers: [...a.headers].filter(([key]) => key.startsWith('x-')).map(([key, value]) => `${key}: ${value}`),
      }))
      .sort((a, b) => `${a.filename}|${a.contentType}|${a.sha256}`.localeCompare(`${b.filename}|${b.contentType}|${b.sha256}`)),
  };
  // Generated values are compared only when the message gave them.
  if (message.messageId === undefined && message.raw === undefined) delete out.messageId;
  if (message.date === undefined && message.raw === undefined) delete out.date;
  return out;
}

describe('nodemailer and wasmtp deliver the same messages', () => {
  let server;
  let http;
  let dir;
  let nm;
  let ours;
  let context;
  before(async () => {
    server = await startServer({ tls: 'none', hideDSN: false });
    dir = mkdtempSync(join(tmpdir(), 'wasmtp-diff-'));
    const file = join(dir, 'report.pdf');
    writeFileSync(file, BIN);
    const bodyFile = join(dir, 'body.html');
    writeFileSync(bodyFile, '<h1>From a file</h1><p>ünïcode</p>');
    const icsFile = join(dir, 'invite.ics');
    writeFileSync(icsFile, ICS);
    http = createServer((req, res) => {
      if (req.url === '/file.bin') res.end(BIN);
      else if (req.url === '/body.txt') res.end('text from a URL\n');
      else {
        res.writeHead(404);
        res.end();
      }
    });
    await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
    context = { file, bodyFile, icsFile, httpUrl: `http://127.0.0.1:${http.address().port}` };
    const options = { host: '127.0.0.1', port: server.port, secure: false, ignoreTLS: true };
    nm = nodemailer.createTransport(options);
    ours = createTransport(options);
  });
  after(async () => {
    nm.close();
    await ours.close();
    await server.close();
    await new Promise((resolve) => http.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  /** Sends with one library; returns what arrived and the MAIL/RCPT parameters. */
  async function deliver(transporter, message) {
    const count = server.messages.length;
    const info = await transporter.sendMail(message);
    assert.equal(server.messages.length, count + 1);
    const got = server.messages.at(-1);
    return { info, got, parsed: await simpleParser(got.raw) };
  }

  const names = Object.keys(shapes({}));
  test(`covers at least 40 message shapes (${names.length})`, () => assert.ok(names.length >= 40));

  for (const name of names) {
    test(name, async () => {
      const make = shapes(context)[name];
      const theirs = await deliver(nm, make());
      const mine = await deliver(ours, make());
      const message = make();
      const expected = view(theirs.parsed, { from: theirs.got.from, to: theirs.got.to }, message);
      const actual = view(mine.parsed, { from: mine.got.from, to: mine.got.to }, message);
      assert.deepEqual(actual, expected);
      // The DSN parameters on the wire agree too.
      assert.deepEqual(mine.got.mailArgs.RET ?? null, theirs.got.mailArgs.RET ?? null);
      assert.deepEqual(mine.got.mailArgs.ENVID ?? null, theirs.got.mailArgs.ENVID ?? null);
      assert.deepEqual(mine.got.rcptArgs.map((a) => a.NOTIFY ?? null), theirs.got.rcptArgs.map((a) => a.NOTIFY ?? null));
      // And the result the caller sees.
      assert.deepEqual(mine.info.envelope, theirs.info.envelope);
      assert.deepEqual(mine.info.accepted, theirs.info.accepted);
      assert.deepEqual(mine.info.rejected, theirs.info.rejected);
    });
  }

  test('the allow-list only names generated values', () => assert.deepEqual(Object.keys(ALLOWED).sort(), ['date', 'messageId']));
});
