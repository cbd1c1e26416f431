// The driver: one pump loop that moves bytes between the Rust engine (a wasm
// `Connection`) and a transport's socket, for every runtime.
//
// It makes no protocol decision. Everything that happens outside the engine
// (socket opened, bytes read, end of stream, TLS up or failed, a timer, a
// body chunk read) is posted to an inbox; the loop feeds the inbox to the
// engine, moves body bytes under the engine's back-pressure, writes what the
// engine hands out (one awaited write per flight), then acts on its events.
//
// With tls: { engine: 'wasm' } the engine is a `SecureConnection` (the 'tls'
// artifact): TLS runs inside it, the socket stays a raw byte pipe, and the
// engine never asks for `startTls`. Nothing else differs.
//
// `socket.onData(bytes)` returns a promise that resolves once the engine has
// taken the bytes and the driver has acted on the resulting events. A
// transport that reads by pulling (Deno, Workers) waits for it before its
// next read: so no read is pending when `startTls` is called, and reading
// follows the engine's pace.

import { SmtpError, toSmtpError } from './errors.js';
import { withProxyHint } from './transports/proxy.js';
import { list, monotonicNow as clock } from './util.js';

/** Body bytes read ahead of the engine per message (one chunk of body.js). */
const READ_AHEAD = 64 * 1024;

/** `Connection.writeBodyFromBuilder`: the engine is full / the builder is done. */
const MIME_BLOCKED = -1;
const MIME_DONE = -2;

/** First size of the buffer the engine's output is written from (it grows to the largest flight). */
const TX_BUFFER = 64 * 1024;

/** How long the port probe's connection waits for the server's first bytes. */
const PORT_PROBE_WAIT_MS = 1000;

/**
 * How long the QUIT reply is awaited once every message's outcome is known:
 * the server has nothing more to say that matters, so a server that never
 * answers QUIT must not hold the connection (or close()) for the command
 * time-out.
 */
const QUIT_REPLY_WAIT = 3000;

/** Transcript lines kept for `SmtpError.transcript`. */
const TRANSCRIPT_KEPT = 60;

/** Whole milliseconds on the monotonic clock (the engine's deadlines use the same epoch). */
const monotonicNow = () => Math.floor(clock());

/**
 * One SMTP connection: set-up on creation, then messages via `submit`.
 *
 * - `ready` resolves with the session facts (capabilities, TLS, AUTH) or
 *   rejects with the SmtpError that ended the set-up.
 * - `closed` resolves when the socket is closed and the loop has ended.
 */
