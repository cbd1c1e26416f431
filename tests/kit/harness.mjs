// What every fail-safe test shares: the package under test, the test CA,
// the test credentials and the secret scanner, client options with short
// time-outs, and checks on SmtpError.
//
// The secret scanner: every transcript line (onTranscript), every error
// (message, hint, reply, transcript, stack), every result, everything this
// process writes to stdout/stderr and the output of child processes is
// collected; `useSecretScanner()` adds an `after` hook that fails the test
// file if the test password or token appears anywhere, also base64-encoded
// (AUTH PLAIN / LOGIN / XOAUTH2 / OAUTHBEARER payloads).

import assert from 'node:assert/strict';
import { after } from 'node:test';

import { createClient, SmtpError } from '../../pkg/src/index.js';
import { testCertificates } from '../../pkg/test/helpers/certs.js';

export { createClient, SmtpError };

import { CLIENT_SECRET, FRESH_TOKEN, PASSWORD, REFRESH_TOKEN, TOKEN, USER, findSecrets } from './secrets.mjs';

export { CLIENT_SECRET, FRESH_TOKEN, PASSWORD, REFRESH_TOKEN, TOKEN, USER, findSecrets };
export const CLIENT_NAME = 'client.test';

export const CODES = new Set([
  'ECONNECT', 'ETIMEDOUT', 'ETLS', 'ECERT', 'ETLS_PORT_MISMATCH', 'ESTARTTLS_UNAVAILABLE', 'EAUTH',
  'EAUTH_UNSUPPORTED', 'EAUTH_INSECURE', 'EENVELOPE', 'ERECIPIENTS', 'EMESSAGE', 'ESIZE', 'EUTF8',
  'EPROTOCOL', 'ECLOSED', 'EINPUT',
]);
export const PHASES = new Set(['connect', 'tls', 'greeting', 'ehlo', 'starttls', 'auth', 'mail', 'rcpt', 'data', 'quit']);

/** The test CA (PEM) that signed the fake server's certificate (localhost, 127.0.0.1). */
export const ca = () => testCertificates().ca;

// ----- the secret scanner ----------------------------------------------------

class SecretScanner {
  /** { source, text } */
  #seen = [];
  #hooked = false;

  add(source, text) {
    if (text === undefined || text === null) return;
    this.#seen.push({ source, text: String(text) });
  }

  /** An onTranscript callback that records every line. */
  transcript(source = 'onTranscript') {
    return (line) => this.add(source, `${line.dir}: ${line.text}`);
  }

  /** Records everything an error carries. */
  error(err, source = 'error') {
    if (!err || typeof err !== 'object') return this.add(source, err);
    this.add(`${source}.message`, err.message);
    this.add(`${source}.hint`, err.hint);
    this.add(`${source}.detail`, err.detail);
    this.add(`${source}.stack`, err.stack);
    if (err.reply) this.add(`${source}.reply`, JSON.stringify(err.reply));
    for (const line of err.transcript ?? []) this.add(`${source}.transcript`, `${line.dir}: ${line.text}`);
    try {
      this.add(`${source}.json`, JSON.stringify(err));
    } catch {}
  }

  value(value, source = 'result') {
    try {
      this.add(source, JSON.stringify(value));
    } catch {
      this.add(source, String(value));
    }
  }

