// Small helpers that several modules need, written once.

import { SmtpError } from './errors.js';

/** A value or a list of values as an array; `undefined` and `null` are none. */
export function list(value) {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** Milliseconds (with fractions) on a monotonic clock: `performance.now()` where the runtime has it. */
export const monotonicNow = () => globalThis.performance?.now?.() ?? Date.now();

/** The error for a message handed to a client after `close()`: not sent. */
export function closedClientError() {
  return new SmtpError({
    code: 'ECLOSED',
    phase: 'mail',
    message: 'the client is closed; the message was not sent.',
    hint: 'create a new client, or send before calling close().',
  });
}