export class Session {
  /**
   * @param {object} args
   * @param {object} args.engine       the wasm bindings
   * @param {object} args.engineOptions a wasm `Options`
   * @param {object} args.target       { host, port, security, tls: { ca, servername, rejectUnauthorized, engine, pin } }
   * @param {{connect: Function}} args.transport
   * @param {(line: {dir: string, text: string}) => void} [args.onTranscript]
   * @param {(conn: object) => void} [args.inspect] called with the engine
   *   connection when the session has ended, just before it is freed (the
   *   connection doctor reads what the session learned)
   * @param {() => Promise<string>} [args.renewAccessToken] with a token
   *   provider: fetches a fresh token when the server refused the first one
   */
  constructor({ engine, engineOptions, target, transport, onTranscript, inspect, renewAccessToken }) {
    this.#renewAccessToken = renewAccessToken;
    this.#target = target;
    this.#inspect = inspect;
    this.#transport = transport;
    this.#onTranscript = onTranscript;
    this.#writeStallMs = engineOptions.commandTimeout();
    this.ready = new Promise((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    this.ready.catch(() => {}); // observed through the pool or the caller; never unhandled
    this.closed = new Promise((resolve) => {
      this.#closedResolve = resolve;
    });
    // After quit(): the QUIT is written (or the connection is gone), so a
    // caller that only waits for outcomes knows the server was told.
    this.quitWritten = new Promise((resolve) => {
      this.#quitWrittenResolve = resolve;
    });
    // Throws an EngineError (EINPUT) for unusable options: the caller converts it.
    this.#tlsInEngine = target.tls?.engine === 'wasm';
    this.#conn = this.#tlsInEngine
      ? newSecureConnection(engine, engineOptions, target.tls)
      : new engine.Connection(engineOptions, monotonicNow());
    this.#implicitTls = target.security === 'tls' && !this.#tlsInEngine;
    this.#run();
  }

  // ----- Public state, read by the pool

  /** Session facts once ready (see `ready`). */
  info = null;
  /** Messages to keep in flight here at once, as the engine says once ready. */
  pipelineWindow = 0;
  /** Messages handed to this connection so far. */
  submitted = 0;
  /** Set by the pool: take no more messages, QUIT when the last one is done. */
  retiring = false;
  /** Some message already completed here: the connection was reused warm. */
  get warm() {
    return this.#completed > 0;
  }
  /** Messages whose outcome is not known yet. */
  get inFlight() {
    return this.#jobs.size;
  }
  /** Ready and not closing: may take another message. */
  get usable() {
    // The engine may have ended the session (a dropped link) before this
    // loop has reported it: such a session must not take more messages.
    return this.info !== null && !this.#done && !this.#quitting && !this.#conn.isClosed;
  }
  get isClosed() {
    return this.#done;
  }
  /** Called when `ready`, `inFlight` or `isClosed` change (set by the pool). */
  onChange = null;

  // ----- Public verbs

  /**
   * Queues a message on this connection. `envelope` is a wasm `Envelope`
   * (consumed), `body` a BodySource. Resolves with the delivery, rejects
   * with an SmtpError.
   *
   * `beforeDataEnd`, when given, is awaited after the last body byte was
   * read and before the end of data is handed to the engine: until it
   * resolves, the server cannot have the message (the outbox records
   * "committing" there). If it rejects, the end is never sent.
   */
  submit(envelope, body, { beforeDataEnd } = {}) {
    if (this.#done) {
      envelope.free();
      return Promise.reject(this.#closedError());
    }
    let id;
    try {
      id = this.#conn.submit(envelope, monotonicNow());
    } catch (thrown) {
      return Promise.reject(toSmtpError(thrown, this.transcript()));
    }
    this.submitted += 1;
    // chunks: bytes read from the source and not yet taken by the engine;
    // readError: a failed read, acted on when the engine wants this body.
    // A structured message (body.mime): the engine pulls the MIME builder's
    // output inside wasm; `attachment` is the next streamed attachment chunk
    // read ahead ({ chunk } or { chunk: null } at its end).
    // `body.prefix`: bytes that go before the builder's output (DKIM-Signature fields).
    const job = { id, body, mime: body.mime ?? null, attachment: null, chunks: body.prefix ? [body.prefix] : [], queued: body.prefix?.byteLength ?? 0, reading: false, sourceDone: false, readError: null, ended: false, resolve: null, reject: null };
    // beforeDataEnd: null (none), a function (not called yet), 'waiting' or 'done'.
    job.beforeEnd = typeof beforeDataEnd === 'function' ? beforeDataEnd : null;
    const outcome = new Promise((resolve, reject) => {
      job.resolve = resolve;
      job.reject = reject;
    });
    this.#jobs.set(id, job);
    // Read ahead, so that when replies free room in the pipelining window
    // the next messages' bodies are at hand and go out in the same write.
    this.#readBody(job);
    this.#post({ kind: 'kick' });
    return outcome;
  }

  /** Graceful end: queued messages are still sent, then QUIT. Resolves when closed. */
  quit() {
    if (!this.#done) {
      this.#quitting = true;
      this.#post({ kind: 'quit' });
    }
    return this.closed;
  }

  /** Immediate end: messages in flight fail with ECLOSED. */
  abort() {
    if (!this.#done) this.#post({ kind: 'abort' });
    return this.closed;
  }

  /** Keeps (true) or stops (false) an idle socket from holding the process open. */
  setKeepAlive(keep) {
    if (keep) this.#socket?.ref?.();
    else this.#socket?.unref?.();
  }

  /** The last lines of the dialog (credentials already redacted by the engine). */
  transcript() {
    return this.#transcriptLines.slice();
  }

  // ----- Internals

  #conn;
  #target;
  #transport;
  #onTranscript;
  #inspect;
  #renewAccessToken;
  #writeStallMs;
  #socket = null;
  /** Reused for every write when the socket says `releasesWrites`; null after a failed write. */
  #txBuffer = null;
  #txReuse = true;
  #implicitTls;
  #tlsInEngine;
  /** `onData` promises to resolve once the loop has acted on their bytes. */
  #processed = [];
  #inbox = [];
  #wake = null;
  #timerFiredFor = undefined;
  #jobs = new Map();
  #transcriptLines = [];
  #quitting = false;
  #completed = 0;
  #done = false;
  #closeError = null;
  #readyResolve;
  #readyReject;
  #closedResolve;
  #quitWrittenResolve;

  #post(item) {
    this.#inbox.push(item);
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async #run() {
    try {
      this.#openSocket();
      while (!this.#done) {
        this.#feedInbox();
        this.#checkTimer();
        const moved = this.#moveBodies();
        // Writing empties the engine's buffer: it may take more body at once.
        const wrote = await this.#flush();
        this.#dispatchEvents();
        this.#releaseReads();
        if (this.#done) break;
        if (this.#quitting && this.#jobs.size === 0) {
          // Every message is settled, so the engine wrote its QUIT in this flush.
          this.#quitWrittenResolve();
          this.#limitQuitWait();
        }
        if (this.#inbox.length === 0 && !moved && !wrote) await this.#sleep();
      }
      await this.#flush(); // a final QUIT, if the engine produced one
    } catch (bug) {
      // A defect in the driver or the bindings: fail loudly but still clean up.
      this.#closeError ??= new SmtpError({
        code: 'EPROTOCOL',
        phase: 'quit',
        message: `internal error in the wasmtp driver: ${bug?.stack ?? bug}`,
        hint: 'please report this with the transcript.',
        cause: bug,
      });
      try {
        this.#conn.abort(monotonicNow());
      } catch {}
    }
    this.#finish();
  }

  #openSocket() {
    const { host, port, tls, security } = this.#target;
    const servername = tls.servername ?? host;
    // `upgradable`: the driver may call socket.startTls() later (a Workers
    // socket must be opened with secureTransport: 'starttls' for that).
    const upgradable = !this.#tlsInEngine && (security === 'starttls' || security === 'opportunistic');
    let connecting;
    try {
      connecting = Promise.resolve(
        this.#transport.connect({
          host,
          port,
          tls: this.#implicitTls,
          upgradable,
          servername,
          ca: tls.ca,
          rejectUnauthorized: tls.rejectUnauthorized,
          ...(tls.client === undefined ? {} : { clientTls: tls.client }),
          ...this.#target.network,
        }),
      );
    } catch (error) {
      connecting = Promise.reject(error);
    }
    connecting.then(
      (socket) => {
        if (this.#done) {
          socket.close(); // the engine gave up (connect time-out) while we waited
          return;
        }
        this.#socket = socket;
        socket.onData = (bytes) =>
          this.#done ? undefined : new Promise((processed) => this.#post({ kind: 'data', bytes, processed }));
        socket.onClose = (error) => this.#post(error ? { kind: 'socket-error', error } : { kind: 'eof' });
        this.#post({ kind: 'connected' });
      },
      (error) => {
        // A transport marks errors after the TCP connection opened as TLS failures.
        if (error?.tlsHandshake) {
          this.#post({ kind: 'connected' });
          this.#post({ kind: 'tls-failed', error });
        } else {
          this.#post({ kind: 'connect-failed', error });
        }
      },
    );
  }

