// The fields of a send() message, checked before anything is built: every
// key known, every value of the right type (never turned into text by
// String()), null and undefined meaning absent. The values themselves
// (addresses, header text, content types...) are checked by the engine.

import { SmtpError } from './errors.js';
import { absent, checkKeys, describeValue, expect, isObject } from './strict.js';

/** Every key of a structured message. */
export const MESSAGE_KEYS = Object.freeze([
  'from', 'to', 'cc', 'bcc', 'replyTo', 'subject', 'text', 'html', 'attachments', 'headers', 'messageId', 'envelope',
]);

/** A raw message is sent as it is: only the envelope goes with it. */
export const RAW_KEYS = Object.freeze(['raw', 'envelope']);

const ENVELOPE_KEYS = Object.freeze(['from', 'to', 'cc', 'bcc', 'smtputf8', 'requireTls', 'dsn']);
const DSN_KEYS = Object.freeze(['ret', 'envid', 'notify']);
const ATTACHMENT_KEYS = Object.freeze(['filename', 'content', 'contentType', 'cid', 'contentDisposition']);
const ADDRESS_KEYS = Object.freeze(['name', 'address']);

const WASMTP_CHOOSES_ENCODING = 'wasmtp chooses each transfer encoding itself (7bit, quoted-printable or base64), so the message is always valid 7-bit MIME.';

/** nodemailer's message fields, and what does the same here. */
const NODEMAILER_MESSAGE = Object.freeze({
  dsn: "`dsn` is nodemailer's field; here: `envelope: { dsn: { ret, envid, notify } }`.",
  encoding: WASMTP_CHOOSES_ENCODING,
  textEncoding: WASMTP_CHOOSES_ENCODING,
  watchHtml: 'Apple Watch HTML parts are not supported; send text and html.',
  amp: 'AMP for Email parts are not supported; send text and html.',
  attachDataUrls: 'data: URLs are not turned into attachments; attach the images with a cid and refer to them as src="cid:...".',
  disableFileAccess: 'set it on the client, not on a message.',
  disableUrlAccess: 'set it on the client, not on a message.',
  normalizeHeaderKey: 'header names are sent as given.',
  xMailer: 'add it with headers: { "X-Mailer": "..." } if wanted; wasmtp sends none by default.',
  newline: 'wasmtp always writes CRLF line ends, as SMTP requires.',
  baseBoundary: 'boundaries are made from random bytes by the MIME builder.',
  boundaryPrefix: 'boundaries are made from random bytes by the MIME builder.',
  keepBcc: 'Bcc addresses are never written into the headers.',
});
const NODEMAILER_DSN = Object.freeze({
  id: "`dsn.id` is nodemailer's name; here: `envid`.",
  return: "`dsn.return` is nodemailer's name; here: `ret` ('full' or 'headers').",
  recipient: 'ORCPT is not supported: the server records each RCPT TO address as the original recipient.',
});

const isString = (v) => typeof v === 'string';
const isBytes = (v) => v instanceof Uint8Array || v instanceof ArrayBuffer;

/** Throws EINPUT for any unknown key or value of the wrong type in a send() message. */
export function checkMessage(message) {
  if (!absent(message.raw)) {
    const rawHint = (key) => `a raw message is sent exactly as given, so \`${key}\` cannot apply; write it into the raw message, or leave raw out.`;
    checkKeys(message, RAW_KEYS, 'a raw message', Object.fromEntries(MESSAGE_KEYS.map((key) => [key, rawHint(key)])));
    checkEnvelope(message.envelope);
    return;
  }
  checkKeys(message, MESSAGE_KEYS, 'the message', NODEMAILER_MESSAGE);
  expect(message.subject, isString, 'subject', 'pass the subject as a string.', 'data');
  expect(message.messageId, isString, 'messageId', 'pass the Message-ID as a string, like "<id@example.com>".', 'data');
  for (const field of ['text', 'html']) {
    expect(message[field], (v) => isString(v) || isBytes(v), field, `pass the ${field} body as a string or UTF-8 bytes.`, 'data');
  }
  checkHeaders(message.headers);
  expect(message.attachments, Array.isArray, 'attachments', 'pass attachments: [{ filename, content }].', 'data');
  for (const [index, attachment] of (message.attachments ?? []).entries()) checkAttachment(attachment, index);
  checkEnvelope(message.envelope);
}

