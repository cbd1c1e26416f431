// The MTA-STS policy fetch of Node and Bun: node:https with the name
// resolved by the client's resolver (the `dns` option, so a private DNS
// answers for mta-sts.<domain> as it does for the MX), the certificate
// verified against mta-sts.<domain> (with tls.ca added to the trusted roots
// when given), no redirects (RFC 8461 §3.3), a 64 KB cap and a time limit.
// node:https and node:tls are imported on the first fetch, not with the
// entry (the bundle in dist/ would otherwise load them at start-up).

const MAX_BYTES = 64 * 1024;
const TIMEOUT_MS = 10_000;

export async function nodeFetchPolicy({ url, ca, resolver }) {
  const [{ request }, { rootCertificates }] = await Promise.all([import('node:https'), import('node:tls')]);
  return new Promise((resolve, reject) => {
    const lookup = (hostname, options, callback) => {
      Promise.all([resolver.a(hostname), resolver.aaaa(hostname).catch(() => [])]).then(
        ([v4, v6]) => {
          const all = [...v4.map((address) => ({ address, family: 4 })), ...v6.map((address) => ({ address, family: 6 }))];
          if (all.length === 0) {
            // node:net's code for a name without addresses (not an SmtpError code).
            const notFound = new Error(`${hostname} has no A or AAAA record`);
            notFound.code = 'ENOTFOUND';
            return callback(notFound);
          }
          if (options.all) return callback(null, all);
          callback(null, all[0].address, all[0].family);
        },
        (error) => callback(error),
      );
    };
    const req = request(url, {
      lookup,
      ca: ca === undefined ? undefined : [...rootCertificates, ...[ca].flat()],
      timeout: TIMEOUT_MS,
      headers: { accept: 'text/plain' },
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.on('response', (response) => {
      if (response.statusCode !== 200) {
        response.resume();
        return reject(new Error(`HTTP ${response.statusCode}${response.headers.location ? ' (redirects are not followed)' : ''}`));
      }
      const chunks = [];
      let size = 0;
      response.on('data', (chunk) => {
        size += chunk.length;
        if (size > MAX_BYTES) req.destroy(new Error(`the policy is larger than ${MAX_BYTES} bytes`));
        else chunks.push(chunk);
      });
      response.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      response.on('error', reject);
    });
    req.end();
  });
}
