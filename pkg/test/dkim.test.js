// The dkim option without a verifier: what is refused before connecting
// (keys that do not parse, unknown options, a failing signer), what the
// signature looks like, and the limits that keep memory bounded. Real
// verification (OpenDKIM, dkimpy) is tests/dkim, run by scripts/test-dkim.sh.

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';

import { MEMORY_SPOOL_LIMIT, memorySpool } from '../src/dkim.js';
import { createClient, createOutbox, SmtpError, spoolStore } from '../src/index.js';
import { startServer } from './helpers/server.js';

const data = (name) => readFileSync(new URL(`../../tests/data/${name}`, import.meta.url), 'utf8');
const RSA_PKCS1 = data('dkim-rsa-pkcs1.pem');
const RSA_PKCS8 = data('dkim-rsa-pkcs8.pem');
const ED25519 = data('dkim-ed25519.pem');
const MESSAGE = { from: 'Ann <ann@example.com>', to: 'bob@example.org', subject: 'signed', text: 'Hello.' };

/** A transport that counts connection attempts and never connects. */
function countingTransport() {
  const transport = {
    connects: 0,
    connect() {
      transport.connects += 1;
      throw new Error('no connection in this test');
    },
  };
  return transport;
}

function assertInput(fn, pattern) {
  assert.throws(fn, (error) => {
    assert.ok(error instanceof SmtpError, String(error));
    assert.equal(error.code, 'EINPUT');
    assert.match(error.message, pattern);
    assert.ok(error.hint, 'an EINPUT has a hint');
    return true;
  });
}

const dkim = (privateKey, extra = {}) => ({ dkim: { domain: 'example.com', selector: 's1', privateKey, ...extra } });
const client = (extra) => createClient({ host: 'localhost', transport: countingTransport(), ...extra });

