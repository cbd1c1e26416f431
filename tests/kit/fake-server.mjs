// A fake SMTP server on a real loopback socket that plays a script byte for
// byte (see ./script.js for the format): delays, split segments, STARTTLS
// and implicit TLS with the test CA, a close or a reset at any byte, stalls
// and garbage. Everything the client sends is recorded per connection.
//
//   const server = await startFakeServer({ script: 'S: 220 mx\nC: EHLO client.test\n...' });
//   ... point a client at 127.0.0.1:server.port ...
//   const conn = await server.connection(0);   // the first connection's record
//   await conn.done;                            // the socket closed (either side)
//   conn.commands, conn.messages, conn.bytes(), conn.failures
//   await server.close();
//
// `script` is used for every connection; `scripts: [a, b, ...]` gives the
// i-th connection its own (the last one repeats); `script: (index) => ...`
// picks one per connection.

import net from 'node:net';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';

import { testCertificates } from '../../pkg/test/helpers/certs.js';
import { garbageBytes, parseScript } from './script.mjs';

/**
 * @param {object} options
 * @param {string|Array|Function} [options.script]
 * @param {Array} [options.scripts]
 * @returns {Promise<FakeServer>}
 */
export async function startFakeServer({ script, scripts } = {}) {
  const pick =
    typeof script === 'function'
      ? script
      : scripts
        ? (i) => scripts[Math.min(i, scripts.length - 1)]
        : () => script ?? '';
  const server = new FakeServer(pick);
  await server.listen();
  return server;
}

export class FakeServer {
  constructor(pick) {
    this.#pick = pick;
    this.#server = net.createServer({ pauseOnConnect: true }, (socket) => this.#accept(socket));
    this.#server.on('error', () => {});
  }

  /** Every connection so far, in the order they were accepted. */
  connections = [];
  port = 0;

  #pick;
  #server;
  #waiters = [];

