#!/usr/bin/env node
// A small command line over the package: verify a server, send a message,
// or diagnose which port and security mode work.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { createClient, diagnose, SmtpError } from '../src/index.js';

const USAGE = `usage:
  wasmtp verify   --host H [connection options]
  wasmtp send     --host H [connection options] --from A --to B [--to C...] (--subject S --text T | --raw FILE)
  wasmtp diagnose --host H [--ca FILE] [--user U]

connection options:
  --port N               default: from --security (465 tls, 587 starttls, 25 otherwise)
  --security MODE        tls | starttls | opportunistic | none
  --user U               credentials (password from --pass or $WASMTP_PASS)
  --pass P
  --ca FILE              extra trusted CA certificate (PEM)
  --allow-insecure-auth  send credentials over plaintext (local test servers only)
  -v, --verbose          print the SMTP dialog (credentials redacted)`;

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    host: { type: 'string' },
    port: { type: 'string' },
    security: { type: 'string' },
    user: { type: 'string' },
    pass: { type: 'string' },
    ca: { type: 'string' },
    'allow-insecure-auth': { type: 'boolean' },
    from: { type: 'string' },
    to: { type: 'string', multiple: true },
    subject: { type: 'string' },
    text: { type: 'string' },
    raw: { type: 'string' },
    verbose: { type: 'boolean', short: 'v' },
    help: { type: 'boolean', short: 'h' },
  },
});

const command = positionals[0];
if (values.help || !command || !values.host) {
  console.log(USAGE);
  process.exit(values.help ? 0 : 2);
}

const pass = values.pass ?? process.env.WASMTP_PASS;
const options = {
  host: values.host,
  port: values.port === undefined ? undefined : Number(values.port),
  security: values.security,
  auth: values.user ? { user: values.user, pass: pass ?? '' } : undefined,
  tls: values.ca ? { ca: readFileSync(values.ca, 'utf8') } : undefined,
  allowInsecureAuth: values['allow-insecure-auth'] === true,
  onTranscript: values.verbose ? (line) => console.error(`${line.dir.padEnd(3)} ${line.text}`) : undefined,
};

try {
  if (command === 'diagnose') {
    const report = await diagnose(options);
    for (const line of report.summary) console.log(line);
    const best = report.recommended;
    console.log(best ? `recommended: port ${best.port}, security "${best.security}"` : 'no working set-up found');
    process.exit(best ? 0 : 1);
  }
  const client = createClient(options);
  try {
    if (command === 'verify') {
      console.log(JSON.stringify(await client.verify(), null, 2));
    } else if (command === 'send') {
      const message = values.raw
        ? { raw: readFileSync(values.raw), envelope: { from: values.from, to: values.to ?? [] } }
        : { from: values.from, to: values.to, subject: values.subject, text: values.text ?? '' };
      console.log(JSON.stringify(await client.send(message), null, 2));
    } else {
      console.error(`unknown command "${command}"\n\n${USAGE}`);
      process.exitCode = 2;
    }
  } finally {
    await client.close();
  }
} catch (error) {
  if (!(error instanceof SmtpError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
