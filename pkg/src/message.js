// What `send()` accepts, turned into what the engine takes for one attempt:
// an envelope (a wasm `Envelope`, consumed by submit) and a body source.
//
// Structured messages go through the Rust MIME builder: JS only copies the
// fields over and feeds streamed attachments when the builder asks.

import { BodySource, bodySource } from './body.js';
import { randomBytes } from './engine.js';
import { SmtpError, toSmtpError } from './errors.js';
import { list } from './util.js';

/**
 * Checks a message and prepares its first attempt (input mistakes throw
 * here, before any connection is used).
 * @returns {{ messageId?: string, canRetry(): boolean, attempt(): { envelope: object, body: BodySource } }}
 */
export function prepareMessage(engine, message) {
  if (message === null || typeof message !== 'object') {
    throw SmtpError.input('send() needs a message object.', 'pass { from, to, subject, text } or { raw, envelope: { from, to } }.');
  }
  try {
    return message.raw !== undefined ? prepareRaw(engine, message) : prepareStructured(engine, message);
  } catch (thrown) {
    throw toSmtpError(thrown);
  }
}

// ----- raw: an RFC 5322 message as given, with an explicit envelope

function prepareRaw(engine, { raw, envelope }) {
  if (!envelope || typeof envelope.from !== 'string' || envelope.to === undefined) {
    throw SmtpError.input(
      'a raw message needs an envelope with from and to.',
      'pass envelope: { from: "ann@example.com", to: ["bob@example.org"] } next to raw.',
    );
  }
  const to = Array.isArray(envelope.to) ? envelope.to : [envelope.to];
  let body = bodySource(raw);
  const bodyType = rawBodyType(raw);
  let first = true;
  // Built once now so the engine checks the addresses before anything connects.
  buildEnvelope(engine, { ...envelope, to, bodyType }, body.size).free();
  return {
    messageId: typeof raw === 'string' || raw instanceof Uint8Array ? findMessageId(raw) : undefined,
    /** A stream already read cannot be sent again. */
    canRetry: () => body.replay() !== null,
    attempt() {
      if (!first) body = body.replay();
      first = false;
      return { envelope: buildEnvelope(engine, { ...envelope, to, bodyType }, body.size), body };
    },
  };
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

/** A wasm Envelope from { from, to, smtputf8?, requireTls?, dsn? }. */
function buildEnvelope(engine, { from, to, smtputf8, requireTls, dsn, bodyType }, size) {
  const built = new engine.Envelope(from);
  try {
    for (const address of to) {
      if (dsn?.notify) built.addRecipientWithDsn(String(address), dsn.notify, undefined);
      else built.addRecipient(String(address));
    }
    if (size !== undefined) built.setSize(size);
    if (smtputf8) built.setSmtpUtf8(true);
    if (bodyType) built.setBodyType(bodyType);
    if (requireTls) built.setRequireTls(true);
    if (dsn && (dsn.ret || dsn.envid)) built.setDsn(dsn.ret, dsn.envid);
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
  if (typeof message.from !== 'string') {
    throw SmtpError.input(
      'the message has no from (or raw).',
      'pass { from, to, subject, text }, or raw with envelope: { from, to }.',
    );
  }
  // The same randomness and time on every attempt: a retry sends the same bytes.
  const random = randomBytes(32);
  const now = Date.now();
  const attachments = (message.attachments ?? []).map(attachmentInput);
  let builder = newBuilder(engine, message, attachments, random, now);
  const messageId = builder.messageId;
  let used = false;
  return {
    messageId,
    /** A streamed attachment already read cannot be sent again. */
    canRetry: () => !attachments.some((a) => a.stream?.started),
    attempt() {
      if (used) builder = newBuilder(engine, message, attachments, random, now);
      used = true;
      const current = builder;
      const envelope = current.envelope();
      const streams = attachments.map((a) => a.stream);
      const mime = mimeBody(current, streams);
      const body = new BodySource({ size: current.size, replayable: false, open: () => mimeChunks(mime) });
      // The driver moves the builder's output into the engine inside wasm
      // (Connection.writeBodyFromBuilder) and only feeds it attachment chunks.
      body.mime = mime;
      return { envelope, body };
    },
  };
}

/** Attachment content: bytes in hand (strings, byte arrays) or a stream. */
function attachmentInput(attachment, index) {
  if (attachment === null || typeof attachment !== 'object' || attachment.content === undefined) {
    throw SmtpError.input(`attachment ${index} has no content.`, 'pass attachments: [{ filename, content }].', 'data');
  }
  const { content } = attachment;
  if (typeof content === 'string') return { attachment, bytes: encoder.encode(content) };
  if (content instanceof Uint8Array) return { attachment, bytes: content };
  if (content instanceof ArrayBuffer) return { attachment, bytes: new Uint8Array(content) };
  return { attachment, stream: bodySource(content) };
}

function newBuilder(engine, message, attachments, random, now) {
  const spec = new engine.MessageSpec(message.from);
  try {
    for (const address of list(message.to)) spec.addTo(String(address));
    for (const address of list(message.cc)) spec.addCc(String(address));
    for (const address of list(message.bcc)) spec.addBcc(String(address));
    for (const address of list(message.replyTo)) spec.addReplyTo(String(address));
    if (message.subject !== undefined) spec.setSubject(String(message.subject));
    // Bodies cross into wasm as UTF-8 bytes: one native encode and one copy.
    if (message.text !== undefined) spec.setText(encoder.encode(String(message.text)));
    if (message.html !== undefined) spec.setHtml(encoder.encode(String(message.html)));
    if (message.messageId !== undefined) spec.setMessageId(String(message.messageId));
    for (const [name, value] of headerEntries(message.headers)) spec.addHeader(name, String(value));
    for (const { attachment: a, bytes } of attachments) {
      const args = [a.filename, a.contentType, a.cid, a.contentDisposition];
      if (bytes) spec.addAttachmentBytes(bytes, ...args);
      else spec.addAttachmentStream(...args);
    }
  } catch (error) {
    spec.free();
    throw error;
  }
  return new engine.MessageBuilder(spec, random, now); // consumes spec
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

function headerEntries(headers) {
  if (!headers) return [];
  if (Array.isArray(headers)) return headers; // [[name, value], ...] keeps order and repeats
  return Object.entries(headers);
}
