//! wasmtp: an SMTP client as a sans-IO protocol engine.

pub mod address;
pub mod auth;
pub mod body;
pub mod capabilities;
pub mod error;
pub mod reply;
pub mod time;

pub use error::{DeliveryState, ErrorCode, Phase, SmtpError};
pub use reply::{EnhancedCode, Reply};
pub use time::{Duration, Instant};
