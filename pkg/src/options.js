// createClient options: defaults, and their translation into the engine's
// `Options`. The engine validates every value it understands (security
// mode, EHLO name, auth method...); JS only fills defaults and reshapes.

import { normalizeDkim } from './dkim.js';
import { SmtpError } from './errors.js';
import { absent, checkKeys, describeValue, expect, isObject } from './strict.js';
import { checkTransportSupport, clientTlsSettings, normalizeLocalAddress, normalizeProxy } from './network-options.js';

export const POOL_DEFAULTS = Object.freeze({
  maxConnections: 4,
  maxMessagesPerConnection: 100,
  idleTimeout: 30_000,
});

/** Every key createClient accepts. */
export const CLIENT_KEYS = Object.freeze([
  'host', 'port', 'security', 'auth', 'tls', 'allowInsecureAuth', 'clientName', 'timeouts', 'lmtp', 'pool', 'onTranscript', 'transport', 'dkim',
  'proxy', 'localAddress',
]);

/** nodemailer's createTransport options, and what does the same here. */
const NODEMAILER_OPTIONS = Object.freeze({
  secure: "`secure` is nodemailer's option; here: `security: 'tls'` (secure: true) or `security: 'starttls'` (secure: false), or import createTransport from 'wasmtp/nodemailer'.",
  requireTLS: "`requireTLS` is nodemailer's option; here: `security: 'starttls'` (STARTTLS required, never plaintext).",
  ignoreTLS: "`ignoreTLS` is nodemailer's option; here: `security: 'none'`.",
  opportunisticTLS: "`opportunisticTLS` is nodemailer's option; here: `security: 'opportunistic'`.",
  name: "`name` is nodemailer's option; here: `clientName` (the EHLO name).",
  connectionTimeout: "`connectionTimeout` is nodemailer's option; here: `timeouts: { connect }` (milliseconds).",
  greetingTimeout: "`greetingTimeout` is nodemailer's option; here: `timeouts: { greeting }` (milliseconds).",
  socketTimeout: "`socketTimeout` is nodemailer's option; here: `timeouts: { command }` (milliseconds).",
  dnsTimeout: 'wasmtp leaves name resolution to the runtime; use `timeouts: { connect }`, which includes it.',
  maxConnections: "`maxConnections` is nodemailer's option; here: `pool: { maxConnections }`.",
  maxMessages: "`maxMessages` is nodemailer's option; here: `pool: { maxMessagesPerConnection }`.",
  rateDelta: "`rateDelta`/`rateLimit` are nodemailer's options; here: `pool: { rate }` (messages per second).",
  rateLimit: "`rateDelta`/`rateLimit` are nodemailer's options; here: `pool: { rate }` (messages per second).",
  logger: "`logger` is nodemailer's option; here: `onTranscript: (line) => ...` (credentials redacted).",
  debug: "`debug` is nodemailer's option; here: `onTranscript: (line) => ...` (credentials redacted).",
  authMethod: "`authMethod` is nodemailer's option; here: `auth: { method }`.",
  service: 'wasmtp has no list of well-known services; pass `host` (and `port`/`security`) of the provider.',
  url: 'pass `host`, `port` and `security` instead of a connection URL.',
  socket: 'pass a `transport` ({ connect }) that returns the socket.',
  connection: 'pass a `transport` ({ connect }) that returns the socket.',
  disableFileAccess: 'wasmtp reads files only for attachments or bodies given as { path }.',
  disableUrlAccess: 'wasmtp fetches only attachments or bodies given as { href }.',
});

