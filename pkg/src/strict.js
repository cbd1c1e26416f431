// Strict input checks shared by createClient options and send() messages:
// every key must be known, values must have the right type, and null or
// undefined mean "absent". A key nodemailer uses is refused with the name
// of the wasmtp option that does the same, so nothing a user passes is
// silently ignored.

import { SmtpError } from './errors.js';

/**
 * Throws EINPUT for a key of `value` that is not in `known`.
 * @param {object} value the object given by the caller
 * @param {readonly string[]} known the keys this object may have
 * @param {string} where how the object is named in messages, e.g. "createClient options"
 * @param {Record<string, string>} [equivalents] for keys people bring from elsewhere: what to use here
 * @param {string} [phase]
 */
export function checkKeys(value, known, where, equivalents = {}, phase = 'mail') {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    if (value[key] === undefined) continue; // undefined means absent
    const equivalent = Object.hasOwn(equivalents, key) ? equivalents[key] : undefined;
    const hint = equivalent ?? `the known keys are ${known.join(', ')}.`;
    const origin = equivalent === undefined ? 'not a known key' : 'not a wasmtp option';
    throw SmtpError.input(`\`${key}\` in ${where} is ${origin}; it would be ignored, so nothing was sent.`, hint, phase);
  }
}

/** True when a value is absent: null and undefined mean the same. */
export const absent = (value) => value === undefined || value === null;

/** A plain object (not an array, not null). */
export const isObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** Throws EINPUT unless `value` is absent or `check(value)` holds. */
export function expect(value, check, what, hint, phase = 'mail') {
  if (absent(value) || check(value)) return;
  throw SmtpError.input(`${what} is ${describeValue(value)}.`, hint, phase);
}

/** A short description of a value of the wrong type, for error messages. */
export function describeValue(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'object') return `an object (${value.constructor?.name ?? 'Object'})`;
  return `${typeof value} ${String(value)}`;
}
