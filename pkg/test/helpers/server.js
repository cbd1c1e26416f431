// A real SMTP server (the `smtp-server` package) on 127.0.0.1 and a random
// port, recording exactly what it received.

import { createServer } from 'node:net';
import { SMTPServer } from 'smtp-server';

import { testCertificates } from './certs.js';

export const USER = 'ann';
export const PASS = 'correct horse';
export const TOKEN = 'ya29.test-token';

/**
 * Starts a server. `tls`: "none" (no STARTTLS), "starttls" or "implicit".
 * Recipients whose local part starts with "reject" are refused with 550.
 * `peakSessions`: the most SMTP sessions in the server's own connection
 * table at once (what its `maxClients` limit counts; a session leaves it
 * when the server answers QUIT). `open` / `peakOpen`: TCP sockets open at
 * once (a socket closes a little after its QUIT, when both FINs are through).
 * `sockets` maps a session's remote port to its socket (to cut a connection
 * from a handler). `tcpConnections`: every TCP connection accepted, those
 * the server then refused (`maxClients`) included; `connections`: sessions.
 * @returns {Promise<{ port: number, messages: {from: string, to: string[], raw: Buffer, user?: string}[],
 *   connections: number, tcpConnections: number, peakSessions: number, open: number, peakOpen: number, authAttempts: number,
 *   sockets: Map<number, import('node:net').Socket>, close(): Promise<void> }>}
 */
export async function startServer({ tls = 'none', authMethods = ['PLAIN', 'LOGIN'], ...extra } = {}) {
  const { key, cert } = testCertificates();
  const state = { port: 0, messages: [], connections: 0, tcpConnections: 0, peakSessions: 0, open: 0, peakOpen: 0, authAttempts: 0, sockets: new Map(), close: null };
  const server = new SMTPServer({
    logger: false,
    disableReverseLookup: true, // no DNS in tests (it delays every greeting)
    secure: tls === 'implicit',
    key,
    cert,
    disabledCommands: tls === 'none' ? ['STARTTLS'] : [],
    authMethods,
    authOptional: true,
    allowInsecureAuth: true, // the client is the one under test for this policy
    onConnect(session, callback) {
      state.connections += 1;
      callback();
    },
    onAuth(auth, session, callback) {
      state.authAttempts += 1;
      const ok =
        auth.username === USER &&
        (auth.method === 'XOAUTH2'
          ? auth.accessToken === TOKEN
          : auth.method === 'CRAM-MD5'
            ? auth.validatePassword(PASS)
            : auth.password === PASS);
      if (ok) return callback(null, { user: auth.username });
      if (auth.method === 'XOAUTH2') return callback(null, { data: { status: '401', schemes: 'bearer' } });
      return callback(new Error('Invalid username or password'));
    },
    onRcptTo(address, session, callback) {
      if (/^reject/i.test(address.address)) {
        const error = new Error('5.1.1 No such user here');
        error.responseCode = 550;
        return callback(error);
      }
      callback();
    },
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (chunk) => chunks.push(chunk));
      stream.on('end', () => {
        if (stream.sizeExceeded) {
          const error = new Error('Message exceeds fixed maximum message size');
          error.responseCode = 552;
          return callback(error);
        }
        state.messages.push({
          from: session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks),
          user: session.user,
          utf8: session.envelope.mailFrom.args?.SMTPUTF8 === true,
          // MAIL FROM and RCPT TO parameters (BODY, RET, ENVID, REQUIRETLS, NOTIFY...).
          mailArgs: session.envelope.mailFrom.args || {},
          rcptArgs: session.envelope.rcptTo.map((r) => r.args || {}),
        });
        callback(null, `OK queued as Q${state.messages.length}`);
      });
    },
    ...extra,
  });
  server.on('error', () => {}); // client-side failures under test also end server sockets
  // Sampled right where smtp-server adds a session to its table.
  const connect = server.connect.bind(server);
  server.connect = (...args) => {
    connect(...args);
    state.peakSessions = Math.max(state.peakSessions, server.connections.size);
  };
  server.server.on('connection', (socket) => {
    state.tcpConnections += 1;
    state.open += 1;
    state.peakOpen = Math.max(state.peakOpen, state.open);
    state.sockets.set(socket.remotePort, socket);
    const remotePort = socket.remotePort;
    socket.once('close', () => {
      state.open -= 1;
      state.sockets.delete(remotePort);
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.port = server.server.address().port;
  state.close = () => new Promise((resolve) => server.close(resolve));
  return state;
}

/** A TCP server that accepts and never says a word (time-out and port-probe tests). */
export async function startSilentServer() {
  const sockets = new Set();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A port nothing listens on. */
export async function closedPort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}
