// nodemailer's createTransport over a wasmtp client: nodemailer's option
// and field names, its sendMail (promise and callback), its result shape
// and its error fields. Everything is mapped onto the main API, which stays
// strict: an option this layer cannot honour is refused (EINPUT), never
// ignored. The main API's own names are accepted too.

import { SmtpError } from './errors.js';
import { oauth2 } from './oauth2.js';
import { absent, checkKeys, describeValue, isObject } from './strict.js';

/** createTransport options this layer maps, and the main API's own names it passes on. */
const TRANSPORT_KEYS = Object.freeze([
  'host', 'port', 'secure', 'requireTLS', 'ignoreTLS', 'opportunisticTLS', 'name', 'auth', 'authMethod', 'tls',
  'connectionTimeout', 'greetingTimeout', 'socketTimeout', 'pool', 'maxConnections', 'maxMessages', 'rateDelta', 'rateLimit',
  'logger', 'debug', 'disableFileAccess', 'disableUrlAccess', 'lmtp', 'dkim',
  // wasmtp's names
  'security', 'clientName', 'timeouts', 'allowInsecureAuth', 'onTranscript', 'transport',
  // the same name and meaning in both
  'proxy', 'localAddress',
]);

const REFUSED_TRANSPORT = Object.freeze({
  service: 'wasmtp has no list of well-known services: pass host, port and secure of the provider (for Gmail: host smtp.gmail.com, port 465, secure: true).',
  dnsTimeout: 'name resolution is part of the connection time-out here: use connectionTimeout.',
  socket: 'an existing socket cannot be taken over; pass `transport` ({ connect }) instead.',
  connection: 'an existing connection cannot be taken over; pass `transport` ({ connect }) instead.',
  sendmail: 'the sendmail transport is not supported: wasmtp speaks SMTP.',
  SES: 'the SES transport is not supported: use SES through its SMTP interface.',
  streamTransport: "use createTestClient() or buildMessage() from 'wasmtp' to capture messages.",
  jsonTransport: "use createTestClient() or buildMessage() from 'wasmtp' to capture messages.",
  newline: 'wasmtp always writes CRLF, as SMTP requires.',
  transactionLog: 'use logger / debug (the transcript).',
  customAuth: 'custom SASL methods are not supported: PLAIN, LOGIN, CRAM-MD5, XOAUTH2 and OAUTHBEARER are.',
});

const AUTH_KEYS = Object.freeze(['type', 'user', 'pass', 'accessToken', 'method', 'clientId', 'clientSecret', 'refreshToken', 'expires', 'accessUrl', 'provisionCallback']);
const REFUSED_AUTH = Object.freeze(
  Object.fromEntries(
    ['serviceClient', 'privateKey'].map((key) => [
      key,
      'service accounts (the JWT grant) are not built in: pass auth.accessToken as a function that resolves with a token, for example from google-auth-library.',
    ]),
  ),
);

/** nodemailer's default accessUrl: Google's token endpoint. */
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

/** Main API codes as nodemailer's `err.code`. */
const NODEMAILER_CODES = Object.freeze({
  ECONNECT: 'ECONNECTION',
  ECLOSED: 'ECONNECTION',
  ETIMEDOUT: 'ETIMEDOUT',
  ETLS: 'ETLS',
  ECERT: 'ETLS',
  ETLS_PORT_MISMATCH: 'ETLS',
  ESTARTTLS_UNAVAILABLE: 'ETLS',
  EAUTH: 'EAUTH',
  EAUTH_UNSUPPORTED: 'EAUTH',
  EAUTH_INSECURE: 'EAUTH',
  EENVELOPE: 'EENVELOPE',
  ERECIPIENTS: 'EENVELOPE',
  EUTF8: 'EENVELOPE',
  EMESSAGE: 'EMESSAGE',
  ESIZE: 'EMESSAGE',
  EPROTOCOL: 'EPROTOCOL',
  EINPUT: 'EINPUT',
  EPROXY: 'ECONNECTION',
});

/**
 * An SmtpError, from this module's copy of the class or the entry point's
 * (the bundled dist/index.js has its own): told apart by its fields.
 */
