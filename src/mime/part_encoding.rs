//! The Content-Transfer-Encoding of a body part other than the two text
//! bodies in hand, and the streaming encoders behind each one.
//!
//! Every encoder takes its input in chunks of any size and holds back only
//! what it needs to decide the next output byte: a base64 group, one byte
//! of quoted-printable look-ahead, or the current line (at most 998 bytes)
//! of a part sent as it is. So a streamed part never sits whole in memory.

use super::base64_stream::Base64LineEncoder;
use super::quoted_printable::{TextEncoder, TextEncoding};
use crate::error::{Phase, SmtpError};

/// The hint for content that cannot go as it is.
const ENCODE_IT: &str = "use base64 or quoted-printable (8bit needs 8BITMIME).";
/// The hint for a raw part that is not one.
const RAW_SHAPE: &str = "write headers, an empty line, the body.";

/// RFC 5322 §2.1.1: no line of a message may be longer than this, CRLF excluded.
pub const MAX_LINE: usize = 998;

/// How a part's bytes are written (its Content-Transfer-Encoding).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PartEncoding {
    /// Safe for any bytes; the default for attachments.
    #[default]
    Base64,
    /// Readable for mostly-ASCII content. For text/* types line ends stay
    /// line ends (written CRLF); for other types every byte is kept (CR and
    /// LF escaped).
    QuotedPrintable,
    /// The bytes as they are: ASCII without NUL, lines of at most 998
    /// octets; line ends written CRLF. Anything else is refused.
    SevenBit,
    /// Like 7bit, with bytes above 127 allowed: the message is declared
    /// `BODY=8BITMIME`, which a server without 8BITMIME refuses.
    EightBit,
    /// The caller gives the whole part, its headers included (nodemailer's
    /// `raw`). Checked like 7bit (8bit when in hand with such bytes, which
    /// then declares `BODY=8BITMIME`); header lines must be `Name: value`
    /// or continuations, in ASCII, ended by an empty line.
    Raw,
}

impl PartEncoding {
    /// The name, in lower case, as written in `Content-Transfer-Encoding`
    /// (and as the wasm API takes it); `raw` for a part given whole.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "base64" => PartEncoding::Base64,
            "quoted-printable" => PartEncoding::QuotedPrintable,
            "7bit" => PartEncoding::SevenBit,
            "8bit" => PartEncoding::EightBit,
            "raw" => PartEncoding::Raw,
            _ => return None,
        })
    }

    pub fn header_value(self) -> &'static str {
        match self {
            PartEncoding::Base64 => "base64",
            PartEncoding::QuotedPrintable => "quoted-printable",
            PartEncoding::SevenBit => "7bit",
            PartEncoding::EightBit | PartEncoding::Raw => "8bit",
        }
    }
}

/// One part's encoder, fed with [`push`](Self::push) and ended with
/// [`finish`](Self::finish).
#[derive(Debug)]
pub enum PartEncoder {
    /// 7bit, 8bit and raw parts: checked line by line, written unchanged
    /// but for the line ends.
    Lines(LineChecker),
    QuotedPrintable(QpStream),
    Base64(Base64LineEncoder),
}

impl PartEncoder {
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), SmtpError> {
        match self {
            PartEncoder::Base64(encoder) => encoder.push(chunk, out),
            PartEncoder::QuotedPrintable(encoder) => encoder.push(chunk, out)?,
            PartEncoder::Lines(checker) => checker.push(chunk, out)?,
        }
        Ok(())
    }

    /// Whether this part makes the message 8-bit (`BODY=8BITMIME`).
    pub fn needs_8bitmime(&self) -> bool {
        matches!(self, PartEncoder::Lines(checker) if checker.allow_8bit)
    }

    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), SmtpError> {
        match self {
            PartEncoder::Base64(encoder) => encoder.finish(out),
            PartEncoder::QuotedPrintable(encoder) => encoder.finish(out)?,
            PartEncoder::Lines(checker) => checker.finish(out)?,
        }
        Ok(())
    }
}

