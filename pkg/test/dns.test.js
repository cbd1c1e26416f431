// The resolver (pkg/src/dns) against a private dnsmasq on loopback: the
// runtime's resolver (node:dns) with dns: { servers }, and DNS-over-HTTPS
// through the local endpoint (plain HTTP on loopback in this process; HTTPS
// with the test CA in a child process that trusts it).

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { createResolver, SmtpError } from '../src/index.js';
import { decodeResponse, encodeQuery } from '../src/dns/wire.js';
import { testCertificates } from './helpers/certs.js';
import { startDns, startDohServer } from './helpers/dns.js';

const LONG = 'k'.repeat(300);
const ZONE = [
  'mx-host=example.test,mx1.example.test,10',
  'mx-host=example.test,mx2.example.test,20',
  'host-record=mx1.example.test,127.0.0.2',
  'host-record=mx2.example.test,127.0.0.3,::1',
  'txt-record=_mta-sts.example.test,"v=STSv1; id=2026"',
  `txt-record=long.example.test,${LONG.match(/.{1,255}/g).join(',')}`,
  'dns-rr=nullmx.test,15,000000',
  'host-record=a-only.test,127.0.0.4',
];

let dns;
let doh;
before(async () => {
  dns = await startDns(ZONE);
  doh = await startDohServer({ upstreamPort: dns.port, plain: true });
});
after(async () => {
  await doh?.close();
  dns?.stop();
});

async function expectRecords(resolver) {
  assert.deepEqual(
    (await resolver.mx('Example.TEST.')).sort((x, y) => x.priority - y.priority),
    [
      { exchange: 'mx1.example.test', priority: 10 },
      { exchange: 'mx2.example.test', priority: 20 },
    ],
  );
  assert.deepEqual(await resolver.txt('_mta-sts.example.test'), ['v=STSv1; id=2026']);
  assert.deepEqual(await resolver.txt('long.example.test'), [LONG], 'character-strings joined');
  assert.deepEqual(await resolver.mx('nullmx.test'), [{ exchange: '', priority: 0 }], 'null MX');
  assert.deepEqual(await resolver.a('mx2.example.test'), ['127.0.0.3']);
  assert.deepEqual(await resolver.aaaa('mx2.example.test'), ['::1']);
  assert.deepEqual(await resolver.mx('a-only.test'), [], 'NODATA');
  assert.deepEqual(await resolver.a('a-only.test'), ['127.0.0.4']);
  assert.deepEqual(await resolver.mx('missing.test'), [], 'NXDOMAIN');
  assert.deepEqual(await resolver.txt('missing.test'), []);
}

test('node:dns with dns.servers: MX, TXT, A, AAAA, null MX, NODATA and NXDOMAIN', async () => {
  await expectRecords(createResolver({ servers: [dns.server] }));
});

test('DNS-over-HTTPS wire format: the same answers, cached per TTL', async () => {
  const resolver = createResolver({ doh: doh.url });
  await expectRecords(resolver);
  const before = doh.queries;
  await resolver.mx('example.test');
  await resolver.a('mx2.example.test');
  assert.equal(doh.queries, before, 'answered from the cache');
});

test('DNS-over-HTTPS over https with the test CA (a child process trusting it)', async () => {
  const { ca, cert, key } = testCertificates();
  const secure = await startDohServer({ upstreamPort: dns.port, key, cert });
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-doh-'));
  try {
    writeFileSync(join(dir, 'ca.pem'), ca);
    const script = `import { createResolver } from ${JSON.stringify(new URL('../src/index.js', import.meta.url).href)};
      const r = createResolver({ doh: ${JSON.stringify(secure.url.replace('127.0.0.1', 'localhost'))} });
      console.log(JSON.stringify([await r.mx('example.test'), await r.txt('_mta-sts.example.test')]));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'ca.pem') },
      timeout: 20_000,
    });
    const [mx, txt] = JSON.parse(stdout);
    assert.equal(mx.length, 2);
    assert.deepEqual(txt, ['v=STSv1; id=2026']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await secure.close();
  }
});

test('a failing DoH server is EDNS (retryable, phase dns), not an empty answer', async () => {
  const broken = await startDohServer({ upstreamPort: 9, plain: true }); // nothing answers on port 9
  try {
    await assert.rejects(createResolver({ doh: broken.url }).mx('example.test'), (error) => {
      assert.ok(error instanceof SmtpError);
      assert.equal(error.code, 'EDNS');
      assert.equal(error.phase, 'dns');
      assert.equal(error.retryable, true);
      assert.match(error.message, /MX lookup of example\.test failed: .*HTTP 502/);
      return true;
    });
  } finally {
    await broken.close();
  }
});

test('a resolver object is used as is; bad dns options are EINPUT naming the field', async () => {
  const own = { mx: async () => [{ exchange: 'x.test', priority: 1 }], txt: async () => [], a: async () => [], aaaa: async () => [] };
  assert.equal(createResolver(own), own);
  const bad = [
    [{ mx: async () => [] }, /no txt, a, aaaa method/],
    [{ server: ['127.0.0.1'] }, /unknown field "server"/],
    [{ servers: [] }, /non-empty array/],
    [{ servers: ['dns.example'] }, /non-empty array/],
    [{ doh: 'http://dns.example/dns-query' }, /https:\/\/ URL/],
    [{ doh: 'x', servers: ['127.0.0.1'] }, /both servers and doh/],
    ['1.1.1.1', /must be an object/],
  ];
  for (const [options, message] of bad) {
    assert.throws(() => createResolver(options), (e) => e.code === 'EINPUT' && message.test(e.message), JSON.stringify(options));
  }
});

test('the wire format: malformed answers are errors, never hangs', () => {
  const query = encodeQuery('example.test', 15);
  assert.throws(() => decodeResponse(query), /not a response/);
  const loop = Uint8Array.from([0, 0, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0xc0, 12, 0, 15, 0, 1, 0, 0, 0, 60, 0, 0]);
  assert.throws(() => decodeResponse(loop), /pointer loop/);
  assert.throws(() => decodeResponse(Uint8Array.from([0, 0, 0x80, 0, 0, 0, 0, 1])), /truncated/);
  assert.throws(() => encodeQuery(`${'a'.repeat(64)}.test`, 1), /longer than 63/);
});
