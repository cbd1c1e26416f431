// DKIM signatures made by wasmtp, checked by two independent verifiers:
// OpenDKIM as a milter on a private Postfix (its Authentication-Results on
// each stored message) and dkimpy over every stored message. The keys are
// made by `wasmtp dkim keygen` and published by a dnsmasq on loopback, the
// only DNS the verifiers see.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomBytes, sign as nodeSign, webcrypto } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

import nodemailer from 'nodemailer';
import { createClient } from 'wasmtp';

import { POSTFIX_PASS, POSTFIX_USER, makeCertificates, startPostfix } from '../../pkg/test/helpers/postfix.js';
import { attachMilter, dkimpy, openDkimResults, startDns, startOpenDkim, withoutServerFields } from './helpers.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(ROOT, 'pkg', 'bin', 'wasmtp.js');
const DOMAIN = 'example.com';

const work = mkdtempSync(join(tmpdir(), 'wasmtp-dkim-test-'));
let dns, milter, certs, postfix;
const keys = {};

/** `wasmtp dkim keygen`: the key file and the TXT record it prints. */
function keygen(selector, algorithm) {
  const out = join(work, `${selector}.pem`);
  const printed = JSON.parse(execFileSync(process.execPath, [CLI, 'dkim', 'keygen', '--domain', DOMAIN, '--selector', selector, '--algorithm', algorithm, '--out', out, '--json'], { encoding: 'utf8' }));
  assert.equal((readFileSync(out).length > 0, execFileSync('stat', ['-c', '%a', out], { encoding: 'utf8' }).trim()), '600');
  return { pem: readFileSync(out, 'utf8'), record: { name: printed.name, value: printed.value } };
}

/** The TXT record for a PEM private key (for keys not made by keygen). */
function recordFor(selector, pem) {
  const spki = createPublicKey(pem).export({ type: 'spki', format: 'der' });
  return { name: `${selector}._domainkey.${DOMAIN}`, value: `v=DKIM1; k=rsa; p=${spki.toString('base64')}` };
}

before(async () => {
  keys.rsa = keygen('rsa', 'rsa');
  keys.ed = keygen('ed', 'ed25519');
  keys.other = keygen('other', 'rsa');
  keys.pkcs1 = { pem: readFileSync(join(ROOT, 'tests', 'data', 'dkim-rsa-pkcs1.pem'), 'utf8') };
  assert.match(keys.pkcs1.pem, /BEGIN RSA PRIVATE KEY/);
  keys.pkcs1.record = recordFor('pkcs1', keys.pkcs1.pem);
  dns = await startDns([keys.rsa.record, keys.ed.record, keys.other.record, keys.pkcs1.record]);
  milter = await startOpenDkim(dns.port);
  certs = makeCertificates();
  postfix = await startPostfix(certs);
  attachMilter(postfix, milter.port);
});

after(async () => {
  await postfix?.stop();
  certs?.remove();
  await milter?.stop();
  await dns?.stop();
  if (!process.env.WASMTP_KEEP_TEST_DIRS) rmSync(work, { recursive: true, force: true });
});

function client(dkim, { port = postfix.port, maxConnections = 1, transcript } = {}) {
  return createClient({
    onTranscript: transcript && ((line) => transcript.push(`${line.dir}: ${line.text}`)),
    host: 'localhost',
    port,
    security: 'starttls',
    tls: { ca: certs.ca },
    auth: { user: POSTFIX_USER, pass: POSTFIX_PASS },
    clientName: 'client.test',
    pool: { maxConnections },
    dkim,
  });
}

const key = (name, extra = {}) => ({ domain: DOMAIN, selector: name, privateKey: keys[name].pem, ...extra });

