// The resolver of Node and Bun: node:dns/promises, a Resolver per server
// list. Lookups of A and AAAA carry TTLs; MX and TXT do not (node:dns has no
// TTL for them), so those are cached for the fixed time of dns/index.js.

import { promises as dns } from 'node:dns';

import { dnsError } from './index.js';

/** Codes node:dns uses for "no such name" and "no such data". */
const EMPTY = new Set(['ENOTFOUND', 'ENODATA', 'ENONAME']);

export function nodeLookup() {
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