  /** Also scans whatever this process prints. */
  hookOutput() {
    if (this.#hooked) return;
    this.#hooked = true;
    for (const name of ['stdout', 'stderr']) {
      const stream = process[name];
      const write = stream.write.bind(stream);
      stream.write = (chunk, ...rest) => {
        this.add(`process.${name}`, Buffer.isBuffer(chunk) ? chunk.toString('latin1') : chunk);
        return write(chunk, ...rest);
      };
    }
  }

  get count() {
    return this.#seen.length;
  }

  /** Findings: where a secret appeared (the secret itself masked). */
  leaks() {
    return this.#seen.flatMap(({ source, text }) => findSecrets(text).map((how) => `${source}: ${how}`));
  }

  assertClean() {
    const leaks = this.leaks();
    assert.deepEqual(leaks, [], `a test secret appeared in ${leaks.length} place(s) of ${this.#seen.length} scanned`);
  }
}

export const scanner = new SecretScanner();

/** Fails the test file (an `after` hook) if any secret was seen. Call once at the top of a test file. */
export function useSecretScanner() {
  scanner.hookOutput();
  after(() => {
    scanner.assertClean();
  });
  // A safety net: once a file's tests are over, nothing may keep the process
  // alive (a leaked socket or timer would hang the whole run).
  after(() => {
    setTimeout(() => {
      process.stderr.write('[fail-safe kit] the test process was still alive 10 s after its tests ended: exiting\n');
      process.exit(process.exitCode || 1);
    }, 10_000).unref();
  });
}

// ----- clients -------------------------------------------------------------------

/** Time-outs for tests whose server stalls: short, but far above loopback latency under load. */
export const SHORT_TIMEOUTS = Object.freeze({ connect: 2500, tlsHandshake: 2500, greeting: 2500, command: 2500, dataEnd: 2500 });

/**
 * A client for the fake server on `port`, with the transcript going to the
 * scanner (and to `lines`, if given).
 */
export function client(port, { lines, ...options } = {}) {
  const toScanner = scanner.transcript();
  return createClient({
    host: '127.0.0.1',
    port,
    clientName: CLIENT_NAME,
    tls: { ca: ca() },
    ...options,
    onTranscript: (line) => {
      toScanner(line);
      lines?.push(line);
      options.onTranscript?.(line);
    },
  });
}

export const passwordAuth = Object.freeze({ user: USER, pass: PASSWORD });
export const tokenAuth = Object.freeze({ user: USER, accessToken: TOKEN });

/** A small raw message. */
export function rawMessage(to = ['bob@example.org'], body = 'Subject: test\r\n\r\nhello\r\n') {
  return { raw: body, envelope: { from: 'ann@example.com', to } };
}

/**
 * Settles `promise` within `ms` (a hang fails the test with `what`).
 * Resolves { ok: true, value } or { ok: false, error }; both go to the scanner.
 */
export async function settle(promise, what = 'the operation', ms = 20_000) {
  let timer;
  const hang = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms (hang)`)), ms);
  });
  try {
    const value = await Promise.race([promise, hang]);
    scanner.value(value);
    return { ok: true, value };
  } catch (error) {
    if (error?.message?.includes('(hang)')) throw error;
    scanner.error(error);
    return { ok: false, error };
  } finally {
    clearTimeout(timer);
  }
}

/** Asserts `promise` rejects with an SmtpError matching `expected` (fields compared when given); returns it. */
export async function rejectsWith(promise, expected, what) {
  const outcome = await settle(promise, what);
  assert.equal(outcome.ok, false, `${what ?? 'the operation'} should have failed but resolved with ${JSON.stringify(outcome.value)}`);
  const err = outcome.error;
  assertSmtpError(err);
  for (const [key, value] of Object.entries(expected)) {
    const actual = key === 'replyCode' ? err.reply?.code : err[key];
    if (value instanceof RegExp) assert.match(String(actual), value, `${what}: ${key} (${err.message})`);
    else if (Array.isArray(value)) assert.ok(value.includes(actual), `${what}: ${key} is ${actual}, expected one of ${value} (${err.message})`);
    else assert.equal(actual, value, `${what}: ${key} (${err.message})`);
  }
  return err;
}

/** The contract's shape of an SmtpError: a known code and phase, a delivery state, a readable message. */
export function assertSmtpError(err) {
  assert.ok(err instanceof SmtpError, `expected an SmtpError, got ${err?.stack ?? err}`);
  assert.ok(CODES.has(err.code), `unknown code ${err.code}`);
  assert.ok(PHASES.has(err.phase), `unknown phase ${err.phase}`);
  assert.ok(['not-sent', 'unknown'].includes(err.deliveryState), `deliveryState ${err.deliveryState}`);
  assert.equal(typeof err.retryable, 'boolean');
  assert.ok(err.message.startsWith(`${err.code} (${err.phase}): `), err.message);
  assert.ok(err.detail && err.detail.length > 10, `a message a person can read: ${err.message}`);
}

/** Milliseconds since `start` (performance.now()). */
export const since = (start) => Math.round(performance.now() - start);
