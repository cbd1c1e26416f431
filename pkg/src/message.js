// What `send()` accepts, turned into what the engine takes for one attempt:
// an envelope (a wasm `Envelope`, consumed by submit) and a body source.
//
// Structured messages go through the Rust MIME builder: JS only copies the
// fields over and feeds streamed attachments when the builder asks.

import { BodySource, bodySource } from './body.js';
import { randomBytes } from './engine.js';
import { SmtpError, toSmtpError } from './errors.js';
import { checkMessage, envelopeRecipients, formatAddress } from './message-fields.js';
import { bodyStream, icalParts, inHand, partInput, resolveParts } from './message-parts.js';
import { absent } from './strict.js';

/**
 * Checks a message and prepares its first attempt (input mistakes throw
 * here, before any connection is used).
 * @returns {{ messageId?: string, canRetry(): boolean, attempt(): { envelope: object, body: BodySource } }}
 */
export function prepareMessage(engine, message) {
  if (message === null || typeof message !== 'object') {
    throw SmtpError.input('send() needs a message object.', 'pass { from, to, subject, text } or { raw, envelope: { from, to } }.');
  }
  checkMessage(message);
  try {
    return message.raw !== undefined && message.raw !== null ? prepareRaw(engine, message) : prepareStructured(engine, message);
  } catch (thrown) {
    throw toSmtpError(thrown);
  }
}

/**
 * Like prepareMessage, after the I/O some fields need: bodies given as a
 * stream, file or URL are read, attachment files checked to exist.
 */
export async function prepareMessageAsync(engine, message) {
  if (message !== null && typeof message === 'object') {
    checkMessage(message);
    if (absent(message.raw)) message = await resolveParts(message);
  }
  return prepareMessage(engine, message);
}

/**
 * The message `send` would transmit, without sending it: its envelope
 * ({ from, to }), Message-ID and bytes (`raw`, a Uint8Array), or with
 * `stream: true` a ReadableStream of the bytes instead (attachments are then
 * read as the stream is). The bytes are the message itself: the SMTP dot
 * transparency the engine adds on the wire is not in them.
 */
export async function buildMessage(engine, message, { stream = false } = {}) {
  const prepared = await prepareMessageAsync(engine, message);
  const { from, to } = prepared.envelopeInfo();
  const { envelope, body } = prepared.attempt();
  const size = body.size;
  envelope.free();
  const result = { messageId: prepared.messageId, envelope: { from, to } };
  if (stream) {
    return {
      ...result,
      stream: new ReadableStream({
        async pull(controller) {
          try {
            const chunk = await body.next();
            if (chunk === null) controller.close();
            else controller.enqueue(chunk.slice());
          } catch (error) {
            controller.error(error);
          }
        },
        cancel: () => body.cancel(),
      }),
    };
  }
  const chunks = [];
  let length = 0;
  try {
    for (let chunk = await body.next(); chunk !== null; chunk = await body.next()) {
      chunks.push(chunk.slice()); // the builder may reuse its buffer
      length += chunk.byteLength;
    }
  } finally {
    body.cancel();
  }
  const raw = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    raw.set(chunk, at);
    at += chunk.byteLength;
  }
  if (size !== undefined && size !== length) throw new Error(`wasmtp: the message is ${length} bytes, announced ${size}`);
  return { ...result, raw };
}

// ----- raw: an RFC 5322 message as given, with an explicit envelope

