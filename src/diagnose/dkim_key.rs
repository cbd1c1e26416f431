//! DKIM public key records (RFC 6376 §3.6.1) as the domain doctor reads
//! them, and the selector a signed message names in its DKIM-Signature.

use super::dmarc::{tag, tags};
use crate::certificate::{elements, tlv};

/// What a key record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DkimKey {
    /// An RSA key with a modulus of this many bits.
    Rsa {
        bits: usize,
    },
    Ed25519,
    /// `p=` is empty: the key was withdrawn (§3.6.1).
    Revoked,
}

/// Parses a key record; `Err` says what is wrong, as a phrase.
pub fn parse_key(record: &str) -> Result<DkimKey, String> {
    let tags = tags(record)?;
    if let Some(v) = tag(&tags, "v").filter(|v| *v != "DKIM1") {
        return Err(format!("v={v} is not DKIM1"));
    }
    let data: String = tag(&tags, "p")
        .ok_or("it has no p= (public key) tag")?
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    if data.is_empty() {
        return Ok(DkimKey::Revoked);
    }
    let der = crate::base64::decode(&data).ok_or("its p= is not base64")?;
    match tag(&tags, "k").unwrap_or("rsa").to_ascii_lowercase().as_str() {
        "rsa" => rsa_bits(&der)
            .map(|bits| DkimKey::Rsa { bits })
            .ok_or_else(|| "its p= is not an RSA public key".into()),
        "ed25519" if der.len() == 32 => Ok(DkimKey::Ed25519),
        "ed25519" => Err(format!("its Ed25519 key has {} bytes, not 32", der.len())),
        other => Err(format!("k={other} is not a key type DKIM defines (rsa, ed25519)")),
    }
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;

/// The modulus size of a SubjectPublicKeyInfo (what DKIM publishes) or of
/// a bare PKCS#1 RSAPublicKey (what some publish by mistake, and verifiers accept).
fn rsa_bits(der: &[u8]) -> Option<usize> {
    let (tag, body, _) = tlv(der)?;
    if tag != SEQUENCE {
        return None;
    }
    let mut parts = elements(body);
    let (first_tag, first) = parts.next()?;
    let rsa_public_key = match first_tag {
        INTEGER => body,
        SEQUENCE => {
            let (bit_tag, bits) = parts.next()?;
            // The BIT STRING's first byte counts unused bits: 0 here.
            let inner = bits.strip_prefix(&[0]).filter(|_| bit_tag == BIT_STRING)?;
            let _ = first;
            let (tag, body, _) = tlv(inner)?;
            (tag == SEQUENCE).then_some(body)?
        }
        _ => return None,
    };
    let (tag, modulus) = elements(rsa_public_key).next()?;
    if tag != INTEGER {
        return None;
    }
    let significant: Vec<u8> = modulus.iter().copied().skip_while(|b| *b == 0).collect();
    let lead = *significant.first()?;
    Some(significant.len() * 8 - lead.leading_zeros() as usize)
}

/// The selector (`s=`) and domain (`d=`) of the first DKIM-Signature in a
/// message's header (the part before the first empty line).
pub fn selector_in_message(message: &str) -> Option<(String, String)> {
    let header = message.split("\r\n\r\n").next()?.split("\n\n").next()?;
    // Unfold: a line starting with white space continues the field before.
    let unfolded = header.replace("\r\n", "\n").replace("\n ", " ").replace("\n\t", " ");
    let field = unfolded.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("DKIM-Signature").then_some(value)
    })?;
    let tags = tags(field).ok()?;
    let selector = tag(&tags, "s")?.to_ascii_lowercase();
    let domain = tag(&tags, "d")?.to_ascii_lowercase();
    (!selector.is_empty() && !domain.is_empty()).then_some((selector, domain))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SubjectPublicKeyInfo for an RSA key whose modulus has `bits` bits.
    fn spki(bits: usize) -> String {
        let mut modulus = vec![0u8];
        modulus.push(0x80);
        modulus.extend(std::iter::repeat_n(0xab, bits / 8 - 1));
        let der_len = |n: usize| -> Vec<u8> {
            if n < 0x80 {
                vec![n as u8]
            } else if n < 0x100 {
                vec![0x81, n as u8]
            } else {
                vec![0x82, (n >> 8) as u8, n as u8]
            }
        };
        let wrap = |tag: u8, body: Vec<u8>| [vec![tag], der_len(body.len()), body].concat();
        let rsa = wrap(
            SEQUENCE,
            [wrap(INTEGER, modulus), wrap(INTEGER, vec![1, 0, 1])].concat(),
        );
        let algorithm = wrap(
            SEQUENCE,
            [
                wrap(0x06, vec![0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01]),
                vec![0x05, 0],
            ]
            .concat(),
        );
        let der = wrap(
            SEQUENCE,
            [algorithm, wrap(BIT_STRING, [vec![0], rsa].concat())].concat(),
        );
        crate::base64::encode(der)
    }

    #[test]
    fn rsa_sizes_are_read() {
        for bits in [512, 1024, 2048, 4096] {
            let record = format!("v=DKIM1; k=rsa; p={}", spki(bits));
            assert_eq!(parse_key(&record), Ok(DkimKey::Rsa { bits }), "{bits}");
        }
        // k= defaults to rsa, and p= may be split by spaces.
        let p = spki(2048);
        let (a, b) = p.split_at(40);
        assert_eq!(parse_key(&format!("p={a} {b}")), Ok(DkimKey::Rsa { bits: 2048 }));
    }

    #[test]
    fn other_keys_and_mistakes() {
        let ed = crate::base64::encode([7u8; 32]);
        assert_eq!(parse_key(&format!("v=DKIM1; k=ed25519; p={ed}")), Ok(DkimKey::Ed25519));
        assert_eq!(parse_key("v=DKIM1; p="), Ok(DkimKey::Revoked));
        for (record, word) in [
            ("v=DKIM1; k=rsa", "p="),
            ("v=DKIM1; p=!!!", "base64"),
            ("v=DKIM1; p=AAAA", "RSA"),
            ("v=DKIM2; p=AAAA", "DKIM2"),
            ("v=DKIM1; k=dsa; p=AAAA", "k=dsa"),
            ("v=DKIM1; k=ed25519; p=AAAA", "3 bytes"),
        ] {
            let err = parse_key(record).unwrap_err();
            assert!(err.contains(word), "{record}: {err}");
        }
    }

    #[test]
    fn the_selector_of_a_signed_message() {
        let message = "From: a@example.com\r\nDKIM-Signature: v=1; a=rsa-sha256; d=Example.com;\r\n\ts=Mail2026; h=from; bh=x; b=y\r\nSubject: hi\r\n\r\nDKIM-Signature: s=body; d=no\r\n";
        assert_eq!(
            selector_in_message(message),
            Some(("mail2026".into(), "example.com".into()))
        );
        assert_eq!(selector_in_message("From: a@example.com\n\nbody"), None);
    }
}
