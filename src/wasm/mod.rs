//! The wasm-bindgen surface of the engine, used by the npm package.
//!
//! A thin adapter: every method forwards to [`crate::Connection`] and turns
//! Rust values into plain JS values (numbers, strings, arrays, small
//! classes with getters). Time comes in as milliseconds (`f64`, a JS
//! number), so the engine never reads a clock. No serde: typed setters and
//! getters keep the module small.
//!
//! Built by `scripts/build-wasm.sh` as: the core artifact (`wasm`) for
//! hosts with native TLS; a second one with `tls-engine` that adds
//! `SecureConnection` / `TlsOptions` (TLS inside the engine, rustls + ring);
//! and a third (`doctor`: TLS plus the connection doctor's `Probe`,
//! `Doctor`, `TranscriptExplainer`, and the domain doctor's `DomainDoctor`),
//! loaded only by `diagnose()`.

mod connection;
#[cfg(feature = "doctor")]
mod diagnose;
#[cfg(feature = "doctor")]
mod domain_doctor;
mod engine_class;
mod error;
mod event;
mod mime;
mod options;
#[cfg(feature = "tls-engine")]
mod secure;

pub use connection::WasmConnection;
pub use error::EngineError;
pub use event::{EngineDelivery, EngineEvent, EngineRejected, EngineSession};
pub use mime::{WasmMessageBuilder, WasmMessageSpec};
pub use options::{WasmEnvelope, WasmOptions, default_port};
#[cfg(feature = "tls-engine")]
pub use secure::{WasmSecureConnection, WasmTlsOptions};

use crate::event::MessageId;
use crate::time::Instant;

/// A JS timestamp in milliseconds (any monotonic epoch) as an engine instant.
fn instant(now_ms: f64) -> Instant {
    // `as` saturates: NaN and negatives become 0, which only makes deadlines early.
    Instant::from_millis(now_ms as u64)
}

/// Message ids cross the boundary as JS numbers.
fn message_id(id: f64) -> MessageId {
    MessageId(id as u64)
}
