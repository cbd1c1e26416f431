//! `SecureConnection` for JS (feature `tls-engine`): the same methods as
//! `Connection`, but TLS (implicit or STARTTLS) runs inside the engine and
//! the host moves only raw bytes. It never emits a `starttls` event, so the
//! host never calls `tlsEstablished` / `tlsFailed`.

use wasm_bindgen::prelude::*;

use super::connection::state_name;
use super::{EngineError, EngineEvent, WasmEnvelope, WasmMessageBuilder, WasmOptions, instant, message_id};
use crate::error::{Phase, SmtpError};
use crate::tls_engine::{SecureConnection, TlsOptions, parse_fingerprint};

/// Whom the in-engine TLS trusts: public roots (webpki-roots) unless turned
/// off, extra CAs in PEM, SHA-256 pins; and the wall-clock time.
#[wasm_bindgen(js_name = TlsOptions)]
pub struct WasmTlsOptions {
    pub(super) options: TlsOptions,
}

#[wasm_bindgen(js_class = TlsOptions)]
impl WasmTlsOptions {
    /// `unixTimeMs` is the wall-clock time (`Date.now()`) at the moment the
    /// connection is created; certificate validity is checked against it.
    #[wasm_bindgen(constructor)]
    pub fn new(unix_time_ms: f64) -> WasmTlsOptions {
        WasmTlsOptions {
            options: TlsOptions {
                unix_time_ms: unix_time_ms as u64,
                ..TlsOptions::default()
            },
        }
    }

    /// Trusts the certificates in this PEM text too (checked when the
    /// connection is created: an unreadable CA is an `EINPUT` there).
    #[wasm_bindgen(js_name = addCa)]
    pub fn add_ca(&mut self, pem: String) {
        self.options.ca_pem.push(pem);
    }

    /// Accepts only a server certificate with this SHA-256 fingerprint
    /// (`AB:CD:…` as `openssl x509 -fingerprint -sha256` prints it, or hex).
    #[wasm_bindgen(js_name = addPin)]
    pub fn add_pin(&mut self, fingerprint: &str) -> Result<(), EngineError> {
        let pin = parse_fingerprint(fingerprint.trim()).ok_or_else(|| {
            SmtpError::input(
                Phase::Tls,
                format!("the certificate pin \"{}\" is not a SHA-256 fingerprint.", fingerprint.trim()),
            )
            .with_hint(
                "pass 32 bytes in hex, e.g. the output of `openssl x509 -noout -fingerprint -sha256 -in server.pem` (AB:CD:…).",
            )
        })?;
        self.options.pins_sha256.push(pin);
        Ok(())
    }

    /// `false` trusts only the CAs given with `addCa` (and pins).
    #[wasm_bindgen(js_name = setPublicRoots)]
    pub fn set_public_roots(&mut self, on: bool) {
        self.options.no_public_roots = !on;
    }

    /// Verification cannot be turned off inside the engine: `false` is an
    /// `EINPUT` whose hint points at pinning, the safe way to trust one server.
    #[wasm_bindgen(js_name = setRejectUnauthorized)]
    pub fn set_reject_unauthorized(&mut self, reject: bool) -> Result<(), EngineError> {
        if reject {
            return Ok(());
        }
        Err(SmtpError::input(
            Phase::Tls,
            "rejectUnauthorized: false is not available with tls.engine 'wasm': the engine always verifies the certificate.",
        )
        .with_hint(
            "trust the server with tls.ca (its CA, or its self-signed certificate), or pin its certificate with tls.pin ('AB:CD:…' SHA-256 fingerprint).",
        )
        .into())
    }
}

#[wasm_bindgen(js_name = SecureConnection)]
pub struct WasmSecureConnection {
    pub(super) inner: SecureConnection,
}

