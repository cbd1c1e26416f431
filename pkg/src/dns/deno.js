// The resolver of Deno: Deno.resolveDns (needs --allow-net). It gives no
// TTLs, so answers are cached for the fixed time of dns/index.js. Deno asks
// one name server per call: with several servers, the next is tried when one
// fails.

import { dnsError } from './index.js';

export function denoLookup() {
  return async (name, type, servers) => {
    const attempts = servers ?? [undefined];
    let last;
    for (const server of attempts) {
      try {
        const options = server ? { nameServer: { ipAddr: server.address, port: server.port } } : undefined;
        const records = await Deno.resolveDns(name, type, options);
        if (type === 'MX') return { values: records.map((r) => ({ exchange: r.exchange, priority: r.preference })) };
        if (type === 'TXT') return { values: records.map((chunks) => chunks.join('')) };
        return { values: records };
      } catch (error) {
        // NXDOMAIN and NODATA are both NotFound.
        if (error instanceof Deno.errors.NotFound) return { values: [] };
        last = error;
      }
    }
    throw dnsError(name, type, `${last?.name ?? 'error'} from Deno.resolveDns: ${last?.message ?? last}`, last);
  };
}
