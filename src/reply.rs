//! Server replies: the `Reply` value and an incremental, bounded parser.

use core::fmt;

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

    /// The reply's text, lines joined by a space, with the enhanced code of
    /// each line left out: what a person wants to read in an error message.
    pub fn message(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            let text = match parse_enhanced_prefix(line, self.code) {
                Some((_, rest)) => rest,
                None => line.as_str(),
            };
            if !out.is_empty() && !text.is_empty() {
                out.push(' ');
            }
            out.push_str(text.trim_end());
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