#[wasm_bindgen(js_class = SecureConnection)]
impl WasmSecureConnection {
    /// A connection whose TLS runs here; the host opens a plain TCP socket.
    /// Throws an `EngineError` (`EINPUT`) for unusable options or CAs.
    #[wasm_bindgen(constructor)]
    pub fn new(options: &WasmOptions, tls: &WasmTlsOptions, now: f64) -> Result<WasmSecureConnection, EngineError> {
        Ok(WasmSecureConnection {
            inner: SecureConnection::new(options.config.clone(), tls.options.clone(), instant(now))?,
        })
    }

    // ----- What the host reports (raw socket facts)

    pub fn connected(&mut self, now: f64) {
        self.inner.connected(instant(now));
    }

    #[wasm_bindgen(js_name = connectFailed)]
    pub fn connect_failed(&mut self, detail: &str, now: f64) {
        self.inner.connect_failed(detail, instant(now));
    }

    /// Raw bytes from the socket (ciphertext once TLS has started).
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

    pub fn submit(&mut self, envelope: WasmEnvelope, now: f64) -> Result<f64, EngineError> {
        Ok(self.inner.submit(envelope.envelope, instant(now))?.0 as f64)
    }

    #[wasm_bindgen(js_name = wantsBody)]
    pub fn wants_body(&self) -> Option<f64> {
        self.inner.wants_body().map(|id| id.0 as f64)
    }

    #[wasm_bindgen(js_name = bodyCapacity)]
    pub fn body_capacity(&self, id: f64) -> usize {
        self.inner.body_capacity(message_id(id))
    }

    #[wasm_bindgen(js_name = writeBody)]
    pub fn write_body(&mut self, id: f64, data: &[u8], now: f64) -> Result<usize, EngineError> {
        Ok(self.inner.write_body(message_id(id), data, instant(now))?)
    }

    /// Moves a structured message's bytes from its MIME builder straight
    /// into the body (inside wasm, under the same back-pressure as
    /// `writeBody`). Returns the index of the streamed attachment the
    /// builder waits for (>= 0: push a chunk or end it, then call again),
    /// -1 when the engine is full (drain `pollTransmit`, call again) or -2
    /// when the builder is done (call `endBody`). Throws like `writeBody`.
    #[wasm_bindgen(js_name = writeBodyFromBuilder)]
    pub fn write_body_from_builder(
        &mut self,
        id: f64,
        builder: &mut WasmMessageBuilder,
        now: f64,
    ) -> Result<i32, EngineError> {
        let (id, now) = (message_id(id), instant(now));
        Ok(builder.feed(|data| self.inner.write_body(id, data, now))?)
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

    /// Drops the connection at once (a TLS close_notify is still produced).
    /// `now` may be omitted.
    pub fn abort(&mut self, now: Option<f64>) {
        self.inner.abort(instant(now.unwrap_or(0.0)));
    }

    // ----- What the host drains

    /// Raw bytes for one socket write, or `undefined`.
    #[wasm_bindgen(js_name = pollTransmit)]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.inner.poll_transmit()
    }

    /// How many bytes `pollTransmit` would return now (0: none).
    #[wasm_bindgen(getter, js_name = transmitLength)]
    pub fn transmit_length(&self) -> usize {
        self.inner.transmit_len()
    }

    /// `pollTransmit` into a buffer the host reuses (no new `ArrayBuffer`
    /// per write): moves up to `buf.length` bytes, returns how many.
    #[wasm_bindgen(js_name = pollTransmitInto)]
    pub fn poll_transmit_into(&mut self, buf: &mut [u8]) -> usize {
        self.inner.poll_transmit_into(buf)
    }

    #[wasm_bindgen(js_name = pollEvent)]
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        self.inner.poll_event().map(|event| EngineEvent { event })
    }

    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.inner.poll_timeout().map(|t| t.as_millis() as f64)
    }

    // ----- Queries

    #[wasm_bindgen(getter)]
    pub fn state(&self) -> String {
        state_name(self.inner.state())
    }

    #[wasm_bindgen(getter, js_name = isIdle)]
    pub fn is_idle(&self) -> bool {
        self.inner.smtp().is_idle()
    }

    #[wasm_bindgen(getter, js_name = isClosed)]
    pub fn is_closed(&self) -> bool {
        self.inner.smtp().is_closed()
    }
}