const isSmtpError = (error) => error instanceof SmtpError || (error instanceof Error && error.name === 'SmtpError' && typeof error.code === 'string' && typeof error.phase === 'string');

/** The SMTP command a phase stands for, as nodemailer's `err.command`. */
const COMMANDS = Object.freeze({ connect: 'CONN', proxy: 'CONN', greeting: 'CONN', tls: 'CONN', ehlo: 'EHLO', starttls: 'STARTTLS', auth: 'AUTH', mail: 'MAIL FROM', rcpt: 'RCPT TO', data: 'DATA', quit: 'QUIT' });

/**
 * An error with nodemailer's fields (code, responseCode, response,
 * command) and wasmtp's (`smtpError`: the SmtpError with its phase, hint,
 * retryable and deliveryState; also the `cause`).
 */
export class NodemailerError extends Error {
  constructor(smtpError, method) {
    super(smtpError.message, { cause: smtpError });
    this.name = 'Error';
    this.code = NODEMAILER_CODES[smtpError.code] ?? smtpError.code;
    const reply = smtpError.reply;
    if (reply) {
      this.responseCode = reply.code;
      this.response = replyText(reply);
    }
    const command = COMMANDS[smtpError.phase];
    if (command) this.command = command === 'AUTH' && method ? `AUTH ${method}` : command;
    this.smtpError = smtpError;
  }
}

function replyText(reply) {
  return reply.lines.length === 0 ? String(reply.code) : reply.lines.map((line) => `${reply.code} ${line}`).join('\n');
}

/**
 * createClient options for nodemailer's transport options.
 * @param {object | string} given options, or an smtp:// / smtps:// URL
 */
export function clientOptions(given, tokenListeners = []) {
  const options = typeof given === 'string' ? fromUrl(given) : given;
  if (!isObject(options)) {
    throw SmtpError.input(`createTransport needs an options object or an smtp(s):// URL, not ${describeValue(options)}.`, 'pass { host, port, secure, auth }.', 'connect');
  }
  checkKeys(options, TRANSPORT_KEYS, 'createTransport options', REFUSED_TRANSPORT, 'connect');
  const out = {};
  const copy = (from, to = from) => {
    if (!absent(options[from])) out[to] = options[from];
  };
  for (const key of ['host', 'port', 'security', 'clientName', 'allowInsecureAuth', 'onTranscript', 'transport', 'lmtp', 'proxy', 'localAddress']) copy(key);
  if (!absent(options.dkim)) out.dkim = dkimOptions(options.dkim);
  copy('name', 'clientName');
  // nodemailer takes the port as a number or numeric text (from an environment variable).
  if (typeof out.port === 'string' && /^\d+$/.test(out.port)) out.port = Number(out.port);
  if (absent(out.host)) out.host = 'localhost'; // nodemailer's default
  out.security = security(options);
  if (absent(out.port) && out.security !== undefined) out.port = options.secure === true ? 465 : 587;
  if (!absent(options.auth)) out.auth = auth(options.auth, options.authMethod, tokenListeners);
  else if (!absent(options.authMethod)) throw SmtpError.input('authMethod needs auth.', 'pass auth: { user, pass } with it.', 'auth');
  if (!absent(options.tls)) out.tls = { ...options.tls };
  out.timeouts = timeouts(options);
  out.pool = pool(options);
  const log = transcriptLogger(options);
  if (log) {
    if (out.onTranscript) throw SmtpError.input('pass logger/debug or onTranscript, not both.', 'onTranscript receives every line; logger gets them as debug messages.', 'connect');
    out.onTranscript = log;
  }
  return out;
}

