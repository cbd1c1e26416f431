#!/usr/bin/env node
// wasmtp vs nodemailer, side by side, in one command:
//
//   node bench/run.mjs [--runs 3] [--messages 500] [--only id,id] [--no-postfix]
//
// Starts a local sink (smtp-server: AUTH, PIPELINING, no CHUNKING; bodies
// counted and discarded), a private Postfix (STARTTLS, AUTH, CHUNKING;
// discard transport) and a TCP delay proxy in front of each (10 ms each
// way: a 20 ms RTT) that counts the round trips the client waits for. Every
// measurement runs in a fresh Node process (CPU time and RSS are the
// client's alone), wasmtp and nodemailer alternating; each figure is the
// median of --runs runs. Writes bench/results.json and bench/chart.svg and
// prints the table that BENCHMARKS.md shows.
//
// Needs: bench/node_modules (npm ci in bench/), the built wasm
// (scripts/build-wasm.sh), and for Postfix root plus scripts/setup.sh.

import { execFileSync, fork, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chart } from './lib/chart.mjs';
import { wasmtpEntry } from './lib/entry.mjs';
import { startPostfix } from './lib/postfix.mjs';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const LIBS = ['wasmtp', 'nodemailer'];
const ONE_WAY_DELAY_MS = 10;

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i === -1 ? fallback : args[i + 1];
};
const RUNS = Number(opt('runs', 3));
const MESSAGES = Number(opt('messages', 500));
const ONLY = opt('only', null)?.split(',');
const WITH_POSTFIX = !args.includes('--no-postfix');
const STARTUP_RUNS = Number(opt('startup-runs', 9));
const ATTACHMENT_BYTES = 100 * 1024 * 1024;
const COLD_RUNS = Number(opt('cold-runs', 6));
// A cold runtime is node, deno or bun (wasmtp and nodemailer side by side),
// workerd (miniflare; wasmtp only: nodemailer does not run there), or one
// of them with "-wasmtls": wasmtp with TLS inside the engine over a plain
// socket (wasmtp only).
const COLD_RUNTIMES = (opt('cold-runtimes', 'node,deno,bun,workerd,node-wasmtls,deno-wasmtls,bun-wasmtls,workerd-wasmtls')).split(',');
/** The RSA key (2048-bit) both libraries sign with in the DKIM scenarios. */
const DKIM_KEY_FILE = join(HERE, '../tests/data/dkim-rsa-pkcs8.pem');

const log = (...a) => console.error('[bench]', ...a);

if (!existsSync(join(HERE, 'node_modules/nodemailer')) || !existsSync(join(HERE, 'node_modules/smtp-server'))) {
  console.error('bench/node_modules is missing: run `npm ci --prefix bench` first.');
  process.exit(2);
}
if (!existsSync(join(HERE, '../pkg/wasm/wasmtp_bg.wasm'))) {
  console.error('pkg/wasm is not built: run `bash scripts/build-wasm.sh` first.');
  process.exit(2);
}
const loadBefore = os.loadavg();

// ----- helpers ------------------------------------------------------------

function median(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

/** A child process that prints "ready <port>" and answers { op } messages over IPC. */
async function startChild(script, argv = []) {
  const child = fork(join(HERE, script), argv, { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /ready (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`${script} exited (${code})`)));
  });
  const ask = (op, fields = {}) =>
    new Promise((resolve) => {
      const onMessage = (msg) => {
        if (msg?.op === op) {
          child.off('message', onMessage);
          resolve(msg);
        }
      };
      child.on('message', onMessage);
      child.send({ op, ...fields });
    });
  return { port, ask, stop: () => child.disconnect() };
}

/** Runs a Node script in a fresh process; resolves with its last stdout line parsed as JSON. */
function runNode(script, argv, { nodeArgs = [] } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeArgs, join(HERE, script), ...argv], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => {
      const line = out.trim().split('\n').pop();
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`${script} ${argv.join(' ')} exited ${code}: ${out}`));
      }
    });
  });
}

