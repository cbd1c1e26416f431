// The DKIM verifiers the tests run on loopback, each started and stopped by PID:
//   - dnsmasq on a free high port, serving the test keys as TXT records
//     (the only DNS either verifier sees: no internet);
//   - OpenDKIM as a verifying milter (Mode v), resolving through libunbound
//     forwarded to that dnsmasq (ResolverConfiguration);
//   - the private Postfix of pkg/test/helpers/postfix.js with the milter
//     attached (smtpd_milters), so every accepted message carries OpenDKIM's
//     Authentication-Results;
//   - dkimpy (Debian's python3-dkim, /usr/bin/python3, verify.py), with a
//     dnsfunc that asks the same dnsmasq.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { atExit } from '../../pkg/test/helpers/at-exit.js';
import { closedPort as freePort } from '../../pkg/test/helpers/ports.js';

const HERE = dirname(fileURLToPath(import.meta.url));

function startChild(file, args, name) {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  // Killed by PID if the test process ends first.
  const forget = atExit(() => process.kill(child.pid, 'SIGKILL'));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
      forget();
    },
    check() {
      if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}):\n${output}`);
    },
  };
}

/**
 * dnsmasq answering only the given TXT records: [{ name, value }]. Values
 * longer than 255 octets are split into several strings, as in real DNS.
 */
export async function startDns(records) {
  const port = await freePort();
  const args = ['--keep-in-foreground', '--log-facility=-', `--port=${port}`, '--listen-address=127.0.0.1', '--bind-interfaces', '--no-resolv', '--no-hosts', '--conf-file=/dev/null', '--pid-file='];
  for (const { name, value } of records) args.push(`--txt-record=${name},${value.match(/.{1,255}/g).join(',')}`);
  const dns = startChild('/usr/sbin/dnsmasq', args, 'dnsmasq');
  for (let i = 0; i < 50; i++) {
    dns.check();
    if (/started, version/.test(dns.output())) break;
    await sleep(100);
  }
  return { port, stop: () => dns.stop() };
}

/** OpenDKIM in verify mode on a free port; keys come from the DNS server on `dnsPort`. */
export async function startOpenDkim(dnsPort) {
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-opendkim-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'unbound.conf'),
    `server:\n  do-not-query-localhost: no\n  module-config: "iterator"\nforward-zone:\n  name: "."\n  forward-addr: 127.0.0.1@${dnsPort}\n`,
  );
  writeFileSync(
    join(dir, 'opendkim.conf'),
    [
      'Mode v',
      `Socket inet:${port}@127.0.0.1`,
      `PidFile ${join(dir, 'opendkim.pid')}`,
      `ResolverConfiguration ${join(dir, 'unbound.conf')}`,
      // 127.0.0.1 is an "internal host" (signed, not verified) by default.
      'InternalHosts 192.0.2.1',
      'AuthservID wasmtp-test',
      'AlwaysAddARHeader yes',
      'Syslog no',
      'LogResults yes',
      'UMask 002',
    ].join('\n') + '\n',
  );
  const milter = startChild('/usr/sbin/opendkim', ['-f', '-l', '-x', join(dir, 'opendkim.conf')], 'opendkim');
  for (let i = 0; ; i++) {
    milter.check();
    const open = await new Promise((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(true));
      s.listen(port, '127.0.0.1', () => s.close(() => resolve(false)));
    });
    if (open) break;
    if (i > 100) throw new Error(`opendkim did not listen on ${port}:\n${milter.output()}`);
    await sleep(100);
  }
  return {
    port,
    output: milter.output,
    async stop() {
      await milter.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Attaches the milter to a running private Postfix (pkg/test/helpers/postfix.js) and reloads it. */
export function attachMilter(postfix, milterPort) {
  const etc = join(postfix.dir, 'etc');
  execFileSync('/usr/sbin/postconf', ['-c', etc, '-e', `smtpd_milters = inet:127.0.0.1:${milterPort}`, 'milter_default_action = tempfail', 'milter_protocol = 6'], { timeout: 10_000 });
  execFileSync('/usr/sbin/postfix', ['-c', etc, 'reload'], { timeout: 20_000, stdio: 'ignore' });
}

/**
 * OpenDKIM's verdicts in a stored message: [{ result, d, s, a }] from its
 * Authentication-Results header (the top one, authserv-id wasmtp-test).
 */
export function openDkimResults(eml) {
  const text = eml.toString('latin1');
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const unfolded = head.replace(/\r\n[ \t]+/g, ' ');
  const fields = unfolded.split('\r\n').filter((l) => /^authentication-results:\s*wasmtp-test;/i.test(l));
  const results = [];
  for (const field of fields) {
    // Comments like "(2048-bit key; unprotected)" may hold semicolons.
    for (const part of field.replace(/\([^)]*\)/g, '').replace(/^[^;]*;/, '').split(';')) {
      const m = /dkim=(\w+)/.exec(part);
      if (!m) continue;
      results.push({
        result: m[1],
        d: /header\.d=([^\s;]+)/.exec(part)?.[1],
        s: /header\.s=([^\s;]+)/.exec(part)?.[1],
        a: /header\.a=([^\s;]+)/.exec(part)?.[1],
        text: part.trim(),
      });
    }
  }
  return results;
}

/** dkimpy's verdict for each signature of each file: [{ file, results: [{ d, s, a, pass }] }]. */
export function dkimpy(dnsPort, files) {
  const out = execFileSync('/usr/bin/python3', [join(HERE, 'verify.py'), String(dnsPort), ...files], { encoding: 'utf8', timeout: 120_000 });
  return out.trim().split('\n').map((line) => JSON.parse(line));
}

/** A message as stored, without the Received and Authentication-Results fields the server put on top. */
export function withoutServerFields(eml) {
  let text = eml.toString('latin1');
  for (;;) {
    const m = /^(Received|Authentication-Results):[^\r]*\r\n(?:[ \t][^\r]*\r\n)*/i.exec(text);
    if (!m) return Buffer.from(text, 'latin1');
    text = text.slice(m[0].length);
  }
}

export function readKey(path) {
  return readFileSync(path, 'utf8');
}
