//! Private keys for native signing (feature `dkim-sign`): PEM parsing
//! (rustls-pki-types) and the signature itself (ring: RSASSA-PKCS1-v1_5
//! with SHA-256, and Ed25519).

use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

use super::hasher::MessageHasher;
use super::signature::{Algorithm, PendingSignature, SignatureSpec};
use crate::error::{Phase, SmtpError};
use crate::mime::{MessageBuilder, MessageSpec, Segment};

/// A DKIM private key: RSA (2048 to 4096 bits, ring's range) or Ed25519.
#[derive(Debug)]
pub enum SigningKey {
    Rsa(RsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

const KEY_HINT: &str = "pass an unencrypted PEM private key: PKCS#8 (-----BEGIN PRIVATE KEY-----, RSA or Ed25519) or PKCS#1 (-----BEGIN RSA PRIVATE KEY-----); `wasmtp dkim keygen` writes one.";

impl SigningKey {
    /// Reads a PEM private key: PKCS#8 (RSA or Ed25519) or PKCS#1 (RSA).
    pub fn from_pem(pem: &str) -> Result<SigningKey, SmtpError> {
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|error| {
            let received = describe_pem(pem);
            SmtpError::input(
                Phase::Data,
                format!("the DKIM private key is not usable: received {received} ({error})."),
            )
            .with_hint(KEY_HINT)
        })?;
        let rejected = |format: &str, why: ring::error::KeyRejected| {
            SmtpError::input(
                Phase::Data,
                format!("the DKIM private key ({format}) was rejected: {why}."),
            )
            .with_hint("RSA keys need 2048 to 4096 bits for native signing; Ed25519 keys must be PKCS#8.")
        };
        match der {
            PrivateKeyDer::Pkcs1(key) => RsaKeyPair::from_der(key.secret_pkcs1_der())
                .map(SigningKey::Rsa)
                .map_err(|why| rejected("PKCS#1 RSA", why)),
            PrivateKeyDer::Pkcs8(key) => {
                let der = key.secret_pkcs8_der();
                match RsaKeyPair::from_pkcs8(der) {
                    Ok(rsa) => Ok(SigningKey::Rsa(rsa)),
                    Err(rsa_error) => Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                        .map(SigningKey::Ed25519)
                        .map_err(|_| rejected("PKCS#8, neither RSA nor Ed25519", rsa_error)),
                }
            }
            PrivateKeyDer::Sec1(_) => Err(SmtpError::input(
                Phase::Data,
                "the DKIM private key is an EC key (SEC1, -----BEGIN EC PRIVATE KEY-----), which DKIM does not use.",
            )
            .with_hint(KEY_HINT)),
            _ => Err(SmtpError::input(
                Phase::Data,
                "the DKIM private key is in a format that is not supported.",
            )
            .with_hint(KEY_HINT)),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            SigningKey::Rsa(_) => Algorithm::RsaSha256,
            SigningKey::Ed25519(_) => Algorithm::Ed25519Sha256,
        }
    }

    /// Signs what [`PendingSignature::to_sign`] returns.
    pub fn sign(&self, pending: &PendingSignature) -> Result<Vec<u8>, SmtpError> {
        if pending.algorithm() != self.algorithm() {
            return Err(SmtpError::input(
                Phase::Data,
                format!(
                    "the DKIM signature is {} but the key is {}.",
                    pending.algorithm().as_str(),
                    self.algorithm().as_str()
                ),
            )
            .with_hint("set the signature's algorithm to match the key, or leave it to DkimSigner::new."));
        }
        let data = pending.to_sign();
        match self {
            SigningKey::Rsa(key) => {
                let mut signature = vec![0; key.public().modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), &data, &mut signature)
                    .map_err(|_| SmtpError::input(Phase::Data, "RSA signing failed.").with_hint(KEY_HINT))?;
                Ok(signature)
            }
            SigningKey::Ed25519(key) => Ok(key.sign(&data).as_ref().to_vec()),
        }
    }
}

/// What a PEM text looks like, for the error message.
fn describe_pem(pem: &str) -> String {
    match pem.trim_start().lines().next() {
        Some(line) if line.starts_with("-----BEGIN ") => format!("a PEM block {line}"),
        Some(_) => "text that is not PEM".to_string(),
        None => "an empty string".to_string(),
    }
}

/// A key and what its signatures say.
#[derive(Debug)]
pub struct DkimSigner {
    /// Domain, selector, canonicalization, headers, expiry; its algorithm is the key's.
    pub spec: SignatureSpec,
    key: SigningKey,
}

impl DkimSigner {
    /// A signer for `domain` / `selector` with the defaults of
    /// [`SignatureSpec::new`] and the key's algorithm.
    pub fn new(domain: impl Into<String>, selector: impl Into<String>, key: SigningKey) -> DkimSigner {
        let mut spec = SignatureSpec::new(domain, selector);
        spec.algorithm = key.algorithm();
        DkimSigner { spec, key }
    }

