// The npm package against a real Postfix (a private instance on 127.0.0.1,
// tests/servers/postfix/): several messages over one connection with SASL
// over STARTTLS, on the BDAT/CHUNKING path with PIPELINING and on the DATA
// path (a second smtpd without CHUNKING). Every message is compared with
// what Postfix stored, byte for byte, after the Received: header it adds.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { createClient } from '../src/index.js';
import { POSTFIX_PASS, POSTFIX_USER, makeCertificates, startPostfix, stripReceived } from './helpers/postfix.js';

/** A raw message; `body` lines are CRLF-terminated. */
function message(tag, body) {
  return Buffer.from(
    `From: Sender <s@client.test>\r\nTo: r@y.test\r\nSubject: ${tag}\r\nMessage-ID: <${tag}@client.test>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${body}`,
    'utf8',
  );
}

/** Lines that need care on the wire: dots (DATA stuffing), 8-bit text, a bare "." line. */
const TRICKY = '.leading dot\r\n..two dots\r\n.\r\nGrüße, ça va? 日本語\r\n\r\nend\r\n';

function bigText(size) {
  let out = '';
  for (let i = 0; out.length < size; i++) out += `${String(i).padStart(6, '0')} ${'abcdefghij'.repeat(7)}\r\n`;
  return out;
}

const BODIES = [
  message('pf-0', 'short\r\n'),
  message('pf-1', TRICKY),
  message('pf-2', bigText(300_000)), // several BDAT chunks
  message('pf-3', `${TRICKY}${bigText(5_000)}`),
  message('pf-4', ''),
];

/** Sends BODIES concurrently over one connection; returns results and the transcript. */
async function sendBatch(port, ca) {
  const transcript = [];
  const client = createClient({
    host: 'localhost',
    port,
    security: 'starttls',
    tls: { ca },
    auth: { user: POSTFIX_USER, pass: POSTFIX_PASS },
    clientName: 'client.test',
    pool: { maxConnections: 1 },
    onTranscript: (line) => transcript.push(`${line.dir}: ${line.text}`),
  });
  try {
    const results = await Promise.all(
      BODIES.map((raw, i) =>
        client.send({
          raw,
          envelope: { from: `s${i}@client.test`, to: i === 1 ? ['a@y.test', 'reject-1@y.test', 'b@z.test'] : [`r${i}@y.test`] },
        }),
      ),
    );
    await client.close();
    return { results, transcript };
  } catch (error) {
    await client.close().catch(() => {});
    error.message += `\ntranscript:\n${transcript.join('\n')}`;
    throw error;
  }
}

/** Message i's MAIL FROM was written before message i-1's final reply arrived. */
function assertPipelined(transcript, n) {
  const text = transcript.join('\n');
  const finals = transcript.flatMap((l, i) => (/^S: 250 .*queued as/.test(l) ? [i] : []));
  assert.equal(finals.length, n, `one final reply per message:\n${text}`);
  for (let i = 1; i < n; i++) {
    const mail = transcript.findIndex((l) => l.startsWith(`C: MAIL FROM:<s${i}@client.test>`));
    assert.ok(mail >= 0, `no MAIL FROM for message ${i}:\n${text}`);
    assert.ok(mail < finals[i - 1], `message ${i}'s MAIL FROM waited for message ${i - 1}'s final reply:\n${text}`);
  }
}

/** The session set-up: STARTTLS verified, then AUTH (redacted), before any MAIL. */
function assertSecureSetup(transcript) {
  const text = transcript.join('\n');
  const starttls = transcript.indexOf('C: STARTTLS');
  const tls = transcript.findIndex((l) => /^tls: TLSv1\.[23] .*established, certificate verified/.test(l));
  const auth = transcript.findIndex((l) => /^C: AUTH (PLAIN|LOGIN|CRAM-MD5)/.test(l));
  const firstMail = transcript.findIndex((l) => l.startsWith('C: MAIL FROM:'));
  assert.ok(starttls >= 0 && starttls < tls && tls < auth && auth < firstMail, text);
  assert.ok(transcript.some((l) => /^S: 235 /.test(l)), text);
  assert.ok(!text.includes(POSTFIX_PASS) && !text.includes(Buffer.from(POSTFIX_PASS).toString('base64')), 'no secret in the transcript');
  assert.ok(!text.includes('synchronization'), text);
}