/// Quoted-printable over a stream: the encoder needs one byte of look-ahead
/// (is the next byte a line end?), so the last byte of each chunk waits for
/// the next chunk. A text body streamed this way is also checked to be UTF-8
/// (in the wasm build by the JS layer instead, see the `mime` module docs).
#[derive(Debug)]
pub struct QpStream {
    encoder: TextEncoder,
    /// Input not yet encoded (at most one chunk and one byte).
    carry: Vec<u8>,
    #[cfg(not(target_arch = "wasm32"))]
    utf8: Option<Utf8Check>,
}

impl QpStream {
    /// Line ends are line ends (text/* parts and text bodies).
    pub fn text() -> Self {
        QpStream {
            encoder: TextEncoder::new(TextEncoding::QuotedPrintable),
            carry: Vec::new(),
            #[cfg(not(target_arch = "wasm32"))]
            utf8: None,
        }
    }

    /// Every byte kept: CR and LF escaped (parts that are not text/*).
    pub fn binary() -> Self {
        QpStream {
            encoder: TextEncoder::binary(),
            ..QpStream::text()
        }
    }

    /// A text body: quoted-printable text whose bytes must be UTF-8 (the
    /// part says `charset=utf-8`). `what` names it in errors.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn utf8_body(what: &'static str) -> Self {
        QpStream {
            utf8: Some(Utf8Check {
                what,
                at: 0,
                pending: Vec::new(),
            }),
            ..QpStream::text()
        }
    }

    #[cfg(target_arch = "wasm32")]
    pub fn utf8_body(_: &'static str) -> Self {
        QpStream::text()
    }

    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), SmtpError> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(check) = &mut self.utf8 {
            check.push(chunk)?;
        }
        self.carry.extend_from_slice(chunk);
        let end = self.carry.len().saturating_sub(1);
        self.encoder.encode_until(&self.carry, end, out, usize::MAX);
        let done = self.encoder.position();
        self.carry.drain(..done);
        self.encoder.rebase(done);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), SmtpError> {
        #[cfg(not(target_arch = "wasm32"))]
        if let Some(check) = &self.utf8 {
            check.finish()?;
        }
        self.encoder
            .encode_until(&self.carry, self.carry.len(), out, usize::MAX);
        self.carry = Vec::new();
        Ok(())
    }
}

/// UTF-8 checked across chunk boundaries: a sequence cut by the end of a
/// chunk (at most 3 bytes) waits for the next one.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug)]
struct Utf8Check {
    what: &'static str,
    /// Bytes checked so far, for the error message.
    at: u64,
    pending: Vec<u8>,
}

#[cfg(not(target_arch = "wasm32"))]
impl Utf8Check {
    fn push(&mut self, mut chunk: &[u8]) -> Result<(), SmtpError> {
        // Complete a sequence cut by the previous chunk, one byte at a time.
        while !self.pending.is_empty() {
            let Some((&byte, rest)) = chunk.split_first() else {
                return Ok(());
            };
            self.pending.push(byte);
            chunk = rest;
            match std::str::from_utf8(&self.pending) {
                Ok(_) => {
                    self.at += self.pending.len() as u64;
                    self.pending.clear();
                }
                Err(error) if error.error_len().is_none() => {}
                Err(_) => return Err(self.error(0)),
            }
        }
        match std::str::from_utf8(chunk) {
            Ok(_) => self.at += chunk.len() as u64,
            Err(error) if error.error_len().is_none() => {
                let valid = error.valid_up_to();
                self.at += valid as u64;
                self.pending.extend_from_slice(&chunk[valid..]);
            }
            Err(error) => return Err(self.error(error.valid_up_to())),
        }
        Ok(())
    }

    fn finish(&self) -> Result<(), SmtpError> {
        if self.pending.is_empty() {
            Ok(())
        } else {
            Err(self.error(0))
        }
    }

    fn error(&self, offset: usize) -> SmtpError {
        SmtpError::input(
            Phase::Data,
            format!(
                "the {} body is not valid UTF-8 (at byte {}).",
                self.what,
                self.at + offset as u64
            ),
        )
        .with_hint("stream UTF-8 text (the part says charset=utf-8).")
    }
}

