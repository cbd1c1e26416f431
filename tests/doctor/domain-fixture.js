// The domain doctor's fixture on loopback: a private dnsmasq
// (tests/servers/dns/start.sh) serving the test domains' records, an HTTPS
// server with a certificate of the test CA (tests/servers/make-certs.sh)
// serving their MTA-STS policies, a local "MX" (any port: the doctor's
// mxPort), and a port where nothing listens. Stopped by close().

import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { startDns } from '../../pkg/test/helpers/dns.js';
import { closedPort as findClosedPort } from './fake-smtp.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** A DKIM key record for an RSA key of `bits` bits, as dnsmasq TXT strings (255 bytes each). */
function dkimRecord(bits) {
  const { publicKey } = generateKeyPairSync('rsa', { modulusLength: bits });
  const record = `v=DKIM1; k=rsa; p=${publicKey.export({ type: 'spki', format: 'der' }).toString('base64')}`;
  return record.match(/.{1,255}/g).map((s) => `"${s}"`).join(',');
}

const txt = (name, value) => `txt-record=${name},"${value}"`;

const ZONE = [
  // good.test: everything in order.
  'mx-host=good.test,mx.good.test,10',
  'host-record=mx.good.test,127.0.0.1',
  'host-record=mta-sts.good.test,127.0.0.1',
  txt('good.test', 'v=spf1 mx include:_spf.good.test -all'),
  txt('_spf.good.test', 'v=spf1 ip4:192.0.2.0/24 -all'),
  txt('_dmarc.good.test', 'v=DMARC1; p=reject; rua=mailto:d@good.test'),
  `txt-record=sel._domainkey.good.test,${dkimRecord(2048)}`,
  txt('_mta-sts.good.test', 'v=STSv1; id=20261204'),
  txt('_smtp._tls.good.test', 'v=TLSRPTv1; rua=mailto:tls@good.test'),
  // weak.test: no MX, ?all, p=none, a 1024-bit key, a policy that is not served.
  txt('weak.test', 'v=spf1 a ?all'),
  txt('_dmarc.weak.test', 'v=DMARC1; p=none'),
  `txt-record=sel._domainkey.weak.test,${dkimRecord(1024)}`,
  txt('_mta-sts.weak.test', 'v=STSv1; id=1'),
  'host-record=mta-sts.weak.test,127.0.0.1',
  txt('_smtp._tls.weak.test', 'v=TLSRPTv1; rua=tls@weak.test'),
  // bad.test: a null MX, +all, a broken DMARC record, a 512-bit key, an MTA-STS record without id.
  'dns-rr=bad.test,15,000000',
  txt('bad.test', 'v=spf1 +all'),
  txt('_dmarc.bad.test', 'v=DMARC1; p=maybe'),
  `txt-record=sel._domainkey.bad.test,${dkimRecord(512)}`,
  txt('_mta-sts.bad.test', 'v=STSv1;'),
  // lookups.test: too many lookups through includes, an include without SPF, two DMARC records, a revoked key.
  'mx-host=lookups.test,mx.lookups.test,10',
  txt('lookups.test', 'v=spf1 a mx include:l1.lookups.test include:l2.lookups.test include:nospf.lookups.test -all'),
  txt('l1.lookups.test', 'v=spf1 a a a include:l3.lookups.test ~all'),
  txt('l2.lookups.test', 'v=spf1 mx mx ptr -all'),
  txt('l3.lookups.test', 'v=spf1 exists:%{i}.x.lookups.test a -all'),
  txt('nospf.lookups.test', 'site-verification=abc'),
  txt('_dmarc.lookups.test', 'v=DMARC1; p=none'),
  txt('_dmarc.lookups.test', 'v=DMARC1; p=reject'),
  txt('sel._domainkey.lookups.test', 'v=DKIM1; p='),
  // enforced.test and testing.test: policies whose mx patterns miss the MX.
  'mx-host=enforced.test,mx.enforced.test,10',
  'host-record=mta-sts.enforced.test,127.0.0.1',
  txt('_mta-sts.enforced.test', 'v=STSv1; id=7'),
  'mx-host=testing.test,mx.testing.test,10',
  'host-record=mta-sts.testing.test,127.0.0.1',
  txt('_mta-sts.testing.test', 'v=STSv1; id=7'),
  // syntax.test: two SPF records, a DKIM key that is not base64.
  txt('syntax.test', 'v=spf1 -all'),
  txt('syntax.test', 'v=spf1 mx -all'),
  txt('sel._domainkey.syntax.test', 'v=DKIM1; k=rsa; p=not*base64!'),
  // spfsyntax.test: a record that does not parse.
  txt('spfsyntax.test', 'v=spf1 ip4:300.0.0.1 -all'),
];


/** A certificate for the policy hosts, signed by the test CA (written to `dir`). */
function policyCertificate(dir) {
  execFileSync('bash', [join(ROOT, 'tests/servers/make-certs.sh'), dir]);
  writeFileSync(join(dir, 'sts.cnf'), 'subjectAltName = DNS:mta-sts.good.test, DNS:mta-sts.weak.test, DNS:mta-sts.enforced.test, DNS:mta-sts.testing.test\nextendedKeyUsage = serverAuth\n');
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  run('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=mta-sts.good.test', '-keyout', 'sts.key', '-out', 'sts.csr');
  run('x509', '-req', '-in', 'sts.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'sts.cnf', '-out', 'sts.pem');
  return { key: readFileSync(join(dir, 'sts.key')), cert: readFileSync(join(dir, 'sts.pem')), ca: readFileSync(join(dir, 'ca.pem'), 'utf8') };
}

/**
 * Starts everything.
 * @returns {Promise<{ dns, dir, ca: string, policyPort: number, mxPort: number, closedPort: number, close(): Promise<void> }>}
 */
export async function startDomainFixture() {
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-domain-doctor-'));
  const dns = await startDns(ZONE);
  const { key, cert, ca } = policyCertificate(dir);
  const policies = {
    'mta-sts.good.test': 'version: STSv1\r\nmode: enforce\r\nmx: mx.good.test\r\nmax_age: 86400\r\n',
    'mta-sts.enforced.test': 'version: STSv1\nmode: enforce\nmx: *.elsewhere.test\nmax_age: 86400\n',
    'mta-sts.testing.test': 'version: STSv1\nmode: testing\nmx: mx1.testing.test\nmax_age: 600\n',
  };
  const policyServer = createHttpsServer({ key, cert }, (req, res) => {
    const policy = req.url === '/.well-known/mta-sts.txt' ? policies[req.headers.host] : undefined;
    if (policy) {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(policy);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise((resolve) => policyServer.listen(0, '127.0.0.1', resolve));
  const mx = createServer((socket) => socket.end('220 mx.good.test ESMTP\r\n'));
  await new Promise((resolve) => mx.listen(0, '127.0.0.1', resolve));
  const closedPort = await findClosedPort();
  return {
    dns,
    dir,
    ca,
    policyPort: policyServer.address().port,
    mxPort: mx.address().port,
    closedPort,
    async close() {
      dns.stop();
      await new Promise((resolve) => policyServer.close(resolve));
      await new Promise((resolve) => mx.close(resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

