// The proxy and TLS client-settings cases, runtime-neutral: the Node.js
// suite runs them in process, and harness.mjs runs them in Deno and Bun.
// `config` (JSON, from tls-client.test.mjs) names the servers and proxies
// already running; each case resolves to { name, ok, detail }.

const envelope = { from: 'ann@example.com', to: ['bob@example.org'] };
const raw = 'From: ann@example.com\r\nTo: bob@example.org\r\nSubject: client settings\r\n\r\nhello\r\n';

export async function runCases({ createClient, config }) {
  const { ca, clientCert, clientKey, clientKeyEncrypted, passphrase, otherCert, otherKey } = config.certs;
  const clientPfx = Uint8Array.from(config.certs.clientPfx);
  const cases = [];
  const sends = (name, options, check = () => true) => cases.push({ name, options, expect: 'sent', check });
  const fails = (name, options, check) => cases.push({ name, options, expect: 'error', check });
  const certServers = { starttls: config.ports.certStarttls, tls: config.ports.certImplicit };

  for (const [security, port] of Object.entries(certServers)) {
    const at = { host: 'localhost', port, security };
    sends(`client certificate (PEM), ${security}`, { ...at, tls: { ca, cert: clientCert, key: clientKey } });
    sends(`client certificate, TLS inside the engine, ${security}`, { ...at, tls: { ca, engine: 'wasm', cert: clientCert, key: clientKey } });
    if (config.runtimeTlsOptions) {
      sends(`client certificate with an encrypted key and passphrase, ${security}`, { ...at, tls: { ca, cert: clientCert, key: clientKeyEncrypted, passphrase } });
      sends(`client certificate as PKCS#12, ${security}`, { ...at, tls: { ca, pfx: clientPfx, passphrase } });
      fails(`a wrong passphrase is EINPUT, ${security}`, { ...at, tls: { ca, cert: clientCert, key: clientKeyEncrypted, passphrase: 'wrong' } }, (e) => e.code === 'EINPUT' && /tls\.cert \/ tls\.key/.test(e.message));
    }
    fails(`no client certificate: refused, ${security}`, { ...at, tls: { ca } }, (e) => ['ETLS', 'ECLOSED', 'ECERT'].includes(e.code));
    fails(`a client certificate the server does not trust: refused, ${security}`, { ...at, tls: { ca, cert: otherCert, key: otherKey } }, (e) => ['ETLS', 'ECLOSED', 'ECERT'].includes(e.code));
    // Both at once: through the HTTP proxy to the server that wants a certificate.
    sends(`client certificate through the HTTP CONNECT proxy, ${security}`, { ...at, proxy: config.proxies.http, tls: { ca, cert: clientCert, key: clientKey } });
    sends(`client certificate through the SOCKS5 proxy, TLS inside the engine, ${security}`, { ...at, proxy: config.proxies.socks, tls: { ca, engine: 'wasm', cert: clientCert, key: clientKey } });
  }

  for (const [name, proxy] of Object.entries(config.proxies)) {
    for (const [security, port] of Object.entries(config.ports.plain)) {
      for (const engine of ['native', 'wasm']) {
        if (security === 'none' && engine === 'wasm') continue;
        sends(`${security} through ${name} (${engine} TLS)`, { host: 'localhost', port, security, proxy, tls: { ca, engine } });
      }
    }
  }
  fails('a wrong SOCKS5 password is EPROXY', { host: 'localhost', port: config.ports.plain.starttls, security: 'starttls', proxy: config.wrongProxy, tls: { ca } }, (e) => e.code === 'EPROXY' && e.phase === 'proxy');

  // minVersion against a server that speaks at most TLS 1.2: refused on every path.
  for (const security of ['starttls', 'tls']) {
    const port = security === 'tls' ? config.ports.tls12Implicit : config.ports.tls12Starttls;
    for (const engine of ['native', 'wasm']) {
      fails(`minVersion TLSv1.3 refuses a TLS 1.2 server, ${security}, ${engine} TLS`, { host: 'localhost', port, security, tls: { ca, engine, minVersion: 'TLSv1.3' } }, (e) => e.code === 'ETLS');
    }
    sends(`minVersion TLSv1.2 accepts it, ${security}`, { host: 'localhost', port, security, tls: { ca, minVersion: 'TLSv1.2' } });
  }

  if (config.runtimeTlsOptions) {
    const cipher = 'ECDHE-ECDSA-AES128-GCM-SHA256';
    cases.push({
      name: 'ciphers: the one allowed suite is used',
      options: { host: 'localhost', port: config.ports.tls12Starttls, security: 'starttls', tls: { ca, ciphers: cipher } },
      expect: 'verify',
      check: (info) => info.tls.cipher === 'TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256' || info.tls.cipher === cipher,
    });
    sends('localAddress: the server sees the chosen address', { host: '127.0.0.1', port: config.ports.plain.none, security: 'none', localAddress: config.localAddress });
  }

  const results = [];
  for (const c of cases) {
    let client;
    try {
      client = createClient(c.options);
      if (c.expect === 'verify') {
        const info = await client.verify();
        results.push({ name: c.name, ok: c.check(info), detail: JSON.stringify(info.tls) });
      } else {
        const result = await client.send({ raw, envelope });
        results.push({ name: c.name, ok: c.expect === 'sent' && result.accepted.length === 1, detail: c.expect === 'sent' ? '' : 'sent, but should have failed' });
      }
    } catch (error) {
      const ok = c.expect === 'error' && error?.name === 'SmtpError' && c.check(error) === true;
      results.push({ name: c.name, ok, detail: `${error?.message ?? error}` });
    } finally {
      await client?.close().catch(() => {});
    }
  }
  return results;
}
