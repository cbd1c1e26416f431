// Direct delivery: createClient({ mx: true }). One message goes to each
// recipient domain's MX hosts, its recipients grouped per domain.
//
// The rules are the engine's (src/mx, src/mta_sts through the `mx` wasm
// artifact): host order (preference, shuffled within equal preference), the
// implicit MX (no MX: the domain's own A/AAAA), the null MX (nothing is
// sent, the recipients fail permanently), the MTA-STS policy and whether an
// MX matches it. This module resolves names, fetches the policy and opens
// the SMTP connections, one per host tried, through the ordinary client.
//
// A host that refuses the connection, times out, fails TLS or answers 421
// (or any reply before MAIL FROM that ends the session) is left for the
// next one. Replies to MAIL, RCPT and DATA are the domain's answer: 2xx
// accepted, 5xx rejected, 4xx deferred. A domain none of whose hosts could
// be reached is deferred.

import { createClient as createRelayClient } from '../client.js';
import { createResolver } from '../dns/index.js';
import { loadEngine } from '../engine.js';
import { SmtpError } from '../errors.js';
import { prepareMessageAsync } from '../message.js';
import { normalizeOptions } from '../options.js';
import { addressOf, httpsGetPolicy } from '../policy-fetch.js';
import { isObject } from '../strict.js';
import { closedClientError } from '../util.js';
import { failure, mtaStsError, noHostError, noneAccepted, unreachableError } from './errors.js';
import { mtaStsPolicies } from './mta-sts.js';
import { normalizeMxOptions } from './options.js';

/** Where a connection ended before the server spoke for the domain: try the next host. */
const NEXT_HOST_CODES = new Set(['ECONNECT', 'ETIMEDOUT', 'ECLOSED', 'ETLS', 'ECERT', 'ESTARTTLS_UNAVAILABLE', 'EPROTOCOL']);
const SESSION_PHASES = new Set(['connect', 'tls', 'greeting', 'ehlo', 'starttls']);
/** Domains of one message delivered at the same time (each opens its own connection). */
const DOMAINS_AT_ONCE = 8;

