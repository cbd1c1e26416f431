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
      /** The account name (for Gmail and Microsoft 365: the mailbox address the token was issued for). */
      user: string;
      /**
       * An OAuth 2.0 access token, or a token provider that fetches one
       * (such as `oauth2({ ... })`). A provider is called when a connection
       * opens; a token with `expires` is cached (per provider and user,
       * shared by every connection) until a minute before it expires, and
       * concurrent connections share one call. When the server refuses the
       * token, the provider is called once more with `refresh: true` and
       * AUTH is retried on the same connection; a second refusal, or a
       * provider that fails, is `EAUTH`. A plain string is never renewed.
       */
      accessToken: string | AccessTokenProvider;
      /** Forces one mechanism. Default: XOAUTH2 when offered, then OAUTHBEARER. */
      method?: AuthMethod;
    };

/** What a token provider is called with. */
export interface AccessTokenContext {
  /** `auth.user`. */
  user: string;
  /** True when a server refused the last token: return a fresh one, never a cached one. */
  refresh: boolean;
}

/**
 * Fetches an OAuth 2.0 access token: the token (not cached: asked for again
 * by every new connection), or `{ accessToken, expires }` (`expires`: a
 * Date or milliseconds since 1970; cached until a minute before). Waited
 * for up to `timeouts.command`.
 */
export type AccessTokenProvider = (context: AccessTokenContext) => AccessToken | Promise<AccessToken>;

export type AccessToken = string | { accessToken: string; expires?: Date | number };

export interface OAuth2Options {
  /**
   * The token endpoint (https; http only for localhost). Gmail:
   * `https://oauth2.googleapis.com/token`; Microsoft 365:
   * `https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token`.
   */
  tokenUrl: string;
  /** The app's client id. */
  clientId: string;
  /** The app's client secret. Default: none (a public client). */
  clientSecret?: string;
  /** The refresh token from the user's consent. A new one the endpoint returns replaces it. */
  refreshToken: string;
  /** Scopes to ask for (space-separated), e.g. Microsoft's `https://outlook.office.com/SMTP.Send offline_access`. Default: those of the consent. */
  scope?: string;
}

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
  /**
   * The oldest TLS version accepted. Default and floor: "TLSv1.2" (older versions are never used).
   * "TLSv1.3": a server that negotiates less fails with ETLS before any command is sent. With
   * `engine: 'wasm'` the handshake itself refuses it; the runtime's TLS is checked after every
   * handshake (and, with a client certificate or `ciphers`, refuses it in the handshake too). On
   * Deno it switches to Deno's node:tls, which reports the version (Deno.startTls does not).
   * Workers: EINPUT (its sockets do not report the version; use `engine: 'wasm'`).
   */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
  /**
   * A client certificate chain (PEM) to present when the server asks for one; needs `key`.
   * Node.js, Bun and Deno (through Deno's node:tls, picked automatically); `engine: 'wasm'` on
   * every runtime. Workers' own TLS and custom transports without `supports.clientCertificate`:
   * EINPUT naming the option and the runtime. Default: none.
   */
  cert?: string | Uint8Array | Array<string | Uint8Array>;
  /** The private key (PEM) of `cert`. With `engine: 'wasm'` it must be unencrypted. Default: none. */
  key?: string | Uint8Array | Array<string | Uint8Array>;
  /** Decrypts an encrypted `key` or `pfx`; a wrong one is EINPUT. Node.js, Bun and Deno (EINPUT on Workers and with `engine: 'wasm'`). Default: none. */
  passphrase?: string;
  /** A PKCS#12 file (bytes) holding the client certificate and key, instead of `cert` and `key`. Node.js, Bun and Deno (EINPUT on Workers and with `engine: 'wasm'`). Default: none. */
  pfx?: string | Uint8Array | Array<string | Uint8Array>;
  /**
   * An OpenSSL cipher list for TLS 1.2 (e.g. "ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256").
   * Node.js, Bun and Deno (node:tls); EINPUT on Workers and with `engine: 'wasm'` (whose fixed set
   * of modern suites cannot be changed). Default: the runtime's.
   */
  ciphers?: string;
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
  /**
   * Messages sent over one connection before it is replaced. Default: 100.
   * The successor connects while the old connection sends its last messages
   * (briefly `maxConnections` + 1 connections), unless the server refused
   * such an overlap once.
   */
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
  /** The name sent with EHLO. Default: the machine's fully qualified name where the runtime tells it (Node, Deno, Bun), else "localhost". */
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
  /**
   * Reach the server through a proxy: "http://user:pass@host:port" (HTTP CONNECT, Basic auth;
   * default port 8080) or "socks5://user:pass@host:port" (SOCKS5, user/password per RFC 1929;
   * default port 1080; "socks5h://" is the same). The proxy resolves the server's name (nothing is
   * looked up locally) and every connection goes through it; TLS still runs end to end (implicit,
   * STARTTLS and `tls.engine: 'wasm'`). "env" (opt-in) takes the URL from WASMTP_PROXY, else
   * ALL_PROXY / all_proxy, and connects directly when none is set. Node.js, Deno and Bun;
   * EINPUT on Workers and for a custom transport that does not declare `supports.proxy`.
   * A proxy that cannot be reached, refuses the credentials or the server fails with EPROXY
   * (phase "proxy"). Default: none (direct).
   */
  proxy?: string;
  /** The local IP address to connect from (one interface of several); with `proxy`, the address the proxy is reached from. Node.js, Bun and Deno (node:net); EINPUT on Workers. Default: the system's choice. */
  localAddress?: string;
  /**
   * Sign every message with DKIM: one key, or several (one DKIM-Signature each, e.g. RSA and
   * Ed25519 side by side, or an old and a new key during a rotation). `send(message, { dkim })`
   * replaces it per message. A key that does not parse is EINPUT here, before anything connects.
   * Default: no signature.
   */
  dkim?: DkimOptions | DkimOptions[];
}

/**
 * The signer for a key held elsewhere (a KMS, an HSM). It gets exactly what `crypto.subtle.sign`
 * would: for rsa-sha256 the data to sign (sign it with RSASSA-PKCS1-v1_5 and SHA-256); for
 * ed25519-sha256 the 32-byte SHA-256 digest of that data (sign it with Ed25519, RFC 8463).
 * Resolves to the signature bytes.
 */