/** secure / requireTLS / ignoreTLS / opportunisticTLS (or security) as one security mode. */
/** nodemailer's DKIM names (domainName, keySelector, headerFieldNames...) onto wasmtp's dkim option; wasmtp's own names pass. */
function dkimOptions(given) {
  if (Array.isArray(given)) return given.map(dkimOptions);
  if (!isObject(given) || !('domainName' in given || 'keySelector' in given)) return given;
  const { domainName, keySelector, privateKey, headerFieldNames, skipFields, hashAlgo, cacheDir, cacheTreshold, ...rest } = given;
  if (!absent(hashAlgo) && String(hashAlgo).toLowerCase() !== 'sha256') {
    throw SmtpError.input(`dkim.hashAlgo "${hashAlgo}" is not supported: DKIM signs with SHA-256 (RFC 8301 forbids SHA-1).`, 'leave hashAlgo out.', 'data');
  }
  if (!absent(skipFields)) {
    throw SmtpError.input('dkim.skipFields is not supported.', 'list the fields to sign instead: dkim: { headerFieldNames: "From:To:Subject:Date" } (From is always signed).', 'data');
  }
  if (!absent(cacheDir) || !absent(cacheTreshold)) {
    throw SmtpError.input(
      `dkim.${absent(cacheDir) ? 'cacheTreshold' : 'cacheDir'} is not needed: wasmtp signs every message in bounded memory (a one-shot stream is spooled to the system's temporary directory, removed after sending).`,
      'remove cacheDir and cacheTreshold from the dkim options.',
      'data',
    );
  }
  const out = { ...rest, domain: domainName, selector: keySelector, privateKey };
  if (!absent(headerFieldNames)) out.headers = String(headerFieldNames).split(':').map((name) => name.trim()).filter(Boolean);
  return out;
}

function security(options) {
  const { secure, requireTLS, ignoreTLS, opportunisticTLS } = options;
  for (const key of ['secure', 'requireTLS', 'ignoreTLS', 'opportunisticTLS']) {
    if (!absent(options[key]) && typeof options[key] !== 'boolean') throw SmtpError.input(`${key} is ${describeValue(options[key])}.`, 'pass true or false.', 'connect');
  }
  const flags = [secure && 'secure', requireTLS && 'requireTLS', ignoreTLS && 'ignoreTLS'].filter(Boolean);
  if (flags.length > 1) {
    throw SmtpError.input(`${flags.join(' and ')} contradict each other.`, 'secure: TLS from the start (465); requireTLS: STARTTLS required (587); ignoreTLS: never TLS.', 'connect');
  }
  const mode = secure ? 'tls' : requireTLS ? 'starttls' : ignoreTLS ? 'none' : undefined;
  if (!absent(options.security)) {
    if (mode !== undefined || opportunisticTLS) throw SmtpError.input('give security, or secure / requireTLS / ignoreTLS, not both.', "security is wasmtp's name for the same choice.", 'connect');
    return options.security;
  }
  if (mode !== undefined) return mode;
  // nodemailer's default: implicit TLS on 465, otherwise STARTTLS when offered.
  if (secure === undefined && Number(options.port) === 465) return 'tls';
  return 'opportunistic';
}

function auth(given, authMethod, tokenListeners) {
  if (!isObject(given)) throw SmtpError.input(`auth is ${describeValue(given)}.`, 'pass auth: { user, pass }.', 'auth');
  checkKeys(given, AUTH_KEYS, 'auth', REFUSED_AUTH, 'auth');
  const type = given.type?.toLowerCase?.() ?? 'login';
  if (type === 'oauth2') return { user: given.user, accessToken: oauthToken(given, tokenListeners), method: given.method ?? authMethod };
  if (type !== 'login') throw SmtpError.input(`auth type "${given.type}" is not known.`, "use 'login' (user and pass) or 'OAuth2' (user and accessToken).", 'auth');
  const oauthOnly = ['clientId', 'clientSecret', 'refreshToken', 'expires', 'accessUrl', 'provisionCallback'].find((key) => !absent(given[key]));
  if (oauthOnly) throw SmtpError.input(`auth.${oauthOnly} belongs to OAuth2.`, "add type: 'OAuth2' to auth.", 'auth');
  const out = { user: given.user, pass: given.pass, method: given.method ?? authMethod };
  if (!absent(given.accessToken)) out.accessToken = given.accessToken;
  return out;
}

/**
 * nodemailer's OAuth2 fields as wasmtp's auth.accessToken: the token itself
 * when nothing can renew it, otherwise a token provider: `accessToken`
 * (until `expires`, in ms since 1970) first, then tokens from the
 * refresh-token grant at `accessUrl` (Google's by default) or from
 * `provisionCallback(user, renew, callback)`. Each fetched token goes to
 * the transporter's 'token' listeners, as nodemailer emits it.
 */
