// Types of the Cloudflare Workers entry points `wasmtp/workers` and
// `wasmtp/workers/tls`: the same client API as `wasmtp`, over
// cloudflare:sockets. On Workers, `tls.ca`, `tls.servername` and
// `rejectUnauthorized: false` need TLS inside the engine
// (`wasmtp/workers/tls` with `tls: { engine: 'wasm' }`); otherwise they are EINPUT.

import type { CloudflareQueueStore, CloudflareQueueStoreOptions, Transport } from './index.js';

export type * from './index.js';
export { createClient, createOutbox, diagnose, oauth2, ready, SmtpError } from './index.js';

/** The outbox store on Cloudflare: a Queue carries the work, D1 holds each message and its record. */
export function cloudflareQueueStore(options: CloudflareQueueStoreOptions): CloudflareQueueStore;

/** `connect()` from cloudflare:sockets (secureTransport "on" / "starttls" / "off"). */
export const workersTransport: Transport;
