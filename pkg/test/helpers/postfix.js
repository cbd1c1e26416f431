// A private Postfix instance on 127.0.0.1 for the npm package's tests,
// through the same scripts as the Rust tests (tests/servers/postfix/):
// STARTTLS with a throw-away test CA, Cyrus SASL (sasldb), PIPELINING and
// CHUNKING, smtpd_forbid_unauth_pipelining = yes, every accepted message
// saved to spool/<queue id>.eml by a pipe transport.
//
// A second smtpd listens on `dataPort` with `smtpd_discard_ehlo_keywords =
// chunking` (no CHUNKING offered: the DATA path). The instance is stopped by
// the master's PID (stop.sh), also when the test process exits early.

import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

import { atExit } from './at-exit.js';
import { closedPort } from './ports.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SCRIPTS = join(ROOT, 'tests', 'servers');
const SETUP_HINT = 'run `bash scripts/setup.sh` (it installs postfix, sasl2-bin and openssl; a private Postfix needs root)';

export const POSTFIX_USER = 'wasmtp-user';
export const POSTFIX_PASS = 'wasmtp pass 42';

/**
 * Runs a command (bounded) in its own process group, so that an
 * interrupted start can end it and what it started.
 */
function run(file, args, timeoutMs) {
  return new Promise((resolve) => {
    const options = { timeout: timeoutMs, killSignal: 'SIGKILL', detached: true };
    const child = execFile(file, args, options, (error, stdout, stderr) => {
      children.delete(child);
      resolve({ ok: !error, stdout: String(stdout), stderr: String(stderr), error });
    });
    children.add(child);
  });
}

/** Commands still running (start.sh, postconf, postfix reload): stopped with an instance. */
const children = new Set();

/** SIGKILL to a process group (a Postfix master leads its own) and to its leader. */
function killProcessGroup(pid) {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {}
  }
}


/** Resolves with the first line the server sends on a new connection ('' on failure). */
function greeting(port, timeoutMs = 2000) {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let data = '';
    const done = (line) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(line);
    };
    const timer = setTimeout(() => done(''), timeoutMs);
    socket.on('data', (chunk) => {
      data += chunk;
      const end = data.indexOf('\r\n');
      if (end >= 0) {
        socket.end('QUIT\r\n');
        done(data.slice(0, end));
      }
    });
    socket.on('error', () => done(''));
  });
}

/** Test certificates from tests/servers/make-certs.sh: { dir, ca (PEM), caFile, certFile, keyFile }. */
export function makeCertificates() {
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-pf-certs-'));
  const remove = () => rmSync(dir, { recursive: true, force: true });
  const forget = atExit(remove);
  execFileSync('bash', [join(SCRIPTS, 'make-certs.sh'), dir], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    ca: readFileSync(join(dir, 'ca.pem'), 'utf8'),
    certFile: join(dir, 'server.pem'),
    keyFile: join(dir, 'server.key'),
    remove: () => {
      forget();
      remove();
    },
  };
}

/**
 * Starts a private Postfix (bounded: about a minute at worst).
 * @returns {Promise<Postfix>}
 */
export async function startPostfix(certs) {
  for (const tool of ['/usr/sbin/postfix', '/usr/sbin/postconf', '/usr/sbin/saslpasswd2']) {
    if (!existsSync(tool)) throw new Error(`${tool} is missing: ${SETUP_HINT}`);
  }
  if (process.getuid?.() !== 0) throw new Error(`a private Postfix instance needs root: ${SETUP_HINT}`);
  let lastError = '';
  // A free port can be taken between the probe and Postfix's bind: retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), 'wasmtp-postfix-'));
    const port = await closedPort();
    let dataPort = await closedPort();
    while (dataPort === port) dataPort = await closedPort();
    // Registered before start.sh runs: an exit in the middle still stops what started.
    const instance = new Postfix({ port, dataPort, dir });
    const out = await run(
      'bash',
      [join(SCRIPTS, 'postfix', 'start.sh'), '--port', String(port), '--dir', dir, '--cert', certs.certFile,
        '--key', certs.keyFile, '--user', POSTFIX_USER, '--password', POSTFIX_PASS],
      60_000,
    );
    if (out.ok && out.stdout.startsWith('ready')) {
      // The DATA-path listener: a second smtpd service without CHUNKING.
      const etc = join(dir, 'etc');
      const service = `127.0.0.1:${dataPort} inet n - n - - smtpd -o smtpd_discard_ehlo_keywords=chunking`;
      const added = await run('/usr/sbin/postconf', ['-c', etc, '-M', `127.0.0.1:${dataPort}/inet=${service}`], 10_000);
      const reloaded = added.ok && (await run('/usr/sbin/postfix', ['-c', etc, 'reload'], 20_000)).ok;
      if (reloaded) {
        for (let i = 0; i < 100; i++) {
          if ((await greeting(dataPort, 1000)).startsWith('220')) return instance;
          await sleep(100);
        }
      }
      lastError = `the second smtpd on port ${dataPort} did not answer after postfix reload\n${instance.maillog().slice(-3000)}`;
    } else {
      lastError = `${out.stdout}${out.stderr}${out.error?.killed ? '\n(start.sh timed out)' : ''}`;
    }
    await instance.stop();
  }
  throw new Error(`the private Postfix instance did not start (${SETUP_HINT}):\n${lastError}`);
}

