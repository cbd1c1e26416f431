//! Text bodies: 7bit when the text can travel as it is, quoted-printable
//! (RFC 2045 §6.7) otherwise. Either way the output is 7-bit clean with
//! CRLF line ends, so the message can be declared `BODY=7BIT`.
//!
//! The text is in memory already, so encoding looks ahead freely; it runs
//! in slices ([`TextEncoder::encode_some`]) only so that a large body is not
//! copied whole into a second buffer.

/// Longest line a 7bit text part may have. RFC 5322 asks for 78; longer
/// lines go quoted-printable, which wraps them.
const MAX_7BIT_LINE: usize = 78;
/// RFC 2045: encoded lines are at most 76 characters, the soft break's `=`
/// included.
const MAX_QP_LINE: usize = 76;

/// The Content-Transfer-Encoding of a text part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextEncoding {
    SevenBit,
    QuotedPrintable,
}

impl TextEncoding {
    pub fn header_value(self) -> &'static str {
        match self {
            TextEncoding::SevenBit => "7bit",
            TextEncoding::QuotedPrintable => "quoted-printable",
        }
    }
}

/// 7bit when every line is short printable ASCII; quoted-printable otherwise.
///
/// Text containing `=_` also goes quoted-printable: every multipart boundary
/// starts with `=_`, which quoted-printable and base64 can never produce, so
/// this is what guarantees that no part contains a boundary.
pub fn choose_text_encoding(text: &str) -> TextEncoding {
    let bytes = text.as_bytes();
    // One pass: printable ASCII and tabs only, and no more than
    // MAX_7BIT_LINE of them between line ends. A CR not followed by LF is a
    // line end too: it would be normalised to CRLF.
    let mut line = 0usize;
    for &b in bytes {
        match b {
            b'\r' | b'\n' => line = 0,
            b' '..=b'~' | b'\t' if line < MAX_7BIT_LINE => line += 1,
            _ => return TextEncoding::QuotedPrintable,
        }
    }
    if memchr::memmem::find(bytes, b"=_").is_none() {
        TextEncoding::SevenBit
    } else {
        TextEncoding::QuotedPrintable
    }
}

/// Encodes one text body, a slice at a time.
#[derive(Debug, Clone)]
pub struct TextEncoder {
    encoding: TextEncoding,
    /// Next input byte to encode.
    position: usize,
    /// Characters on the current output line (quoted-printable only).
    column: usize,
    /// Binary quoted-printable: CR and LF are data, escaped as `=0D` and
    /// `=0A`, not line ends (for parts that are not text/*).
    binary: bool,
}

impl TextEncoder {
    pub fn new(encoding: TextEncoding) -> Self {
        TextEncoder {
            encoding,
            position: 0,
            column: 0,
            binary: false,
        }
    }

    /// Quoted-printable that keeps every byte as it is: CR and LF escaped.
    pub fn binary() -> Self {
        TextEncoder {
            binary: true,
            ..TextEncoder::new(TextEncoding::QuotedPrintable)
        }
    }

    /// The next input byte to encode.
    pub fn position(&self) -> usize {
        self.position
    }

    /// The caller dropped the first `consumed` bytes of its input (already
    /// encoded): positions count from the new start.
    pub fn rebase(&mut self, consumed: usize) {
        self.position -= consumed.min(self.position);
    }

    /// Encodes from where the last call stopped until `out` has grown by
    /// about `budget` bytes or the text ends. Returns true once the whole
    /// text is encoded. Line ends of any kind become CRLF; no line end is
    /// added after the last line (the boundary that follows brings its own).
    pub fn encode_some(&mut self, text: &[u8], out: &mut Vec<u8>, budget: usize) -> bool {
        self.encode_until(text, text.len(), out, budget)
    }

