// The loopback world of the MX delivery suite (tests/mx):
//   - a test CA and certificates made with openssl: one naming every MX and
//     mta-sts.* host of the zone, one for a name no MX has (the mismatch);
//   - smtp-server instances (from pkg/node_modules) on 127.0.0.X, all on
//     the same port (mx: { port } is one port for every host): a good one
//     (STARTTLS, "reject*" refused with 550, "grey*" greylisted with 451 the
//     first time), one without STARTTLS, one with the wrong certificate,
//     and a raw listener that greets 421 and hangs up;
//   - an HTTPS server serving MTA-STS policies by Host header;
//   - dnsmasq (tests/servers/dns/start.sh) with the zone.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { createConnection, createServer as createNetServer } from 'node:net';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
export const ROOT = join(HERE, '..', '..');
const require = createRequire(join(ROOT, 'pkg', 'package.json'));
const { SMTPServer } = require('smtp-server');

export function makeCertificates(names) {
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-mx-certs-'));
  const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=wasmtp mx test CA', '-keyout', 'ca.key', '-out', 'ca.pem',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    const issue = (stem, sans) => {
      openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${sans[0]}`, '-keyout', `${stem}.key`, '-out', `${stem}.csr`);
      writeFileSync(join(dir, `${stem}.cnf`), `subjectAltName=${sans.map((n) => `DNS:${n}`).join(',')}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
      openssl('x509', '-req', '-in', `${stem}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', `${stem}.cnf`, '-out', `${stem}.pem`);
      return { key: readFileSync(join(dir, `${stem}.key`), 'utf8'), cert: readFileSync(join(dir, `${stem}.pem`), 'utf8') };
    };
    return { ca: readFileSync(join(dir, 'ca.pem'), 'utf8'), good: issue('good', names), wrong: issue('wrong', ['wrong-name.example']) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every message an SMTP server took: { server, to, subject }. */
export const received = [];

/**
 * An smtp-server on address:port. `starttls`: offer STARTTLS with `tls` ({ key, cert }).
 * Greylisting: a "grey*" recipient gets 451 on its first RCPT, then 250.
 */
export async function startSmtp({ name, address, port, tls, starttls = true }) {
  const seen = new Set();
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true,
    key: tls?.key,
    cert: tls?.cert,
    hideSTARTTLS: !starttls,
    disabledCommands: ['AUTH', ...(starttls ? [] : ['STARTTLS'])],
    authOptional: true,
    onRcptTo(rcpt, session, callback) {
      const local = rcpt.address.split('@')[0];
      if (/^reject/i.test(local)) return callback(Object.assign(new Error('5.1.1 No such user here'), { responseCode: 550 }));
      if (/^grey/i.test(local) && !seen.has(rcpt.address)) {
        seen.add(rcpt.address);
        return callback(Object.assign(new Error('4.7.1 Greylisted, try again later'), { responseCode: 451 }));
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (c) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        received.push({
          server: name,
          to: session.envelope.rcptTo.map((r) => r.address),
          subject: /^Subject: (.*)$/im.exec(raw)?.[1]?.trim(),
          messageId: /^Message-ID: (.*)$/im.exec(raw)?.[1]?.trim(),
          tls: Boolean(session.secure),
        });
        callback(null, `OK queued at ${name}`);
      });
    },
  });
  server.on('error', () => {});
  await new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, address, resolve);
  });
  return { close: () => new Promise((r) => server.close(r)) };
}

/** Greets "421 busy" and hangs up. */
export async function startBusy({ address, port }) {
  const server = createNetServer((socket) => {
    socket.on('error', () => {});
    socket.end('421 4.3.2 Too busy, try another host\r\n');
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, resolve);
  });
  return { close: () => new Promise((r) => server.close(r)) };
}

/** Accepts connections and never says a word (a host that times out). */
export async function startSilent({ address, port }) {
  const sockets = new Set();
  const server = createNetServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, address, resolve);
  });
  return {
    close: () =>
      new Promise((r) => {
        for (const socket of sockets) socket.destroy();
        server.close(r);
      }),
  };
}

/** HTTPS on 127.0.0.1:port serving policies[host] at /.well-known/mta-sts.txt. */
export async function startPolicyServer({ tls, policies }) {
  const fetched = [];
  const server = createHttpsServer(tls, (request, response) => {
    const host = (request.headers.host ?? '').replace(/:\d+$/, '');
    fetched.push(host);
    const policy = policies[host];
    if (request.url !== '/.well-known/mta-sts.txt' || policy === undefined) return void response.writeHead(404).end();
    response.writeHead(200, { 'content-type': 'text/plain' }).end(policy);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    fetched,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections?.();
        server.close(r);
      }),
  };
}

/** A TCP port free on every address given. */
export async function freePortOn(addresses) {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 30000);
    const ok = await Promise.all(
      addresses.map(
        (address) =>
          new Promise((resolve) => {
            const s = createNetServer();
            s.once('error', () => resolve(false));
            s.listen(port, address, () => s.close(() => resolve(true)));
          }),
      ),
    );
    if (ok.every(Boolean)) return port;
  }
  throw new Error('no free port on the loopback addresses');
}

/**
 * The private Postfix of pkg/test/helpers/postfix.js as an MX: one more
 * smtpd on address:port that takes mail for any domain from loopback
 * (permit_mynetworks) without AUTH, STARTTLS with `tls` ({ key, cert }).
 * Accepted messages are saved by its pipe transport (waitDelivered).
 */
export async function startPostfixMx({ address, port, tls }) {
  const { startPostfix } = await import('../../pkg/test/helpers/postfix.js');
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-mx-postfix-certs-'));
  writeFileSync(join(dir, 'cert.pem'), tls.cert);
  writeFileSync(join(dir, 'key.pem'), tls.key, { mode: 0o600 });
  let postfix;
  try {
    postfix = await startPostfix({ certFile: join(dir, 'cert.pem'), keyFile: join(dir, 'key.pem') });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const etc = join(postfix.dir, 'etc');
  const service = `${address}:${port} inet n - n - - smtpd -o smtpd_relay_restrictions=permit_mynetworks,reject`;
  execFileSync('/usr/sbin/postconf', ['-c', etc, '-M', `${address}:${port}/inet=${service}`], { stdio: 'pipe', timeout: 10_000 });
  execFileSync('/usr/sbin/postfix', ['-c', etc, 'reload'], { stdio: 'pipe', timeout: 20_000 });
  for (let i = 0; i < 100; i++) {
    if ((await greeting(address, port)).startsWith('220')) return postfix;
    await new Promise((r) => setTimeout(r, 100));
  }
  await postfix.stop();
  throw new Error(`Postfix did not greet on ${address}:${port}`);
}

function greeting(host, port) {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    let data = '';
    const done = (line) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(line);
    };
    const timer = setTimeout(() => done(''), 1000);
    socket.on('data', (chunk) => {
      data += chunk;
      if (data.includes('\r\n')) {
        socket.end('QUIT\r\n');
        done(data.slice(0, data.indexOf('\r\n')));
      }
    });
    socket.on('error', () => done(''));
  });
}
