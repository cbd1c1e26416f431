// Direct delivery (createClient({ mx: true })) on loopback only: dnsmasq
// serves the zone, smtp-server instances on 127.0.0.2-6 play the MX hosts
// (all on one port, given by mx: { port }), an HTTPS server with the test
// CA serves the MTA-STS policies (mx: { policyPort }); the private Postfix
// is one of the MX hosts (127.0.0.7).

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { createClient, createOutbox, SmtpError, spoolStore } from '../../pkg/src/index.js';
import { nodeTransport } from '../../pkg/src/transports/node.js';
import { startDns } from '../../pkg/test/helpers/dns.js';
import { freePortOn, makeCertificates, received, startBusy, startPolicyServer, startPostfixMx, startSilent, startSmtp } from './helpers.mjs';

const REFUSES = '127.0.0.2'; // nothing listens
const BUSY = '127.0.0.3'; // greets 421
const GOOD = '127.0.0.4'; // STARTTLS, certificate naming the MX hosts
const NO_TLS = '127.0.0.5'; // no STARTTLS
const WRONG_CERT = '127.0.0.6'; // STARTTLS with a certificate for another name
const POSTFIX = '127.0.0.7'; // the private Postfix (STARTTLS, 550 for "reject*")
const SILENT = '127.0.0.8'; // accepts the connection, never greets

const ENFORCE = (mx) => `version: STSv1\r\nmode: enforce\r\nmx: ${mx}\r\nmax_age: 86400\r\n`;
const TESTING = (mx) => `version: STSv1\r\nmode: testing\r\nmx: ${mx}\r\nmax_age: 86400\r\n`;
const POLICIES = {
  'mta-sts.enforce-notls.test': ENFORCE('mx.notls.test'),
  'mta-sts.enforce-wrongcert.test': ENFORCE('*.wrongcert.test'),
  'mta-sts.enforce-good.test': ENFORCE('mx.good.test'),
  'mta-sts.testing-notls.test': TESTING('mx.notls.test'),
};

const mxDomain = (domain, host, address, preference = 10) => [`mx-host=${domain},${host},${preference}`, `host-record=${host},${address}`];
const stsDomain = (domain, host, address) => [
  ...mxDomain(domain, host, address),
  `txt-record=_mta-sts.${domain},"v=STSv1; id=2026120401"`,
  `host-record=mta-sts.${domain},127.0.0.1`,
];
const ZONE = [
  'mx-host=pref.test,mx1.pref.test,10',
  'mx-host=pref.test,mx2.pref.test,20',
  'mx-host=pref.test,mx3.pref.test,30',
  `host-record=mx1.pref.test,${REFUSES}`,
  `host-record=mx2.pref.test,${BUSY}`,
  `host-record=mx3.pref.test,${GOOD}`,
  `host-record=afallback.test,${GOOD}`,
  'dns-rr=nullmx.test,15,000000',
  'mx-host=noaddress.test,mx.noaddress.test,10', // an MX host without A or AAAA
  ...mxDomain('good.test', 'mx.good.test', GOOD),
  ...mxDomain('other.test', 'mx.other.test', GOOD),
  ...mxDomain('down.test', 'mx.down.test', REFUSES),
  ...mxDomain('grey.test', 'mx.grey.test', GOOD),
  ...mxDomain('postfix.test', 'mx.postfix.test', POSTFIX),
  ...mxDomain('slow.test', 'mx1.slow.test', SILENT, 10),
  ...mxDomain('slow.test', 'mx.good.test', GOOD, 20).slice(0, 1),
  ...stsDomain('enforce-notls.test', 'mx.notls.test', NO_TLS),
  ...stsDomain('enforce-wrongcert.test', 'mx.wrongcert.test', WRONG_CERT),
  ...stsDomain('enforce-good.test', 'mx.good.test', GOOD),
  ...stsDomain('testing-notls.test', 'mx.notls.test', NO_TLS),
];
const CERT_NAMES = ['mx.postfix.test', 'mx3.pref.test', 'afallback.test', 'mx.good.test', 'mx.other.test', 'mx.grey.test', 'mx.notls.test', 'mx.wrongcert.test', ...Object.keys(POLICIES)];

let dns;
let certs;
let port;
let policyServer;
let postfix;
const servers = [];

