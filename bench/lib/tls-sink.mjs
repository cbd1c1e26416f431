// A TLS-capable sink for the cold-send scenarios (a child process of
// run.mjs): smtp-server with AUTH PLAIN and a certificate from the test CA,
// either STARTTLS on a plaintext port (like 587) or TLS from the first byte
// (like 465). Bodies are discarded.
//
//   node lib/tls-sink.mjs starttls|tls <certDir>     prints "ready <port>"
//
// The server does no reverse DNS look-up of the client: smtp-server does one
// by default before its greeting, which here adds a resolver's time-out that
// has nothing to do with either client.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';

const [mode, certDir] = process.argv.slice(2);

const server = new SMTPServer({
  secure: mode === 'tls',
  key: readFileSync(join(certDir, 'server.key')),
  cert: readFileSync(join(certDir, 'server.pem')),
  authMethods: ['PLAIN'],
  disableReverseLookup: true,
  size: 0,
  logger: false,
  banner: 'wasmtp bench TLS sink',
  onAuth(auth, _session, callback) {
    if (auth.username === 'bench' && auth.password === 'bench') callback(null, { user: 'bench' });
    else callback(new Error('bad credentials'));
  },
  onData(stream, _session, callback) {
    stream.resume();
    stream.on('end', () => callback(null, 'queued'));
  },
});
// A client that gives up mid-handshake is not the sink's problem.
server.on('error', () => {});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`ready ${server.server.address().port}\n`);
});
process.on('disconnect', () => process.exit(0));