async function assertStored(postfix, results) {
  const queueIds = results.map((r, i) => {
    assert.ok(r.queueId, `no queue id in "${r.response}" (message ${i})`);
    return r.queueId;
  });
  const stored = await postfix.waitDelivered(queueIds);
  BODIES.forEach((sent, i) => {
    const got = stripReceived(stored.get(queueIds[i]));
    assert.equal(got.length, sent.length, `message ${i}: ${got.length} bytes stored, ${sent.length} sent`);
    assert.ok(got.equals(sent), `message ${i} differs from what was sent`);
    assert.match(postfix.meta(queueIds[i]), new RegExp(`^sender=s${i}@client\\.test$`, 'm'));
  });
  assert.match(postfix.meta(queueIds[1]), /recipient=a@y\.test\nrecipient=b@z\.test\n/);
}

describe('Postfix (private instance, SASL over STARTTLS)', { timeout: 120_000 }, () => {
  let certs;
  let postfix;
  before(async () => {
    certs = makeCertificates();
    postfix = await startPostfix(certs);
  });
  after(async () => {
    await postfix?.stop();
    certs?.remove();
  });

  test('CHUNKING: BDAT n LAST, pipelined transactions, stored byte for byte', { timeout: 60_000 }, async () => {
    const { results, transcript } = await sendBatch(postfix.port, certs.ca);
    const text = transcript.join('\n');
    assertSecureSetup(transcript);
    assert.ok(transcript.some((l) => /^S: 250[- ]CHUNKING$/.test(l)), text);
    assert.ok(!transcript.includes('C: DATA'), `CHUNKING was offered, so no DATA:\n${text}`);
    const lasts = transcript.filter((l) => /^C: BDAT \d+ LAST( <|$)/.test(l));
    assert.equal(lasts.length, BODIES.length, text);
    assert.ok(transcript.filter((l) => /^C: BDAT \d+( <|$)/.test(l)).length >= 2, `the 300 kB message takes several chunks:\n${text}`);
    assertPipelined(transcript, BODIES.length);

    assert.deepEqual(results[1].accepted, ['a@y.test', 'b@z.test']);
    assert.equal(results[1].rejected.length, 1);
    assert.equal(results[1].rejected[0].address, 'reject-1@y.test');
    assert.equal(results[1].rejected[0].code, 550);
    await assertStored(postfix, results);

    // Postfix's own count of the session: one STARTTLS, one AUTH, BDAT and no DATA.
    const line = await postfix.waitLog(new RegExp(`postfix-wasmtp-${postfix.port}/smtpd.*disconnect from .* starttls=1 .*bdat=`));
    assert.match(line, / auth=1 /);
    assert.match(line, / mail=5 /);
    assert.doesNotMatch(line, / data=/);
  });

  test('DATA (CHUNKING not offered): dot-stuffed, pipelined, stored byte for byte', { timeout: 60_000 }, async () => {
    const { results, transcript } = await sendBatch(postfix.dataPort, certs.ca);
    const text = transcript.join('\n');
    assertSecureSetup(transcript);
    assert.ok(!transcript.some((l) => l.includes('CHUNKING')), text);
    assert.ok(!transcript.some((l) => l.startsWith('C: BDAT')), text);
    assert.equal(transcript.filter((l) => l === 'C: DATA').length, BODIES.length, text);
    assertPipelined(transcript, BODIES.length);
    await assertStored(postfix, results);

    // Postfix's count: all five messages in one session, with DATA.
    const line = await postfix.waitLog(/smtpd.*disconnect from .* data=\d/);
    assert.match(line, / starttls=1 /);
    assert.match(line, / auth=1 /);
    assert.match(line, / mail=5 /);
    assert.match(line, / data=5 /);
    assert.doesNotMatch(line, / bdat=/);
  });
});