before(async () => {
  certs = makeCertificates(CERT_NAMES);
  dns = await startDns(ZONE);
  port = await freePortOn([REFUSES, BUSY, GOOD, NO_TLS, WRONG_CERT, POSTFIX, SILENT]);
  servers.push(
    await startBusy({ address: BUSY, port }),
    await startSilent({ address: SILENT, port }),
    await startSmtp({ name: 'good', address: GOOD, port, tls: certs.good }),
    await startSmtp({ name: 'no-tls', address: NO_TLS, port, starttls: false }),
    await startSmtp({ name: 'wrong-cert', address: WRONG_CERT, port, tls: certs.wrong }),
  );
  policyServer = await startPolicyServer({ tls: certs.good, policies: POLICIES });
  postfix = await startPostfixMx({ address: POSTFIX, port, tls: certs.good });
});

after(async () => {
  await Promise.all(servers.map((s) => s.close()));
  await policyServer?.close();
  await postfix?.stop();
  dns?.stop();
});

function client(extra = {}) {
  return createClient({
    mx: { port, policyPort: policyServer.port },
    dns: { servers: [dns.server] },
    tls: { ca: certs.ca },
    clientName: 'sender.wasmtp.test',
    timeouts: { connect: 3000, greeting: 3000, command: 5000 },
    ...extra,
  });
}

let serial = 0;
async function send(to, extra, clientOptions) {
  const subject = `mx test ${++serial}`;
  const c = client(clientOptions);
  try {
    const result = await c.send({ from: 'ann@sender.test', to, subject, text: 'hello\n', ...extra });
    return { result, subject };
  } catch (error) {
    return { error, subject };
  } finally {
    await c.close();
  }
}

const arrived = (subject) => received.filter((m) => m.subject === subject);

test('preference order: the first MX refuses, the second answers 421, the third takes the message', async () => {
  const { result, subject, error } = await send(['bob@pref.test']);
  assert.ifError(error);
  assert.deepEqual(result.accepted, ['bob@pref.test']);
  assert.equal(result.recipients[0].status, 'accepted');
  assert.match(result.recipients[0].host, new RegExp(`^mx3\\.pref\\.test \\[${GOOD}\\]`));
  assert.match(result.recipients[0].reply, /queued at good/);
  const got = arrived(subject);
  assert.equal(got.length, 1);
  assert.equal(got[0].tls, true, 'opportunistic: STARTTLS taken when offered');
});

test('a host that times out falls through to the next', async () => {
  const { result, subject, error } = await send(['bob@slow.test'], {}, { timeouts: { connect: 3000, greeting: 500, command: 5000 } });
  assert.ifError(error);
  assert.deepEqual(result.accepted, ['bob@slow.test']);
  assert.match(result.recipients[0].host, /^mx\.good\.test/);
  assert.equal(arrived(subject).length, 1);
});

test('Postfix as the MX: accepted over verified STARTTLS, refused recipients reported 550', async () => {
  // security 'starttls': TLS required, the certificate verified for mx.postfix.test.
  const { result, error } = await send(['bob@postfix.test', 'reject-me@postfix.test'], {}, { security: 'starttls' });
  assert.ifError(error);
  assert.deepEqual(result.accepted, ['bob@postfix.test']);
  assert.deepEqual(result.rejected, ['reject-me@postfix.test']);
  const accepted = result.recipients.find((r) => r.status === 'accepted');
  assert.match(accepted.host, new RegExp(`^mx\\.postfix\\.test \\[${POSTFIX}\\]`));
  assert.ok(accepted.queueId, `a queue id in ${accepted.reply}`);
  await postfix.waitDelivered([accepted.queueId]);
  assert.match(result.recipients.find((r) => r.status === 'rejected').reply, /^550 5\.1\.1/);
});

test('no MX: the A record of the domain itself', async () => {
  const { result, subject, error } = await send(['bob@afallback.test']);
  assert.ifError(error);
  assert.deepEqual(result.accepted, ['bob@afallback.test']);
  assert.equal(arrived(subject).length, 1);
});

test('null MX: a permanent failure per recipient, nothing sent', async () => {
  const { error, subject } = await send(['bob@nullmx.test']);
  assert.ok(error instanceof SmtpError);
  assert.equal(error.code, 'ENULLMX');
  assert.equal(error.retryable, false);
  assert.deepEqual(error.rejected, ['bob@nullmx.test']);
  assert.match(error.message, /null MX \(RFC 7505\)/);
  assert.equal(arrived(subject).length, 0);
});

