// Private Exim, Dovecot LMTP and OpenSMTPD instances on 127.0.0.1 for the
// tests in this folder, through tests/servers/<name>/start.sh and stop.sh
// (installed by scripts/setup-mtas.sh). Each instance is stopped by its PID
// (stop.sh), also when the test process exits early.
//
// Every instance records each delivered message with its envelope sender:
// `deliveries()` reads them back as { file, returnPath, recipient, headers }.

import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { atExit } from '../../pkg/test/helpers/at-exit.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const SERVERS = join(ROOT, 'tests', 'servers');
export const SETUP_HINT = 'run `bash scripts/setup.sh` as root (scripts/setup-mtas.sh installs Dovecot and unpacks Exim and OpenSMTPD into .tools/mta)';

function run(file, args, timeoutMs) {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: timeoutMs, killSignal: 'SIGKILL' }, (error, stdout, stderr) =>
      resolve({ ok: !error, stdout: String(stdout), stderr: String(stderr), error }),
    );
  });
}

async function freePort(taken = []) {
  for (;;) {
    const server = createServer();
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address();
    await new Promise((resolve) => server.close(resolve));
    if (!taken.includes(port)) return port;
  }
}

/** Header fields of a stored message (unfolded, names lower-cased), up to the blank line. */
export function parseHeaders(raw) {
  const text = raw.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  const fields = new Map();
  for (const line of head.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!fields.has(name)) fields.set(name, []);
    fields.get(name).push(line.slice(colon + 1).trim());
  }
  return fields;
}

/** "<a@b>" → "a@b" ("<>" → ""). */
const bare = (value) => (value ?? '').trim().replace(/^<(.*)>$/, '$1');

class Instance {
  /**
   * @param {string} name    the folder under tests/servers
   * @param {object} ports   { port, ... } as start.sh flags (camelCase → --kebab-case)
   */
  constructor(name, dir, ports) {
    this.name = name;
    this.dir = dir;
    Object.assign(this, ports);
    this.#forget = atExit(() => this.stopSync());
  }

  #forget;
  #stopped = false;

  stopSync() {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#forget();
    try {
      execFileSync('bash', [join(SERVERS, this.name, 'stop.sh'), this.dir], { stdio: 'ignore', timeout: 30_000 });
    } catch {}
    if (!process.env.WASMTP_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }

  async stop() {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#forget();
    await run('bash', [join(SERVERS, this.name, 'stop.sh'), this.dir, '--keep'], 30_000);
    if (!process.env.WASMTP_KEEP_TEST_DIRS) rmSync(this.dir, { recursive: true, force: true });
  }

  /** The server's own log, for failure messages. */
  log() {
    for (const file of this.logFiles) {
      try {
        return readFileSync(join(this.dir, file), 'utf8').slice(-4000);
      } catch {}
    }
    return '';
  }

  /** Every delivered message so far: [{ file, returnPath, recipient, headers }]. */
  deliveries() {
    return this.messageFiles().map((file) => {
      const headers = parseHeaders(readFileSync(file));
      return { file, headers, returnPath: bare(headers.get('return-path')?.[0]), recipient: this.recipientOf(file, headers) };
    });
  }
}

function listFiles(dir, filter = () => true) {
  try {
    return readdirSync(dir).filter((n) => !n.startsWith('.') && filter(n)).map((n) => join(dir, n));
  } catch {
    return [];
  }
}

/**
 * Exim 4.96: `port` offers PIPELINING + CHUNKING, `dataPort` PIPELINING only,
 * `noPipeliningPort` CHUNKING only, `noPipeliningDataPort` neither.
 */
class Exim extends Instance {
  logFiles = ['log/mainlog', 'log/paniclog', 'start.log'];
  messageFiles() {
    return listFiles(join(this.dir, 'mail', 'new'));
  }
  recipientOf(_file, headers) {
    return bare(headers.get('envelope-to')?.[0]);
  }
}

/** Dovecot 2.3 LMTP: users user0 ... user9 and full @lmtp.test. */
class Dovecot extends Instance {
  logFiles = ['dovecot.log', 'start.log'];
  messageFiles() {
    return listFiles(join(this.dir, 'mail')).flatMap((userDir) => listFiles(join(userDir, 'Maildir', 'new')));
  }
  /** The maildir's owner: Dovecot adds Delivered-To only when a transaction has one recipient. */
  recipientOf(file) {
    return `${basename(dirname(dirname(dirname(file))))}@lmtp.test`;
  }
}

/** OpenSMTPD 6.8, plaintext (see its start.sh), no PIPELINING: users user0 ... user9 @smtpd.test. */
class OpenSmtpd extends Instance {
  logFiles = ['smtpd.log'];
  messageFiles() {
    return listFiles(join(this.dir, 'spool'), (n) => n.endsWith('.eml'));
  }
  recipientOf(_file, headers) {
    return bare(headers.get('delivered-to')?.[0]);
  }
}

const KINDS = {
  exim: { Class: Exim, ports: ['port', 'dataPort', 'noPipeliningPort', 'noPipeliningDataPort'], binary: join(ROOT, '.tools/mta/root/usr/sbin/exim4') },
  dovecot: { Class: Dovecot, ports: ['port'], binary: '/usr/lib/dovecot/lmtp' },
  opensmtpd: { Class: OpenSmtpd, ports: ['port'], binary: join(ROOT, '.tools/mta/root/usr/sbin/smtpd') },
};

/**
 * Starts a private instance of `name` ('exim', 'dovecot' or 'opensmtpd');
 * throws (never skips) with the reason when it cannot.
 */
export async function startServer(name) {
  const kind = KINDS[name];
  if (!existsSync(kind.binary)) throw new Error(`${kind.binary} is missing: ${SETUP_HINT}`);
  if (process.getuid?.() !== 0) throw new Error(`a private ${name} instance needs root: ${SETUP_HINT}`);
  let lastError = '';
  // A free port can be taken between the probe and the server's bind: retry.
  for (let attempt = 0; attempt < 3; attempt++) {
    const dir = mkdtempSync(join(tmpdir(), `wasmtp-${name}-`));
    const ports = {};
    for (const key of kind.ports) ports[key] = await freePort(Object.values(ports));
    const instance = new kind.Class(name, dir, ports);
    const flags = Object.entries(ports).flatMap(([key, port]) => [`--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`, String(port)]);
    const out = await run('bash', [join(SERVERS, name, 'start.sh'), '--dir', dir, ...flags], 60_000);
    if (out.ok && out.stdout.startsWith('ready')) return instance;
    lastError = `${out.stdout}${out.stderr}${out.error?.killed ? '\n(start.sh timed out)' : ''}`;
    await instance.stop();
  }
  throw new Error(`the private ${name} instance did not start (${SETUP_HINT}):\n${lastError}`);
}