const TLS_KEYS = Object.freeze(['ca', 'servername', 'rejectUnauthorized', 'engine', 'pin', 'minVersion', 'cert', 'key', 'passphrase', 'pfx', 'ciphers']);
const NODEMAILER_TLS = Object.freeze({
  maxVersion: 'wasmtp negotiates the newest TLS version both sides speak; only `tls.minVersion` can be set.',
  secureProtocol: "use `tls.minVersion: 'TLSv1.2'` or `'TLSv1.3'`.",
  checkServerIdentity: 'the certificate is checked against `tls.servername` (default: host); set that instead.',
});
const AUTH_KEYS = Object.freeze(['user', 'pass', 'accessToken', 'method']);
const NODEMAILER_AUTH = Object.freeze({
  type: "`auth.type` is nodemailer's; here the kind follows from the fields: { user, pass } or { user, accessToken } (XOAUTH2 / OAUTHBEARER).",
  clientId: 'pass `accessToken: oauth2({ tokenUrl, clientId, clientSecret, refreshToken })` (import { oauth2 } from wasmtp): it refreshes the token.',
  clientSecret: 'pass `accessToken: oauth2({ tokenUrl, clientId, clientSecret, refreshToken })` (import { oauth2 } from wasmtp): it refreshes the token.',
  refreshToken: 'pass `accessToken: oauth2({ tokenUrl, clientId, clientSecret, refreshToken })` (import { oauth2 } from wasmtp): it refreshes the token.',
  accessUrl: "`accessUrl` is nodemailer's; here: `accessToken: oauth2({ tokenUrl, clientId, clientSecret, refreshToken })`.",
  expires: 'pass `accessToken` as a function that resolves with { accessToken, expires }: the token is cached until shortly before it expires.',
  serviceClient: 'for a service account, pass `accessToken` as a function that resolves with a token (for example from google-auth-library).',
  privateKey: 'for a service account, pass `accessToken` as a function that resolves with a token (for example from google-auth-library).',
  credentials: 'pass `auth: { user, pass }`.',
});
const TIMEOUT_KEYS = Object.freeze(['connect', 'tlsHandshake', 'greeting', 'command', 'dataEnd']);
const POOL_KEYS = Object.freeze(['maxConnections', 'maxMessagesPerConnection', 'idleTimeout', 'rate', 'rateBurst']);
const NODEMAILER_POOL = Object.freeze({
  maxMessages: "`maxMessages` is nodemailer's name; here: `pool: { maxMessagesPerConnection }`.",
});

/** TLS versions `tls.minVersion` accepts; wasmtp never goes below TLS 1.2. */
const TLS_VERSIONS = Object.freeze(['TLSv1.2', 'TLSv1.3']);

/** Options with defaults filled in that do not need the engine. */
export function normalizeOptions(options, defaultTransport) {
  if (options === null || typeof options !== 'object') {
    throw SmtpError.input('createClient needs an options object.', 'pass at least { host }.', 'connect');
  }
  checkKeys(options, CLIENT_KEYS, 'createClient options', NODEMAILER_OPTIONS, 'connect');
  if (typeof options.host !== 'string' || options.host === '') {
    throw SmtpError.input('createClient needs a host.', 'pass { host: "smtp.example.com" }.', 'connect');
  }
  checkTypes(options);
  const pool = normalizePool(options.pool);
  const transport = options.transport ?? defaultTransport;
  if (!transport || typeof transport.connect !== 'function') {
    throw SmtpError.input(
      'no transport: this runtime has no built-in socket support.',
      'pass transport: { connect } (see the Transport type), or import the entry point for your runtime.',
      'connect',
    );
  }
  const tls = options.tls ?? {};
  const engine = tlsEngine(tls.engine);
  const minVersion = tlsMinVersion(tls.minVersion);
  const proxy = normalizeProxy(options.proxy, options.timeouts?.connect ?? undefined);
  const localAddress = normalizeLocalAddress(options.localAddress);
  const client = clientTlsSettings(tls, engine, minVersion);
  checkTransportSupport(transport, { proxy, localAddress, tls, engine, isDefault: options.transport === undefined || options.transport === null });
  return {
    host: options.host,
    port: options.port ?? undefined,
    security: options.security ?? undefined,
    auth: options.auth ?? undefined,
    tls: {
      ca: tls.ca ?? undefined,
      servername: tls.servername ?? undefined,
      rejectUnauthorized: tls.rejectUnauthorized !== false,
      engine,
      pin: tls.pin ?? undefined,
      minVersion,
      /** Client certificate, ciphers and minimum version for the runtime's TLS (undefined: none set). */
      client,
      /** Client certificate for TLS inside the engine. */
      cert: engine === 'wasm' ? (tls.cert ?? undefined) : undefined,
      key: engine === 'wasm' ? (tls.key ?? undefined) : undefined,
    },
    /** How the socket reaches the server: through `proxy` (parsed), from `localAddress`; only those set. */
    network: { ...(proxy === undefined ? {} : { proxy }), ...(localAddress === undefined ? {} : { localAddress }) },
    /** Which wasm artifact this client uses: 'tls' when TLS runs inside the engine. */
    engine: engine === 'wasm' ? 'tls' : 'core',
    allowInsecureAuth: options.allowInsecureAuth === true,
    clientName: options.clientName ?? undefined,
    timeouts: options.timeouts ?? {},
    lmtp: options.lmtp === true,
    pool,
    onTranscript: options.onTranscript ?? undefined,
    transport,
    /** DKIM keys every message is signed with (send()'s options.dkim replaces them). */
    dkim: normalizeDkim(options.dkim),
  };
}