function oauthToken(given, tokenListeners) {
  const { user, accessToken, refreshToken, clientId, clientSecret, accessUrl, provisionCallback } = given;
  if (!absent(accessToken) && typeof accessToken !== 'string') throw SmtpError.input(`auth.accessToken is ${describeValue(accessToken)}.`, 'pass the access token as text.', 'auth');
  const expires = absent(given.expires) ? undefined : Number(given.expires);
  if (expires !== undefined && !Number.isFinite(expires)) throw SmtpError.input(`auth.expires is ${describeValue(given.expires)}.`, 'pass when the access token expires, in milliseconds since 1970 (Date.now() + 3600 * 1000).', 'auth');
  const grant = [refreshToken, clientId, clientSecret, accessUrl].some((v) => !absent(v));
  let fetchToken;
  if (!absent(provisionCallback)) {
    if (typeof provisionCallback !== 'function') throw SmtpError.input(`auth.provisionCallback is ${describeValue(provisionCallback)}.`, 'pass a function (user, renew, callback).', 'auth');
    if (grant) throw SmtpError.input('auth has both a provisionCallback and a refresh-token grant (refreshToken, clientId, clientSecret, accessUrl).', 'give one way to get tokens.', 'auth');
    fetchToken = ({ refresh }) =>
      new Promise((resolve, reject) => {
        provisionCallback(user, refresh, (error, token, until) => (error ? reject(error) : resolve(absent(until) ? token : { accessToken: token, expires: Number(until) })));
      });
  } else if (grant) {
    fetchToken = oauth2({ tokenUrl: accessUrl ?? GOOGLE_TOKEN_URL, clientId, clientSecret, refreshToken });
  } else if (typeof accessToken !== 'string') {
    throw SmtpError.input('auth type OAuth2 needs an accessToken, a refreshToken (with clientId and clientSecret) or a provisionCallback.', 'pass auth: { type: "OAuth2", user, clientId, clientSecret, refreshToken }.', 'auth');
  } else if (expires === undefined) {
    return accessToken; // nothing can renew it: a refusal is final
  } else {
    fetchToken = ({ refresh }) => {
      const message = refresh ? 'the server refused auth.accessToken and nothing can renew it.' : 'auth.accessToken has expired (auth.expires) and nothing can renew it.';
      throw new SmtpError({ code: 'EAUTH', phase: 'auth', message, hint: 'add refreshToken, clientId and clientSecret (or a provisionCallback) to auth.' });
    };
  }
  let initial = typeof accessToken === 'string' ? { accessToken, expires } : null;
  return async ({ refresh }) => {
    // The given token serves until it expires or a server refuses it.
    if (initial && !refresh && !(initial.expires <= Date.now())) return initial.expires === undefined ? initial.accessToken : initial;
    initial = null;
    const token = await fetchToken({ user, refresh });
    const event = typeof token === 'string' ? { user, accessToken: token, expires: undefined } : { user, accessToken: token?.accessToken, expires: token?.expires };
    for (const listener of tokenListeners) {
      try {
        listener(event);
      } catch {}
    }
    return token;
  };
}

function timeouts(options) {
  const out = { ...(options.timeouts ?? {}) };
  const set = (key, value) => {
    if (absent(value)) return;
    if (!absent(out[key])) throw SmtpError.input(`timeouts.${key} is given twice (and by a nodemailer time-out).`, 'give one of them.', 'connect');
    out[key] = value;
  };
  set('connect', options.connectionTimeout);
  set('greeting', options.greetingTimeout);
  // nodemailer's socketTimeout is how long the socket may stay silent: each reply.
  set('command', options.socketTimeout);
  if (!absent(options.socketTimeout) && absent(options.timeouts?.dataEnd)) out.dataEnd = Math.max(options.socketTimeout, 600_000);
  return out;
}