test('no host at all: no MX and no address, or an MX host without an address, is ENOHOST', async () => {
  for (const [to, why] of [
    ['bob@nowhere.test', /No mail host found for nowhere\.test: nowhere\.test has no A or AAAA record/],
    ['bob@noaddress.test', /No mail host found for noaddress\.test: mx\.noaddress\.test has no A or AAAA record/],
  ]) {
    const { error, subject } = await send([to]);
    assert.ok(error instanceof SmtpError, String(error));
    assert.equal(error.code, 'ENOHOST');
    assert.match(error.message, why);
    assert.deepEqual(error.deferred, [to]);
    assert.equal(arrived(subject).length, 0);
  }
});

test('three domains: accepted, rejected (550) and deferred (no host reachable), each reported', async () => {
  const { result, subject, error } = await send(['bob@good.test', 'reject@other.test', 'carol@down.test']);
  assert.ifError(error);
  assert.deepEqual(result.accepted, ['bob@good.test']);
  assert.deepEqual(result.rejected, ['reject@other.test']);
  assert.deepEqual(result.deferred, ['carol@down.test']);
  const by = Object.fromEntries(result.recipients.map((r) => [r.recipient, r]));
  assert.match(by['reject@other.test'].reply, /^550 5\.1\.1/);
  assert.match(by['reject@other.test'].host, /mx\.other\.test/);
  assert.equal(by['carol@down.test'].error.code, 'ECONNECT');
  assert.match(by['carol@down.test'].error.message, /No MX host of down\.test could be reached/);
  assert.match(by['carol@down.test'].error.hint, /port 25 is often blocked|relay/);
  const got = arrived(subject);
  assert.equal(got.length, 1, 'one message to good.test; other.test refused its only recipient');
  assert.deepEqual(got[0].to, ['bob@good.test']);
  assert.equal(got[0].messageId, result.messageId, 'the Message-ID reported is the one sent');
});