/** Sends each [message, sendOptions] concurrently on one connection; returns the stored messages, saved to files. */
async function sendAndStore(c, messages) {
  try {
    const results = await Promise.all(messages.map(([message, options]) => c.send(message, options)));
    const ids = results.map((r) => r.queueId);
    const stored = await postfix.waitDelivered(ids, 60_000);
    return ids.map((id) => {
      const file = join(work, `${id}.eml`);
      writeFileSync(file, stored.get(id));
      return { file, eml: stored.get(id) };
    });
  } finally {
    await c.close();
  }
}

/** Every selector in `selectors` passes in OpenDKIM and in dkimpy, and nothing else was signed. */
function assertPasses(stored, selectors, label) {
  const py = dkimpy(dns.port, [stored.file])[0].results;
  assert.deepEqual(py.map((r) => [r.s, r.pass]).sort(), selectors.map((s) => [s, true]).sort(), `${label}: dkimpy ${JSON.stringify(py)}`);
  const od = openDkimResults(stored.eml);
  assert.deepEqual(od.map((r) => [r.s, r.result]).sort(), selectors.map((s) => [s, 'pass']).sort(), `${label}: OpenDKIM ${JSON.stringify(od)}\n${milter.output().slice(-2000)}`);
}

const plain = (subject, extra = {}) => ({ from: `Ann <ann@${DOMAIN}>`, to: 'bob@y.test', subject, text: `Hello from ${subject}.\n\nTrailing spaces  \nand\ttabs\n\n\n`, ...extra });

