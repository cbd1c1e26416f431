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
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
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

test('Node with dns.servers (MX and TXT on the wire, A and AAAA through node:dns): MX, TXT, A, AAAA, null MX, NODATA and NXDOMAIN', async () => {
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

test('a resolver object is called as is, its failures EDNS; bad dns options are EINPUT naming the field', async () => {
  const own = { mx: async () => [{ exchange: 'x.test', priority: 1 }], txt: async () => { throw new Error('lookup broke'); }, a: async () => [], aaaa: async () => [] };
  const resolver = createResolver(own);
  assert.deepEqual(await resolver.mx('example.test'), [{ exchange: 'x.test', priority: 1 }]);
  await assert.rejects(resolver.txt('example.test'), (e) => e.code === 'EDNS' && /TXT lookup of example\.test failed: the resolver passed as dns threw: lookup broke/.test(e.message));
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

/**
 * A name server on one port, UDP and TCP, that counts what it is asked:
 * "ttl.test" MX with a TTL of 1 s; "big.test" TXT truncated over UDP (TC,
 * no answers) and whole over TCP; "bad-id.test" answered over UDP with a
 * wrong ID first (ignored by the client), then the right one.
 */
async function startWireServer() {
  const counts = { udp: 0, tcp: 0 };
  const big = ['x'.repeat(255), 'y'.repeat(255), 'z'.repeat(90)];
  const label = (name) => Buffer.concat([...name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]);
  const rr = (type, ttl, rdata) => {
    const head = Buffer.alloc(12);
    head.writeUInt16BE(0xc00c, 0); // the question's name
    head.writeUInt16BE(type, 2);
    head.writeUInt16BE(1, 4);
    head.writeUInt32BE(ttl, 6);
    head.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([head, rdata]);
  };
  const answer = (query, { tc = false, id } = {}) => {
    let end = 12;
    while (query[end] !== 0) end += query[end] + 1;
    const question = query.subarray(12, end + 5);
    const qname = [];
    for (let i = 12; query[i] !== 0; i += query[i] + 1) qname.push(query.subarray(i + 1, i + 1 + query[i]).toString());
    const name = qname.join('.');
    const records = [];
    if (name === 'ttl.test' || name === 'bad-id.test') {
      const pref = Buffer.alloc(2);
      pref.writeUInt16BE(10);
      records.push(rr(15, 1, Buffer.concat([pref, label(`mx.${name}`)])));
    }
    if (name === 'big.test' && !tc) records.push(rr(16, 300, Buffer.concat(big.map((t) => Buffer.concat([Buffer.from([t.length]), Buffer.from(t)])))));
    const header = Buffer.alloc(12);
    header.writeUInt16BE(id ?? query.readUInt16BE(0), 0);
    header.writeUInt16BE(0x8180 | (tc ? 0x0200 : 0), 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records.length, 6);
    return { name, bytes: Buffer.concat([header, question, ...records]) };
  };
  const udp = createSocket('udp4');
  udp.on('message', (query, from) => {
    counts.udp += 1;
    const { name } = answer(query);
    if (name === 'bad-id.test') udp.send(answer(query, { id: query.readUInt16BE(0) ^ 0xffff }).bytes, from.port, from.address);
    udp.send(answer(query, { tc: name === 'big.test' }).bytes, from.port, from.address);
  });
  await new Promise((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const port = udp.address().port;
  const tcp = createServer((socket) => {
    counts.tcp += 1;
    socket.once('data', (framed) => {
      const { bytes } = answer(framed.subarray(2));
      const length = Buffer.alloc(2);
      length.writeUInt16BE(bytes.length);
      socket.end(Buffer.concat([length, bytes]));
    });
  });
  await new Promise((resolve) => tcp.listen(port, '127.0.0.1', resolve));
  return {
    port,
    counts,
    big: big.join(''),
    close: () => new Promise((resolve) => udp.close(() => tcp.close(resolve))),
  };
}

test('on the wire: each answer is cached for its own TTL, a truncated one is asked again over TCP, a wrong ID is ignored', async () => {
  const server = await startWireServer();
  try {
    const resolver = createResolver({ servers: [`127.0.0.1:${server.port}`] });
    assert.deepEqual(await resolver.mx('ttl.test'), [{ exchange: 'mx.ttl.test', priority: 10 }]);
    assert.deepEqual(await resolver.mx('ttl.test'), [{ exchange: 'mx.ttl.test', priority: 10 }]);
    assert.equal(server.counts.udp, 1, 'within the record\'s TTL (1 s) the cache answers');
    await sleep(1100);
    await resolver.mx('ttl.test');
    assert.equal(server.counts.udp, 2, 'after its TTL the server is asked again');
    assert.deepEqual(await resolver.txt('big.test'), [server.big], 'the whole record, over TCP');
    assert.equal(server.counts.tcp, 1);
    assert.deepEqual(await resolver.mx('bad-id.test'), [{ exchange: 'mx.bad-id.test', priority: 10 }]);
  } finally {
    await server.close();
  }
});