  /** Reports everything that happened outside the engine, in order. */
  #feedInbox() {
    const conn = this.#conn;
    while (this.#inbox.length > 0) {
      const item = this.#inbox.shift();
      const now = monotonicNow();
      switch (item.kind) {
        case 'connected':
          conn.connected(now);
          break;
        case 'connect-failed':
          // The transport's own SmtpError (EPROXY, or EINPUT for a client
          // certificate the runtime refused) is the one the caller sees.
          if (item.error instanceof SmtpError) this.#closeError ??= item.error;
          conn.connectFailed(describe(item.error), now);
          break;
        case 'data':
          conn.receive(item.bytes, now);
          this.#processed.push(item.processed);
          break;
        case 'eof':
          conn.receiveEof(now);
          break;
        case 'socket-error':
          conn.socketFailed(describe(item.error), false, now);
          break;
        case 'tls-up': {
          const info = this.#socket?.tlsInfo ?? {};
          // handshakePending: the platform reports a refused certificate only
          // at the first read or write (Workers); the engine then names it.
          conn.tlsEstablished(info.version ?? 'TLS', info.cipher, info.authorized === true, info.authorizationError, now, info.handshakePending === true);
          break;
        }
        case 'tls-failed':
          conn.tlsFailed(describe(item.error), now);
          break;
        case 'port-probe':
          conn.portProbeResult(item.bytes, now);
          break;
        case 'token':
          conn.supplyAccessToken(item.token, now);
          break;
        case 'token-failed':
          conn.accessTokenFailed(item.error.detail ?? describe(item.error), item.error.hint, item.error.retryable === true, now);
          break;
        case 'quit':
          conn.close(now);
          break;
        case 'abort':
          conn.abort(now);
          break;
        case 'body':
        case 'kick':
          break; // only wakes the loop; the body state is on the job
      }
    }
  }

  /** Lets pulling transports read on: the bytes they delivered were acted on. */
  #releaseReads() {
    for (const processed of this.#processed.splice(0)) processed();
  }

  #checkTimer() {
    const firedFor = this.#timerFiredFor;
    this.#timerFiredFor = undefined;
    const deadline = this.#conn.pollTimeout();
    if (deadline === undefined) return;
    const now = monotonicNow();
    // Some runtimes (workerd) freeze the clock between I/O events, so a
    // timer that fired counts as having reached the deadline it was set for.
    if (now >= deadline || firedFor !== undefined) this.#conn.handleTimeout(Math.max(now, firedFor ?? 0));
  }

  /** Moves body bytes into the engine while it has room. Returns whether anything moved. */
  #moveBodies() {
    const conn = this.#conn;
    let moved = false;
    for (;;) {
      const id = conn.wantsBody();
      if (id === undefined) return moved;
      const job = this.#jobs.get(id);
      if (!job || job.ended) return moved;
      if (job.chunks.length > 0) {
        const chunk = job.chunks[0];
        let taken;
        try {
          taken = conn.writeBody(id, chunk, monotonicNow());
        } catch (thrown) {
          // The message failed (its Failed event follows): stop reading its source.
          discard(thrown);
          job.ended = true;
          job.body.cancel();
          return true;
        }
        if (taken === 0) return moved;
        if (taken < chunk.byteLength) job.chunks[0] = chunk.subarray(taken);
        else job.chunks.shift();
        job.queued -= taken;
        this.#readBody(job);
        moved = true;
        continue;
      }
      if (job.readError) {
        this.#bodyReadFailed(job);
        return true;
      }
      if (job.mime && !job.sourceDone) {
        if (!this.#moveMime(job)) return moved;
        moved = true;
        continue;
      }
      if (job.sourceDone) {
        if (job.beforeEnd !== null && job.beforeEnd !== 'done') {
          this.#awaitBeforeEnd(job);
          return moved;
        }
        job.ended = true;
        try {
          conn.endBody(id, monotonicNow());
        } catch (thrown) {
          discard(thrown); // the message already failed; its Failed event says why
        }
        moved = true;
        continue;
      }
      this.#readBody(job);
      return moved;
    }
  }

  /**
   * Moves a structured message from its MIME builder into the engine (inside
   * wasm) and feeds the builder the attachment chunk it asks for. Returns
   * false when it must wait for a chunk to be read.
   */
  #moveMime(job) {
    const { builder, streams } = job.mime;
    let status;
    try {
      status = this.#conn.writeBodyFromBuilder(job.id, builder, monotonicNow());
    } catch (thrown) {
      // The message failed (its Failed event follows): stop reading its attachments.
      discard(thrown);
      job.ended = true;
      job.body.cancel();
      job.mime.release();
      return true;
    }
    if (status === MIME_BLOCKED) return true;
    if (status === MIME_DONE) {
      job.sourceDone = true;
      return true;
    }
    const next = job.attachment;
    if (next === null) {
      this.#readAttachment(job, streams[status]);
      return false;
    }
    job.attachment = null;
    try {
      if (next.chunk === null) builder.endAttachment(status);
      else builder.pushAttachment(status, next.chunk);
    } catch (thrown) {
      job.readError = toSmtpError(thrown);
      return true;
    }
    // Read the following chunk while the engine takes this one.
    if (next.chunk !== null) this.#readAttachment(job, streams[status]);
    return true;
  }

  /** Reads an attachment's next chunk off the loop into `job.attachment`; the result wakes the loop. */
  #readAttachment(job, stream) {
    if (job.reading || job.attachment !== null || job.readError || job.ended) return;
    job.reading = true;
    stream.next().then(
      (chunk) => {
        job.reading = false;
        job.attachment = { chunk };
        this.#post({ kind: 'body' });
      },
      (error) => {
        job.reading = false;
        job.readError = error;
        this.#post({ kind: 'body' });
      },
    );
  }

  /**
   * Reads the next chunk of a body off the loop, up to READ_AHEAD bytes
   * ahead of the engine; the result wakes the loop.
   */
  #readBody(job) {
    if (job.mime || job.reading || job.sourceDone || job.readError || job.ended || job.queued >= READ_AHEAD) return;
    job.reading = true;
    job.body.next().then(
      (chunk) => {
        job.reading = false;
        if (chunk === null) job.sourceDone = true;
        else {
          job.chunks.push(chunk);
          job.queued += chunk.byteLength;
          this.#readBody(job);
        }
        this.#post({ kind: 'body' });
      },
      (error) => {
        job.reading = false;
        job.readError = error;
        this.#post({ kind: 'body' });
      },
    );
  }

  /** Runs the caller's `beforeDataEnd` once; its outcome wakes the loop. */
  #awaitBeforeEnd(job) {
    if (job.beforeEnd === 'waiting') return;
    const hook = job.beforeEnd;
    job.beforeEnd = 'waiting';
    new Promise((resolve) => resolve(hook())).then(
      () => {
        job.beforeEnd = 'done';
        this.#post({ kind: 'body' });
      },
      (error) => {
        job.readError = new SmtpError({
          code: 'EINPUT',
          phase: 'data',
          message: `beforeDataEnd failed (${describe(error)}); the end of data was not sent, so the server does not have the message.`,
          hint: 'the callback passed to send() as beforeDataEnd must resolve before the message can be committed.',
          cause: error,
        });
        this.#post({ kind: 'body' });
      },
    );
  }

  #bodyReadFailed(job) {
    const error = job.readError;
    job.ended = true;
    job.mime?.release();
    if (this.#jobs.delete(job.id)) {
      const input =
        error instanceof SmtpError
          ? error
          : SmtpError.input(`reading the message body failed: ${describe(error)}.`, 'check the stream passed as raw.', 'data');
      input.transcript = this.transcript();
      job.reject(input);
    }
    // The engine holds a half-sent message: only dropping the link is safe.
    this.#post({ kind: 'abort' });
  }

  /**
   * Writes what the engine produced: one awaited write per flight
   * (back-pressure). Returns whether anything was written.
   */
  async #flush() {
    let wrote = false;
    for (;;) {
      const bytes = this.#takeTransmit();
      if (bytes === undefined) return wrote;
      const socket = this.#socket;
      if (!socket) continue; // nothing to write to (the connection never opened)
      wrote = true;
      try {
        await withStallLimit(socket.write(bytes), this.#writeStallMs);
      } catch (error) {
        // The transport may still hold the bytes: never reuse the buffer again.
        this.#txReuse = false;
        this.#conn.socketFailed(describe(error), error === STALLED, monotonicNow());
      }
    }
  }

  /**
   * The engine's next bytes for the socket, or undefined. A transport whose
   * sockets set `releasesWrites` (done with the bytes once `write` has
   * resolved) gets them in one buffer reused from write to write: no new
   * `ArrayBuffer` per write.
   */
  #takeTransmit() {
    const conn = this.#conn;
    if (!this.#txReuse || this.#socket?.releasesWrites !== true) return conn.pollTransmit();
    const length = conn.transmitLength;
    if (length === 0) return undefined;
    if (this.#txBuffer === null || this.#txBuffer.byteLength < length) this.#txBuffer = new Uint8Array(Math.max(length, TX_BUFFER));
    const bytes = this.#txBuffer.subarray(0, length);
    conn.pollTransmitInto(bytes);
    return bytes;
  }

  #dispatchEvents() {
    for (;;) {
      const event = this.#conn.pollEvent();
      // The dialog lines up to this event first: an error's transcript ends where it happened.
      this.#takeTranscript();
      if (event === undefined) return;
      try {
        this.#handleEvent(event);
      } finally {
        event.free();
      }
    }
  }

  /** The engine's dialog lines since the last call (a flat array: dir, text, dir, text...). */
  #takeTranscript() {
    const flat = this.#conn.takeTranscript();
    for (let i = 0; i < flat.length; i += 2) this.#addTranscript({ dir: flat[i], text: flat[i + 1] });
  }

  #handleEvent(event) {
    switch (event.kind) {
      case 'starttls':
        this.#startTls(event.serverName);
        break;
      case 'port-probe':
        this.#probePort(event.clientHello);
        break;
      case 'token-refused':
        this.#renewToken();
        break;
      case 'ready':
        this.#onReady(event.session);
        break;
      case 'delivered':
        this.#onDelivered(event.messageId, event.delivery);
        break;
      case 'failed':
        this.#settle(event.messageId, null, event.error);
        break;
      case 'closed': {
        const error = event.error;
        this.#closeError ??= error ? this.#fromEngine(error) : null;
        this.#done = true;
        break;
      }
    }
  }

  /**
   * The engine has heard no greeting yet and asks whether this port speaks
   * TLS first: a second connection to the same host and port sends the
   * engine's ClientHello, and the first bytes back (none, if nothing comes
   * within PORT_PROBE_WAIT_MS or it cannot connect) go to the engine, which
   * judges. The probe connection is closed either way; the session
   * connection is never written to.
   */
  #probePort(clientHello) {
    const { host, port } = this.#target;
    let probe = null;
    let reported = false;
    const report = (bytes) => {
      if (reported) return;
      reported = true;
      clearTimeout(timer);
      probe?.close();
      this.#post({ kind: 'port-probe', bytes });
    };
    const timer = setTimeout(() => report(new Uint8Array(0)), PORT_PROBE_WAIT_MS);
    Promise.resolve()
      .then(() => this.#transport.connect({ host, port, tls: false, upgradable: false, servername: host, ...this.#target.network }))
      .then((socket) => {
        probe = socket;
        if (reported) return socket.close();
        // A copy: a transport may reuse its read buffer.
        socket.onData = (bytes) => report(bytes.slice(0, 16));
        socket.onClose = () => report(new Uint8Array(0));
        return socket.write(clientHello);
      })
      .catch(() => report(new Uint8Array(0)));
  }

  /** The server refused the access token: the provider is asked for a fresh one (the engine retries AUTH with it). */
  #renewToken() {
    const renew = this.#renewAccessToken ?? (() => Promise.reject(new Error('no token provider was given')));
    Promise.resolve()
      .then(renew)
      .then(
        (token) => this.#post({ kind: 'token', token }),
        (error) => this.#post({ kind: 'token-failed', error: error ?? {} }),
      );
  }

  #startTls(serverName) {
    if (this.#conn.isClosed) return;
    const socket = this.#socket;
    if (this.#implicitTls) {
      // Implicit TLS: the transport's connect already ran the handshake.
      this.#implicitTls = false;
      this.#post({ kind: 'tls-up' });
      return;
    }
    // Bytes the server sent after its 220 must reach the engine, which
    // refuses them (they were not protected by TLS). Feed them before the
    // upgrade; the transport stops reading plaintext when startTls is called
    // (synchronously next, so no read can slip in between).
    this.#feedInbox();
    if (this.#conn.state !== 'tls-handshake' || !socket) return;
    const { tls } = this.#target;
    let upgrading;
    try {
      upgrading = Promise.resolve(
        socket.startTls({ servername: tls.servername ?? serverName, ca: tls.ca, rejectUnauthorized: tls.rejectUnauthorized }),
      );
    } catch (error) {
      upgrading = Promise.reject(error);
    }
    upgrading.then(
      () => this.#post({ kind: 'tls-up' }),
      (error) => this.#post({ kind: 'tls-failed', error }),
    );
  }

  #onReady(session) {
    this.pipelineWindow = this.#conn.pipelineWindow;
    try {
      this.info = sessionInfo(session);
    } finally {
      session.free();
    }
    this.#readyResolve(this.info);
    this.#changed();
  }

  #onDelivered(id, delivery) {
    let result;
    try {
      result = {
        accepted: delivery.accepted,
        rejected: delivery.rejected.map((r) => {
          try {
            return { address: r.address, code: r.code, enhancedCode: r.enhancedCode, message: r.message };
          } finally {
            r.free();
          }
        }),
        response: delivery.response,
        queueId: delivery.queueId,
      };
    } finally {
      delivery.free();
    }
    this.#settle(id, result, null);
  }

  /** An engine error as SmtpError; a connection lost behind a proxy says so. */
  #fromEngine(engineError) {
    return withProxyHint(SmtpError.fromEngine(engineError, this.transcript()), this.#target.network?.proxy);
  }

  #settle(id, result, engineError) {
    const job = this.#jobs.get(id);
    const error = engineError ? this.#fromEngine(engineError) : null;
    if (!job) return;
    this.#jobs.delete(id);
    this.#completed += 1;
    job.mime?.release();
    if (error) {
      job.body.cancel();
      job.reject(error);
    } else {
      job.resolve(result);
    }
    this.#changed();
  }

  #addTranscript(line) {
    this.#transcriptLines.push(line);
    if (this.#transcriptLines.length > TRANSCRIPT_KEPT) this.#transcriptLines.shift();
    if (this.#onTranscript) {
      try {
        this.#onTranscript(line);
      } catch {
        // A logging callback must not break the session.
      }
    }
  }

  /** Sleeps until something is posted or the engine's next deadline passes. */
  #sleep() {
    const deadline = this.#conn.pollTimeout();
    let timer;
    return new Promise((resolve) => {
      this.#wake = resolve;
      if (deadline !== undefined) {
        timer = setTimeout(() => {
          this.#timerFiredFor = deadline;
          this.#wake = null;
          resolve();
        }, Math.max(0, deadline - monotonicNow()));
      }
    }).finally(() => clearTimeout(timer));
  }

  /** Drops the link if the QUIT reply takes longer than QUIT_REPLY_WAIT. */
  #limitQuitWait() {
    if (this.#quitTimer !== null) return;
    this.#quitTimer = setTimeout(() => this.#post({ kind: 'abort' }), QUIT_REPLY_WAIT);
    this.#quitTimer.unref?.();
  }

  #quitTimer = null;

  #finish() {
    this.#done = true;
    clearTimeout(this.#quitTimer);
    try {
      this.#inspect?.(this.#conn);
    } catch {}
    try {
      this.#socket?.close();
    } catch {}
    const error = this.#closedError();
    for (const job of this.#jobs.values()) {
      job.body.cancel();
      job.mime?.release();
      job.reject(error);
    }
    this.#jobs.clear();
    if (this.info === null) this.#readyReject(error);
    this.#conn.free();
    this.#releaseReads();
    this.#closedResolve();
    this.#quitWrittenResolve();
    this.#changed();
  }

  #closedError() {
    return (
      this.#closeError ??
      new SmtpError({
        code: 'ECLOSED',
        phase: 'quit',
        message: 'the connection closed before the operation finished.',
        retryable: true,
        resendSafe: true,
        transcript: this.transcript(),
      })
    );
  }

  #changed() {
    try {
      this.onChange?.(this);
    } catch {}
  }
}

