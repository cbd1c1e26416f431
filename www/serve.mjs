#!/usr/bin/env node
// Serves the connection doctor's web page on 127.0.0.1 and starts the bridge
// the page reaches SMTP servers through: Debian's websockify (a
// WebSocket-to-TCP proxy), with its TokenFile plugin so that each probe
// gets a token naming its own host:port.
//
//   node www/serve.mjs [--port 8025]        (or: npx wasmtp doctor --web)
//
// What is served: this directory (the page) and the npm package's src/ and
// wasm/ (the browser build of wasmtp). Nothing else. Dynamic routes, each
// answering only the page's own origin:
//   POST /bridge { host, port } writes a token file for websockify and
//     answers { url } (ws://127.0.0.1:<bridge>/?token=...);
//   POST /dns-query (application/dns-message) forwards the domain doctor's
//     DNS-over-HTTPS queries to a DoH server (a page may not read another
//     origin's answers): https://cloudflare-dns.com/dns-query unless `doh`;
//   POST /mta-sts { host, address, port } fetches
//     https://<host>/.well-known/mta-sts.txt from that address (resolved by
//     the page over DoH), verifying the certificate for <host>, and answers
//     the policy text (a policy server rarely allows cross-origin reads).
// Everything listens on 127.0.0.1.
//
// TLS runs inside wasm in the page, so websockify only ever carries the
// plaintext EHLO and then ciphertext: never a credential in clear.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const WWW = fileURLToPath(new URL('.', import.meta.url));
const PKG = fileURLToPath(new URL('../pkg/', import.meta.url));

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
};

/** URL prefix → directory; only these are served. */
const ROOTS = [
  ['/pkg/src/', join(PKG, 'src')],
  ['/pkg/wasm/', join(PKG, 'wasm')],
  ['/', WWW],
];

/**
 * Starts the page's server and the bridge.
 * @param {object} [options]
 * @param {number} [options.port] the page's port (default 0: any free port)
 * @param {string} [options.websockify] the websockify command (default 'websockify')
 * @param {string} [options.record] websockify --record file (tests: what the bridge carried)
 * @param {string} [options.doh] the DoH server /dns-query forwards to (tests: a local one)
 * @param {string} [options.ca] a CA (PEM) trusted besides the system's for MTA-STS policy servers (tests)
 * @returns {Promise<{ url: string, bridgePort: number, close(): Promise<void> }>}
 */
export async function startDoctorWeb({ port = 0, websockify = 'websockify', record, doh = DEFAULT_DOH, ca } = {}) {
  const tokens = mkdtempSync(join(tmpdir(), 'wasmtp-doctor-tokens-'));
  const bridgePort = await freePort();
  const args = ['--token-plugin', 'TokenFile', '--token-source', tokens];
  if (record) args.push('--record', record);
  args.push(`127.0.0.1:${bridgePort}`);
  const bridge = spawn(websockify, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let bridgeLog = '';
  bridge.stderr.on('data', (d) => {
    bridgeLog = (bridgeLog + d).slice(-4000);
  });
  const spawned = new Promise((resolve, reject) => {
    bridge.once('spawn', resolve);
    bridge.once('error', (error) =>
      reject(
        new Error(
          error.code === 'ENOENT'
            ? `${websockify} not found: install Debian's websockify (apt-get install -y websockify)`
            : `${websockify}: ${error.message}`,
        ),
      ),
    );
  });

  let origin = '';
  const server = createServer((req, res) => {
    handle(req, res, { origin, bridgePort, tokens, doh, ca }).catch((error) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error?.message ?? error));
    });
  });
  try {
    await spawned;
    await waitForPort(bridgePort, bridge, () => bridgeLog);
    await new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
  } catch (error) {
    bridge.kill();
    rmSync(tokens, { recursive: true, force: true });
    throw error;
  }
  origin = `http://127.0.0.1:${server.address().port}`;
  return {
    url: `${origin}/`,
    bridgePort,
    async close() {
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
      if (bridge.exitCode === null) {
        const exited = new Promise((resolve) => bridge.once('exit', resolve));
        bridge.kill('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 2000))]);
        if (bridge.exitCode === null) bridge.kill('SIGKILL');
      }
      rmSync(tokens, { recursive: true, force: true });
    },
  };
}

