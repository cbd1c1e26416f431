// Throw-away certificates for the proxy and client-certificate suite, made
// once per process with the openssl CLI: a test CA, a server certificate
// for localhost / 127.0.0.1, and a client certificate it signed, as PEM
// (plain key and passphrase-encrypted key) and as PKCS#12.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PASSPHRASE = 'client key pass';

let cached = null;

/** @returns {{ ca, key, cert, clientCert, clientKey, clientKeyEncrypted, clientPfx: Buffer, otherCert, otherKey }} */
export function certificates() {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-client-certs-'));
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  try {
    openssl('req', '-x509', ...ec, '-days', '2', '-subj', '/CN=wasmtp proxy test CA', '-keyout', 'ca.key', '-out', 'ca.pem');
    writeFileSync(join(dir, 'server.cnf'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    writeFileSync(join(dir, 'client.cnf'), 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
    const signed = (name, subject, ext, ca = 'ca') => {
      openssl('req', ...ec, '-subj', subject, '-keyout', `${name}.key`, '-out', `${name}.csr`);
      openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '2', '-extfile', ext, '-out', `${name}.pem`);
    };
    signed('server', '/CN=localhost', 'server.cnf');
    signed('client', '/CN=ann@example.com', 'client.cnf');
    // A client certificate from a CA the server does not trust.
    openssl('req', '-x509', ...ec, '-days', '2', '-subj', '/CN=other CA', '-keyout', 'other-ca.key', '-out', 'other-ca.pem');
    signed('other', '/CN=mallory@example.com', 'client.cnf', 'other-ca');
    openssl('pkcs8', '-topk8', '-in', 'client.key', '-out', 'client-encrypted.key', '-v2', 'aes-256-cbc', '-passout', `pass:${PASSPHRASE}`);
    openssl('pkcs12', '-export', '-in', 'client.pem', '-inkey', 'client.key', '-out', 'client.p12', '-passout', `pass:${PASSPHRASE}`);
    const read = (file) => readFileSync(join(dir, file), 'utf8');
    cached = {
      ca: read('ca.pem'),
      key: read('server.key'),
      cert: read('server.pem'),
      clientCert: read('client.pem'),
      clientKey: read('client.key'),
      clientKeyEncrypted: read('client-encrypted.key'),
      clientPfx: readFileSync(join(dir, 'client.p12')),
      otherCert: read('other.pem'),
      otherKey: read('other.key'),
    };
    return cached;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