function pool(options) {
  const out = isObject(options.pool) ? { ...options.pool } : {};
  if (!absent(options.pool) && typeof options.pool !== 'boolean' && !isObject(options.pool)) {
    throw SmtpError.input(`pool is ${describeValue(options.pool)}.`, 'pass true (wasmtp always pools connections) or pool options.', 'connect');
  }
  if (!absent(options.maxConnections)) out.maxConnections = options.maxConnections;
  if (!absent(options.maxMessages)) out.maxMessagesPerConnection = options.maxMessages === Infinity ? Number.MAX_SAFE_INTEGER : options.maxMessages;
  if (!absent(options.rateLimit)) {
    // rateLimit messages per rateDelta ms (default one second), in bursts of up to rateLimit.
    const delta = options.rateDelta ?? 1000;
    if (typeof options.rateLimit !== 'number' || !(options.rateLimit > 0) || typeof delta !== 'number' || !(delta > 0)) {
      throw SmtpError.input('rateLimit and rateDelta must be positive numbers.', 'pass for example rateLimit: 5, rateDelta: 1000 (5 messages a second).', 'connect');
    }
    out.rate = options.rateLimit / (delta / 1000);
    out.rateBurst = Math.max(1, Math.floor(options.rateLimit));
  } else if (!absent(options.rateDelta)) {
    throw SmtpError.input('rateDelta needs rateLimit.', 'pass rateLimit: N messages per rateDelta ms.', 'connect');
  }
  return out;
}

/** logger (true: the console; an object with debug/info) and debug: the SMTP dialog as log lines. */
function transcriptLogger({ logger, debug }) {
  if (absent(logger) || logger === false) {
    if (debug === true) return ({ dir, text }) => console.log(`[wasmtp] ${dir}: ${text}`);
    return undefined;
  }
  if (logger === true) return ({ dir, text }) => console.log(`[wasmtp] ${dir}: ${text}`);
  const write = logger.debug ?? logger.info;
  if (typeof write !== 'function') throw SmtpError.input('logger must be true or an object with a debug (or info) method.', 'pass logger: console, or logger: true.', 'connect');
  return ({ dir, text }) => write.call(logger, { tnx: dir === 'C' ? 'client' : dir === 'S' ? 'server' : 'tls' }, text);
}

/** smtp://user:pass@host:port and smtps://... (secure). */
function fromUrl(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    throw SmtpError.input(`createTransport: ${JSON.stringify(text)} is not a URL.`, 'pass smtp://user:pass@host:587 or smtps://user:pass@host:465, or an options object.', 'connect');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') {
    throw SmtpError.input(`createTransport: ${url.protocol} URLs are not supported.`, 'use smtp:// or smtps://.', 'connect');
  }
  if (url.search !== '') throw SmtpError.input('createTransport: options in the URL query are not supported.', 'pass an options object for them.', 'connect');
  const options = { host: url.hostname.replace(/^\[|\]$/g, ''), secure: url.protocol === 'smtps:' };
  if (url.port) options.port = Number(url.port);
  if (url.username) options.auth = { user: decodeURIComponent(url.username), pass: decodeURIComponent(url.password) };
  return options;
}

// ----- messages

/**
 * A nodemailer message as a wasmtp message: `dsn` into the envelope,
 * prepared header values unwrapped, `{ content }` bodies unwrapped, the
 * transport's defaults filled in. Everything else is passed on as it is
 * and checked by the main API.
 */
export function wasmtpMessage(mail, defaults, access) {
  if (!isObject(mail)) throw SmtpError.input(`sendMail needs a message object, not ${describeValue(mail)}.`, 'pass { from, to, subject, text }.');
  const message = { ...defaults, ...mail };
  if (!absent(defaults?.headers) && !absent(mail.headers)) message.headers = { ...headerObject(defaults.headers), ...headerObject(mail.headers) };
  if (!absent(message.dsn)) {
    const dsn = message.dsn;
    delete message.dsn;
    message.envelope = { ...(message.envelope ?? {}), dsn: dsnOptions(dsn) };
  } else if ('dsn' in message) delete message.dsn;
  if (!absent(message.headers)) message.headers = fieldsFromHeaders(message, unwrapHeaders(message.headers));
  for (const field of ['text', 'html']) {
    const value = message[field];
    if (isObject(value) && 'content' in value && Object.keys(value).every((k) => k === 'content')) message[field] = value.content;
  }
  if (isObject(message.envelope) && typeof message.envelope.from === 'string') message.envelope = { ...message.envelope, from: bareAddress(message.envelope.from) };
  checkAccess(message, access);
  return message;
}

