#!/usr/bin/env node
// The wasmtp command line: send a message, verify a server's set-up, or
// diagnose which port and security mode work. A thin layer over the
// package's API: every SMTP decision (TLS, AUTH, pipelining, errors and their
// hints) is the engine's; this file only reads flags and prints.

import { generateKeyPairSync } from 'node:crypto';
import { accessSync, constants, createReadStream, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';

import { createClient, diagnose, SmtpError } from '../dist/index.js';
import { applyNetworkFlags, NETWORK_FLAGS, NETWORK_HELP } from './network-flags.js';

const PASSWORD_ENV = 'WASMTP_PASSWORD';

const USAGE = `wasmtp: send mail and check SMTP servers (an SMTP engine in Rust, compiled to WebAssembly).

usage:
  wasmtp send     --host H [connection options] --from A --to B [--to C ...]
                  [--subject S] [--text T] [--html H] [--attach FILE ...] [--header 'Name: value' ...]
                  [--cc A ...] [--bcc A ...] [--reply-to A]
  wasmtp send     --host H [connection options] --file message.eml --from A --to B [--to C ...]
                  (the message is sent as is; --from/--to are the envelope; --file - reads stdin)
  wasmtp verify   --host H [connection options]      connect, TLS, EHLO, AUTH, then QUIT
  wasmtp doctor   <host> [--port N ...] [--security MODE] [--user U] [--ca FILE] [--proxy URL] [--json] [-v] [--timeout MS]
                  probe 465, 587, 25 (and each --port) at once and explain what works, what does not and why;
                  --security applies to the --port ports. Exit status 1 when no working configuration is found.
  wasmtp doctor   --domain D [--selector S | --file signed.eml] [--dns SERVER|DOH-URL] [--ca FILE] [--client-name NAME] [--json]
                  the sending domain's MX, SPF, DMARC, DKIM, MTA-STS and TLS-RPT, whether port 25 is reachable
                  from here, and the verdict: relay or direct. Exit status 1 when a finding is an error.
                  (--mx-port N and --mta-sts-port N replace 25 and 443: for tests)
  wasmtp doctor   --web [--web-port N]                the same as a web page on 127.0.0.1 (needs websockify;
                  run from the wasmtp repository: it serves www/); --web-port 0 picks a free port
  wasmtp diagnose --host H ...                       the same as doctor
  wasmtp dkim keygen --domain D --selector S [--algorithm rsa|ed25519] [--bits 2048] [--out FILE]
                  write a new DKIM private key (PEM, mode 0600; default file S.D.pem, never overwritten)
                  and print the DNS TXT record to publish for it

DKIM signing for send:
  --dkim-key FILE        sign with this private key (PEM: PKCS#8 RSA or Ed25519, or PKCS#1 RSA)
  --dkim-selector S      its selector (the key is published at S._domainkey.DOMAIN); required with --dkim-key
  --dkim-domain D        the signing domain (default: the domain of --from)

connection options:
  --host H               the server (required)
  --port N               default: from --security (465 tls, 587 starttls, 25 otherwise); 587 if neither
  --security MODE        tls | starttls | opportunistic | none (default: from the port; starttls if neither)
  --user U               log in as U. The password comes from, in order:
                           --pass-env NAME   the environment variable NAME
                           $${PASSWORD_ENV}   when set
                           a prompt          on a terminal (not echoed)
  --pass P               the password on the command line: visible to other users in ps (a warning is printed)
  --token-env NAME       an OAuth 2.0 access token from the variable NAME (XOAUTH2 / OAUTHBEARER) instead of a password
  --auth-method M        PLAIN | LOGIN | CRAM-MD5 | XOAUTH2 | OAUTHBEARER (default: the best one offered)
  --ca FILE              also trust this CA certificate (PEM), e.g. a private or self-signed one
  --servername NAME      the name the certificate must match (default: --host)
  --insecure             do not verify the certificate (prefer --ca)
  --allow-insecure-auth  allow credentials over an unencrypted connection (local test servers only)
  --client-name NAME     the EHLO name (default: this machine's fully qualified name, else localhost)
${NETWORK_HELP}
  --timeout MS           give up on any step (connect, TLS, greeting, each reply) after MS milliseconds
  -v, --verbose          print the SMTP dialog on stderr (C: client, S: server, TLS: ...; secrets redacted;
                         doctor: each line with its explanation)
  --json                 print the result as JSON
  -h, --help             this help
  --version              the package version

exit status: 0 sent / verified, 1 the SMTP operation failed (the error code, message and hint
are printed on stderr), 2 wrong usage (a flag, or a value the engine refuses: EINPUT).

examples:
  WASMTP_PASSWORD=secret npx wasmtp send --host smtp.example.com --user me@example.com \\
      --from me@example.com --to you@example.org --subject Hi --text 'Hello' -v
  npx wasmtp verify --host localhost --port 2525 --security starttls --ca ca.pem
  npx wasmtp doctor smtp.example.com --port 2525 --user me@example.com
  npx wasmtp send --host localhost --port 2525 --security none --file message.eml --from a@example.com --to b@example.org
  npx wasmtp dkim keygen --domain example.com --selector mail2026 --algorithm ed25519`;

const OPTIONS = {
  host: { type: 'string' },
  port: { type: 'string', multiple: true },
  security: { type: 'string' },
  user: { type: 'string' },
  pass: { type: 'string' },
  'pass-env': { type: 'string' },
  'token-env': { type: 'string' },
  'auth-method': { type: 'string' },
  ca: { type: 'string' },
  servername: { type: 'string' },
  insecure: { type: 'boolean' },
  'allow-insecure-auth': { type: 'boolean' },
  'client-name': { type: 'string' },
  from: { type: 'string' },
  to: { type: 'string', multiple: true },
  cc: { type: 'string', multiple: true },
  bcc: { type: 'string', multiple: true },
  'reply-to': { type: 'string' },
  subject: { type: 'string' },
  text: { type: 'string' },
  html: { type: 'string' },
  attach: { type: 'string', multiple: true },
  header: { type: 'string', multiple: true },
  file: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
  web: { type: 'boolean' },
  'web-port': { type: 'string' },
  timeout: { type: 'string' },
  domain: { type: 'string' },
  selector: { type: 'string' },
  algorithm: { type: 'string' },
  bits: { type: 'string' },
  out: { type: 'string' },
  'dkim-key': { type: 'string' },
  'dkim-selector': { type: 'string' },
  'dkim-domain': { type: 'string' },
  dns: { type: 'string' },
  'mx-port': { type: 'string' },
  'mta-sts-port': { type: 'string' },
  ...NETWORK_FLAGS,
};

/** A mistake in the command line: printed with a pointer to --help, exit status 2. */
class UsageError extends Error {}

async function main(argv) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true });
  } catch (error) {
    throw new UsageError(error.message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.version) {
    console.log(JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version);
    return 0;
  }
  const [command, ...extra] = positionals;
  if (!command) throw new UsageError('no command: use send, verify, doctor or dkim.');
  if (!['send', 'verify', 'diagnose', 'doctor', 'dkim'].includes(command)) throw new UsageError(`unknown command "${command}": use send, verify, doctor or dkim.`);
  if (command === 'dkim') return runDkim(values, extra);
  if (command === 'doctor' && values.domain !== undefined) return runDomainDoctor(values, extra);
  const domainOnly = ['selector', 'dns', 'mx-port', 'mta-sts-port'].find((k) => values[k] !== undefined);
  if (domainOnly && command === 'doctor') throw new UsageError(`--${domainOnly} belongs to wasmtp doctor --domain D.`);
  const keygenOnly = ['domain', 'selector', 'algorithm', 'bits', 'out'].find((k) => values[k] !== undefined);
  if (keygenOnly) throw new UsageError(`--${keygenOnly} belongs to wasmtp dkim keygen${command === 'send' ? ` (for signing: --dkim-${keygenOnly === 'domain' || keygenOnly === 'selector' ? keygenOnly : 'key'})` : ''}.`);
  const dkimFlag = ['dkim-key', 'dkim-selector', 'dkim-domain'].find((k) => values[k] !== undefined);
  if (dkimFlag && command !== 'send') throw new UsageError(`--${dkimFlag} is for send.`);
  if (command === 'doctor' && values.web) return runDoctorWeb(values, extra);
  if (command === 'doctor' && extra.length > 0) {
    if (values.host !== undefined) throw new UsageError('give the host once: wasmtp doctor <host>.');
    values.host = extra.shift();
  }
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}" (flags start with --).`);
  // Checked before anything starts (the doctor prints progress once it probes).
  if (values.security !== undefined && !SECURITY_MODES.includes(values.security)) {
    throw new UsageError(`--security ${values.security} is not a security mode: use ${SECURITY_MODES.join(', ')}.`);
  }
  if (values['auth-method'] !== undefined && !AUTH_METHODS.includes(values['auth-method'].toUpperCase())) {
    throw new UsageError(`--auth-method ${values['auth-method']} is not known: use ${AUTH_METHODS.join(', ')}.`);
  }
  const timeouts = parseTimeout(values.timeout);
  if (!values.host) throw new UsageError(command === 'doctor' ? 'which host? wasmtp doctor <host>' : '--host is required.');
  const ports = (values.port ?? []).map(parsePort);
  if (ports.length > 1 && command !== 'doctor' && command !== 'diagnose') throw new UsageError('give --port once.');
  values.port = ports.length > 0 ? String(ports.at(-1)) : undefined;

  // Usage mistakes in the message are reported before asking for a password.
  const message = command === 'send' ? buildMessage(values) : undefined;
  const dkim = command === 'send' ? dkimOption(values) : undefined;
  const options = await clientOptions(values, command);
  if (dkim) options.dkim = dkim;
  if (command === 'diagnose' || command === 'doctor') return runDoctor(options, values, ports, timeouts);
  if (timeouts) options.timeouts = { ...timeouts, dataEnd: timeouts.command };
  const client = createClient(options);
  try {
    if (command === 'verify') return printVerify(await client.verify(), options, values);
    // Printed as soon as the server's final reply is in, before QUIT: a user
    // who stops the program during QUIT knows the message went.
    return printSent(await client.send(message), values);
  } finally {
    await client.close();
  }
}