export type DkimSigner = (data: Uint8Array, info: { algorithm: DkimAlgorithm; domain: string; selector: string }) => Promise<Uint8Array | ArrayBuffer>;

export type DkimAlgorithm = 'rsa-sha256' | 'ed25519-sha256';

export interface DkimOptions {
  /** The signing domain (d=), e.g. "example.com" (an internationalised domain in its xn-- form). */
  domain: string;
  /** The selector (s=): the public key is published as a TXT record at `<selector>._domainkey.<domain>`. */
  selector: string;
  /**
   * An unencrypted PEM private key (PKCS#8 RSA or Ed25519, `-----BEGIN PRIVATE KEY-----`; or
   * PKCS#1 RSA, `-----BEGIN RSA PRIVATE KEY-----`), as a string or the PEM file's bytes; a private
   * `CryptoKey` (RSASSA-PKCS1-v1_5 with SHA-256, or Ed25519, usage "sign"); or a signer function.
   */
  privateKey: string | Uint8Array | CryptoKey | DkimSigner;
  /** Default: the key's own (PEM, CryptoKey); "rsa-sha256" for a signer function. */
  algorithm?: DkimAlgorithm;
  /**
   * Header fields to sign. Default: From, To, Cc, Subject, Date, Message-ID, Reply-To,
   * In-Reply-To, References, MIME-Version, Content-Type, List-Unsubscribe, List-Unsubscribe-Post
   * (those present). From is always signed, and listed once more than it occurs, so a From added
   * later breaks the signature.
   */
  headers?: string[];
  /** Header/body canonicalization (c=). Default: "relaxed/relaxed". */
  canonicalization?: 'relaxed/relaxed' | 'relaxed/simple' | 'simple/relaxed' | 'simple/simple' | 'relaxed' | 'simple';
  /** Seconds the signature stays valid (x=). Default: no expiry. The body length tag l= is never used. */
  expires?: number;
}

/** Message body content: text, bytes, or a stream of either. */
export type Content =
  | string
  | Uint8Array
  | ArrayBuffer
  | ReadableStream<Uint8Array | string>
  | AsyncIterable<Uint8Array | string>
  /** Opens the content afresh on each call: read twice without spooling (a retry, a DKIM signature's first pass). */
  | (() => ContentValue | Promise<ContentValue>);

/** What a content function returns. */
export type ContentValue = string | Uint8Array | ArrayBuffer | ReadableStream<Uint8Array | string> | AsyncIterable<Uint8Array | string>;

/**
 * Text or HTML body: text, bytes, a stream, a file (`{ path }`, Node/Deno/Bun) or a URL (`{ href }`).
 * A stream, file or URL is encoded as it is read while the message is sent (quoted-printable, never held
 * whole); it must be UTF-8 (EINPUT otherwise, and the message is not delivered). A file is checked before connecting.
 */
export type BodyContent = Content | { path: string } | { href: string; httpHeaders?: Record<string, string> };

/** Where a part's bytes come from: exactly one of `content`, `path`, `href` or `raw`. */
export interface PartSource {
  /** The bytes, or a stream read as the message is sent. A string is UTF-8 unless `encoding` says otherwise. */
  content?: Content;
  /** How a string `content` spells its bytes: "base64", "hex", "binary" (one byte per character) or "utf8" (default). */
  encoding?: 'base64' | 'base64url' | 'hex' | 'binary' | 'latin1' | 'ascii' | 'utf8' | 'utf-8';
  /** A file, streamed as the message is sent (Node, Deno, Bun); checked before connecting. An http(s) or data: URL is fetched instead. */
  path?: string;
  /** A URL fetched and streamed as the message is sent (data: URLs too); a failed fetch ends the message unsent (EINPUT). */
  href?: string;
  /** Request headers for `href`. */
  httpHeaders?: Record<string, string>;
  /** More headers of this part (not the Content-* ones, which come from the fields). */
  headers?: Record<string, string | string[]> | [string, string][];
  /**
   * How the part is written. "base64" (default) suits any bytes; "quoted-printable" (text/* types keep
   * their line ends, other types every byte); "7bit": ASCII without NUL and lines of at most 998 octets,
   * else EINPUT; "8bit": the same with bytes above 127, which declares BODY=8BITMIME, refused (EMESSAGE)
   * by a server without 8BITMIME. Line ends are written CRLF. Case is ignored.
   */
  contentTransferEncoding?: 'base64' | 'quoted-printable' | '7bit' | '8bit';
  /**
   * The whole MIME part, given by you (nodemailer's `raw`): its headers, an empty line, its body; as text,
   * bytes, a stream, `{ path }` or `{ href }`. Checked as it is sent: header lines `Name: value` in ASCII,
   * the empty line present, no NUL, lines of at most 998 octets, no line starting like the message's
   * boundaries; bare CR or LF written CRLF. Bytes above 127 are allowed when the part is in hand (the
   * message is then 8BITMIME), not from a stream. The fields that would describe the part (filename,
   * contentType, cid, contentDisposition, headers, encoding, contentTransferEncoding) are refused with it.
   */
  raw?: Content | { path: string } | { href: string; httpHeaders?: Record<string, string> };
}

export interface Attachment extends PartSource {
  /** The file name shown to the recipient. */
  filename?: string;
  /** e.g. "application/pdf". Default: guessed from the file name's extension. */
  contentType?: string;
  /** Content-ID, for `<img src="cid:...">` in the HTML. Default: none. */
  cid?: string;
  /** Default: "inline" with a cid, "attachment" otherwise. */
  contentDisposition?: 'inline' | 'attachment';
}

/** Another version of the body, next to text and html in multipart/alternative. */
export interface Alternative extends PartSource {
  /** e.g. "text/x-web-markdown". Default: guessed from `filename`. */
  contentType?: string;
  filename?: string;
}

/** A calendar invitation: a text/calendar alternative with `method`, and the same file attached as invite.ics. */
export type IcalEvent =
  | string
  | { method?: string; content?: string | Uint8Array; path?: string; href?: string; httpHeaders?: Record<string, string>; filename?: string; encoding?: 'base64' | 'hex' | 'binary' | 'utf8' };