function headerObject(headers) {
  return Array.isArray(headers) ? Object.fromEntries(headers.map(({ key, value }) => [key, value])) : headers;
}

/** nodemailer header values may be { prepared, value } or arrays; headers may be [{ key, value }]. */
function unwrapHeaders(headers) {
  const pairs = Array.isArray(headers) ? headers.map((h) => (Array.isArray(h) ? h : [h?.key, h?.value])) : Object.entries(headers);
  const value = (v) => (isObject(v) && 'value' in v ? v.value : v);
  return pairs.map(([name, v]) => [name, Array.isArray(v) ? v.map(value) : value(v)]);
}

/** Headers nodemailer lets `headers` set that wasmtp writes from fields. */
const HEADER_FIELDS = Object.freeze({ 'in-reply-to': 'inReplyTo', references: 'references', sender: 'sender', 'message-id': 'messageId', date: 'date' });

/**
 * Moves In-Reply-To, References, Sender, Message-ID and Date given in
 * `headers` to their fields (the builder writes those headers itself); when
 * the field is set too, the header stays and the builder refuses the pair.
 */
function fieldsFromHeaders(message, pairs) {
  return pairs.filter(([name, value]) => {
    const field = typeof name === 'string' ? HEADER_FIELDS[name.toLowerCase()] : undefined;
    if (field === undefined || !absent(message[field]) || typeof value !== 'string') return true;
    message[field] = value;
    return false;
  });
}

/** nodemailer's dsn { id, return, notify, recipient } as the envelope's { envid, ret, notify }. */
function dsnOptions(dsn) {
  if (!isObject(dsn)) throw SmtpError.input(`dsn is ${describeValue(dsn)}.`, "pass dsn: { id, return: 'headers', notify: ['failure', 'delay'] }.");
  checkKeys(dsn, ['id', 'return', 'notify', 'recipient'], 'dsn', {});
  if (!absent(dsn.recipient)) throw SmtpError.input('dsn.recipient (ORCPT) is not supported.', 'leave it out: the server records each RCPT TO address as the original recipient.');
  const out = {};
  if (!absent(dsn.id)) out.envid = dsn.id;
  if (!absent(dsn.return)) out.ret = typeof dsn.return === 'string' ? dsn.return.toLowerCase().replace(/^hdrs$/, 'headers') : dsn.return;
  if (!absent(dsn.notify)) {
    const list = typeof dsn.notify === 'string' ? dsn.notify.split(',') : dsn.notify;
    out.notify = Array.isArray(list) ? list.map((v) => (typeof v === 'string' ? v.trim().toLowerCase() : v)) : list;
  }
  return out;
}

/** "Name <a@b>" → a@b (nodemailer accepts either in the envelope). */
function bareAddress(text) {
  const match = /<([^<>]*)>\s*$/.exec(text);
  return match ? match[1] : text;
}

/** disableFileAccess / disableUrlAccess: refuse parts read from files or URLs. */
function checkAccess(message, { disableFileAccess, disableUrlAccess } = {}) {
  if (!disableFileAccess && !disableUrlAccess) return;
  const parts = [message.text, message.html, message.icalEvent, ...(message.attachments ?? []), ...(message.alternatives ?? [])];
  for (const part of parts) {
    if (!isObject(part)) continue;
    const path = typeof part.path === 'string' ? part.path : undefined;
    const isUrl = path !== undefined && /^(https?|data):/i.test(path);
    if (disableFileAccess && path !== undefined && !isUrl) {
      throw SmtpError.input(`the message reads the file ${JSON.stringify(path)}, and the transport has disableFileAccess.`, 'pass the content itself.', 'data');
    }
    if (disableUrlAccess && (part.href !== undefined || isUrl)) {
      throw SmtpError.input(`the message fetches ${JSON.stringify(part.href ?? path)}, and the transport has disableUrlAccess.`, 'pass the content itself.', 'data');
    }
  }
}

