// The Cloudflare Queues store in workerd, through miniflare (which runs
// Queues and D1 locally):
//   - pkg/README.md's outbox example as printed: its fetch handler enqueues,
//     its queue() consumer sends (STARTTLS + AUTH, the test CA trusted by
//     workerd); every message ends `sent` and arrives once;
//   - the policy on Workers (tests/outbox/cf-worker.js): a 4xx deferred
//     through the queue's delaySeconds and then sent, a 5xx failed, no reply
//     after the end of data `unknown` until an explicit retry.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { HERE, makeCertificates, PKG, startSmtp, waitFor } from './helpers.mjs';

const ROOT = join(HERE, '..', '..');
const SETTLED = ['sent', 'failed', 'unknown'];

let tlsSmtp; // for the README example: STARTTLS and AUTH
let smtp; // for the policy worker: plaintext
let mf;
let example;
const tempFail = new Map();
const hold = new Set();
const generated = [];

/** Every module a worker may load: the package sources and wasm, and its entry. */
function modules(entryPath, contents) {
  const list = [{ type: 'ESModule', path: entryPath, contents }];
  const walk = (dir) => readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
  for (const file of walk(join(PKG, 'src'))) if (file.endsWith('.js')) list.push({ type: 'ESModule', path: file });
  for (const name of ['wasmtp.js', 'wasmtp_tls.js', 'wasmtp_dkim.js']) list.push({ type: 'ESModule', path: join(PKG, 'wasm', name) });
  for (const name of ['wasmtp_bg.wasm', 'wasmtp_tls_bg.wasm', 'wasmtp_dkim_bg.wasm']) list.push({ type: 'CompiledWasm', path: join(PKG, 'wasm', name) });
  return list;
}

/** The outbox example of pkg/README.md, its import pointed at the package's Workers entry. */
function readmeExample() {
  const readme = readFileSync(join(PKG, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]).find((code) => code.includes("from 'wasmtp/workers'") && code.includes('createOutbox') && code.includes('async queue('));
  if (!block) throw new Error('pkg/README.md has no outbox Workers example (a js block importing wasmtp/workers with createOutbox and a queue handler)');
  const entryPath = join(HERE, `.worker-readme-${process.pid}.js`);
  const rel = `./${relative(dirname(entryPath), join(PKG, 'src', 'workers.js'))}`;
  const contents = block.replace("from 'wasmtp/workers'", `from ${JSON.stringify(rel)}`);
  writeFileSync(entryPath, contents); // for readable stack traces; also passed as contents
  generated.push(entryPath);
  return { entryPath, contents };
}

before(async () => {
  const certs = makeCertificates();
  tlsSmtp = await startSmtp({ tls: certs });
  smtp = await startSmtp({
    tempFail(info) {
      const left = tempFail.get(info.subject) ?? 0;
      if (left > 0) tempFail.set(info.subject, left - 1);
      return left > 0;
    },
    onDataEnd: (info) => (hold.has(info.subject) ? 'hold' : 'reply'),
  });
  const { Miniflare } = await import('miniflare');
  const network = (ca) => ({ network: { allow: ['public', 'private'], tlsOptions: { trustBrowserCas: true, trustedCertificates: [ca] } } });
  example = readmeExample();
  const policyPath = join(HERE, 'cf-worker.js');
  mf = new Miniflare({
    workers: [
      {
        name: 'readme',
        modulesRoot: ROOT,
        modules: modules(example.entryPath, example.contents),
        compatibilityDate: '2025-09-01',
        outboundService: network(certs.ca),
        bindings: { SMTP_HOST: '127.0.0.1', SMTP_PORT: String(tlsSmtp.port), SMTP_USER: 'ann', SMTP_PASS: 'secret', MAIL_FROM: 'ann@example.com' },
        queueProducers: { OUTBOX: { queueName: 'wasmtp-outbox' } },
        queueConsumers: { 'wasmtp-outbox': { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 10 } },
        d1Databases: ['OUTBOX_DB'],
      },
      {
        name: 'policy',
        modulesRoot: ROOT,
        modules: modules(policyPath, readFileSync(policyPath, 'utf8')),
        compatibilityDate: '2025-09-01',
        outboundService: network(certs.ca),
        bindings: { SMTP_PORT: String(smtp.port) },
        queueProducers: { POLICY: { queueName: 'policy-outbox' } },
        queueConsumers: { 'policy-outbox': { maxBatchSize: 10, maxBatchTimeout: 1, maxRetries: 10 } },
        d1Databases: ['OUTBOX_DB'],
      },
    ],
  });
  await mf.ready;
});

