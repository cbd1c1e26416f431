//! The npm package's DKIM artifact (feature `dkim-wasm`, built as
//! pkg/wasm/wasmtp_dkim_bg.wasm and loaded only by clients that sign):
//! canonicalization and hashing (`DkimHasher`) and the layout of each
//! DKIM-Signature (`DkimPending`). The private-key operation is the host's
//! (WebCrypto, or the user's signer function), so no signing code is here.
//!
//! It is its own artifact because it does not fit the core's size budget
//! (about 11 KB gzip against 4 KB of room; see BENCHMARKS.md). It is built
//! with the `wasm` bindings too (`--features wasm,dkim-wasm`), so the first
//! pass builds its own copy of a structured message here and hashes the
//! builder's output inside wasm (`absorbBuilder`): no byte crosses to JS,
//! and the core artifact is unchanged.
//!
//! Errors are thrown as JS `Error`s whose message is the engine's message,
//! a line feed, then its hint (pkg/src/dkim.js makes an EINPUT SmtpError).

use wasm_bindgen::prelude::*;

use super::{Algorithm, Canonicalization, HashedMessage, MessageHasher, PendingSignature, SignatureSpec};
use crate::error::{Phase, SmtpError};

fn thrown(error: SmtpError) -> JsError {
    JsError::new(&format!("{}\n{}", error.message, error.hint.unwrap_or_default()))
}

/// The first pass over a message: `update` with every byte as it will be
/// sent, then `finish`, then one `prepare` per key.
#[wasm_bindgen(js_name = DkimHasher)]
pub struct WasmDkimHasher {
    hasher: Option<MessageHasher>,
    hashed: Option<HashedMessage>,
}

#[wasm_bindgen(js_class = DkimHasher)]
impl WasmDkimHasher {
    /// Hashes the body in the simple and/or relaxed canonicalization.
    #[wasm_bindgen(constructor)]
    pub fn new(simple: bool, relaxed: bool) -> WasmDkimHasher {
        let wanted = [(simple, Canonicalization::Simple), (relaxed, Canonicalization::Relaxed)];
        let canonicalizations: Vec<_> = wanted.iter().filter(|(on, _)| *on).map(|(_, c)| *c).collect();
        WasmDkimHasher {
            hasher: Some(MessageHasher::new(&canonicalizations)),
            hashed: None,
        }
    }

    pub fn update(&mut self, bytes: &[u8]) -> Result<(), JsError> {
        let hasher = self.hasher.as_mut().ok_or_else(out_of_order)?;
        hasher.update(bytes).map_err(thrown)
    }

    /// Hashes a builder's output (a builder of this artifact) until it
    /// waits for streamed part `i` (returns `i`: push its next chunk and
    /// call again) or is done (returns -2).
    #[cfg(feature = "wasm")]
    #[wasm_bindgen(js_name = absorbBuilder)]
    pub fn absorb_builder(&mut self, builder: &mut crate::wasm::WasmMessageBuilder) -> Result<i32, JsError> {
        let hasher = self.hasher.as_mut().ok_or_else(out_of_order)?;
        builder
            .feed(|bytes| hasher.update(bytes).map(|()| bytes.len()))
            .map_err(thrown)
    }

    /// Ends the message; returns its size in octets.
    pub fn finish(&mut self) -> Result<f64, JsError> {
        let hashed = self.hasher.take().ok_or_else(out_of_order)?.finish().map_err(thrown)?;
        let size = hashed.size as f64;
        self.hashed = Some(hashed);
        Ok(size)
    }

    /// A signature over the finished message. `headers` is an `h=`-style
    /// list (`from:to:subject`), or `undefined` for the default set;
    /// `timestamp` and `expires` are in seconds.
    #[allow(clippy::too_many_arguments)]
    pub fn prepare(
        &self,
        domain: String,
        selector: String,
        algorithm: &str,
        canonicalization: &str,
        headers: Option<String>,
        expires: Option<f64>,
        timestamp: f64,
    ) -> Result<WasmDkimPending, JsError> {
        let hashed = self.hashed.as_ref().ok_or_else(out_of_order)?;
        let mut spec = SignatureSpec::new(domain, selector);
        spec.algorithm = Algorithm::parse(algorithm).map_err(thrown)?;
        spec.canonicalization = SignatureSpec::parse_canonicalization(canonicalization).map_err(thrown)?;
        spec.headers = headers.map(|list| list.split(':').map(str::to_string).collect());
        spec.expires_in = expires.map(|seconds| seconds as u64);
        let pending = PendingSignature::new(&spec, hashed, timestamp as u64).map_err(thrown)?;
        Ok(WasmDkimPending { pending: Some(pending) })
    }
}

fn out_of_order() -> JsError {
    thrown(
        SmtpError::input(Phase::Data, "the DKIM hasher was used out of order.")
            .with_hint("update, then finish, then prepare."),
    )
}

/// One signature waiting for its key: `toSign` gives the bytes for
/// `crypto.subtle.sign` (or the user's signer), `finish` the field.
#[wasm_bindgen(js_name = DkimPending)]
pub struct WasmDkimPending {
    pending: Option<PendingSignature>,
}

#[wasm_bindgen(js_class = DkimPending)]
impl WasmDkimPending {
    #[wasm_bindgen(js_name = toSign)]
    pub fn to_sign(&self) -> Vec<u8> {
        self.pending.as_ref().map(PendingSignature::to_sign).unwrap_or_default()
    }

    /// The DKIM-Signature field, CRLF-terminated.
    pub fn finish(&mut self, signature: &[u8]) -> Result<String, JsError> {
        let pending = self.pending.take().ok_or_else(out_of_order)?;
        pending.finish(signature).map_err(thrown)
    }
}