const SECURITY_MODES = ['tls', 'starttls', 'opportunistic', 'none'];
const AUTH_METHODS = ['PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2', 'OAUTHBEARER'];

/** --timeout MS: one limit for every step; undefined keeps the defaults. */
function parseTimeout(text) {
  if (text === undefined) return undefined;
  const ms = Number(text);
  if (!/^\d+$/.test(text) || ms < 1 || ms > 2 ** 31 - 1) throw new UsageError(`--timeout ${text} is not a number of milliseconds.`);
  return { connect: ms, tlsHandshake: ms, greeting: ms, command: ms };
}

async function clientOptions(values, command) {
  let port;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port < 1 || port > 65535) throw new UsageError(`--port ${values.port} is not a TCP port.`);
  }
  const options = {
    host: values.host,
    port,
    security: values.security,
    allowInsecureAuth: values['allow-insecure-auth'] === true,
    clientName: values['client-name'],
  };
  if (values.ca !== undefined || values.servername !== undefined || values.insecure) {
    options.tls = { servername: values.servername };
    if (values.ca !== undefined) options.tls.ca = readText(values.ca, '--ca');
    if (values.insecure) {
      warn('--insecure: the server certificate is not verified; anyone on the path can read the dialog. Prefer --ca FILE.');
      options.tls.rejectUnauthorized = false;
    }
  }
  applyNetworkFlags(options, values, (text) => new UsageError(text));
  options.auth = await credentials(values, command);
  if (values.verbose && command !== 'diagnose' && command !== 'doctor') {
    const where = `${values.host}${port ? `:${port}` : ''}`;
    console.error(`=== connecting to ${where}${values.security ? ` (security: ${values.security})` : ''}`);
    options.onTranscript = printTranscriptLine;
  }
  return options;
}

