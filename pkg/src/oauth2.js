// OAuth 2.0 access tokens for XOAUTH2 / OAUTHBEARER.
//
// `auth.accessToken` may be a token provider, `(ctx) => token` where the
// token is a string or `{ accessToken, expires }` (or a promise of one).
// A connection asks for a token when it opens; when the server refuses it,
// the engine asks once more (its `token-refused` event) and retries AUTH.
// Tokens with an expiry are cached until a minute before it, per provider
// and user, so the connections of a pool (and clients sharing a provider)
// share one token, and concurrent askers share the one call in flight
// instead of stampeding the token endpoint.
//
// `oauth2()` is a ready-made provider: the refresh-token grant (RFC 6749
// §6) against a token endpoint, with `fetch`, so it runs on every runtime.

import { SmtpError } from './errors.js';
import { checkKeys, describeValue, isObject } from './strict.js';

/** A cached token is replaced this long before it expires. */
const EXPIRY_MARGIN_MS = 60_000;

/** How long a provider may take when the client has no command time-out set (the engine's default). */
const DEFAULT_WAIT_MS = 60_000;

/** provider → user → TokenCache */
const caches = new WeakMap();

/** The token cache of `provider` for `user` (one per pair, shared by every client). */
export function tokenSource(provider, user) {
  let perUser = caches.get(provider);
  if (!perUser) caches.set(provider, (perUser = new Map()));
  let cache = perUser.get(user);
  if (!cache) perUser.set(user, (cache = new TokenCache(provider, user)));
  return cache;
}

/**
 * The token a new connection authenticates with, and how it gets a fresh
 * one when the server refuses it: `{ token, renew }`, or `{}` when
 * `opts.auth.accessToken` is not a provider. Rejects with an SmtpError (EAUTH).
 * @param {{ auth?: object, timeouts?: { command?: number } }} opts normalized client options
 */
export async function connectionToken(opts) {
  const { user, pass, accessToken: provider } = opts.auth ?? {};
  // Malformed auth is refused (EINPUT) by engineOptions, before the provider is ever called.
  if (typeof provider !== 'function' || typeof user !== 'string' || (pass !== undefined && pass !== null)) return {};
  const source = tokenSource(provider, user);
  const wait = opts.timeouts?.command ?? DEFAULT_WAIT_MS;
  const token = await source.get(wait);
  return { token, renew: () => source.renew(token, wait) };
}

class TokenCache {
  #provider;
  #user;
  #token = null;
  /** When the cached token expires (ms since the epoch); null: not cached. */
  #expiresAt = null;
  /** The call in flight: { refresh, promise }. */
  #pending = null;

  constructor(provider, user) {
    this.#provider = provider;
    this.#user = user;
  }

