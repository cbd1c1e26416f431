// Shared by the outbox tests: an SMTP server that records what it accepted
// and can misbehave on purpose, redis-server on a high loopback port
// (stopped by PID), worker child processes, and polling.

import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { testCertificates } from '../../pkg/test/helpers/certs.js';
import { startServer } from '../../pkg/test/helpers/server.js';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const PKG = join(HERE, '..', '..', 'pkg');

/**
 * The test SMTP server (pkg/test/helpers/server.js) as the outbox tests use
 * it: it accepts everything and any login, except:
 *   - recipients starting with "reject" get 550 (a permanent failure),
 *   - `tempFail(info)` returning true answers the end of data with 451,
 *   - `onDataEnd(info)` may return 'hold' to never answer (the test then
 *     kills the client or closes the socket).
 * `accepted` lists the messages answered with 250 (with `subject`,
 * `messageId`, `to`); `dataEnds` every end of data seen (answered or not).
 * `tls`: { key, cert } offers STARTTLS with that certificate.
 */
export async function startSmtp({ tempFail = () => false, onDataEnd = () => 'reply', tls } = {}) {
  const state = await startServer({
    tls: tls ? 'starttls' : 'none',
    ...(tls && { key: tls.key, cert: tls.cert }),
    login: () => true,
    size: 50 * 1024 * 1024,
    decide: (info) => (onDataEnd(info) === 'hold' ? 'hold' : tempFail(info) ? 'defer' : 'accept'),
    // Connections of killed clients may linger: do not wait for them.
    closeWait: 1000,
  });
  state.accepted = state.messages;
  return state;
}

/** redis-server on a free high port on 127.0.0.1, with an AOF; stop() kills it by PID. */
export async function startRedis() {
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-outbox-redis-'));
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    const child = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'yes', '--protected-mode', 'yes'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    const ready = await new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 10_000);
      child.stdout.on('data', (d) => {
        out += d;
        if (/Ready to accept connections/.test(out)) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      child.on('exit', () => {
        clearTimeout(timer);
        resolve(false);
      });
    });
    if (ready) {
      return {
        port,
        pid: child.pid,
        connection: { host: '127.0.0.1', port },
        stop: async () => {
          if (child.exitCode === null) {
            const exited = new Promise((r) => child.once('exit', r));
            process.kill(child.pid, 'SIGTERM');
            await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
            if (child.exitCode === null) process.kill(child.pid, 'SIGKILL');
          }
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    if (child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  }
  throw new Error('redis-server did not start (is it installed? apt-get install redis-server)');
}

/**
 * Starts tests/outbox/worker.mjs with `config`. Its stdout lines are
 * handed to `onLine`; `lines` keeps them. kill() sends SIGKILL.
 */
export function startWorker(config, onLine = () => {}) {
  const child = spawn(process.execPath, [join(HERE, 'worker.mjs'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  const worker = { child, pid: child.pid, lines: [], stderr: '' };
  createInterface({ input: child.stdout }).on('line', (line) => {
    worker.lines.push(line);
    onLine(line, worker);
  });
  child.stderr.on('data', (d) => (worker.stderr += d));
  worker.exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  worker.kill = () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    return worker.exited;
  };
  /** Asks the worker to stop gracefully (SIGTERM: outbox.close()). */
  worker.stop = () => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGTERM');
    return worker.exited;
  };
  worker.waitFor = (pattern, ms = 30_000) => waitFor(() => worker.lines.find((l) => pattern.test(l)), ms, `worker line ${pattern} (stderr: ${worker.stderr.slice(-2000)})`);
  return worker;
}

/** Polls `check` until it returns a truthy value (or a promise of one). */
export async function waitFor(check, ms = 30_000, what = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A test CA and a server certificate for 127.0.0.1 / localhost: `{ ca, key, cert }` (PEM). */
export const makeCertificates = testCertificates;

/**
 * A misbehaving SMTP server for the model and storm tests, on 127.0.0.1.
 * What it does with a message depends on the local part of its recipient,
 * "<behaviour>-<n>@example.org":
 *   accept   250 (after a short random pause, so a killed worker can die
 *            between the end of data and the reply)
 *   reject   550 to RCPT TO, every time (a permanent failure)
 *   defer    451 to the end of data, every time
 *   cutdata  the first end of data of that Subject: the connection is cut
 *            without a reply (the outcome is unknown to the client); then 250
 *   cutrcpt  the first RCPT TO of that Subject: the connection is cut (the
 *            server cannot have the message); then 250
 * It records every end of data (`dataEnds`) and every 250 (`accepted`),
 * by Subject, in this process (which no test kills).
 */
export async function startChaosSmtp({ random = Math.random } = {}) {
  const accepted = new Map();
  const dataEnds = new Map();
  const rcpts = new Map();
  const bump = (map, key) => map.set(key, (map.get(key) ?? 0) + 1);
  const behaviour = (address) => /^([a-z]+)-/.exec(address)?.[1] ?? 'accept';
  const server = await startServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    onRcpt(address, cut) {
      if (behaviour(address.address) !== 'cutrcpt') return;
      // The Subject is not known yet: one cut per recipient address.
      bump(rcpts, address.address);
      if (rcpts.get(address.address) === 1) cut();
    },
    async decide(message) {
      const kind = behaviour(message.to[0] ?? '');
      bump(dataEnds, message.subject);
      if (kind === 'defer') return 'defer';
      if (kind === 'cutdata' && dataEnds.get(message.subject) === 1) return 'cut';
      await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 20)));
      bump(accepted, message.subject);
      return 'accept';
    },
    closeWait: 1000,
  });
  const close = server.close;
  return {
    get port() {
      return server.port;
    },
    accepted,
    dataEnds,
    rcpts,
    close: () => {
      for (const socket of server.sockets.values()) socket.destroy();
      return close();
    },
  };
}