/** One List-* URL: a URL, an e-mail address (mailto:) or a host (http://), with an optional ASCII comment. */
export type ListUrl = string | { url: string; comment?: string };

/** List-* headers (RFC 2369, RFC 2919). An array gives one header per entry; an entry that is an array lists several URLs in one header. */
export interface ListHeaders {
  help?: ListUrl | (ListUrl | ListUrl[])[];
  unsubscribe?: ListUrl | (ListUrl | ListUrl[])[];
  subscribe?: ListUrl | (ListUrl | ListUrl[])[];
  post?: ListUrl | (ListUrl | ListUrl[])[];
  owner?: ListUrl | (ListUrl | ListUrl[])[];
  archive?: ListUrl | (ListUrl | ListUrl[])[];
  /** List-Id: one list identifier, e.g. { url: 'news.example.com', comment: 'Example News' }. */
  id?: ListUrl;
  /** RFC 8058 one-click unsubscribe: adds List-Unsubscribe-Post; needs an https unsubscribe URL. */
  oneClick?: boolean;
}

/** An address: "ann@example.com", "Ann <ann@example.com>" or { name, address }. */
export type Address = string | { name?: string; address: string };

/**
 * A message built by wasmtp (MIME in Rust). Every key is checked: an unknown one (nodemailer's
 * names included) or a value of the wrong type is EINPUT before anything connects; `null` and
 * `undefined` mean absent.
 */
export interface StructuredMessage {
  /** The author; also the envelope sender unless `envelope.from` is given. */
  from: Address;
  to?: Address | Address[];
  cc?: Address | Address[];
  /** Recipients left out of the headers. */
  bcc?: Address | Address[];
  replyTo?: Address | Address[];
  /** Sender: who sent the message on behalf of `from`. */
  sender?: Address;
  subject?: string;
  /** The plain-text body. */
  text?: BodyContent;
  /** The HTML body; with `text` too, the message offers both. */
  html?: BodyContent;
  attachments?: Attachment[];
  /** More versions of the body (after text and html). */
  alternatives?: Alternative[];
  icalEvent?: IcalEvent;
  /** In-Reply-To: the Message-ID this message answers. */
  inReplyTo?: string;
  /** References: Message-IDs of the thread (a string may hold several, space-separated). */
  references?: string | string[];
  /** The Date header. Default: now. */
  date?: Date | string | number;
  /** "high" / "low" add X-Priority, X-MSMail-Priority and Importance. Default: none. */
  priority?: 'high' | 'normal' | 'low';
  list?: ListHeaders;
  /** Extra headers (line breaks refused); an array keeps order and repeats, an array value repeats the header. */
  headers?: Record<string, string | string[]> | [string, string][];
  /** Default: generated from random bytes and the sender's domain. */
  messageId?: string;
  /**
   * MAIL FROM / RCPT TO when they differ from the headers (bounce addresses, list expansion), and
   * DSN / REQUIRETLS. `from` defaults to the From address, `to` to To + Cc + Bcc.
   */
  envelope?: Partial<Envelope>;
  raw?: undefined;
}

