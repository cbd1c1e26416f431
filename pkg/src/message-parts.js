// The content of a structured message's parts, from what users pass
// (nodemailer's shapes included) to what the MIME builder takes: bytes in
// hand or a stream read as the message is sent.
//
//   text / html:   string, bytes, a stream, { path } or { href }
//   attachments:   content (string with encoding, bytes, stream), path or href
//   alternatives:  the same, placed next to text and html
//   icalEvent:     a calendar invitation: a text/calendar alternative with
//                  its method, and the same file attached as invite.ics
//
// Bodies and the calendar event are read whole before the message is built
// (the builder chooses their transfer encoding from the whole text); they
// are capped at MAX_TEXT_BODY. Attachments are never held whole.

import { bodySource, checkFile, fileSource, hrefSource, readAll } from './body.js';
import { SmtpError } from './errors.js';
import { absent, isObject } from './strict.js';

/** The most bytes a text or HTML body (or a calendar event) may have when read from a stream, file or URL. */
export const MAX_TEXT_BODY = 32 * 1024 * 1024;

const encoder = new TextEncoder();

/** True for a value the builder takes as it is (text or bytes). */
export const inHand = (value) => typeof value === 'string' || value instanceof Uint8Array || value instanceof ArrayBuffer;

/** A path that is really a URL (nodemailer accepts both in `path`). */
const isUrl = (path) => /^(https?|data):/i.test(path);

/**
 * A source for content given as a stream, `{ path }` or `{ href }`.
 * @param {string} what how the part is named in messages
 */
function contentSource(value, what) {
  if (isObject(value) && typeof value.getReader !== 'function' && typeof value[Symbol.asyncIterator] !== 'function') {
    if (typeof value.path === 'string') return isUrl(value.path) ? hrefSource(value.path, undefined, what) : fileSource(value.path, what);
    if (typeof value.href === 'string') return hrefSource(value.href, value.httpHeaders ?? undefined, what);
  }
  return bodySource(value);
}

/**
 * Does the I/O a message needs before it is built: reads text, html and
 * icalEvent given as a stream, `{ path }` or `{ href }`, and checks that
 * attachment files can be read. Returns the message with those bodies as
 * bytes (the caller's object is not changed).
 */
export async function resolveParts(message) {
  let resolved = message;
  const replace = (key, value) => {
    if (resolved === message) resolved = { ...message };
    resolved[key] = value;
  };
  for (const field of ['text', 'html']) {
    const value = message[field];
    if (absent(value) || inHand(value)) continue;
    replace(field, await readAll(contentSource(value, `the ${field} body`), MAX_TEXT_BODY, `the ${field} body`));
  }
  const ical = message.icalEvent;
  if (!absent(ical) && !inHand(ical)) {
    const given = absent(ical.content) ? { path: ical.path, href: ical.href, httpHeaders: ical.httpHeaders } : ical.content;
    if (!inHand(given)) {
      const bytes = await readAll(contentSource(given, 'icalEvent'), MAX_TEXT_BODY, 'icalEvent');
      replace('icalEvent', { ...ical, content: bytes, path: undefined, href: undefined, httpHeaders: undefined, encoding: undefined });
    }
  }
  for (const [list, name] of [[message.attachments, 'attachment'], [message.alternatives, 'alternative']]) {
    for (const [index, part] of (list ?? []).entries()) {
      if (typeof part?.path === 'string' && !isUrl(part.path)) await checkFile(part.path, `${name} ${index}`);
    }
  }
  return resolved;
}

/**
 * One attachment or alternative as { part, bytes } (in hand) or
 * { part, stream } (a BodySource read when the builder reaches it).
 */