function prepareRaw(engine, { raw, envelope }) {
  if (!envelope || absent(envelope.from) || envelopeRecipients(envelope) === undefined) {
    throw SmtpError.input(
      'a raw message needs an envelope with from and to.',
      'pass envelope: { from: "ann@example.com", to: ["bob@example.org"] } next to raw.',
    );
  }
  // A body in hand declares what it is (BODY=8BITMIME only with a byte
  // above 127, so a server without 8BITMIME refuses it at MAIL FROM, before
  // any data: RFC 6152); a stream is checked by the engine as it goes out.
  const given = { ...envelopeFields(envelope), bodyType: rawBodyType(raw) };
  let body = bodySource(raw);
  let first = true;
  /** DKIM-Signature fields to send before the message (dkim.js), as bytes. */
  let fields = null;
  // Built once now so the engine checks the addresses before anything connects.
  buildEnvelope(engine, given, body.size).free();
  return {
    messageId: typeof raw === 'string' || raw instanceof Uint8Array ? findMessageId(raw) : undefined,
    /** MAIL FROM and RCPT TO as plain text. */
    envelopeInfo: () => ({ from: given.from, to: [...given.to] }),
    /** A stream already read cannot be sent again. */
    canRetry: () => body.replay() !== null,
    attempt() {
      if (!first) body = body.replay();
      first = false;
      const sent = fields ? withFields(fields, body) : body;
      return { envelope: buildEnvelope(engine, given, sent.size), body: sent };
    },
    /** For DKIM (dkim.js): read the message once, then put the signatures first. */
    signing: {
      async firstPass({ update }, reread) {
        const { first: copy, second, spool } = await reread(body);
        for (let chunk = await copy.next(); chunk !== null; chunk = await copy.next()) update(chunk);
        body = second ?? spool.source();
      },
      setFields(text) {
        fields = encoder.encode(text);
      },
    },
  };
}

/** The chunks of `chunks` (an async iterator) with `prefix` before them. */
async function* withPrefix(prefix, chunks) {
  yield prefix;
  yield* chunks;
}

/** `body` with header fields before it. */
function withFields(fields, body) {
  return new BodySource({
    size: body.size === undefined ? undefined : fields.byteLength + body.size,
    replayable: false,
    open: async function* () {
      yield fields;
      for (let chunk = await body.next(); chunk !== null; chunk = await body.next()) yield chunk;
    },
    abort: () => body.cancel(),
  });
}

/**
 * RFC 6152's BODY= for a raw message given whole: 8BITMIME only when a byte
 * is above 127 (the engine then refuses a server without 8BITMIME), 7-bit
 * otherwise. A stream cannot be read ahead: 'auto' declares 8BITMIME when
 * the server offers it, the one declaration that holds whatever the stream
 * turns out to carry (7-bit text is valid 8BITMIME content, while an 8-bit
 * byte under a 7-bit declaration would break RFC 6152).
 */
function rawBodyType(raw) {
  if (typeof raw === 'string') return /[^\x00-\x7f]/.test(raw) ? '8bitmime' : '7bit';
  const bytes = raw instanceof ArrayBuffer ? new Uint8Array(raw) : raw instanceof Uint8Array ? raw : null;
  if (bytes === null) return 'auto';
  for (let i = 0; i < bytes.length; i++) if (bytes[i] > 0x7f) return '8bitmime';
  return '7bit';
}

/**
 * The envelope a message gives (`envelope: { from, to, cc, bcc, ... }`) with
 * addresses as bare text; cc and bcc are recipients like to (nodemailer's
 * envelope has them too). `from`/`to` stay undefined when not given.
 */
function envelopeFields(envelope) {
  const to = envelopeRecipients(envelope);
  return {
    from: envelope.from === undefined || envelope.from === null ? undefined : formatAddress(envelope.from, 'envelope.from', true),
    to,
    smtputf8: envelope.smtputf8 === true,
    requireTls: envelope.requireTls === true,
    dsn: envelope.dsn ?? undefined,
  };
}

/** A wasm Envelope from { from, to, smtputf8?, requireTls?, dsn? }. */
function buildEnvelope(engine, { from, to, smtputf8, requireTls, dsn, bodyType }, size) {
  const built = new engine.Envelope(from);
  try {
    for (const address of to) {
      if (dsn?.notify !== undefined && dsn.notify !== null) built.addRecipientWithDsn(address, dsn.notify, undefined);
      else built.addRecipient(address);
    }
    if (size !== undefined) built.setSize(size);
    if (smtputf8) built.setSmtpUtf8(true);
    if (bodyType) built.setBodyType(bodyType);
    if (requireTls) built.setRequireTls(true);
    if (dsn && (dsn.ret || dsn.envid)) built.setDsn(dsn.ret ?? undefined, dsn.envid ?? undefined);
    built.validate();
    return built;
  } catch (error) {
    built.free();
    throw error;
  }
}

