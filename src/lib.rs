//! wasmtp: an SMTP client as a sans-IO protocol engine.
//!
//! [`Connection`] holds the whole client side of an SMTP or LMTP session:
//! the host feeds it received bytes, the time and socket facts, and drains
//! bytes to send, events and its next deadline. It never touches a socket or
//! a clock, so it runs the same natively, in wasm, and under test.

pub mod address;
pub mod auth;
pub mod base64;
pub mod body;
pub mod capabilities;
mod certificate;
pub mod config;
pub mod connection;
pub mod diagnose;
pub mod dkim;
#[cfg(feature = "driver")]
pub mod driver;
pub mod engine;
pub mod envelope;
pub mod error;
pub mod event;
pub mod mime;
pub mod mta_sts;
pub mod mx;
pub(crate) mod outbuf;
pub mod reply;
pub mod testkit;
pub mod time;
pub mod tls;
#[cfg(feature = "tls-engine")]
pub mod tls_engine;
#[cfg(feature = "wasm")]
pub mod wasm;

pub use auth::{Credentials, Mechanism};
pub use capabilities::Capabilities;
pub use config::{Config, Limits, Protocol, Security, Timeouts};
pub use connection::{Connection, State};
pub use engine::{Engine, HostTls};
pub use envelope::{BodyType, Dsn, DsnReturn, Envelope, Notify, Recipient};
pub use error::{DeliveryState, ErrorCode, Phase, SmtpError};
pub use event::{Delivery, Direction, Event, MessageId, RejectedRecipient, SessionInfo, TranscriptLine};
pub use reply::{EnhancedCode, Reply};
pub use time::{Duration, Instant};
pub use tls::{TlsFailure, TlsFailureKind, TlsInfo};
