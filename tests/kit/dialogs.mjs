// Building blocks for fake-server scripts (see ./script.js).

import { CLIENT_NAME } from './harness.mjs';

export const GREET = 'S: 220 mx.test ESMTP ready';
export const EHLO = `C: EHLO ${CLIENT_NAME}`;
export const HELO = `C: HELO ${CLIENT_NAME}`;

/** An EHLO reply: `caps('STARTTLS', 'AUTH PLAIN')` → 250-mx.test / 250-STARTTLS / 250 AUTH PLAIN. */
export function caps(...keywords) {
  const lines = ['mx.test', ...keywords];
  return lines.map((l, i) => `S: 250${i + 1 === lines.length ? ' ' : '-'}${l}`).join('\n');
}

/** Greeting, EHLO offering STARTTLS, the upgrade, and the EHLO after it (offering `after`). */
export function starttlsUp(before = [], after = []) {
  return [GREET, EHLO, caps(...before, 'STARTTLS'), 'C: STARTTLS', 'S: 220 2.0.0 Ready to start TLS', 'TLS', EHLO, caps(...after)].join('\n');
}

/** Implicit TLS: the handshake first, then greeting and EHLO. */
export function implicitTlsUp(after = []) {
  return ['TLS', GREET, EHLO, caps(...after)].join('\n');
}

/** Greeting and EHLO without TLS. */
export function plainUp(offered = []) {
  return [GREET, EHLO, caps(...offered)].join('\n');
}

export const AUTH_PLAIN_OK = 'C~ ^AUTH PLAIN \\S+$\nS: 235 2.7.0 Authentication successful';

/** One transaction, accepted (no PIPELINING: one command at a time). */
export function transaction({ from = 'ann@example.com', to = ['bob@example.org'], queueId = 'Q1' } = {}) {
  return [
    `C~ ^MAIL FROM:<${escapeRe(from)}>`,
    'S: 250 2.1.0 ok',
    ...to.flatMap((r) => [`C~ ^RCPT TO:<${escapeRe(r)}>`, 'S: 250 2.1.5 ok']),
    'C: DATA',
    'S: 354 go ahead',
    'BODY',
    `S: 250 2.0.0 ok queued as ${queueId}`,
  ].join('\n');
}

export const QUIT = 'C: QUIT\nS: 221 2.0.0 bye\nCLOSE';

/** Commands that must never reach a server that failed the TLS policy. */
export const SENSITIVE = /^(AUTH|MAIL|RCPT|DATA|BDAT|HELO)\b/i;

export function escapeRe(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