describe('signed messages pass OpenDKIM and dkimpy', () => {
  test('RSA, Ed25519, both at once, PKCS#1, CryptoKey and signer function: pipelined BDAT on one connection', async () => {
    const ed = createPrivateKey(keys.ed.pem);
    const cryptoKey = await webcrypto.subtle.importKey('pkcs8', createPrivateKey(keys.rsa.pem).export({ type: 'pkcs8', format: 'der' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, false, ['sign']);
    const cases = [
      [plain('rsa'), { dkim: key('rsa') }, ['rsa']],
      [plain('ed25519'), { dkim: key('ed') }, ['ed']],
      [plain('both'), { dkim: [key('rsa'), key('ed')] }, ['rsa', 'ed']],
      [plain('pkcs1 simple/simple'), { dkim: key('pkcs1', { canonicalization: 'simple/simple' }) }, ['pkcs1']],
      [plain('cryptokey relaxed/simple'), { dkim: { domain: DOMAIN, selector: 'rsa', privateKey: cryptoKey, canonicalization: 'relaxed/simple' } }, ['rsa']],
      // A KMS-style signer: given what Ed25519 signs (the SHA-256 of the signed data).
      [plain('signer function', { headers: { 'List-Unsubscribe': '<https://example.com/u>', 'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click' } }),
        { dkim: { domain: DOMAIN, selector: 'ed', algorithm: 'ed25519-sha256', privateKey: async (data) => new Uint8Array(nodeSign(null, data, ed)) } }, ['ed']],
    ];
    const transcript = [];
    const stored = await sendAndStore(client(undefined, { transcript }), cases.map(([m, o]) => [m, o]));
    stored.forEach((s, i) => assertPasses(s, cases[i][2], cases[i][0].subject));
    // Signing happens before the transaction: the messages still go out as
    // pipelined BDAT transactions (a MAIL FROM before the previous final reply).
    const firstFinal = transcript.findIndex((l) => /^S: 250 .*queued as/.test(l));
    assert.ok(transcript.some((l) => l.startsWith('C: BDAT')), transcript.join('\n'));
    assert.ok(transcript.slice(0, firstFinal).filter((l) => l.startsWith('C: MAIL FROM')).length > 1, transcript.join('\n'));
    assert.match(withoutServerFields(stored[5].eml).toString(), /h=from:from:to:subject:date:message-id:\s*mime-version:content-type:list-unsubscribe:\s*list-unsubscribe-post;|h=from:from:to:subject:date:message-id:mime-version:\s*content-type:list-unsubscribe:list-unsubscribe-post;/);
  });

  test('multipart with attachments and an inline image, 8-bit SMTPUTF8 addresses, and a raw message, over DATA', async () => {
    const cases = [
      [{
        ...plain('multipart'),
        html: '<p>Hi <img src="cid:logo@example.com"></p>',
        attachments: [
          { filename: 'logo.png', content: randomBytes(3000), cid: 'logo@example.com' },
          { filename: 'report.pdf', content: randomBytes(70_000) },
          { filename: 'notes.txt', content: 'line one\r\nline two  \r\n' },
          { filename: 'generated.csv', content: () => new Blob(['a,b\n1,2\n']).stream() },
        ],
      }, ['rsa', 'ed']],
      [{ from: `Jörg <jörg@${DOMAIN}>`, to: 'zoë@y.test', subject: 'Grüße 日本語', text: 'Grüße, ça va? 日本語\n' }, ['rsa', 'ed']],
      [{ raw: `From: Ann <ann@${DOMAIN}>\nTo: bob@y.test\nSubject: raw 8bit\nMIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nGrüße\n.leading dot\n\n`, envelope: { from: `ann@${DOMAIN}`, to: ['bob@y.test'] } }, ['rsa', 'ed']],
    ];
    const stored = await sendAndStore(client([key('rsa'), key('ed')], { port: postfix.dataPort }), cases.map(([m]) => [m]));
    stored.forEach((s, i) => assertPasses(s, cases[i][1], cases[i][0].subject ?? 'raw'));
    const utf8 = stored[1].eml.toString('utf8');
    assert.match(utf8, /with UTF8SMTPSA/);
    assert.match(utf8, /^From: .* <jörg@example\.com>\r$/m);
  });

  test('a 20 MB attachment from a one-shot ReadableStream (spooled to a temporary file)', async () => {
    let produced = 0;
    const total = 20 * 1024 * 1024;
    const stream = new ReadableStream({
      pull(controller) {
        if (produced >= total) return controller.close();
        const chunk = randomBytes(Math.min(256 * 1024, total - produced));
        produced += chunk.length;
        controller.enqueue(chunk);
      },
    });
    const spools = () => readdirSync(tmpdir()).filter((n) => n.startsWith('wasmtp-dkim-'));
    const before = spools();
    const [stored] = await sendAndStore(client(key('rsa')), [[{ ...plain('20 MB'), attachments: [{ filename: 'big.bin', content: stream }] }]]);
    assert.ok(stored.eml.length > 27_000_000, `stored ${stored.eml.length} bytes`);
    assert.deepEqual(spools(), before, 'the spool file is removed once the message is sent');
    assertPasses(stored, ['rsa'], '20 MB');
  });

  test('a message signed by nodemailer and one signed by wasmtp, same key and canonicalization, verify the same way', async () => {
    const transport = nodemailer.createTransport({
      host: 'localhost', port: postfix.port, secure: false, requireTLS: true, tls: { ca: certs.ca }, name: 'client.test',
      auth: { user: POSTFIX_USER, pass: POSTFIX_PASS },
      dkim: { domainName: DOMAIN, keySelector: 'rsa', privateKey: keys.rsa.pem },
    });
    const message = plain('interop', { html: '<b>same</b>', attachments: [{ filename: 'a.txt', content: 'same attachment\n' }] });
    const info = await transport.sendMail(message);
    transport.close();
    const nodemailerId = /queued as (\S+)/.exec(info.response)[1];
    const [ours] = await sendAndStore(client(key('rsa')), [[message]]);
    const theirs = (await postfix.waitDelivered([nodemailerId])).get(nodemailerId);
    const theirsFile = join(work, 'nodemailer.eml');
    writeFileSync(theirsFile, theirs);
    for (const stored of [ours, { file: theirsFile, eml: theirs }]) assertPasses(stored, ['rsa'], stored === ours ? 'wasmtp' : 'nodemailer');
    for (const eml of [ours.eml, theirs]) assert.match(withoutServerFields(eml).toString(), /a=rsa-sha256; c=relaxed\/relaxed;/);
  });
});

describe('the native Rust API (feature dkim-sign, ring) signs what the verifiers accept', () => {
  test('examples/dkim_sign with RSA (PKCS#8 and PKCS#1) and Ed25519 keys', async () => {
    const example = process.env.WASMTP_DKIM_EXAMPLE ?? join(ROOT, 'target', 'debug', 'examples', 'dkim_sign');
    assert.ok(existsSync(example), `${example} is missing: cargo build --features dkim-sign --example dkim_sign (scripts/test-dkim.sh does)`);
    const keyFiles = ['rsa', 'ed', 'pkcs1'].map((name) => {
      const file = join(work, `native-${name}.pem`);
      writeFileSync(file, keys[name].pem);
      return `${name}=${file}`;
    });
    const signed = execFileSync(example, [DOMAIN, ...keyFiles], { timeout: 30_000 });
    const [stored] = await sendAndStore(client(undefined), [[{ raw: signed, envelope: { from: `ann@${DOMAIN}`, to: ['bob@y.test'] } }]]);
    assertPasses(stored, ['rsa', 'ed', 'pkcs1'], 'native');
  });
});

describe('what must fail does', () => {
  /** A signed message as sent (server fields removed), for tampering. */
  let signed;
  before(async () => {
    const [stored] = await sendAndStore(client(key('rsa')), [[plain('to tamper with')]]);
    assertPasses(stored, ['rsa'], 'before tampering');
    signed = withoutServerFields(stored.eml).toString('latin1');
  });

  /** Sends raw bytes unsigned through Postfix + OpenDKIM; returns both verdicts for the one signature. */
  async function verdicts(raw) {
    const [stored] = await sendAndStore(client(undefined), [[{ raw: Buffer.from(raw, 'latin1'), envelope: { from: `ann@${DOMAIN}`, to: ['bob@y.test'] } }]]);
    const py = dkimpy(dns.port, [stored.file])[0].results;
    return { dkimpy: py.map((r) => r.pass), opendkim: openDkimResults(stored.eml).map((r) => r.result) };
  }

  test('the untouched message still passes when re-sent (control)', async () => {
    assert.deepEqual(await verdicts(signed), { dkimpy: [true], opendkim: ['pass'] });
  });

  test('a body changed after signing fails', async () => {
    const changed = signed.replace('Hello from', 'Hallo from');
    assert.notEqual(changed, signed);
    assert.deepEqual(await verdicts(changed), { dkimpy: [false], opendkim: ['fail'] });
  });

  test('a From added after signing is caught by the over-signed From', async () => {
    const end = signed.indexOf('\r\n\r\n');
    const added = `${signed.slice(0, end)}\r\nFrom: Mallory <m@evil.example>${signed.slice(end)}`;
    const v = await verdicts(added);
    assert.deepEqual(v.dkimpy, [false]);
    assert.notDeepEqual(v.opendkim, ['pass']);
  });

  test('a wrong selector fails: another published key, and one that is not published', async () => {
    const stored = await sendAndStore(client(undefined), [
      [plain('wrong key'), { dkim: { domain: DOMAIN, selector: 'other', privateKey: keys.rsa.pem } }],
      [plain('no key'), { dkim: { domain: DOMAIN, selector: 'nokey', privateKey: keys.rsa.pem } }],
    ]);
    for (const s of stored) assert.deepEqual(dkimpy(dns.port, [s.file])[0].results.map((r) => r.pass), [false]);
    // Another key: the signature does not verify. No key at all: OpenDKIM
    // (On-KeyNotFound's default) writes no dkim= verdict, and never a pass.
    assert.deepEqual(openDkimResults(stored[0].eml).map((r) => r.result), ['fail']);
    assert.deepEqual(openDkimResults(stored[1].eml).filter((r) => r.result === 'pass'), []);
  });
});