    /// Like [`encode_some`](Self::encode_some), stopping at input byte `end`
    /// (the bytes after it are only looked at, to know where lines end):
    /// how a stream is encoded while its next chunk is not yet there.
    pub fn encode_until(&mut self, text: &[u8], end: usize, out: &mut Vec<u8>, budget: usize) -> bool {
        let stop_at = out.len().saturating_add(budget);
        let end = end.min(text.len());
        while self.position < end && out.len() < stop_at {
            let line_end = if self.binary {
                None
            } else {
                line_end_len(text, self.position)
            };
            let consumed = match line_end {
                Some(len) => {
                    out.extend_from_slice(b"\r\n");
                    self.column = 0;
                    len
                }
                None => match self.encoding {
                    TextEncoding::SevenBit => {
                        // The run up to the next line end (or the budget) in one copy.
                        let rest = &text[self.position..];
                        let run = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
                        let take = run.min(stop_at - out.len()).max(1);
                        out.extend_from_slice(&rest[..take]);
                        take
                    }
                    TextEncoding::QuotedPrintable => {
                        self.encode_qp_byte(text, out);
                        1
                    }
                },
            };
            self.position += consumed;
        }
        self.position >= end
    }

    fn encode_qp_byte(&mut self, text: &[u8], out: &mut Vec<u8>) {
        let byte = text[self.position];
        let next = self.position + 1;
        let last_on_line = next == text.len() || (!self.binary && line_end_len(text, next).is_some());
        // Trailing spaces and tabs would be stripped in transit, so they
        // are escaped; elsewhere they stay readable.
        let literal = match byte {
            b' ' | b'\t' => !last_on_line,
            b'=' => false,
            b'!'..=b'~' => true,
            _ => false,
        };
        let width = if literal { 1 } else { 3 };
        // The last token of a line needs no room for a soft break's `=`.
        let limit = if last_on_line { MAX_QP_LINE } else { MAX_QP_LINE - 1 };
        if self.column + width > limit {
            out.extend_from_slice(b"=\r\n");
            self.column = 0;
        }
        if literal {
            out.push(byte);
        } else {
            out.extend_from_slice(&hex_escape(byte));
        }
        self.column += width;
    }
}

/// The length of the line end (CRLF, LF or a lone CR) at `at`, if any.
fn line_end_len(text: &[u8], at: usize) -> Option<usize> {
    match text.get(at)? {
        b'\n' => Some(1),
        b'\r' if text.get(at + 1) == Some(&b'\n') => Some(2),
        b'\r' => Some(1),
        _ => None,
    }
}

fn hex_escape(byte: u8) -> [u8; 3] {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    [b'=', HEX[usize::from(byte >> 4)], HEX[usize::from(byte & 0x0F)]]
}