/** The Message-ID header of a raw message, for the result (headers only, first 64 KiB). */
function findMessageId(raw) {
  const head = typeof raw === 'string' ? raw.slice(0, 65536) : new TextDecoder('latin1').decode(raw.subarray(0, 65536));
  const end = head.search(/\r?\n\r?\n/);
  const headers = end === -1 ? head : head.slice(0, end);
  const match = /^message-id:[ \t]*((?:.|\r?\n[ \t])*)/im.exec(headers);
  return match ? match[1].replace(/\r?\n[ \t]+/g, ' ').trim() : undefined;
}

// ----- structured: from, to, subject, text, html, attachments, headers

const encoder = new TextEncoder();

function prepareStructured(engine, message) {
  if (message.from === undefined || message.from === null) {
    throw SmtpError.input(
      'the message has no from (or raw).',
      'pass { from, to, subject, text }, or raw with envelope: { from, to }.',
    );
  }
  // The same randomness and time on every attempt: a retry sends the same bytes.
  const random = randomBytes(32);
  const now = Date.now();
  const { attachments, alternatives, bodies } = partInputs(message);
  // One numbering for the builder's streamed parts: attachments, then
  // alternatives, then a streamed text body and a streamed HTML body.
  const parts = [...attachments, ...alternatives, ...bodies];
  let builder = newBuilder(engine, message, attachments, alternatives, random, now);
  const messageId = builder.messageId;
  // envelope: { from, to, dsn, requireTls } overrides what the headers say;
  // checked now, so a mistake in it fails before anything connects.
  const custom = message.envelope ? envelopeFields(message.envelope) : null;
  const fieldsFor = (current) => ({ ...custom, from: custom.from ?? current.envelopeFrom, to: custom.to ?? current.recipients });
  const envelopeFor = (current) => {
    if (custom === null) return current.envelope();
    return current.envelopeWith(buildEnvelope(engine, fieldsFor(current), undefined));
  };
  envelopeFor(builder).free();
  const { from, to } = custom === null ? { from: builder.envelopeFrom, to: builder.recipients } : fieldsFor(builder);
  const envelopeInfo = { from, to };
  let used = false;
  /** DKIM-Signature fields to put first (dkim.js), and the signed message's size. */
  let signed = null;
  return {
    messageId,
    /** MAIL FROM and RCPT TO as plain text (what the headers give, or `envelope`). */
    envelopeInfo: () => envelopeInfo,
    /** A stream already read cannot be sent again (files and URLs are read again). */
    canRetry: () => !parts.some((p) => p.stream?.started && !p.stream.replayable),
    attempt() {
      if (used) {
        for (const p of parts) if (p.stream?.started) p.stream = p.stream.replay();
        builder = newBuilder(engine, message, attachments, alternatives, random, now);
      }
      used = true;
      const current = builder;
      const envelope = envelopeFor(current);
      if (signed) envelope.setSize(signed.size);
      const streams = parts.map((p) => p.stream);
      const mime = mimeBody(current, streams);
      const prefix = signed?.fields;
      const body = new BodySource({
        size: signed ? signed.size : current.size,
        replayable: false,
        open: prefix ? () => withPrefix(prefix, mimeChunks(mime)) : () => mimeChunks(mime),
      });
      // DKIM-Signature fields go first: the driver writes them before the builder's output.
      if (prefix) body.prefix = prefix;
      // The driver moves the builder's output into the engine inside wasm
      // (Connection.writeBodyFromBuilder) and only feeds it attachment chunks.
      body.mime = mime;
      return { envelope, body };
    },
    /**
     * For DKIM (dkim.js): the message built once more from the same
     * randomness and time (so with the same bytes) and read through
     * `update`; streamed parts are read from a copy or spooled.
     */
    signing: {
      async firstPass({ dkim, absorb }, reread) {
        const copies = [];
        for (const p of parts) copies.push(p.stream ? await reread(p.stream) : null);
        // Built in the DKIM artifact, whose hasher reads the builder's output
        // inside wasm: no byte of the first pass crosses into JS.
        const hashed = newBuilder(dkim, message, attachments, alternatives, random, now);
        try {
          for (let index = absorb(hashed); index >= 0; index = absorb(hashed)) {
            const chunk = await copies[index].first.next();
            if (chunk === null) hashed.endAttachment(index);
            else hashed.pushAttachment(index, chunk);
          }
        } finally {
          hashed.free();
        }
        parts.forEach((p, i) => {
          if (copies[i]) p.stream = copies[i].second ?? copies[i].spool.source();
        });
      },
      setFields(fields, size) {
        signed = { fields: encoder.encode(fields), size };
      },
    },
  };
}

