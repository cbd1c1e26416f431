// The runtime acceptance runner. It
//   1. makes a test CA and certificates with openssl (a server certificate
//      for localhost / 127.0.0.1, and a self-signed CA:TRUE one),
//   2. starts the test SMTP servers (pkg/test/helpers/server.js) on 127.0.0.1 (plaintext, STARTTLS,
//      implicit TLS; AUTH PLAIN / LOGIN / CRAM-MD5; "reject*" recipients
//      refused with 550),
//   3. runs suite.js in each runtime: node, deno and bun (harness.mjs, via
//      the package's default entry) and workerd through miniflare (the
//      `wasmtp/workers` and `wasmtp/workers/tls` entries, outbound network
//      allow list including "private", the test CA trusted by workerd),
//   4. checks on the server side that every message the suite reports as
//      sent arrived, with the same recipients and AUTH user, and no other;
//   5. serves a zone with dnsmasq (tests/servers/dns) and DNS-over-HTTPS in
//      front of it, for the resolver and one direct delivery (mx: true) per runtime.
//
// Usage: node run.mjs [node] [deno] [bun] [bun-connect] [workerd]   (default: all)
// Every child has a time limit; the exit status is non-zero on any failure.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { PASS, startServer as startTestServer, USER } from '../../pkg/test/helpers/server.js';
import { startTokenEndpoint } from '../../pkg/test/helpers/token-endpoint.js';

import { startDns } from '../../pkg/test/helpers/dns.js';
import { startDohServer } from '../servers/dns/doh.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const PKG = join(ROOT, 'pkg');
const BIN = join(HERE, 'node_modules', '.bin');
const CHILD_LIMIT_MS = 120_000;

const ALL = ['node', 'deno', 'bun', 'bun-connect', 'workerd'];
const wanted = process.argv.slice(2).length ? process.argv.slice(2) : ALL;

// ------------------------------------------------------------------ certificates