/** The command that runs a script in `runtime` (node, deno, bun), or null when that runtime is not installed. */
function runtimeCommand(runtime) {
  if (runtime === 'node') return [process.execPath];
  // The runtime suite's pinned copies (tests/runtimes), else whatever is on PATH.
  const pinned = join(HERE, '../tests/runtimes/node_modules/.bin', runtime);
  const found = existsSync(pinned) ? pinned : which(runtime);
  if (!found) return null;
  return runtime === 'deno' ? [found, 'run', '-A'] : [found];
}

function which(command) {
  try {
    return execFileSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

/** The libraries a cold runtime runs, and how one cold send is started there. */
function coldRuntime(runtime) {
  const [base, variant] = runtime.split('-');
  const tlsEngine = variant === 'wasmtls' ? 'wasm' : undefined;
  if (base === 'workerd') {
    const installed = existsSync(join(HERE, '../tests/runtimes/node_modules/miniflare'));
    return installed && { libs: ['wasmtp'], run: (spec) => runNode('lib/cold-workerd.mjs', [JSON.stringify({ ...spec, tlsEngine })]) };
  }
  const command = runtimeCommand(base);
  if (!command) return null;
  return { libs: tlsEngine ? ['wasmtp'] : LIBS, run: (spec) => runCold(command, { ...spec, tlsEngine }) };
}

/** Runs lib/cold.mjs in a fresh process (`command` from runtimeCommand); resolves with its JSON line. */
function runCold([command, ...prefix], spec) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...prefix, join(HERE, 'lib/cold.mjs'), JSON.stringify(spec)], {
      cwd: HERE,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('close', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`${command} lib/cold.mjs exited ${code}: ${out}`));
      }
    });
  });
}

