// `wasmtp dkim keygen` and `wasmtp send --dkim-key`, run as child processes.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { startServer } from './helpers/server.js';

const BIN = fileURLToPath(new URL('../bin/wasmtp.js', import.meta.url));
const exec = promisify(execFile);

/** Runs the CLI; resolves { code, stdout, stderr } whatever the exit status. */
async function wasmtp(args, cwd) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [BIN, ...args], { cwd, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    return { code: error.code, stdout: error.stdout, stderr: error.stderr };
  }
}

let dir;
let server;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'wasmtp-cli-dkim-'));
  server = await startServer();
});
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('keygen writes a private key with mode 0600, prints the TXT record, and never overwrites a key', async () => {
  const rsa = await wasmtp(['dkim', 'keygen', '--domain', 'example.com', '--selector', 'mail2026'], dir);
  assert.equal(rsa.code, 0, rsa.stderr);
  const file = join(dir, 'mail2026.example.com.pem');
  assert.equal(statSync(file).mode & 0o777, 0o600);
  assert.match(readFileSync(file, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
  // A 2048-bit key's record is over 255 octets: printed as several strings.
  assert.match(rsa.stdout, /^mail2026\._domainkey\.example\.com\. IN TXT \( "v=DKIM1; k=rsa; p=MIIB[A-Za-z0-9+/]+"\n +"[A-Za-z0-9+/=]+" \)$/m);
  const again = await wasmtp(['dkim', 'keygen', '--domain', 'example.com', '--selector', 'mail2026'], dir);
  assert.equal(again.code, 2);
  assert.match(again.stderr, /exists; a key is never overwritten/);

  const ed = await wasmtp(['dkim', 'keygen', '--domain', 'example.com', '--selector', 'ed', '--algorithm', 'ed25519', '--json'], dir);
  const record = JSON.parse(ed.stdout);
  assert.equal(record.name, 'ed._domainkey.example.com');
  assert.match(record.value, /^v=DKIM1; k=ed25519; p=[A-Za-z0-9+/]{43}=$/);

  for (const [args, pattern] of [
    [['dkim', 'keygen', '--selector', 's'], /--domain is required/],
    [['dkim', 'keygen', '--domain', 'example.com', '--selector', 's', '--algorithm', 'dsa'], /--algorithm dsa/],
    [['dkim', 'keygen', '--domain', 'example.com', '--selector', 's', '--algorithm', 'ed25519', '--bits', '2048'], /--bits is for RSA/],
    [['dkim', 'rotate'], /unknown dkim command/],
  ]) {
    const r = await wasmtp(args, dir);
    assert.equal(r.code, 2, args.join(' '));
    assert.match(r.stderr, pattern);
  }
});

test('send --dkim-key signs with the From domain (or --dkim-domain); a bad key is EINPUT with nothing sent', async () => {
  await wasmtp(['dkim', 'keygen', '--domain', 'example.com', '--selector', 'cli', '--algorithm', 'ed25519', '--out', 'cli.pem'], dir);
  const base = ['send', '--host', '127.0.0.1', '--port', String(server.port), '--security', 'none', '--from', 'Ann <ann@example.com>', '--to', 'bob@example.org', '--subject', 'cli', '--text', 'hi'];
  const sent = await wasmtp([...base, '--dkim-key', 'cli.pem', '--dkim-selector', 'cli'], dir);
  assert.equal(sent.code, 0, sent.stderr);
  const unfolded = () => server.messages.at(-1).raw.toString().replace(/\r\n\t/g, ' ');
  assert.match(unfolded(), /^DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed\/relaxed; d=example\.com; s=cli;/);
  const other = await wasmtp([...base, '--dkim-key', 'cli.pem', '--dkim-selector', 'cli', '--dkim-domain', 'mail.example.com'], dir);
  assert.equal(other.code, 0, other.stderr);
  assert.match(unfolded(), /d=mail\.example\.com; s=cli;/);

  const count = server.messages.length;
  const noSelector = await wasmtp([...base, '--dkim-key', 'cli.pem'], dir);
  assert.equal(noSelector.code, 2);
  assert.match(noSelector.stderr, /--dkim-key needs --dkim-selector/);
  const bad = await wasmtp([...base, '--dkim-key', BIN, '--dkim-selector', 'cli'], dir);
  assert.equal(bad.code, 2); // EINPUT: a value from the command line the engine refused
  assert.match(bad.stderr, /EINPUT \(data\): dkim\.privateKey is not a PEM key: received text that is not PEM/);
  assert.equal(server.messages.length, count);
});