  /** A current token: the cached one, or one fetched now. */
  get(waitMs) {
    if (this.#fresh()) return Promise.resolve(this.#token);
    return this.#fetch(false, waitMs);
  }

  /** A token other than `refused`, which a server has just refused. */
  async renew(refused, waitMs) {
    // Another connection may be renewing it, or have renewed it already.
    const current = this.#pending ? await this.#pending.promise.catch(() => null) : this.#fresh() ? this.#token : null;
    if (current !== null && current !== refused) return current;
    if (this.#token === refused) this.#expiresAt = null;
    return this.#fetch(true, waitMs);
  }

  #fresh() {
    return this.#token !== null && this.#expiresAt !== null && Date.now() < this.#expiresAt - EXPIRY_MARGIN_MS;
  }

  /** Calls the provider, or joins the call in flight (a renewal joins only a renewal). */
  #fetch(refresh, waitMs) {
    if (this.#pending && (this.#pending.refresh || !refresh)) return this.#pending.promise;
    const call = Promise.resolve()
      .then(() => this.#provider({ user: this.#user, refresh }))
      .then((value) => this.#keep(value));
    const pending = { refresh, promise: withTimeLimit(call, waitMs).catch((error) => Promise.reject(providerError(error))) };
    this.#pending = pending;
    const done = () => {
      if (this.#pending === pending) this.#pending = null;
    };
    pending.promise.then(done, done);
    return pending.promise;
  }

  #keep(value) {
    const { accessToken, expires } = typeof value === 'string' ? { accessToken: value } : isObject(value) ? value : {};
    const expiresAt = expires instanceof Date ? expires.getTime() : expires;
    if (typeof accessToken !== 'string' || accessToken === '' || (expiresAt !== undefined && expiresAt !== null && !Number.isFinite(expiresAt))) {
      throw authError(
        `the token provider (auth.accessToken) resolved with ${describeShape(value)}.`,
        'it must resolve with the access token (a string) or { accessToken, expires } (expires: a Date or milliseconds since 1970).',
      );
    }
    if (Number.isFinite(expiresAt) && expiresAt < 1e11) {
      throw authError(
        `the token provider (auth.accessToken) resolved with expires: ${expiresAt}, a time in 1973 or before.`,
        'expires is when the token expires, in milliseconds since 1970 (Date.now() + expires_in * 1000) or a Date; not a number of seconds.',
      );
    }
    this.#token = accessToken;
    this.#expiresAt = Number.isFinite(expiresAt) ? expiresAt : null;
    return accessToken;
  }
}

/** What a provider returned, without the token itself. */
function describeShape(value) {
  if (isObject(value)) return `an object with ${Object.keys(value).join(', ') || 'no keys'}`;
  return typeof value === 'string' ? 'an empty string' : describeValue(value);
}

/** Rejects with ETIMEDOUT when `promise` takes longer than `ms`. */
function withTimeLimit(promise, ms) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => {
      reject(
        new SmtpError({
          code: 'ETIMEDOUT',
          phase: 'auth',
          message: `the token provider (auth.accessToken) did not answer within ${Math.round(ms / 1000)} s.`,
          hint: 'check that it can reach the token endpoint.',
          retryable: true,
        }),
      );
    }, ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/** An SmtpError (from this module or another copy of it: the bundles) is kept; anything else is wrapped. */
function providerError(error) {
  if (error instanceof Error && error.name === 'SmtpError' && typeof error.code === 'string') return error;
  return authError(
    `the token provider (auth.accessToken) failed: ${error?.message ?? String(error)}`,
    'auth.accessToken must resolve with a current access token; check what the function calls.',
    { cause: error },
  );
}

function authError(message, hint, { retryable = false, cause } = {}) {
  return new SmtpError({ code: 'EAUTH', phase: 'auth', message, hint, retryable, cause });
}

// ----- oauth2(): the refresh-token grant ------------------------------------------

const OAUTH2_KEYS = Object.freeze(['tokenUrl', 'clientId', 'clientSecret', 'refreshToken', 'scope']);

/**
 * A token provider for `auth.accessToken` that exchanges a refresh token for
 * access tokens at `tokenUrl` (Gmail: https://oauth2.googleapis.com/token;
 * Microsoft 365: https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token).
 * A refresh token the endpoint rotates is used from then on.
 * @param {{ tokenUrl: string, clientId: string, clientSecret?: string, refreshToken: string, scope?: string }} options
 */
export function oauth2(options) {
  if (!isObject(options)) throw SmtpError.input(`oauth2() needs an options object, not ${describeValue(options)}.`, 'pass { tokenUrl, clientId, clientSecret, refreshToken }.', 'auth');
  checkKeys(options, OAUTH2_KEYS, 'oauth2() options', {}, 'auth');
  const { clientId, clientSecret, scope } = options;
  let { refreshToken } = options;
  const endpoint = tokenEndpoint(options.tokenUrl);
  for (const [key, value, required] of [['clientId', clientId, true], ['refreshToken', refreshToken, true], ['clientSecret', clientSecret, false], ['scope', scope, false]]) {
    if (value === undefined && !required) continue;
    if (typeof value === 'string' && value !== '') continue;
    // Secrets are never quoted, even when of the wrong type.
    const what = typeof value === 'string' ? 'empty' : key === 'clientId' || key === 'scope' ? describeValue(value) : `not text (${typeof value})`;
    throw SmtpError.input(`oauth2() ${key} is ${what}.`, `pass ${key} as the text the provider issued.`, 'auth');
  }
  const where = `${endpoint.origin}${endpoint.pathname}`;

  return async function refreshAccessToken() {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken, client_id: clientId });
    if (clientSecret !== undefined) form.set('client_secret', clientSecret);
    if (scope !== undefined) form.set('scope', scope);
    let response;
    try {
      response = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: form.toString(),
      });
    } catch (error) {
      throw authError(`the token endpoint ${where} could not be reached (${error?.cause?.code ?? error?.message ?? error}).`, 'check the network path to it (DNS, firewall, proxy); the next connection tries again.', { retryable: true, cause: error });
    }
    const body = await response.json().catch(() => null);
    if (!response.ok || typeof body?.access_token !== 'string' || body.access_token === '') {
      throw endpointError(where, response.status, body);
    }
    // Microsoft (and Google, sometimes) may rotate the refresh token.
    if (typeof body.refresh_token === 'string' && body.refresh_token !== '') refreshToken = body.refresh_token;
    const lifetime = Number(body.expires_in);
    return Number.isFinite(lifetime) && lifetime > 0 ? { accessToken: body.access_token, expires: Date.now() + lifetime * 1000 } : body.access_token;
  };
}

