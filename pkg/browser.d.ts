// Types of the browser entry point `wasmtp/browser`: the same client API
// and diagnose() as `wasmtp`, over a WebSocket-to-TCP bridge (websockify),
// with TLS inside the engine.

import type { ClientOptions, Client, DiagnoseOptions, DiagnoseReport, Transport } from './index.js';

export type * from './index.js';
export { oauth2, ready, SmtpError } from './index.js';

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

/** A transport over a WebSocket bridge: binary frames carry the TCP byte stream. */
export function websocketTransport(options: {
  url: Bridge;
  /** Default: globalThis.WebSocket. */
  WebSocket?: unknown;
  /** How long to wait after the WebSocket opens for the bridge to report a refused connection. Default 300 ms. */
  openGraceMs?: number;
}): Transport;
