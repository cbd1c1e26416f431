//! Server replies: the `Reply` value and an incremental, bounded parser.

use core::fmt::{self, Write as _};

/// An RFC 3463 enhanced status code such as `5.7.139`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EnhancedCode {
    pub class: u8,
    pub subject: u16,
    pub detail: u16,
}

impl fmt::Display for EnhancedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

/// One complete server reply (all lines of a multi-line reply).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code, 200..=599.
    pub code: u16,
    /// The enhanced status code of the first line, when it carries one.
    pub enhanced: Option<EnhancedCode>,
    /// The text of each line after the code and separator, as sent
    /// (enhanced codes included). Invalid UTF-8 is replaced by U+FFFD.
    pub lines: Vec<String>,
}

impl Reply {
    /// 2xx: the command succeeded.
    pub fn is_positive(&self) -> bool {
        (200..300).contains(&self.code)
    }

    /// 3xx: the server waits for more (354 after DATA, 334 during AUTH).
    pub fn is_intermediate(&self) -> bool {
        (300..400).contains(&self.code)
    }

    /// 4xx: a temporary failure; the same command may succeed later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: a permanent failure.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    /// A one-line reply as the parser would produce it (tests build replies
    /// with this rather than through the parser).
    #[cfg(test)]
    pub(crate) fn single_line(code: u16, text: &str) -> Reply {
        Reply {
            code,
            enhanced: parse_enhanced_prefix(text, code).map(|(enhanced, _)| enhanced),
            lines: vec![text.to_string()],
        }
    }

    /// The reply's text, lines joined by a space, with the enhanced code of
    /// each line left out: what a person wants to read in an error message.
    pub fn message(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let text = match parse_enhanced_prefix(line, self.code) {
                Some((_, rest)) => rest,
                None => line.as_str(),
            };
            // Some servers pad a line ("250- 53 byte chunk, total 53": Exim's
            // BDAT reply); one space between lines is enough.
            let text = text.trim();
            if !out.is_empty() && !text.is_empty() {
                out.push(' ');
            }
            out.push_str(text);
        }
        out
    }
}

impl fmt::Display for Reply {
    /// `550 5.1.1 user unknown` (multi-line replies joined by a space).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if let Some(enhanced) = self.enhanced {
            write!(f, " {enhanced}")?;
        }
        let message = self.message();
        if !message.is_empty() {
            write!(f, " {message}")?;
        }
        Ok(())
    }
}

/// Splits `"5.7.139 text"` into the code and the rest, when the code's class
/// matches the reply's class (RFC 3463: a mismatch means it is just text).
pub(crate) fn parse_enhanced_prefix(line: &str, reply_code: u16) -> Option<(EnhancedCode, &str)> {
    let token_end = line.find(' ').unwrap_or(line.len());
    let mut parts = line[..token_end].split('.');
    let class: u8 = parse_digits(parts.next()?, 1)?;
    let subject: u16 = parse_digits(parts.next()?, 3)?;
    let detail: u16 = parse_digits(parts.next()?, 3)?;
    if parts.next().is_some() || u16::from(class) != reply_code / 100 || !matches!(class, 2 | 4 | 5) {
        return None;
    }
    let rest = line[token_end..].trim_start_matches(' ');
    Some((EnhancedCode { class, subject, detail }, rest))
}

fn parse_digits<T: core::str::FromStr>(s: &str, max_len: usize) -> Option<T> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Bounds on what one reply may occupy, so a hostile or broken server can
/// never make the client buffer without limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyLimits {
    /// Longest reply line, CRLF included. RFC 5321 §4.5.3.1.5 says 512;
    /// real servers exceed it (long EHLO keyword lists, verbose 5xx texts).
    pub max_line_len: usize,
    /// Most lines in one multi-line reply.
    pub max_lines: usize,
    /// Most bytes in one reply, all lines together.
    pub max_reply_len: usize,
}

impl Default for ReplyLimits {
    fn default() -> Self {
        ReplyLimits {
            max_line_len: 4096,
            max_lines: 256,
            max_reply_len: 64 * 1024,
        }
    }
}

/// Why the server's bytes are not a valid reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyError {
    /// A line does not start with a three-digit code in 200..=599 followed by
    /// a space, a hyphen or the end of the line.
    Malformed { line: String },
    /// A continuation line carries another code than the first line.
    CodeMismatch { first: u16, got: u16 },
    /// A line is longer than `ReplyLimits::max_line_len`.
    LineTooLong { limit: usize },
    /// A reply has more lines than `ReplyLimits::max_lines`.
    TooManyLines { limit: usize },
    /// A reply is longer than `ReplyLimits::max_reply_len`.
    ReplyTooLong { limit: usize },
}

