// Message bodies as pull sources of byte chunks, so the driver can feed the
// engine exactly as fast as its back-pressure allows.

import { SmtpError } from './errors.js';

/** Largest chunk handed to the engine in one call (each call copies it into wasm memory). */
export const CHUNK_SIZE = 64 * 1024;

const encoder = new TextEncoder();

/**
 * A body the driver pulls from: `next()` resolves to the next chunk, or
 * `null` at the end. `size` is known for strings and byte arrays (it goes
 * into MAIL FROM's SIZE=). Sources over memory can be replayed on a retry.
 */
export class BodySource {
  constructor({ size, replayable, open, abort }) {
    this.size = size;
    this.replayable = replayable;
    this.started = false;
    this.#open = open;
    this.#abort = abort;
  }

  #open;
  /** Ends a read that is pending right now (a stream's `reader.cancel()`). */
  #abort;
  #iterator = null;

  async next() {
    this.started = true;
    this.#iterator ??= this.#open();
    const { value, done } = await this.#iterator.next();
    return done ? null : value;
  }

  /** Stops reading (the message failed): releases a stream's lock. */
  cancel() {
    const iterator = this.#iterator;
    this.#iterator = null;
    // `return()` waits for a pending `read()` to settle, which may be never:
    // cancel the reader first so the read ends and the lock is released.
    this.#abort?.();
    iterator?.return?.().catch?.(() => {});
  }

