// The options of createClient({ mx: true }): what is refused with it and
// why, `mx: { port, policyPort }`, the security modes that apply. The rest
// (tls, timeouts, clientName, dkim...) is checked by the relay client's own
// rules, once, before anything is resolved or connected.

import { createClient as createRelayClient } from '../client.js';
import { createResolver } from '../dns/index.js';
import { SmtpError } from '../errors.js';
import { absent, checkKeys, isObject } from '../strict.js';

/** Keys of `mx` when it is an object (both for tests, or providers on other ports). */
const MX_KEYS = Object.freeze(['port', 'policyPort']);
/** createClient keys that make no sense with mx: true, and why. */
const RELAY_ONLY = Object.freeze({
  host: 'with mx: true the hosts are the recipient domains\' MX records; leave host out (or leave mx out to use a relay).',
  port: 'with mx: true the port is 25 (mx: { port } changes it, for tests or providers that use another port).',
  auth: 'MX hosts take mail for their own domains without AUTH; leave auth out, or use a relay (host, port, auth) without mx.',
  lmtp: 'LMTP is for a local delivery agent, not for MX hosts.',
  pool: 'with mx: true one connection is opened per domain and host; pool does not apply.',
});
const SECURITIES = Object.freeze(['opportunistic', 'starttls']);

/** { rest (the relay client's options), dns, port, policyPort, security }; EINPUT for a mistake. */
export function normalizeMxOptions(options) {
  const { mx, dns, ...rest } = options;
  for (const [key, why] of Object.entries(RELAY_ONLY)) {
    if (!absent(rest[key])) throw SmtpError.input(`\`${key}\` cannot be combined with mx: true.`, why, 'connect');
  }
  let port = 25;
  let policyPort = 443;
  if (isObject(mx)) {
    checkKeys(mx, MX_KEYS, 'mx', {}, 'connect');
    const isPort = (v) => Number.isInteger(v) && v > 0 && v < 65536;
    if (!absent(mx.port) && !isPort(mx.port)) throw SmtpError.input('mx.port must be a TCP port number.', 'leave it out for 25; set it for tests or providers whose MX listen elsewhere.', 'connect');
    if (!absent(mx.policyPort) && !isPort(mx.policyPort)) throw SmtpError.input('mx.policyPort must be a TCP port number.', 'leave it out for 443 (RFC 8461); set it only for tests.', 'connect');
    port = mx.port ?? 25;
    policyPort = mx.policyPort ?? 443;
  } else if (mx !== true) {
    throw SmtpError.input('mx must be true or { port, policyPort }.', 'pass mx: true to deliver to the recipients\' MX hosts.', 'connect');
  }
  const security = rest.security ?? 'opportunistic';
  if (!SECURITIES.includes(security)) {
    throw SmtpError.input(`security '${security}' does not apply to MX delivery.`, "use 'opportunistic' (the default: STARTTLS when offered) or 'starttls' (TLS required for every domain).", 'connect');
  }
  // The relay client checks everything else (types, unknown keys) when the
  // first host is tried; a check now, on a placeholder host, reports
  // mistakes before anything is resolved or connected.
  createRelayClient({ ...rest, host: 'mx.invalid', security }, { connect() {} });
  createResolver(dns); // EINPUT for a bad dns option
  return { rest: { ...rest, security }, dns, port, policyPort, security };
}