/** `auth` from --user and the password / token sources; undefined without --user. */
async function credentials(values, command) {
  const sources = ['pass', 'pass-env', 'token-env'].filter((k) => values[k] !== undefined);
  if (!values.user) {
    if (sources.length > 0) throw new UsageError(`--${sources[0]} needs --user.`);
    return undefined;
  }
  if (sources.length > 1) throw new UsageError(`use only one of --pass, --pass-env and --token-env (got --${sources.join(', --')}).`);
  const method = values['auth-method'];
  if (values['token-env'] !== undefined) {
    const accessToken = fromEnv(values['token-env'], '--token-env');
    return { user: values.user, accessToken, method };
  }
  if (values.pass !== undefined) {
    warn(`--pass puts the password in the process list (ps) and the shell history; prefer ${PASSWORD_ENV}=... or --pass-env NAME.`);
    return { user: values.user, pass: values.pass, method };
  }
  if (values['pass-env'] !== undefined) return { user: values.user, pass: fromEnv(values['pass-env'], '--pass-env'), method };
  if (process.env[PASSWORD_ENV] !== undefined) return { user: values.user, pass: process.env[PASSWORD_ENV], method };
  if (process.stdin.isTTY && values.file !== '-') {
    const pass = await promptHidden(`Password for ${values.user} at ${values.host}: `);
    return { user: values.user, pass, method };
  }
  if (command === 'diagnose' || command === 'doctor') return undefined; // the doctor still reports what the server offers
  throw new UsageError(
    `--user ${values.user} needs a password: set ${PASSWORD_ENV}, pass --pass-env NAME, or run in a terminal to be asked for it.`,
  );
}

