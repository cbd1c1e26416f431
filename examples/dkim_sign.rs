//! Prints a DKIM-signed message built by the native API (feature
//! `dkim-sign`): one signature per `selector=key.pem` argument.
//!
//! ```sh
//! cargo run --features dkim-sign --example dkim_sign -- example.com mail2026=key.pem ed2026=ed.pem > signed.eml
//! ```
//! tests/dkim checks its output with OpenDKIM and dkimpy.

use std::io::Write;

use wasmtp::SmtpError;
use wasmtp::dkim::{DkimSigner, SigningKey, signed_builder};
use wasmtp::mime::{Attachment, MessageSpec};

fn main() -> Result<(), SmtpError> {
    let mut args = std::env::args().skip(1);
    let domain = args.next().expect("usage: dkim_sign DOMAIN SELECTOR=KEY.pem...");
    let mut signers = Vec::new();
    for pair in args {
        let (selector, path) = pair.split_once('=').expect("SELECTOR=KEY.pem");
        let pem = std::fs::read_to_string(path).expect("read the key file");
        signers.push(DkimSigner::new(domain.clone(), selector, SigningKey::from_pem(&pem)?));
    }
    let spec = MessageSpec {
        from: format!("Ann <ann@{domain}>"),
        to: vec!["bob@y.test".into()],
        subject: Some("Signed natively, grüße".into()),
        text: Some("Signed by wasmtp's Rust API.\n\nTrailing spaces  \n".into()),
        attachments: vec![Attachment::from_bytes(
            "data.bin",
            (0..=255u8).cycle().take(50_000).collect::<Vec<u8>>(),
        )],
        ..MessageSpec::default()
    };
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    // Boundaries and the Message-ID: real code passes 32 bytes from a CSPRNG
    // (e.g. the getrandom crate); the example derives them from the clock.
    let random: [u8; 32] = std::array::from_fn(|i| ((now_ms >> (i % 8)) as u8).wrapping_add(i as u8));
    let message = signed_builder(spec, random, now_ms, &signers)?.into_vec()?;
    std::io::stdout().write_all(&message).expect("write stdout");
    Ok(())
}
