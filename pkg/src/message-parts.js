// The content of a structured message's parts, from what users pass
// (nodemailer's shapes included) to what the MIME builder takes: bytes in
// hand or a stream read as the message is sent.
//
//   text / html:   string, bytes, a stream, { path } or { href }
//   attachments:   content (string with encoding, bytes, stream), path, href
//                  or raw (the whole MIME part, headers included), with an
//                  optional contentTransferEncoding
//   alternatives:  the same, placed next to text and html
//   icalEvent:     a calendar invitation: a text/calendar alternative with
//                  its method, and the same file attached as invite.ics
//
// Nothing given as a stream, file or URL is held whole: the builder asks for
// it chunk by chunk as the message is sent (a body then goes
// quoted-printable, since it cannot be looked at first). The one exception
// is an icalEvent given as a one-shot stream: it is used twice (alternative
// and attachment), so it is read whole, up to MAX_TEXT_BODY.

import { BodySource, bodySource, checkFile, fileSource, hrefSource, readAll } from './body.js';
import { SmtpError } from './errors.js';
import { absent, isObject } from './strict.js';

/** The most bytes a calendar event given as a stream may have (it is read whole). */
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
 * Does the I/O a message needs before it is built: checks that the files
 * given as `{ path }` (bodies, attachments, alternatives, icalEvent) can be
 * read, and reads an icalEvent given as a one-shot stream (see above).
 * Returns the message with that event as bytes (the caller's object is not
 * changed).
 */
export async function resolveParts(message) {
  let resolved = message;
  const paths = [];
  for (const field of ['text', 'html']) {
    if (isObject(message[field]) && typeof message[field].path === 'string') paths.push([message[field].path, `the ${field} body`]);
  }
  const ical = message.icalEvent;
  if (!absent(ical) && !inHand(ical)) {
    const given = absent(ical.content) ? { path: ical.path, href: ical.href, httpHeaders: ical.httpHeaders } : ical.content;
    if (typeof given?.path === 'string') paths.push([given.path, 'icalEvent']);
    else if (!inHand(given) && !(typeof given?.href === 'string')) {
      const bytes = await readAll(contentSource(given, 'icalEvent'), MAX_TEXT_BODY, 'icalEvent');
      resolved = { ...message, icalEvent: { ...ical, content: bytes, path: undefined, href: undefined, httpHeaders: undefined, encoding: undefined } };
    }
  }
  for (const [list, name] of [[message.attachments, 'attachment'], [message.alternatives, 'alternative']]) {
    for (const [index, part] of (list ?? []).entries()) {
      for (const key of ['path', 'raw']) {
        const path = key === 'path' ? part?.path : part?.raw?.path;
        if (typeof path === 'string') paths.push([path, `${name} ${index}`]);
      }
    }
  }
  for (const [path, what] of paths) if (!isUrl(path)) await checkFile(path, what);
  return resolved;
}

/** A text or HTML body given as a stream, `{ path }` or `{ href }`, as a source the builder pulls (null when in hand or absent). */
export function bodyStream(value, field) {
  if (absent(value) || inHand(value)) return null;
  return utf8Checked(contentSource(value, `the ${field} body`), field);
}

/**
 * A body source whose bytes must be UTF-8 (the part says charset=utf-8),
 * checked chunk by chunk with the runtime's TextDecoder: the wasm engine
 * leaves this check to JS (see src/mime/mod.rs). A sequence cut by a chunk's
 * end is completed by the next chunk (`stream: true`).
 */
function utf8Checked(source, field) {
  let reads = 0;
  let current = source;
  return new BodySource({
    size: undefined,
    replayable: source.replayable,
    open: async function* () {
      // A retry reads a replayable source afresh.
      if (reads++ > 0) current = source.replay() ?? source;
      const decoder = new TextDecoder('utf-8', { fatal: true });
      let at = 0;
      const check = (chunk) => {
        try {
          decoder.decode(chunk, { stream: chunk !== undefined });
        } catch {
          throw SmtpError.input(`the ${field} body is not valid UTF-8 (in the bytes after byte ${at}).`, 'stream UTF-8 text (the part says charset=utf-8).', 'data');
        }
      };
      for (let chunk = await current.next(); chunk !== null; chunk = await current.next()) {
        check(chunk);
        at += chunk.byteLength;
        yield chunk;
      }
      check(undefined);
    },
    abort: () => current.cancel(),
  });
}

/** The transfer encodings an attachment may ask for (nodemailer's names). */
const TRANSFER_ENCODINGS = ['base64', 'quoted-printable', '7bit', '8bit'];

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
      `give ${kind}s exactly one of content, path, href or raw: [{ filename, content }].`,
      'data',
    );
  }
  if (!absent(part.raw)) {
    // The part is the user's whole MIME entity: the fields that would
    // describe it belong inside it, so they are refused rather than dropped.
    const describing = ['filename', 'contentType', 'cid', 'contentDisposition', 'headers', 'encoding', 'contentTransferEncoding', 'httpHeaders'].filter((key) => !absent(part[key]));
    if (describing.length > 0) {
      throw SmtpError.input(`${what} is raw MIME and also has ${describing.join(', ')}.`, 'write those as headers inside the raw part (Content-Type: ..., Content-Disposition: ...), or give content instead of raw.', 'data');
    }
    const { raw } = part;
    if (inHand(raw)) return { part, bytes: typeof raw === 'string' ? encoder.encode(raw) : raw instanceof ArrayBuffer ? new Uint8Array(raw) : raw, encoding: 'raw' };
    return { part, stream: contentSource(raw, what), encoding: 'raw' };
  }
  const transfer = part.contentTransferEncoding;
  if (!absent(transfer) && (typeof transfer !== 'string' || !TRANSFER_ENCODINGS.includes(transfer.toLowerCase()))) {
    throw SmtpError.input(
      `${what}: contentTransferEncoding ${JSON.stringify(transfer)} is not one wasmtp writes.`,
      "use 'base64' (the default, safe for any bytes), 'quoted-printable', '7bit' (ASCII, lines up to 998 octets) or '8bit' (needs a server with 8BITMIME).",
      'data',
    );
  }
  const encoding = absent(transfer) ? undefined : transfer.toLowerCase();
  const input = contentInput(part, what);
  return encoding === undefined ? input : { ...input, encoding };
}

/** An attachment's content (not raw) as { part, bytes } or { part, stream }. */
function contentInput(part, what) {
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
  const content = absent(event.content) ? { path: event.path, href: event.href, httpHeaders: event.httpHeaders } : event.content;
  // In hand, or a file or URL read once for each of the two parts.
  const input = inHand(content)
    ? { bytes: typeof content === 'string' ? decodeString(content, event.encoding ?? undefined, 'icalEvent') : content instanceof ArrayBuffer ? new Uint8Array(content) : content }
    : null;
  const fresh = () => input ?? { stream: contentSource(content, 'icalEvent') };
  return {
    alternative: { part: { contentType: `text/calendar; charset=utf-8; method=${method.trim().toUpperCase()}` }, ...fresh() },
    attachment: { part: { filename: event.filename ?? 'invite.ics', contentType: 'application/ics' }, ...fresh() },
  };
}