/**
 * A `SecureConnection` (TLS inside the engine) for `tls: { ca, pin,
 * rejectUnauthorized }`. The wall-clock time goes in for certificate
 * validity. Throws an EngineError (EINPUT) for an unreadable CA or pin.
 */
function newSecureConnection(engine, engineOptions, tls) {
  if (typeof engine.SecureConnection !== 'function') {
    throw SmtpError.input(
      "tls.engine 'wasm' needs the engine built with TLS, which this entry point did not load.",
      "import from 'wasmtp' (Node, Deno, Bun) or 'wasmtp/workers/tls' (Cloudflare Workers).",
      'tls',
    );
  }
  if (tls.servername !== undefined) {
    throw SmtpError.input(
      "tls.servername is not supported with tls.engine 'wasm': the certificate is checked against host.",
      'set host to the name the certificate names.',
      'tls',
    );
  }
  const options = new engine.TlsOptions(Date.now());
  try {
    for (const pem of list(tls.ca)) options.addCa(String(pem));
    for (const pin of list(tls.pin)) options.addPin(String(pin));
    if (tls.cert !== undefined) options.setClientCertificate(pemText(tls.cert), pemText(tls.key));
    // The doctor's probes complete the handshake to report the certificate;
    // the engine then withholds credentials (authorized: false).
    if (tls.acceptUnverifiedForDiagnosis === true) options.acceptUnverifiedForDiagnosis();
    else options.setRejectUnauthorized(tls.rejectUnauthorized !== false);
    return new engine.SecureConnection(engineOptions, options, monotonicNow());
  } finally {
    options.free();
  }
}

