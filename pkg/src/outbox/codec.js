// What the outbox stores for a message: the message as given to `send()`,
// with every stream read into bytes (a stored message must survive the
// process) and bytes written as { $bytes: base64 } so the whole record is
// JSON. Also the outbox ids.

import { SmtpError } from '../errors.js';

const encoder = new TextEncoder();

/** An outbox id: time-ordered, safe in file names and Redis keys. */
export function newId() {
  const time = Date.now().toString(36).padStart(9, '0');
  const random = globalThis.crypto.getRandomValues(new Uint8Array(8));
  return time + [...random].map((b) => b.toString(16).padStart(2, '0')).join('');
}

const ID_PATTERN = /^[A-Za-z0-9_-]{1,100}$/;

/** Checks a caller-chosen id (an idempotency key). */
export function checkId(id) {
  if (typeof id !== 'string' || !ID_PATTERN.test(id)) {
    throw SmtpError.input(
      `the outbox id ${JSON.stringify(id)} is not usable.`,
      'use 1 to 100 letters, digits, "_" or "-" (or leave id out to get a generated one).',
    );
  }
  return id;
}

/**
 * The message as JSON-safe data: streams and async iterables are read to
 * the end, bytes become { $bytes }, functions and symbols are refused.
 */
export async function encodeMessage(message) {
  if (message === null || typeof message !== 'object') {
    throw SmtpError.input('enqueue() needs a message object.', 'pass { from, to, subject, text } or { raw, envelope: { from, to } }.');
  }
  const out = {};
  for (const [key, value] of Object.entries(message)) {
    if (value === undefined) continue;
    if (key === 'raw') out.raw = await content(value, 'raw');
    else if (key === 'attachments') out.attachments = await attachments(value);
    else out[key] = plain(value, key);
  }
  return out;
}

/** The stored form back into a message `send()` takes. */
export function decodeMessage(stored) {
  const message = { ...stored };
  if (message.raw !== undefined) message.raw = fromStored(message.raw);
  if (Array.isArray(message.attachments)) {
    message.attachments = message.attachments.map((a) => ({ ...a, content: fromStored(a.content) }));
  }
  return message;
}

async function attachments(list) {
  if (!Array.isArray(list)) {
    throw SmtpError.input('attachments must be an array.', 'pass attachments: [{ filename, content }].', 'data');
  }
  const out = [];
  for (const [index, attachment] of list.entries()) {
    if (attachment === null || typeof attachment !== 'object') {
      throw SmtpError.input(`attachment ${index} is not an object.`, 'pass attachments: [{ filename, content }].', 'data');
    }
    const copy = {};
    for (const [key, value] of Object.entries(attachment)) {
      if (value === undefined) continue;
      copy[key] = key === 'content' ? await content(value, `attachment ${index}`) : plain(value, `attachments[${index}].${key}`);
    }
    out.push(copy);
  }
  return out;
}

/** Text stays text; bytes and streams become { $bytes }. */
async function content(value, what) {
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return { $bytes: toBase64(value) };
  if (value instanceof ArrayBuffer) return { $bytes: toBase64(new Uint8Array(value)) };
  if (ArrayBuffer.isView(value)) return { $bytes: toBase64(new Uint8Array(value.buffer, value.byteOffset, value.byteLength)) };
  if (value && (typeof value.getReader === 'function' || typeof value[Symbol.asyncIterator] === 'function')) {
    return { $bytes: toBase64(await readAll(value, what)) };
  }
  throw SmtpError.input(
    `the ${what} content must be a string, bytes, a ReadableStream or an async iterable.`,
    'pass the content as a string or a Uint8Array.',
    'data',
  );
}

async function readAll(source, what) {
  const chunks = [];
  let size = 0;
  const iterable = typeof source.getReader === 'function' ? streamChunks(source) : source;
  for await (const chunk of iterable) {
    const bytes =
      typeof chunk === 'string'
        ? encoder.encode(chunk)
        : chunk instanceof Uint8Array
          ? chunk
          : ArrayBuffer.isView(chunk)
            ? new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
            : chunk instanceof ArrayBuffer
              ? new Uint8Array(chunk)
              : null;
    if (!bytes) throw SmtpError.input(`a chunk of the ${what} stream is not text or bytes.`, 'stream strings or Uint8Arrays.', 'data');
    chunks.push(bytes);
    size += bytes.byteLength;
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return all;
}

async function* streamChunks(stream) {
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

/** Plain data (strings, numbers, booleans, arrays, objects): copied; anything else refused. */
function plain(value, what) {
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value)) return value.map((v, i) => plain(v, `${what}[${i}]`));
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out = {};
    for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = plain(v, `${what}.${k}`);
    return out;
  }
  throw SmtpError.input(
    `the message field ${what} cannot be stored (${typeof value}).`,
    'an outbox message must be plain data: strings, numbers, arrays and objects, with bytes or streams only as raw or attachment content.',
  );
}

function fromStored(value) {
  return value && typeof value === 'object' && typeof value.$bytes === 'string' ? fromBase64(value.$bytes) : value;
}

// ----- base64 (Node's Buffer when there, otherwise btoa / atob)

export function toBase64(bytes) {
  if (globalThis.Buffer) return globalThis.Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
}

export function fromBase64(text) {
  if (globalThis.Buffer) {
    const b = globalThis.Buffer.from(text, 'base64');
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