test('a 451 greylist: the outbox retries that domain only, never re-sending to the accepted one', async () => {
  const outcomes = [];
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-mx-outbox-'));
  const outbox = createOutbox({
    client: client(),
    store: spoolStore({ dir }),
    retry: { initialDelay: 200, maxDelay: 200, maxAttempts: 5, jitter: 0 },
    onOutcome: (status) => outcomes.push(status),
  });
  try {
    const subject = 'mx greylist';
    await outbox.work({ concurrency: 1 });
    const id = await outbox.enqueue({ from: 'ann@sender.test', to: ['bob@good.test', 'grey@grey.test'], subject, text: 'hi\n' });
    const deadline = Date.now() + 20_000;
    let status;
    while (Date.now() < deadline) {
      status = await outbox.status(id);
      if (status.state === 'sent' || status.state === 'failed') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(status.state, 'sent', JSON.stringify(status));
    const got = arrived(subject);
    assert.equal(got.length, 2, 'the first attempt for both, the retry for grey.test only');
    assert.deepEqual(got[0].to, ['bob@good.test']);
    assert.deepEqual(got[1].to, ['grey@grey.test']);
    const deferred = outcomes.find((o) => o.state === 'deferred');
    assert.deepEqual(deferred?.pendingRecipients, ['grey@grey.test'], 'deferred in between, for grey.test only');
    assert.match(deferred.reply, /^451 4\.7\.1/);
    assert.deepEqual(status.result.accepted, ['bob@good.test', 'grey@grey.test'], 'accepted over both attempts');
    assert.equal(status.pendingRecipients, undefined);
  } finally {
    await outbox.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('MTA-STS enforce, the MX has no STARTTLS: nothing sent, EMTASTS', async () => {
  const { error, subject } = await send(['bob@enforce-notls.test']);
  assert.ok(error instanceof SmtpError, String(error));
  assert.equal(error.code, 'EMTASTS');
  assert.match(error.message, /enforce mode.*STARTTLS.*nothing was sent there/);
  assert.deepEqual(error.deferred, ['bob@enforce-notls.test']);
  assert.equal(arrived(subject).length, 0);
  assert.ok(policyServer.fetched.includes('mta-sts.enforce-notls.test'));
});

test('MTA-STS enforce, the certificate names another host: nothing sent', async () => {
  const { error, subject } = await send(['bob@enforce-wrongcert.test']);
  assert.ok(error instanceof SmtpError, String(error));
  assert.equal(error.code, 'EMTASTS');
  assert.match(error.cause?.code ?? error.message, /ECERT|ETLS|certificate/i);
  assert.equal(arrived(subject).length, 0);
});

test('MTA-STS enforce with a matching MX and a valid certificate: sent over TLS', async () => {
  const { result, subject, error } = await send(['bob@enforce-good.test']);
  assert.ifError(error);
  assert.deepEqual(result.mtaSts, [{ domain: 'enforce-good.test', mode: 'enforce', id: '2026120401', failures: [] }]);
  const got = arrived(subject);
  assert.equal(got.length, 1);
  assert.equal(got[0].tls, true);
});

test('with a proxy, the MTA-STS policy goes the way the mail goes: every connection, the policy fetch included, is handed the proxy', async () => {
  const connects = [];
  // Records what each connection is asked for, then connects directly (the
  // proxy itself is tested in tests/proxies).
  const recording = {
    supports: nodeTransport.supports,
    connect(args) {
      connects.push(args);
      const { proxy: _proxy, ...direct } = args;
      return nodeTransport.connect(direct);
    },
  };
  const { result, error } = await send(['bob@enforce-good.test'], {}, { transport: recording, proxy: 'http://127.0.0.1:9' });
  assert.ifError(error);
  assert.equal(result.mtaSts[0].mode, 'enforce', 'the policy was fetched');
  assert.equal(connects.filter((c) => c.servername === 'mta-sts.enforce-good.test').length, 1, 'one policy fetch, over the transport');
  assert.ok(connects.length >= 2);
  for (const c of connects) assert.deepEqual([c.proxy?.host, c.proxy?.port], ['127.0.0.1', 9], JSON.stringify(c));
});

test('MTA-STS testing, the MX has no STARTTLS: sent, and the failure reported', async () => {
  const { result, subject, error } = await send(['bob@testing-notls.test']);
  assert.ifError(error);
  assert.deepEqual(result.accepted, ['bob@testing-notls.test']);
  assert.equal(result.mtaSts.length, 1);
  assert.equal(result.mtaSts[0].mode, 'testing');
  assert.match(result.mtaSts[0].failures.join(), /mx\.notls\.test: ESTARTTLS_UNAVAILABLE/);
  assert.equal(arrived(subject).length, 1);
});

test("security: 'starttls' requires TLS for every domain", async () => {
  const { error, subject } = await send(['bob@testing-notls.test'], {}, { security: 'starttls' });
  assert.ok(error instanceof SmtpError);
  assert.equal(error.code, 'ESTARTTLS_UNAVAILABLE');
  assert.equal(arrived(subject).length, 0);
});

test('a DNS failure (EDNS from the resolver) defers that domain only', async () => {
  const failing = {
    mx: async (name) => {
      if (name === 'broken.test') throw new Error('SERVFAIL');
      return [{ exchange: 'mx.good.test', priority: 10 }];
    },
    txt: async () => [],
    a: async () => [GOOD],
    aaaa: async () => [],
  };
  const { result, error, subject } = await send(['bob@good.test', 'carol@broken.test'], {}, { dns: failing });
  assert.ifError(error);
  assert.deepEqual(result.accepted, ['bob@good.test']);
  assert.deepEqual(result.deferred, ['carol@broken.test']);
  const broken = result.recipients.find((r) => r.recipient === 'carol@broken.test');
  assert.equal(broken.error.code, 'EDNS');
  assert.equal(broken.error.retryable, true);
  assert.equal(arrived(subject).length, 1);
});

test('options: relay-only keys, a bad mx or dns are EINPUT before anything is resolved', () => {
  const cases = [
    [{ mx: true, host: 'smtp.example.com' }, /`host` cannot be combined with mx: true/],
    [{ mx: true, auth: { user: 'a', pass: 'b' } }, /`auth` cannot be combined/],
    [{ mx: { port: 'x' } }, /mx\.port must be a TCP port/],
    [{ mx: { prot: 25 } }, /`prot` in mx is not a known key/],
    [{ mx: 'yes' }, /mx must be true or/],
    [{ mx: true, security: 'tls' }, /does not apply to MX delivery/],
    [{ mx: true, dns: { server: [] } }, /unknown field "server"/],
    [{ mx: true, timeouts: { connect: 'soon' } }, /timeouts\.connect/],
  ];
  for (const [options, message] of cases) {
    assert.throws(() => createClient(options), (e) => e.code === 'EINPUT' && message.test(e.message), JSON.stringify(options));
  }
});
