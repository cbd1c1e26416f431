// What the two Cloudflare Workers entry points share: createClient and
// diagnose over `cloudflare:sockets`. The entries differ only in which wasm
// artifact they import as a module (workerd cannot compile wasm from bytes).

import { createClient as createClientWith } from './client.js';
import { diagnose as diagnoseWith } from './diagnose.js';
import { SmtpError } from './errors.js';
import { workersTransport } from './transports/workers.js';

/** Creates a client on Workers sockets; see index.d.ts. */
export function createClient(options) {
  checkNativeTls(options);
  return createClientWith(options, workersTransport);
}

/** Probes 465 / 587 / 25 (port 25 is blocked on Workers) and explains; see index.d.ts. */
export function diagnose(options) {
  checkNativeTls(options);
  return diagnoseWith(options, workersTransport);
}

/**
 * Workers' own TLS takes no per-connection trust settings: refuse them up
 * front rather than ignore them (the fix is TLS inside the engine).
 */
function checkNativeTls(options) {
  const tls = options?.tls;
  if (!tls || tls.engine === 'wasm' || options.transport) return;
  if (tls.minVersion === 'TLSv1.3') {
    throw SmtpError.input(
      "Workers sockets do not report the TLS version they negotiated, so tls.minVersion 'TLSv1.3' cannot be enforced.",
      'leave tls.minVersion out: TLS 1.2 or newer is always used.',
      'tls',
    );
  }
  const unsupported =
    tls.ca !== undefined ? 'tls.ca' : tls.rejectUnauthorized === false ? 'rejectUnauthorized: false' : tls.servername !== undefined ? 'tls.servername' : null;
  if (unsupported) {
    throw SmtpError.input(
      `Workers sockets do their own TLS and cannot take ${unsupported}.`,
      "import { createClient } from 'wasmtp/workers/tls' and set tls: { engine: 'wasm', ca } (or pin: 'AB:CD:…') to run TLS inside the engine over a raw socket.",
      'tls',
    );
  }
}

export { SmtpError, workersTransport };