export interface Envelope {
  /** MAIL FROM: a bare address, or "" for the null sender. */
  from: string | { address: string };
  /** RCPT TO: bare addresses. `cc` and `bcc` are recipients too. */
  to: string | { address: string } | (string | { address: string })[];
  cc?: string | { address: string } | (string | { address: string })[];
  bcc?: string | { address: string } | (string | { address: string })[];
  /** Declare SMTPUTF8 even for ASCII addresses (UTF-8 headers). Default: only when an address needs it. */
  smtputf8?: boolean;
  /** RFC 8689 REQUIRETLS. Default: false. */
  requireTls?: boolean;
  /** Delivery status notifications (RFC 3461). Default: none. `notify`: some of success, failure, delay, or ['never'] alone. */
  dsn?: { ret?: 'full' | 'headers'; envid?: string; notify?: ('success' | 'failure' | 'delay')[] | ['never'] };
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
  /** MAIL FROM and RCPT TO as sent (after A-label conversion of international domains). */
  envelope: { from: string; to: string[] };
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

export interface SendOptions {
  /**
   * Awaited after the last body byte was read and before the end of data is handed to the engine
   * (on every attempt): until it resolves the server cannot have the message. If it rejects, the
   * end of data is not sent and `send` rejects (EINPUT). The outbox saves "committing" here. Default: none.
   */
  beforeDataEnd?: () => void | Promise<void>;
  /** DKIM keys for this message, replacing the client's `dkim`; `false` sends it unsigned. */
  dkim?: DkimOptions | DkimOptions[] | false;
}

export interface Client {
  /** Sends one message; resolves after the server's final 2xx, rejects with SmtpError. */
  send(message: Message, options?: SendOptions): Promise<SendResult>;
  /** Connects, runs TLS, EHLO and AUTH, then QUITs; rejects with SmtpError. */
  verify(): Promise<VerifyResult>;
  /**
   * Lets queued messages finish, then closes every connection (QUIT). Resolves once every message's
   * outcome is known and every QUIT is written, without waiting for the QUIT replies (a server that
   * never answers QUIT is cut off after 3 seconds).
   */
  close(): Promise<void>;
}

export function createClient(options: ClientOptions): Client;
/**
 * Direct delivery: each recipient domain's MX hosts on port 25, instead of a relay. `send`
 * resolves when at least one recipient was accepted (see MxSendResult) and rejects otherwise.
 * Cloudflare Workers block port 25: there it throws (use a relay). `verify()` rejects (EINPUT):
 * there is no single server; check a domain with the doctor instead.
 */
export function createClient(options: MxClientOptions): MxClient;

export interface MxClientOptions extends Omit<ClientOptions, 'host' | 'port' | 'auth' | 'lmtp' | 'pool' | 'security'> {
  /**
   * `true`: deliver to the recipients' MX hosts (RFC 5321 §5.1: preference order, shuffled within
   * equal preference; no MX → the domain's A/AAAA; a null MX fails its recipients, nothing sent).
   * `{ port }` delivers to another port than 25: for tests, or providers whose MX listen elsewhere;
   * `{ policyPort }` fetches MTA-STS policies from another port than 443 (tests only).
   */
  mx: true | { port?: number; policyPort?: number };
  /** Where DNS answers come from (MX, A/AAAA, the `_mta-sts` TXT). Default: the runtime's resolver. */
  dns?: DnsOptions;
  /**
   * "opportunistic" (default): STARTTLS when offered. "starttls": TLS required for every domain.
   * A domain whose MTA-STS policy is in enforce mode always gets STARTTLS with a verified
   * certificate, and only its MX hosts that match the policy.
   */
  security?: 'opportunistic' | 'starttls';
}

/** One recipient's outcome of direct delivery. */
export interface MxRecipientResult {
  recipient: string;
  domain?: string;
  /** 2xx; 5xx (or a null MX); 4xx, or no host reachable, or an unmet MTA-STS policy in enforce mode. */
  status: 'accepted' | 'rejected' | 'deferred';
  /** The host tried last: "mx1.example.org [192.0.2.1]:25". */
  host?: string;
  /** That host's reply, e.g. "550 5.1.1 No such user". */
  reply?: string;
  /** Why it was not accepted. */
  error?: SmtpError;
}

export interface MxSendResult {
  messageId?: string;
  envelope: { from: string; to: string[] };
  accepted: string[];
  rejected: string[];
  /** Worth trying again later (the outbox retries these only). */
  deferred: string[];
  recipients: MxRecipientResult[];
  /** The MTA-STS policy of each domain that has one: its mode, and what failed (testing mode delivers anyway). */
  mtaSts: Array<{ domain: string; mode: 'enforce' | 'testing' | 'none'; id?: string; failures: string[] }>;
}

export interface MxSendOptions extends SendOptions {
  /** Deliver to these envelope recipients only (the outbox's retry of deferred recipients). */
  recipients?: string[];
}

export interface MxClient {
  /**
   * Delivers to every recipient domain; resolves when at least one recipient was accepted.
   * Otherwise rejects: with the one cause (ENULLMX, EMTASTS, ECONNECT...), or ERECIPIENTS naming
   * each recipient; the error carries `recipients`, `accepted`, `rejected` and `deferred` too.
   */
  send(message: Message, options?: MxSendOptions): Promise<MxSendResult>;
  verify(): Promise<never>;
  close(): Promise<void>;
}

/** What `send` would transmit for a message, built without sending. */
export interface BuiltMessage {
  /** MAIL FROM and RCPT TO: from the headers (From; To, Cc, Bcc), or the message's `envelope`. */
  envelope: { from: string; to: string[] };
  /** The Message-ID (for raw messages, when the headers have one). */
  messageId?: string;
}

/**
 * Builds a message exactly as `send` would (same checks, same EINPUT errors) and returns its bytes
 * (the message itself, without SMTP dot transparency) and envelope; with `{ stream: true }` a
 * ReadableStream of the bytes instead, for messages with large streamed attachments.
 */
export function buildMessage(message: Message): Promise<BuiltMessage & { raw: Uint8Array }>;
export function buildMessage(message: Message, options: { stream: true }): Promise<BuiltMessage & { stream: ReadableStream<Uint8Array> }>;

/** A client that sends nothing and keeps every message in memory, for testing mail code without a server. */
export interface TestClient extends Client {
  /** Every message `send` took, in order. */
  readonly messages: (BuiltMessage & { raw: Uint8Array })[];
}

/** Creates a capturing client: `send` builds the message like a real client, resolves with every recipient accepted, and appends it to `messages`. */
export function createTestClient(): TestClient;

/**
 * A token provider for `auth.accessToken` that exchanges a refresh token for
 * access tokens at the token endpoint (RFC 6749 §6) with `fetch`, on every
 * runtime. Tokens come with their expiry, so clients cache them. Failures are
 * `EAUTH` (phase 'auth'): a revoked or expired refresh token (`invalid_grant`)
 * and a wrong client (`invalid_client`) with a hint naming the fix; an
 * unreachable or failing endpoint (5xx, 429) with `retryable: true`.
 * Wrong options are `EINPUT` at once.
 *
 * ```js
 * auth: { user: 'ann@gmail.com', accessToken: oauth2({ tokenUrl: 'https://oauth2.googleapis.com/token', clientId, clientSecret, refreshToken }) }
 * ```
 */
export function oauth2(options: OAuth2Options): AccessTokenProvider;

/**
 * What MX delivery and the domain doctor ask DNS. Names come back lower-case
 * without the trailing dot. A name that does not exist, or has no record of
 * the type, resolves to []; any other failure rejects with an SmtpError
 * `EDNS` (phase 'dns', retryable).
 */
export interface Resolver {
  /** MX records; a null MX (RFC 7505, "0 .") is `{ exchange: '', priority: 0 }`. */
  mx(name: string): Promise<Array<{ exchange: string; priority: number }>>;
  /** TXT records, each one's character-strings joined. */
  txt(name: string): Promise<string[]>;
  a(name: string): Promise<string[]>;
  aaaa(name: string): Promise<string[]>;
}

/**
 * Where DNS answers come from. Left out: the runtime's resolver (node:dns
 * on Node and Bun, Deno.resolveDns on Deno) or, on Workers and in the
 * browser, DNS-over-HTTPS to https://cloudflare-dns.com/dns-query.
 * `servers`: these name servers ('127.0.0.1', '127.0.0.1:5353', '[::1]:53';
 * Node, Deno, Bun). `doh`: a DNS-over-HTTPS URL (RFC 8484, POST
 * application/dns-message; https, or http on loopback only). Or a Resolver
 * of your own, used as is.
 */
export type DnsOptions = { servers: string[] } | { doh: string } | Resolver;

/**
 * A caching resolver (see DnsOptions). Answers are kept for their TTL where
 * one is known (DoH, and Node, Bun and Deno, which ask the servers on the wire or through node:dns with TTLs), otherwise,
 * and for "no such name or record", for 60 seconds.
 */
export function createResolver(options?: DnsOptions): Resolver;

/**
 * Loads, compiles and instantiates the wasm engine now rather than at the
 * first connection: call it during a server's start-up or a warm-up request.
 * Rejects (with an Error naming the missing or damaged file) when the engine
 * cannot be loaded. Optional: every API loads the engine on first use.
 */
export function ready(): Promise<void>;

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
  | 'EINPUT'
  /** A DNS lookup failed (SERVFAIL, REFUSED, a time-out, an unreadable answer). A name or record that does not exist is not an error. */
  | 'EDNS'
  /** Direct delivery: the domain publishes a null MX (RFC 7505) and takes no mail. */
  | 'ENULLMX'
  /** Direct delivery: the domain has no MX host with an address (no MX, A or AAAA). */
  | 'ENOHOST'
  /** Direct delivery: the domain's MTA-STS policy (enforce) was not met, so nothing was sent there. */
  | 'EMTASTS'
  /** The proxy (`proxy` option) failed: unreachable, refused the credentials or the server, or closed before the tunnel was open. */
  | 'EPROXY'
  /** The outbox: the message is being sent, or its record changed meanwhile (try again). */
  | 'EBUSY';

export type Phase = 'dns' | 'connect' | 'proxy' | 'tls' | 'greeting' | 'ehlo' | 'starttls' | 'auth' | 'mail' | 'rcpt' | 'data' | 'quit';

/** Every failure. `message` is "CODE (phase): what happened. Hint: the likely fix." */
/** An option an error's (or a finding's) hint tells you to change; `value` when the engine knows it (a `security` mode, a `port`), absent when it is yours to give (`tls.ca`: the CA's PEM). */
export interface Fix {
  option: 'security' | 'port' | 'tls.ca' | 'tls.servername' | 'allowInsecureAuth';
  value?: string | number;
}

export class SmtpError extends Error {
  readonly name: 'SmtpError';
  readonly code: ErrorCode;
  readonly phase: Phase;
  /** The most likely fix, when one is known (also part of `message`). */
  readonly hint?: string;
  /** The options the hint tells you to change, in its order (empty when it names none): map them to your own settings or switches. */
  readonly fix: Fix[];
  /** The engine's sentence alone, without code, phase or hint. */
  readonly detail: string;
  /** The server reply that caused the error. */
  readonly reply?: { code: number; enhancedCode?: string; lines: string[] };
  /** Trying again later may succeed (4xx replies, time-outs, dropped connections). */
  readonly retryable: boolean;
  /** "unknown": the connection died after the data and before the final reply, or the server took the data into a transaction it still held from before (its MAIL was answered 503); resending may duplicate. */
  readonly deliveryState: 'not-sent' | 'unknown';
  /** Sending the message again cannot duplicate it and may succeed: `deliveryState` is "not-sent" and the cause is transient. Decided by the engine; base resends on this field alone. */
  readonly resendSafe: boolean;
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
    /** Only when `supports.proxy`: the parsed `proxy` option. The server's host and port go to it. */
    proxy?: { kind: 'http' | 'socks5'; host: string; port: number; user?: string; pass?: string; url: string; timeoutMs?: number };
    /** Only when `supports.localAddress`: the `localAddress` option. */
    localAddress?: string;
    /** Only when set, and the transport declares support for each: the client certificate, cipher list and minimum version for its TLS. */
    clientTls?: { cert?: unknown; key?: unknown; passphrase?: string; pfx?: unknown; ciphers?: string; minVersion?: 'TLSv1.2' | 'TLSv1.3' };
  }): Promise<Socket>;
  /**
   * The options beyond the basics this transport honours; each one set but not declared here is
   * EINPUT before connecting (a security option is never ignored). `runtime` names it in that error.
   */
  readonly supports?: {
    runtime?: string;
    proxy?: boolean;
    localAddress?: boolean;
    clientCertificate?: boolean;
    pfx?: boolean;
    passphrase?: boolean;
    ciphers?: boolean;
  };
}

