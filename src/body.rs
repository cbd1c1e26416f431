//! Streaming message body framing: line-end normalisation, dot-stuffing and
//! the end-of-data marker, applied chunk by chunk so a 100 MB body never has
//! to sit in memory twice.
//!
//! The encoder works on slices: it finds the next CR or LF with `memchr2`
//! and copies the run of content before it in one `extend_from_slice`, so the
//! cost per byte is a vectorised scan plus a memcpy.

use core::fmt;
use memchr::{memchr2, memmem};

/// How the body is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// DATA: dot-stuffing and the final ".\r\n"
    Data,
    /// BDAT (RFC 3030): no stuffing, no terminator
    Bdat,
}

/// Why a body cannot be sent as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// A line is longer than the limit (line ends not counted).
    ///
    /// `length` is the full length of the line when it ends within the same
    /// `encode` call that detected it (always the case when the body is
    /// encoded in one call); otherwise it is the length seen so far, which
    /// already exceeds `limit`.
    LineTooLong {
        /// 1-based line number in the message.
        line: u64,
        /// Length of the line in bytes, without its line end.
        length: usize,
        /// The limit that was exceeded.
        limit: usize,
    },
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::LineTooLong { line, length, limit } => write!(
                f,
                "line {line} of the message is {length} bytes; SMTP allows {limit} — \
                 encode long lines with quoted-printable or base64"
            ),
        }
    }
}

impl std::error::Error for BodyError {}

/// RFC 5322 §2.1.1 (and RFC 5321 §4.5.3.1.6): at most 998 characters per
/// line, not counting the CRLF nor the dot added by dot-stuffing.
pub const MAX_LINE_LEN: usize = 998;

/// The parts of the encoder that change while encoding. Kept apart so a
/// failed `encode` call can restore them and leave no trace.
#[derive(Debug, Clone, Copy)]
struct State {
    /// Bytes of the current line seen so far, line end excluded. Zero means
    /// "at the start of a line", because every content byte increments it.
    line_len: usize,
    /// 1-based number of the current line.
    line: u64,
    /// The previous chunk ended in CR, already written out as CRLF: an LF
    /// at the start of the next chunk belongs to it and must be dropped.
    skip_lf: bool,
    saw_8bit: bool,
    bytes_in: u64,
    bytes_out: u64,
}

impl State {
    const START: State = State {
        line_len: 0,
        line: 1,
        skip_lf: false,
        saw_8bit: false,
        bytes_in: 0,
        bytes_out: 0,
    };
}

/// Frames a message body for DATA or BDAT, one chunk at a time.
///
/// The output for a body does not depend on how it is split into chunks.
/// After [`finish`](BodyEncoder::finish) the encoder is ready for another
/// body; the byte counters and `saw_8bit` keep accumulating.
#[derive(Debug, Clone)]
pub struct BodyEncoder {
    framing: Framing,
    limit: Option<usize>,
    state: State,
}

impl BodyEncoder {
    /// An encoder that enforces [`MAX_LINE_LEN`].
    pub fn new(framing: Framing) -> Self {
        BodyEncoder::with_line_limit(framing, Some(MAX_LINE_LEN))
    }

    /// An encoder with a custom line limit; `None` disables the check (for
    /// servers known to accept longer lines, at the sender's own risk).
    pub fn with_line_limit(framing: Framing, limit: Option<usize>) -> Self {
        BodyEncoder {
            framing,
            limit,
            state: State::START,
        }
    }

    /// Normalises line ends to CRLF (bare LF → CRLF, bare CR → CRLF, CRLF
    /// split across calls handled), dot-stuffs lines starting with '.' under
    /// `Framing::Data`, checks line lengths, appends to `out`.
    ///
    /// On error neither `out` nor the encoder is changed by this call; the
    /// body cannot be completed and the transaction should be abandoned.
    pub fn encode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BodyError> {
        let saved = self.state;
        let out_start = out.len();
        match self.encode_inner(input, out) {
            Ok(()) => {
                let st = &mut self.state;
                st.bytes_in += input.len() as u64;
                st.bytes_out += (out.len() - out_start) as u64;
                // `is_ascii` checks a word at a time; once 8-bit data has been
                // seen there is nothing left to learn, so skip the scan.
                if !st.saw_8bit && !input.is_ascii() {
                    st.saw_8bit = true;
                }
                Ok(())
            }
            Err(err) => {
                self.state = saved;
                out.truncate(out_start);
                Err(err)
            }
        }
    }

