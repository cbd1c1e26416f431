// One small resolver interface for every runtime (MX delivery and the
// domain doctor use only this):
//
//   resolver.mx(name)   → Promise<{ exchange, priority }[]>
//                          a null MX (RFC 7505, "0 .") is { exchange: '', priority: 0 }
//   resolver.txt(name)  → Promise<string[]>   each record's character-strings joined
//   resolver.a(name)    → Promise<string[]>
//   resolver.aaaa(name) → Promise<string[]>
//
// Names come back lower-case without the trailing dot. A name that does not
// exist (NXDOMAIN) or has no record of the type (NODATA) resolves to [];
// anything else (SERVFAIL, REFUSED, a time-out, a broken answer) rejects
// with an SmtpError `EDNS` (phase 'dns', retryable) naming the name, the
// type and the cause.
//
// createResolver(options):
//   undefined             the runtime's own resolver: node:dns on Node and
//                         Bun, Deno.resolveDns on Deno (set by the entry,
//                         setSystemResolver); DNS-over-HTTPS to Cloudflare's
//                         public resolver on Workers and in the browser
//   { servers: [...] }    these name servers ('127.0.0.1', '127.0.0.1:5353',
//                         '[::1]:53'); Node, Bun and Deno only
//   { doh: 'https://…' }  DNS-over-HTTPS (RFC 8484, application/dns-message
//                         via fetch), on every runtime
//   a resolver object     called as is (its four methods are checked; what
//                         it throws becomes EDNS unless it is an SmtpError)
//
// Answers are cached per resolver for their TTL: every answer read on the
// wire carries it (DoH; dns/stub.js for MX and TXT on Node and Bun, every
// type on Deno) and node:dns reports it for A and AAAA. Where none is known
// (Deno.resolveDns, the fallback without /etc/resolv.conf) for 60 seconds
// (FIXED_TTL_SECONDS); "no such data" for 60 seconds too. At most
// CACHE_LIMIT entries, the oldest dropped first.

import { SmtpError } from '../errors.js';
import { decodeResponse, encodeQuery, RCODE_NXDOMAIN, TYPES } from './wire.js';

export const FIXED_TTL_SECONDS = 60;
const CACHE_LIMIT = 1000;
export const QUERY_TIMEOUT_MS = 5000;
/** Workers and the browser have no resolver of their own. */
export const DEFAULT_DOH = 'https://cloudflare-dns.com/dns-query';
const METHODS = ['mx', 'txt', 'a', 'aaaa'];

let systemResolver = null;

/**
 * Set by the Node/Deno/Bun entry: a function returning (a promise of) the
 * runtime's lookup function `(name, type, servers?) => Promise<{ values, ttl? }>`
 * (see dns/node.js, dns/deno.js). Without one, the default is DoH.
 */
export function setSystemResolver(factory) {
  systemResolver = factory;
}

/** Checks `dns` as the client option of that name; throws EINPUT naming it. */
export function checkResolverOptions(options, name = 'dns') {
  if (options === undefined) return;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw SmtpError.input(`${name} must be an object: { servers }, { doh } or a resolver.`, `pass ${name}: { servers: ['127.0.0.1:53'] }, ${name}: { doh: 'https://…/dns-query' }, or an object with mx, txt, a and aaaa methods.`, 'dns');
  }
  if (METHODS.some((m) => m in options)) {
    const missing = METHODS.filter((m) => typeof options[m] !== 'function');
    if (missing.length) throw SmtpError.input(`${name} looks like a resolver but has no ${missing.join(', ')} method.`, `a resolver has the methods ${METHODS.join(', ')}, each returning a promise.`, 'dns');
    return;
  }
  const keys = Object.keys(options);
  const unknown = keys.filter((k) => k !== 'servers' && k !== 'doh');
  if (unknown.length) throw SmtpError.input(`${name} has unknown field ${unknown.map((k) => `"${k}"`).join(', ')}.`, `${name} takes { servers: [...] } or { doh: 'https://…' }, or a resolver object.`, 'dns');
  if ('servers' in options && 'doh' in options) throw SmtpError.input(`${name} has both servers and doh.`, 'pick one: name servers, or a DNS-over-HTTPS URL.', 'dns');
  if ('servers' in options) {
    const { servers } = options;
    if (!Array.isArray(servers) || servers.length === 0 || servers.some((s) => typeof s !== 'string' || parseServer(s) === null)) {
      throw SmtpError.input(`${name}.servers must be a non-empty array of "address" or "address:port" strings.`, "e.g. servers: ['127.0.0.1:5353', '[::1]:53'].", 'dns');
    }
  }
  if ('doh' in options) {
    let url;
    try {
      url = new URL(options.doh);
    } catch {
      url = null;
    }
    if (!url || (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopback(url.hostname)))) {
      throw SmtpError.input(`${name}.doh must be an https:// URL (plain http only on loopback), got ${JSON.stringify(options.doh)}.`, "e.g. doh: 'https://cloudflare-dns.com/dns-query'.", 'dns');
    }
  }
}

/** { address, port } of '1.2.3.4', '1.2.3.4:53', '::1', '[::1]:53'; null if malformed. */
export function parseServer(text) {
  let m = /^\[([0-9a-fA-F:.]+)\](?::(\d{1,5}))?$/.exec(text);
  if (m) return { address: m[1], port: m[2] ? Number(m[2]) : 53 };
  m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(text);
  if (m) return { address: m[1], port: m[2] ? Number(m[2]) : 53 };
  if (/^[0-9a-fA-F:]+$/.test(text) && text.includes(':')) return { address: text, port: 53 };
  return null;
}

