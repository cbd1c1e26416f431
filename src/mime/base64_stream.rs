//! Base64 (RFC 2045 §6.8) for attachments, fed in chunks of any size.
//!
//! Lines are 76 characters, joined by CRLF. The output never ends with a
//! line break: in a MIME body the CRLF before the next boundary belongs to
//! that boundary, so ending here keeps the part free of a stray empty line.
//!
//! The only state carried between chunks is up to two input bytes that do
//! not yet make a 3-byte group, plus the column of the current line: a
//! chunk boundary anywhere gives the same output as one big chunk.

use crate::base64::encode_group;

/// Characters per encoded line (RFC 2045 §6.8).
pub const LINE_CHARS: usize = 76;
/// Input bytes per full line: 76 characters are 19 groups of 3 bytes.
const LINE_BYTES: usize = LINE_CHARS / 4 * 3;

/// An incremental base64 encoder that wraps its output at 76 columns.
#[derive(Debug, Clone, Default)]
pub struct Base64LineEncoder {
    /// Input bytes waiting for the rest of their 3-byte group.
    carry: [u8; 3],
    carry_len: usize,
    /// Characters already on the current output line; always a multiple of
    /// 4 because groups are written whole.
    column: usize,
}

impl Base64LineEncoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Encodes `input`, appending to `out`. Up to two trailing bytes are held
    /// back until the next call or [`finish`](Self::finish).
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() / 3 * 4 + input.len() / LINE_BYTES * 2 + 8);
        if self.carry_len > 0 {
            while self.carry_len < 3 {
                let Some((&byte, rest)) = input.split_first() else {
                    return;
                };
                self.carry[self.carry_len] = byte;
                self.carry_len += 1;
                input = rest;
            }
            let group = self.carry;
            self.carry_len = 0;
            self.write_groups(&group, out);
        }
        let whole_groups = input.len() / 3 * 3;
        let (groups, rest) = input.split_at(whole_groups);
        self.write_groups(groups, out);
        self.carry[..rest.len()].copy_from_slice(rest);
        self.carry_len = rest.len();
    }

    /// Encodes the held-back bytes with `=` padding and resets the encoder
    /// for the next attachment. Adds no final line break.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.carry_len > 0 {
            self.break_line_if_full(out);
            let mut group = [0u8; 3];
            group[..self.carry_len].copy_from_slice(&self.carry[..self.carry_len]);
            let chars = encode_group(group);
            let kept = self.carry_len + 1; // 1 byte → 2 chars, 2 bytes → 3 chars
            out.extend_from_slice(&chars[..kept]);
            out.extend(core::iter::repeat_n(b'=', 4 - kept));
        }
        *self = Self::default();
    }

    /// Writes whole 3-byte groups, a line's worth at a time.
    fn write_groups(&mut self, mut groups: &[u8], out: &mut Vec<u8>) {
        while !groups.is_empty() {
            self.break_line_if_full(out);
            let room_bytes = (LINE_CHARS - self.column) / 4 * 3;
            let (line, rest) = groups.split_at(room_bytes.min(groups.len()));
            for group in line.chunks_exact(3) {
                out.extend_from_slice(&encode_group([group[0], group[1], group[2]]));
            }
            self.column += line.len() / 3 * 4;
            groups = rest;
        }
    }

    /// Line breaks go before the next character rather than after the
    /// 76th, so that the output never ends with one.
    fn break_line_if_full(&mut self, out: &mut Vec<u8>) {
        if self.column >= LINE_CHARS {
            out.extend_from_slice(b"\r\n");
            self.column = 0;
        }
    }
}

/// The exact encoded size of `len` input bytes, line breaks included.
pub fn encoded_len(len: u64) -> u64 {
    let chars = len.div_ceil(3) * 4;
    let lines = chars.div_ceil(LINE_CHARS as u64);
    chars + 2 * lines.saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use proptest::prelude::*;

    /// The same data encoded in one go by the base64 crate and wrapped by hand.
    fn reference(data: &[u8]) -> Vec<u8> {
        let flat = STANDARD.encode(data);
        flat.as_bytes()
            .chunks(LINE_CHARS)
            .collect::<Vec<_>>()
            .join(&b"\r\n"[..])
    }

    fn encode_in_chunks(data: &[u8], sizes: &[usize]) -> Vec<u8> {
        let mut encoder = Base64LineEncoder::new();
        let mut out = Vec::new();
        let mut rest = data;
        let mut sizes = sizes.iter().copied().cycle();
        while !rest.is_empty() {
            let size = sizes.next().unwrap_or(1).clamp(1, rest.len());
            let (chunk, tail) = rest.split_at(size);
            encoder.push(chunk, &mut out);
            rest = tail;
        }
        encoder.finish(&mut out);
        out
    }

    fn decode(encoded: &[u8]) -> Vec<u8> {
        let flat: Vec<u8> = encoded.iter().copied().filter(|b| !b"\r\n".contains(b)).collect();
        STANDARD.decode(flat).unwrap()
    }

    #[test]
    fn empty_input_gives_empty_output() {
        assert_eq!(encode_in_chunks(b"", &[1]), b"");
    }

    #[test]
    fn pads_the_last_group() {
        assert_eq!(encode_in_chunks(b"a", &[1]), b"YQ==");
        assert_eq!(encode_in_chunks(b"ab", &[1]), b"YWI=");
        assert_eq!(encode_in_chunks(b"abc", &[1]), b"YWJj");
    }

    #[test]
    fn wraps_at_76_columns_without_a_final_line_break() {
        let data: Vec<u8> = (0..=255u8).cycle().take(57 * 3).collect();
        let out = encode_in_chunks(&data, &[1000]);
        let lines: Vec<&[u8]> = out.split(|&b| b == b'\n').collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[..2].iter().all(|l| l.len() == 77 && l.ends_with(b"\r")));
        assert_eq!(lines[2].len(), 76);
    }

    #[test]
    fn odd_chunk_sizes_match_one_big_chunk() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let expected = reference(&data);
        for sizes in [vec![1], vec![3], vec![57], vec![1000], vec![1, 3, 57, 1000, 2, 76]] {
            assert_eq!(encode_in_chunks(&data, &sizes), expected, "{sizes:?}");
        }
        assert_eq!(decode(&expected), data);
    }

    #[test]
    fn encoder_is_reusable_after_finish() {
        let mut encoder = Base64LineEncoder::new();
        let mut out = Vec::new();
        encoder.push(&[1; 100], &mut out);
        encoder.finish(&mut out);
        let mut second = Vec::new();
        encoder.push(b"ab", &mut second);
        encoder.finish(&mut second);
        assert_eq!(second, b"YWI=");
    }

    #[test]
    fn encoded_len_is_exact() {
        for len in [0usize, 1, 2, 3, 56, 57, 58, 113, 114, 115, 1000, 4096] {
            let data = vec![0xA5; len];
            assert_eq!(
                encoded_len(len as u64),
                encode_in_chunks(&data, &[7]).len() as u64,
                "{len}"
            );
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_split_anywhere_round_trip(
            data in proptest::collection::vec(any::<u8>(), 0..2000),
            sizes in proptest::collection::vec(1usize..200, 1..20),
        ) {
            let out = encode_in_chunks(&data, &sizes);
            prop_assert_eq!(&out, &reference(&data));
            prop_assert!(out.split(|&b| b == b'\n').all(|line| line.len() <= LINE_CHARS + 1));
            prop_assert_eq!(decode(&out), data);
        }
    }
}
