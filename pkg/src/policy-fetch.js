// The MTA-STS policy fetch (RFC 8461 §3.3) of direct delivery and the domain
// doctor: GET https://mta-sts.<domain>/.well-known/mta-sts.txt as a minimal
// HTTP/1.1 request over the runtime's own transport, so it leaves the way the
// mail does: the name resolved by the caller's resolver (the dns option),
// through the client's proxy and from its local address, the certificate
// verified for mta-sts.<domain> (tls.ca honoured). No redirects, at most
// 64 KiB, within a time limit. Browsers, which have no raw sockets, pass a
// fetch-based `fetchPolicy` instead.

/** RFC 8461 §3.2: a policy is small; anything bigger is not one. */
export const MAX_POLICY_BYTES = 64 * 1024;

/** The first IPv4 (then IPv6) address of `host` through the resolver; null when it has none. */
export async function addressOf(resolver, host) {
  const v4 = await resolver.a(host);
  if (v4.length > 0) return v4[0];
  const v6 = await resolver.aaaa(host);
  return v6[0] ?? null;
}

/** `transport.connect(args)`, given up after `ms` (rejects with 'timeout'); a socket that opens later is closed at once. */
export function connectWithin(transport, args, ms) {
  const connecting = transport.connect(args);
  return withTimeout(connecting, ms, () => {
    connecting.then(
      (late) => late.close(),
      () => {},
    );
    return 'timeout';
  });
}

/** `promise`, or a rejection with `value()` after `ms`. */
export function withTimeout(promise, ms, value) {
  let timer;
  return Promise.race([promise, new Promise((_, reject) => (timer = setTimeout(() => reject(value()), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * The policy text from `address` (already resolved), port `port`, for
 * `host` (the TLS name and Host header). `network`: the client's proxy and
 * local address, as the transport takes them. Throws an Error saying why
 * not, or 'timeout'.
 */
export async function httpsGetPolicy({ transport, address, host, port, ca, network, timeout }) {
  const path = '/.well-known/mta-sts.txt';
  const socket = await connectWithin(
    transport,
    { host: address, port, tls: true, upgradable: false, servername: host, ca, rejectUnauthorized: true, ...network },
    timeout,
  );
  const chunks = [];
  let size = 0;
  const done = new Promise((resolve, reject) => {
    socket.onData = (bytes) => {
      size += bytes.length;
      if (size > MAX_POLICY_BYTES + 16 * 1024) {
        socket.close();
        reject(new Error('the answer is larger than 64 KiB'));
      } else chunks.push(bytes.slice());
    };
    socket.onClose = (error) => (error ? reject(error) : resolve());
  });
  try {
    await socket.write(new TextEncoder().encode(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: text/plain\r\nConnection: close\r\n\r\n`));
    await withTimeout(done, timeout, () => 'timeout');
  } finally {
    socket.close();
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const body = httpBody(new TextDecoder().decode(all));
  if (body.length > MAX_POLICY_BYTES) throw new Error('the policy is larger than 64 KiB');
  return body;
}

/** The body of a 200 answer (plain or chunked); anything else throws its status. */
function httpBody(answer) {
  const end = answer.indexOf('\r\n\r\n');
  if (end < 0) throw new Error('the server closed the connection before a complete HTTP answer');
  const [status, ...fields] = answer.slice(0, end).split('\r\n');
  const code = /^HTTP\/1\.[01] (\d{3})/.exec(status)?.[1];
  if (code !== '200') throw new Error(code ? `HTTP ${code}${code.startsWith('3') ? ' (MTA-STS does not follow redirects)' : ''}` : 'the answer is not HTTP');
  const body = answer.slice(end + 4);
  const chunked = fields.some((f) => /^transfer-encoding:\s*chunked/i.test(f));
  if (!chunked) return body;
  let out = '';
  let rest = body;
  for (;;) {
    const line = rest.indexOf('\r\n');
    const length = Number.parseInt(rest.slice(0, line), 16);
    if (line < 0 || !Number.isFinite(length)) throw new Error('a broken chunked HTTP answer');
    if (length === 0) return out;
    out += rest.slice(line + 2, line + 2 + length);
    rest = rest.slice(line + 2 + length + 2);
  }
}