after(async () => {
  await mf?.dispose();
  for (const file of generated) rmSync(file, { force: true });
  await smtp?.close();
  await tlsSmtp?.close();
});

async function call(worker, path, body) {
  const w = await mf.getWorker(worker);
  const response = await w.fetch(`http://outbox${path}`, body === undefined ? {} : { method: 'POST', body: JSON.stringify(body) });
  const text = await response.text();
  try {
    return { status: response.status, json: JSON.parse(text) };
  } catch {
    throw new Error(`HTTP ${response.status}: ${text.slice(0, 2000)}`);
  }
}

const settled = (worker, id, ms = 30_000) =>
  waitFor(async () => {
    const { json } = await call(worker, `/status/${id}`);
    return json && SETTLED.includes(json.state) ? json : null;
  }, ms, `${worker} message ${id}`);

describe('Cloudflare Queues store (workerd through miniflare)', () => {
  test("pkg/README.md's example: fetch enqueues, the queue consumer sends; each message arrives once", async () => {
    const ids = [];
    for (let i = 0; i < 12; i++) {
      const { status, json } = await call('readme', '/', { to: [`user${i}@example.org`], subject: `cf/readme/${i}`, text: `hello ${i}` });
      assert.equal(status, 202, JSON.stringify(json));
      ids.push(json.id);
    }
    const first = await call('readme', `/status/${ids[0]}`);
    assert.ok(['queued', 'sending', 'sent'].includes(first.json.state));
    for (const id of ids) {
      const s = await settled('readme', id);
      assert.equal(s.state, 'sent', JSON.stringify(s));
      assert.match(s.reply, /^250 /);
    }
    for (let i = 0; i < 12; i++) assert.equal(tlsSmtp.count(`cf/readme/${i}`), 1, `cf/readme/${i}`);
  });

  test('4xx: deferred through the queue (delaySeconds), then sent', async () => {
    tempFail.set('cf/4xx', 1);
    const { json } = await call('policy', '/enqueue', { from: 'ann@example.com', to: 'bob@example.org', subject: 'cf/4xx', text: 'x' });
    await waitFor(async () => (await call('policy', `/status/${json.id}`)).json.state === 'deferred', 20_000, 'deferred');
    const s = await settled('policy', json.id);
    assert.equal(s.state, 'sent');
    assert.equal(s.attempts, 2);
    assert.equal(smtp.count('cf/4xx'), 1);
  });

  test('5xx: failed with the reason, listed as a dead letter', async () => {
    const { json } = await call('policy', '/enqueue', { from: 'ann@example.com', to: 'reject-me@example.org', subject: 'cf/5xx', text: 'x' });
    const s = await settled('policy', json.id);
    assert.equal(s.state, 'failed');
    assert.equal(s.error.code, 'ERECIPIENTS');
    assert.match(s.reply, /^550 /);
    assert.ok((await call('policy', '/list/failed')).json.some((f) => f.id === json.id));
  });

  test('no reply after the end of data: unknown, not re-sent until retry(id)', async () => {
    hold.add('cf/unknown');
    const { json } = await call('policy', '/enqueue', { from: 'ann@example.com', to: 'bob@example.org', subject: 'cf/unknown', text: 'x' });
    const s = await settled('policy', json.id);
    assert.equal(s.state, 'unknown');
    assert.equal(s.error.deliveryState, 'unknown');
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(smtp.dataEnds.filter((m) => m.subject === 'cf/unknown').length, 1);
    hold.delete('cf/unknown');
    const retried = await call('policy', `/retry/${json.id}`, {});
    assert.equal(retried.json.state, 'queued', JSON.stringify(retried.json));
    const again = await waitFor(async () => {
      const { json: st } = await call('policy', `/status/${json.id}`);
      return st.state === 'sent' ? st : null;
    });
    assert.equal(again.attempts, 2);
    assert.equal(smtp.count('cf/unknown'), 1);
  });
});
