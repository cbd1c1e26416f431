// The local SMTP sink (a child process of run.mjs): nodemailer's
// smtp-server on 127.0.0.1 with AUTH PLAIN/LOGIN over plaintext; message
// bodies are counted and discarded. PIPELINING is on (smtp-server's
// default), CHUNKING is not offered (smtp-server has no BDAT).
//
//   node lib/sink.mjs            prints "ready <port>" on stdout
// IPC: { op: 'stats' } → { messages, bytes }; { op: 'reset' }.

import { SMTPServer } from 'smtp-server';

let messages = 0;
let bytes = 0;

const server = new SMTPServer({
  secure: false,
  disabledCommands: ['STARTTLS'],
  allowInsecureAuth: true,
  authMethods: ['PLAIN', 'LOGIN'],
  size: 0,
  logger: false,
  banner: 'wasmtp bench sink',
  onAuth(auth, _session, callback) {
    if (auth.username === 'bench' && auth.password === 'bench') callback(null, { user: 'bench' });
    else callback(new Error('bad credentials'));
  },
  onData(stream, _session, callback) {
    let n = 0;
    stream.on('data', (chunk) => {
      n += chunk.length;
    });
    stream.on('end', () => {
      messages += 1;
      bytes += n;
      callback(null, 'queued');
    });
  },
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`ready ${server.server.address().port}\n`);
});

process.on('message', (msg) => {
  if (msg?.op === 'stats') process.send({ op: 'stats', messages, bytes });
  if (msg?.op === 'reset') {
    messages = 0;
    bytes = 0;
    process.send({ op: 'reset' });
  }
});
process.on('disconnect', () => process.exit(0));
