// Shared by the outbox tests: an SMTP server that records what it accepted
// and can misbehave on purpose, redis-server on a high loopback port
// (stopped by PID), worker child processes, and polling.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

import { SMTPServer } from 'smtp-server';

export const HERE = dirname(fileURLToPath(import.meta.url));
export const PKG = join(HERE, '..', '..', 'pkg');

/**
 * An SMTP server on 127.0.0.1. It accepts everything, except:
 *   - recipients starting with "reject" get 550 (a permanent failure),
 *   - `tempFail(info)` returning true answers the end of data with 451,
 *   - `onDataEnd(info)` may return 'hold' to never answer (the test then
 *     kills the client or closes the socket).
 * `accepted` lists the messages answered with 250, by Subject; `dataEnds`
 * every end of data seen (answered or not).
 */
export async function startSmtp({ tempFail = () => false, onDataEnd = () => 'reply', tls } = {}) {
  const state = { accepted: [], dataEnds: [], tempFailed: 0, port: 0, held: [] };
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    allowInsecureAuth: true,
    key: tls?.key,
    cert: tls?.cert,
    disabledCommands: tls ? [] : ['STARTTLS'],
    size: 50 * 1024 * 1024,
    onAuth(auth, session, callback) {
      callback(null, { user: auth.username });
    },
    onRcptTo(address, session, callback) {
      if (/^reject/i.test(address.address)) {
        const error = new Error('5.1.1 No such user here');
        error.responseCode = 550;
        return callback(error);
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const info = {
          subject: /^Subject: (.*)$/im.exec(raw)?.[1]?.trim(),
          messageId: /^Message-ID: (.*)$/im.exec(raw)?.[1]?.trim(),
          to: session.envelope.rcptTo.map((r) => r.address),
          bytes: raw.length,
        };
        state.dataEnds.push(info);
        const action = onDataEnd(info);
        if (action === 'hold') {
          state.held.push(() => callback(null, 'OK (too late)'));
          return;
        }
        if (tempFail(info)) {
          state.tempFailed += 1;
          const error = new Error('4.3.0 Try again later');
          error.responseCode = 451;
          return callback(error);
        }
        state.accepted.push(info);
        callback(null, `OK queued as Q${state.accepted.length}`);
      });
    },
  });
  server.on('error', () => {});
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = server.server.address().port;
  state.close = () =>
    new Promise((resolve) => {
      for (const release of state.held.splice(0)) release();
      server.close(resolve);
      // Connections of killed clients may linger: do not wait for them.
      setTimeout(resolve, 1000).unref();
    });
  /** How many times a Subject was accepted (250). */
  state.count = (subject) => state.accepted.filter((m) => m.subject === subject).length;
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

/** A test CA and a server certificate for 127.0.0.1 / localhost (openssl). */
export function makeCertificates() {
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-outbox-certs-'));
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=wasmtp outbox test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr');
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'ext.cnf', '-out', 'server.pem');
    const read = (f) => readFileSync(join(dir, f), 'utf8');
    return { ca: read('ca.pem'), key: read('server.key'), cert: read('server.pem') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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
  const state = { accepted: new Map(), dataEnds: new Map(), rcpts: new Map(), port: 0 };
  const sockets = new Map();
  const bump = (map, key) => map.set(key, (map.get(key) ?? 0) + 1);
  const behaviour = (address) => /^([a-z]+)-/.exec(address)?.[1] ?? 'accept';
  const cut = (session) => sockets.get(session.remotePort)?.destroy();
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    onRcptTo(address, session, callback) {
      const kind = behaviour(address.address);
      if (kind === 'reject') {
        const error = new Error('5.1.1 No such user here');
        error.responseCode = 550;
        return callback(error);
      }
      if (kind === 'cutrcpt') {
        // The Subject is not known yet: one cut per recipient address.
        bump(state.rcpts, address.address);
        if (state.rcpts.get(address.address) === 1) return cut(session);
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const subject = /^Subject: (.*)$/im.exec(raw)?.[1]?.trim();
        const kind = behaviour(session.envelope.rcptTo[0]?.address ?? '');
        bump(state.dataEnds, subject);
        if (kind === 'defer') {
          const error = new Error('4.3.0 Try again later');
          error.responseCode = 451;
          return callback(error);
        }
        if (kind === 'cutdata' && state.dataEnds.get(subject) === 1) return cut(session);
        setTimeout(() => {
          bump(state.accepted, subject);
          callback(null, `OK queued as Q${subject}`);
        }, Math.floor(random() * 20));
      });
    },
  });
  server.on('error', () => {});
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.server.on('connection', (socket) => {
    sockets.set(socket.remotePort, socket);
    socket.on('close', () => sockets.delete(socket.remotePort));
  });
  state.port = server.server.address().port;
  state.close = () =>
    new Promise((resolve) => {
      for (const socket of sockets.values()) socket.destroy();
      server.close(resolve);
      setTimeout(resolve, 1000).unref();
    });
  return state;
}

/** A seeded PRNG (mulberry32): the same seed gives the same operations. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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
