// diagnose(): tries the usual submission set-ups one after the other and
// reports what works and why not. Every verdict (codes, messages, hints)
// comes from the engine; this only runs the probes and orders the results.

import { createClient } from './client.js';
import { SmtpError } from './errors.js';

/** The set-ups tried, best first. */
export const DEFAULT_PROBES = Object.freeze([
  { port: 465, security: 'tls' },
  { port: 587, security: 'starttls' },
  { port: 25, security: 'opportunistic' },
]);

/** Short time-outs: a probe that hangs says enough. */
const PROBE_TIMEOUTS = { connect: 5000, tlsHandshake: 5000, greeting: 5000, command: 10000 };

/**
 * @param {object} options createClient options (host required; port and
 *   security are taken from each probe), plus `probes`.
 * @param {object} defaultTransport the runtime's transport
 */
export async function diagnose(options, defaultTransport) {
  const { probes = DEFAULT_PROBES, ...clientOptions } = options ?? {};
  const results = [];
  for (const { port, security } of probes) {
    const started = Date.now();
    const client = createClient(
      { ...clientOptions, port, security, timeouts: { ...PROBE_TIMEOUTS, ...clientOptions.timeouts }, onTranscript: undefined },
      defaultTransport,
    );
    try {
      const info = await client.verify();
      results.push({ port, security, ok: true, ms: Date.now() - started, ...info });
    } catch (error) {
      if (!(error instanceof SmtpError)) throw error;
      const { code, phase, detail, hint, reply, retryable } = error;
      results.push({ port, security, ok: false, ms: Date.now() - started, error: { code, phase, message: detail, hint, reply, retryable } });
    } finally {
      await client.close();
    }
  }
  const working = results.filter((r) => r.ok);
  // Prefer a verified TLS set-up; plaintext only when nothing else works.
  const best = working.find((r) => r.tls?.authorized) ?? working.find((r) => r.tls) ?? working[0] ?? null;
  return {
    host: clientOptions.host,
    results,
    recommended: best && { port: best.port, security: best.security },
    summary: results.map(describeResult),
  };
}

function describeResult(r) {
  const where = `${r.port} (${r.security})`;
  if (!r.ok) return `${where}: ${r.error.code}: ${r.error.message}${r.error.hint ? ` Hint: ${r.error.hint}` : ''}`;
  const tls = r.tls
    ? `${r.tls.version}, certificate ${r.tls.authorized ? 'verified' : 'NOT verified'}`
    : 'no TLS (plaintext)';
  const auth = r.authMethod ? `, AUTH ${r.authMethod}` : r.capabilities.auth.length ? `, offers AUTH ${r.capabilities.auth.join(' ')}` : '';
  return `${where}: OK, ${tls}${auth}`;
}
