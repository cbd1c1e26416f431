//! DKIM signing (RFC 6376, and Ed25519 from RFC 8463), with bounded memory.
//!
//! A signature covers a hash of the body, so `bh=` must be known before the
//! first header line goes out. Signing is therefore two passes over a
//! message that can be produced twice (the [`MessageBuilder`] is
//! deterministic for a given randomness and time):
//!
//! 1. [`MessageHasher`] reads the message as it will be sent: it keeps the
//!    header section (a few kilobytes) and hashes the body as it streams
//!    past, in every body canonicalization the signatures use.
//! 2. For each key, [`PendingSignature::new`] lays out the DKIM-Signature
//!    field and the bytes to sign; the key signs them (the host's WebCrypto
//!    in the npm package, [`SigningKey`] natively with the `dkim-sign`
//!    feature); [`PendingSignature::finish`] returns the finished field.
//! 3. The message is produced again, the fields first
//!    ([`MessageBuilder::prepend_header`]).
//!
//! Canonicalization and hashing are protocol work and live here, in the
//! engine; the private-key operation does not. The npm package builds this
//! module into its own wasm artifact (features `wasm,dkim-wasm`: the core
//! bindings plus DKIM), loaded only by clients that sign, and signs with
//! the host's WebCrypto; the core artifact does not carry it.
//!
//! ```
//! # #[cfg(feature = "dkim-sign")] {
//! use wasmtp::dkim::{DkimSigner, SigningKey};
//! use wasmtp::mime::MessageSpec;
//! # let pem = include_str!("../../tests/data/dkim-ed25519.pem");
//! let key = SigningKey::from_pem(pem)?;
//! let signer = DkimSigner::new("example.com", "mail2026", key);
//! let spec = MessageSpec {
//!     from: "Ann <ann@example.com>".into(),
//!     to: vec!["bob@example.org".into()],
//!     text: Some("Hello".into()),
//!     ..MessageSpec::default()
//! };
//! let message = wasmtp::dkim::signed_builder(spec, [7; 32], 1_700_000_000_000, &[signer])?;
//! let bytes = message.into_vec()?;
//! assert!(bytes.starts_with(b"DKIM-Signature: v=1; a=ed25519-sha256;"));
//! # }
//! # Ok::<(), wasmtp::SmtpError>(())
//! ```
//!
//! [`MessageBuilder`]: crate::mime::MessageBuilder
//! [`MessageBuilder::prepend_header`]: crate::mime::MessageBuilder::prepend_header

mod canonicalize;
mod hasher;
#[cfg(feature = "dkim-sign")]
mod keys;
mod signature;
#[cfg(feature = "dkim-wasm")]
mod wasm;

pub use canonicalize::{BodyCanonicalizer, Canonicalization};
pub use hasher::{HashedMessage, MAX_HEADER_SECTION, MessageHasher};
#[cfg(feature = "dkim-sign")]
pub use keys::{DkimSigner, SigningKey, sign_message, signed_builder};
pub use signature::{Algorithm, DEFAULT_HEADERS, PendingSignature, SignatureSpec};