// ----- the transport

/**
 * nodemailer's Transporter over `createClient`.
 * @param {Function} createClient the entry point's createClient
 */
export function createTransportWith(createClient, options, defaults) {
  try {
    const given = typeof options === 'string' ? undefined : options;
    const tokenListeners = [];
    const client = createClient(clientOptions(options, tokenListeners));
    if (!absent(defaults) && !isObject(defaults)) throw SmtpError.input(`createTransport defaults are ${describeValue(defaults)}.`, 'pass message defaults as an object, e.g. { from }.');
    return new Transporter(client, defaults ?? {}, given ?? {}, options, tokenListeners);
  } catch (error) {
    throw isSmtpError(error) ? new NodemailerError(error) : error;
  }
}

class Transporter {
  #client;
  #defaults;
  #access;
  #method;

  #tokenListeners;

  constructor(client, defaults, options, original, tokenListeners) {
    this.#tokenListeners = tokenListeners;
    this.#client = client;
    this.#defaults = defaults;
    this.#access = { disableFileAccess: options.disableFileAccess === true, disableUrlAccess: options.disableUrlAccess === true };
    this.#method = options.auth?.method ?? options.authMethod;
    /** The options given to createTransport. */
    this.options = original;
  }

  /** Sends a message: returns a promise, or calls `callback(err, info)` when given. */
  sendMail(mail, callback) {
    const sent = this.#send(mail);
    if (typeof callback !== 'function') return sent;
    sent.then(
      (info) => callback(null, info),
      (error) => callback(error),
    );
    return undefined;
  }

  async #send(mail) {
    let result;
    try {
      result = await this.#client.send(wasmtpMessage(mail, this.#defaults, this.#access));
    } catch (error) {
      throw isSmtpError(error) ? this.#error(error) : error;
    }
    return {
      messageId: result.messageId,
      envelope: result.envelope,
      accepted: result.accepted,
      rejected: result.rejected.map((r) => r.address),
      rejectedErrors: result.rejected.length > 0 ? result.rejected.map((r) => rejectedError(r)) : undefined,
      pending: [],
      response: result.response,
    };
  }

  #error(error) {
    return new NodemailerError(error, this.#method);
  }

  /** Connects, runs TLS and AUTH, then QUITs: resolves to true, or calls `callback(err, true)`. */
  verify(callback) {
    const checked = this.#client.verify().then(
      () => true,
      (error) => {
        throw isSmtpError(error) ? this.#error(error) : error;
      },
    );
    if (typeof callback !== 'function') return checked;
    checked.then(
      (ok) => callback(null, ok),
      (error) => callback(error),
    );
    return undefined;
  }

  /** Lets queued messages finish, then closes the connections. */
  close() {
    return this.#client.close();
  }

  /**
   * nodemailer's 'token' event: `listener({ user, accessToken, expires })`
   * for every OAuth2 token fetched. It is the only event: others are refused.
   */
  on(name, listener) {
    if (name !== 'token' || typeof listener !== 'function') {
      const hint = name === 'idle' ? 'wasmtp queues messages: call sendMail at any time.' : "only on('token', (token) => ...) is available.";
      const what = typeof listener === 'function' ? `transporter.on(${JSON.stringify(String(name))})` : `transporter.on() with ${typeof listener} as the listener`;
      throw new NodemailerError(SmtpError.input(`${what} is not supported.`, hint, 'connect'));
    }
    this.#tokenListeners.push(listener);
    return this;
  }

  /** nodemailer's pool reports whether it can take more messages; wasmtp queues them. */
  isIdle() {
    return true;
  }
}

function rejectedError(r) {
  const error = new Error(`Recipient ${r.address} rejected: ${r.code} ${r.message}`);
  error.code = 'EENVELOPE';
  error.responseCode = r.code;
  error.response = `${r.code} ${r.enhancedCode ? `${r.enhancedCode} ` : ''}${r.message}`;
  error.command = 'RCPT TO';
  error.recipient = r.address;
  return error;
}
