// The Cloudflare Workers entry point with TLS inside the engine
// (`wasmtp/workers/tls`): the same API as `wasmtp/workers`, plus
// tls: { engine: 'wasm', ca, pin } over a socket opened with
// secureTransport: 'off'. It imports only the TLS artifact, which also
// serves clients that keep the platform's TLS.

import { setWasmSource } from './engine.js';
import wasmModule from '../wasm/wasmtp_tls_bg.wasm';
import dkimModule from '../wasm/wasmtp_dkim_bg.wasm';

const source = { glue: () => import('../wasm/wasmtp_tls.js'), load: () => wasmModule };
setWasmSource('core', source);
setWasmSource('tls', source);
// DKIM signing (instantiated only by clients that sign; one-shot streams spool in memory).
setWasmSource('dkim', { glue: () => import('../wasm/wasmtp_dkim.js'), load: () => dkimModule });

export { createClient, diagnose, SmtpError, workersTransport } from './workers-client.js';
export { cloudflareQueueStore } from './outbox/cloudflare.js';
export { createOutbox } from './outbox/index.js';
export { oauth2 } from './oauth2.js';
export { ready } from './engine.js';