/** Wrong types are refused, never coerced: a number where text belongs is a mistake. */
function checkTypes(options) {
  const at = (what, hint) => [what, hint, 'connect'];
  const isString = (v) => typeof v === 'string';
  const isBoolean = (v) => typeof v === 'boolean';
  expect(options.port, Number.isInteger, ...at('port', 'pass a TCP port number, like 465, 587 or 25.'));
  expect(options.security, isString, ...at('security', "use 'tls', 'starttls', 'opportunistic' or 'none'."));
  expect(options.allowInsecureAuth, isBoolean, ...at('allowInsecureAuth', 'pass true or false.'));
  expect(options.clientName, isString, ...at('clientName', 'pass the host name to send with EHLO, like "mail.example.com".'));
  expect(options.lmtp, isBoolean, ...at('lmtp', 'pass true or false.'));
  expect(options.onTranscript, (v) => typeof v === 'function', ...at('onTranscript', 'pass a function (line) => { ... }.'));
  expect(options.transport, isObject, ...at('transport', 'pass an object with a connect() method (see the Transport type).'));
  for (const key of ['tls', 'auth', 'timeouts', 'pool']) {
    expect(options[key], isObject, ...at(key, `pass ${key} as an object, or leave it out.`));
  }
  if (isObject(options.tls)) {
    const tls = options.tls;
    checkKeys(tls, TLS_KEYS, 'tls', NODEMAILER_TLS, 'tls');
    const pem = (v) => typeof v === 'string' || (Array.isArray(v) && v.every((x) => typeof x === 'string'));
    expect(tls.ca, pem, 'tls.ca', 'pass PEM text, or an array of PEM texts.', 'tls');
    expect(tls.pin, pem, 'tls.pin', 'pass a SHA-256 fingerprint, or an array of them.', 'tls');
    expect(tls.servername, isString, 'tls.servername', 'pass the name the certificate must match.', 'tls');
    expect(tls.rejectUnauthorized, isBoolean, 'tls.rejectUnauthorized', 'pass true or false.', 'tls');
  }
  if (isObject(options.auth)) {
    checkKeys(options.auth, AUTH_KEYS, 'auth', NODEMAILER_AUTH, 'auth');
    // A line break in the user name would end the AUTH command early; the
    // server would read the rest as a command of its own.
    const { user } = options.auth;
    if (typeof user === 'string' && /[\r\n\0]/.test(user)) {
      throw SmtpError.input('auth.user contains a line break or NUL character.', 'check where the user name comes from; it must be a single line.', 'auth');
    }
  }
  if (isObject(options.timeouts)) {
    checkKeys(options.timeouts, TIMEOUT_KEYS, 'timeouts', {}, 'connect');
    for (const key of TIMEOUT_KEYS) {
      expect(
        options.timeouts[key],
        (v) => typeof v === 'number' && v >= 0 && v <= MAX_DELAY,
        `timeouts.${key}`,
        `pass a number of milliseconds from 0 to ${MAX_DELAY}, or leave it out for the default.`,
        'connect',
      );
    }
  }
  if (isObject(options.pool)) checkKeys(options.pool, POOL_KEYS, 'pool', NODEMAILER_POOL, 'connect');
}

