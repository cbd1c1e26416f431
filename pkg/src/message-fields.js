// The fields of a send() message, checked before anything is built: every
// key known, every value of the right type (never turned into text by
// String()), null and undefined meaning absent. The values themselves
// (addresses, header text, content types...) are checked by the engine.

import { SmtpError } from './errors.js';
import { absent, checkKeys, describeValue, expect, isObject } from './strict.js';

/** Every key of a structured message. */
export const MESSAGE_KEYS = Object.freeze([
  'from', 'to', 'cc', 'bcc', 'replyTo', 'sender', 'subject', 'text', 'html', 'attachments', 'alternatives', 'icalEvent',
  'headers', 'messageId', 'inReplyTo', 'references', 'date', 'priority', 'list', 'envelope',
]);

/** A raw message is sent as it is: only the envelope goes with it. */
export const RAW_KEYS = Object.freeze(['raw', 'envelope']);

const ENVELOPE_KEYS = Object.freeze(['from', 'to', 'cc', 'bcc', 'smtputf8', 'requireTls', 'dsn']);
const DSN_KEYS = Object.freeze(['ret', 'envid', 'notify']);
const ATTACHMENT_KEYS = Object.freeze([
  'filename', 'content', 'path', 'href', 'httpHeaders', 'raw', 'encoding', 'contentType', 'cid', 'contentDisposition', 'headers', 'contentTransferEncoding',
]);
const ALTERNATIVE_KEYS = Object.freeze(['content', 'path', 'href', 'httpHeaders', 'raw', 'encoding', 'contentType', 'filename', 'headers', 'contentTransferEncoding']);
const ICAL_KEYS = Object.freeze(['method', 'content', 'path', 'href', 'httpHeaders', 'filename', 'encoding']);
const BODY_OBJECT_KEYS = Object.freeze(['path', 'href', 'httpHeaders']);
const LIST_KEYS = Object.freeze(['help', 'unsubscribe', 'subscribe', 'post', 'owner', 'archive', 'id', 'oneClick']);
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
const isStream = (v) => v !== null && typeof v === 'object' && (typeof v.getReader === 'function' || typeof v[Symbol.asyncIterator] === 'function');
const isAddress = (v) => isString(v) || isObject(v);
const isAddresses = (v) => isAddress(v) || (Array.isArray(v) && v.every(isAddress));
const isStringList = (v) => isString(v) || (Array.isArray(v) && v.every(isString));
const isHeaderMap = (v) => isObject(v) && Object.values(v).every((x) => absent(x) || isString(x));

/** A body: text, bytes, a stream, { path } or { href }. */
function checkBody(value, what) {
  if (absent(value) || isString(value) || isBytes(value) || isStream(value)) return;
  if (isObject(value) && (isString(value.path) || isString(value.href))) {
    checkKeys(value, BODY_OBJECT_KEYS, what, {}, 'data');
    expect(value.httpHeaders, isHeaderMap, `${what}.httpHeaders`, 'pass request headers as { name: "value" }.', 'data');
    return;
  }
  throw SmtpError.input(`${what} is ${describeValue(value)}.`, 'pass a string, bytes, a stream, { path } or { href }.', 'data');
}