  /** A fresh source over the same bytes, for a retry; `null` if a stream was consumed. */
  replay() {
    if (!this.replayable && this.started) return null;
    return new BodySource({ size: this.size, replayable: this.replayable, open: this.#open, abort: this.#abort });
  }
}

/**
 * A body from a string, bytes, a WHATWG ReadableStream, any async iterable
 * of chunks, or a function that returns (a promise of) one of those: called
 * again for each read, so such a body can be sent twice (a retry, a DKIM
 * signature's first pass).
 */
export function bodySource(raw) {
  if (typeof raw === 'function') return freshSource(raw);
  if (typeof raw === 'string') return bytesSource(encoder.encode(raw));
  if (raw instanceof Uint8Array) return bytesSource(raw);
  if (raw instanceof ArrayBuffer) return bytesSource(new Uint8Array(raw));
  if (raw && typeof raw.getReader === 'function') {
    let reader = null;
    return new BodySource({
      size: undefined,
      replayable: false,
      open: () => readableStreamChunks(raw, (opened) => (reader = opened)),
      abort: () => reader?.cancel().catch(() => {}),
    });
  }
  if (raw && typeof raw[Symbol.asyncIterator] === 'function') {
    return new BodySource({ size: undefined, replayable: false, open: () => iterableChunks(raw) });
  }
  throw SmtpError.input(
    'the message body (raw) must be a string, a Uint8Array, a ReadableStream, an async iterable of chunks, or a function that returns one.',
    'pass the RFC 5322 message as a string or bytes, or stream it.',
    'data',
  );
}

function freshSource(open) {
  let current = null;
  return new BodySource({
    size: undefined,
    replayable: true,
    open: async function* () {
      const value = await open();
      if (typeof value === 'function') {
        throw SmtpError.input('a content function returned a function.', 'return a ReadableStream, an async iterable, a string or bytes.', 'data');
      }
      current = bodySource(value);
      for (let chunk = await current.next(); chunk !== null; chunk = await current.next()) yield chunk;
    },
    abort: () => current?.cancel(),
  });
}

function bytesSource(bytes) {
  return new BodySource({
    size: bytes.byteLength,
    replayable: true,
    open: function* () {
      for (let at = 0; at < bytes.byteLength; at += CHUNK_SIZE) yield bytes.subarray(at, at + CHUNK_SIZE);
    },
  });
}

async function* readableStreamChunks(stream, onReader) {
  const reader = stream.getReader();
  onReader(reader);
  let finished = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      yield* split(toBytes(value));
    }
  } finally {
    // Stopped early (the message failed): tell the producer nobody will read on.
    if (!finished) reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

async function* iterableChunks(iterable) {
  for await (const value of iterable) yield* split(toBytes(value));
}

function toBytes(value) {
  if (typeof value === 'string') return encoder.encode(value);
  if (value instanceof Uint8Array) return value;
  if (value instanceof ArrayBuffer) return new Uint8Array(value);
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  throw SmtpError.input('a chunk of the message stream is not text or bytes.', 'stream strings or Uint8Arrays.', 'data');
}

function* split(bytes) {
  for (let at = 0; at < bytes.byteLength; at += CHUNK_SIZE) yield bytes.subarray(at, at + CHUNK_SIZE);
}

// ----- files and URLs: attachments and bodies given as { path } or { href }

/**
 * Opens files for `path` (set by the Node/Deno/Bun entry; other runtimes
 * have no file system): `{ check(path): Promise<void>, open(path): AsyncIterable<Uint8Array> }`.
 */
let fileReader = null;

export function setFileReader(reader) {
  fileReader = reader;
}

/** Fails (EINPUT) unless `path` can be read: called before anything connects. */
export async function checkFile(path, what) {
  if (fileReader === null) {
    throw SmtpError.input(`${what} is a file path, and this runtime has no file system.`, 'pass the content as bytes, a stream or { href }.', 'data');
  }
  try {
    await fileReader.check(path);
  } catch (error) {
    throw SmtpError.input(`${what}: the file ${JSON.stringify(path)} cannot be read (${error?.code ?? error?.message ?? error}).`, 'check the path (relative paths start at the working directory).', 'data');
  }
}

/** A file read in chunks as the message is sent (never whole in memory). */
export function fileSource(path, what) {
  if (fileReader === null) {
    throw SmtpError.input(`${what} is a file path, and this runtime has no file system.`, 'pass the content as bytes, a stream or { href }.', 'data');
  }
  // Replayable: a retry opens the file again.
  const reader = fileReader;
  return new BodySource({
    size: undefined,
    replayable: true,
    open: async function* () {
      try {
        yield* iterableChunks(reader.open(path));
      } catch (error) {
        if (error instanceof SmtpError) throw error;
        throw SmtpError.input(`${what}: reading the file ${JSON.stringify(path)} failed (${error?.code ?? error?.message ?? error}).`, 'check the path (relative paths start at the working directory).', 'data');
      }
    },
  });
}

/** A URL fetched and streamed as the message is sent; `data:` URLs work too. */
export function hrefSource(href, headers, what) {
  return new BodySource({
    size: undefined,
    replayable: true,
    open: async function* () {
      let response;
      try {
        response = await fetch(href, { headers });
      } catch (error) {
        throw SmtpError.input(`${what}: fetching ${href} failed (${error?.message ?? error}); the message was not sent.`, 'check the URL, or pass the content itself.', 'data');
      }
      if (!response.ok) {
        await response.body?.cancel().catch(() => {});
        throw SmtpError.input(`${what}: fetching ${href} answered HTTP ${response.status}; the message was not sent.`, 'check the URL, or pass the content itself.', 'data');
      }
      if (response.body === null) return;
      yield* readableStreamChunks(response.body, () => {});
    },
  });
}

/** Reads a whole source into one byte array, refusing more than `limit` bytes. */
export async function readAll(source, limit, what) {
  const chunks = [];
  let size = 0;
  try {
    for (let chunk = await source.next(); chunk !== null; chunk = await source.next()) {
      size += chunk.byteLength;
      if (size > limit) {
        throw SmtpError.input(`${what} is larger than ${limit} bytes, the most wasmtp holds in memory for it.`, 'send a large file as an attachment (streamed), not as a body.', 'data');
      }
      chunks.push(chunk);
    }
  } finally {
    source.cancel();
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
