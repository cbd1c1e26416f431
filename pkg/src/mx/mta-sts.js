// MTA-STS policies (RFC 8461) for MX delivery: the `_mta-sts` TXT record,
// then the policy file from https://mta-sts.<domain>/.well-known/mta-sts.txt,
// cached for its max_age and fetched again when the record's id changes.
// Parsing and matching are the engine's (MtaStsPolicy of the `mx` artifact).
//
// get(mx, domain) resolves { policy, report }:
//   policy  null (no policy: deliver as usual) or { mode, mx, maxAge, matches(host) }
//   report  undefined when the domain has no record, otherwise
//           { mode, id, failures: [] } for the send result's `mtaSts`
// A record whose policy cannot be fetched or parsed counts as no policy
// (§5.1), unless a policy is still cached for the domain.

const CACHE_LIMIT = 500;

export function mtaStsPolicies({ resolver, fetchPolicy, port, ca }) {
  const cache = new Map(); // domain -> { id, policy, expires }

  async function get(mx, domain) {
    let records;
    try {
      records = await resolver.txt(`_mta-sts.${domain}`);
    } catch (error) {
      const cached = cache.get(domain);
      if (cached) return { policy: cached.policy, report: { mode: cached.policy.mode, id: cached.id, failures: [`TXT lookup failed (${error.code ?? error.message}); the cached policy applies`] } };
      return { policy: null, report: undefined };
    }
    let id;
    try {
      id = mx.mtaStsRecordId(records);
    } catch (error) {
      return { policy: cache.get(domain)?.policy ?? null, report: { mode: 'none', id: undefined, failures: [`_mta-sts.${domain}: ${error.message}`] } };
    }
    if (id === undefined) return { policy: null, report: undefined };
    const cached = cache.get(domain);
    if (cached && cached.id === id && cached.expires > Date.now()) return { policy: cached.policy, report: { mode: cached.policy.mode, id, failures: [] } };
    const host = `mta-sts.${domain}`;
    const url = `https://${host}${port === 443 ? '' : `:${port}`}/.well-known/mta-sts.txt`;
    let policy;
    try {
      const text = await fetchPolicy({ url, host, port, ca, resolver });
      policy = parse(mx, text);
    } catch (error) {
      const reason = `the policy ${url} could not be used: ${error?.message ?? error}`;
      if (cached) return { policy: cached.policy, report: { mode: cached.policy.mode, id: cached.id, failures: [`${reason}; the cached policy applies`] } };
      return { policy: null, report: { mode: 'none', id, failures: [reason] } };
    }
    cache.delete(domain);
    cache.set(domain, { id, policy, expires: Date.now() + policy.maxAge * 1000 });
    if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value);
    return { policy, report: { mode: policy.mode, id, failures: [] } };
  }

  return { get };
}

/** A plain policy object; the wasm one is kept for matches(). */
function parse(mx, text) {
  const parsed = mx.MtaStsPolicy.parse(text);
  return {
    mode: parsed.mode,
    mx: parsed.mx,
    maxAge: parsed.maxAge,
    matches: (host) => parsed.matches(host),
  };
}
