// Types for `wasmtp/nodemailer`: nodemailer's createTransport on wasmtp.
// Migrating is one line: import { createTransport } from 'wasmtp/nodemailer'.

import type { AccessTokenProvider, Alternative, Attachment, BodyContent, ClientOptions, IcalEvent, ListHeaders, SmtpError, Transport, TranscriptLine } from './index.js';

type Address = string | { name?: string; address: string };

/** nodemailer's transport options that wasmtp honours; anything else is refused (EINPUT). */
export interface TransportOptions {
  host?: string;
  /** Default: 465 with secure, 587 otherwise. */
  port?: number;
  /** TLS from the first byte (465). */
  secure?: boolean;
  /** STARTTLS required: never plaintext. */
  requireTLS?: boolean;
  /** Never STARTTLS. Default (none of the three): STARTTLS when offered. */
  ignoreTLS?: boolean;
  opportunisticTLS?: boolean;
  /** The EHLO name. Default: this machine's fully qualified name. */
  name?: string;
  /**
   * `{ user, pass }`, or `{ type: 'OAuth2', user, ... }` with an `accessToken`
   * (valid until `expires`, ms since 1970, when given) and, to renew it, a
   * refresh token (`clientId`, `clientSecret`, `refreshToken`, and
   * `accessUrl`, default Google's token endpoint) or a `provisionCallback`.
   * Service accounts (`serviceClient`, `privateKey`) are refused: pass a
   * token provider as `accessToken` instead (see wasmtp's `oauth2`).
   */
  auth?: {
    type?: 'login' | 'LOGIN' | 'OAuth2' | 'oauth2';
    user: string;
    pass?: string;
    accessToken?: string | AccessTokenProvider;
    method?: string;
    clientId?: string;
    clientSecret?: string;
    refreshToken?: string;
    accessUrl?: string;
    expires?: number;
    provisionCallback?: (user: string, renew: boolean, callback: (error: Error | null, accessToken?: string, expires?: number) => void) => void;
  };
  authMethod?: string;
  /** rejectUnauthorized, ca, servername, minVersion ('TLSv1.2' | 'TLSv1.3'), cert, key, passphrase, pfx, ciphers. */
  tls?: ClientOptions['tls'];
  /** "http://user:pass@host:port" (HTTP CONNECT) or "socks5://user:pass@host:port", as in nodemailer. Default: direct. */
  proxy?: ClientOptions['proxy'];
  /** The local IP address to connect from. Default: the system's choice. */
  localAddress?: ClientOptions['localAddress'];
  connectionTimeout?: number;
  greetingTimeout?: number;
  /** How long each reply may take. */
  socketTimeout?: number;
  /** wasmtp always pools connections; `true` or pool options. */
  pool?: boolean | ClientOptions['pool'];
  maxConnections?: number;
  maxMessages?: number;
  /** rateLimit messages per rateDelta ms (default 1000). */
  rateDelta?: number;
  rateLimit?: number;
  /** true: the SMTP dialog on the console; an object: its debug (or info) method gets each line. */
  logger?: boolean | { debug?: (meta: object, line: string) => void; info?: (meta: object, line: string) => void };
  debug?: boolean;
  disableFileAccess?: boolean;
  disableUrlAccess?: boolean;
  lmtp?: boolean;
  // wasmtp's own names work too.
  security?: ClientOptions['security'];
  clientName?: string;
  timeouts?: ClientOptions['timeouts'];
  allowInsecureAuth?: boolean;
  onTranscript?: (line: TranscriptLine) => void;
  transport?: Transport;
}

export interface MailOptions {
  from?: Address;
  sender?: Address;
  to?: Address | Address[];
  cc?: Address | Address[];
  bcc?: Address | Address[];
  replyTo?: Address | Address[];
  inReplyTo?: string;
  references?: string | string[];
  subject?: string;
  text?: BodyContent | { content: string };
  html?: BodyContent | { content: string };
  attachments?: Attachment[];
  alternatives?: Alternative[];
  icalEvent?: IcalEvent;
  headers?: Record<string, string | string[] | { prepared?: boolean; value: string }> | { key: string; value: string }[];
  list?: ListHeaders;
  messageId?: string;
  date?: Date | string;
  priority?: 'high' | 'normal' | 'low';
  envelope?: { from?: string; to?: Address | Address[]; cc?: Address | Address[]; bcc?: Address | Address[] };
  dsn?: { id?: string; return?: 'headers' | 'full'; notify?: string | string[] };
  raw?: string | Uint8Array;
}

/** nodemailer's info. */
export interface SentMessageInfo {
  messageId?: string;
  envelope: { from: string; to: string[] };
  accepted: string[];
  rejected: string[];
  rejectedErrors?: Error[];
  pending: string[];
  response: string;
}

/** nodemailer's error fields, plus `smtpError`: wasmtp's SmtpError (phase, hint, retryable, deliveryState). */
export class NodemailerError extends Error {
  code: 'ECONNECTION' | 'ETIMEDOUT' | 'ETLS' | 'EAUTH' | 'EENVELOPE' | 'EMESSAGE' | 'EPROTOCOL' | 'EINPUT' | string;
  responseCode?: number;
  response?: string;
  command?: string;
  smtpError: SmtpError;
}

export interface Transporter {
  sendMail(mail: MailOptions): Promise<SentMessageInfo>;
  sendMail(mail: MailOptions, callback: (error: NodemailerError | null, info?: SentMessageInfo) => void): void;
  verify(): Promise<true>;
  /** nodemailer's 'token' event: every OAuth2 access token fetched (with a refresh token or provisionCallback). The only event; others are EINPUT. */
  on(event: 'token', listener: (token: { user: string; accessToken: string; expires?: number }) => void): this;
  verify(callback: (error: NodemailerError | null, success?: true) => void): void;
  close(): Promise<void>;
  isIdle(): boolean;
  readonly options: TransportOptions | string;
}

/** nodemailer's createTransport: options (or an smtp:// / smtps:// URL) and message defaults. */
export function createTransport(options: TransportOptions | string, defaults?: MailOptions): Transporter;

declare const nodemailer: { createTransport: typeof createTransport };
export default nodemailer;
