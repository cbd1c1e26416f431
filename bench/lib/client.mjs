// One measurement in a fresh Node process (so CPU time and RSS are the
// client's alone): sends a batch through wasmtp or nodemailer and prints
// one JSON line with the timings.
//
//   node lib/client.mjs '<json spec>'
// spec: { lib: 'wasmtp'|'nodemailer'|'raw', port, security: 'none'|'starttls',
//         ca?, messages, connections, kind: 'batch'|'attachment', attachmentBytes?,
//         defaultLimits? (each library's own messages-per-connection default: 100 for both),
//         dkim?: path of a PEM RSA key both libraries sign every message with }
// prints: { ok, failed, elapsedMs, cpuMs, rssBefore, rssPeak, firstError? }

import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { Readable } from 'node:stream';
import { wasmtpEntry } from './entry.mjs';

const spec = JSON.parse(process.argv[2]);
/** The same key, domain, selector and canonicalization (relaxed/relaxed) for both libraries. */
const DKIM_KEY = spec.dkim ? readFileSync(spec.dkim, 'utf8') : null;
const USER = spec.user ?? 'bench';
const PASS = spec.pass ?? 'bench';

/** About 10.2 KB of 7-bit text in 72-column lines: with headers a 10.5 KB message. */
const TEXT = (() => {
  const line = 'The quick brown fox jumps over the lazy dog; pack my box with five dozen.';
  const lines = [];
  for (let i = 0; lines.join('\r\n').length < 10_150; i++) lines.push(`${String(i).padStart(4, '0')} ${line.slice(0, 67)}`);
  return lines.join('\r\n') + '\r\n';
})();

function message(i) {
  return {
    from: 'Bench Sender <sender@bench.test>',
    to: [`rcpt${i}@bench.test`],
    subject: `Benchmark message ${i}`,
    text: TEXT,
  };
}

/** 64 KB pieces of printable bytes, `total` bytes in all, made as they are read. */
function* pieces(total) {
  const piece = Buffer.alloc(64 * 1024);
  for (let i = 0; i < piece.length; i++) piece[i] = 32 + ((i * 7) % 95);
  for (let sent = 0; sent < total; sent += piece.length) {
    yield new Uint8Array(piece.subarray(0, Math.min(piece.length, total - sent)));
  }
}

function attachmentMessage(stream) {
  return {
    from: 'sender@bench.test',
    to: ['rcpt@bench.test'],
    subject: 'Benchmark attachment',
    text: 'See the attachment.',
    attachments: [{ filename: 'big.bin', content: stream, contentType: 'application/octet-stream' }],
  };
}

async function wasmtpClient() {
  const { createClient, ready } = await import(wasmtpEntry);
  await ready(); // start-up is measured apart (startup.mjs)
  const client = createClient({
    host: spec.security === 'starttls' ? 'localhost' : '127.0.0.1',
    port: spec.port,
    security: spec.security,
    tls: spec.ca ? { ca: readFileSync(spec.ca, 'utf8') } : undefined,
    auth: { user: USER, pass: PASS },
    allowInsecureAuth: spec.security === 'none',
    clientName: 'client.bench.test',
    pool: spec.defaultLimits
      ? { maxConnections: spec.connections }
      : { maxConnections: spec.connections, maxMessagesPerConnection: 1_000_000 },
    dkim: DKIM_KEY ? { domain: 'bench.test', selector: 'bench', privateKey: DKIM_KEY } : undefined,
  });
  return {
    send: (msg) => client.send(msg),
    stream: (total) => {
      const it = pieces(total);
      return new ReadableStream({
        pull(controller) {
          const { value, done } = it.next();
          if (done) controller.close();
          else controller.enqueue(value);
        },
      });
    },
    close: () => client.close(),
  };
}

async function nodemailerClient() {
  const { default: nodemailer } = await import('nodemailer');
  const transport = nodemailer.createTransport({
    host: spec.security === 'starttls' ? 'localhost' : '127.0.0.1',
    port: spec.port,
    secure: false,
    ignoreTLS: spec.security === 'none',
    requireTLS: spec.security === 'starttls',
    tls: spec.ca ? { ca: readFileSync(spec.ca, 'utf8') } : undefined,
    auth: { user: USER, pass: PASS },
    name: 'client.bench.test',
    pool: true,
    maxConnections: spec.connections,
    ...(spec.defaultLimits ? {} : { maxMessages: Infinity }),
    // A big message is spooled to disk past cacheTreshold (nodemailer's
    // default is to buffer it in memory), as wasmtp spools a one-shot stream.
    dkim: DKIM_KEY ? { domainName: 'bench.test', keySelector: 'bench', privateKey: DKIM_KEY, cacheDir: os.tmpdir() } : undefined,
  });
  return {
    send: (msg) => transport.sendMail(msg),
    stream: (total) => Readable.from(pieces(total), { objectMode: false }),
    close: () => transport.close(),
  };
}