class Postfix {
  constructor({ port, dataPort, dir }) {
    this.port = port;
    this.dataPort = dataPort;
    this.dir = dir;
    this.spool = join(dir, 'spool');
    this.#forget = atExit(() => this.stopSync());
  }

  #forget;

  maillog() {
    try {
      return readFileSync(join(this.dir, 'maillog'), 'utf8');
    } catch {
      return '';
    }
  }

  /** Waits (bounded) until every queue id was delivered; returns Map(queue id → Buffer). */
  async waitDelivered(queueIds, timeoutMs = 20_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const have = new Set(readdirSync(this.spool).filter((n) => n.endsWith('.meta')).map((n) => n.slice(0, -5)));
      if (queueIds.every((id) => have.has(id))) break;
      if (Date.now() > deadline) {
        const missing = queueIds.filter((id) => !have.has(id));
        throw new Error(`not delivered within ${timeoutMs} ms: ${missing.join(', ')}\nmaillog:\n${this.maillog().slice(-4000)}`);
      }
      await sleep(50);
    }
    return new Map(queueIds.map((id) => [id, readFileSync(join(this.spool, `${id}.eml`))]));
  }

  meta(queueId) {
    return readFileSync(join(this.spool, `${queueId}.meta`), 'utf8');
  }

  /** Waits (bounded) for a maillog line matching `pattern`. */
  async waitLog(pattern, timeoutMs = 10_000) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.maillog().split('\n').find((l) => pattern.test(l));
      if (line) return line;
      if (Date.now() > deadline) throw new Error(`no maillog line matching ${pattern}:\n${this.maillog().slice(-3000)}`);
      await sleep(50);
    }
  }

  /** stop.sh: the master by the PID in its pid file (TERM, then KILL), and its process group. */
  #stopArgs() {
    return [join(SCRIPTS, 'postfix', 'stop.sh'), this.dir, '--keep'];
  }

  /** Stops the instance by PID, then removes its directory (kept with WASMTP_KEEP_TEST_DIRS). */
  async stop() {
    if (this.#stopped) return;
    this.#killChildren();
    await run('bash', this.#stopArgs(), 30_000);
    this.#finishStop();
  }

  /** The same, synchronously (process exit); also when an asynchronous stop was cut short. */
  stopSync() {
    if (this.#stopped) return;
    this.#killChildren();
    try {
      execFileSync('bash', this.#stopArgs(), { stdio: 'ignore', timeout: 30_000 });
    } catch {}
    this.#finishStop();
  }

  #stopped = false;

  /** Interrupted while starting or stopping: start.sh, postconf, postfix reload or stop.sh go first. */
  #killChildren() {
    for (const child of children) if (child.pid) killProcessGroup(child.pid);
  }

  #finishStop() {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#forget();
    // Belt and braces: a master of this instance that stop.sh could not find
    // (no pid file yet), found by PID through its MAIL_CONFIG, with its group.
    for (const pid of this.#masterPids()) killProcessGroup(pid);
    if (!process.env.WASMTP_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }

  /** PIDs of Postfix masters whose environment names this instance's configuration. */
  #masterPids() {
    const mine = `MAIL_CONFIG=${join(this.dir, 'etc')}`;
    const pids = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        if (!readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('postfix/sbin/master')) continue;
        if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(mine)) pids.push(Number(entry));
      } catch {}
    }
    return pids;
  }
}

/** Postfix prepends exactly one (folded) Received: header; returns the bytes after it. */
export function stripReceived(raw) {
  const text = raw.toString('latin1');
  if (!text.startsWith('Received: ')) throw new Error(`no Received: header first: ${JSON.stringify(text.slice(0, 200))}`);
  let pos = 0;
  for (;;) {
    const end = text.indexOf('\r\n', pos);
    if (end < 0) throw new Error('unterminated Received: header');
    pos = end + 2;
    if (text[pos] !== ' ' && text[pos] !== '\t') return raw.subarray(pos);
  }
}