function checkHeaders(headers) {
  if (absent(headers)) return;
  const pairs = Array.isArray(headers) ? headers : isObject(headers) ? Object.entries(headers) : null;
  if (pairs === null) {
    throw SmtpError.input(`headers is ${describeValue(headers)}.`, 'pass headers: { "X-Tag": "value" } or [["X-Tag", "value"], ...].', 'data');
  }
  for (const pair of pairs) {
    if (!Array.isArray(pair) || pair.length !== 2 || !isString(pair[0])) {
      throw SmtpError.input(`a header entry is ${describeValue(pair)}.`, 'give each header as [name, value] with a string name.', 'data');
    }
    const [name, value] = pair;
    const values = absent(value) ? [] : Array.isArray(value) ? value : [value];
    for (const one of values) {
      if (isString(one)) continue;
      const prepared = isObject(one) && 'prepared' in one;
      throw SmtpError.input(
        `the value of header ${name} is ${describeValue(one)}.`,
        prepared
          ? 'header values are always checked and encoded by wasmtp (no `prepared` form); pass the value as a string.'
          : 'pass header values as strings (an array repeats the header).',
        'data',
      );
    }
  }
}

function checkAttachment(attachment, index) {
  if (!isObject(attachment)) {
    throw SmtpError.input(`attachment ${index} is ${describeValue(attachment)}.`, 'pass attachments: [{ filename, content }].', 'data');
  }
  checkKeys(attachment, ATTACHMENT_KEYS, `attachment ${index}`, {}, 'data');
  for (const key of ['filename', 'contentType', 'cid', 'contentDisposition']) {
    expect(attachment[key], isString, `attachments[${index}].${key}`, `pass ${key} as a string.`, 'data');
  }
}

function checkEnvelope(envelope) {
  if (absent(envelope)) return;
  if (!isObject(envelope)) {
    throw SmtpError.input(`envelope is ${describeValue(envelope)}.`, 'pass envelope: { from, to }.');
  }
  checkKeys(envelope, ENVELOPE_KEYS, 'the envelope', {
    size: 'the size is computed by wasmtp (SIZE=) whenever the message length is known.',
    use8BitMime: 'BODY=8BITMIME is declared by wasmtp when the message needs it.',
  });
  expect(envelope.smtputf8, (v) => typeof v === 'boolean', 'envelope.smtputf8', 'pass true or false.');
  expect(envelope.requireTls, (v) => typeof v === 'boolean', 'envelope.requireTls', 'pass true or false.');
  const dsn = envelope.dsn;
  if (absent(dsn)) return;
  if (!isObject(dsn)) throw SmtpError.input(`envelope.dsn is ${describeValue(dsn)}.`, 'pass dsn: { ret, envid, notify }.');
  checkKeys(dsn, DSN_KEYS, 'envelope.dsn', NODEMAILER_DSN);
  expect(dsn.ret, isString, 'envelope.dsn.ret', "use 'full' or 'headers'.");
  expect(dsn.envid, isString, 'envelope.dsn.envid', 'pass the envelope id as a string.');
  expect(
    dsn.notify,
    (v) => Array.isArray(v) && v.every(isString),
    'envelope.dsn.notify',
    "pass an array of 'success', 'failure', 'delay', or ['never'] alone.",
    'rcpt',
  );
}

/**
 * An address entry as text for the engine: a string as given (the engine
 * parses and checks it), or `{ name, address }`. `bare`: only the address
 * (for the envelope), the name dropped.
 */
export function formatAddress(entry, field, bare = false) {
  if (isString(entry)) return entry;
  if (isObject(entry)) {
    checkKeys(entry, ADDRESS_KEYS, `the address in ${field}`, {}, 'data');
    const { name, address } = entry;
    if (!isString(address)) {
      throw SmtpError.input(`${field} has no address.`, 'pass { name: "Ann", address: "ann@example.com" }.', 'data');
    }
    expect(name, isString, `the name in ${field}`, 'pass the display name as a string.', 'data');
    if (bare || absent(name) || name === '') return address;
    // A quoted string keeps commas, brackets and quotes in the name from
    // being read as address syntax; the engine encodes non-ASCII text.
    return `"${name.replace(/[\\"]/g, '\\$&')}" <${address}>`;
  }
  throw SmtpError.input(`${field} is ${describeValue(entry)}.`, 'pass an address as "ann@example.com", "Ann <ann@example.com>" or { name, address }.', 'data');
}

/** The envelope's recipients (to, cc and bcc) as bare addresses; undefined when it names none. */
export function envelopeRecipients(envelope) {
  const fields = ['to', 'cc', 'bcc'].filter((key) => !absent(envelope[key]));
  if (fields.length === 0) return undefined;
  const all = fields.flatMap((key) => {
    const value = envelope[key];
    const entries = Array.isArray(value) ? value : [value];
    return entries.map((entry, index) => formatAddress(entry, `envelope.${key}${Array.isArray(value) ? `[${index}]` : ''}`, true));
  });
  if (all.length === 0) {
    throw SmtpError.input('the envelope has no recipients.', 'give at least one address in envelope.to, or leave envelope.to out to use the message\'s To, Cc and Bcc.', 'rcpt');
  }
  return all;
}
