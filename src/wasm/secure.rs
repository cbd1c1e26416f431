//! `SecureConnection` for JS (feature `tls-engine`): the same methods as
//! `Connection`, but TLS (implicit or STARTTLS) runs inside the engine and
//! the host moves only raw bytes. It never emits a `starttls` event, so the
//! host never calls `tlsEstablished` / `tlsFailed`.

use wasm_bindgen::prelude::*;

use super::engine_class::engine_class;
use super::{EngineError, EngineEvent, WasmEnvelope, WasmMessageBuilder, WasmOptions, instant, message_id};
use crate::engine::Engine;
use crate::error::{Fix, Phase, SmtpError};
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

    /// Presents this client certificate chain and unencrypted key (both
    /// PEM) when the server asks for one; checked when the connection is
    /// created (an unreadable one is an `EINPUT` there).
    #[wasm_bindgen(js_name = setClientCertificate)]
    pub fn set_client_certificate(&mut self, cert_pem: String, key_pem: String) {
        self.options.client_cert_pem = Some((cert_pem, key_pem));
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
        .with_fix(Fix::TlsCa)
        .into())
    }
}

#[wasm_bindgen(js_name = SecureConnection)]
pub struct WasmSecureConnection {
    pub(super) inner: SecureConnection,
    /// Dialog lines `pollEvent` passed over, until `takeTranscript`.
    pub(super) transcript: Vec<String>,
}

engine_class!(WasmSecureConnection as SecureConnection {
    /// A connection whose TLS runs here; the host opens a plain TCP socket.
    /// Throws an `EngineError` (`EINPUT`) for unusable options or CAs.
    #[wasm_bindgen(constructor)]
    pub fn new(options: &WasmOptions, tls: &WasmTlsOptions, now: f64) -> Result<WasmSecureConnection, EngineError> {
        Ok(WasmSecureConnection {
            inner: SecureConnection::new(options.config.clone(), tls.options.clone(), instant(now))?,
            transcript: Vec::new(),
        })
    }
});