function fromEnv(name, flag) {
  const value = process.env[name];
  if (value === undefined || value === '') throw new UsageError(`${flag} ${name}: the environment variable ${name} is not set.`);
  return value;
}

/** Reads a line from the terminal without echoing it. */
function promptHidden(question) {
  return new Promise((resolve, reject) => {
    const input = process.stdin;
    // Echo off before the prompt shows: a reply typed (or pasted) as soon as
    // it appears must not be echoed.
    input.setRawMode(true);
    process.stderr.write(question);
    input.setEncoding('utf8');
    input.resume();
    let value = '';
    const finish = (error) => {
      input.off('data', onData);
      input.setRawMode(false);
      input.pause();
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    function onData(chunk) {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
        if (ch === '\u0003') return finish(new UsageError('interrupted.'));
        if (ch === '\u007f' || ch === '\b') value = Array.from(value).slice(0, -1).join('');
        else value += ch;
      }
    }
    input.on('data', onData);
  });
}

/** The message for `send`: raw from --file (with the envelope from --from / --to), or built from the flags. */
function buildMessage(values) {
  if (!values.from) throw new UsageError('send needs --from.');
  const to = values.to ?? [];
  if (values.file !== undefined) {
    const structured = ['subject', 'text', 'html', 'attach', 'header', 'cc', 'bcc', 'reply-to'].filter((k) => values[k] !== undefined);
    if (structured.length > 0) throw new UsageError(`--file sends the message as is; --${structured[0]} cannot be combined with it.`);
    if (to.length === 0) throw new UsageError('--file needs the envelope recipients: --to B [--to C ...].');
    const raw = values.file === '-' ? Readable.toWeb(process.stdin) : readBytes(values.file, '--file');
    return { raw, envelope: { from: values.from, to } };
  }
  if (to.length === 0 && !values.cc && !values.bcc) throw new UsageError('send needs at least one --to (or --cc / --bcc).');
  return {
    from: values.from,
    to,
    cc: values.cc,
    bcc: values.bcc,
    replyTo: values['reply-to'],
    subject: values.subject,
    text: values.text ?? (values.html === undefined ? '' : undefined),
    html: values.html,
    headers: (values.header ?? []).map(parseHeader),
    attachments: (values.attach ?? []).map((path) => {
      checkReadable(path, '--attach'); // a clear message now rather than a stream error mid-send
      return { filename: basename(path), content: createReadStream(path) };
    }),
  };
}

function parseHeader(text) {
  const colon = text.indexOf(':');
  if (colon <= 0) throw new UsageError(`--header "${text}" is not "Name: value".`);
  return [text.slice(0, colon).trim(), text.slice(colon + 1).trim()];
}