  listen() {
    return new Promise((resolve) => {
      this.#server.listen(0, '127.0.0.1', () => {
        this.port = this.#server.address().port;
        resolve();
      });
    });
  }

  /** The record of the i-th connection, once it is accepted. */
  connection(i) {
    if (this.connections[i]) return Promise.resolve(this.connections[i]);
    return new Promise((resolve) => this.#waiters.push({ i, resolve }));
  }

  /** Total bytes the client sent on every connection. */
  get totalBytes() {
    return this.connections.reduce((n, c) => n + c.byteCount, 0);
  }

  /** Stops listening and destroys every connection (stalled ones too). */
  async close() {
    for (const c of this.connections) c.destroy();
    await new Promise((resolve) => this.#server.close(() => resolve()));
  }

  #accept(socket) {
    const index = this.connections.length;
    const conn = new FakeConnection(index, socket, parseScript(this.#pick(index)));
    this.connections.push(conn);
    for (const w of this.#waiters.filter((w) => w.i === index)) w.resolve(conn);
    this.#waiters = this.#waiters.filter((w) => w.i !== index);
    conn.run();
  }
}

/** One accepted connection: the script runner and everything the client sent. */
export class FakeConnection {
  constructor(index, socket, steps) {
    this.index = index;
    this.steps = steps;
    this.#raw = socket;
    this.#socket = socket;
    socket.setNoDelay(true);
    socket.on('error', (error) => {
      this.socketErrors.push(error.code ?? error.message);
    });
    this.done = new Promise((resolve) => {
      socket.once('close', () => {
        this.closed = true;
        this.#wakeReader();
        resolve(this);
      });
    });
  }

  /** Lines the client sent as commands: { text, tls }. */
  commands = [];
  /** Message bodies read by BODY steps (dot-unstuffed, CRLF kept). */
  messages = [];
  /** Where the script stopped: index of the step not completed (steps.length when all ran). */
  stoppedAt = 0;
  /** Script expectations the client did not meet (mismatch, or it closed first). */
  failures = [];
  /** Socket errors seen by the server (ECONNRESET...). */
  socketErrors = [];
  /** The client's end of stream arrived (FIN). */
  clientEnded = false;
  closed = false;
  /** TLS is up on this connection. */
  tls = false;
  /** Plaintext bytes the client sent after STARTTLS and before its TLS handshake. */
  earlyBytes = Buffer.alloc(0);
  marks = {};
  /** Resolves with this record when the socket closed. */
  done;

  #raw;
  #socket;
  #chunks = [];
  byteCount = 0;
  #buffer = Buffer.alloc(0);
  #ended = false;
  #wake = null;
  #attached = null;
  #split = { size: 0, gap: 5 };

  /** Every byte the client sent (after decryption, once TLS is up). */
  bytes() {
    return Buffer.concat(this.#chunks);
  }

  /** Command lines after the given mark (or after the first line matching a regexp). */
  commandsAfter(markOrPattern) {
    if (typeof markOrPattern === 'string') return this.commands.slice(this.marks[markOrPattern] ?? this.commands.length);
    const at = this.commands.findIndex((c) => markOrPattern.test(c.text));
    return at === -1 ? [] : this.commands.slice(at + 1);
  }

  /** Whether the client sent a command matching `pattern`. */
  sent(pattern) {
    return this.commands.some((c) => pattern.test(c.text));
  }

  /** A printable transcript of what the client sent (AUTH payloads redacted). */
  describe() {
    let inAuth = false;
    return this.commands
      .map((c) => {
        let text = c.text;
        if (/^AUTH\b/i.test(text)) {
          text = text.split(' ').slice(0, 2).join(' ') + (text.split(' ').length > 2 ? ' <redacted>' : '');
          inAuth = true;
        } else if (inAuth && !/^[A-Z]{4}/.test(text)) text = '<redacted>';
        else inAuth = false;
        return `${c.tls ? 'C(tls)' : 'C'}: ${text}`;
      })
      .join('\n');
  }

  /** A summary without what the client sent in AUTH (records are printed and scanned for secrets). */
  toJSON() {
    return { index: this.index, transcript: this.describe(), stoppedAt: this.stoppedAt, failures: this.failures, tls: this.tls };
  }

  destroy() {
    try {
      this.#socket.destroy();
    } catch {}
    try {
      this.#raw.destroy();
    } catch {}
  }

  async run() {
    const steps = this.steps;
    try {
      if (steps[0]?.op !== 'tls') this.#attach(this.#socket);
      for (let i = 0; i < steps.length; i++) {
        this.stoppedAt = i;
        const step = steps[i];
        // About to say the line that starts TLS: stop reading plaintext first,
        // so the client's first TLS bytes stay in the kernel for node:tls.
        if (step.op === 'send' && steps[i + 1]?.op === 'tls') this.#detach();
        const more = await this.#step(step);
        if (more === false) return;
      }
      this.stoppedAt = steps.length;
      // Out of steps: read on (recording) until the client closes.
      while ((await this.#readLine()) !== null) {}
    } catch (error) {
      if (!(error instanceof ScriptStop)) this.failures.push(`step ${this.stoppedAt + 1} (${steps[this.stoppedAt]?.text}): ${error.message}`);
      // Keep reading what the client says after the mismatch (it is recorded).
      if (!this.closed && this.#attached) while ((await this.#readLine()) !== null) {}
    }
  }

  async #step(step) {
    switch (step.op) {
      case 'send':
        await this.#write(step.bytes);
        return true;
      case 'expect': {
        const line = await this.#readLine();
        if (line === null) throw new Error(`the client closed instead of sending ${JSON.stringify(step.line ?? String(step.pattern))}`);
        const ok = step.pattern ? step.pattern.test(line) : line === step.line;
        if (!ok) throw new Error(`the client sent ${JSON.stringify(redactLine(line))}, expected ${JSON.stringify(step.line ?? String(step.pattern))}`);
        return true;
      }
      case 'skip':
        for (let n = 0; n < step.count; n++) {
          if ((await this.#readLine()) === null) throw new Error('the client closed');
        }
        return true;
      case 'body': {
        const lines = [];
        for (;;) {
          const line = await this.#readLine('body');
          if (line === null) throw new Error('the client closed in the middle of the message body');
          if (line === '.') break;
          lines.push(line.startsWith('.') ? line.slice(1) : line);
        }
        this.messages.push(Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1'));
        return true;
      }
      case 'read':
        await this.#readBytes(step.count);
        return true;
      case 'tls':
        await this.#startTls();
        return true;
      case 'delay':
        await sleep(step.ms);
        return true;
      case 'split':
        this.#split = { size: step.size, gap: step.gap };
        return true;
      case 'close':
        this.#socket.end();
        // Keep reading after our FIN: what the client says next is recorded.
        if (this.#attached) while ((await this.#readLine()) !== null) {}
        return false;
      case 'reset':
        this.#raw.resetAndDestroy();
        return false;
      case 'stall':
        // Never answer again; keep reading (and recording) what the client sends.
        if (this.#attached) while ((await this.#readLine()) !== null) {}
        await this.done;
        return false;
      case 'freeze':
        // Neither read nor answer: the client's writes back up.
        this.#detach();
        await this.done;
        return false;
      case 'garbage':
        await this.#write(garbageBytes(step.count, 0x5eed + step.count));
        return true;
      case 'handshake-garbage':
        // The client's ClientHello (or whatever it sends first) arrives, then garbage.
        await this.#readBytes(1);
        await this.#write(garbageBytes(step.count, 0xbad + step.count));
        return true;
      case 'mark':
        this.marks[step.name] = this.commands.length;
        return true;
      case 'call':
        return (await step.fn(this)) !== false;
      default:
        throw new Error(`unknown step ${step.op}`);
    }
  }

  /** Writes bytes, as one segment or in SPLIT pieces. */
  async #write(bytes) {
    if (this.closed) throw new ScriptStop();
    const { size, gap } = this.#split;
    if (!size) return writeAll(this.#socket, bytes);
    for (let at = 0; at < bytes.length; at += size) {
      await writeAll(this.#socket, bytes.subarray(at, at + size));
      if (at + size < bytes.length) await sleep(gap);
    }
  }

  /** Raw write for function steps. */
  write(bytes) {
    return this.#write(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1'));
  }

  /** Reads one line for function steps (null when the client closed). */
  readLine() {
    return this.#readLine();
  }

  /** Reads one line of a message body (not recorded as a command). */
  readBodyLine() {
    return this.#readLine('body');
  }

  /** Upgrades to TLS for function steps. */
  startTls() {
    return this.#startTls();
  }

  /** The current socket (for function steps). */
  get socket() {
    return this.#socket;
  }

  async #startTls() {
    this.#detach();
    if (this.#buffer.length > 0) {
      this.earlyBytes = Buffer.concat([this.earlyBytes, this.#buffer]);
      this.#buffer = Buffer.alloc(0);
    }
    const { key, cert } = testCertificates();
    const plain = this.#socket;
    const secure = new tls.TLSSocket(plain, { isServer: true, key, cert });
    secure.on('error', (error) => this.socketErrors.push(error.code ?? error.message));
    await new Promise((resolve, reject) => {
      secure.once('secure', resolve);
      secure.once('error', reject);
      secure.once('close', () => reject(new Error('the client closed during the TLS handshake')));
    });
    this.#socket = secure;
    this.tls = true;
    this.#attach(secure);
  }

  #attach(socket) {
    this.#ended = false;
    const onData = (chunk) => {
      this.#chunks.push(chunk);
      this.byteCount += chunk.length;
      this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
      this.#wakeReader();
    };
    const onEnd = () => {
      this.clientEnded = true;
      this.#ended = true;
      this.#wakeReader();
    };
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    this.#attached = { socket, onData, onEnd };
    socket.resume();
  }

  #detach() {
    const a = this.#attached;
    if (!a) return;
    a.socket.off('data', a.onData);
    a.socket.off('end', a.onEnd);
    a.socket.off('close', a.onEnd);
    a.socket.pause();
    this.#attached = null;
  }

  #wakeReader() {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #waitForData() {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  /** The next line (without CRLF), or null once the client closed. */
  async #readLine(kind = 'command') {
    for (;;) {
      const at = this.#buffer.indexOf(10);
      if (at !== -1) {
        const end = at > 0 && this.#buffer[at - 1] === 13 ? at - 1 : at;
        const text = this.#buffer.subarray(0, end).toString('latin1');
        this.#buffer = this.#buffer.subarray(at + 1);
        if (kind === 'command') this.commands.push({ text, tls: this.tls });
        return text;
      }
      if (this.#ended || this.closed || !this.#attached) {
        if (this.#buffer.length > 0 && kind === 'command') {
          this.commands.push({ text: this.#buffer.toString('latin1'), tls: this.tls, partial: true });
          this.#buffer = Buffer.alloc(0);
        }
        return null;
      }
      await this.#waitForData();
    }
  }

  async #readBytes(count) {
    while (this.#buffer.length < count) {
      if (this.#ended || this.closed || !this.#attached) throw new Error(`the client closed before sending ${count} bytes`);
      await this.#waitForData();
    }
    const out = this.#buffer.subarray(0, count);
    this.#buffer = this.#buffer.subarray(count);
    return out;
  }
}

class ScriptStop extends Error {}

function writeAll(socket, bytes) {
  return new Promise((resolve, reject) => {
    if (socket.destroyed) return reject(new ScriptStop());
    socket.write(bytes, (error) => (error ? reject(new ScriptStop()) : resolve()));
  });
}

function redactLine(line) {
  return /^AUTH\s+\S+\s+\S/i.test(line) ? line.split(' ').slice(0, 2).join(' ') + ' <redacted>' : line;
}

/** A port nothing listens on (connect is refused). */
export async function refusedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A listening port whose accept queue is full, so that a new connection
 * neither opens nor is refused (the SYN goes unanswered): a server that
 * stalls at connect. A python3 child listens with backlog 0 and never
 * accepts; filler connections take the queue. Resolves null without python3.
 */
export async function startUnacceptingListener() {
  const { spawn } = await import('node:child_process');
  const code = [
    'import socket, sys, time',
    's = socket.socket(socket.AF_INET, socket.SOCK_STREAM)',
    "s.bind(('127.0.0.1', 0))",
    's.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()',
  ].join('\n');
  let child;
  try {
    child = spawn('python3', ['-c', code], { stdio: ['pipe', 'pipe', 'ignore'] });
  } catch {
    return null;
  }
  const port = await new Promise((resolve) => {
    let out = '';
    child.on('error', () => resolve(null));
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(Number(out.trim()));
    });
  });
  if (!port) return null;
  const fillers = [];
  const close = () => {
    for (const f of fillers) f.destroy();
    child.stdin.end();
    child.kill();
  };
  // Fill the queue until a probe connection no longer opens within a second
  // (on loopback an accepted connect completes at once, even on a busy machine).
  for (let i = 0; i < 16; i++) {
    const opened = await new Promise((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.on('error', () => {});
      fillers.push(s);
      const timer = setTimeout(() => resolve(false), 1000);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    if (!opened) return { port, close };
  }
  close();
  return null;
}