describe('keys that cannot sign are EINPUT at createClient, naming what was received and what is expected', () => {
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'sec1', format: 'pem' });
  const spki = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' });
  const encrypted = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'x' });
  const cases = [
    ['a public key', spki, /received a PEM "PUBLIC KEY" block \(a public key.*expected an unencrypted PEM private key: PKCS#8/],
    ['an encrypted key', encrypted, /received a PEM "ENCRYPTED PRIVATE KEY" block \(an encrypted key\)/],
    ['an EC key', ec, /received a PEM "EC PRIVATE KEY" block/],
    ['an OpenSSH key', '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n', /OpenSSH's own format/],
    ['text that is not PEM', 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', /received text that is not PEM; expected/],
    ['an empty string', '', /received an empty string/],
    ['a number', 42, /received a number; expected/],
    ['nothing', undefined, /received nothing; expected/],
  ];
  for (const [what, key, pattern] of cases) {
    test(what, () => assertInput(() => client(dkim(key)), pattern));
  }

  test('an algorithm that does not match the key', () => {
    assertInput(() => client(dkim(ED25519, { algorithm: 'rsa-sha256' })), /algorithm is "rsa-sha256" but the private key is an Ed25519 key/);
  });

  test('unknown options and bad values name the option', () => {
    assertInput(() => client(dkim(RSA_PKCS8, { selectr: 'x' })), /dkim\.selectr is not a DKIM option/);
    assertInput(() => client({ dkim: [{ domain: 'example.com', selector: 's', privateKey: RSA_PKCS8 }, { domain: 'example.com', privateKey: RSA_PKCS8 }] }), /dkim\[1\]\.selector must be/);
    assertInput(() => client(dkim(RSA_PKCS8, { canonicalization: 'loose' })), /canonicalization "loose"/);
    assertInput(() => client(dkim(RSA_PKCS8, { headers: ['From:'] })), /headers must be/);
    assertInput(() => client(dkim(RSA_PKCS8, { expires: -1 })), /expires must be/);
    assertInput(() => client({ dkim: [] }), /empty array/);
  });

  test('PKCS#8 RSA, PKCS#1 RSA, PKCS#8 Ed25519 and PEM bytes are accepted', () => {
    for (const key of [RSA_PKCS8, RSA_PKCS1, ED25519, new TextEncoder().encode(ED25519)]) client(dkim(key));
  });
});

describe('signing with a server', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(async () => {
    await server.close();
  });

  test('a per-message key that does not parse rejects the send before any connection', async () => {
    const transport = countingTransport();
    const c = createClient({ host: 'localhost', transport });
    await assert.rejects(c.send(MESSAGE, dkim('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n')), { code: 'EINPUT' });
    await assert.rejects(c.send(MESSAGE, { dkim: { domain: 'exa mple.com', selector: 's', privateKey: RSA_PKCS8 } }), /dkim domain "exa mple.com" is not a DNS name/);
    await c.close();
    assert.equal(transport.connects, 0);
  });

  test('a failing signer function is EINPUT and nothing is sent', async () => {
    const c = createClient({ host: '127.0.0.1', port: server.port, security: 'none' });
    const before = server.messages.length;
    await assert.rejects(c.send(MESSAGE, dkim(async () => { throw new Error('KMS unavailable'); })), /signer function of send\(\) options\.dkim failed: KMS unavailable/);
    await assert.rejects(c.send(MESSAGE, dkim(async () => 'not bytes')), /did not resolve to the signature bytes/);
    await c.close();
    assert.equal(server.messages.length, before);
  });

  test('the signature fields come first, the message after them is sent unchanged, and dkim: false sends unsigned', async () => {
    const c = createClient({ host: '127.0.0.1', port: server.port, security: 'none', ...dkim(RSA_PKCS1) });
    const raw = 'From: Ann <ann@example.com>\r\nTo: bob@example.org\r\nSubject: raw\r\n\r\nBody.\r\n';
    const envelope = { from: 'ann@example.com', to: ['bob@example.org'] };
    await c.send({ raw, envelope });
    await c.send({ raw, envelope }, { dkim: [{ domain: 'example.com', selector: 'ed', privateKey: ED25519, expires: 3600 }, { domain: 'example.com', selector: 'rsa', privateKey: RSA_PKCS8, headers: ['Subject'] }] });
    await c.send({ raw, envelope }, { dkim: false });
    await c.close();
    const [one, two, none] = server.messages.slice(-3).map((m) => m.raw.toString());
    assert.match(one, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com; s=s1;\r\n\tt=\d+; h=from:from:to:subject;\r\n\tbh=[^;]+; b=\r\n\t[A-Za-z0-9+/]{64}\r\n/);
    assert.ok(one.endsWith(raw));
    assert.equal(two.match(/^DKIM-Signature:/gm).length, 2);
    assert.match(two, /a=ed25519-sha256;[^]*x=\d+;/);
    assert.match(two, /s=rsa;[^]*h=from:from:subject;/);
    assert.equal(none, raw);
    for (const line of one.split('\r\n')) assert.ok(line.length <= 78, line);
  });

  test('the outbox stores the message, not a signature; each attempt is signed when it is sent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'wasmtp-dkim-outbox-'));
    const c = createClient({ host: '127.0.0.1', port: server.port, security: 'none', ...dkim(ED25519) });
    const outbox = createOutbox({ client: c, store: spoolStore({ dir, pollInterval: 50 }) });
    try {
      const id = await outbox.enqueue({ ...MESSAGE, subject: 'via the outbox' });
      const files = (function walk(d) {
        return readdirSync(d).flatMap((n) => (statSync(join(d, n)).isDirectory() ? walk(join(d, n)) : [join(d, n)]));
      })(dir);
      assert.ok(files.length > 0);
      for (const file of files) assert.doesNotMatch(readFileSync(file, 'latin1'), /DKIM-Signature|dkim/i, file);
      await outbox.work({ concurrency: 1 });
      for (let i = 0; i < 200 && (await outbox.status(id)).state !== 'sent'; i++) await sleep(50);
      assert.equal((await outbox.status(id)).state, 'sent');
      const received = server.messages.find((m) => m.raw.includes('via the outbox'));
      assert.match(received.raw.toString(), /^DKIM-Signature: v=1; a=ed25519-sha256;/);
    } finally {
      await outbox.close();
      await c.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test("wasmtp/nodemailer maps nodemailer's dkim options and refuses what it cannot honour", async () => {
  const { createTransport } = await import('wasmtp/nodemailer');
  const server = await startServer();
  try {
    const transport = createTransport({ host: '127.0.0.1', port: server.port, ignoreTLS: true, dkim: { domainName: 'example.com', keySelector: 'nm', privateKey: RSA_PKCS1, headerFieldNames: 'From:Subject' } });
    await transport.sendMail(MESSAGE);
    transport.close();
    const sent = server.messages.at(-1).raw.toString().replace(/\r\n\t/g, ' ');
    assert.match(sent, /^DKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/relaxed; d=example\.com; s=nm; t=\d+; h=from:from:subject;/);
  } finally {
    await server.close();
  }
  const base = { domainName: 'example.com', keySelector: 'nm', privateKey: RSA_PKCS1 };
  assert.throws(() => createTransport({ dkim: { ...base, cacheDir: '/tmp' } }), /cacheDir is not needed/);
  assert.throws(() => createTransport({ dkim: { ...base, hashAlgo: 'sha1' } }), /hashAlgo "sha1"/);
  assert.throws(() => createTransport({ dkim: { ...base, skipFields: 'message-id' } }), /skipFields/);
});

test('a one-shot stream over the memory spool limit is EINPUT naming the limit', () => {
  const spool = memorySpool();
  const chunk = new Uint8Array(1024 * 1024);
  assert.throws(
    () => {
      for (let i = 0; i <= MEMORY_SPOOL_LIMIT / chunk.byteLength; i++) spool.write(chunk);
    },
    (error) => error.code === 'EINPUT' && /over 32 MiB/.test(error.message) && /content: \(\) => stream/.test(error.hint),
  );
  spool.release();
});