/** The attachments and alternatives of a message; icalEvent adds one of each. */
function partInputs(message) {
  const attachments = (message.attachments ?? []).map((part, index) => partInput(part, index, 'attachment'));
  const alternatives = (message.alternatives ?? []).map((part, index) => partInput(part, index, 'alternative'));
  if (!absent(message.icalEvent)) {
    const ical = icalParts(message.icalEvent);
    alternatives.push(ical.alternative);
    attachments.push(ical.attachment);
  }
  // Bodies given as a stream, file or URL: pushed like streamed parts, text first.
  const bodies = ['text', 'html'].map((field) => ({ field, stream: bodyStream(message[field], field) })).filter((body) => body.stream !== null);
  return { attachments, alternatives, bodies };
}

function newBuilder(engine, message, attachments, alternatives, random, now) {
  const spec = new engine.MessageSpec(formatAddress(message.from, 'from'));
  try {
    for (const address of addressList(message.to, 'to')) spec.addTo(address);
    for (const address of addressList(message.cc, 'cc')) spec.addCc(address);
    for (const address of addressList(message.bcc, 'bcc')) spec.addBcc(address);
    for (const address of addressList(message.replyTo, 'replyTo')) spec.addReplyTo(address);
    if (!absent(message.sender)) spec.setField('sender', formatAddress(message.sender, 'sender'));
    if (!absent(message.subject)) spec.setSubject(message.subject);
    // Bodies cross into wasm as UTF-8 bytes: one native encode and one copy.
    for (const field of ['text', 'html']) {
      const value = message[field];
      if (absent(value)) continue;
      if (inHand(value)) spec[field === 'text' ? 'setText' : 'setHtml'](textBytes(value));
      else spec.setField('stream', field); // pushed through pushAttachment, numbered after the parts
    }
    if (!absent(message.messageId)) spec.setMessageId(message.messageId);
    if (!absent(message.inReplyTo)) spec.setField('inReplyTo', message.inReplyTo);
    for (const id of references(message.references)) spec.setField('reference', id);
    if (!absent(message.date)) spec.setField('date', String(dateValue(message.date)));
    // Headers that fields stand for, then the caller's own: the builder checks and writes them all.
    const headers = [...priorityHeaders(message.priority), ...listHeaders(message.list), ...headerEntries(message.headers)];
    for (const [name, value] of headers) spec.addHeader(name, value);
    for (const [index, { part, bytes, encoding }] of attachments.entries()) {
      // A raw part brings its own headers: the fields that describe it were refused in partInput.
      const args = [part.filename ?? undefined, part.contentType ?? undefined, part.cid ?? undefined, part.contentDisposition ?? undefined];
      if (bytes) spec.addAttachmentBytes(bytes, ...args);
      else spec.addAttachmentStream(...args);
      for (const [name, value] of partHeaders(part, 'attachment', index)) spec.addPartHeader(index, name, value);
      // The engine takes the transfer encoding (or 'raw') through this header name.
      if (encoding) spec.addPartHeader(index, 'Content-Transfer-Encoding', encoding);
    }
    for (const [index, { part, bytes, encoding }] of alternatives.entries()) {
      const args = [part.contentType ?? undefined, part.filename ?? undefined];
      if (bytes) spec.addAlternativeBytes(bytes, ...args);
      else spec.addAlternativeStream(...args);
      // Numbered after every attachment, as the builder numbers its parts.
      for (const [name, value] of partHeaders(part, 'alternative', index)) spec.addPartHeader(attachments.length + index, name, value);
      if (encoding) spec.addPartHeader(attachments.length + index, 'Content-Transfer-Encoding', encoding);
    }
  } catch (error) {
    spec.free();
    throw error;
  }
  return new engine.MessageBuilder(spec, random, now); // consumes spec
}