function readBytes(path, flag) {
  try {
    return readFileSync(path);
  } catch (error) {
    throw fileError(path, flag, error);
  }
}

function checkReadable(path, flag) {
  try {
    accessSync(path, constants.R_OK);
    if (!statSync(path).isFile()) throw Object.assign(new Error('not a file'), { code: 'EISDIR' });
  } catch (error) {
    throw fileError(path, flag, error);
  }
}

function fileError(path, flag, error) {
  const why = error.code === 'ENOENT' ? 'no such file' : error.code === 'EISDIR' ? 'not a file' : error.message;
  return new UsageError(`${flag} ${path}: ${why}.`);
}

function readText(path, flag) {
  return readBytes(path, flag).toString('utf8');
}

// ----- DKIM

/** createClient's dkim option from --dkim-key, --dkim-selector and --dkim-domain (undefined without --dkim-key). */
function dkimOption(values) {
  const key = values['dkim-key'];
  if (key === undefined) {
    if (values['dkim-selector'] !== undefined || values['dkim-domain'] !== undefined) throw new UsageError('--dkim-selector and --dkim-domain need --dkim-key FILE.');
    return undefined;
  }
  const selector = values['dkim-selector'];
  if (!selector) throw new UsageError('--dkim-key needs --dkim-selector S (the key is published at S._domainkey.DOMAIN).');
  let domain = values['dkim-domain'];
  if (domain === undefined) {
    domain = /@([^@<>\s]+)>?\s*$/.exec(values.from ?? '')?.[1];
    if (!domain) throw new UsageError('no signing domain: --from has none; pass --dkim-domain D.');
  }
  return { domain, selector, privateKey: readText(key, '--dkim-key') };
}