/// Test helpers shared with the builder's round-trip tests.
#[cfg(test)]
pub(crate) mod testing {
    /// Decodes quoted-printable (soft breaks removed, `=XX` unescaped).
    pub fn decode_qp(encoded: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(encoded.len());
        let mut i = 0;
        while i < encoded.len() {
            if encoded[i] != b'=' {
                out.push(encoded[i]);
                i += 1;
            } else if encoded[i + 1..].starts_with(b"\r\n") {
                i += 3;
            } else {
                let hex = std::str::from_utf8(&encoded[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            }
        }
        out
    }

    /// `text` with every line end (CRLF, LF, lone CR) written as CRLF.
    pub fn normalize_line_ends(text: &str) -> Vec<u8> {
        text.replace("\r\n", "\n")
            .replace('\r', "\n")
            .replace('\n', "\r\n")
            .into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use proptest::prelude::*;

    fn encode(text: &str, encoding: TextEncoding, budget: usize) -> Vec<u8> {
        let mut encoder = TextEncoder::new(encoding);
        let mut out = Vec::new();
        while !encoder.encode_some(text.as_bytes(), &mut out, budget) {}
        out
    }

    fn assert_qp_round_trip(text: &str) {
        let out = encode(text, TextEncoding::QuotedPrintable, 7);
        assert!(out.is_ascii());
        for line in out.split(|&b| b == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            assert!(line.len() <= MAX_QP_LINE, "{:?}", String::from_utf8_lossy(line));
            assert!(!line.ends_with(b" ") && !line.ends_with(b"\t"), "trailing whitespace");
            assert!(!line.contains(&b'\r'), "lone CR");
        }
        assert_eq!(decode_qp(&out), normalize_line_ends(text));
    }

    #[test]
    fn short_ascii_lines_stay_7bit() {
        assert_eq!(choose_text_encoding("Hello,\r\nworld.\n"), TextEncoding::SevenBit);
        assert_eq!(
            encode("Hello,\nworld.\r", TextEncoding::SevenBit, 3),
            b"Hello,\r\nworld.\r\n"
        );
    }

    #[test]
    fn non_ascii_long_lines_controls_and_boundary_prefix_need_qp() {
        for text in ["café", &"x".repeat(79), "nul\0", "a =_ b", "bell\x07"] {
            assert_eq!(choose_text_encoding(text), TextEncoding::QuotedPrintable, "{text:?}");
        }
        assert_eq!(choose_text_encoding(&"x".repeat(78)), TextEncoding::SevenBit);
    }

    #[test]
    fn escapes_equals_utf8_and_trailing_whitespace() {
        assert_eq!(
            encode("a=b café \nx\t", TextEncoding::QuotedPrintable, 100),
            b"a=3Db caf=C3=A9=20\r\nx=09"
        );
    }

    #[test]
    fn wraps_long_lines_with_soft_breaks() {
        let text = "é".repeat(40);
        let out = encode(&text, TextEncoding::QuotedPrintable, 1000);
        let first_line = out.split(|&b| b == b'\r').next().unwrap();
        assert_eq!(first_line.len(), 76); // 25 escapes of 3 chars + "="
        assert_qp_round_trip(&text);
    }

    #[test]
    fn line_of_exactly_76_needs_no_soft_break() {
        let text = "y".repeat(76);
        assert_eq!(encode(&text, TextEncoding::QuotedPrintable, 1000), text.as_bytes());
        assert_qp_round_trip(&"y".repeat(77));
    }

    #[test]
    fn whitespace_before_a_soft_break_is_kept_literal() {
        assert_qp_round_trip(&format!("{} {}", "a".repeat(74), "b".repeat(10)));
        assert_qp_round_trip(&" ".repeat(200));
    }

    /// The rule as first written (clear, slower): the one-pass version must agree.
    fn choose_reference(text: &str) -> TextEncoding {
        let bytes = text.as_bytes();
        let clean_bytes = bytes.iter().all(|&b| matches!(b, b' '..=b'~' | b'\t' | b'\r' | b'\n'));
        let short_lines = bytes
            .split(|&b| b == b'\n')
            .all(|line| line.split(|&b| b == b'\r').all(|piece| piece.len() <= MAX_7BIT_LINE));
        if clean_bytes && short_lines && memchr::memmem::find(bytes, b"=_").is_none() {
            TextEncoding::SevenBit
        } else {
            TextEncoding::QuotedPrintable
        }
    }

    proptest! {
        #[test]
        fn the_encoding_choice_matches_the_reference(text in "[ -~\t\r\n]{0,200}|[a\r\n]{70,90}|\\PC{0,100}") {
            prop_assert_eq!(choose_text_encoding(&text), choose_reference(&text));
        }

        #[test]
        fn arbitrary_text_round_trips(text in "\\PC*|[ \t\r\n=a-é]{0,300}") {
            assert_qp_round_trip(&text);
            if choose_text_encoding(&text) == TextEncoding::SevenBit {
                prop_assert_eq!(encode(&text, TextEncoding::SevenBit, 5), normalize_line_ends(&text));
            }
        }
    }
}
