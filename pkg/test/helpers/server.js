// The SMTP test server of every JS suite (pkg/test, tests/outbox,
// tests/runtimes, tests/doctor): the `smtp-server` package on 127.0.0.1 and
// a random port, recording exactly what it received. What a suite needs
// beyond the common behaviour it says through `login`, `onRcpt` and
// `decide`, not through a server of its own.

import { createServer } from 'node:net';
import { SMTPServer } from 'smtp-server';

import { testCertificates } from './certs.js';

export const USER = 'ann';
export const PASS = 'correct horse';
export const TOKEN = 'ya29.test-token';

/** The default login check: USER with PASS (PLAIN, LOGIN, CRAM-MD5) or TOKEN (XOAUTH2). */
function checkLogin(auth) {
  if (auth.username !== USER) return false;
  if (auth.method === 'XOAUTH2') return auth.accessToken === TOKEN;
  return auth.method === 'CRAM-MD5' ? auth.validatePassword(PASS) : auth.password === PASS;
}

/**
 * Starts a server. `tls`: "none" (no STARTTLS), "starttls" or "implicit",
 * with `key` / `cert` (default: the test CA's server certificate).
 * Recipients whose local part starts with "reject" are refused with 550.
 * - `login(auth)`: whether a login succeeds (default: USER with PASS or TOKEN);
 * - `onRcpt(address, cut)`: may call `cut()` to drop the connection instead of answering;
 * - `decide(message)`: (a promise of) what the end of data gets: "accept"
 *   (250, the default), "defer" (451), "hold" (no answer until close), "cut"
 *   (the connection is dropped without an answer);
 * - `closeWait`: close() resolves after at most this many ms (clients
 *   killed by a test may leave connections behind);
 * - anything else goes to SMTPServer (`size`, `maxClients`, `disabledCommands`...).
 * `messages`: the accepted messages (250); `dataEnds`: every end of data
 * seen, answered or not; each is { from, to, raw (Buffer), subject,
 * messageId, bytes, user, utf8, mailArgs, rcptArgs }. `count(subject)`:
 * how many times a Subject was accepted. `tempFailed`: 451 answers.
 * `peakSessions`: the most SMTP sessions in the server's own connection
 * table at once (what its `maxClients` limit counts; a session leaves it
 * when the server answers QUIT). `open` / `peakOpen`: TCP sockets open at
 * once (a socket closes a little after its QUIT, when both FINs are through).
 * `sockets` maps a session's remote port to its socket (to cut a connection
 * from a handler). `tcpConnections`: every TCP connection accepted, those
 * the server then refused (`maxClients`) included; `connections`: sessions.
 */
export async function startServer({
  tls = 'none',
  key,
  cert,
  authMethods = ['PLAIN', 'LOGIN'],
  login = checkLogin,
  onRcpt = () => {},
  decide = () => 'accept',
  closeWait,
  ...extra
} = {}) {
  if (key === undefined) ({ key, cert } = testCertificates());
  const state = {
    port: 0,
    messages: [],
    dataEnds: [],
    tempFailed: 0,
    held: [],
    connections: 0,
    tcpConnections: 0,
    peakSessions: 0,
    open: 0,
    peakOpen: 0,
    authAttempts: 0,
    sockets: new Map(),
    close: null,
    count: (subject) => state.messages.filter((m) => m.subject === subject).length,
  };
  const cut = (session) => state.sockets.get(session.remotePort)?.destroy();
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
      if (login(auth)) return callback(null, { user: auth.username });
      if (auth.method === 'XOAUTH2') return callback(null, { data: { status: '401', schemes: 'bearer' } });
      return callback(new Error('Invalid username or password'));
    },
    onRcptTo(address, session, callback) {
      if (/^reject/i.test(address.address)) {
        const error = new Error('5.1.1 No such user here');
        error.responseCode = 550;
        return callback(error);
      }
      let dropped = false;
      onRcpt(address, () => {
        dropped = true;
        cut(session);
      });
      if (!dropped) callback();
    },
    onData(stream, session, callback) {
      const chunks = [];
      stream.on('data', (chunk) => chunks.push(chunk));
      stream.on('end', async () => {
        if (stream.sizeExceeded) {
          const error = new Error('Message exceeds fixed maximum message size');
          error.responseCode = 552;
          return callback(error);
        }
        const raw = Buffer.concat(chunks);
        const text = raw.toString('utf8');
        const message = {
          from: session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw,
          subject: /^Subject: (.*)$/im.exec(text)?.[1]?.trim(),
          messageId: /^Message-ID: (.*)$/im.exec(text)?.[1]?.trim(),
          bytes: raw.length,
          user: session.user,
          utf8: session.envelope.mailFrom.args?.SMTPUTF8 === true,
          // MAIL FROM and RCPT TO parameters (BODY, RET, ENVID, REQUIRETLS, NOTIFY...).
          mailArgs: session.envelope.mailFrom.args || {},
          rcptArgs: session.envelope.rcptTo.map((r) => r.args || {}),
        };
        state.dataEnds.push(message);
        switch (await decide(message)) {
          case 'hold':
            state.held.push(() => callback(null, 'OK (too late)'));
            return;
          case 'cut':
            cut(session);
            return;
          case 'defer': {
            state.tempFailed += 1;
            const error = new Error('4.3.0 Try again later');
            error.responseCode = 451;
            return callback(error);
          }
          default:
            state.messages.push(message);
            callback(null, `OK queued as Q${state.messages.length}`);
        }
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
  state.close = () =>
    new Promise((resolve) => {
      for (const release of state.held.splice(0)) release();
      server.close(resolve);
      if (closeWait !== undefined) setTimeout(resolve, closeWait).unref();
    });
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
export { closedPort } from './ports.js';