    fn encode_inner(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), BodyError> {
        let mut rest = input;
        if self.state.skip_lf {
            match rest.first() {
                // An empty chunk tells nothing: keep waiting for the next byte.
                None => return Ok(()),
                Some(&b'\n') => rest = &rest[1..],
                Some(_) => {}
            }
            self.state.skip_lf = false;
        }
        // Most of the output is a copy of the input; reserve once so the
        // copies below rarely reallocate.
        out.reserve(rest.len() + 2);
        let stuff = self.framing == Framing::Data;

        while let Some(&first) = rest.first() {
            if stuff && self.state.line_len == 0 && first == b'.' {
                out.push(b'.');
            }
            match memchr2(b'\r', b'\n', rest) {
                Some(end) => {
                    self.check_length(self.state.line_len + end)?;
                    out.extend_from_slice(&rest[..end]);
                    out.extend_from_slice(b"\r\n");
                    self.state.line_len = 0;
                    self.state.line += 1;
                    rest = if rest[end] == b'\n' {
                        &rest[end + 1..]
                    } else {
                        match rest.get(end + 1) {
                            Some(&b'\n') => &rest[end + 2..],
                            Some(_) => &rest[end + 1..],
                            None => {
                                // CR is the last byte of the chunk: it may be
                                // the first half of a CRLF split across calls.
                                self.state.skip_lf = true;
                                &[]
                            }
                        }
                    };
                }
                None => {
                    self.check_length(self.state.line_len + rest.len())?;
                    out.extend_from_slice(rest);
                    self.state.line_len += rest.len();
                    rest = &[];
                }
            }
        }
        Ok(())
    }

    fn check_length(&self, length: usize) -> Result<(), BodyError> {
        match self.limit {
            Some(limit) if length > limit => Err(BodyError::LineTooLong {
                line: self.state.line,
                length,
                limit,
            }),
            _ => Ok(()),
        }
    }

    /// Ends the body: CRLF if the last line is unterminated, then ".\r\n"
    /// for Data. Line lengths are checked as bytes arrive, so this cannot
    /// fail today; the `Result` leaves room for checks that need the end.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), BodyError> {
        let before = out.len();
        if self.state.line_len > 0 {
            out.extend_from_slice(b"\r\n");
        }
        if self.framing == Framing::Data {
            // Every line is now terminated, so this always forms "\r\n.\r\n"
            // with what precedes it (or stands alone for an empty body).
            out.extend_from_slice(b".\r\n");
        }
        let st = &mut self.state;
        st.bytes_out += (out.len() - before) as u64;
        st.line_len = 0;
        st.line = 1;
        st.skip_lf = false;
        Ok(())
    }

    /// Whether any byte >= 0x80 was seen so far (the body then needs
    /// 8BITMIME, or BINARYMIME/SMTPUTF8 depending on its content).
    pub fn saw_8bit(&self) -> bool {
        self.state.saw_8bit
    }

    /// Bytes passed to `encode` so far.
    pub fn bytes_in(&self) -> u64 {
        self.state.bytes_in
    }

    /// Bytes appended to the output so far, framing included.
    pub fn bytes_out(&self) -> u64 {
        self.state.bytes_out
    }
}

/// Reverses Data framing (what a server does): strips the final ".\r\n" and
/// one leading dot per line. Returns None when the input is not a complete,
/// well-formed DATA stream (missing terminator, bare CR or LF, or bytes after
/// the terminator). For tests and the fuzzers.
pub fn unstuff(data: &[u8]) -> Option<Vec<u8>> {
    // The content is everything before the terminator line; it is empty or
    // ends with the CRLF that precedes the terminator.
    let content = if data == b".\r\n" {
        &[][..]
    } else if data.ends_with(b"\r\n.\r\n") {
        &data[..data.len() - 3]
    } else {
        return None;
    };
    let mut out = Vec::with_capacity(content.len());
    let mut rest = content;
    while !rest.is_empty() {
        let end = memmem::find(rest, b"\r\n")?;
        let line = &rest[..end];
        if memchr2(b'\r', b'\n', line).is_some() {
            return None;
        }
        let line = match line.split_first() {
            // A lone "." before the end is a terminator with data after it.
            Some((b'.', [])) => return None,
            Some((b'.', tail)) => tail,
            _ => line,
        };
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
        rest = &rest[end + 2..];
    }
    Some(out)
}

