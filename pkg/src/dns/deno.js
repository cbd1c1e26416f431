// The resolver of Deno. Every lookup goes on the wire (dns/stub.js, over
// node:dgram and node:net) to the given servers or the system's (node:dns
// getServers, which reads /etc/resolv.conf), so answers carry their TTLs.
// Where the system's servers cannot be read (no --allow-read), it falls back
// to Deno.resolveDns (needs --allow-net), which gives no TTLs: those answers
// are cached for the fixed time of dns/index.js. Deno.resolveDns asks one
// name server per call: with several servers, the next is tried when one
// fails.

import { dnsError, parseServer } from './index.js';
import { wireLookup } from './stub.js';

export function denoLookup() {
  let systemServers = null;
  return async (name, type, servers) => {
    systemServers ??= import('node:dns')
      .then((dns) => dns.getServers().map(parseServer).filter(Boolean))
      .catch(() => []);
    const wire = servers ?? (await systemServers);
    if (wire.length > 0) return wireLookup(name, type, wire);
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