/** https://, or http:// to this machine only (a test endpoint): the client secret must not cross a network in clear. */
function tokenEndpoint(url) {
  let parsed;
  try {
    parsed = new URL(url);
  } catch {
    throw SmtpError.input(`oauth2() tokenUrl is ${describeValue(url)}, not a URL.`, 'pass the token endpoint, e.g. https://oauth2.googleapis.com/token (Gmail) or https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token (Microsoft 365).', 'auth');
  }
  const loopback = ['localhost', '127.0.0.1', '[::1]'].includes(parsed.hostname);
  if (parsed.protocol !== 'https:' && !(parsed.protocol === 'http:' && loopback)) {
    throw SmtpError.input(`oauth2() tokenUrl ${parsed.origin} is not https: the refresh token and client secret would travel in clear.`, 'use the https:// token endpoint (http:// is accepted for localhost only).', 'auth');
  }
  return parsed;
}

/** The endpoint's refusal as an EAUTH whose hint names the fix; never its whole body. */
function endpointError(where, status, body) {
  const code = typeof body?.error === 'string' ? clean(body.error, 60) : null;
  const description = typeof body?.error_description === 'string' ? clean(body.error_description, 200) : null;
  const said = code ? `${code}${description ? `: ${description}` : ''}` : `HTTP ${status}${body === null ? ', not JSON' : ', no access_token'}`;
  const message = `the token endpoint ${where} refused to issue an access token (${said}).`;
  if (code === 'invalid_grant') {
    return authError(message, 'the refresh token was revoked or has expired (a password change, the user removing access, or Google expiring tokens of apps in "testing" after 7 days): run the consent flow again for a new refreshToken.');
  }
  if (code === 'invalid_client' || code === 'unauthorized_client') {
    return authError(message, 'check clientId and clientSecret: they must be those of the app the refresh token was issued to.');
  }
  if (status >= 500 || status === 429) {
    return authError(message, 'the token endpoint failed or is rate-limiting; try again later.', { retryable: true });
  }
  return authError(message, 'check tokenUrl and the app registration (clientId, clientSecret, scope).');
}

/** Endpoint text for an error message: one line, printable, bounded. */
function clean(text, max) {
  const line = text.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}…` : line;
}