async function roundsFor(proxy, connections, { reset = true } = {}) {
  // The proxy counts a connection once both ends closed (the delayed FINs).
  for (let i = 0; i < 100; i++) {
    const stats = await proxy.ask('stats');
    if (stats.connections >= connections && stats.open === 0) {
      if (reset) await proxy.ask('reset');
      return stats.rounds;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await proxy.ask('reset');
  return null;
}

// ----- the servers ----------------------------------------------------------

log('starting the sink (smtp-server) and the delay proxies');
const sink = await startChild('lib/sink.mjs');
const sinkProxy = await startChild('lib/proxy.mjs', [String(sink.port), String(ONE_WAY_DELAY_MS)]);
let postfix = null;
let postfixProxy = null;
if (WITH_POSTFIX) {
  log('starting a private Postfix (needs root)');
  postfix = await startPostfix({ user: 'bench', pass: 'bench' });
  postfixProxy = await startChild('lib/proxy.mjs', [String(postfix.port), String(ONE_WAY_DELAY_MS)]);
}
// The cold sends: smtp-server with STARTTLS (like 587) and TLS from the
// first byte (like 465), certificates from a throw-away test CA.
const COLD = !ONLY || ONLY.some((id) => id.startsWith('cold'));
const cold = [];
if (COLD) {
  const certDir = mkdtempSync(join(os.tmpdir(), 'wasmtp-bench-certs-'));
  execFileSync('bash', [join(HERE, '../tests/servers/make-certs.sh'), certDir], { stdio: 'inherit' });
  for (const security of ['starttls', 'tls']) {
    const id = security === 'starttls' ? 'cold-587' : 'cold-465';
    if (ONLY && !ONLY.includes(id) && !ONLY.includes('cold')) continue;
    const server = await startChild('lib/tls-sink.mjs', [security, certDir]);
    const proxy = await startChild('lib/proxy.mjs', [String(server.port), String(ONE_WAY_DELAY_MS)]);
    cold.push({ id, security, server, proxy, caPath: join(certDir, 'ca.pem') });
  }
}
const stopAll = () => {
  for (const c of cold) {
    c.server.stop();
    c.proxy.stop();
  }
  sink.stop();
  sinkProxy.stop();
  postfixProxy?.stop();
  try {
    postfix?.stop();
  } catch {}
};
process.on('SIGINT', () => {
  stopAll();
  process.exit(130);
});

const sinkTarget = { port: sink.port, security: 'none' };
const postfixTarget = postfix && { port: postfix.port, security: 'starttls', ca: postfix.ca };

/** What is measured: msg/s (and CPU) for batches, RSS for the attachment. */
const SCENARIOS = [
  { id: 'loopback-1', title: 'loopback, 1 connection (smtp-server)', target: sinkTarget, connections: 1 },
  { id: 'loopback-4', title: 'loopback, 4 connections (smtp-server)', target: sinkTarget, connections: 4 },
  { id: 'rtt20-sink', title: '20 ms RTT, 1 connection (smtp-server, DATA)', target: sinkTarget, connections: 1, proxy: sinkProxy },
  // The same two at each library's default messages per connection (100):
  // the connection is replaced every 100 messages.
  { id: 'loopback-1-rotating', title: 'loopback, 1 connection replaced every 100 messages (defaults; smtp-server)', target: sinkTarget, connections: 1, defaultLimits: true },
  { id: 'rtt20-sink-rotating', title: '20 ms RTT, 1 connection replaced every 100 messages (defaults; smtp-server, DATA)', target: sinkTarget, connections: 1, defaultLimits: true, proxy: sinkProxy },
  // `reference`: a minimal raw client (lib/client.mjs 'raw') runs the same
  // batch too, for the pace the server itself allows.
  postfix && { id: 'loopback-postfix', title: 'loopback, 1 connection (Postfix, BDAT)', target: postfixTarget, connections: 1, reference: true },
  postfix && { id: 'rtt20-postfix', title: '20 ms RTT, 1 connection (Postfix, BDAT)', target: postfixTarget, connections: 1, proxy: postfixProxy, reference: true },
  { id: 'attachment-100mb', title: '100 MB attachment from a stream (smtp-server)', target: sinkTarget, connections: 1, attachment: true },
  // DKIM (rsa-sha256, 2048-bit, relaxed/relaxed, the same key for both).
  { id: 'loopback-1-dkim', title: 'loopback, 1 connection, DKIM-signed (smtp-server)', target: sinkTarget, connections: 1, dkim: true },
  { id: 'attachment-100mb-dkim', title: '100 MB attachment from a stream, DKIM-signed (smtp-server)', target: sinkTarget, connections: 1, attachment: true, dkim: true },
].filter((s) => s && (!ONLY || ONLY.includes(s.id)));

// ----- runs -----------------------------------------------------------------

const raw = {};
for (const s of SCENARIOS) raw[s.id] = s.reference ? { wasmtp: [], nodemailer: [], raw: [] } : { wasmtp: [], nodemailer: [] };
const started = performance.now();

for (let run = 0; run < RUNS; run++) {
  for (const s of SCENARIOS) {
    // Alternate which library goes first, so neither always meets a warm server.
    const order = run % 2 === 0 ? LIBS : [...LIBS].reverse();
    for (const lib of s.reference ? [...order, 'raw'] : order) {
      const target = s.proxy ? { ...s.target, port: s.proxy.port } : s.target;
      const spec = {
        lib,
        ...target,
        connections: s.connections,
        defaultLimits: s.defaultLimits === true,
        kind: s.attachment ? 'attachment' : 'batch',
        messages: s.attachment ? 1 : MESSAGES,
        attachmentBytes: ATTACHMENT_BYTES,
        dkim: s.dkim ? DKIM_KEY_FILE : undefined,
      };
      const before = s.target === sinkTarget ? await sink.ask('stats') : null;
      const result = await runNode('lib/client.mjs', [JSON.stringify(spec)]);
      if (s.proxy) result.rounds = await roundsFor(s.proxy, s.defaultLimits ? Math.ceil(MESSAGES / 100) : s.connections);
      if (before) {
        const after = await sink.ask('stats');
        result.serverMessages = after.messages - before.messages;
        result.serverBytes = after.bytes - before.bytes;
      }
      if (result.failed > 0) log(`${s.id} ${lib}: ${result.failed} failed: ${result.firstError}`);
      raw[s.id][lib].push(result);
      const rate = s.attachment
        ? `RSS +${((result.rssPeak - result.rssBefore) / 2 ** 20).toFixed(1)} MB in ${(result.elapsedMs / 1000).toFixed(1)} s`
        : `${((result.ok / result.elapsedMs) * 1000).toFixed(1)} msg/s`;
      log(`run ${run + 1}/${RUNS} ${s.id.padEnd(17)} ${lib.padEnd(10)} ${rate}${result.rounds != null ? `, ${(result.rounds / spec.messages).toFixed(3)} RTT/msg` : ''}`);
    }
  }
}

// ----- cold sends: a fresh process, a fresh connection, one message ----------

const coldRaw = {};
const coldRuntimes = COLD_RUNTIMES.flatMap((runtime) => {
  const found = coldRuntime(runtime);
  if (found) return [[runtime, found]];
  log(`cold send: ${runtime} is not installed (scripts/test-runtimes.sh installs it): skipped`);
  return [];
});
for (const c of cold) {
  for (const [runtime, { libs, run }] of coldRuntimes) {
    const key = `${c.id}-${runtime}`;
    coldRaw[key] = { wasmtp: [], nodemailer: [] };
    for (let i = 0; i < COLD_RUNS; i++) {
      for (const lib of i % 2 === 0 ? libs : [...libs].reverse()) {
        const spec = { lib, entry: wasmtpEntry, port: c.proxy.port, security: c.security, caPath: c.caPath };
        const result = await run(spec);
        // Round trips up to the message's final reply: QUIT and the close come after the result.
        await roundsFor(c.proxy, 1, { reset: false }); // waits until the connection closed
        result.rounds = (await c.proxy.ask('roundsBefore', { at: result.sentAt })).rounds;
        await c.proxy.ask('reset');
        coldRaw[key][lib].push(result);
        log(`cold ${key.padEnd(14)} ${lib.padEnd(10)} ${result.sentMs.toFixed(0)} ms, ${result.rounds} round trips`);
      }
    }
  }
}

log('import + instantiate, fresh processes');
const startup = { wasmtp: [], nodemailer: [] };
if (!ONLY || ONLY.includes('startup')) {
  for (let i = 0; i < STARTUP_RUNS; i++) {
    for (const lib of i % 2 === 0 ? LIBS : [...LIBS].reverse()) startup[lib].push(await runNode('lib/startup.mjs', [lib]));
  }
}
// The same from a CommonJS application: require('wasmtp') / require('nodemailer').
const startupCjs = { wasmtp: [], nodemailer: [] };
if (!ONLY || ONLY.includes('startup')) {
  for (let i = 0; i < STARTUP_RUNS; i++) {
    for (const lib of i % 2 === 0 ? LIBS : [...LIBS].reverse()) startupCjs[lib].push(await runNode('lib/startup.cjs', [lib]));
  }
}

let sizes = null;
try {
  sizes = JSON.parse(execFileSync(process.execPath, [join(HERE, 'size.mjs'), '--json'], { encoding: 'utf8' }));
} catch (error) {
  // size.mjs exits non-zero when an artifact is over budget, and still prints.
  try {
    sizes = JSON.parse(error.stdout);
  } catch {
    log('bench/size.mjs gave no sizes:', error.message);
  }
}
const elapsedS = (performance.now() - started) / 1000;
stopAll();

// ----- figures ----------------------------------------------------------------

const figures = [];
const ratio = (w, n) => (w != null && n != null && n !== 0 ? w / n : null);
function figure(id, label, unit, better, values) {
  const f = { id, label, unit, better, wasmtp: values.wasmtp, nodemailer: values.nodemailer };
  f.ratio = ratio(f.wasmtp, f.nodemailer);
  figures.push(f);
}
const per = (id, fn) => Object.fromEntries(LIBS.map((lib) => [lib, median(raw[id]?.[lib].map(fn) ?? [])]));
const rate = (r) => (r.failed > 0 ? NaN : (r.ok / r.elapsedMs) * 1000);

for (const s of SCENARIOS) {
  if (s.attachment) {
    figure(s.id, `peak RSS growth, 100 MB streamed attachment${s.dkim ? ', DKIM-signed' : ''}`, 'MB', 'lower', per(s.id, (r) => (r.failed ? NaN : (r.rssPeak - r.rssBefore) / 2 ** 20)));
    if (s.dkim) figure(`${s.id}-time`, 'time to sign and send a 100 MB streamed attachment', 's', 'lower', per(s.id, (r) => (r.failed ? NaN : r.elapsedMs / 1000)));
    continue;
  }
  figure(s.id, `msg/s, ${s.title}`, 'msg/s', 'higher', per(s.id, rate));
  if (s.proxy) figure(`${s.id}-rtt`, `RTT waited per message, ${s.title}`, 'RTT/msg', 'lower', per(s.id, (r) => r.rounds / MESSAGES));
  if (s.id === 'loopback-1-dkim') {
    figure(`${s.id}-cpu`, 'client CPU ms per DKIM-signed 10 KB message (loopback, smtp-server)', 'CPU ms', 'lower', per(s.id, (r) => r.cpuMs / r.ok));
  }
  if (s.id === 'loopback-1' || s.id === 'loopback-postfix') {
    figure(`${s.id}-cpu`, `client CPU s per 1,000 messages, ${s.title}`, 'CPU s', 'lower', per(s.id, (r) => (r.cpuMs / r.ok) * 1000 / 1000));
  }
}
for (const [key, byLib] of Object.entries(coldRaw)) {
  const [, port, ...rest] = key.split('-');
  const runtime = rest.join('-').replace('-wasmtls', ', TLS in the engine');
  const title = `cold send, ${port === '587' ? 'STARTTLS' : 'implicit TLS'} + AUTH, 20 ms RTT, ${runtime} (smtp-server)`;
  const pick = (fn) => Object.fromEntries(LIBS.map((lib) => [lib, median(byLib[lib].map(fn))]));
  figure(key, `ms to the final reply, ${title}`, 'ms', 'lower', pick((r) => r.sentMs));
  figure(`${key}-rtt`, `round trips, ${title}`, 'RTT', 'lower', pick((r) => r.rounds));
}
if (startup.wasmtp.length > 0) {
  figure('startup', 'import + instantiate (Node, fresh process)', 'ms', 'lower', {
    wasmtp: median(startup.wasmtp.map((r) => r.totalMs)),
    nodemailer: median(startup.nodemailer.map((r) => r.totalMs)),
  });
}
if (startupCjs.wasmtp.length > 0) {
  figure('startup-cjs', 'require + instantiate (Node, CommonJS, fresh process)', 'ms', 'lower', {
    wasmtp: median(startupCjs.wasmtp.map((r) => r.totalMs)),
    nodemailer: median(startupCjs.nodemailer.map((r) => r.totalMs)),
  });
}

const machine = {
  cpu: os.cpus()[0]?.model,
  cores: os.cpus().length,
  memoryGB: Math.round(os.totalmem() / 2 ** 30),
  os: `${os.type()} ${os.release()}`,
  node: process.version,
  postfix: postfix?.version ?? null,
  nodemailer: JSON.parse(readFileSync(join(HERE, 'node_modules/nodemailer/package.json'), 'utf8')).version,
  smtpServer: JSON.parse(readFileSync(join(HERE, 'node_modules/smtp-server/package.json'), 'utf8')).version,
  wasmtp: JSON.parse(readFileSync(join(HERE, '../pkg/package.json'), 'utf8')).version,
  // Other work on the machine skews every figure: the 1-minute load average
  // before and after the run (2 cores: 2.0 means both busy).
  loadAverage: { before: +loadBefore[0].toFixed(2), after: +os.loadavg()[0].toFixed(2) },
};
const results = {
  date: new Date().toISOString(),
  command: `node bench/run.mjs${args.length ? ' ' + args.join(' ') : ''}`,
  machine,
  setup: {
    runs: RUNS,
    messages: MESSAGES,
    messageBytes: median(raw['loopback-1']?.wasmtp.map((r) => r.serverBytes / r.serverMessages) ?? []),
    recipients: 1,
    rttMs: 2 * ONE_WAY_DELAY_MS,
    attachmentBytes: ATTACHMENT_BYTES,
    elapsedSeconds: Math.round(elapsedS),
  },
  figures,
  startup: {
    wasmtp: {
      importMs: median(startup.wasmtp.map((r) => r.importMs)),
      instantiateMs: median(startup.wasmtp.map((r) => r.instantiateMs)),
    },
    nodemailer: { importMs: median(startup.nodemailer.map((r) => r.importMs)) },
  },
  sizes,
  raw,
  cold: coldRaw,
};
writeFileSync(join(HERE, 'results.json'), JSON.stringify(results, null, 2) + '\n');
writeFileSync(join(HERE, 'chart.svg'), chart(results));

// ----- the table (printed, and written into BENCHMARKS.md between its markers) ----

const fmt = (v, unit) =>
  v == null ? '—' : unit === 'msg/s' || unit === 'RTT' ? v.toFixed(0) : unit === 's' ? v.toFixed(1) : unit === 'RTT/msg' ? v.toFixed(3) : unit === 'MB' ? v.toFixed(1) : v.toFixed(2);
const lines = [];
const m = machine;
lines.push(
  `Measured ${results.date.slice(0, 10)} on ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB, ${m.os}; Node ${m.node}; ` +
    `wasmtp ${m.wasmtp}, nodemailer ${m.nodemailer}, smtp-server ${m.smtpServer}${m.postfix ? `, Postfix ${m.postfix}` : ''}. ` +
    `Load average ${m.loadAverage.before} before, ${m.loadAverage.after} after (other work on the machine). ` +
    `Median of ${RUNS} runs of ${MESSAGES} messages of ${((results.setup.messageBytes ?? 0) / 1000).toFixed(1)} KB, one recipient, AUTH; ` +
    `${results.setup.rttMs} ms RTT through the delay proxy. \`${results.command}\` took ${results.setup.elapsedSeconds} s.`,
  '',
  '| figure | wasmtp | nodemailer | wasmtp / nodemailer |',
  '|---|---:|---:|---:|',
);
for (const f of figures) {
  lines.push(`| ${f.label} (${f.unit}, ${f.better} is better) | ${fmt(f.wasmtp, f.unit)} | ${fmt(f.nodemailer, f.unit)} | ${f.ratio == null ? '—' : f.ratio.toFixed(2) + '×'} |`);
}
if (results.startup.wasmtp.importMs != null) {
  lines.push(`| … of which import / instantiate (ms) | ${fmt(results.startup.wasmtp.importMs)} / ${fmt(results.startup.wasmtp.instantiateMs)} | ${fmt(results.startup.nodemailer.importMs)} / — | |`);
}
for (const s of SCENARIOS.filter((s) => s.reference)) {
  const rawRate = median(raw[s.id].raw.map(rate));
  lines.push(`| … a minimal raw client on the same server (${s.title}; lib/client.mjs 'raw', window 32) (msg/s) | ${fmt(rawRate, 'msg/s')} | | wasmtp / raw: ${ratio(median(raw[s.id].wasmtp.map(rate)), rawRate)?.toFixed(2) ?? '—'}× |`);
}
for (const a of sizes?.artifacts ?? []) {
  lines.push(`| wasm artifact \`${a.artifact}\` (${a.file}): raw / gzip -9 / brotli | ${(a.raw / 1000).toFixed(1)} / ${(a.gzip / 1000).toFixed(1)} / ${(a.brotli / 1000).toFixed(1)} KB | | |`);
}
const table = lines.join('\n');
console.log(table);
const doc = join(HERE, '../BENCHMARKS.md');
if (existsSync(doc) && !ONLY) {
  const text = readFileSync(doc, 'utf8');
  const begin = '<!-- results:begin (written by bench/run.mjs) -->';
  const endMark = '<!-- results:end -->';
  const i = text.indexOf(begin);
  const j = text.indexOf(endMark);
  if (i !== -1 && j > i) writeFileSync(doc, `${text.slice(0, i + begin.length)}\n${table}\n${text.slice(j)}`);
}
log(`done in ${Math.round(elapsedS)} s: bench/results.json, bench/chart.svg`);
process.exit(0);
