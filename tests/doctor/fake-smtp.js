// Small SMTP servers on 127.0.0.1 for the doctor's tests, each one a case
// the doctor must recognise: plaintext only, STARTTLS, implicit TLS, which
// AUTH mechanisms are offered before and after TLS, a certificate from the
// test CA or a self-signed one; plus a port that never answers (a listener
// whose accept queue is full, so connection attempts time out) and a port
// nothing listens on. Every command a server receives is recorded, so a
// test can prove that no credential ever reached it.

import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';

import { testCertificates } from '../../pkg/test/helpers/certs.js';

export const USER = 'ann@example.com';
export const PASSWORD = 'doctor-Pw-5e1f-n0t-r34l';

/** The test CA and a server certificate it signed (localhost, 127.0.0.1). */
export const testCa = () => testCertificates();

let selfSigned = null;
/** A self-signed certificate for localhost / 127.0.0.1 and its SHA-256, as openssl prints it. */
export function selfSignedCertificate() {
  if (selfSigned) return selfSigned;
  const dir = mkdtempSync(join(tmpdir(), 'wasmtp-doctor-certs-'));
  try {
    const openssl = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] }).toString();
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', '/CN=mx.doctor.test/O=Doctor Test', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      '-keyout', 'key.pem', '-out', 'cert.pem');
    const fingerprint = openssl('x509', '-in', 'cert.pem', '-noout', '-fingerprint', '-sha256').trim().split('=')[1];
    selfSigned = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), fingerprint };
    return selfSigned;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Starts a fake SMTP server.
 * @param {object} o
 * @param {'plain'|'starttls'|'implicit'} o.mode
 * @param {{key: string, cert: string}} [o.certificate] default: the test CA's server certificate
 * @param {string[]} [o.authBeforeTls] AUTH mechanisms in the plaintext EHLO (default: none when TLS is offered)
 * @param {string[]} [o.authAfterTls] AUTH mechanisms after TLS (default PLAIN LOGIN)
 * @param {number} [o.port] default: any free port
 * @returns {Promise<{ port: number, commands: string[], sessions: number, close(): Promise<void> }>}
 */
export async function startSmtp({ mode, certificate, authBeforeTls, authAfterTls = ['PLAIN', 'LOGIN'], port = 0 }) {
  const { key, cert } = certificate ?? testCa();
  const secureContext = tls.createSecureContext({ key, cert });
  const before = authBeforeTls ?? (mode === 'plain' ? authAfterTls : []);
  const state = { port: 0, commands: [], sessions: 0 };
  const sockets = new Set();

  const serve = (socket, secure, greet = true) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    state.sessions += 1;
    let buffer = '';
    let pendingAuth = null; // 'PLAIN' | 'LOGIN-user' | 'LOGIN-pass'
    let loginUser = '';
    const send = (text) => socket.write(`${text}\r\n`);
    const ehlo = () => {
      const lines = ['doctor.test greets you', 'PIPELINING', 'SIZE 10240000', '8BITMIME'];
      if (!secure && mode === 'starttls') lines.push('STARTTLS');
      const auth = secure ? authAfterTls : before;
      if (auth.length > 0) lines.push(`AUTH ${auth.join(' ')}`);
      lines.push('ENHANCEDSTATUSCODES');
      return lines.map((l, i) => `250${i === lines.length - 1 ? ' ' : '-'}${l}`).join('\r\n');
    };
    const check = (user, pass) => (user === USER && pass === PASSWORD ? send('235 2.7.0 Authentication successful') : send('535 5.7.8 Authentication credentials invalid'));
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      let at;
      while ((at = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, at);
        buffer = buffer.slice(at + 2);
        state.commands.push(line);
        if (pendingAuth === 'PLAIN') {
          pendingAuth = null;
          const [, user, pass] = Buffer.from(line, 'base64').toString().split('\0');
          check(user, pass);
          continue;
        }
        if (pendingAuth === 'LOGIN-user') {
          loginUser = Buffer.from(line, 'base64').toString();
          pendingAuth = 'LOGIN-pass';
          send('334 UGFzc3dvcmQ6');
          continue;
        }
        if (pendingAuth === 'LOGIN-pass') {
          pendingAuth = null;
          check(loginUser, Buffer.from(line, 'base64').toString());
          continue;
        }
        const [verb, ...args] = line.split(' ');
        switch (verb.toUpperCase()) {
          case 'EHLO':
            send(ehlo());
            break;
          case 'STARTTLS':
            if (secure || mode !== 'starttls') {
              send('502 5.5.1 not offered');
              break;
            }
            send('220 2.0.0 Ready to start TLS');
            socket.removeAllListeners('data');
            upgrade(socket);
            return;
          case 'AUTH': {
            const mechanism = (args[0] ?? '').toUpperCase();
            if (mechanism === 'PLAIN' && args[1]) {
              const [, user, pass] = Buffer.from(args[1], 'base64').toString().split('\0');
              check(user, pass);
            } else if (mechanism === 'PLAIN') {
              pendingAuth = 'PLAIN';
              send('334 ');
            } else if (mechanism === 'LOGIN') {
              pendingAuth = 'LOGIN-user';
              send('334 VXNlcm5hbWU6');
            } else {
              send('504 5.5.4 mechanism not supported');
            }
            break;
          }
          case 'QUIT':
            send('221 2.0.0 Bye');
            socket.end();
            return;
          default:
            send('250 2.0.0 OK');
        }
      }
    });
    if (greet) send('220 doctor.test ESMTP fake'); // not again after STARTTLS
  };

  const upgrade = (plain) => {
    const secure = new tls.TLSSocket(plain, { isServer: true, secureContext });
    secure.on('error', () => {});
    secure.once('secure', () => serve(secure, true, false));
  };

  const server =
    mode === 'implicit'
      ? tls.createServer({ key, cert }, (socket) => serve(socket, true))
      : net.createServer((socket) => serve(socket, false));
  server.on('tlsClientError', () => {});
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  state.port = server.address().port;
  state.close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(() => resolve()));
  };
  return state;
}

/** A port nothing listens on (bound, then released). */
export async function closedPort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A port that never answers: a listener (python3) with an accept queue of
 * one that never accepts, plugged by one connection of ours, so the kernel
 * drops further connection attempts and they time out — what a firewall
 * that blocks outbound SMTP looks like from the client.
 */
export async function blackholePort() {
  const child = spawn('python3', ['-c', [
    'import socket, sys, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'print(s.getsockname()[1], flush=True)',
    'sys.stdin.read()',
  ].join('\n')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`python3 exited with ${code}`)));
  });
  const plugs = [];
  // Fill the accept queue (its size is the backlog plus one on Linux).
  for (let i = 0; i < 2; i++) {
    const plug = net.connect(port, '127.0.0.1');
    plug.on('error', () => {});
    plugs.push(plug);
  }
  await new Promise((resolve) => setTimeout(resolve, 200));
  return {
    port,
    close() {
      for (const p of plugs) p.destroy();
      child.stdin.end(); // python3 exits when its stdin closes
    },
  };
}