/** PEM given as text, bytes or a list of either, as one text. */
function pemText(value) {
  return list(value)
    .map((part) => (part instanceof Uint8Array ? new TextDecoder().decode(part) : String(part)))
    .join('\n');
}

/** The plain object `verify()` and the pool see for a ready session. */
function sessionInfo(s) {
  return {
    greeting: s.greeting,
    capabilities: {
      domain: s.domain,
      esmtp: s.esmtp,
      extensions: s.extensions,
      auth: s.authMechanisms,
      sizeLimit: s.sizeLimit,
      pipelining: s.pipelining,
      chunking: s.chunking,
      eightBitMime: s.eightBitMime,
      smtpUtf8: s.smtpUtf8,
      dsn: s.dsn,
      starttls: s.starttls,
      requireTls: s.requireTls,
      enhancedStatusCodes: s.enhancedStatusCodes,
    },
    tls: s.tlsVersion === undefined ? null : { version: s.tlsVersion, cipher: s.tlsCipher, authorized: s.tlsAuthorized },
    authMethod: s.authMethod ?? null,
  };
}

/** Frees an error the bindings threw whose content the engine reports again as an event. */
function discard(thrown) {
  toSmtpError(thrown);
}

const STALLED = new Error('the write made no progress');

/** Rejects with STALLED when a write takes longer than the command time-out. */
function withStallLimit(write, limitMs) {
  if (!write || typeof write.then !== 'function') return Promise.resolve();
  let timer;
  const stall = new Promise((_, reject) => {
    timer = setTimeout(() => reject(STALLED), limitMs);
  });
  return Promise.race([write, stall]).finally(() => clearTimeout(timer));
}

/** A runtime error as text for the engine (which classifies TLS failures by it). */
function describe(error) {
  if (error === undefined || error === null) return 'unknown error';
  if (typeof error === 'string') return error;
  // OpenSSL errors carry a one-line `reason` ("wrong version number") next
  // to a multi-line message with library internals.
  const message = typeof error.reason === 'string' && error.reason ? error.reason : (error.message ?? String(error));
  return error.code && !message.includes(error.code) ? `${message} (${error.code})` : message;
}

