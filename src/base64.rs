//! Base64 (RFC 4648 §4, the standard alphabet with padding) for the few
//! short values the engine encodes whole or decodes: SASL exchanges and
//! RFC 2047 encoded words. Attachments stream through
//! `mime::Base64LineEncoder`, which shares [`encode_group`].
//!
//! Written out rather than taken from the `base64` crate: the crate's
//! general engine is several kilobytes of the wasm build's size budget, for
//! what is a page of code here.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Three bytes as four characters.
pub(crate) fn encode_group(group: [u8; 3]) -> [u8; 4] {
    let bits = u32::from(group[0]) << 16 | u32::from(group[1]) << 8 | u32::from(group[2]);
    let char_at = |shift: u32| ALPHABET[(bits >> shift & 0x3F) as usize];
    [char_at(18), char_at(12), char_at(6), char_at(0)]
}

/// `input` in base64 with `=` padding, on one line.
pub fn encode(input: impl AsRef<[u8]>) -> String {
    let input = input.as_ref();
    let mut out = Vec::with_capacity(input.len().div_ceil(3) * 4);
    let mut groups = input.chunks_exact(3);
    for group in &mut groups {
        out.extend_from_slice(&encode_group([group[0], group[1], group[2]]));
    }
    let rest = groups.remainder();
    if !rest.is_empty() {
        let mut group = [0u8; 3];
        group[..rest.len()].copy_from_slice(rest);
        let kept = rest.len() + 1; // 1 byte → 2 characters, 2 bytes → 3
        out.extend_from_slice(&encode_group(group)[..kept]);
        out.resize(out.len() + 4 - kept, b'=');
    }
    // Only alphabet characters and '=' were written.
    String::from_utf8(out).unwrap_or_default()
}

/// Decodes padded base64; `None` for anything else (a wrong length, a
/// character outside the alphabet, padding in the middle).
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if text.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let groups = text.len() / 4;
    for (i, group) in text.chunks_exact(4).enumerate() {
        let padding = group.iter().rev().take_while(|&&c| c == b'=').count();
        if padding > 2 || (padding > 0 && i + 1 != groups) {
            return None;
        }
        let mut bits = 0u32;
        for &c in &group[..4 - padding] {
            bits = bits << 6 | u32::from(value_of(c)?);
        }
        bits <<= 6 * padding as u32;
        let bytes = [(bits >> 16) as u8, (bits >> 8) as u8, bits as u8];
        out.extend_from_slice(&bytes[..3 - padding]);
    }
    Some(out)
}

fn value_of(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::base64::Engine as _;
    use ::base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    #[test]
    fn rfc_4648_test_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(encode(plain), encoded);
            assert_eq!(decode(encoded).as_deref(), Some(plain.as_bytes()));
        }
    }

    #[test]
    fn malformed_input_is_refused() {
        for bad in ["Zg=", "Zg===", "Z===", "Zg==Zg==", "Zm9v!A==", "Zm 9v", "=Zm9"] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_the_base64_crate(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let ours = encode(&data);
            prop_assert_eq!(&ours, &STANDARD.encode(&data));
            prop_assert_eq!(decode(&ours), Some(data));
        }
    }
}
