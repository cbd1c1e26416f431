// Real proxies on 127.0.0.1 high ports, each with a private configuration
// in a temporary folder, started in the foreground and stopped by PID:
//   - danted (Dante, SOCKS5), without or with user/password (RFC 1929:
//     Dante checks the system account made by scripts/setup-proxies.sh);
//   - tinyproxy (HTTP CONNECT), with BasicAuth.
// Each binds its outgoing connections to an address of its own in
// 127.0.0.0/8 (dante 127.0.0.3, tinyproxy 127.0.0.4): the SMTP server sees
// which path a connection took, so a test can prove nothing went around.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { atExit } from '../../pkg/test/helpers/at-exit.js';
import { closedPort as freePort } from '../../pkg/test/helpers/server.js';

export const DANTE_ADDRESS = '127.0.0.3';
export const TINYPROXY_ADDRESS = '127.0.0.4';
export const SOCKS_USER = 'wasmtp-proxy';
export const SOCKS_PASS = 'proxy pass';
export const HTTP_USER = 'ann';
export const HTTP_PASS = 'proxy-secret';

/**
 * danted on a free port. `ports`: the only target ports it relays to
 * (others are refused by rule); `auth`: require user/password;
 * `idleSeconds`: it closes a tunnel idle that long.
 */
export async function startDante({ ports, auth = false, idleSeconds = 0 }) {
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-dante-'));
  const port = await freePort();
  const method = auth ? 'username' : 'none';
  const rules = ports.map((p) => `socks pass { from: 127.0.0.0/8 to: 127.0.0.0/8 port = ${p} }`).join('\n');
  writeFileSync(
    join(dir, 'danted.conf'),
    `logoutput: ${join(dir, 'danted.log')}
internal: 127.0.0.1 port = ${port}
external: ${DANTE_ADDRESS}
clientmethod: none
socksmethod: ${method}
user.privileged: root
user.unprivileged: nobody
${idleSeconds ? `timeout.io: ${idleSeconds}` : ''}
client pass { from: 127.0.0.0/8 to: 0.0.0.0/0 }
${rules}
socks block { from: 0.0.0.0/0 to: 0.0.0.0/0 }
`,
  );
  const child = spawn('danted', ['-f', join(dir, 'danted.conf'), '-N', '1'], { stdio: 'ignore' });
  await listening(port, child, () => readLog(join(dir, 'danted.log')));
  return daemon(child, dir, port);
}

/** tinyproxy on a free port: CONNECT only to `ports`, BasicAuth when `auth`. */
export async function startTinyproxy({ ports, auth = true, idleSeconds = 30 }) {
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-tinyproxy-'));
  const port = await freePort();
  writeFileSync(
    join(dir, 'tinyproxy.conf'),
    `Port ${port}
Listen 127.0.0.1
Bind ${TINYPROXY_ADDRESS}
Timeout ${idleSeconds}
MaxClients 32
LogFile "${join(dir, 'tinyproxy.log')}"
LogLevel Info
Allow 127.0.0.1
DisableViaHeader Yes
${ports.map((p) => `ConnectPort ${p}`).join('\n')}
${auth ? `BasicAuth ${HTTP_USER} ${HTTP_PASS}` : ''}
`,
  );
  const child = spawn('tinyproxy', ['-d', '-c', join(dir, 'tinyproxy.conf')], { stdio: 'ignore' });
  await listening(port, child, () => readLog(join(dir, 'tinyproxy.log')));
  return daemon(child, dir, port);
}

function daemon(child, dir, port) {
  // Stopped by PID even when the test process ends early (a time-out, Ctrl-C).
  const forget = atExit(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    port,
    log: () => readLog(join(dir, child.spawnfile === 'danted' ? 'danted.log' : 'tinyproxy.log')),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      forget();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readLog(path) {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Waits until the daemon accepts connections (or fails with its log). */
async function listening(port, child, log) {
  const started = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${child.spawnfile} exited with ${child.exitCode}:\n${log()}`);
    const ok = await new Promise((resolve) => {
      const probe = connect({ host: '127.0.0.1', port });
      probe.once('connect', () => (probe.destroy(), resolve(true)));
      probe.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() - started > 10_000) throw new Error(`${child.spawnfile} did not listen on ${port}:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
