// Types for the `wasmtp` package: an SMTP client whose protocol engine is
// Rust compiled to WebAssembly. See API.md for the contract.

/** How the connection is protected. Each mode means exactly what it says. */
export type Security =
  /** TLS from the first byte (RFC 8314 implicit TLS, usually port 465). */
  | 'tls'
  /** Plaintext greeting, then STARTTLS is required: without it nothing is sent. */
  | 'starttls'
  /** STARTTLS when offered, plaintext when not. */
  | 'opportunistic'
  /** Never STARTTLS, even when offered. */
  | 'none';

export type AuthMethod = 'PLAIN' | 'LOGIN' | 'CRAM-MD5' | 'XOAUTH2' | 'OAUTHBEARER';

export type Auth =
  | {
      /** The account name. */
      user: string;
      /** The password (or app password). */
      pass: string;
      /** Forces one SASL mechanism. Default: the best one offered (PLAIN over TLS, then LOGIN, then CRAM-MD5). */
      method?: AuthMethod;
    }
  | {
      /** The account name. */
      user: string;
      /** An OAuth 2.0 access token. */
      accessToken: string;
      /** Forces one mechanism. Default: XOAUTH2 when offered, then OAUTHBEARER. */
      method?: AuthMethod;
    };

export interface TlsOptions {
  /** Extra trusted CA certificates (PEM), added to the runtime's roots; for a self-signed server, its certificate. Default: none. */
  ca?: string | string[];
  /** The name the certificate must match (and the SNI). Default: `host`. */
  servername?: string;
  /** Verify the certificate. Default: true. Prefer `ca` to turning this off; when off, results report `authorized: false`. Not available with `engine: 'wasm'` (use `pin`). */
  rejectUnauthorized?: boolean;
  /**
   * Who runs TLS. Default: "native" (the runtime's TLS). "wasm": TLS runs inside the engine
   * (rustls, public roots from webpki-roots plus `ca`) over a raw socket, on any runtime; it loads a
   * second, larger wasm artifact. On Cloudflare Workers it needs the `wasmtp/workers/tls` entry.
   */
  engine?: 'native' | 'wasm';
  /**
   * With `engine: 'wasm'`: accept only a server certificate with this SHA-256 fingerprint
   * ("AB:CD:…" as `openssl x509 -noout -fingerprint -sha256` prints it, or hex); no CA needed then. Default: none.
   */
  pin?: string | string[];
}

/** Time-outs in milliseconds; each phase fails with ETIMEDOUT when it takes longer. */
export interface Timeouts {
  /** Opening the TCP connection. Default: 30000. */
  connect?: number;
  /** The TLS handshake (implicit TLS or after STARTTLS). Default: 30000. */
  tlsHandshake?: number;
  /** Waiting for the server's 220 greeting. Default: 30000. */
  greeting?: number;
  /** Any command reply other than the end of data; also how long a write may stall. Default: 60000. */
  command?: number;
  /** The final reply after the message data (RFC 5321's 10 minutes). Default: 600000. */
  dataEnd?: number;
}

export interface PoolOptions {
  /** Connections open at once for concurrent sends. Default: 4. */
  maxConnections?: number;
  /** Messages sent over one connection before it is replaced. Default: 100. */
  maxMessagesPerConnection?: number;
  /** An unused connection is closed (QUIT) after this many ms; it does not keep the process alive meanwhile. Default: 30000. */
  idleTimeout?: number;
  /** At most this many messages start per second, across all connections (a token bucket). Default: no limit. */
  rate?: number;
  /** With `rate`: how many messages may start at once after a quiet spell. Default: 1 (evenly spaced). */
  rateBurst?: number;
}

/** One line of the SMTP dialog, credentials redacted. */
export interface TranscriptLine {
  /** "C" client, "S" server, "tls" a note about the TLS layer. */
  dir: 'C' | 'S' | 'tls';
  text: string;
}

export interface ClientOptions {
  /** The server's host name or IP address. Required. */
  host: string;
  /** Default: 465 for "tls", 587 for "starttls", 25 for "opportunistic"/"none"; 587 when security is not set either. */
  port?: number;
  /** Default: chosen from the port (465 → "tls", 587 → "starttls", others → "opportunistic"); "starttls" when neither is set. */
  security?: Security;
  /** Credentials; sent only over TLS unless `allowInsecureAuth`. Default: none (no AUTH). */
  auth?: Auth;
  /** Certificate verification. Default: verify against the runtime's roots, name = host. */
  tls?: TlsOptions;
  /** Allow credentials over an unencrypted connection (only for a trusted local test server). Default: false. */
  allowInsecureAuth?: boolean;
  /** The name sent with EHLO. Default: "localhost". */
  clientName?: string;
  /** Per-phase time-outs in ms. */
  timeouts?: Timeouts;
  /** Speak LMTP (RFC 2033) instead of SMTP. Default: false. */
  lmtp?: boolean;
  /** The connection pool used by concurrent `send` calls. */
  pool?: PoolOptions;
  /** Called with every line of the dialog (credentials redacted). Default: none. */
  onTranscript?: (line: TranscriptLine) => void;
  /** The socket provider. Default: the runtime's (node:net / node:tls on Node and Bun, Deno.connect on Deno, cloudflare:sockets from `wasmtp/workers`). */
  transport?: Transport;
}

