// createClient options: defaults, and their translation into the engine's
// `Options`. The engine validates every value it understands (security
// mode, EHLO name, auth method...); JS only fills defaults and reshapes.

import { normalizeDkim } from './dkim.js';
import { SmtpError } from './errors.js';

export const POOL_DEFAULTS = Object.freeze({
  maxConnections: 4,
  maxMessagesPerConnection: 100,
  idleTimeout: 30_000,
});

/** Options with defaults filled in that do not need the engine. */
export function normalizeOptions(options, defaultTransport) {
  if (options === null || typeof options !== 'object') {
    throw SmtpError.input('createClient needs an options object.', 'pass at least { host }.', 'connect');
  }
  if (typeof options.host !== 'string' || options.host === '') {
    throw SmtpError.input('createClient needs a host.', 'pass { host: "smtp.example.com" }.', 'connect');
  }
  const pool = normalizePool(options.pool);
  const transport = options.transport ?? defaultTransport;
  if (!transport || typeof transport.connect !== 'function') {
    throw SmtpError.input(
      'no transport: this runtime has no built-in socket support.',
      'pass transport: { connect } (see the Transport type), or import the entry point for your runtime.',
      'connect',
    );
  }
  return {
    host: options.host,
    port: options.port,
    security: options.security,
    auth: options.auth,
    tls: {
      ca: options.tls?.ca,
      servername: options.tls?.servername,
      rejectUnauthorized: options.tls?.rejectUnauthorized !== false,
      engine: tlsEngine(options.tls?.engine),
      pin: options.tls?.pin,
    },
    /** Which wasm artifact this client uses: 'tls' when TLS runs inside the engine. */
    engine: options.tls?.engine === 'wasm' ? 'tls' : 'core',
    allowInsecureAuth: options.allowInsecureAuth === true,
    clientName: options.clientName,
    timeouts: options.timeouts ?? {},
    lmtp: options.lmtp === true,
    pool,
    onTranscript: typeof options.onTranscript === 'function' ? options.onTranscript : undefined,
    transport,
    /** DKIM keys every message is signed with (send()'s options.dkim replaces them). */
    dkim: normalizeDkim(options.dkim),
  };
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
 */
export function engineOptions(engine, opts) {
  // No port and no security: a submission client (587 with STARTTLS).
  const port = opts.port ?? engine.defaultPort(opts.security ?? 'starttls');
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw SmtpError.input(`port ${opts.port} is not a TCP port.`, 'use 465 (security: "tls"), 587 ("starttls") or 25.', 'connect');
  }
  const options = new engine.Options(opts.host, port);
  try {
    if (opts.security !== undefined) options.setSecurity(String(opts.security));
    else if (opts.port === undefined) options.setSecurity('starttls');
    applyAuth(options, opts.auth);
    options.setAllowInsecureAuth(opts.allowInsecureAuth);
    if (opts.clientName !== undefined) options.setClientName(String(opts.clientName));
    if (opts.lmtp) options.setLmtp(true);
    const t = opts.timeouts;
    options.setTimeouts(ms(t.connect), ms(t.tlsHandshake), ms(t.greeting), ms(t.command), ms(t.dataEnd));
    const target = { host: opts.host, port, security: options.security, tls: opts.tls };
    return { options, target };
  } catch (error) {
    options.free();
    throw error;
  }
}

/** tls.engine: 'native' (the runtime's TLS, default) or 'wasm' (TLS inside the engine). */
function tlsEngine(value) {
  if (value === undefined || value === 'native' || value === 'wasm') return value ?? 'native';
  throw SmtpError.input(
    `tls.engine "${value}" is not a TLS engine.`,
    "use 'native' (the runtime's TLS, the default) or 'wasm' (TLS inside the engine, over a raw socket).",
    'tls',
  );
}

function applyAuth(options, auth) {
  if (auth === undefined || auth === null) return;
  const { user, pass, accessToken, method } = auth;
  if (typeof user !== 'string' || (typeof pass !== 'string' && typeof accessToken !== 'string')) {
    throw SmtpError.input(
      'auth needs a user and either a pass or an accessToken.',
      'pass auth: { user, pass } (or { user, accessToken } for XOAUTH2 / OAUTHBEARER).',
      'auth',
    );
  }
  if (typeof accessToken === 'string') options.setAccessToken(user, accessToken);
  else options.setPassword(user, pass);
  if (method !== undefined) options.setAuthMethod(String(method));
}

function ms(value) {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}