/** References as Message-IDs: a string may hold several, separated by spaces. */
function references(value) {
  if (absent(value)) return [];
  return (Array.isArray(value) ? value : [value]).flatMap((ids) => ids.split(/\s+/)).filter((id) => id !== '');
}

/** The Date header's time: a Date, a date string or milliseconds since 1970. */
function dateValue(value) {
  const ms = Math.trunc(value instanceof Date ? value.getTime() : typeof value === 'string' ? Date.parse(value) : value);
  if (!Number.isFinite(ms)) {
    throw SmtpError.input(`date ${JSON.stringify(String(value))} is not a valid time.`, 'pass a Date, an ISO 8601 / RFC 2822 date string, or milliseconds since 1970.', 'data');
  }
  return ms;
}

/** X-Priority, X-MSMail-Priority and Importance, which mail programs show; none for 'normal'. */
function priorityHeaders(priority) {
  if (priority === 'high') return [['X-Priority', '1 (Highest)'], ['X-MSMail-Priority', 'High'], ['Importance', 'High']];
  if (priority === 'low') return [['X-Priority', '5 (Lowest)'], ['X-MSMail-Priority', 'Low'], ['Importance', 'Low']];
  return [];
}

/** The List-* headers `list` stands for (RFC 2369, RFC 2919), with the header name of each kind. */
const LIST_HEADERS = { help: 'List-Help', unsubscribe: 'List-Unsubscribe', subscribe: 'List-Subscribe', post: 'List-Post', owner: 'List-Owner', archive: 'List-Archive', id: 'List-Id' };

/**
 * `list: { unsubscribe, help, id, ..., oneClick }`: each value a URL, { url,
 * comment }, or an array (one header per entry; an entry that is itself an
 * array lists several URLs in one header). A URL goes in angle brackets; an
 * e-mail address becomes a mailto: URL and a bare host an http:// one.
 * Comments are ASCII (the header value is otherwise left as written, so
 * non-ASCII would need encoded-words around the comment alone).
 */
