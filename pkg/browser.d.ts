// Types of the browser entry point `wasmtp/browser`: the same client API
// and diagnose() as `wasmtp`, over a WebSocket-to-TCP bridge (websockify),
// with TLS inside the engine.

import type { ClientOptions, Client, DiagnoseOptions, DiagnoseReport, DomainDiagnoseOptions, DomainDiagnoseReport, Transport } from './index.js';

export type * from './index.js';
export { createResolver, oauth2, ready, SmtpError } from './index.js';

/** Where the bridge is: its URL, or a function picking one per target (websockify token plugins). */
export type Bridge = string | ((target: { host: string; port: number }) => string | Promise<string>);

export interface BrowserOptions {
  /** The WebSocket-to-TCP bridge, e.g. 'ws://127.0.0.1:6080/'. Required unless `transport` is given. */
  bridge?: Bridge;
}

/** Creates a client whose TLS runs inside the engine (tls.engine is always 'wasm'). */
export function createClient(options: ClientOptions & BrowserOptions): Client;

/** The connection doctor through the bridge. */
export function diagnose(options: DiagnoseOptions & BrowserOptions): Promise<DiagnoseReport>;
/** The domain doctor: DNS over HTTPS, the port-25 probe through the bridge, the MTA-STS policy with fetch() (or fetchPolicy). */
export function diagnose(options: DomainDiagnoseOptions & BrowserOptions): Promise<DomainDiagnoseReport>;

/** A transport over a WebSocket bridge: binary frames carry the TCP byte stream. */
export function websocketTransport(options: {
  url: Bridge;
  /** Default: globalThis.WebSocket. */
  WebSocket?: unknown;
  /** How long to wait after the WebSocket opens for the bridge to report a refused connection. Default 300 ms. */
  openGraceMs?: number;
}): Transport;