/** Message body content: text, bytes, or a stream of either. */
export type Content = string | Uint8Array | ArrayBuffer | ReadableStream<Uint8Array | string> | AsyncIterable<Uint8Array | string>;

export interface Attachment {
  /** The file name shown to the recipient. */
  filename?: string;
  /** The bytes, or a stream read as the message is sent. */
  content: Content;
  /** e.g. "application/pdf". Default: guessed from the file name's extension. */
  contentType?: string;
  /** Content-ID, for `<img src="cid:...">` in the HTML. Default: none. */
  cid?: string;
  /** Default: "inline" with a cid, "attachment" otherwise. */
  contentDisposition?: 'inline' | 'attachment';
}

/** A message built by wasmtp (MIME in Rust). */
export interface StructuredMessage {
  /** The author: "ann@example.com" or "Ann <ann@example.com>"; also the envelope sender. */
  from: string;
  to?: string | string[];
  cc?: string | string[];
  /** Recipients left out of the headers. */
  bcc?: string | string[];
  replyTo?: string | string[];
  subject?: string;
  /** The plain-text body. */
  text?: string;
  /** The HTML body; with `text` too, the message offers both. */
  html?: string;
  attachments?: Attachment[];
  /** Extra headers (line breaks refused); an array keeps order and repeats. */
  headers?: Record<string, string> | [string, string][];
  /** Default: generated from random bytes and the sender's domain. */
  messageId?: string;
  raw?: undefined;
}

export interface Envelope {
  /** MAIL FROM: a bare address, or "" for the null sender. */
  from: string;
  /** RCPT TO: bare addresses. */
  to: string | string[];
  /** Declare SMTPUTF8 even for ASCII addresses (UTF-8 headers). Default: only when an address needs it. */
  smtputf8?: boolean;
  /** RFC 8689 REQUIRETLS. Default: false. */
  requireTls?: boolean;
  /** Delivery status notifications (RFC 3461). Default: none. */
  dsn?: { ret?: 'full' | 'headers'; envid?: string; notify?: ('success' | 'failure' | 'delay' | 'never')[] };
}

/** A message given as RFC 5322 bytes, sent as is. */
export interface RawMessage {
  raw: Content;
  envelope: Envelope;
}

export type Message = StructuredMessage | RawMessage;

export interface RejectedRecipient {
  address: string;
  /** The reply code, e.g. 550. */
  code: number;
  /** e.g. "5.1.1", when the server sent one. */
  enhancedCode?: string;
  message: string;
}

export interface SendResult {
  /** The Message-ID header (for raw messages, when the headers have one). */
  messageId?: string;
  /** Recipients the server accepted. */
  accepted: string[];
  /** Recipients the server refused while others were accepted. */
  rejected: RejectedRecipient[];
  /** The server's final reply, e.g. "250 2.0.0 Ok: queued as 4BCD". */
  response: string;
  /** The queue id when the final reply names one. */
  queueId?: string;
}

export interface Capabilities {
  /** The server's name from its EHLO reply. */
  domain: string;
  /** False when the server only answered HELO. */
  esmtp: boolean;
  /** Every EHLO keyword line, e.g. "SIZE 10240000". */
  extensions: string[];
  /** SASL mechanisms offered. */
  auth: string[];
  /** The SIZE limit in octets, when announced. */
  sizeLimit?: number;
  pipelining: boolean;
  chunking: boolean;
  eightBitMime: boolean;
  smtpUtf8: boolean;
  dsn: boolean;
  starttls: boolean;
  requireTls: boolean;
  enhancedStatusCodes: boolean;
}

export interface VerifyResult {
  /** From the last EHLO (after TLS when TLS is used). */
  capabilities: Capabilities;
  /** null on a plaintext connection. */
  tls: { version: string; cipher?: string; authorized: boolean } | null;
  /** The SASL mechanism used; null without auth. */
  authMethod: AuthMethod | null;
  /** The server's greeting, e.g. "220 mx.example.com ESMTP". */
  greeting: string;
}

export interface Client {
  /** Sends one message; resolves after the server's final 2xx, rejects with SmtpError. */
  send(message: Message): Promise<SendResult>;
  /** Connects, runs TLS, EHLO and AUTH, then QUITs; rejects with SmtpError. */
  verify(): Promise<VerifyResult>;
  /** Lets queued messages finish, then closes every connection. */
  close(): Promise<void>;
}

export function createClient(options: ClientOptions): Client;