function isLoopback(hostname) {
  return hostname === 'localhost' || /^127\./.test(hostname) || hostname === '[::1]';
}

/**
 * A resolver for `options` (see the top of this file).
 * @returns {{ mx: Function, txt: Function, a: Function, aaaa: Function }}
 */
export function createResolver(options) {
  checkResolverOptions(options);
  if (options && METHODS.every((m) => typeof options[m] === 'function')) return guarded(options);
  let lookup;
  if (options?.doh) lookup = dohLookup(options.doh);
  else if (options?.servers) {
    if (!systemResolver) {
      throw SmtpError.input('dns.servers needs a runtime with its own resolver (Node, Deno, Bun).', "on Workers and in the browser use DNS-over-HTTPS: dns: { doh: 'https://…/dns-query' }.", 'dns');
    }
    lookup = systemLookup(options.servers.map(parseServer));
  } else lookup = systemResolver ? systemLookup(undefined) : dohLookup(DEFAULT_DOH);
  return cachedResolver(lookup);
}

/** The runtime's resolver, loaded on first use. */
function systemLookup(servers) {
  let loaded = null;
  return async (name, type) => {
    loaded ??= Promise.resolve().then(systemResolver);
    return (await loaded)(name, type, servers);
  };
}

/** DNS-over-HTTPS: POST application/dns-message (RFC 8484 §4.1). */
function dohLookup(url) {
  return async (name, type) => {
    let response;
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/dns-message', accept: 'application/dns-message' },
        body: encodeQuery(name, TYPES[type]),
        signal: AbortSignal.timeout(QUERY_TIMEOUT_MS),
      });
    } catch (error) {
      throw dnsError(name, type, `the DNS-over-HTTPS server ${url} could not be reached (${error?.message ?? error})`, error);
    }
    if (!response.ok) throw dnsError(name, type, `the DNS-over-HTTPS server ${url} answered HTTP ${response.status}`);
    return answerFrom(name, type, new Uint8Array(await response.arrayBuffer()));
  };
}

/** The records of `type` in a wire-format answer, with their TTL; NXDOMAIN is none. */
export function answerFrom(name, type, bytes) {
  let answer;
  try {
    answer = decodeResponse(bytes);
  } catch (error) {
    throw dnsError(name, type, `the DNS answer could not be read (${error.message})`, error);
  }
  if (answer.rcode === RCODE_NXDOMAIN) return { values: [], ttl: FIXED_TTL_SECONDS };
  if (answer.rcode !== 0) throw dnsError(name, type, `the DNS server answered ${RCODES[answer.rcode] ?? `RCODE ${answer.rcode}`}`);
  const records = answer.answers.filter((r) => r.type === TYPES[type]);
  const ttl = records.length ? Math.min(...records.map((r) => r.ttl)) : FIXED_TTL_SECONDS;
  return { values: records.map((r) => r.data), ttl };
}

const RCODES = { 1: 'FORMERR', 2: 'SERVFAIL', 4: 'NOTIMP', 5: 'REFUSED' };

/** An EDNS error for a failed lookup (the runtime adapters use it too). */
export function dnsError(name, type, why, cause) {
  return new SmtpError({
    code: 'EDNS',
    phase: 'dns',
    message: `The ${type} lookup of ${name} failed: ${why}.`,
    hint: 'check the resolver (dns option: { servers } or { doh }) and the network; a failure of the domain\'s own name servers clears up when they recover.',
    retryable: true,
    cause,
  });
}

function cachedResolver(lookup) {
  const cache = new Map();
  const query = async (type, name) => {
    const key = `${type} ${String(name).toLowerCase().replace(/\.$/, '')}`;
    const hit = cache.get(key);
    if (hit && hit.expires > Date.now()) return hit.values;
    const host = key.slice(type.length + 1);
    let result;
    try {
      result = await lookup(host, type);
    } catch (error) {
      if (error instanceof SmtpError) throw error;
      throw dnsError(host, type, error?.message ?? String(error), error);
    }
    const values = type === 'MX' ? result.values.map(normalizeMx) : result.values.map((v) => (type === 'TXT' ? v : String(v).toLowerCase()));
    cache.delete(key);
    cache.set(key, { values, expires: Date.now() + 1000 * (result.ttl ?? FIXED_TTL_SECONDS) });
    if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value);
    return values;
  };
  return {
    mx: (name) => query('MX', name).then((list) => list.map((r) => ({ ...r }))),
    txt: (name) => query('TXT', name).then((list) => [...list]),
    a: (name) => query('A', name).then((list) => [...list]),
    aaaa: (name) => query('AAAA', name).then((list) => [...list]),
  };
}

/**
 * A resolver of the user's: called as is, its failures made EDNS errors
 * (an SmtpError it throws is kept), so callers see one kind of failure.
 */
function guarded(resolver) {
  const call = (method, type) => async (name) => {
    try {
      return await resolver[method](name);
    } catch (error) {
      if (error instanceof SmtpError) throw error;
      throw dnsError(name, type, `the resolver passed as dns threw: ${error?.message ?? error}`, error);
    }
  };
  return { mx: call('mx', 'MX'), txt: call('txt', 'TXT'), a: call('a', 'A'), aaaa: call('aaaa', 'AAAA') };
}

/** MX exchange lower-case without the trailing dot; the null MX's "." becomes ''. */
function normalizeMx({ exchange, priority }) {
  return { exchange: String(exchange).toLowerCase().replace(/\.$/, ''), priority: Number(priority) };
}