/** `wasmtp dkim keygen`: a new key in a 0600 file, and the TXT record for it. */
function runDkim(values, extra) {
  const [sub, ...rest] = extra;
  if (sub !== 'keygen') throw new UsageError(sub ? `unknown dkim command "${sub}": use wasmtp dkim keygen.` : 'which dkim command? wasmtp dkim keygen --domain D --selector S');
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}" (flags start with --).`);
  const { domain, selector } = values;
  const label = /^[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
  if (!domain || !domain.split('.').every((l) => label.test(l))) throw new UsageError('--domain is required and must be a domain name in ASCII (an internationalised domain in its xn-- form).');
  if (!selector || !selector.split('.').every((l) => label.test(l))) throw new UsageError(`--selector is required and must be DNS labels, like mail2026.`);
  const algorithm = values.algorithm ?? 'rsa';
  if (!['rsa', 'ed25519'].includes(algorithm)) throw new UsageError(`--algorithm ${algorithm}: use rsa or ed25519.`);
  let bits = 2048;
  if (values.bits !== undefined) {
    if (algorithm !== 'rsa') throw new UsageError('--bits is for RSA keys.');
    bits = Number(values.bits);
    if (!/^\d+$/.test(values.bits) || bits < 1024 || bits > 4096) throw new UsageError(`--bits ${values.bits}: use 1024 to 4096 (2048 is the usual choice).`);
  }
  const { privateKey, publicKey } = algorithm === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: bits }) : generateKeyPairSync('ed25519');
  const pem = privateKey.export({ type: 'pkcs8', format: 'pem' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  // RSA publishes the SubjectPublicKeyInfo; Ed25519 the bare 32-byte key (RFC 8463 §4.2).
  const p = (algorithm === 'rsa' ? spki : spki.subarray(spki.length - 32)).toString('base64');
  const out = values.out ?? `${selector}.${domain}.pem`;
  try {
    writeFileSync(out, pem, { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if (error.code === 'EEXIST') throw new UsageError(`${out} exists; a key is never overwritten: pass another --out FILE.`);
    throw new UsageError(`cannot write ${out}: ${error.message}.`);
  }
  const name = `${selector}._domainkey.${domain}`;
  const value = `v=DKIM1; k=${algorithm}; p=${p}`;
  if (values.json) {
    console.log(JSON.stringify({ keyFile: out, algorithm, bits: algorithm === 'rsa' ? bits : 256, name, type: 'TXT', value }, null, 2));
    return 0;
  }
  // A TXT string holds at most 255 octets: longer values are split (DNS joins them).
  const strings = value.match(/.{1,255}/g).map((part) => `"${part}"`);
  console.log(`private key written to ${out} (mode 0600; keep it secret)`);
  console.log('');
  console.log('publish this DNS record:');
  console.log(`${name}. IN TXT ( ${strings.join('\n    ')} )`);
  console.log('');
  console.log(`then send with: wasmtp send --dkim-key ${out} --dkim-selector ${selector} --dkim-domain ${domain} ...`);
  console.log(`or in code:     dkim: { domain: '${domain}', selector: '${selector}', privateKey: readFileSync('${out}', 'utf8') }`);
  return 0;
}

// ----- output

function printTranscriptLine({ dir, text }) {
  const prefix = dir === 'tls' ? 'TLS:' : `${dir}:`;
  console.error(`${prefix} ${text}`);
}

function printSent(result, values) {
  if (values.json) {
    console.log(JSON.stringify(result, null, 2));
    return 0;
  }
  console.log(`sent ${result.messageId ?? '(no Message-ID)'}`);
  console.log(`accepted: ${result.accepted.join(', ')}`);
  for (const r of result.rejected) {
    console.log(`rejected: ${r.address}: ${r.code}${r.enhancedCode ? ` ${r.enhancedCode}` : ''} ${r.message}`);
  }
  console.log(`server: ${result.response}`);
  return 0;
}

function printVerify(info, options, values) {
  if (values.json) {
    console.log(JSON.stringify(info, null, 2));
    return 0;
  }
  const tls = info.tls
    ? `${info.tls.version}${info.tls.cipher ? ` ${info.tls.cipher}` : ''}, certificate ${info.tls.authorized ? 'verified' : 'NOT verified'}`
    : 'no TLS (plaintext)';
  const auth = info.authMethod ? `AUTH ${info.authMethod} accepted` : info.capabilities.auth.length ? `offers AUTH ${info.capabilities.auth.join(' ')}` : 'no AUTH';
  console.log(`OK ${options.host}: ${tls}; ${auth}`);
  console.log(`greeting: ${info.greeting}`);
  console.log(`extensions: ${info.capabilities.extensions.join(', ')}`);
  return 0;
}

function parsePort(text) {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 1 || port > 65535) throw new UsageError(`--port ${text} is not a TCP port.`);
  return port;
}

// ----- doctor

const SYMBOL = { ok: '✓', info: 'ℹ', warning: '⚠', error: '✗' };

/** `wasmtp doctor <host>`: progress on stderr, the report on stdout; exit 1 when nothing works. */
async function runDoctor(options, values, ports, timeouts) {
  const { onTranscript: _, port: __, security, ...rest } = options;
  const err = process.stderr;
  err.write(`wasmtp doctor: probing ${options.host}…\n`);
  const report = await diagnose({
    ...rest,
    ports: ports.map((port) => ({ port, security })),
    timeouts,
    onProgress(p) {
      const where = `${p.port} (${p.security})`;
      if (p.stage === 'start') err.write(`  … ${where}\n`);
      else err.write(`  ${p.error && p.reachable !== 'open' ? SYMBOL.error : SYMBOL.ok} ${where}: ${p.reachable === 'open' ? 'answered' : p.reachable}${p.error ? ` (${p.error})` : ''}, ${p.ms} ms\n`);
    },
    onTranscript: values.verbose
      ? ({ port, dir, text, note }) => err.write(`  [${port}] ${dir === 'tls' ? 'TLS' : dir}: ${text}    # ${note}\n`)
      : undefined,
  });
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else console.log(formatReport(report, values));
  return report.ok ? 0 : 1;
}

/** The report for a person: per port what was found, the findings with their hints, the verdict. */
function formatReport(report, values = {}) {
  const out = [];
  const line = (text = '') => out.push(text);
  const field = (name, text) => line(`    ${name.padEnd(13)} ${text}`);
  line(`wasmtp doctor: ${report.host}`);
  for (const p of report.ports) {
    line();
    if (p.reachable !== 'open') {
      line(`  ${SYMBOL.error} port ${p.port} (${p.security}): ${REACH[p.reachable] ?? p.reachable}`);
      continue;
    }
    line(`  port ${p.port} (${p.security}): TCP open in ${p.connectMs} ms, probe ${p.ms} ms`);
    if (p.greeting) field('greeting', p.greeting);
    if (p.extensionsBeforeTls) field('EHLO', p.extensionsBeforeTls.join(', '));
    if (p.tls) {
      const verified = p.tls.authorized ? 'certificate verified' : `certificate NOT verified (${p.tls.authorizationError ?? 'unknown reason'})`;
      field('TLS', `${p.tls.version}${p.tls.cipher ? ` ${p.tls.cipher}` : ''}, ${verified}`);
    }
    const c = p.certificate;
    if (c) {
      field('certificate', `${c.subject}${c.selfSigned ? ' (self-signed)' : ''}`);
      field('', `names: ${c.altNames.join(', ') || '(none)'} (${c.nameMatches ? 'match' : 'do NOT match'} ${report.host})`);
      field('', `issuer: ${c.issuer}`);
      field('', `valid: ${c.validFrom} → ${c.validTo}${c.expired ? ' (EXPIRED or not yet valid)' : ''}`);
      field('', `SHA-256: ${c.fingerprint256}`);
    }
    if (p.extensions) field(p.tls ? 'EHLO over TLS' : 'EHLO', p.extensions.join(', ') || '(none)');
    if (p.auth.offered.length > 0) field('AUTH', `${p.auth.offered.join(' ')} (wasmtp can use: ${p.auth.usable.join(', ') || 'none'})`);
    field('login', p.auth.loginText);
    if (p.error && !['EAUTH', 'EAUTH_INSECURE', 'EAUTH_UNSUPPORTED'].includes(p.error.code)) field('ended with', `${p.error.code}: ${p.error.message}`);
  }
  line();
  line('findings:');
  for (const f of report.findings) {
    line(`  ${SYMBOL[f.severity]} ${String(f.port ?? 'all').padEnd(6)} ${f.code}: ${f.message}`);
    if (f.hint) {
      // The doctor never suggests --allow-insecure-auth: its hints name it only to warn.
      const flags = flagsFor(f.fix.filter(({ option }) => option !== 'allowInsecureAuth'));
      line(`           → ${f.hint}${flags.length > 0 ? ` (command line: ${flags.join(', ')})` : ''}`);
    }
  }
  line();
  const r = report.recommended;
  if (r) {
    const ca = r.needsCa ? ' --ca FILE' : '';
    line(`verdict: ${r.needsCa ? SYMBOL.warning : SYMBOL.ok} use port ${r.port} with security '${r.security}': ${r.reason}`);
    line(`         wasmtp send --host ${report.host} --port ${r.port} --security ${r.security}${ca}${values.user ? ` --user ${values.user}` : ''} ...`);
  } else {
    line(`verdict: ${SYMBOL.error} no working configuration found (see the findings above).`);
  }
  return out.join('\n');
}

const REACH = {
  refused: 'refused: nothing listens there',
  timeout: 'no answer: the connection timed out',
  unresolved: 'the host name does not resolve',
  failed: 'could not connect',
};

/** `wasmtp doctor --domain D`: the domain's records, findings and the verdict; exit 1 when a finding is an error. */
async function runDomainDoctor(values, extra) {
  if (extra.length > 0 || values.host !== undefined) throw new UsageError('give either a host (wasmtp doctor <host>) or --domain D, not both.');
  const allowed = new Set(['domain', 'selector', 'file', 'dns', 'ca', 'json', 'timeout', 'mx-port', 'mta-sts-port', 'client-name', 'verbose']);
  const other = Object.keys(values).find((k) => values[k] !== undefined && !allowed.has(k));
  if (other) throw new UsageError(`--${other} is not an option of wasmtp doctor --domain.`);
  if (values.selector !== undefined && values.file !== undefined) throw new UsageError('give --selector or --file (a signed message), not both.');
  const options = { domain: values.domain, selector: values.selector };
  if (values.file !== undefined) options.message = values.file === '-' ? readFileSync(0) : readFileSync(values.file);
  if (values.dns !== undefined) options.dns = /^https?:/.test(values.dns) ? { doh: values.dns } : { servers: values.dns.split(',') };
  if (values.ca !== undefined) options.tls = { ca: readText(values.ca, '--ca') };
  if (values['mx-port'] !== undefined) options.mxPort = parsePort(values['mx-port']);
  if (values['mta-sts-port'] !== undefined) options.mtaStsPort = parsePort(values['mta-sts-port']);
  if (values['client-name'] !== undefined) options.clientName = values['client-name'];
  const timeouts = parseTimeout(values.timeout);
  if (timeouts) options.timeouts = { connect: timeouts.connect };
  const err = process.stderr;
  err.write(`wasmtp doctor: looking up ${values.domain}…\n`);
  if (values.verbose) options.onProgress = (p) => err.write(`  … ${p.stage === 'dns' ? `${p.type} ${p.name}` : p.stage === 'port25' ? `port ${p.port} of ${p.host}` : p.url}\n`);
  const report = await diagnose(options);
  if (values.json) console.log(JSON.stringify(report, null, 2));
  else {
    const out = [`wasmtp doctor: the domain ${report.domain}`, '', 'findings:'];
    for (const f of report.findings) {
      out.push(`  ${SYMBOL[f.severity]} ${f.code}: ${f.message}`);
      if (f.hint) out.push(`      → ${f.hint}`);
    }
    out.push('', `verdict: ${report.verdict.mode}: ${report.verdict.reason}`);
    console.log(out.join('\n'));
  }
  return report.ok ? 0 : 1;
}

/** `wasmtp doctor --web`: the page and the bridge, until Ctrl-C. */
async function runDoctorWeb(values, extra) {
  if (extra.length > 0) throw new UsageError('--web takes no host: the page asks for it.');
  let port = 8025;
  if (values['web-port'] !== undefined) {
    port = Number(values['web-port']);
    // 0: any free port (the page's address is printed).
    if (!/^\d+$/.test(values['web-port']) || port > 65535) throw new UsageError(`--web-port ${values['web-port']} is not a TCP port (0 picks a free one).`);
  }
  const serve = new URL('../../www/serve.mjs', import.meta.url);
  let web;
  try {
    web = await import(serve.href);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND') throw error;
    throw new UsageError('--web serves the page in www/ of the wasmtp repository, which is not part of the npm package: run it from a checkout.');
  }
  await web.serveUntilInterrupted({ port });
  return 0;
}

function warn(text) {
  console.error(`wasmtp: warning: ${text}`);
}

/** The flags that set the options an error's or a finding's `fix` names. */
function flagsFor(fix = []) {
  const FLAG = {
    security: (value) => `--security ${value}`,
    port: (value) => `--port ${value}`,
    'tls.ca': () => '--ca FILE',
    'tls.servername': () => '--servername NAME',
    allowInsecureAuth: () => '--allow-insecure-auth',
  };
  return fix.filter(({ option }) => option in FLAG).map(({ option, value }) => FLAG[option](value));
}

/** Prints an error for a person; returns the exit status. */
function report(error) {
  if (error instanceof UsageError) {
    console.error(`wasmtp: ${error.message}\nRun "wasmtp --help" for the options.`);
    return 2;
  }
  // EINPUT: a value from the command line the engine refused (an address,
  // a header...): a usage mistake too.
  const usage = error instanceof SmtpError && error.code === 'EINPUT';
  if (error instanceof SmtpError) {
    console.error(`wasmtp: ${error.code} (${error.phase}): ${error.detail}`);
    if (error.hint) {
      console.error(`hint: ${error.hint}`);
      const flags = flagsFor(error.fix);
      if (flags.length > 0) console.error(`on the command line: ${flags.join(', ')}`);
    }
    if (error.deliveryState === 'unknown') {
      console.error('note: the connection ended after the message data and before the reply; the message may have been delivered.');
    }
    return usage ? 2 : 1;
  }
  console.error(`wasmtp: internal error: ${error?.stack ?? error}`);
  return 70;
}

// Last, so that every declaration above is initialised.
try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  process.exitCode = report(error);
}
