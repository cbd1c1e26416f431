// The Cloudflare Workers entry point (`wasmtp/workers`): sockets from
// `cloudflare:sockets`, the core engine imported as a compiled wasm module.
// For TLS inside the engine (a private CA, pinning), use `wasmtp/workers/tls`.

import { setWasmSource } from './engine.js';
import wasmModule from '../wasm/wasmtp_bg.wasm';
import dkimModule from '../wasm/wasmtp_dkim_bg.wasm';

setWasmSource('core', { glue: () => import('../wasm/wasmtp.js'), load: () => wasmModule });
// DKIM signing: bundled (workerd cannot compile wasm from bytes), instantiated only by clients that sign; one-shot streams spool in memory.
setWasmSource('dkim', { glue: () => import('../wasm/wasmtp_dkim.js'), load: () => dkimModule });

export { createClient, diagnose, SmtpError, workersTransport } from './workers-client.js';
export { cloudflareQueueStore } from './outbox/cloudflare.js';
export { createOutbox } from './outbox/index.js';
export { oauth2 } from './oauth2.js';
export { ready } from './engine.js';