function listHeaders(list) {
  if (absent(list)) return [];
  const headers = [];
  for (const [kind, value] of Object.entries(list)) {
    if (kind === 'oneClick' || absent(value)) continue;
    const name = LIST_HEADERS[kind];
    if (name === undefined) {
      throw SmtpError.input(`list.${kind} is not a List-* header wasmtp writes.`, `use ${Object.keys(LIST_HEADERS).join(', ')} (and oneClick: true for RFC 8058 one-click unsubscribe).`, 'data');
    }
    const entries = Array.isArray(value) ? value : [value];
    for (const entry of entries) {
      const items = (Array.isArray(entry) ? entry : [entry]).map((item) => listItem(kind, item));
      if (kind === 'id' && (items.length !== 1 || entries.length !== 1)) {
        throw SmtpError.input('list.id names one list.', "pass list: { id: { url: 'news.example.com', comment: 'Example News' } }.", 'data');
      }
      headers.push([name, items.join(', ')]);
    }
  }
  if (!absent(list.oneClick) && typeof list.oneClick !== 'boolean') {
    throw SmtpError.input('list.oneClick must be true or false.', "pass list: { unsubscribe: 'https://...', oneClick: true }.", 'data');
  }
  if (list.oneClick === true) {
    // RFC 8058 §3.1: the one-click POST goes to an HTTPS List-Unsubscribe URL.
    const https = headers.some(([name, value]) => name === 'List-Unsubscribe' && /<https:\/\//i.test(value));
    if (!https) {
      throw SmtpError.input('one-click unsubscribe needs an https:// List-Unsubscribe URL (RFC 8058).', "add list: { unsubscribe: 'https://example.com/unsubscribe?id=...' } next to oneClick: true.", 'data');
    }
    headers.push(['List-Unsubscribe-Post', 'List-Unsubscribe=One-Click']);
  }
  return headers;
}

/** One URL of a List-* header: `<url> (comment)`, or `"comment" <id>` for List-Id. */
function listItem(kind, item) {
  const { url, comment } = typeof item === 'string' ? { url: item } : isPlainObject(item) ? item : {};
  if (typeof url !== 'string' || !(absent(comment) || typeof comment === 'string')) {
    throw SmtpError.input(`list.${kind} has an entry that is not a URL string or { url, comment }.`, "pass for example list: { unsubscribe: { url: 'https://example.com/u', comment: 'Unsubscribe' } }.", 'data');
  }
  if (!/^[!-~]+$/.test(url) || /[<>]/.test(url)) {
    throw SmtpError.input(`the list.${kind} URL ${JSON.stringify(url)} cannot go into a header.`, 'use printable ASCII without spaces or angle brackets; percent-encode anything else.', 'data');
  }
  if (!absent(comment) && !/^[\x20-\x7e]*$/.test(comment)) {
    throw SmtpError.input(`the comment of list.${kind} has a character outside printable ASCII.`, 'write List-* comments in ASCII (they are shown rarely); the URL is what matters.', 'data');
  }
  if (kind === 'id') {
    const id = url.replace(/^[a-z][a-z0-9+.-]*:\/*/i, '');
    return comment ? `"${comment.replace(/[\\"]/g, '\\$&')}" <${id}>` : `<${id}>`;
  }
  const bracketed = /^(https?|mailto|ftp):/i.test(url) ? `<${url}>` : /^[^@]+@[^@]+$/.test(url) ? `<mailto:${url}>` : `<http://${url}>`;
  return comment ? `${bracketed} (${comment.replace(/[()\\]/g, '\\$&')})` : bracketed;
}

const isPlainObject = (value) => value !== null && typeof value === 'object' && !Array.isArray(value);

/** A body in hand as UTF-8 bytes. */
function textBytes(value) {
  return typeof value === 'string' ? encoder.encode(value) : value instanceof Uint8Array ? value : new Uint8Array(value);
}

/** An address field as header text: each entry a string or { name, address }. */
function addressList(value, field) {
  if (absent(value)) return [];
  const entries = Array.isArray(value) ? value : [value];
  return entries.map((entry, index) => formatAddress(entry, Array.isArray(value) ? `${field}[${index}]` : field));
}

/**
 * A builder with its attachment streams; `release()` (idempotent) stops the
 * streams and frees the builder.
 */
function mimeBody(builder, streams) {
  let released = false;
  return {
    builder,
    streams,
    release() {
      if (released) return;
      released = true;
      for (const stream of streams) stream?.cancel();
      builder.free();
    },
  };
}

/** Pulls the builder's output, feeding streamed attachments when it asks. */
async function* mimeChunks({ builder, streams, release }) {
  try {
    for (;;) {
      const bytes = builder.pollOutput();
      if (bytes !== undefined) {
        yield bytes;
        continue;
      }
      const index = builder.waitingFor;
      if (index === undefined) return;
      const chunk = await streams[index].next();
      if (chunk === null) builder.endAttachment(index);
      else builder.pushAttachment(index, chunk);
    }
  } catch (thrown) {
    throw toSmtpError(thrown);
  } finally {
    release();
  }
}

/** A part's own headers; Content-Transfer-Encoding is chosen with contentTransferEncoding, not set as a header. */
function partHeaders(part, kind, index) {
  const entries = headerEntries(part.headers);
  if (entries.some(([name]) => String(name).toLowerCase() === 'content-transfer-encoding')) {
    throw SmtpError.input(`the Content-Transfer-Encoding of ${kind} ${index} cannot be set as a header.`, "use contentTransferEncoding: 'base64', 'quoted-printable', '7bit' or '8bit'.", 'data');
  }
  return entries;
}

/** Header entries as [name, value] pairs; an array value repeats the header. */
function headerEntries(headers) {
  if (absent(headers)) return [];
  const pairs = Array.isArray(headers) ? headers : Object.entries(headers);
  return pairs.flatMap(([name, value]) => (absent(value) ? [] : Array.isArray(value) ? value.map((v) => [name, v]) : [[name, value]]));
}
