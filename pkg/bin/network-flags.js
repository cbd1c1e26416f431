// The CLI flags for proxies and TLS client settings (send, verify and
// doctor alike), and how they become createClient / diagnose options.
// Secrets never go on the command line: the proxy URL and the key's
// passphrase can come from environment variables.

import { readFileSync } from 'node:fs';

/** parseArgs definitions of these flags. */
export const NETWORK_FLAGS = Object.freeze({
  proxy: { type: 'string' },
  'proxy-env': { type: 'string' },
  'local-address': { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  pfx: { type: 'string' },
  'passphrase-env': { type: 'string' },
  ciphers: { type: 'string' },
  'min-tls': { type: 'string' },
});

/** The help lines of these flags. */
export const NETWORK_HELP = `  --proxy URL            connect through a proxy: http://[user:pass@]host:port (HTTP CONNECT) or
                         socks5://[user:pass@]host:port (SOCKS5, the proxy resolves the server's name);
                         "env" takes it from WASMTP_PROXY or ALL_PROXY
  --proxy-env NAME       the proxy URL from the environment variable NAME (keeps its password out of ps)
  --local-address IP     connect from this local address
  --cert FILE            a client certificate chain (PEM), for servers that ask for one; needs --key
  --key FILE             its private key (PEM)
  --pfx FILE             the client certificate and key as PKCS#12, instead of --cert and --key
  --passphrase-env NAME  the passphrase of an encrypted --key or --pfx, from the environment variable NAME
  --ciphers LIST         an OpenSSL cipher list for TLS 1.2 (default: the runtime's)
  --min-tls VERSION      TLSv1.2 (default) or TLSv1.3`;

/**
 * Adds proxy, localAddress and tls.{cert,key,pfx,passphrase,ciphers,minVersion}
 * to `options` from `values`. `usage(text)` makes the usage error; `read(path, flag)`
 * reads a file (bytes).
 */
export function applyNetworkFlags(options, values, usage) {
  const read = (flag) => {
    try {
      return readFileSync(values[flag]);
    } catch (error) {
      throw usage(`--${flag} ${values[flag]}: ${error.code === 'ENOENT' ? 'no such file' : error.message}.`);
    }
  };
  const env = (flag) => {
    const value = process.env[values[flag]];
    if (value === undefined || value === '') throw usage(`--${flag} ${values[flag]}: the environment variable ${values[flag]} is not set.`);
    return value;
  };
  if (values.proxy !== undefined && values['proxy-env'] !== undefined) throw usage('use only one of --proxy and --proxy-env.');
  if (values.proxy !== undefined) options.proxy = values.proxy;
  if (values['proxy-env'] !== undefined) options.proxy = env('proxy-env');
  if (values['local-address'] !== undefined) options.localAddress = values['local-address'];
  const tls = {};
  if (values.cert !== undefined) tls.cert = read('cert').toString('utf8');
  if (values.key !== undefined) tls.key = read('key').toString('utf8');
  if (values.pfx !== undefined) tls.pfx = read('pfx');
  if (values['passphrase-env'] !== undefined) tls.passphrase = env('passphrase-env');
  if (values.ciphers !== undefined) tls.ciphers = values.ciphers;
  if (values['min-tls'] !== undefined) tls.minVersion = values['min-tls'];
  if (Object.keys(tls).length > 0) options.tls = { ...options.tls, ...tls };
  return options;
}