/** An open connection. The driver sets `onData` and `onClose`; bytes arriving earlier must be buffered. */
export interface Socket {
  /** Resolves when the bytes are handed to the network (back-pressure). */
  write(bytes: Uint8Array): Promise<void> | void;
  /**
   * `true` when `write` is done with `bytes` once its promise resolves: the
   * driver then writes every flight from one reused buffer. Leave it unset
   * if the transport may read the bytes later.
   */
  readonly releasesWrites?: boolean;
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
  /** Optional: the server's certificate (DER) and its SHA-256 (`AB:CD:…`), for diagnose(). */
  readonly peerCertificate?: { der: Uint8Array; sha256: string };
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

export interface DiagnoseOptions
  extends Omit<ClientOptions, 'port' | 'security' | 'pool' | 'onTranscript' | 'allowInsecureAuth'> {
  /** Ports probed besides 465 ("tls"), 587 ("starttls") and 25 ("opportunistic"); a number uses its usual mode (others: "opportunistic"). */
  ports?: (number | { port: number; security?: Security })[];
  /** Replaces the default set: exactly these probes. */
  probes?: (number | { port: number; security?: Security })[];
  /** Per-phase time-outs of each probe. Default: connect, TLS and greeting 5 s, commands 8 s. */
  timeouts?: ClientOptions['timeouts'];
  /** Called as each probe starts and ends (the CLI's progress). */
  onProgress?: (event: DiagnoseProgress) => void;
  /** Every transcript line of every probe, credentials redacted, with the engine's one-sentence explanation. */
  onTranscript?: (line: { port: number; security: Security; dir: 'C' | 'S' | 'tls'; text: string; note: string }) => void;
}

export type DiagnoseProgress =
  | { port: number; security: Security; stage: 'start' }
  | { port: number; security: Security; stage: 'done'; reachable: PortReport['reachable']; error: ErrorCode | null; ms: number };

/** What a doctor's finding is about (the README's "Findings" list says what each means); from DNS_FAILED on, the domain doctor's. */
export type FindingCode =
  | 'HOST_UNKNOWN'
  | 'NOTHING_WORKS'
  | 'PORT_CLOSED'
  | 'PORT_TIMEOUT'
  | 'CONNECT_FAILED'
  | 'PORT_WORKS'
  | 'TLS_WHERE_PLAINTEXT_EXPECTED'
  | 'PLAINTEXT_WHERE_TLS_EXPECTED'
  | 'NO_STARTTLS'
  | 'CREDENTIALS_IN_CLEAR'
  | 'CERT_REJECTED'
  | 'TIMED_OUT'
  | 'NOT_SMTP'
  | 'CLOSED'
  | 'REFUSED_SESSION'
  | 'TLS_FAILED'
  | 'PORT_MISMATCH'
  | 'FAILED'
  | 'CERT_SELF_SIGNED'
  | 'CERT_PRIVATE_CA'
  | 'CERT_EXPIRED'
  | 'CERT_NAME_MISMATCH'
  | 'AUTH_OFFERED'
  | 'AUTH_UNSUPPORTED_ONLY'
  | 'AUTH_IN_CLEAR'
  | 'AUTH_OK'
  | 'AUTH_FAILED'
  | 'DNS_FAILED'
  | 'MX_FOUND'
  | 'MX_NONE'
  | 'MX_NULL'
  | 'SPF_FOUND'
  | 'SPF_MISSING'
  | 'SPF_MULTIPLE'
  | 'SPF_SYNTAX'
  | 'SPF_PASS_ALL'
  | 'SPF_NEUTRAL_ALL'
  | 'SPF_TOO_MANY_LOOKUPS'
  | 'SPF_INCLUDE_MISSING'
  | 'DMARC_FOUND'
  | 'DMARC_MISSING'
  | 'DMARC_POLICY_NONE'
  | 'DMARC_SYNTAX'
  | 'DMARC_ALIGNMENT'
  | 'DKIM_FOUND'
  | 'DKIM_NOT_CHECKED'
  | 'DKIM_MISSING'
  | 'DKIM_REVOKED'
  | 'DKIM_SYNTAX'
  | 'DKIM_KEY_TOO_SMALL'
  | 'DKIM_KEY_WEAK'
  | 'MTA_STS_FOUND'
  | 'MTA_STS_MISSING'
  | 'MTA_STS_SYNTAX'
  | 'MTA_STS_POLICY_UNAVAILABLE'
  | 'MTA_STS_MX_MISMATCH'
  | 'MTA_STS_TESTING'
  | 'TLS_RPT_FOUND'
  | 'TLS_RPT_MISSING'
  | 'TLS_RPT_SYNTAX'
  | 'PORT_25_OPEN'
  | 'EHLO_NAME'
  | 'EHLO_NAME_SUSPECT'
  | 'PORT_25_BLOCKED';

/** One observation, with what to do about it. */
export interface Finding {
  /** The port it is about; null for the host as a whole. */
  port: number | null;
  severity: 'ok' | 'info' | 'warning' | 'error';
  /** Stable identifier of the case; see FindingCode. */
  code: FindingCode;
  message: string;
  hint: string | null;
  /** The options the hint tells you to change, as on `SmtpError`. */
  fix: Fix[];
}

/** What one probe of one port found. */
export interface PortReport {
  port: number;
  security: Security;
  reachable: 'open' | 'refused' | 'timeout' | 'unresolved' | 'failed';
  connectMs: number | null;
  greeting: string | null;
  tls: { version: string; cipher: string | null; authorized: boolean; authorizationError: string | null } | null;
  /** The certificate the server presented (probes connect with verification off to see it; credentials are then withheld). */
  certificate: {
    subject: string;
    altNames: string[];
    issuer: string;
    /** `YYYY-MM-DD HH:MM:SS UTC` */
    validFrom: string;
    validTo: string;
    selfSigned: boolean;
    /** It covers the host name dialled (or tls.servername). */
    nameMatches: boolean;
    /** Outside its validity period now. */
    expired: boolean;
    /** `AB:CD:…`, as `openssl x509 -fingerprint -sha256` prints it. */
    fingerprint256: string;
  } | null;
  /** EHLO keyword lines before STARTTLS (null without STARTTLS). */
  extensionsBeforeTls: string[] | null;
  /** EHLO keyword lines of the last EHLO (after TLS when there was TLS). */
  extensions: string[] | null;
  auth: {
    offered: string[];
    /** Those wasmtp can use. */
    usable: string[];
    /** "withheld": credentials were given but not sent (no verified TLS). */
    login: 'succeeded' | 'failed' | 'withheld' | 'not-tried';
    /** The same for a person, e.g. "succeeded (PLAIN)" (the CLI's and the doctor page's wording). */
    loginText: string;
    method: AuthMethod | null;
  };
  /** The error that ended the probe, if any. */
  error: { code: ErrorCode; phase: Phase; message: string; hint: string | null; fix: Fix[] } | null;
  ms: number;
}

export interface DiagnoseReport {
  host: string;
  /** Some port works: the recommendation is usable. */
  ok: boolean;
  /** The best working set-up (verified implicit TLS first), or null when none works. */
  recommended: {
    port: number;
    security: Security;
    /** It works once the server's certificate (or CA) is passed as tls.ca. */
    needsCa: boolean;
    reason: string;
  } | null;
  /** One finding per observation and problem, each with a specific hint; decided by the engine. */
  findings: Finding[];
  /** One entry per probe (a port mix-up adds a second probe of that port). */
  ports: PortReport[];
}

/** Probes 465 / 587 / 25 (and `ports`) at once with short time-outs, and explains what works and why not. */
export function diagnose(options: DiagnoseOptions): Promise<DiagnoseReport>;
/** The domain doctor: what a sending domain's DNS says about its mail, and whether to relay or deliver directly. */
export function diagnose(options: DomainDiagnoseOptions): Promise<DomainDiagnoseReport>;

export interface DomainDiagnoseOptions {
  /** The sending domain (of your From: address). */
  domain: string;
  /** Where DNS answers come from, as for createClient (default: the runtime's resolver; DoH in a browser). */
  dns?: DnsOptions;
  /** A DKIM selector to check (its key at `<selector>._domainkey.<domain>`). */
  selector?: string;
  /** A message your server signed: the selector of its DKIM-Signature (for this domain) is checked. */
  message?: string | Uint8Array;
  /** A CA (PEM) trusted besides the system's for the MTA-STS policy server. */
  tls?: { ca?: string | string[] };
  transport?: Transport;
  /** Milliseconds for the port-25 probe and the MTA-STS policy fetch (default 5000). */
  timeouts?: { connect?: number };
  /** For tests (or a provider whose MX listens elsewhere): the port probed instead of 25. */
  mxPort?: number;
  /** For tests: the HTTPS port of the MTA-STS policy server instead of 443. */
  mtaStsPort?: number;
  /**
   * The EHLO name direct delivery would use, judged as EHLO_NAME / EHLO_NAME_SUSPECT (default: what
   * createClient sends without clientName: this machine's fully qualified name, else "localhost";
   * not judged in a browser or on Workers, which never deliver directly).
   */
  clientName?: string;
  /**
   * Fetches the MTA-STS policy instead of the built-in HTTPS GET over the transport (which verifies the
   * certificate for `host`); resolves with its text. In a browser the default is fetch(url).
   */
  fetchPolicy?: (request: { url: string; host: string; address: string; port: number }) => Promise<string>;
  /** Called as each lookup, the policy fetch and the port-25 probe start. */
  onProgress?: (event: { stage: 'dns'; name: string; type: 'MX' | 'TXT' } | { stage: 'mta-sts'; url: string } | { stage: 'port25'; host: string; port: number }) => void;
}

export interface DomainDiagnoseReport {
  /** Lower case, without a trailing dot. */
  domain: string;
  /** No finding is an error (the CLI exits 1 otherwise). */
  ok: boolean;
  /** How this machine should send: through a relay (587/465 with AUTH), or directly to each MX on port 25 (`mx: true`). */
  verdict: { mode: 'relay' | 'direct'; reason: string };
  /** Decided by the engine; `port` is always null here. */
  findings: Finding[];
  /** What was looked up, for the curious. */
  records: {
    /** null when the MX lookup failed. */
    mx: Array<{ exchange: string; priority: number }> | null;
    /** TXT answers by name (the domain, _dmarc, _mta-sts, _smtp._tls, the DKIM selector, SPF includes). */
    txt: Record<string, string[]>;
    mtaStsPolicy: string | null;
    dkimSelector: string | null;
    /** The port-25 probe of the first MX (or of the domain itself without MX); null with a null MX. */
    port25: { host: string; port: number; address: string | null; reachable: 'open' | 'refused' | 'timeout' | 'unresolved' | 'failed'; connectMs: number | null; detail: string | null } | null;
    /** The EHLO name judged (clientName, or this runtime's default); null where none is judged. */
    ehloName: string | null;
  };
}

// ----------------------------------------------------------------------------------------- outbox

/** Where an outbox message is. "sending" covers the whole attempt (see `dataSent`). */
export type OutboxState = 'queued' | 'sending' | 'sent' | 'deferred' | 'failed' | 'unknown';

export interface RetryPolicy {
  /** Attempts in all, the first one included, before the message is `failed`. Default: 8. */
  maxAttempts?: number;
  /** A message not sent this many ms after `enqueue` (or `retry(id)`) is `failed`. Default: 172800000 (2 days). */
  maxAge?: number;
  /** The delay before the second attempt, in ms; it grows by `factor` each time. Default: 30000. */
  initialDelay?: number;
  /** Growth of the delay per attempt. Default: 2. */
  factor?: number;
  /** The longest delay between attempts, in ms. Default: 3600000 (1 hour). */
  maxDelay?: number;
  /** Part of each delay chosen at random: 0 none, 1 anywhere from 0 to the delay. Default: 0.5. */
  jitter?: number;
}

/** An error as the outbox keeps it (plain data, no transcript). */
export interface OutboxError {
  /** An SmtpError code, or EWORKER_LOST (a worker died mid-attempt), EDISCARDED (discard()),
   *  EEXPIRED (retry.maxAge passed before any attempt failed), EINTERNAL. */
  code: ErrorCode | 'EWORKER_LOST' | 'EDISCARDED' | 'EEXPIRED' | 'EINTERNAL';
  phase: Phase;
  /** The sentence; for a message given up on, why (attempts or age) and the last failure. */
  message: string;
  hint?: string;
  reply?: { code: number; enhancedCode?: string; lines: string[] };
  retryable: boolean;
  deliveryState: 'not-sent' | 'unknown';
  /** True when `maxAttempts` or `maxAge` ended the retries. */
  exhausted?: boolean;
}

export interface OutboxStatus {
  id: string;
  state: OutboxState;
  /** Attempts made so far (an attempt cut by a crashed worker counts). */
  attempts: number;
  /** ms since the epoch. */
  createdAt: number;
  updatedAt: number;
  /** When the next attempt may start (queued and deferred messages). */
  nextAttemptAt?: number;
  /** While `sending`: the end of data may have gone out (a crash now makes the message `unknown`). */
  dataSent?: boolean;
  /** The Message-ID header (structured messages: fixed at enqueue). */
  messageId?: string;
  /** The last failure. */
  error?: OutboxError;
  /** The server's last reply as text, e.g. "250 2.0.0 Ok: queued as 4BCD" or "451 4.3.0 Try again later". */
  reply?: string;
  /**
   * When `sent`: what `client.send()` resolved with. Direct delivery (mx: true): also while
   * `deferred` after some recipients accepted; `result.accepted` then counts every attempt.
   */
  result?: SendResult | MxSendResult;
  /** Direct delivery: the recipients still deferred, the only ones the next attempt sends to. */
  pendingRecipients?: string[];
  /** Set when `markSent(id)` settled an `unknown` message. */
  markedSent?: true;
}

/** Where messages are kept: `spoolStore`, `bullmqStore` or `cloudflareQueueStore`. Opaque to callers. */
export interface OutboxStore {
  readonly kind: 'spool' | 'bullmq' | 'cloudflare' | (string & {});
  close?(): Promise<void>;
}

export interface OutboxOptions {
  /** The client that sends (its pool, TLS and credentials). Required. */
  client: Pick<Client, 'send'>;
  /** Default on Node, Deno and Bun: `spoolStore({ dir: './wasmtp-outbox' })`; required on Workers. */
  store?: OutboxStore;
  /** When to try again and when to give up. */
  retry?: RetryPolicy;
  /**
   * Re-send messages whose delivery is unknown (cut after the end of data) by themselves,
   * accepting a possible duplicate. Default: false (they wait for retry / markSent / discard).
   */
  atLeastOnce?: boolean;
  /** Called with the status after each attempt's outcome (sent, deferred, failed, unknown) in the worker's process. Default: none. */
  onOutcome?: (status: OutboxStatus) => void | Promise<void>;
}

export interface EnqueueOptions {
  /**
   * An idempotency key (1-100 of A-Z a-z 0-9 _ -): an id the outbox knows is not stored or sent again. It is known while
   * the message waits, is sent or is `unknown`, for the store's `keepSent` after it was sent (default 7 days) and its
   * `keepFailed` after it failed (default 30 days). Default: a generated id.
   */
  id?: string;
  /** Hold the first attempt back this many ms. Default: 0. */
  delay?: number;
}

export interface Outbox {
  /** Checks the message (as send() would), stores it durably (streams read to the end) and resolves with its id. */
  enqueue(message: Message, options?: EnqueueOptions): Promise<string>;
  /** What became of a message; null when the outbox has no such id. */
  status(id: string): Promise<OutboxStatus | null>;
  /** Messages in one state (or all), oldest first. Default limit: 100. */
  list(options?: { state?: OutboxState; limit?: number }): Promise<OutboxStatus[]>;
  /** The dead-letter list: `failed` messages. */
  deadLetters(options?: { limit?: number }): Promise<OutboxStatus[]>;
  /** Starts workers in this process (Node, Deno, Bun stores). Default concurrency: 8 messages in flight. */
  work(options?: { concurrency?: number }): Promise<void>;
  /** Stops the workers; resolves when the messages in flight are settled. */
  stop(): Promise<void>;
  /** stop(), then releases the store (heartbeat, Redis connections). Does not close the client. */
  close(): Promise<void>;
  /** Cloudflare Queues: handles one batch in the queue() handler (acks, or hands messages back for later). */
  consume(batch: MessageBatchLike, options?: { concurrency?: number }): Promise<void>;
  /**
   * Sends an `unknown`, `failed`, `deferred` or `queued` message now, with a fresh budget of attempts
   * and age. For `unknown` this is the decision that a duplicate is acceptable. Rejects EBUSY while sending.
   */
  retry(id: string): Promise<OutboxStatus>;
  /** Gives up on an `unknown`, `queued` or `deferred` message: it becomes `failed` (EDISCARDED). */
  discard(id: string, options?: { reason?: string }): Promise<OutboxStatus>;
  /** Records that an `unknown` message did arrive: it becomes `sent` (`markedSent`). */
  markSent(id: string): Promise<OutboxStatus>;
  /** The store given (for its extras: `sweep()` on Cloudflare, `queue()` on BullMQ). */
  readonly store: OutboxStore;
}

/** The part of a Cloudflare Queues `MessageBatch` the outbox uses. */
export interface MessageBatchLike {
  readonly messages: readonly {
    readonly body: unknown;
    ack(): void;
    retry(options?: { delaySeconds?: number }): void;
  }[];
}

/** A durable outbox with retries; see OutboxOptions. */
export function createOutbox(options: OutboxOptions): Outbox;

export interface SpoolStoreOptions {
  /** The spool directory (created if missing). Required. */
  dir: string;
  /** How often idle workers look for due messages, in ms (enqueue in the same process wakes them at once). Default: 500. */
  pollInterval?: number;
  /** A worker process whose heartbeat is older than this (ms) is gone; its messages are taken over. Default: 60000. */
  staleAfter?: number;
  /** Sent records, and their ids (idempotency keys), are deleted this many ms after sending. Default: 604800000 (7 days). */
  keepSent?: number;
  /** Failed records (dead letters), and their ids, are deleted this many ms after they failed. Default: 2592000000 (30 days). */
  keepFailed?: number;
}

/** The embedded store: a crash-safe spool directory, shared by worker processes on one machine. Not in `wasmtp/workers`. */
export function spoolStore(options: SpoolStoreOptions | string): OutboxStore & {
  /** Deletes records past keepSent / keepFailed (and their ids); workers call it every minute. */
  prune(): Promise<void>;
};

export interface BullmqStoreOptions {
  /** Redis: { host, port, password?, ... } or an ioredis instance (with maxRetriesPerRequest: null). Required. */
  connection: object;
  /** Default: "wasmtp-outbox". */
  queueName?: string;
  /** BullMQ's key prefix. Default: BullMQ's ("bull"). */
  prefix?: string;
  /** How long a worker's lock on a message lasts (renewed while it works), ms; a dead worker's messages wait this long. Default: 30000. */
  lockDuration?: number;
  /** How often workers look for messages of dead workers, ms. Default: 30000. */
  stalledInterval?: number;
  /** Sent jobs, and their ids (idempotency keys), are removed this many ms after sending. Default: 604800000 (7 days). */
  keepSent?: number;
  /** Failed jobs (dead letters), and their ids, are removed this many ms after they failed. Default: 2592000000 (30 days). */
  keepFailed?: number;
}

/** The outbox on BullMQ (Redis): any number of worker processes on any number of machines. Needs `bullmq` and `ioredis`. Not in `wasmtp/workers`. */
export function bullmqStore(options: BullmqStoreOptions): OutboxStore & {
  /** The BullMQ Queue (dashboards, metrics, clean-up). */
  queue(): Promise<unknown>;
  /** Finishes interrupted decisions and removes jobs past keepSent / keepFailed (never `unknown` ones); workers call it every minute. */
  prune(options?: { limit?: number }): Promise<void>;
};

export interface CloudflareQueueStoreOptions {
  /** The queue producer binding (env.OUTBOX). Required. */
  queue: { send(body: unknown, options?: { delaySeconds?: number }): Promise<unknown> };
  /** A D1 database binding (env.OUTBOX_DB); the table is created on first use. Required. */
  db: { prepare(query: string): unknown };
  /** Default: "wasmtp_outbox". */
  table?: string;
  /** How long a consumer holds a message it is sending, ms. Default: 900000 (15 minutes, a consumer's longest run). */
  leaseMs?: number;
  /** Sent rows, and their ids (idempotency keys), are deleted by sweep() this many ms after sending. Default: 604800000 (7 days). */
  keepSent?: number;
  /** Failed rows (dead letters), and their ids, are deleted by sweep() this many ms after they failed. Default: 2592000000 (30 days). */
  keepFailed?: number;
}

/** The outbox on Cloudflare Queues with D1. Exported by `wasmtp/workers` (and `wasmtp/workers/tls`) only. */
export interface CloudflareQueueStore extends OutboxStore {
  /** For a Cron Trigger: queues again messages left without a queue message, deletes sent and failed rows past keepSent / keepFailed. */
  sweep(options?: { olderThan?: number }): Promise<{ requeued: number }>;
}