/**
 * The wire's own pace, as a reference for the BDAT scenarios: a minimal
 * client with no library around it (STARTTLS, AUTH PLAIN, then MAIL, RCPT
 * and BDAT LAST with the message, up to `spec.window` transactions in
 * flight, 32 by default as wasmtp's engine). No MIME building, no checks
 * beyond each reply's code: what any client can reach against this server.
 */
async function rawClient() {
  const net = await import('node:net');
  const tls = await import('node:tls');
  let socket = net.connect({ host: '127.0.0.1', port: spec.port });
  socket.setNoDelay(true);
  let pending = '';
  const waiting = [];
  const replies = [];
  const onData = (chunk) => {
    pending += chunk.toString('latin1');
    let end;
    while ((end = pending.indexOf('\r\n')) !== -1) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 2);
      if (line[3] !== '-') {
        if (waiting.length > 0) waiting.shift()(line);
        else replies.push(line);
      }
    }
  };
  const reply = () => (replies.length > 0 ? Promise.resolve(replies.shift()) : new Promise((resolve) => waiting.push(resolve)));
  const expect = async (prefix) => {
    const line = await reply();
    if (!line.startsWith(prefix)) throw new Error(`raw client: expected ${prefix}, got ${line}`);
  };
  socket.on('data', onData);
  await expect('220');
  socket.write('EHLO client.bench.test\r\n');
  await expect('250');
  if (spec.security === 'starttls') {
    socket.write('STARTTLS\r\n');
    await expect('220');
    socket.off('data', onData);
    socket = tls.connect({ socket, servername: 'localhost', ca: readFileSync(spec.ca, 'utf8') });
    socket.on('data', onData);
    await new Promise((resolve, reject) => socket.once('secureConnect', resolve).once('error', reject));
    socket.write('EHLO client.bench.test\r\n');
    await expect('250');
  }
  socket.write(`AUTH PLAIN ${Buffer.from(`\0${USER}\0${PASS}`).toString('base64')}\r\n`);
  await expect('235');
  const window = spec.window ?? 32;
  let inFlight = 0;
  const slots = [];
  return {
    async send(msg, i = Math.random()) {
      while (inFlight >= window) await new Promise((resolve) => slots.push(resolve));
      inFlight += 1;
      const body = Buffer.from(
        `From: ${msg.from}\r\nTo: ${msg.to.join(', ')}\r\nSubject: ${msg.subject}\r\nDate: ${new Date().toUTCString()}\r\n` +
          `Message-ID: <${i}.${Date.now()}@bench.test>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n` +
          `Content-Transfer-Encoding: 7bit\r\n\r\n${msg.text}`,
      );
      socket.write(`MAIL FROM:<sender@bench.test>\r\nRCPT TO:<${msg.to[0]}>\r\nBDAT ${body.length} LAST\r\n`);
      socket.write(body);
      const codes = [await reply(), await reply(), await reply()];
      inFlight -= 1;
      slots.shift()?.();
      if (!codes.every((line) => line.startsWith('2'))) throw new Error(`raw client: ${codes.join(' / ')}`);
    },
    close: async () => {
      socket.write('QUIT\r\n');
      await reply();
      socket.end();
    },
  };
}

function vmHwmBytes() {
  const status = readFileSync('/proc/self/status', 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)[1]) * 1024;
}

const lib = spec.lib === 'wasmtp' ? await wasmtpClient() : spec.lib === 'raw' ? await rawClient() : await nodemailerClient();
const batch = spec.kind === 'attachment' ? null : Array.from({ length: spec.messages }, (_, i) => message(i));

globalThis.gc?.();
const rssBefore = process.memoryUsage.rss();
try {
  writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM, the peak RSS
} catch {}
const cpu0 = process.cpuUsage();
const t0 = performance.now();
let ok = 0;
let failed = 0;
let firstError;
const count = (p) =>
  p.then(
    () => {
      ok += 1;
    },
    (error) => {
      failed += 1;
      firstError ??= String(error?.message ?? error);
    },
  );
if (spec.kind === 'attachment') {
  await count(lib.send(attachmentMessage(lib.stream(spec.attachmentBytes))));
} else {
  await Promise.all(batch.map((m) => count(lib.send(m))));
}
const elapsedMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const rssPeak = vmHwmBytes();
await lib.close();
process.stdout.write(
  JSON.stringify({ ok, failed, elapsedMs, cpuMs: (cpu.user + cpu.system) / 1000, rssBefore, rssPeak, firstError }) + '\n',
);
process.exit(0);