/// Line-end normalisation alone (what `encode` does without stuffing), for tests.
pub fn normalize_line_endings(data: &[u8]) -> Vec<u8> {
    let mut encoder = BodyEncoder::with_line_limit(Framing::Bdat, None);
    let mut out = Vec::with_capacity(data.len());
    // Without a limit there is no error to report.
    let _ = encoder.encode(data, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode_all(framing: Framing, chunks: &[&[u8]]) -> Result<Vec<u8>, BodyError> {
        let mut encoder = BodyEncoder::new(framing);
        let mut out = Vec::new();
        for chunk in chunks {
            encoder.encode(chunk, &mut out)?;
        }
        encoder.finish(&mut out)?;
        Ok(out)
    }

    fn data(chunks: &[&[u8]]) -> Vec<u8> {
        encode_all(Framing::Data, chunks).unwrap()
    }

    #[test]
    fn empty_body_under_data_is_just_the_terminator() {
        assert_eq!(data(&[]), b".\r\n");
        assert_eq!(data(&[b"", b""]), b".\r\n");
        assert_eq!(encode_all(Framing::Bdat, &[]).unwrap(), b"");
    }

    #[test]
    fn unterminated_last_line_gets_crlf_before_the_dot() {
        assert_eq!(data(&[b"hello"]), b"hello\r\n.\r\n");
        assert_eq!(data(&[b"hello\r\n"]), b"hello\r\n.\r\n");
        assert_eq!(encode_all(Framing::Bdat, &[b"hello"]).unwrap(), b"hello\r\n");
    }

    #[test]
    fn bare_line_ends_become_crlf() {
        assert_eq!(data(&[b"a\nb\rc\r\nd"]), b"a\r\nb\r\nc\r\nd\r\n.\r\n");
        // "\n\r" is two line ends, not one.
        assert_eq!(data(&[b"a\n\rb"]), b"a\r\n\r\nb\r\n.\r\n");
        assert_eq!(data(&[b"\r\r\n\n"]), b"\r\n\r\n\r\n.\r\n");
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        assert_eq!(data(&[b"a\r", b"\nb"]), b"a\r\nb\r\n.\r\n");
        // Empty chunks in between do not lose the pending CR.
        assert_eq!(data(&[b"a\r", b"", b"\nb"]), b"a\r\nb\r\n.\r\n");
        // A CR then a non-LF is a bare CR.
        assert_eq!(data(&[b"a\r", b"b"]), b"a\r\nb\r\n.\r\n");
        // The body ends right after the CR.
        assert_eq!(data(&[b"a\r"]), b"a\r\n.\r\n");
    }

    #[test]
    fn dots_at_line_start_are_stuffed_only_under_data() {
        assert_eq!(data(&[b".\r\n..x\r\n.y"]), b"..\r\n...x\r\n..y\r\n.\r\n");
        assert_eq!(data(&[b"a.\r\n", b".", b"b"]), b"a.\r\n..b\r\n.\r\n");
        assert_eq!(data(&[b"a\r", b"\n.b"]), b"a\r\n..b\r\n.\r\n");
        assert_eq!(encode_all(Framing::Bdat, &[b".\r\n.x"]).unwrap(), b".\r\n.x\r\n");
    }

    #[test]
    fn content_that_looks_like_the_end_is_not_the_end() {
        let out = data(&[b"a\r\n.\r\nb"]);
        assert_eq!(out, b"a\r\n..\r\nb\r\n.\r\n");
        assert_eq!(unstuff(&out).unwrap(), b"a\r\n.\r\nb\r\n");
    }

    #[test]
    fn counts_bytes_and_8bit() {
        let mut encoder = BodyEncoder::new(Framing::Data);
        let mut out = Vec::new();
        encoder.encode(b".a\n", &mut out).unwrap();
        assert!(!encoder.saw_8bit());
        encoder.encode("é".as_bytes(), &mut out).unwrap();
        assert!(encoder.saw_8bit());
        encoder.finish(&mut out).unwrap();
        assert_eq!(encoder.bytes_in(), 5);
        assert_eq!(encoder.bytes_out(), out.len() as u64);
        assert_eq!(out, "..a\r\né\r\n.\r\n".as_bytes());
    }

    #[test]
    fn line_limit_boundaries_and_line_numbers() {
        let ok = [b'x'; MAX_LINE_LEN];
        assert!(encode_all(Framing::Data, &[b"first\n", &ok]).is_ok());
        let long = [b'x'; MAX_LINE_LEN + 1];
        assert_eq!(
            encode_all(Framing::Data, &[b"first\nsecond\r\n", &long, b"\r\n"]),
            Err(BodyError::LineTooLong {
                line: 3,
                length: 999,
                limit: 998
            })
        );
        // A stuffed dot does not count towards the limit.
        let mut dotted = vec![b'.'];
        dotted.extend_from_slice(&[b'x'; MAX_LINE_LEN - 1]);
        assert!(encode_all(Framing::Data, &[&dotted]).is_ok());
    }

    #[test]
    fn long_line_across_chunks_is_caught() {
        let half = [b'y'; 600];
        let err = encode_all(Framing::Bdat, &[b"a\n", &half, &half]).unwrap_err();
        assert_eq!(
            err,
            BodyError::LineTooLong {
                line: 2,
                length: 1200,
                limit: 998
            }
        );
        assert_eq!(
            err.to_string(),
            "line 2 of the message is 1200 bytes; SMTP allows 998 — encode long lines with quoted-printable or base64"
        );
    }

    #[test]
    fn failed_encode_leaves_no_trace() {
        let mut encoder = BodyEncoder::with_line_limit(Framing::Data, Some(3));
        let mut out = Vec::new();
        encoder.encode(b"ab\r", &mut out).unwrap();
        let before = out.clone();
        assert!(encoder.encode(b"\n.c\r\nlong line", &mut out).is_err());
        assert_eq!(out, before);
        assert_eq!(encoder.bytes_in(), 3);
        // The pending CR is still pending.
        encoder.encode(b"\nok", &mut out).unwrap();
        encoder.finish(&mut out).unwrap();
        assert_eq!(out, b"ab\r\nok\r\n.\r\n");
    }

    #[test]
    fn encoder_is_reusable_after_finish() {
        let mut encoder = BodyEncoder::new(Framing::Data);
        let mut out = Vec::new();
        encoder.encode(b"a\r", &mut out).unwrap();
        encoder.finish(&mut out).unwrap();
        encoder.encode(b"\n.b", &mut out).unwrap();
        encoder.finish(&mut out).unwrap();
        // The LF after finish starts the new body; it is not glued to the old CR.
        assert_eq!(out, b"a\r\n.\r\n\r\n..b\r\n.\r\n");
    }

    #[test]
    fn unstuff_rejects_malformed_streams() {
        assert_eq!(unstuff(b""), None);
        assert_eq!(unstuff(b"abc\r\n"), None);
        assert_eq!(unstuff(b"a\nb\r\n.\r\n"), None);
        assert_eq!(unstuff(b"a\r\n.\r\nb\r\n.\r\n"), None);
        assert_eq!(unstuff(b"x.\r\n"), None);
        assert_eq!(unstuff(b".\r\n").unwrap(), b"");
        assert_eq!(unstuff(b"..a\r\n.\r\n").unwrap(), b".a\r\n");
    }

    #[test]
    fn normalize_only_touches_line_ends() {
        assert_eq!(normalize_line_endings(b".a\rb\nc\r\n"), b".a\r\nb\r\nc\r\n");
        assert_eq!(normalize_line_endings(b"no newline"), b"no newline");
        assert_eq!(normalize_line_endings(b""), b"");
    }

    /// Bodies rich in the bytes that matter: CR, LF, dots and 8-bit data.
    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop::collection::vec(
            prop_oneof![
                Just(b'\r'),
                Just(b'\n'),
                Just(b'.'),
                Just(b'a'),
                Just(0xC3u8),
                any::<u8>()
            ],
            0..300,
        )
    }

    /// Splits `data` at the given (sorted, deduplicated) cut points.
    fn split<'a>(data: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
        let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
        points.sort_unstable();
        let mut chunks = Vec::new();
        let mut start = 0;
        for p in points {
            chunks.push(&data[start..p]);
            start = p;
        }
        chunks.push(&data[start..]);
        chunks
    }

    proptest! {
        #[test]
        fn chunking_does_not_change_output(
            input in body(),
            cuts in prop::collection::vec(any::<usize>(), 0..8),
            data_framing in any::<bool>(),
        ) {
            let framing = if data_framing { Framing::Data } else { Framing::Bdat };
            let one_shot = encode_all(framing, &[&input]);
            let chunked = encode_all(framing, &split(&input, &cuts));
            prop_assert_eq!(&one_shot, &chunked);
            if let Ok(out) = one_shot {
                let mut encoder = BodyEncoder::new(framing);
                let mut sink = Vec::new();
                encoder.encode(&input, &mut sink).unwrap();
                encoder.finish(&mut sink).unwrap();
                prop_assert_eq!(encoder.bytes_out(), out.len() as u64);
            }
        }

        #[test]
        fn unstuff_inverts_encode(input in body()) {
            let out = encode_all(Framing::Data, &[&input]).unwrap();
            let mut expected = normalize_line_endings(&input);
            if !expected.is_empty() && !expected.ends_with(b"\r\n") {
                expected.extend_from_slice(b"\r\n");
            }
            prop_assert_eq!(unstuff(&out), Some(expected));
        }

        #[test]
        fn end_marker_appears_only_at_the_end(input in body(), cuts in prop::collection::vec(any::<usize>(), 0..4)) {
            let out = encode_all(Framing::Data, &split(&input, &cuts)).unwrap();
            match memmem::find(&out, b"\r\n.\r\n") {
                Some(pos) => prop_assert_eq!(pos, out.len() - 5),
                None => prop_assert_eq!(&out[..], b".\r\n"),
            }
        }

        #[test]
        fn no_limit_never_fails(input in prop::collection::vec(any::<u8>(), 0..5000), cuts in prop::collection::vec(any::<usize>(), 0..4)) {
            let mut encoder = BodyEncoder::with_line_limit(Framing::Data, None);
            let mut out = Vec::new();
            for chunk in split(&input, &cuts) {
                prop_assert!(encoder.encode(chunk, &mut out).is_ok());
            }
            prop_assert!(encoder.finish(&mut out).is_ok());
        }

        #[test]
        fn limit_is_exact_and_reports_the_line(
            before in 0usize..5,
            extra in 0usize..3,
            ending in prop_oneof![Just(&b"\r\n"[..]), Just(&b"\n"[..]), Just(&b"\r"[..])],
        ) {
            let mut input = Vec::new();
            for _ in 0..before {
                input.extend_from_slice(b"short");
                input.extend_from_slice(ending);
            }
            let length = MAX_LINE_LEN - 1 + extra; // 997, 998 or 999
            input.extend(core::iter::repeat_n(b'z', length));
            input.extend_from_slice(ending);
            let result = encode_all(Framing::Data, &[&input]);
            if length <= MAX_LINE_LEN {
                prop_assert!(result.is_ok());
            } else {
                prop_assert_eq!(
                    result,
                    Err(BodyError::LineTooLong { line: before as u64 + 1, length, limit: MAX_LINE_LEN })
                );
            }
        }
    }

    /// `cargo test --release -- --ignored --nocapture body_throughput`
    #[test]
    #[ignore]
    fn body_throughput() {
        // Typical mail: 76-column lines, some starting with a dot.
        let mut line = vec![b'a'; 74];
        line.extend_from_slice(b"\r\n");
        let mut chunk = Vec::with_capacity(64 * 1024);
        while chunk.len() + line.len() <= 64 * 1024 {
            chunk.extend_from_slice(&line);
            if chunk.len() % 7 == 0 {
                chunk.push(b'.');
            }
        }
        chunk.resize(64 * 1024, b'b');
        let chunks = 64 * 1024 * 1024 / chunk.len();
        let mut encoder = BodyEncoder::new(Framing::Data);
        let mut out = Vec::with_capacity(80 * 1024);
        let start = std::time::Instant::now();
        for _ in 0..chunks {
            out.clear();
            encoder.encode(&chunk, &mut out).unwrap();
        }
        encoder.finish(&mut out).unwrap();
        let secs = start.elapsed().as_secs_f64();
        let mb = encoder.bytes_in() as f64 / (1024.0 * 1024.0);
        println!("encoded {mb:.0} MB in {secs:.3} s: {:.0} MB/s", mb / secs);
    }
}