/** Throws EINPUT for any unknown key or value of the wrong type in a send() message. */
export function checkMessage(message) {
  if (!absent(message.raw)) {
    const rawHint = (key) => `a raw message is sent exactly as given, so \`${key}\` cannot apply; write it into the raw message, or leave raw out.`;
    checkKeys(message, RAW_KEYS, 'a raw message', Object.fromEntries(MESSAGE_KEYS.map((key) => [key, rawHint(key)])));
    checkEnvelope(message.envelope);
    return;
  }
  checkKeys(message, MESSAGE_KEYS, 'the message', NODEMAILER_MESSAGE);
  const addressHint = 'pass an address as "ann@example.com", "Ann <ann@example.com>" or { name, address }, or an array of them.';
  for (const field of ['to', 'cc', 'bcc', 'replyTo']) expect(message[field], isAddresses, field, addressHint, 'data');
  for (const field of ['from', 'sender']) expect(message[field], isAddress, field, 'pass one address: "ann@example.com", "Ann <ann@example.com>" or { name, address }.', 'data');
  expect(message.subject, isString, 'subject', 'pass the subject as a string.', 'data');
  expect(message.messageId, isString, 'messageId', 'pass the Message-ID as a string, like "<id@example.com>".', 'data');
  expect(message.inReplyTo, isString, 'inReplyTo', 'pass the Message-ID being answered, like "<id@example.com>".', 'data');
  expect(message.references, isStringList, 'references', 'pass Message-IDs as a string (space-separated) or an array of strings.', 'data');
  expect(message.date, (v) => v instanceof Date || isString(v) || typeof v === 'number', 'date', 'pass a Date, a date string or milliseconds since 1970.', 'data');
  expect(message.priority, (v) => ['high', 'normal', 'low'].includes(v), 'priority', "use 'high', 'normal' or 'low'.", 'data');
  for (const field of ['text', 'html']) checkBody(message[field], field);
  checkHeaders(message.headers);
  expect(message.list, isObject, 'list', "pass list: { unsubscribe: 'https://...', help: 'admin@example.com', ... }.", 'data');
  if (isObject(message.list)) checkKeys(message.list, LIST_KEYS, 'list', {}, 'data');
  expect(message.attachments, Array.isArray, 'attachments', 'pass attachments: [{ filename, content }].', 'data');
  for (const [index, attachment] of (message.attachments ?? []).entries()) checkPart(attachment, index, 'attachment', ATTACHMENT_KEYS);
  expect(message.alternatives, Array.isArray, 'alternatives', "pass alternatives: [{ contentType: 'text/x-web-markdown', content }].", 'data');
  for (const [index, alternative] of (message.alternatives ?? []).entries()) checkPart(alternative, index, 'alternative', ALTERNATIVE_KEYS);
  checkIcal(message.icalEvent);
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

function checkPart(part, index, kind, keys) {
  if (!isObject(part)) {
    throw SmtpError.input(`${kind} ${index} is ${describeValue(part)}.`, `pass ${kind}s: [{ filename, content }].`, 'data');
  }
  checkKeys(part, keys, `${kind} ${index}`, {}, 'data');
  const at = (key) => `${kind}s[${index}].${key}`;
  for (const key of ['filename', 'contentType', 'cid', 'contentDisposition', 'path', 'href', 'encoding', 'contentTransferEncoding']) {
    expect(part[key], isString, at(key), `pass ${key} as a string.`, 'data');
  }
  // A function opens the content afresh on each call: read twice without spooling (a retry, a DKIM first pass).
  expect(part.content, (v) => isString(v) || isBytes(v) || isStream(v) || typeof v === 'function', at('content'), 'pass a string, bytes (Uint8Array / Buffer), a stream, or a function that opens one.', 'data');
  expect(part.httpHeaders, isHeaderMap, at('httpHeaders'), 'pass request headers as { name: "value" }.', 'data');
  expect(part.contentDisposition, (v) => v === 'inline' || v === 'attachment', at('contentDisposition'), "use 'inline' or 'attachment'.", 'data');
  // raw: the whole MIME part (headers, empty line, body), in hand or read from a stream, a file or a URL.
  const rawSource = (v) => isString(v) || isBytes(v) || isStream(v) || typeof v === 'function' || (isObject(v) && (isString(v.path) || isString(v.href)));
  expect(part.raw, rawSource, at('raw'), 'pass the MIME part (headers, an empty line, the body) as a string, bytes, a stream, a function that opens one, { path } or { href }.', 'data');
  if (isObject(part.raw) && !isStream(part.raw)) checkKeys(part.raw, BODY_OBJECT_KEYS, at('raw'), {}, 'data');
  checkHeaders(part.headers);
}

function checkIcal(ical) {
  if (absent(ical) || isString(ical) || isBytes(ical)) return;
  if (!isObject(ical)) throw SmtpError.input(`icalEvent is ${describeValue(ical)}.`, "pass icalEvent: { method: 'REQUEST', content: 'BEGIN:VCALENDAR...' }.", 'data');
  checkKeys(ical, ICAL_KEYS, 'icalEvent', {}, 'data');
  for (const key of ['method', 'path', 'href', 'filename', 'encoding']) expect(ical[key], isString, `icalEvent.${key}`, `pass ${key} as a string.`, 'data');
  expect(ical.content, (v) => isString(v) || isBytes(v) || isStream(v), 'icalEvent.content', 'pass the calendar as a string, bytes or a stream.', 'data');
  const given = ['content', 'path', 'href'].filter((key) => !absent(ical[key]));
  if (given.length !== 1) {
    throw SmtpError.input(`icalEvent needs exactly one of content, path or href (it has ${given.length === 0 ? 'none' : given.join(' and ')}).`, "pass icalEvent: { method: 'REQUEST', content }.", 'data');
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
  if (isString(entry)) return asciiDomains(entry);
  if (isObject(entry)) {
    checkKeys(entry, ADDRESS_KEYS, `the address in ${field}`, {}, 'data');
    const { name, address } = entry;
    if (!isString(address)) {
      throw SmtpError.input(`${field} has no address.`, 'pass { name: "Ann", address: "ann@example.com" }.', 'data');
    }
    expect(name, isString, `the name in ${field}`, 'pass the display name as a string.', 'data');
    if (bare || absent(name) || name === '') return asciiDomains(address);
    // A quoted string keeps commas, brackets and quotes in the name from
    // being read as address syntax; the engine encodes non-ASCII text.
    return `"${name.replace(/[\\"]/g, '\\$&')}" <${asciiDomains(address)}>`;
  }
  throw SmtpError.input(`${field} is ${describeValue(entry)}.`, 'pass an address as "ann@example.com", "Ann <ann@example.com>" or { name, address }.', 'data');
}

/**
 * Internationalized domains as A-labels (münchen.de → xn--mnchen-3ya.de),
 * by the runtime's own IDNA (UTS #46) through the URL parser, which every
 * runtime has, when the local part is ASCII: such an address then needs no
 * SMTPUTF8 (a non-ASCII local part does, and stays as written). Only the
 * address part changes: in "Name <a@b>" the part in
 * angle brackets, in a bare list each address. A domain the URL parser
 * refuses is left as it is, for the engine to report.
 */
export function asciiDomains(text) {
  if (/^[\x00-\x7f]*$/.test(text)) return text;
  const convert = (domain) => {
    // Only a plain host name: anything the URL parser would read as a port,
    // path or credentials is left for the engine to refuse.
    if (/^[\x00-\x7f]*$/.test(domain) || /[/?#:@\\[\]%\s]/.test(domain)) return domain;
    try {
      const ascii = new URL(`http://${domain}`).hostname;
      return ascii.length > 0 && /^[\x21-\x7e]+$/.test(ascii) ? ascii : domain;
    } catch {
      return domain;
    }
  };
  // A non-ASCII local part needs SMTPUTF8 anyway: such an address stays as written.
  const address = (local, domain) => `${local}@${/^[\x00-\x7f]*$/.test(local) ? convert(domain) : domain}`;
  if (text.includes('<')) return text.replace(/<([^<>@]*)@([^<>@]+)>/g, (_, local, domain) => `<${address(local, domain)}>`);
  if (text.includes('"')) return text; // a quoted local part: left to the engine
  return text.replace(/([^\s,@]+)@([^\s,@]+)/g, (_, local, domain) => address(local, domain));
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
