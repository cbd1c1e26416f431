// The browser entry point (`wasmtp/browser`). A page cannot open TCP
// sockets, so SMTP goes through a WebSocket-to-TCP bridge (websockify) given
// as `bridge`; TLS runs inside the engine (the TLS artifact, tls: { engine:
// 'wasm' }), so the bridge never sees a credential or a message in clear.
// The wasm artifacts are fetched next to this module (../wasm/).
//
//   import { diagnose } from 'wasmtp/browser';
//   const report = await diagnose({ host: 'smtp.example.com', bridge: 'ws://127.0.0.1:6080/' });

import { createClient as createClientWith } from './client.js';
import { diagnose as diagnoseWith } from './diagnose.js';
import { setWasmSource } from './engine.js';
import { SmtpError } from './errors.js';
import { setPolicyFetcher } from './mx/client.js';
import { websocketTransport } from './transports/websocket.js';

const wasmUrl = (name) => new URL(`../wasm/${name}`, import.meta.url);
// Every browser client runs TLS in the engine: the TLS artifact serves them all.
const tlsArtifact = { glue: () => import('../wasm/wasmtp_tls.js'), load: () => wasmUrl('wasmtp_tls_bg.wasm') };
setWasmSource('core', tlsArtifact);
setWasmSource('tls', tlsArtifact);
setWasmSource('doctor', { glue: () => import('../wasm/wasmtp_doctor.js'), load: () => wasmUrl('wasmtp_doctor_bg.wasm') });
setWasmSource('dkim', { glue: () => import('../wasm/wasmtp_dkim.js'), load: () => wasmUrl('wasmtp_dkim_bg.wasm') });
setWasmSource('mx', { glue: () => import('../wasm/wasmtp_mx.js'), load: () => wasmUrl('wasmtp_mx_bg.wasm') });

/** An MTA-STS policy through fetch() (the page has no TLS for raw sockets): no redirects, a time limit. */
function fetchPolicy({ url }) {
  return fetch(url, { redirect: 'error', signal: AbortSignal.timeout(10_000) }).then((r) => (r.status === 200 ? r.text() : Promise.reject(new Error(`HTTP ${r.status}`))));
}
setPolicyFetcher(fetchPolicy);

/**
 * Creates a client; see index.d.ts. Needs `bridge` (a websockify URL, or a
 * function `({ host, port }) => url`) or a `transport`.
 */
export function createClient(options) {
  return createClientWith(browserOptions(options));
}

/** The connection doctor through the bridge; see index.d.ts (`diagnose`). */
export function diagnose(options) {
  try {
    if (options?.domain !== undefined) return diagnoseWith(domainOptions(options));
    return diagnoseWith(browserOptions(options));
  } catch (error) {
    return Promise.reject(error);
  }
}

/**
 * The domain doctor in a page: DNS over HTTPS (the resolver's browser
 * default, or `dns: { doh }`), the port-25 probe through the bridge, and the
 * MTA-STS policy with fetch() unless `fetchPolicy` is given (a policy
 * server rarely allows cross-origin reads; the doctor page asks its own server).
 */
function domainOptions(options) {
  const { bridge, ...rest } = options;
  if (rest.transport === undefined && bridge === undefined) {
    throw SmtpError.input(
      'a browser cannot open TCP connections: pass bridge, the URL of a WebSocket-to-TCP bridge, for the port-25 probe.',
      "start one with `npx wasmtp doctor --web` and pass bridge: 'ws://127.0.0.1:6080/' (or ({ host, port }) => url).",
      'connect',
    );
  }
  return {
    ...rest,
    transport: rest.transport ?? websocketTransport({ url: bridge }),
    fetchPolicy: rest.fetchPolicy ?? fetchPolicy,
  };
}

/** Options with TLS inside the engine and the bridge as transport. */
function browserOptions(options) {
  const { bridge, ...rest } = options ?? {};
  if (rest.tls?.engine === 'native') {
    throw SmtpError.input(
      "a browser has no TLS for raw sockets: tls.engine 'native' is not available here.",
      "leave tls.engine out (TLS runs inside the engine) and pass tls.ca for a private CA.",
      'tls',
    );
  }
  if (rest.transport === undefined && bridge === undefined) {
    throw SmtpError.input(
      'a browser cannot open TCP connections: pass bridge, the URL of a WebSocket-to-TCP bridge.',
      "start one with `websockify 127.0.0.1:6080 smtp.example.com:587` (or `npx wasmtp doctor --web`) and pass bridge: 'ws://127.0.0.1:6080/'.",
      'connect',
    );
  }
  return {
    ...rest,
    tls: { ...rest.tls, engine: 'wasm' },
    transport: rest.transport ?? websocketTransport({ url: bridge }),
  };
}

export { oauth2 } from './oauth2.js';
export { createResolver } from './dns/index.js';
export { ready } from './engine.js';
export { SmtpError, websocketTransport };