/// Checks a part sent without encoding, one line at a time, and writes it
/// with CRLF line ends (a lone CR or LF becomes CRLF, so no bare line end
/// reaches the wire). Refused: NUL, bytes above 127 unless allowed, lines
/// over 998 octets, and a line that starts like the message's boundaries.
/// For a raw part, the lines before the first empty one are its headers.
#[derive(Debug)]
pub struct LineChecker {
    /// The part's index, for errors.
    index: usize,
    allow_8bit: bool,
    /// `--` and the message's boundary prefix: no line may start with it.
    boundary_line: String,
    /// A raw part still in its header section (`Some(lines seen)`).
    header_lines: Option<usize>,
    /// The current line, without its line end.
    line: Vec<u8>,
    /// The previous chunk ended in CR: an LF starting this one belongs to it.
    after_cr: bool,
    /// Lines written, for error messages.
    lines: u64,
}

impl LineChecker {
    pub fn new(index: usize, encoding: PartEncoding, allow_8bit: bool, boundary_base: &str) -> Self {
        LineChecker {
            index,
            allow_8bit: allow_8bit || encoding == PartEncoding::EightBit,
            boundary_line: format!("--{boundary_base}"),
            header_lines: (encoding == PartEncoding::Raw).then_some(0),
            line: Vec::new(),
            after_cr: false,
            lines: 0,
        }
    }

    #[inline(never)]
    fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>) -> Result<(), SmtpError> {
        let mut rest = chunk;
        if self.after_cr {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(at) = memchr::memchr2(b'\r', b'\n', rest) {
            self.take(&rest[..at])?;
            self.end_line(out)?;
            if rest[at] == b'\r' {
                match rest.get(at + 1) {
                    Some(b'\n') => rest = &rest[at + 2..],
                    Some(_) => rest = &rest[at + 1..],
                    None => {
                        self.after_cr = true;
                        return Ok(());
                    }
                }
            } else {
                rest = &rest[at + 1..];
            }
        }
        self.take(rest)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), SmtpError> {
        self.check_line()?;
        if self.header_lines.is_some() {
            return Err(self.refuse("has no empty line after its headers", RAW_SHAPE));
        }
        // The last line goes out without a line end: the CRLF before the
        // next boundary belongs to the boundary.
        out.append(&mut self.line);
        Ok(())
    }

    /// Adds bytes to the current line, checking each.
    fn take(&mut self, bytes: &[u8]) -> Result<(), SmtpError> {
        if let Some(&bad) = bytes.iter().find(|&&b| b == 0 || (b > 127 && !self.allow_8bit)) {
            return Err(self.refuse(
                if bad == 0 {
                    "holds a NUL byte"
                } else {
                    "has a byte above 127"
                },
                ENCODE_IT,
            ));
        }
        if self.line.len() + bytes.len() > MAX_LINE {
            return Err(self.refuse("has a line longer than 998 octets", ENCODE_IT));
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn end_line(&mut self, out: &mut Vec<u8>) -> Result<(), SmtpError> {
        self.check_line()?;
        if let Some(seen) = self.header_lines {
            self.header_lines = if self.line.is_empty() { None } else { Some(seen + 1) };
        }
        out.append(&mut self.line);
        out.extend_from_slice(b"\r\n");
        self.lines += 1;
        Ok(())
    }

    fn check_line(&self) -> Result<(), SmtpError> {
        if self.line.starts_with(self.boundary_line.as_bytes()) {
            return Err(self.refuse("has a line that starts like the message's boundaries", ENCODE_IT));
        }
        let Some(seen) = self.header_lines else {
            return Ok(());
        };
        let line = &self.line;
        let continuation = matches!(line.first(), Some(b' ' | b'\t'));
        let field_name = line
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|colon| colon > 0 && line[..colon].iter().all(|&b| matches!(b, b'!'..=b'~')));
        let well_formed = line.is_empty() || (continuation && seen > 0) || field_name;
        if !well_formed || !line.is_ascii() {
            return Err(self.refuse("has a header line that is not 'Name: value' in ASCII", RAW_SHAPE));
        }
        Ok(())
    }

    fn refuse(&self, problem: &str, hint: &str) -> SmtpError {
        SmtpError::input(
            Phase::Data,
            format!("attachment {} {problem} (line {}).", self.index, self.lines + 1),
        )
        .with_hint(hint)
    }
}