export type ErrorCode =
  | 'ECONNECT'
  | 'ETIMEDOUT'
  | 'ETLS'
  | 'ECERT'
  | 'ETLS_PORT_MISMATCH'
  | 'ESTARTTLS_UNAVAILABLE'
  | 'EAUTH'
  | 'EAUTH_UNSUPPORTED'
  | 'EAUTH_INSECURE'
  | 'EENVELOPE'
  | 'ERECIPIENTS'
  | 'EMESSAGE'
  | 'ESIZE'
  | 'EUTF8'
  | 'EPROTOCOL'
  | 'ECLOSED'
  | 'EINPUT';

export type Phase = 'connect' | 'tls' | 'greeting' | 'ehlo' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'data' | 'quit';

/** Every failure. `message` is "CODE (phase): what happened. Hint: the likely fix." */
export class SmtpError extends Error {
  readonly name: 'SmtpError';
  readonly code: ErrorCode;
  readonly phase: Phase;
  /** The most likely fix, when one is known (also part of `message`). */
  readonly hint?: string;
  /** The engine's sentence alone, without code, phase or hint. */
  readonly detail: string;
  /** The server reply that caused the error. */
  readonly reply?: { code: number; enhancedCode?: string; lines: string[] };
  /** Trying again later may succeed (4xx replies, time-outs, dropped connections). */
  readonly retryable: boolean;
  /** "unknown": the connection died after the data and before the final reply; resending may duplicate. */
  readonly deliveryState: 'not-sent' | 'unknown';
  /** The last lines of the dialog, credentials redacted. */
  readonly transcript?: TranscriptLine[];
}

/** What a runtime supplies: opens sockets. */
export interface Transport {
  connect(opts: {
    host: string;
    port: number;
    /** Run the TLS handshake before resolving (implicit TLS). A failure after the TCP connection opened must set `tlsHandshake: true` on the error. */
    tls: boolean;
    /** `startTls` may be called later (Workers: open with secureTransport "starttls"); false for a plaintext or raw (TLS in wasm) connection. */
    upgradable?: boolean;
    servername?: string;
    ca?: string | string[];
    rejectUnauthorized?: boolean;
  }): Promise<Socket>;
}

/** An open connection. The driver sets `onData` and `onClose`; bytes arriving earlier must be buffered. */
export interface Socket {
  /** Resolves when the bytes are handed to the network (back-pressure). */
  write(bytes: Uint8Array): Promise<void> | void;
  /** Upgrades this connection in place; from the call on, no plaintext byte may be delivered. */
  startTls(opts: { servername: string; ca?: string | string[]; rejectUnauthorized?: boolean }): Promise<void>;
  close(): void;
  /**
   * Bytes arrived (decrypted when TLS is up). The returned promise resolves once the driver has acted
   * on them: a transport that reads by pulling waits for it before the next read, so no read is
   * pending when `startTls` is called. Push-style transports may ignore it.
   */
  onData: ((bytes: Uint8Array) => Promise<void> | void) | null;
  /** End of stream (no argument) or a socket error. */
  onClose: ((error?: Error) => void) | null;
  /**
   * TLS facts once encrypted. `handshakePending`: the platform reports a failed handshake (a refused
   * certificate) only at the first read or write (Workers); the engine then reports it as ECERT.
   */
  readonly tlsInfo?: { version: string; cipher?: string; authorized: boolean; authorizationError?: string; handshakePending?: boolean };
  /** Optional: let an idle socket stop holding the process open, and undo it. */
  ref?(): void;
  unref?(): void;
}

/** The built-in node:net / node:tls transport (the default on Node and Bun). Not exported by `wasmtp/workers`. */
export const nodeTransport: Transport;
/** Deno.connect / Deno.startTls (the default on Deno). Not exported by `wasmtp/workers`. */
export const denoTransport: Transport;
/** Bun.connect / upgradeTLS, an opt-in alternative on Bun. Not exported by `wasmtp/workers`. */
export const bunTransport: Transport;
/** The runtime the default entry detected. Not exported by `wasmtp/workers`. */
export const runtime: 'node' | 'deno' | 'bun';

export interface DiagnoseOptions extends Omit<ClientOptions, 'port' | 'security' | 'pool' | 'onTranscript'> {
  /** The set-ups to try, in order. Default: 465 "tls", 587 "starttls", 25 "opportunistic". */
  probes?: { port: number; security: Security }[];
}

export type ProbeResult =
  | ({ port: number; security: Security; ok: true; ms: number } & VerifyResult)
  | {
      port: number;
      security: Security;
      ok: false;
      ms: number;
      /** The engine's verdict: code, phase, sentence and most likely fix. */
      error: { code: ErrorCode; phase: Phase; message: string; hint?: string; reply?: SmtpError['reply']; retryable: boolean };
    };

export interface DiagnoseReport {
  host: string;
  /** One result per probe, in order. */
  results: ProbeResult[];
  /** The best working set-up (verified TLS first), or null when none works. */
  recommended: { port: number; security: Security } | null;
  /** One line per probe, for a person. */
  summary: string[];
}

/** Tries each set-up with verify() (short time-outs) and explains what works and why not. */
export function diagnose(options: DiagnoseOptions): Promise<DiagnoseReport>;