/**
 * tls.minVersion: 'TLSv1.2' is always met (wasmtp never negotiates less);
 * 'TLSv1.3' is checked after every handshake by the session (the version the
 * runtime's TLS reports); TLS inside the engine refuses older servers in
 * the handshake itself.
 */
function tlsMinVersion(value) {
  if (absent(value)) return undefined;
  if (!TLS_VERSIONS.includes(value)) {
    throw SmtpError.input(
      `tls.minVersion ${describeValue(value)} is not a TLS version wasmtp can require.`,
      "use 'TLSv1.2' (always met: older versions are never used) or 'TLSv1.3'.",
      'tls',
    );
  }
  return value;
}

/**
 * Where the machine's host name comes from (set by the Node/Deno/Bun entry:
 * node:os hostname()); other runtimes have none and keep the engine's
 * default EHLO name.
 */
let hostNameSource = null;
let machineName = null;

export function setHostNameSource(source) {
  hostNameSource = source;
  machineName = null;
}

/**
 * The EHLO name a client on this runtime sends without clientName, or
 * undefined where the runtime has no host name (Workers, a browser: they
 * never deliver directly). "localhost" is the engine's own default.
 */
export async function effectiveClientName() {
  if (hostNameSource === null) return undefined;
  return (await defaultClientName()) ?? 'localhost';
}

/**
 * The EHLO name when clientName is not given: the machine's fully
 * qualified name when the runtime tells it (receivers score a bare
 * "localhost" as spam), otherwise undefined (the engine's default).
 * A name without a dot is not a FQDN (RFC 5321 §4.1.1.1) and is not used.
 */
export async function defaultClientName() {
  if (hostNameSource === null) return undefined;
  machineName ??= Promise.resolve()
    .then(hostNameSource)
    .then((name) => (typeof name === 'string' && /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$/.test(name) ? name.toLowerCase() : undefined))
    .catch(() => undefined);
  return machineName;
}

/** Longest timer delay JS runtimes honour (2^31 - 1 ms, about 24.8 days). */
const MAX_DELAY = 2 ** 31 - 1;

function normalizePool(given) {
  const pool = { ...POOL_DEFAULTS };
  for (const [key, value] of Object.entries(given ?? {})) if (value !== undefined) pool[key] = value;
  for (const key of ['maxConnections', 'maxMessagesPerConnection']) {
    if (!Number.isInteger(pool[key]) || pool[key] < 1) {
      throw SmtpError.input(`pool.${key} must be a whole number of at least 1.`, `pass for example pool: { ${key}: 4 }.`, 'connect');
    }
  }
  if (typeof pool.idleTimeout !== 'number' || !(pool.idleTimeout >= 0 && pool.idleTimeout <= MAX_DELAY)) {
    throw SmtpError.input(
      `pool.idleTimeout must be a number of milliseconds from 0 to ${MAX_DELAY}.`,
      `pass for example pool: { idleTimeout: 30000 } (the default).`,
      'connect',
    );
  }
  if (pool.rate !== undefined && !(typeof pool.rate === 'number' && pool.rate > 0 && Number.isFinite(pool.rate))) {
    throw SmtpError.input(
      'pool.rate must be a positive number of messages per second.',
      'pass for example pool: { rate: 10 }, or leave it out for no limit.',
      'connect',
    );
  }
  if (pool.rateBurst !== undefined && !(Number.isInteger(pool.rateBurst) && pool.rateBurst >= 1)) {
    throw SmtpError.input('pool.rateBurst must be a whole number of at least 1.', 'pass for example pool: { rate: 10, rateBurst: 5 }.', 'connect');
  }
  return pool;
}

