//! `Connection` for JS: the host reports, user verbs, drains and queries of
//! [`crate::Connection`], one to one.

use wasm_bindgen::prelude::*;

use super::{EngineError, EngineEvent, WasmEnvelope, WasmOptions, instant, message_id};
use crate::connection::{Connection, State};
use crate::tls::{TlsFailure, TlsInfo};

#[wasm_bindgen(js_name = Connection)]
pub struct WasmConnection {
    inner: Connection,
}

#[wasm_bindgen(js_class = Connection)]
impl WasmConnection {
    /// A connection waiting for the host to open the socket. Throws an
    /// `EngineError` (`EINPUT`) when the options are unusable.
    #[wasm_bindgen(constructor)]
    pub fn new(options: &WasmOptions, now: f64) -> Result<WasmConnection, EngineError> {
        Ok(WasmConnection {
            inner: Connection::new(options.config.clone(), instant(now))?,
        })
    }

    // ----- What the host reports

    pub fn connected(&mut self, now: f64) {
        self.inner.connected(instant(now));
    }

    #[wasm_bindgen(js_name = connectFailed)]
    pub fn connect_failed(&mut self, detail: &str, now: f64) {
        self.inner.connect_failed(detail, instant(now));
    }

    #[wasm_bindgen(js_name = tlsEstablished)]
    pub fn tls_established(
        &mut self,
        version: String,
        cipher: Option<String>,
        authorized: bool,
        authorization_error: Option<String>,
        now: f64,
    ) {
        let info = TlsInfo {
            version,
            cipher,
            authorized,
            authorization_error,
        };
        self.inner.tls_established(info, instant(now));
    }

    /// The handshake failed; `message` is the runtime's error text, which
    /// the engine classifies (certificate, port mix-up, handshake).
    #[wasm_bindgen(js_name = tlsFailed)]
    pub fn tls_failed(&mut self, message: &str, now: f64) {
        self.inner.tls_failed(TlsFailure::from_message(message), instant(now));
    }

    pub fn receive(&mut self, data: &[u8], now: f64) {
        self.inner.receive(data, instant(now));
    }

    #[wasm_bindgen(js_name = receiveEof)]
    pub fn receive_eof(&mut self, now: f64) {
        self.inner.receive_eof(instant(now));
    }

    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now: f64) {
        self.inner.handle_timeout(instant(now));
    }

    #[wasm_bindgen(js_name = socketFailed)]
    pub fn socket_failed(&mut self, detail: &str, write_stalled: bool, now: f64) {
        self.inner.socket_failed(detail, write_stalled, instant(now));
    }

    // ----- What the user asks for

    /// Queues a message (the envelope is consumed); returns its id. Throws
    /// an `EngineError` on invalid input, and nothing is sent.
    pub fn submit(&mut self, envelope: WasmEnvelope, now: f64) -> Result<f64, EngineError> {
        Ok(self.inner.submit(envelope.envelope, instant(now))?.0 as f64)
    }

    /// The message whose body the engine wants next, if it has room.
    #[wasm_bindgen(js_name = wantsBody)]
    pub fn wants_body(&self) -> Option<f64> {
        self.inner.wants_body().map(|id| id.0 as f64)
    }

    #[wasm_bindgen(js_name = bodyCapacity)]
    pub fn body_capacity(&self, id: f64) -> usize {
        self.inner.body_capacity(message_id(id))
    }

    /// Pushes body bytes; returns how many were taken (0 when full).
    #[wasm_bindgen(js_name = writeBody)]
    pub fn write_body(&mut self, id: f64, data: &[u8], now: f64) -> Result<usize, EngineError> {
        Ok(self.inner.write_body(message_id(id), data, instant(now))?)
    }

    #[wasm_bindgen(js_name = endBody)]
    pub fn end_body(&mut self, id: f64, now: f64) -> Result<(), EngineError> {
        Ok(self.inner.end_body(message_id(id), instant(now))?)
    }

    pub fn noop(&mut self, now: f64) {
        self.inner.noop(instant(now));
    }

    pub fn close(&mut self, now: f64) {
        self.inner.close(instant(now));
    }

    pub fn abort(&mut self) {
        self.inner.abort();
    }

    // ----- What the host drains

    /// Bytes for one socket write, or `undefined`.
    #[wasm_bindgen(js_name = pollTransmit)]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.inner.poll_transmit()
    }

    #[wasm_bindgen(js_name = pollEvent)]
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        self.inner.poll_event().map(|event| EngineEvent { event })
    }

    /// When `handleTimeout` is due (ms, same epoch as `now`), or `undefined`.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.inner.poll_timeout().map(|t| t.as_millis() as f64)
    }

    // ----- Queries

    /// `"connecting"`, `"tls-handshake"`, `"setup"`, `"ready"`, `"quitting"` or `"closed"`.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> String {
        match self.inner.state() {
            State::Connecting => "connecting",
            State::TlsHandshake => "tls-handshake",
            State::Setup => "setup",
            State::Ready => "ready",
            State::Quitting => "quitting",
            State::Closed => "closed",
        }
        .to_string()
    }

    /// Ready with nothing queued or awaited.
    #[wasm_bindgen(getter, js_name = isIdle)]
    pub fn is_idle(&self) -> bool {
        self.inner.is_idle()
    }

    #[wasm_bindgen(getter, js_name = isClosed)]
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}