/** `work(item)` for every item, at most `limit` at a time; results in item order. */
async function inBatches(items, limit, work) {
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/** An internationalized domain as DNS knows it (A-labels, "xn--"); ASCII stays as is. */
function asciiDomain(domain) {
  if (/^[\x00-\x7f]*$/.test(domain)) return domain;
  try {
    return new URL(`http://${domain}/`).hostname;
  } catch {
    return domain;
  }
}

/**
 * @param {object} options createClient options with `mx`
 * @param {object} defaultTransport the runtime's transport
 * @param {{ fetchPolicy?: Function, isWorkers?: boolean }} [runtime]
 */
export function createMxClient(options, defaultTransport, runtime = {}) {
  const opts = normalizeMxOptions(options);
  if (runtime.isWorkers ?? isCloudflareWorkers()) {
    throw new SmtpError({
      code: 'ECONNECT',
      phase: 'connect',
      message: 'Cloudflare Workers block outbound connections to port 25, so mail cannot be delivered to MX hosts from here.',
      hint: 'send through a relay instead: createClient({ host, port: 587, auth }) with your provider\'s smarthost (the domain doctor\'s verdict says the same).',
    });
  }
  return new MxClient(opts, defaultTransport, runtime.fetchPolicy ?? policyFetcher);
}

let policyFetcher;

/**
 * Set by the browser entry, whose bridge carries no TLS of its own: how
 * MTA-STS policies are fetched ({ url, host, port, ca, resolver } →
 * Promise<text>). Elsewhere they come over the transport (policy-fetch.js).
 */
export function setPolicyFetcher(fetcher) {
  policyFetcher = fetcher;
}

function isCloudflareWorkers() {
  return globalThis.navigator?.userAgent === 'Cloudflare-Workers';
}

class MxClient {
  #opts;
  #transport;
  #resolver;
  #policies;
  #closing = false;
  #sending = new Set();

  /** `fetchPolicy`: how MTA-STS policies are fetched; by default over the transport (policy-fetch.js), as the mail goes. */
  constructor(opts, transport, fetchPolicy) {
    this.#opts = opts;
    this.#transport = transport;
    this.#resolver = createResolver(opts.dns);
    fetchPolicy ??= transportPolicyFetcher(normalizeOptions({ ...opts.rest, host: 'mx.invalid' }, transport));
    this.#policies = mtaStsPolicies({ resolver: this.#resolver, fetchPolicy, port: opts.policyPort, ca: opts.rest.tls?.ca });
  }

  /**
   * Sends `message` to every recipient's MX. Resolves when at least one
   * recipient was accepted: { messageId, envelope, accepted, rejected,
   * deferred, recipients, mtaSts }. `options.recipients` restricts the
   * delivery to those envelope recipients (the outbox's retry of deferred
   * recipients).
   */
  send(message, options) {
    if (this.#closing) return Promise.reject(closedClientError());
    const sending = this.#send(message, options ?? {});
    this.#sending.add(sending);
    const settled = () => this.#sending.delete(sending);
    sending.then(settled, settled);
    return sending;
  }

  /** Checks the options and resolves nothing: there is no single server to verify. */
  async verify() {
    throw SmtpError.input('verify() needs one server; with mx: true there is one per recipient domain.', 'use diagnose({ domain }) to check a domain, or verify() on a relay client.', 'connect');
  }

  async close() {
    this.#closing = true;
    await Promise.allSettled([...this.#sending]);
  }

  async #send(message, options) {
    const checked = Object.keys(options).filter((k) => !['recipients', 'beforeDataEnd', 'dkim'].includes(k) && options[k] !== undefined);
    if (checked.length) throw SmtpError.input(`send() options.${checked[0]} is not a known option.`, 'send() takes recipients, beforeDataEnd and dkim.');
    const [engine, mx] = await Promise.all([loadEngine('core'), loadEngine('mx')]);
    const prepared = await prepareMessageAsync(engine, message);
    const { from, to } = prepared.envelopeInfo();
    prepared.release?.();
    // Every domain gets the same Message-ID (each domain's message is built anew).
    if (message.raw === undefined && message.messageId === undefined && prepared.messageId) message = { ...message, messageId: prepared.messageId };
    let recipients = to;
    if (options.recipients !== undefined) {
      if (!Array.isArray(options.recipients) || options.recipients.some((r) => !to.includes(r))) {
        throw SmtpError.input('send() options.recipients must be envelope recipients of the message.', `the message's recipients are ${to.join(', ')}.`);
      }
      recipients = options.recipients;
    }
    const byDomain = new Map();
    const results = [];
    for (const recipient of recipients) {
      const domain = mx.recipientDomain(recipient);
      if (!domain) {
        results.push(failure(recipient, undefined, 'rejected', SmtpError.input(`the recipient ${recipient} has no domain.`, 'MX delivery needs full addresses, like bob@example.org.', 'rcpt')));
        continue;
      }
      if (!byDomain.has(domain)) byDomain.set(domain, []);
      byDomain.get(domain).push(recipient);
    }
    const mtaSts = [];
    const perDomain = await inBatches([...byDomain], DOMAINS_AT_ONCE, ([domain, list]) =>
      this.#deliverDomain(mx, domain, list, message, from, options, mtaSts),
    );
    for (const list of perDomain) results.push(...list);
    const of = (status) => results.filter((r) => r.status === status).map((r) => r.recipient);
    const outcome = {
      messageId: prepared.messageId,
      envelope: { from, to: [...recipients] },
      accepted: of('accepted'),
      rejected: of('rejected'),
      deferred: of('deferred'),
      recipients: results,
      mtaSts,
    };
    if (outcome.accepted.length > 0) return outcome;
    throw noneAccepted(outcome);
  }

  async #deliverDomain(mx, domain, recipients, message, from, options, mtaStsReport) {
    const dnsName = asciiDomain(domain);
    let records;
    try {
      records = await this.#resolver.mx(dnsName);
    } catch (error) {
      return recipients.map((r) => failure(r, domain, 'deferred', error));
    }
    const route = mx.mxRoute(dnsName, records.map((r) => r.exchange), records.map((r) => r.priority), Math.random() * 2 ** 32);
    const kind = route.kind;
    let hosts = route.hosts;
    route.free();
    if (kind === 'null-mx') {
      const error = new SmtpError({
        code: 'ENULLMX',
        phase: 'dns',
        message: `${domain} publishes a null MX (RFC 7505): it accepts no mail, so nothing was sent to ${recipients.join(', ')}.`,
        hint: 'the address is wrong or the domain does not take mail; ask the recipient for another address.',
        retryable: false,
      });
      return recipients.map((r) => failure(r, domain, 'rejected', error));
    }
    // MTA-STS (RFC 8461): only when the domain has MX records (§4.1).
    let policy = null;
    if (kind === 'hosts') {
      const found = await this.#policies.get(mx, dnsName);
      if (found.report) mtaStsReport.push({ domain, ...found.report });
      policy = found.policy;
    }
    let security = this.#opts.security;
    if (policy?.mode === 'enforce') {
      const matching = hosts.filter((h) => policy.matches(h));
      if (matching.length === 0) {
        const error = mtaStsError(domain, `none of its MX hosts (${hosts.join(', ')}) matches the policy's mx patterns (${policy.mx.join(', ')})`);
        return recipients.map((r) => failure(r, domain, 'deferred', error));
      }
      hosts = matching;
      security = 'starttls';
    } else if (policy?.mode === 'testing') {
      const unmatched = hosts.filter((h) => !policy.matches(h));
      if (unmatched.length) mtaStsReport.find((r) => r.domain === domain).failures.push(`MX hosts not matching the policy: ${unmatched.join(', ')}`);
    }
    const testing = policy?.mode === 'testing' ? mtaStsReport.find((r) => r.domain === domain) : null;
    let lastError = null;
    const tried = [];
    for (const host of hosts) {
      let addresses;
      try {
        addresses = [...(await this.#resolver.a(host)), ...(await this.#resolver.aaaa(host))];
      } catch (error) {
        lastError = error;
        continue;
      }
      if (addresses.length === 0) {
        lastError = noHostError(domain, `${host} has no A or AAAA record`);
        continue;
      }
      for (const address of addresses) {
        tried.push(`${host} [${address}]`);
        // Testing mode: first as enforce would (STARTTLS, verified
        // certificate); what fails is reported, then sent as without a policy.
        let attempt = await this.#attempt(host, address, testing ? 'starttls' : security, recipients, message, from, options);
        if (attempt.next && testing && security !== 'starttls') {
          testing.failures.push(`${host}: ${attempt.error.code} ${attempt.error.detail}`);
          attempt = await this.#attempt(host, address, security, recipients, message, from, options);
        }
        if (!attempt.next) return attempt.results.map((r) => ({ ...r, domain }));
        lastError = attempt.error;
      }
    }
    if (policy?.mode === 'enforce' && lastError) {
      const error = mtaStsError(domain, `no MX host matching the policy could be reached over STARTTLS with a verified certificate (tried ${tried.join(', ') || 'none'}; last: ${lastError.message})`);
      return recipients.map((r) => failure(r, domain, 'deferred', error));
    }
    const error = lastError && tried.length ? unreachableError(domain, tried, lastError, this.#opts.port) : noHostError(domain, lastError ? lastError.detail ?? lastError.message : 'no host to try');
    return recipients.map((r) => failure(r, domain, 'deferred', error, tried.at(-1)));
  }

  /** One SMTP session to `host` at `address`; { next: true, error } to try the next host. */
  async #attempt(host, address, security, recipients, message, from, options) {
    const client = createRelayClient(
      {
        ...this.#opts.rest,
        host: address,
        port: this.#opts.port,
        security,
        tls: { ...this.#opts.rest.tls, servername: host },
        pool: { maxConnections: 1 },
      },
      this.#transport,
    );
    const hostLabel = `${host} [${address}]:${this.#opts.port}`;
    try {
      const domainMessage = { ...message, envelope: { ...(isObject(message.envelope) ? message.envelope : {}), from, to: recipients } };
      const result = await client.send(domainMessage, { beforeDataEnd: options.beforeDataEnd, dkim: options.dkim });
      const rejected = new Map(result.rejected.map((r) => [r.address, r]));
      return {
        next: false,
        results: recipients.map((recipient) => {
          const refusal = rejected.get(recipient);
          if (!refusal) return { recipient, status: 'accepted', host: hostLabel, reply: result.response, queueId: result.queueId };
          return {
            recipient,
            status: refusal.code >= 500 ? 'rejected' : 'deferred',
            host: hostLabel,
            reply: `${refusal.code}${refusal.enhancedCode ? ` ${refusal.enhancedCode}` : ''} ${refusal.message}`,
          };
        }),
      };
    } catch (error) {
      if (!(error instanceof SmtpError)) throw error;
      if (error.deliveryState === 'not-sent' && (error.reply?.code === 421 || (NEXT_HOST_CODES.has(error.code) && SESSION_PHASES.has(error.phase)))) {
        return { next: true, error };
      }
      const status = error.deliveryState === 'unknown' || error.retryable ? 'deferred' : 'rejected';
      return { next: false, results: recipients.map((r) => ({ ...failure(r, undefined, status, error, hostLabel) })) };
    } finally {
      await client.close().catch(() => {});
    }
  }
}

/** A policy is given this long (connecting, TLS and the answer each). */
const POLICY_TIMEOUT_MS = 10_000;

/**
 * The MTA-STS policy fetch over the client's own transport, proxy and local
 * address (relay: the relay client's options, normalized), the name through
 * the client's resolver.
 */
function transportPolicyFetcher(relay) {
  return async ({ host, port, ca, resolver }) => {
    const address = await addressOf(resolver, host);
    if (!address) throw new Error(`${host} has no A or AAAA record`);
    return httpsGetPolicy({ transport: relay.transport, address, host, port, ca, network: relay.network, timeout: POLICY_TIMEOUT_MS });
  };
}