/**
 * The engine's `Options` for these settings, and the connection target
 * (host, port, security, tls). Throws an EngineError for values the engine refuses.
 * With a token provider, `opts.currentAccessToken` is the token to start with.
 */
export function engineOptions(engine, opts) {
  // No port and no security: a submission client (587 with STARTTLS).
  const port = opts.port ?? engine.defaultPort(opts.security ?? 'starttls');
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw SmtpError.input(`port ${opts.port} is not a TCP port.`, 'use 465 (security: "tls"), 587 ("starttls") or 25.', 'connect');
  }
  const options = new engine.Options(opts.host, port);
  try {
    if (opts.security !== undefined) options.setSecurity(opts.security);
    else if (opts.port === undefined) options.setSecurity('starttls');
    applyAuth(options, opts.auth, opts.currentAccessToken);
    options.setAllowInsecureAuth(opts.allowInsecureAuth);
    if (opts.tls.minVersion !== undefined) options.setMinTlsVersion(opts.tls.minVersion);
    if (opts.clientName !== undefined) options.setClientName(opts.clientName);
    if (opts.lmtp) options.setLmtp(true);
    const t = opts.timeouts;
    options.setTimeouts(ms(t.connect), ms(t.tlsHandshake), ms(t.greeting), ms(t.command), ms(t.dataEnd));
    const target = { host: opts.host, port, security: options.security, tls: opts.tls, network: opts.network };
    return { options, target };
  } catch (error) {
    options.free();
    throw error;
  }
}

/** tls.engine: 'native' (the runtime's TLS, default) or 'wasm' (TLS inside the engine). */
function tlsEngine(value) {
  if (absent(value) || value === 'native' || value === 'wasm') return value ?? 'native';
  throw SmtpError.input(
    `tls.engine "${value}" is not a TLS engine.`,
    "use 'native' (the runtime's TLS, the default) or 'wasm' (TLS inside the engine, over a raw socket).",
    'tls',
  );
}

/**
 * `currentToken`: with a token provider (auth.accessToken is a function),
 * the token it gave this connection; the engine asks for a fresh one when
 * the server refuses it (oauth2.js).
 */
function applyAuth(options, auth, currentToken) {
  if (auth === undefined || auth === null) return;
  const { user, pass, accessToken, method } = auth;
  const provider = typeof accessToken === 'function';
  if (typeof user !== 'string' || (typeof pass !== 'string' && typeof accessToken !== 'string' && !provider) || (!absent(pass) && !absent(accessToken))) {
    throw SmtpError.input(
      'auth needs a user and either a pass or an accessToken.',
      'pass auth: { user, pass }, or { user, accessToken } for XOAUTH2 / OAUTHBEARER with a token or a token provider such as oauth2({ ... }).',
      'auth',
    );
  }
  if (provider) {
    options.setAccessToken(user, currentToken);
    options.setRenewRefusedToken(true);
  } else if (typeof accessToken === 'string') options.setAccessToken(user, accessToken);
  else options.setPassword(user, pass);
  if (!absent(method)) {
    if (typeof method !== 'string') throw SmtpError.input(`auth.method is ${describeValue(method)}.`, "use 'PLAIN', 'LOGIN', 'CRAM-MD5', 'XOAUTH2' or 'OAUTHBEARER'.", 'auth');
    options.setAuthMethod(method);
  }
}

function ms(value) {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}