impl fmt::Display for ReplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplyError::Malformed { line } => write!(f, "\"{line}\" is not an SMTP reply line"),
            ReplyError::CodeMismatch { first, got } => {
                write!(f, "a multi-line reply that began with {first} continued with {got}")
            }
            ReplyError::LineTooLong { limit } => write!(f, "a reply line is longer than {limit} bytes"),
            ReplyError::TooManyLines { limit } => write!(f, "a reply has more than {limit} lines"),
            ReplyError::ReplyTooLong { limit } => write!(f, "a reply is longer than {limit} bytes"),
        }
    }
}

impl std::error::Error for ReplyError {}

/// An incremental reply parser: feed it whatever arrived, in pieces of any
/// size split at any byte, and it hands back one complete reply at a time.
///
/// It stops after each complete reply and says how many bytes it consumed,
/// so the caller can act on a reply (STARTTLS's 220 above all) before
/// deciding what the rest of the bytes mean.
#[derive(Debug, Clone)]
pub struct ReplyParser {
    limits: ReplyLimits,
    /// The bytes of the current line so far (no line end).
    line: Vec<u8>,
    /// The code and text of the complete lines of the current reply.
    code: Option<u16>,
    lines: Vec<String>,
    reply_len: usize,
}

impl ReplyParser {
    pub fn new(limits: ReplyLimits) -> Self {
        ReplyParser {
            limits,
            line: Vec::new(),
            code: None,
            lines: Vec::new(),
            reply_len: 0,
        }
    }

    /// Consumes bytes up to the end of the first complete reply in `data`
    /// and returns how many were consumed and that reply. When `data` ends
    /// mid-reply, everything is consumed, kept, and `None` is returned.
    ///
    /// After an error the parser's state is unspecified: the connection is over.
    pub fn parse(&mut self, data: &[u8]) -> Result<(usize, Option<Reply>), ReplyError> {
        let mut consumed = 0;
        while consumed < data.len() {
            let rest = &data[consumed..];
            let Some(lf) = memchr::memchr(b'\n', rest) else {
                self.take_partial(rest)?;
                return Ok((data.len(), None));
            };
            self.take_partial(&rest[..lf])?;
            consumed += lf + 1;
            if let Some(reply) = self.end_line()? {
                return Ok((consumed, Some(reply)));
            }
        }
        Ok((consumed, None))
    }

    /// True when part of a reply has arrived but not its end.
    pub fn has_partial(&self) -> bool {
        !self.line.is_empty() || !self.lines.is_empty()
    }