    /// The DKIM-Signature field for a hashed message, signed at `timestamp` (Unix seconds).
    pub fn sign(&self, message: &super::HashedMessage, timestamp: u64) -> Result<String, SmtpError> {
        let pending = PendingSignature::new(&self.spec, message, timestamp)?;
        let signature = self.key.sign(&pending)?;
        pending.finish(&signature)
    }
}

/// The DKIM-Signature fields (one per signer, CRLF-terminated) for a
/// message in memory; send them before the message's own bytes.
pub fn sign_message(message: &[u8], signers: &[DkimSigner], timestamp: u64) -> Result<String, SmtpError> {
    let mut hasher = hasher_for(signers);
    hasher.update(message)?;
    let hashed = hasher.finish()?;
    signers.iter().map(|s| s.sign(&hashed, timestamp)).collect()
}

/// A [`MessageBuilder`] for `spec` whose output starts with a DKIM-Signature
/// per signer. The message is built twice (once to hash it); every
/// attachment must be given as bytes. For streamed attachments, run the
/// two passes yourself: [`MessageHasher`] over a first builder, then
/// [`MessageBuilder::prepend_header`] on a second with the same `random`
/// and time.
pub fn signed_builder(
    spec: MessageSpec,
    random: [u8; 32],
    now_unix_ms: i64,
    signers: &[DkimSigner],
) -> Result<MessageBuilder, SmtpError> {
    let mut first = MessageBuilder::new(spec.clone(), random, now_unix_ms)?;
    let mut hasher = hasher_for(signers);
    loop {
        match first.poll_output() {
            Segment::Bytes(bytes) => hasher.update(&bytes)?,
            Segment::Done => break,
            Segment::NeedAttachment(index) => {
                return Err(SmtpError::input(
                    Phase::Data,
                    format!("attachment {index} is streamed; signed_builder needs every attachment as bytes."),
                )
                .with_hint("hash a first builder with MessageHasher and prepend the signatures to a second one (see the dkim module)."));
            }
        }
    }
    let hashed = hasher.finish()?;
    let timestamp = u64::try_from(now_unix_ms / 1000).unwrap_or(0);
    let fields: String = signers
        .iter()
        .map(|s| s.sign(&hashed, timestamp))
        .collect::<Result<_, _>>()?;
    let mut message = MessageBuilder::new(spec, random, now_unix_ms)?;
    message.prepend_header(&fields)?;
    Ok(message)
}

fn hasher_for(signers: &[DkimSigner]) -> MessageHasher {
    let canonicalizations: Vec<_> = signers.iter().map(|s| s.spec.canonicalization.1).collect();
    MessageHasher::new(&canonicalizations)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::Canonicalization;

    const ED25519: &str = include_str!("../../tests/data/dkim-ed25519.pem");
    const RSA_PKCS1: &str = include_str!("../../tests/data/dkim-rsa-pkcs1.pem");
    const RSA_PKCS8: &str = include_str!("../../tests/data/dkim-rsa-pkcs8.pem");

    #[test]
    fn reads_the_three_pem_forms() {
        assert_eq!(
            SigningKey::from_pem(ED25519).unwrap().algorithm(),
            Algorithm::Ed25519Sha256
        );
        assert_eq!(
            SigningKey::from_pem(RSA_PKCS1).unwrap().algorithm(),
            Algorithm::RsaSha256
        );
        assert_eq!(
            SigningKey::from_pem(RSA_PKCS8).unwrap().algorithm(),
            Algorithm::RsaSha256
        );
        let error = SigningKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").unwrap_err();
        assert!(error.message.contains("BEGIN PUBLIC KEY"), "{}", error.message);
        assert!(error.hint.unwrap().contains("PKCS#8"));
        assert!(
            SigningKey::from_pem("not a key")
                .unwrap_err()
                .message
                .contains("not PEM")
        );
    }

    #[test]
    fn signs_in_memory_and_through_the_builder() {
        let rsa = DkimSigner::new("example.com", "rsa", SigningKey::from_pem(RSA_PKCS1).unwrap());
        let mut ed = DkimSigner::new("example.com", "ed", SigningKey::from_pem(ED25519).unwrap());
        ed.spec.canonicalization = (Canonicalization::Simple, Canonicalization::Simple);
        let fields = sign_message(b"From: a@example.com\r\n\r\nHi\r\n", &[rsa, ed], 1).unwrap();
        assert_eq!(fields.matches("DKIM-Signature:").count(), 2);
        assert!(fields.contains("a=rsa-sha256") && fields.contains("a=ed25519-sha256; c=simple/simple"));

        let spec = MessageSpec {
            from: "a@example.com".into(),
            to: vec!["b@example.org".into()],
            text: Some("x".into()),
            ..MessageSpec::default()
        };
        let signer = DkimSigner::new("example.com", "ed", SigningKey::from_pem(ED25519).unwrap());
        let builder = signed_builder(spec.clone(), [1; 32], 1_000, &[signer]).unwrap();
        let size = builder.envelope().size;
        let signed = builder.into_vec().unwrap();
        assert_eq!(size, Some(signed.len() as u64));
        let plain = MessageBuilder::new(spec, [1; 32], 1_000).unwrap().into_vec().unwrap();
        assert!(signed.ends_with(&plain));
    }
}