export function partInput(part, index, kind = 'attachment') {
  const what = `${kind} ${index}`;
  const given = ['content', 'path', 'href', 'raw'].filter((key) => !absent(part[key]));
  if (given.length !== 1) {
    throw SmtpError.input(
      given.length === 0 ? `${what} has no content.` : `${what} has both ${given.join(' and ')}.`,
      `give ${kind}s exactly one of content, path or href: [{ filename, content }].`,
      'data',
    );
  }
  if (!absent(part.raw)) {
    throw SmtpError.input(
      `${what} is given as raw MIME, which wasmtp does not splice into the messages it builds.`,
      'pass content (with contentType and headers), or send the whole message as raw.',
      'data',
    );
  }
  if (!absent(part.contentTransferEncoding) && part.contentTransferEncoding.toLowerCase() !== 'base64') {
    throw SmtpError.input(
      `${what}: contentTransferEncoding "${part.contentTransferEncoding}" is not one wasmtp writes for attachments.`,
      "leave it out: attachments always go in base64, which is safe for any bytes and read by every mail program ('base64' is accepted).",
      'data',
    );
  }
  if (!absent(part.encoding) && typeof part.content !== 'string') {
    throw SmtpError.input(`${what}: encoding applies to content given as a string.`, 'leave encoding out for bytes and streams.', 'data');
  }
  if (!absent(part.path)) return { part, stream: contentSource({ path: part.path }, what) };
  if (!absent(part.href)) return { part, stream: contentSource({ href: part.href, httpHeaders: part.httpHeaders }, what) };
  const { content } = part;
  if (typeof content === 'string') return { part, bytes: decodeString(content, part.encoding ?? undefined, what) };
  if (content instanceof Uint8Array) return { part, bytes: content };
  if (content instanceof ArrayBuffer) return { part, bytes: new Uint8Array(content) };
  return { part, stream: bodySource(content) };
}

/** Text given with an encoding, as the bytes it stands for. */
function decodeString(text, encoding, what) {
  switch (encoding?.toLowerCase()) {
    case undefined:
    case 'utf8':
    case 'utf-8':
      return encoder.encode(text);
    case 'base64':
    case 'base64url': {
      const standard = text.replace(/[\s]/g, '').replace(/-/g, '+').replace(/_/g, '/');
      if (!/^[A-Za-z0-9+/]*={0,2}$/.test(standard) || standard.replace(/=+$/, '').length % 4 === 1) {
        throw SmtpError.input(`${what}: the content is not valid base64.`, 'pass the base64 text as it is, or the bytes themselves without encoding.', 'data');
      }
      return Uint8Array.from(atob(standard.padEnd(Math.ceil(standard.length / 4) * 4, '=')), (c) => c.charCodeAt(0));
    }
    case 'hex': {
      if (!/^(?:[0-9a-fA-F]{2})*$/.test(text)) {
        throw SmtpError.input(`${what}: the content is not valid hex (pairs of 0-9, a-f).`, 'pass the hex text as it is, or the bytes themselves.', 'data');
      }
      const bytes = new Uint8Array(text.length / 2);
      for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(text.slice(i * 2, i * 2 + 2), 16);
      return bytes;
    }
    case 'binary':
    case 'latin1': {
      const bytes = new Uint8Array(text.length);
      for (let i = 0; i < text.length; i++) {
        const code = text.charCodeAt(i);
        if (code > 255) {
          throw SmtpError.input(`${what}: a '${encoding}' string holds one byte per character, and character ${i} is above 255.`, "pass the bytes as a Uint8Array, or text without encoding (sent as UTF-8).", 'data');
        }
        bytes[i] = code;
      }
      return bytes;
    }
    case 'ascii': {
      if (/[^\x00-\x7f]/.test(text)) {
        throw SmtpError.input(`${what}: an 'ascii' string has a character above 127.`, 'leave encoding out to send the text as UTF-8.', 'data');
      }
      return encoder.encode(text);
    }
    default:
      throw SmtpError.input(`${what}: encoding "${encoding}" is not known.`, "use 'base64', 'hex', 'binary' (one byte per character) or 'utf8'.", 'data');
  }
}

/**
 * icalEvent as the parts it becomes: an alternative text/calendar with its
 * method, and the same bytes attached as invite.ics (application/ics), the
 * way calendar programs and nodemailer expect.
 */
export function icalParts(ical) {
  const event = inHand(ical) ? { content: ical } : ical;
  const method = event.method ?? 'PUBLISH';
  if (typeof method !== 'string' || !/^[A-Za-z-]{1,32}$/.test(method.trim())) {
    throw SmtpError.input(`icalEvent.method ${JSON.stringify(method)} is not an iTIP method.`, "use 'REQUEST', 'REPLY', 'CANCEL', 'PUBLISH'...", 'data');
  }
  const content = event.content;
  const bytes = typeof content === 'string' ? decodeString(content, event.encoding ?? undefined, 'icalEvent') : content instanceof ArrayBuffer ? new Uint8Array(content) : content;
  return {
    alternative: { part: { contentType: `text/calendar; charset=utf-8; method=${method.trim().toUpperCase()}` }, bytes },
    attachment: { part: { filename: event.filename ?? 'invite.ics', contentType: 'application/ics' }, bytes },
  };
}