    fn take_partial(&mut self, bytes: &[u8]) -> Result<(), ReplyError> {
        // +2 leaves room for the CRLF the limit counts.
        if self.line.len() + bytes.len() + 2 > self.limits.max_line_len {
            return Err(ReplyError::LineTooLong {
                limit: self.limits.max_line_len,
            });
        }
        if self.reply_len + self.line.len() + bytes.len() > self.limits.max_reply_len {
            return Err(ReplyError::ReplyTooLong {
                limit: self.limits.max_reply_len,
            });
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    /// A line ended (at LF; a CR before it is dropped, a bare LF is
    /// tolerated as many clients do). Returns the reply if it was the last line.
    fn end_line(&mut self) -> Result<Option<Reply>, ReplyError> {
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        self.reply_len += line.len() + 2;
        let (code, last, text) = split_reply_line(&line)?;
        match self.code {
            None => self.code = Some(code),
            Some(first) if first != code => return Err(ReplyError::CodeMismatch { first, got: code }),
            Some(_) => {}
        }
        if self.lines.len() == self.limits.max_lines {
            return Err(ReplyError::TooManyLines {
                limit: self.limits.max_lines,
            });
        }
        self.lines.push(log_safe_text(text));
        if !last {
            return Ok(None);
        }
        let lines = std::mem::take(&mut self.lines);
        self.code = None;
        self.reply_len = 0;
        let enhanced = lines
            .first()
            .and_then(|first| parse_enhanced_prefix(first, code))
            .map(|(e, _)| e);
        Ok(Some(Reply { code, enhanced, lines }))
    }
}

/// `250-text` → (250, false, "text"); `250 text` and `250` → last line.
fn split_reply_line(line: &[u8]) -> Result<(u16, bool, &[u8]), ReplyError> {
    let malformed = || ReplyError::Malformed {
        line: escape_for_log(line, 60),
    };
    if line.len() < 3 || !line[..3].iter().all(u8::is_ascii_digit) || !(b'2'..=b'5').contains(&line[0]) {
        return Err(malformed());
    }
    let code = u16::from(line[0] - b'0') * 100 + u16::from(line[1] - b'0') * 10 + u16::from(line[2] - b'0');
    match line.get(3) {
        None => Ok((code, true, &[])),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(malformed()),
    }
}

/// A reply line's text as it may be shown anywhere: valid UTF-8 as is,
/// control characters (but TAB) and the bidirectional overrides escaped, so
/// a server cannot rewrite what a terminal or log viewer shows
/// (`\r`, `ESC[2K`, U+202E).
fn log_safe_text(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let unsafe_char =
        |c: char| (c.is_control() && c != '\t') || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return text.into_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\r' => out.push_str("\\r"),
            c if unsafe_char(c) && (c as u32) < 0x100 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if unsafe_char(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// Renders bytes from the wire for a log or an error message: printable
/// ASCII as is, everything else escaped (`\r`, `\n`, `\x16`), cut after
/// `max` characters with an ellipsis. Never lets a server inject lines into a log.
pub fn escape_for_log(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    for (i, &b) in bytes.iter().enumerate() {
        if i == max {
            out.push('…');
            break;
        }
        match b {
            b'\r' => out.push_str("\\r"),
            b'\n' => out.push_str("\\n"),
            b'\t' => out.push_str("\\t"),
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parse_all(parser: &mut ReplyParser, mut data: &[u8]) -> Result<Vec<Reply>, ReplyError> {
        let mut replies = Vec::new();
        while !data.is_empty() {
            let (consumed, reply) = parser.parse(data)?;
            replies.extend(reply);
            data = &data[consumed..];
        }
        Ok(replies)
    }

    fn one(data: &str) -> Reply {
        let replies = parse_all(&mut ReplyParser::new(ReplyLimits::default()), data.as_bytes()).unwrap();
        assert_eq!(replies.len(), 1);
        replies.into_iter().next().unwrap()
    }

    #[test]
    fn single_and_multi_line_replies() {
        let r = one("250 2.0.0 Ok: queued as ABC\r\n");
        assert_eq!((r.code, r.lines.len()), (250, 1));
        assert_eq!(
            r.enhanced,
            Some(EnhancedCode {
                class: 2,
                subject: 0,
                detail: 0
            })
        );
        assert_eq!(r.message(), "Ok: queued as ABC");

        let r = one("250-mx.example.com\r\n250-PIPELINING\r\n250 SIZE 1000\r\n");
        assert_eq!(r.lines, vec!["mx.example.com", "PIPELINING", "SIZE 1000"]);
        assert!(r.enhanced.is_none());
        assert_eq!(r.to_string(), "250 mx.example.com PIPELINING SIZE 1000");

        // Exim pads its BDAT reply's first line: still one space between lines.
        let r = one("250- 53 byte chunk, total 53\r\n250 OK id=1vAbcD-000Abc-1x\r\n");
        assert_eq!(r.to_string(), "250 53 byte chunk, total 53 OK id=1vAbcD-000Abc-1x");
    }

    #[test]
    fn bare_code_and_bare_lf_are_accepted() {
        assert_eq!(one("354\r\n").lines, vec![""]);
        assert_eq!(one("220 hi\n").lines, vec!["hi"]);
    }

    #[test]
    fn enhanced_code_class_must_match_the_reply() {
        assert_eq!(
            one("550 5.7.139 no\r\n").enhanced,
            Some(EnhancedCode {
                class: 5,
                subject: 7,
                detail: 139
            })
        );
        assert_eq!(one("550 2.1.0 odd\r\n").enhanced, None);
        assert_eq!(one("250 1.2.3.4 ok\r\n").enhanced, None);
    }

    #[test]
    fn the_parser_stops_after_each_reply() {
        let mut p = ReplyParser::new(ReplyLimits::default());
        let data = b"220 go\r\n250 injected\r\n";
        let (consumed, reply) = p.parse(data).unwrap();
        assert_eq!(consumed, 8);
        assert_eq!(reply.unwrap().code, 220);
        assert!(!p.has_partial());
        p.parse(b"25").unwrap();
        assert!(p.has_partial());
    }

    #[test]
    fn malformed_lines_are_errors() {
        for bad in [
            "hello\r\n",
            "25\r\n",
            "2500 x\r\n",
            "099 x\r\n",
            "650 x\r\n",
            "250_x\r\n",
            "\r\n",
        ] {
            let err = parse_all(&mut ReplyParser::new(ReplyLimits::default()), bad.as_bytes()).unwrap_err();
            assert!(matches!(err, ReplyError::Malformed { .. }), "{bad:?} gave {err:?}");
        }
        let err = parse_all(&mut ReplyParser::new(ReplyLimits::default()), b"250-a\r\n550 b\r\n").unwrap_err();
        assert_eq!(err, ReplyError::CodeMismatch { first: 250, got: 550 });
    }

    #[test]
    fn limits_bound_memory() {
        let limits = ReplyLimits {
            max_line_len: 16,
            max_lines: 3,
            max_reply_len: 40,
        };
        let long = parse_all(&mut ReplyParser::new(limits), &[b'2'; 100]).unwrap_err();
        assert_eq!(long, ReplyError::LineTooLong { limit: 16 });
        let many = parse_all(&mut ReplyParser::new(limits), b"250-a\r\n250-b\r\n250-c\r\n250 d\r\n").unwrap_err();
        assert_eq!(many, ReplyError::TooManyLines { limit: 3 });
        let big = parse_all(
            &mut ReplyParser::new(limits),
            b"250-aaaaaaaaa\r\n250-bbbbbbbbb\r\n250-ccccccccc\r\n",
        )
        .unwrap_err();
        assert_eq!(big, ReplyError::ReplyTooLong { limit: 40 });
    }

    #[test]
    fn control_characters_in_server_text_are_escaped() {
        let r = one("220 mx ESMTP\rS: 250 fake\x1b[2K \u{202e}txt\tok\r\n");
        assert_eq!(r.lines[0], "mx ESMTP\\rS: 250 fake\\x1b[2K \\u{202e}txt\tok");
        assert_eq!(one("250 plain text\r\n").lines[0], "plain text");
    }

    #[test]
    fn log_escaping_keeps_one_line() {
        assert_eq!(escape_for_log(b"250 ok\r\n\x16\x03", 100), "250 ok\\r\\n\\x16\\x03");
        assert_eq!(escape_for_log(b"abcdef", 3), "abc…");
    }

    proptest! {
        /// Any split of the input gives the same replies.
        #[test]
        fn any_split_gives_the_same_replies(
            lines in proptest::collection::vec(("[2-5][0-9][0-9]", "[ -~]{0,40}", 1usize..4), 1..8),
            cuts in proptest::collection::vec(any::<usize>(), 0..10),
        ) {
            let mut wire = Vec::new();
            for (code, text, count) in &lines {
                for i in 0..*count {
                    let sep = if i + 1 == *count { ' ' } else { '-' };
                    wire.extend_from_slice(format!("{code}{sep}{text}\r\n").as_bytes());
                }
            }
            let whole = parse_all(&mut ReplyParser::new(ReplyLimits::default()), &wire).unwrap();
            prop_assert_eq!(whole.len(), lines.len());
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
            points.sort_unstable();
            let mut parser = ReplyParser::new(ReplyLimits::default());
            let mut pieces = Vec::new();
            let mut start = 0;
            for p in points.into_iter().chain([wire.len()]) {
                pieces.extend(parse_all(&mut parser, &wire[start..p]).unwrap());
                start = p;
            }
            prop_assert_eq!(pieces, whole);
        }

        /// Random bytes never panic, and nothing held exceeds the limits.
        #[test]
        fn random_bytes_never_panic_and_stay_bounded(data in proptest::collection::vec(any::<u8>(), 0..4096)) {
            let limits = ReplyLimits { max_line_len: 128, max_lines: 8, max_reply_len: 512 };
            let mut parser = ReplyParser::new(limits);
            let mut rest = &data[..];
            while !rest.is_empty() {
                match parser.parse(rest) {
                    Ok((consumed, reply)) => {
                        prop_assert!(consumed > 0);
                        if let Some(reply) = reply {
                            prop_assert!(reply.lines.len() <= 8);
                            prop_assert!(reply.lines.iter().map(|l| l.len()).sum::<usize>() <= 512 * 3);
                        }
                        prop_assert!(parser.line.len() <= 128);
                        rest = &rest[consumed..];
                    }
                    Err(_) => break,
                }
            }
        }
    }
}