/** A seeded PRNG (mulberry32): the same seed gives the same operations. */
export { seededRandom } from '../../pkg/test/helpers/random.js';

const RECORD_DIRS = ['queue', 'active', 'sent', 'failed', 'unknown'];
const HOME = { queued: 'queue', deferred: 'queue', sending: 'active', committing: 'active', sent: 'sent', failed: 'failed', unknown: 'unknown' };

/**
 * The spool's invariant (read with every writer frozen or stopped): each of
 * `ids` has exactly one record, in exactly one state directory (the one of
 * its state, or active/ while held), and its msg/ file; no other record
 * exists. Returns the breaches found (empty when it holds).
 */
export function spoolInvariant(dir, ids) {
  const files = new Map();
  for (const d of RECORD_DIRS) {
    for (const name of readdirSync(join(dir, d))) {
      if (!name.endsWith('.json')) continue;
      const id = name.split('.')[0];
      if (!files.has(id)) files.set(id, []);
      files.get(id).push({ dir: d, name });
    }
  }
  const messages = new Set(readdirSync(join(dir, 'msg')).map((n) => n.split('.')[0]));
  const breaches = [];
  for (const id of ids) {
    const found = files.get(id) ?? [];
    if (found.length !== 1) breaches.push(`${id}: ${found.length} records (${found.map((f) => `${f.dir}/${f.name}`).join(', ')})`);
    else {
      const record = JSON.parse(readFileSync(join(dir, found[0].dir, found[0].name), 'utf8'));
      if (found[0].dir !== 'active' && HOME[record.state] !== found[0].dir) breaches.push(`${id}: a ${record.state} record in ${found[0].dir}/`);
    }
    if (!messages.has(id)) breaches.push(`${id}: no msg/ file`);
  }
  const known = new Set(ids);
  for (const id of files.keys()) if (!known.has(id)) breaches.push(`${id}: a record for an id never enqueued`);
  return breaches;
}

/** SIGSTOP / SIGCONT for worker processes: the test reads the store at one instant. */
export async function frozen(pids, read) {
  const live = pids.filter((pid) => {
    try {
      process.kill(pid, 'SIGSTOP');
      return true;
    } catch {
      return false;
    }
  });
  try {
    // Stopped means state "T" in /proc/<pid>/stat (the signal is asynchronous).
    await waitFor(() => live.every((pid) => processState(pid) !== 'R' && processState(pid) !== 'S' && processState(pid) !== 'D'), 5000, 'workers to stop');
    return await read();
  } finally {
    for (const pid of live) {
      try {
        process.kill(pid, 'SIGCONT');
      } catch {
        // exited meanwhile
      }
    }
  }
}

function processState(pid) {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];
  } catch {
    return 'gone';
  }
}
