// Types of the Cloudflare Workers entry points `wasmtp/workers` and
// `wasmtp/workers/tls`: the same client API as `wasmtp`, over
// cloudflare:sockets. On Workers, `tls.ca`, `tls.servername` and
// `rejectUnauthorized: false` need TLS inside the engine
// (`wasmtp/workers/tls` with `tls: { engine: 'wasm' }`); otherwise they are EINPUT.

import type { Transport } from './index.js';

export type * from './index.js';
export { createClient, diagnose, SmtpError } from './index.js';

/** `connect()` from cloudflare:sockets (secureTransport "on" / "starttls" / "off"). */
export const workersTransport: Transport;