async function handle(req, res, { origin, bridgePort, tokens, doh, ca }) {
  const url = new URL(req.url, origin);
  if (url.pathname === '/bridge') return bridgeToken(req, res, { origin, bridgePort, tokens });
  if (url.pathname === '/dns-query') return forwardDns(req, res, { origin, doh });
  if (url.pathname === '/mta-sts') return mtaStsPolicy(req, res, { origin, ca });
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405).end();
    return;
  }
  const path = url.pathname === '/' ? '/index.html' : url.pathname;
  const [prefix, dir] = ROOTS.find(([p]) => path.startsWith(p));
  const file = normalize(join(dir, decodeURIComponent(path.slice(prefix.length))));
  const type = TYPES[extname(file)];
  if (!file.startsWith(dir.endsWith(sep) ? dir : dir + sep) || !type) {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  let body;
  try {
    body = await readFile(file);
  } catch {
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
    return;
  }
  res.writeHead(200, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    // The page talks to this server and the bridge only; wasm needs 'wasm-unsafe-eval'.
    'content-security-policy': `default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; connect-src 'self' ws://127.0.0.1:${bridgePort}; img-src 'self' data:; style-src 'self'`,
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

const DEFAULT_DOH = 'https://cloudflare-dns.com/dns-query';
/** DNS messages and MTA-STS policies are small (RFC 8461 §3.3: 64 KiB at most). */
const MAX_DNS_MESSAGE = 4096;
const MAX_POLICY = 64 * 1024;

/** Only the page itself, with the expected body type. */
function fromPage(req, res, origin, type) {
  if (req.method === 'POST' && req.headers.origin === origin && (req.headers['content-type'] ?? '').startsWith(type)) return true;
  res.writeHead(403, { 'content-type': 'text/plain' }).end('only the page may ask');
  return false;
}

/** The request body, at most `limit` bytes (null when longer). */
async function body(req, limit) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > limit) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** POST /dns-query: one DNS message, forwarded to the DoH server; its answer returned as is. */
async function forwardDns(req, res, { origin, doh }) {
  if (!fromPage(req, res, origin, 'application/dns-message')) return;
  const query = await body(req, MAX_DNS_MESSAGE);
  if (!query) return res.writeHead(413).end();
  let answer;
  try {
    answer = await fetch(doh, {
      method: 'POST',
      headers: { 'content-type': 'application/dns-message', accept: 'application/dns-message' },
      body: query,
      signal: AbortSignal.timeout(5000),
    });
  } catch (error) {
    return res.writeHead(502, { 'content-type': 'text/plain' }).end(`the DoH server did not answer: ${error.message}`);
  }
  const bytes = Buffer.from(await answer.arrayBuffer());
  res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/dns-message', 'cache-control': 'no-store' });
  res.end(bytes);
}

/** POST /mta-sts { host, address, port }: the policy text, or the reason it could not be fetched (502). */
async function mtaStsPolicy(req, res, { origin, ca }) {
  if (!fromPage(req, res, origin, 'application/json')) return;
  let target = null;
  try {
    target = JSON.parse(String(await body(req, 1000)));
  } catch {}
  const { host, address, port } = target ?? {};
  const name = /^mta-sts\.[a-z0-9.-]{1,240}$/i;
  if (typeof host !== 'string' || !name.test(host) || typeof address !== 'string' || net.isIP(address) === 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    return res.writeHead(400, { 'content-type': 'text/plain' }).end('expected { host: "mta-sts.<domain>", address, port }');
  }
  const fail = (why) => res.headersSent || res.writeHead(502, { 'content-type': 'text/plain' }).end(why);
  const get = httpsRequest({ host: address, port, servername: host, path: '/.well-known/mta-sts.txt', headers: { host }, ca: ca ? [ca] : undefined, timeout: 5000 }, (answer) => {
    if (answer.statusCode !== 200) {
      answer.resume();
      return fail(`HTTP ${answer.statusCode}${answer.statusCode >= 300 && answer.statusCode < 400 ? ' (MTA-STS does not follow redirects)' : ''}`);
    }
    const chunks = [];
    let size = 0;
    answer.on('data', (chunk) => {
      size += chunk.length;
      if (size > MAX_POLICY) answer.destroy(new Error('the policy is larger than 64 KiB'));
      else chunks.push(chunk);
    });
    answer.on('error', (error) => fail(error.message));
    answer.on('end', () => res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' }).end(Buffer.concat(chunks)));
  });
  // Certificates are verified (for `host`); a failure is reported as the reason.
  get.on('timeout', () => get.destroy(new Error('no answer in time')));
  get.on('error', (error) => fail(`${error.code ? `${error.code}: ` : ''}${error.message}`));
  get.end();
}

/** POST /bridge { host, port } → { url }: a websockify token for that target. */
async function bridgeToken(req, res, { origin, bridgePort, tokens }) {
  if (req.method !== 'POST' || req.headers.origin !== origin || !/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
    res.writeHead(403, { 'content-type': 'text/plain' }).end('only the page may ask for a bridge');
    return;
  }
  let text = '';
  for await (const chunk of req) {
    text += chunk;
    if (text.length > 1000) break;
  }
  let target;
  try {
    target = JSON.parse(text);
  } catch {
    target = null;
  }
  const host = typeof target?.host === 'string' ? target.host.trim() : '';
  const port = target?.port;
  if (!/^[A-Za-z0-9.\-:[\]]{1,253}$/.test(host) || !Number.isInteger(port) || port < 1 || port > 65535) {
    res.writeHead(400, { 'content-type': 'text/plain' }).end('expected { host, port }');
    return;
  }
  const token = randomBytes(16).toString('hex');
  const file = join(tokens, token);
  writeFileSync(file, `${token}: ${host.replace(/^\[|\]$/g, '')}:${port}\n`);
  // websockify reads the directory at each connection; the token is for one probe.
  setTimeout(() => rmSync(file, { force: true }), 60_000).unref();
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify({ url: `ws://127.0.0.1:${bridgePort}/?token=${token}` }));
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Waits until websockify listens (or fails with its log). */
async function waitForPort(port, child, log) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`websockify exited (${child.exitCode}): ${log()}`);
    const open = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`websockify did not listen on 127.0.0.1:${port}: ${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Runs until Ctrl-C: `node www/serve.mjs [--port N]`. */
export async function serveUntilInterrupted({ port } = {}) {
  const web = await startDoctorWeb({ port });
  console.log(`wasmtp doctor: open ${web.url}`);
  console.log(`  bridge: websockify on 127.0.0.1:${web.bridgePort} (TLS runs in the page; the bridge sees only ciphertext after STARTTLS)`);
  console.log('  Ctrl-C stops both.');
  await new Promise((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await web.close();
}

if (process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1])) {
  const at = process.argv.indexOf('--port');
  const port = at > 0 ? Number(process.argv[at + 1]) : 8025;
  serveUntilInterrupted({ port }).catch((error) => {
    console.error(`wasmtp doctor --web: ${error.message}`);
    process.exitCode = 1;
  });
}
