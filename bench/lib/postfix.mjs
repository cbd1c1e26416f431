// A private Postfix for the BDAT path: the test instance of
// tests/servers/postfix/start.sh (STARTTLS, Cyrus SASL, PIPELINING,
// CHUNKING, smtpd_forbid_unauth_pipelining = yes), switched to the discard
// transport so accepted messages are counted in its log and dropped.
// Needs root (as the tests do). Stopped by PID through stop.sh.

import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SERVERS = join(ROOT, 'tests/servers');

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on('error', reject);
  });
}

export async function startPostfix({ user, pass }) {
  const work = mkdtempSync(join(tmpdir(), 'wasmtp-bench-'));
  chmodSync(work, 0o755); // Postfix's own users must reach its directories
  const certs = join(work, 'certs');
  execFileSync('bash', [join(SERVERS, 'make-certs.sh'), certs], { stdio: 'inherit' });
  const dir = join(work, 'postfix');
  const port = await freePort();
  const out = execFileSync(
    'timeout',
    ['60', 'bash', join(SERVERS, 'postfix/start.sh'), '--port', String(port), '--dir', dir,
      '--cert', join(certs, 'server.pem'), '--key', join(certs, 'server.key'), '--user', user, '--password', pass],
    { encoding: 'utf8' },
  );
  if (!out.startsWith('ready')) throw new Error(`postfix did not start: ${out}`);
  const etc = join(dir, 'etc');
  // Discard instead of the test pipe: no delivery processes competing for the CPU.
  execFileSync('/usr/sbin/postconf', ['-c', etc, '-e', 'default_transport = discard']);
  execFileSync('/usr/sbin/postfix', ['-c', etc, 'reload'], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const version = execFileSync('/usr/sbin/postconf', ['-c', etc, '-h', 'mail_version'], { encoding: 'utf8' }).trim();
  return {
    port,
    ca: join(certs, 'ca.pem'),
    version,
    /** Messages smtpd accepted so far (queue ids in the log). */
    accepted: () => (readFileSync(join(dir, 'maillog'), 'utf8').match(/postfix-wasmtp-\d+\/cleanup\[\d+\]: \w+: message-id=/g) ?? []).length,
    stop: () => {
      execFileSync('bash', [join(SERVERS, 'postfix/stop.sh'), dir], { stdio: 'ignore' });
      execFileSync('rm', ['-rf', work]);
    },
  };
}
