// The resolver of Node and Bun. A and AAAA through node:dns/promises (a
// Resolver per server list), which gives their TTLs; MX and TXT on the wire
// (dns/stub.js) to the same servers, because node:dns gives no TTL for them
// (and Bun's splits TXT records), so every answer is cached for its own TTL.
// node:dns is imported on the first lookup, not with the entry (the bundle
// in dist/ would otherwise load it at start-up).

import { dnsError, parseServer } from './index.js';
import { wireLookup } from './stub.js';

/** Codes node:dns uses for "no such name" and "no such data". */
const EMPTY = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME']);

export async function nodeLookup() {
  const { promises: dns } = await import('node:dns');
  const resolvers = new Map();
  const resolverFor = (servers) => {
    const key = servers ? servers.map((s) => `${s.address}#${s.port}`).join(',') : '';
    let resolver = resolvers.get(key);
    if (!resolver) {
      resolver = new dns.Resolver({ timeout: 2500, tries: 2 });
      if (servers) resolver.setServers(servers.map(({ address, port }) => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`)));
      resolvers.set(key, resolver);
    }
    return resolver;
  };
  return async (name, type, servers) => {
    if (type === 'MX' || type === 'TXT') {
      const wire = servers ?? dns.getServers().map(parseServer).filter(Boolean);
      if (wire.length > 0) return wireLookup(name, type, wire);
    }
    const resolver = resolverFor(servers);
    try {
      switch (type) {
        case 'A':
        case 'AAAA': {
          const records = await (type === 'A' ? resolver.resolve4(name, { ttl: true }) : resolver.resolve6(name, { ttl: true }));
          return { values: records.map((r) => r.address), ttl: records.length ? Math.min(...records.map((r) => r.ttl)) : undefined };
        }
        case 'MX':
          return { values: await resolver.resolveMx(name) };
        case 'TXT':
          return { values: (await resolver.resolveTxt(name)).map((chunks) => chunks.join('')) };
        default:
          throw new RangeError(`unsupported record type ${type}`);
      }
    } catch (error) {
      if (EMPTY.has(error?.code)) return { values: [] };
      throw dnsError(name, type, `${error?.code ?? 'error'} from the resolver`, error);
    }
  };
}