function makeCertificates() {
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-runtime-certs-'));
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=wasmtp runtime test CA',
      '-keyout', 'ca.key', '-out', 'ca.pem');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr');
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
      '-extfile', 'ext.cnf', '-out', 'server.pem');
    // A self-signed certificate with CA:TRUE used as the server's own
    // (what `openssl req -x509` makes by default): Deno refuses it.
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', 'catrue.key', '-out', 'catrue.pem');
    const fingerprint = (file) =>
      openssl('x509', '-noout', '-fingerprint', '-sha256', '-in', file).toString().trim().split('=')[1];
    const read = (f) => readFileSync(join(dir, f), 'utf8');
    return {
      ca: read('ca.pem'),
      key: read('server.key'),
      cert: read('server.pem'),
      caTrueKey: read('catrue.key'),
      caTrueCert: read('catrue.pem'),
      pin: fingerprint('server.pem'),
      wrongPin: fingerprint('ca.pem'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ----------------------------------------------------------------------- servers

const received = [];

/** The test SMTP server (pkg/test/helpers/server.js); every message any of them accepts lands in `received`. */
function startServer({ tls, key, cert }) {
  return startTestServer({
    tls,
    key,
    cert,
    authMethods: ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2'],
    // Only a renewed token is good: every provider's first one is refused (see tokenAnswer).
    login: (auth) =>
      auth.username === USER &&
      (auth.method === 'XOAUTH2' ? auth.accessToken === FRESH_ACCESS_TOKEN : auth.method === 'CRAM-MD5' ? auth.validatePassword(PASS) : auth.password === PASS),
    decide(m) {
      const dkim = (m.raw.toString('latin1').split('\r\n\r\n')[0].match(/^DKIM-Signature:/gim) ?? []).length;
      received.push({ tag: m.subject, to: m.to, user: m.user || undefined, bytes: m.bytes, dkim });
      return 'accept';
    },
  });
}

/** The token endpoint's answers: per client id, a stale token first, then the fresh one. */
const FRESH_ACCESS_TOKEN = 'fresh-access-token';
const tokensIssued = new Map();
function tokenAnswer(form) {
  const n = (tokensIssued.get(form.get('client_id')) ?? 0) + 1;
  tokensIssued.set(form.get('client_id'), n);
  return { status: 200, body: { access_token: n === 1 ? 'stale-access-token' : FRESH_ACCESS_TOKEN, token_type: 'Bearer', expires_in: 3600 } };
}

// ---------------------------------------------------------------------- children

/** Runs a command with a time limit; resolves with { code, stdout, stderr, ms }. */
function run(cmd, args, { cwd = HERE, env = process.env } = {}) {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${CHILD_LIMIT_MS} ms)`;
      child.kill('SIGKILL');
    }, CHILD_LIMIT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: Date.now() - started });
    });
  });
}

function parseResult(label, { code, stdout, stderr, ms }) {
  const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) {
    return { label, ms, crashed: `exit ${code}\n${stdout.slice(-3000)}\n${stderr.slice(-3000)}`, results: [], sent: [] };
  }
  return { label, ms, ...JSON.parse(line.slice(7)) };
}

async function runHarness(label, cmd, args, config, env = process.env) {
  const out = await run(cmd, [...args, 'harness.mjs', JSON.stringify({ ...config, label })], { env });
  return parseResult(label, out);
}

// ---------------------------------------------------------------------- workerd

/** The file an `exports` entry of pkg/package.json points at (workerd conditions). */
function exportTarget(subpath) {
  const exportsMap = JSON.parse(readFileSync(join(PKG, 'package.json'), 'utf8')).exports;
  let target = exportsMap[subpath];
  while (target && typeof target === 'object') target = target.workerd ?? target.worker ?? target.import ?? target.default;
  if (typeof target !== 'string') throw new Error(`pkg/package.json exports has no entry for "${subpath}"`);
  return join(PKG, target);
}

/** Every module a worker may load: the package sources, the wasm glue and artifacts, the suite. */
function workerModules(entryContents, entryPath) {
  const modules = [{ type: 'ESModule', path: entryPath, contents: entryContents }];
  const walk = (dir) =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  for (const file of walk(join(PKG, 'src'))) if (file.endsWith('.js')) modules.push({ type: 'ESModule', path: file });
  for (const name of ['wasmtp.js', 'wasmtp_tls.js', 'wasmtp_dkim.js']) modules.push({ type: 'ESModule', path: join(PKG, 'wasm', name) });
  for (const name of ['wasmtp_bg.wasm', 'wasmtp_tls_bg.wasm', 'wasmtp_dkim_bg.wasm']) modules.push({ type: 'CompiledWasm', path: join(PKG, 'wasm', name) });
  modules.push({ type: 'ESModule', path: join(HERE, 'suite.js') });
  return modules;
}

function workerScript(entryFile) {
  const entryPath = join(HERE, `.worker-${Math.random().toString(36).slice(2)}.js`);
  const rel = (p) => `./${relative(dirname(entryPath), p)}`;
  const contents = `
import { createClient, createResolver, oauth2, ready, SmtpError } from ${JSON.stringify(rel(entryFile))};
import { runSuite } from ${JSON.stringify(rel(join(HERE, 'suite.js')))};
export default {
  async fetch(request) {
    const config = await request.json();
    return Response.json(await runSuite({ createClient, createResolver, oauth2, ready, SmtpError, config }));
  },
};`;
  return { entryPath, contents };
}

/** The Workers example of pkg/README.md, with its import pointed at the entry file. */
function readmeWorkerExample(entryFile) {
  const readme = readFileSync(join(PKG, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```js\n([\s\S]*?)```/g)]
    .map((m) => m[1])
    .find((code) => code.includes("from 'wasmtp/workers'") && code.includes('export default'));
  if (!block) throw new Error('pkg/README.md has no Workers example (a js block importing wasmtp/workers with export default)');
  const { entryPath } = workerScript(entryFile);
  const rel = `./${relative(dirname(entryPath), entryFile)}`;
  return { entryPath, contents: block.replace("from 'wasmtp/workers'", `from ${JSON.stringify(rel)}`) };
}

async function runWorkerd(config, certs) {
  const started = Date.now();
  const { Miniflare } = await import('miniflare');
  const worker = (name, entry, trustCa, script = workerScript(exportTarget(entry)), bindings = undefined) => {
    const { entryPath, contents } = script;
    return {
      name,
      bindings,
      modules: workerModules(contents, entryPath),
      modulesRoot: ROOT,
      compatibilityDate: '2025-09-01',
      // connect() to 127.0.0.1 needs "private" in the allow list.
      outboundService: {
        network: {
          allow: ['public', 'private'],
          // Without tlsOptions workerd has no TLS at all; the public roots only, or plus the test CA.
          tlsOptions: trustCa ? { trustBrowserCas: true, trustedCertificates: [certs.ca] } : { trustBrowserCas: true },
        },
      },
    };
  };
  // workerd's own log (e.g. the real cause behind "internal error") is kept
  // and shown only when a workerd run fails (WORKERD_LOG=1 shows it live).
  let workerdLog = '';
  const options = {
    handleRuntimeStdio(stdout, stderr) {
      for (const stream of [stdout, stderr]) {
        if (process.env.WORKERD_LOG) stream.pipe(process.stderr);
        stream.on('data', (d) => (workerdLog += d));
      }
    },
    workers: [
      worker('core', './workers', true), // wasmtp/workers: the platform's TLS, test CA trusted by workerd
      worker('tls', './workers/tls', false), // wasmtp/workers/tls: TLS inside the engine over secureTransport 'off'
      worker('untrusted', './workers', false), // the platform's TLS without the test CA
      // The README's Workers example, as printed, against the STARTTLS server.
      worker('readme', './workers', true, readmeWorkerExample(exportTarget('./workers')), {
        SMTP_HOST: '127.0.0.1',
        SMTP_PORT: String(config.ports.starttls),
        SMTP_USER: config.user,
        SMTP_PASS: config.pass,
        MAIL_FROM: 'ann@example.com',
        MAIL_TO: 'bob@example.org',
      }),
    ],
  };
  // A workerd start-up failure is retried once (its log is kept for the report).
  let mf;
  for (let attempt = 1; ; attempt++) {
    try {
      mf = new Miniflare(options);
      await mf.ready;
      break;
    } catch (error) {
      await mf?.dispose().catch(() => {});
      if (attempt === 2) return [{ label: 'workerd', ms: Date.now() - started, crashed: `${error}\n${workerdLog.slice(-4000)}`, results: [], sent: [] }];
      console.log(`workerd did not start (${error.message}); retrying once`);
    }
  }
  const outcomes = [];
  try {
    const call = async (name, cfg) => {
      const worker = await mf.getWorker(name);
      const response = await worker.fetch('http://suite/', { method: 'POST', body: JSON.stringify(cfg) });
      const text = await response.text();
      try {
        return JSON.parse(text);
      } catch {
        return { crashed: `HTTP ${response.status}: ${text.slice(0, 3000)}`, results: [], sent: [] };
      }
    };
    const t0 = Date.now();
    const core = await call('core', { ...config, caTrueCert: undefined, runtime: 'workerd', engines: ['native'], nativeCa: false, nativeUntrusted: false, workersEntryChecks: true });
    outcomes.push({ label: 'workerd', ms: Date.now() - t0, ...core });
    const t1 = Date.now();
    const tls = await call('tls', { ...config, dns: undefined, caTrueCert: undefined, runtime: 'workerd-wasm-tls', engines: ['wasm'] });
    outcomes.push({ label: 'workerd (wasmtp/workers/tls)', ms: Date.now() - t1, ...tls });
    const t2 = Date.now();
    const untrusted = await call('untrusted', { ...config, dns: undefined, caTrueCert: undefined, runtime: 'workerd-untrusted', engines: ['native'], nativeCa: false, only: 'untrusted' });
    outcomes.push({ label: 'workerd (CA not trusted)', ms: Date.now() - t2, ...untrusted });
    const t3 = Date.now();
    const readme = await (await mf.getWorker('readme')).fetch('http://example/');
    const body = await readme.text();
    const ok = readme.status === 200 && JSON.parse(body).accepted?.join() === 'bob@example.org';
    outcomes.push({
      label: 'workerd (README Workers example)',
      ms: Date.now() - t3,
      results: [{ name: 'README fetch handler sends', ok, ms: Date.now() - t3, detail: body, error: ok ? undefined : `HTTP ${readme.status}: ${body}` }],
      sent: ok ? [{ tag: 'Hello from a Worker', to: ['bob@example.org'], user: config.user }] : [],
    });
  } finally {
    for (const o of outcomes) o.log = workerdLog.replace(/^stack: .*$/gm, '').replace(/\n+/g, '\n').slice(-4000);
    await mf.dispose();
    for (const file of readdirSync(HERE)) if (file.startsWith('.worker-')) rmSync(join(HERE, file), { force: true });
  }
  outcomes.startup = Date.now() - started;
  return outcomes;
}

// --------------------------------------------------------------------------- main

const startedAll = Date.now();
const certs = makeCertificates();
const servers = {
  plain: await startServer({ tls: 'none', key: certs.key, cert: certs.cert }),
  starttls: await startServer({ tls: 'starttls', key: certs.key, cert: certs.cert }),
  implicit: await startServer({ tls: 'implicit', key: certs.key, cert: certs.cert }),
  caTrue: await startServer({ tls: 'implicit', key: certs.caTrueKey, cert: certs.caTrueCert }),
};
const tokenEndpoint = await startTokenEndpoint({ respond: tokenAnswer });
const config = {
  tokenUrl: tokenEndpoint.url,
  host: '127.0.0.1',
  ports: Object.fromEntries(Object.entries(servers).map(([k, v]) => [k, v.port])),
  user: USER,
  pass: PASS,
  ca: certs.ca,
  pin: certs.pin,
  wrongPin: certs.wrongPin,
  caTrueCert: certs.caTrueCert,
  nativeCa: true,
  engines: ['native', 'wasm'],
  // DKIM keys (test-only): the suite signs with both, through each runtime's WebCrypto.
  dkimKeys: { rsa: readFileSync(join(ROOT, 'tests', 'data', 'dkim-rsa-pkcs1.pem'), 'utf8'), ed25519: readFileSync(join(ROOT, 'tests', 'data', 'dkim-ed25519.pem'), 'utf8') },
};

// DNS for the resolver cases: dnsmasq (tests/servers/dns) and the local
// DNS-over-HTTPS endpoint with the test CA's certificate. Each runtime asks
// dnsmasq through its own resolver (dns.servers) in its main run; Node and
// Deno run the DoH case again alone, trusting the CA through
// NODE_EXTRA_CA_CERTS / DENO_CERT (process-wide: the main runs check that
// certificates of that CA are refused without tls.ca), workerd through its
// tlsOptions.
const dns = await startDns([
  'mx-host=example.test,mx1.example.test,10',
  'mx-host=example.test,mx2.example.test,20',
  'host-record=mx1.example.test,127.0.0.2,::1',
  'txt-record=_mta-sts.example.test,"v=STSv1; id=2026"',
  // One TXT record of two character-strings (a 2048-bit DKIM key is longer
  // than one string's 255 octets), and a second record beside it.
  `txt-record=long.example.test,"${'k'.repeat(250)}","${'e'.repeat(100)}"`,
  'txt-record=long.example.test,"second"',
  'dns-rr=nullmx.test,15,000000',
  'mx-host=direct.test,mx.direct.test,10',
  'host-record=mx.direct.test,127.0.0.1',
]);
const doh = await startDohServer({ upstreamPort: dns.port, key: certs.key, cert: certs.cert });
const caDir = mkdtempSync(join(tmpdir(), 'wasmtp-runtime-ca-'));
writeFileSync(join(caDir, 'ca.pem'), certs.ca);
const trustCa = { ...process.env, NODE_EXTRA_CA_CERTS: join(caDir, 'ca.pem'), DENO_CERT: join(caDir, 'ca.pem') };
config.dns = { server: dns.server };
const dohOnly = { ...config, dns: { doh: doh.url }, only: 'dns:' };

const outcomes = [];
try {
  for (const runtime of wanted) {
    if (runtime === 'node') {
      outcomes.push(await runHarness('node', process.execPath, [], config));
      outcomes.push(await runHarness('node (DoH)', process.execPath, [], dohOnly, trustCa));
    } else if (runtime === 'deno') {
      const deno = [join(BIN, 'deno'), ['run', '--allow-net', '--allow-read']];
      outcomes.push(await runHarness('deno', ...deno, config));
      outcomes.push(await runHarness('deno (DoH)', ...deno, dohOnly, trustCa));
    } else if (runtime === 'bun') outcomes.push(await runHarness('bun', join(BIN, 'bun'), ['run'], config));
    // The opt-in Bun.connect transport (the default on Bun is node:net / node:tls).
    else if (runtime === 'bun-connect') outcomes.push(await runHarness('bun-connect', join(BIN, 'bun'), ['run'], { ...config, dns: undefined, transport: 'bun', engines: ['native'] }));
    else if (runtime === 'workerd') outcomes.push(...(await runWorkerd({ ...config, dns: { doh: doh.url } }, certs)));
    else throw new Error(`unknown runtime ${runtime}`);
  }
} finally {
  await Promise.all([...Object.values(servers), tokenEndpoint].map((s) => s.close()));
  await doh.close();
  dns.stop();
  rmSync(caDir, { recursive: true, force: true });
}

// ------------------------------------------------------------------------ verdict

let failed = 0;
for (const o of outcomes) {
  const passed = o.results.filter((r) => r.ok).length;
  // Server-side check: each message reported as sent arrived once, as sent.
  const problems = [];
  for (const s of o.sent) {
    const got = received.filter((m) => m.tag === s.tag);
    if (got.length !== 1) problems.push(`${s.tag}: arrived ${got.length} times`);
    else if (got[0].to.join() !== s.to.join() || got[0].user !== s.user || got[0].dkim !== (s.dkim ?? 0)) problems.push(`${s.tag}: arrived as ${JSON.stringify(got[0])}`);
  }
  const prefix = o.sent[0]?.tag.split('/')[0];
  const extra = prefix ? received.filter((m) => m.tag?.startsWith(`${prefix}/`) && !o.sent.some((s) => s.tag === m.tag)) : [];
  for (const m of extra) problems.push(`${m.tag}: arrived but the client reported a failure`);
  const ok = !o.crashed && passed === o.results.length && problems.length === 0 && o.results.length > 0;
  if (!ok) failed += 1;
  console.log(`${ok ? 'PASS' : 'FAIL'} ${o.label}: ${passed}/${o.results.length} cases, ${o.sent.length} messages verified on the server, ${o.ms} ms`);
  for (const r of o.results) {
    if (!r.ok || process.env.VERBOSE) console.log(`  ${r.ok ? 'ok  ' : 'FAIL'} ${r.name} (${r.ms} ms)${r.ok ? (r.detail ? `: ${r.detail}` : '') : `: ${r.error}`}`);
  }
  for (const p of problems) console.log(`  FAIL server: ${p}`);
  if (o.crashed) console.log(`  CRASHED: ${o.crashed}`);
  if (!ok && o.log) console.log(`  workerd log:\n${o.log}`);
}
console.log(`runtime suite: ${outcomes.length - failed}/${outcomes.length} runtime runs passed in ${((Date.now() - startedAll) / 1000).toFixed(1)} s`);
process.exit(failed ? 1 : 0);
