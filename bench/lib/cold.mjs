// One cold send: a fresh process imports the library, creates a client,
// sends one short message on a fresh connection (TLS, AUTH PLAIN) and
// closes. What a serverless function or a script pays. Runs in Node, Deno
// and Bun; prints one JSON line.
//
//   node|deno run -A|bun lib/cold.mjs '<json spec>'
// spec: { lib: 'wasmtp'|'nodemailer', entry (wasmtp's module URL), port,
//         security: 'starttls'|'tls', caPath, tlsEngine?: 'wasm' (TLS inside the engine) }
// prints: { sentMs, sentAt, importMs, phases: { <phase>: ms after the start } }
//
// The clock starts before the library is imported: import, engine
// instantiation, connect, greeting, EHLO, STARTTLS, the TLS handshake, EHLO,
// AUTH, the envelope and the data all count; QUIT does not (the message's
// result is known before it).

import { readFileSync } from 'node:fs';

const t0 = performance.now();
const spec = JSON.parse(process.argv[2]);
const ca = readFileSync(spec.caPath, 'utf8');
const message = { from: 'sender@bench.test', to: ['rcpt@bench.test'], subject: 'Cold send', text: 'One short message.\r\n' };
const phases = {};
const mark = (phase) => (phases[phase] ??= performance.now() - t0);

/** The phase a server reply or a TLS line ends, from wasmtp's transcript or nodemailer's log. */
function phaseOf(text, seen) {
  if (/^220 Ready|^220 2\.0\.0/.test(text)) return 'starttls';
  if (/^220 /.test(text)) return 'greeting';
  if (/^Secure connection established|TLS.* established|upgraded with STARTTLS/.test(text)) return 'handshake';
  if (/^250[ -]/.test(text) && !seen.ehlo) return 'ehlo';
  if (/^250[ -]/.test(text) && seen.handshake && !seen.ehloTls) return 'ehloTls';
  if (/^235 /.test(text)) return 'auth';
  if (/^354 /.test(text)) return 'envelope';
  return null;
}
const seen = {};
function note(text) {
  const phase = phaseOf(text, seen);
  if (phase && !seen[phase]) {
    seen[phase] = true;
    mark(phase);
  }
}

let importMs;
if (spec.lib === 'wasmtp') {
  const { createClient } = await import(spec.entry);
  importMs = performance.now() - t0;
  const client = createClient({
    host: 'localhost',
    port: spec.port,
    security: spec.security,
    tls: spec.tlsEngine ? { ca, engine: spec.tlsEngine } : { ca },
    auth: { user: 'bench', pass: 'bench' },
    onTranscript: (line) => note(line.text),
  });
  await client.send(message);
  mark('sent');
  await client.close();
} else {
  const { default: nodemailer } = await import('nodemailer');
  importMs = performance.now() - t0;
  const log = (_meta, format, ...args) => note(String(format).replace(/%s/g, () => String(args.shift())));
  const transport = nodemailer.createTransport({
    host: 'localhost',
    port: spec.port,
    secure: spec.security === 'tls',
    requireTLS: spec.security === 'starttls',
    tls: { ca },
    auth: { user: 'bench', pass: 'bench' },
    logger: { debug: log, info: log, warn() {}, error() {}, trace() {}, fatal() {} },
    debug: true,
  });
  await transport.sendMail(message);
  mark('sent');
  transport.close();
}
// sentAt (epoch ms) lets the delay proxy count the round trips up to the final reply.
process.stdout.write(JSON.stringify({ sentMs: phases.sent, sentAt: performance.timeOrigin + t0 + phases.sent, importMs, phases }) + '\n');
