//! Header fields: names and values checked, non-ASCII text put in RFC 2047
//! encoded-words (and RFC 2231 for file names), lines folded to 78 columns.
//!
//! A header is assembled as a list of *pieces*. A fold (CRLF) may be put
//! before any piece that starts with a space or tab, and nowhere else, so
//! unfolding (deleting each CRLF) gives back exactly the value that was
//! assembled. Pieces are cut so that each continuation line starts with one
//! whitespace character followed by text: a line of only whitespace is
//! never produced.

use crate::address::{Mailbox, quote};
use crate::error::{Phase, SmtpError};

/// RFC 5322 §2.1.1: lines SHOULD be at most 78 characters.
pub const MAX_HEADER_LINE: usize = 78;
/// RFC 2047 §2: an encoded-word is at most 75 characters.
const MAX_ENCODED_WORD: usize = 75;
/// The smallest encoded-word that fits any one character (12 characters of
/// `=?UTF-8?Q?` and `?=` around a 4-byte character escaped as `=XX` ×4).
const MIN_ENCODED_WORD: usize = 24;
/// An unbroken run of ASCII longer than this cannot stay as it is without
/// risking the 998-octet line limit, so it goes into encoded-words, which
/// can be folded.
const MAX_PLAIN_RUN: usize = 900;
/// Longest header name accepted: with ": " it still fits a 78-column line.
const MAX_FIELD_NAME: usize = 76;
/// Longest RFC 2231 continuation value, keeping each parameter on a short line.
const MAX_RFC2231_SEGMENT: usize = 60;
/// Longest parameter value written as one quoted string (leaves room for
/// `filename="…";` on a 78-column line).
const MAX_QUOTED_PARAM: usize = 60;

/// Headers the builder writes itself, with the field that sets each one.
const RESERVED_HEADERS: &[(&str, &str)] = &[
    ("from", "set it with the from field."),
    ("to", "set it with the to field."),
    ("cc", "set it with the cc field."),
    (
        "bcc",
        "set it with the bcc field; Bcc addresses go in the envelope and never in the headers.",
    ),
    ("reply-to", "set it with the replyTo field."),
    ("subject", "set it with the subject field."),
    ("sender", "set it with the sender field."),
    ("in-reply-to", "set it with the inReplyTo field."),
    ("references", "set it with the references field."),
    (
        "date",
        "the Date header is written from the time passed to the builder.",
    ),
    ("message-id", "set it with the messageId field."),
    ("mime-version", "the builder writes MIME-Version itself."),
    (
        "content-type",
        "the builder writes Content-Type from the text, html and attachments given.",
    ),
    (
        "content-transfer-encoding",
        "the builder chooses the transfer encoding of every part itself.",
    ),
    ("content-disposition", "set the disposition on the attachment instead."),
    ("content-id", "set cid on the attachment instead."),
];

/// One header field being assembled, see the module documentation.
#[derive(Debug, Clone)]
pub struct Header {
    name: String,
    pieces: Vec<String>,
}

impl Header {
    pub fn new(name: &str) -> Self {
        Header {
            name: name.to_string(),
            pieces: Vec::new(),
        }
    }

    /// A header whose value is a single unbreakable piece, like `MIME-Version: 1.0`.
    pub fn simple(name: &str, value: &str) -> String {
        let mut header = Header::new(name);
        header.push(format!(" {value}"));
        header.render()
    }

    /// Adds a piece; a fold may go before it if it starts with whitespace.
    pub fn push(&mut self, piece: String) {
        self.pieces.push(piece);
    }

    /// Adds text preceded by a space, with a fold allowed at each point
    /// where whitespace is followed by text.
    pub fn push_text(&mut self, text: &str) {
        self.pieces.extend(folding_pieces(&format!(" {text}")));
    }

    /// Adds a MIME parameter: `;` after what is there, then ` param`.
    pub fn push_param(&mut self, param: &str) {
        if let Some(last) = self.pieces.last_mut() {
            last.push(';');
        }
        self.push_text(param);
    }

    /// Appends to the last piece (a separator such as `,`).
    fn append(&mut self, text: &str) {
        if let Some(last) = self.pieces.last_mut() {
            last.push_str(text);
        }
    }

    /// The header line(s), CRLF included. A fold goes before a piece when
    /// the line would pass 78 characters and already holds some of the value.
    pub fn render(&self) -> String {
        let capacity = self.name.len() + self.pieces.iter().map(|p| p.len() + 2).sum::<usize>() + 3;
        let mut out = String::with_capacity(capacity);
        out.push_str(&self.name);
        out.push(':');
        let mut line_len = out.len();
        let mut line_has_value = false;
        for piece in &self.pieces {
            let foldable = piece.starts_with([' ', '\t']);
            if foldable && line_has_value && line_len + piece.len() > MAX_HEADER_LINE {
                out.push_str("\r\n");
                line_len = 0;
            }
            out.push_str(piece);
            line_len += piece.len();
            line_has_value = true;
        }
        out.push_str("\r\n");
        out
    }
}

/// Splits `text` before the last whitespace character of every run that is
/// followed by text. Each piece but the first starts with exactly that
/// character and goes on with text, so a fold never leaves a blank line.
fn folding_pieces(text: &str) -> Vec<String> {
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let mut start = 0;
    for i in 1..bytes.len().saturating_sub(1) {
        let here_is_space = matches!(bytes[i], b' ' | b'\t');
        let next_is_text = !matches!(bytes[i + 1], b' ' | b'\t');
        if here_is_space && next_is_text && i > start {
            pieces.push(text[start..i].to_string());
            start = i;
        }
    }
    pieces.push(text[start..].to_string());
    pieces
}

/// Checks a user header name: 1 to 76 printable ASCII characters without
/// `:` (RFC 5322 ftext), and not one the builder writes itself.
pub fn check_field_name(name: &str) -> Result<(), SmtpError> {
    check_name_syntax(name)?;
    let lower = name.to_ascii_lowercase();
    if let Some((_, hint)) = RESERVED_HEADERS.iter().find(|(reserved, _)| *reserved == lower) {
        return Err(SmtpError::input(
            Phase::Data,
            format!("the header {name} cannot be set through headers: the message builder writes it."),
        )
        .with_hint(*hint));
    }
    Ok(())
}

fn check_name_syntax(name: &str) -> Result<(), SmtpError> {
    let valid_chars = name.bytes().all(|b| matches!(b, b'!'..=b'~') && b != b':');
    if name.is_empty() || name.len() > MAX_FIELD_NAME || !valid_chars {
        return Err(SmtpError::input(
            Phase::Data,
            format!("the header name {} is not a valid header field name.", quote(name)),
        )
        .with_hint("a header name is 1 to 76 printable ASCII characters without spaces or ':', like X-Tag."));
    }
    Ok(())
}

/// Headers of a body part the builder writes itself.
const RESERVED_PART_HEADERS: &[&str] = &[
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-id",
    "mime-version",
];

/// Checks the name of a header given for attachment `index`: a valid field
/// name, and not one of the Content-* headers set through the attachment's
/// own fields.
pub fn check_part_field_name(name: &str, index: usize) -> Result<(), SmtpError> {
    check_name_syntax(name)?;
    if RESERVED_PART_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(SmtpError::input(
            Phase::Data,
            format!(
                "the header {name} of attachment {index} cannot be set through headers: the message builder writes it."
            ),
        )
        .with_hint("set contentType, contentDisposition or cid on the attachment instead."));
    }
    Ok(())
}

/// Longest display name, in characters: real names are short; a longer one
/// is a mistake or an attempt to bloat or obscure the header.
pub const MAX_DISPLAY_NAME: usize = 256;
/// Longest subject, in characters (one RFC 5322 line's worth).
pub const MAX_SUBJECT: usize = 998;
/// Longest attachment filename, in characters (what file systems allow).
pub const MAX_FILENAME: usize = 255;
/// Longest value of a user header, in bytes (room for long References).
pub const MAX_HEADER_VALUE: usize = 8 * 1024;

/// Refuses a value longer than `max` (characters, or bytes for
/// `in_bytes`): over-long input is refused, never silently cut.
pub fn check_length(what: &str, value: &str, max: usize, in_bytes: bool) -> Result<(), SmtpError> {
    let length = if in_bytes { value.len() } else { value.chars().count() };
    if length <= max {
        return Ok(());
    }
    let unit = if in_bytes { "bytes" } else { "characters" };
    Err(SmtpError::input(
        Phase::Data,
        format!("{what} is {length} {unit} long; wasmtp accepts at most {max}."),
    )
    .with_hint("shorten it; a value this long is almost always a mistake (a whole text pasted into a header field)."))
}

/// Refuses control characters (tab excepted) in a value that goes into a
/// header: a CR or LF there would end the header and start another one.
pub fn check_header_text(what: &str, value: &str) -> Result<(), SmtpError> {
    let Some(c) = value.chars().find(|&c| c.is_control() && c != '\t') else {
        return Ok(());
    };
    let (problem, hint) = if c == '\r' || c == '\n' {
        (
            "contains a line break (CR or LF), which would inject header lines into the message",
            "remove the line break; values taken from forms must be trimmed and checked before use.",
        )
    } else {
        (
            "contains a control character, which has no place in a header",
            "remove control characters from the value.",
        )
    };
    Err(SmtpError::input(Phase::Data, format!("{what} {} {problem}.", quote(value))).with_hint(hint))
}

/// An unstructured header (Subject, user headers): kept as it is when it is
/// plain ASCII, otherwise written as encoded-words. The value must have
/// passed [`check_header_text`].
pub fn unstructured(name: &str, value: &str) -> String {
    let mut header = Header::new(name);
    if needs_encoded_words(value) {
        push_encoded_words(&mut header, value, MAX_HEADER_LINE.saturating_sub(name.len() + 2));
    } else if !value.is_empty() {
        header.push_text(value);
    }
    header.render()
}

/// Text that cannot be written as it is: non-ASCII, an unbreakable run too
/// long for a line, or something a reader would take for an encoded-word.
fn needs_encoded_words(text: &str) -> bool {
    !text.is_ascii() || text.contains("=?") || text.split([' ', '\t']).any(|run| run.len() > MAX_PLAIN_RUN)
}

fn push_encoded_words(header: &mut Header, text: &str, first_room: usize) {
    for word in encoded_words(text, first_room) {
        header.push(format!(" {word}"));
    }
}

/// An address header (From, To, Cc, Reply-To) listing `mailboxes`.
pub fn address_list(name: &str, mailboxes: &[Mailbox]) -> String {
    let mut header = Header::new(name);
    for (i, mailbox) in mailboxes.iter().enumerate() {
        if i > 0 {
            header.append(",");
        }
        if let Some(display) = &mailbox.name {
            push_display_name(&mut header, display, MAX_HEADER_LINE.saturating_sub(name.len() + 2));
            header.push(format!(" <{}>", mailbox.address));
        } else {
            header.push(format!(" {}", mailbox.address));
        }
    }
    header.render()
}

/// A display name as an RFC 5322 phrase: bare words when it is made of
/// atoms, a quoted string when it has other ASCII, encoded-words otherwise.
fn push_display_name(header: &mut Header, name: &str, first_room: usize) {
    if needs_encoded_words(name) {
        push_encoded_words(header, name, first_room);
    } else if is_plain_phrase(name) {
        header.push_text(name);
    } else {
        header.push_text(&quote_string(name));
    }
}

/// Atoms (RFC 5322 atext) separated by single spaces.
fn is_plain_phrase(name: &str) -> bool {
    !name.is_empty()
        && name.split(' ').all(|word| {
            !word.is_empty()
                && word
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b))
        })
}

/// `"value"` with `"` and `\` escaped.
pub fn quote_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The `filename` parameter of Content-Disposition: a quoted string for
/// printable ASCII, RFC 2231 (`filename*=utf-8''...`, split into numbered
/// continuations when long) for anything else.
pub fn filename_params(filename: &str) -> Vec<String> {
    if fits_quoted_param(filename) {
        vec![format!("filename={}", quote_string(filename))]
    } else {
        rfc2231_params("filename", filename)
    }
}

/// The `name` parameter of Content-Type, for readers that ignore the
/// disposition's filename: a quoted string, or quoted RFC 2047
/// encoded-words. Not standard, but what mail clients write and read.
pub fn name_param(filename: &str) -> String {
    if fits_quoted_param(filename) {
        format!("name={}", quote_string(filename))
    } else {
        // Encoded-words hold no `"` or `\`, so quoting them needs no escapes.
        let first_room = MAX_ENCODED_WORD - "name=\"".len();
        format!("name=\"{}\"", encoded_words(filename, first_room).join(" "))
    }
}

/// A parameter value that can be one quoted string on a folded line; longer
/// ones are split (RFC 2231 continuations, encoded-words), since a quoted
/// string cannot be folded.
fn fits_quoted_param(value: &str) -> bool {
    value.len() <= MAX_QUOTED_PARAM && is_quotable(value)
}

/// Printable ASCII that no reader would mistake for encoded-words.
fn is_quotable(value: &str) -> bool {
    value.len() <= MAX_PLAIN_RUN && value.bytes().all(|b| matches!(b, b' '..=b'~')) && !value.contains("=?")
}

/// RFC 2231 §3-4: percent-encoded UTF-8, in continuations short enough for
/// a folded line. A character is never split between two continuations,
/// since some readers decode each one on its own.
fn rfc2231_params(attribute: &str, value: &str) -> Vec<String> {
    let mut segments = vec![String::from("utf-8''")];
    for c in value.chars() {
        let mut encoded = String::new();
        let mut buf = [0u8; 4];
        for &byte in c.encode_utf8(&mut buf).as_bytes() {
            if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
                encoded.push(char::from(byte));
            } else {
                encoded.push_str(&format!("%{byte:02X}"));
            }
        }
        let current = segments.last_mut();
        match current {
            Some(segment) if segment.len() + encoded.len() <= MAX_RFC2231_SEGMENT => segment.push_str(&encoded),
            _ => segments.push(encoded),
        }
    }
    if segments.len() == 1 {
        return vec![format!("{attribute}*={}", segments[0])];
    }
    segments
        .iter()
        .enumerate()
        .map(|(i, segment)| format!("{attribute}*{i}*={segment}"))
        .collect()
}

/// How an encoded-word spells its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WordEncoding {
    /// `Q`: readable when the text is mostly ASCII.
    Q,
    /// `B`: base64, shorter for mostly non-ASCII text.
    B,
}

/// Characters a `Q` encoded-word may carry as themselves in any header,
/// phrases included (RFC 2047 §5 rule 3, the strictest context).
fn is_q_literal(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!*+-/".contains(&byte)
}

fn q_width(byte: u8) -> usize {
    if is_q_literal(byte) || byte == b' ' { 1 } else { 3 }
}

/// Q while most characters are ASCII, so the raw header stays readable;
/// B for mostly non-ASCII text, where Q would triple most bytes.
fn choose_word_encoding(text: &str) -> WordEncoding {
    let chars = text.chars().count();
    let non_ascii = text.chars().filter(|c| !c.is_ascii()).count();
    if non_ascii * 2 < chars {
        WordEncoding::Q
    } else {
        WordEncoding::B
    }
}

/// RFC 2047 encoded-words (`=?UTF-8?Q?...?=` or `=?UTF-8?B?...?=`) for
/// `text`, each at most 75 characters (the first at most `first_room`, to
/// share its line with the header name) and never splitting a character.
/// Whitespace between adjacent encoded-words is ignored by readers, so the
/// words can be joined with spaces and folded freely.
pub fn encoded_words(text: &str, first_room: usize) -> Vec<String> {
    const OVERHEAD: usize = "=?UTF-8?Q??=".len();
    let encoding = choose_word_encoding(text);
    let mut room = first_room.clamp(MIN_ENCODED_WORD, MAX_ENCODED_WORD) - OVERHEAD;
    let mut words = Vec::new();
    let mut start = 0;
    let mut q_len = 0;
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        let char_q_len: usize = text.as_bytes()[i..end].iter().map(|&b| q_width(b)).sum();
        let payload_len = match encoding {
            WordEncoding::Q => q_len + char_q_len,
            WordEncoding::B => (end - start).div_ceil(3) * 4,
        };
        if payload_len > room && i > start {
            words.push(encoded_word(&text[start..i], encoding));
            start = i;
            q_len = 0;
            room = MAX_ENCODED_WORD - OVERHEAD;
        }
        q_len += char_q_len;
    }
    if start < text.len() {
        words.push(encoded_word(&text[start..], encoding));
    }
    words
}

fn encoded_word(text: &str, encoding: WordEncoding) -> String {
    match encoding {
        WordEncoding::B => format!("=?UTF-8?B?{}?=", crate::base64::encode(text)),
        WordEncoding::Q => {
            let mut word = String::from("=?UTF-8?Q?");
            for byte in text.bytes() {
                match byte {
                    b' ' => word.push('_'),
                    b if is_q_literal(b) => word.push(char::from(b)),
                    b => word.push_str(&format!("={b:02X}")),
                }
            }
            word.push_str("?=");
            word
        }
    }
}

/// Decoding, for tests: enough of RFC 5322 and RFC 2047 to read back what
/// this module writes.
#[cfg(test)]
pub(crate) mod testing {
    use ::base64::Engine as _;
    use ::base64::engine::general_purpose::STANDARD as BASE64;

    /// Removes folds: each CRLF followed by whitespace.
    pub fn unfold(raw: &str) -> String {
        raw.strip_suffix("\r\n").unwrap_or(raw).replace("\r\n", "")
    }

    /// Splits a rendered header into its name and raw (still encoded) value,
    /// dropping the single space written after the colon.
    pub fn split_header(raw: &str) -> (String, String) {
        let unfolded = unfold(raw);
        let (name, value) = unfolded.split_once(':').unwrap();
        (name.to_string(), value.strip_prefix(' ').unwrap_or(value).to_string())
    }

    /// Decodes the encoded-words in an unstructured value; whitespace
    /// between two adjacent encoded-words is dropped (RFC 2047 §6.2).
    pub fn decode_words(value: &str) -> String {
        let mut out = String::new();
        let mut pending_space = String::new();
        let mut previous_was_word = false;
        let mut rest = value;
        while !rest.is_empty() {
            let space_len = rest.len() - rest.trim_start_matches([' ', '\t']).len();
            if space_len > 0 {
                pending_space = rest[..space_len].to_string();
                rest = &rest[space_len..];
                continue;
            }
            let token_len = rest.find([' ', '\t']).unwrap_or(rest.len());
            let token = &rest[..token_len];
            rest = &rest[token_len..];
            match decode_word(token) {
                Some(decoded) => {
                    if !previous_was_word {
                        out.push_str(&pending_space);
                    }
                    out.push_str(&decoded);
                    previous_was_word = true;
                }
                None => {
                    out.push_str(&pending_space);
                    out.push_str(token);
                    previous_was_word = false;
                }
            }
            pending_space.clear();
        }
        out.push_str(&pending_space);
        out
    }

    /// One `=?charset?enc?text?=`, which must hold whole UTF-8 characters.
    pub fn decode_word(token: &str) -> Option<String> {
        let inner = token.strip_prefix("=?")?.strip_suffix("?=")?;
        let mut parts = inner.splitn(3, '?');
        let (charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
        assert!(charset.eq_ignore_ascii_case("utf-8"));
        let bytes = match encoding {
            "B" | "b" => BASE64.decode(text).unwrap(),
            "Q" | "q" => decode_q(text),
            _ => return None,
        };
        Some(String::from_utf8(bytes).expect("an encoded-word split a character"))
    }

    fn decode_q(text: &str) -> Vec<u8> {
        let bytes = text.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'_' => out.push(b' '),
                b'=' => {
                    out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                    i += 2;
                }
                b => out.push(b),
            }
            i += 1;
        }
        out
    }

    /// A MIME parameter's value, from a Content-Type or Content-Disposition
    /// value: plain, quoted (with encoded-words decoded), or RFC 2231
    /// (single or continued).
    pub fn param(header_value: &str, attribute: &str) -> Option<String> {
        let params = split_params(header_value);
        let lookup = |key: &str| {
            params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
        };
        if let Some(value) = lookup(attribute) {
            return Some(decode_words(&unquote(&value)));
        }
        if let Some(value) = lookup(&format!("{attribute}*")) {
            return Some(percent_decode(value.split_once("''")?.1));
        }
        let mut joined = String::new();
        for i in 0.. {
            match lookup(&format!("{attribute}*{i}*")) {
                Some(segment) => joined.push_str(&segment),
                None => break,
            }
        }
        (!joined.is_empty()).then(|| percent_decode(joined.split_once("''").unwrap().1))
    }

    fn split_params(value: &str) -> Vec<(String, String)> {
        let mut params = Vec::new();
        let (mut current, mut quoted, mut escaped) = (String::new(), false, false);
        for c in value.chars().chain([';']) {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                ';' if !quoted => {
                    if let Some((k, v)) = current.split_once('=') {
                        params.push((k.trim().to_string(), v.trim().to_string()));
                    }
                    current.clear();
                    continue;
                }
                _ => {}
            }
            current.push(c);
        }
        params
    }

    pub fn unquote(value: &str) -> String {
        let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else {
            return value.to_string();
        };
        let mut out = String::new();
        let mut chars = inner.chars();
        while let Some(c) = chars.next() {
            out.push(if c == '\\' { chars.next().unwrap() } else { c });
        }
        out
    }

    fn percent_decode(text: &str) -> String {
        let mut out = Vec::new();
        let mut i = 0;
        while i < text.len() {
            if text.as_bytes()[i] == b'%' {
                out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(text.as_bytes()[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;
    use crate::error::ErrorCode;
    use proptest::prelude::*;

    fn assert_lines_fit(rendered: &str, limit: usize) {
        assert!(rendered.ends_with("\r\n"));
        for line in rendered.strip_suffix("\r\n").unwrap().split("\r\n") {
            assert!(line.len() <= limit, "line of {} > {limit}: {line:?}", line.len());
            assert!(!line.contains(['\r', '\n']));
            assert!(!line.trim().is_empty(), "blank continuation line in {rendered:?}");
        }
    }

    fn mailbox(name: Option<&str>, address: &str) -> Mailbox {
        Mailbox {
            name: name.map(str::to_string),
            address: address.to_string(),
        }
    }

    #[test]
    fn ascii_subject_is_written_as_is_and_folded_at_spaces() {
        assert_eq!(unstructured("Subject", "Hi there"), "Subject: Hi there\r\n");
        let long = "word ".repeat(40);
        let rendered = unstructured("Subject", long.trim_end());
        assert_lines_fit(&rendered, MAX_HEADER_LINE);
        assert_eq!(split_header(&rendered).1, long.trim_end());
    }

    #[test]
    fn utf8_subject_becomes_encoded_words() {
        let rendered = unstructured("Subject", "Grüße aus Köln");
        assert_eq!(rendered, "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n");
        let rendered = unstructured("Subject", "日本語のメール");
        assert!(rendered.starts_with("Subject: =?UTF-8?B?"), "{rendered}");
        assert_eq!(decode_words(&split_header(&rendered).1), "日本語のメール");
    }

    #[test]
    fn text_that_looks_like_an_encoded_word_is_encoded() {
        let rendered = unstructured("Subject", "literally =?UTF-8?Q?x?=");
        assert_eq!(decode_words(&split_header(&rendered).1), "literally =?UTF-8?Q?x?=");
        assert!(
            rendered.starts_with("Subject: =?UTF-8?Q?literally_=3D=3FUTF-8=3FQ=3Fx=3F=3D?="),
            "{rendered}"
        );
    }

    #[test]
    fn long_unbroken_ascii_run_is_encoded_to_stay_under_998() {
        let run = "x".repeat(2000);
        let rendered = unstructured("X-Long", &run);
        assert_lines_fit(&rendered, MAX_HEADER_LINE);
        assert_eq!(decode_words(&split_header(&rendered).1), run);
        // A long URL is kept as it is, on a line of its own.
        let url = format!("<https://example.com/{}>", "u".repeat(200));
        let rendered = unstructured("List-Unsubscribe", &url);
        assert_eq!(split_header(&rendered).1, url);
    }

    #[test]
    fn empty_value_writes_just_the_name() {
        assert_eq!(unstructured("X-Empty", ""), "X-Empty:\r\n");
    }

    #[test]
    fn display_names_are_atoms_quoted_or_encoded() {
        let list = [
            mailbox(Some("Ann Lee"), "ann@example.com"),
            mailbox(Some("Lee, Bob \"B\""), "bob@example.com"),
            mailbox(None, "c@example.com"),
            mailbox(Some("José Müller"), "jose@example.com"),
        ];
        let rendered = address_list("To", &list);
        assert_lines_fit(&rendered, MAX_HEADER_LINE);
        assert_eq!(
            unfold(&rendered),
            "To: Ann Lee <ann@example.com>, \"Lee, Bob \\\"B\\\"\" <bob@example.com>, c@example.com, \
             =?UTF-8?Q?Jos=C3=A9_M=C3=BCller?= <jose@example.com>"
        );
    }

    #[test]
    fn dots_in_a_name_need_quotes() {
        let rendered = address_list("From", &[mailbox(Some("John Q. Public"), "j@example.com")]);
        assert_eq!(rendered, "From: \"John Q. Public\" <j@example.com>\r\n");
    }

    #[test]
    fn many_addresses_fold_between_mailboxes() {
        let list: Vec<Mailbox> = (0..20)
            .map(|i| mailbox(Some("Someone"), &format!("user{i}@example.com")))
            .collect();
        let rendered = address_list("Cc", &list);
        assert_lines_fit(&rendered, MAX_HEADER_LINE);
        assert_eq!(unfold(&rendered).matches(", ").count(), 19);
    }

    #[test]
    fn field_names_are_checked() {
        check_field_name("X-Tag").unwrap();
        check_field_name("List-Unsubscribe").unwrap();
        for bad in ["", "X Tag", "X:Tag", "X-Tägg", "X-\r\nBcc", &"X".repeat(77)] {
            assert_eq!(check_field_name(bad).unwrap_err().code, ErrorCode::Input, "{bad:?}");
        }
    }

    #[test]
    fn structural_headers_are_reserved_in_any_case() {
        for name in [
            "Content-Type",
            "content-transfer-encoding",
            "MIME-Version",
            "BCC",
            "From",
            "Message-ID",
        ] {
            let err = check_field_name(name).unwrap_err();
            assert_eq!(err.code, ErrorCode::Input);
            assert!(err.hint.is_some());
        }
    }

    #[test]
    fn line_breaks_in_values_are_refused() {
        for bad in ["v\r\nBcc: evil@example.com", "v\nX: y", "v\r", "nul\0"] {
            let err = check_header_text("the header value", bad).unwrap_err();
            assert_eq!(err.code, ErrorCode::Input);
            assert!(!err.message.contains('\n') && !err.message.contains('\r'));
        }
        check_header_text("the header value", "tab\tis fine").unwrap();
    }

    #[test]
    fn ascii_filenames_are_quoted() {
        assert_eq!(filename_params("report 2024.pdf"), ["filename=\"report 2024.pdf\""]);
        assert_eq!(name_param("a\"b.txt"), "name=\"a\\\"b.txt\"");
    }

    #[test]
    fn non_ascii_filenames_use_rfc2231_and_an_encoded_name() {
        assert_eq!(filename_params("résumé.pdf"), ["filename*=utf-8''r%C3%A9sum%C3%A9.pdf"]);
        let long = "Überweisungsbestätigung für das Geschäftsjahr 2024 (endgültig).pdf";
        let params = filename_params(long);
        assert!(params.len() > 1);
        assert!(params[0].starts_with("filename*0*=utf-8''"));
        let value = format!("attachment; {}", params.join("; "));
        assert_eq!(param(&value, "filename").unwrap(), long);
        let name = name_param(long);
        assert_eq!(param(&format!("application/pdf; {name}"), "name").unwrap(), long);
    }

    proptest! {
        #[test]
        fn arbitrary_subjects_round_trip(subject in "[^\\p{Cc}]*|[ a-zA-Z=?_]{0,200}") {
            let rendered = unstructured("Subject", &subject);
            prop_assert!(rendered.is_ascii());
            assert_lines_fit(&rendered, 998);
            if needs_encoded_words(&subject) {
                assert_lines_fit(&rendered, MAX_HEADER_LINE);
            }
            prop_assert_eq!(decode_words(&split_header(&rendered).1), subject);
        }

        #[test]
        fn arbitrary_display_names_round_trip(name in "[^\\p{Cc}]{1,120}") {
            let rendered = address_list("From", &[mailbox(Some(&name), "a@example.com")]);
            prop_assert!(rendered.is_ascii());
            assert_lines_fit(&rendered, 998);
            let value = split_header(&rendered).1;
            let phrase = value.strip_suffix(" <a@example.com>").unwrap();
            let decoded = if phrase.starts_with('"') { unquote(phrase) } else { decode_words(phrase) };
            prop_assert_eq!(decoded, name);
        }

        #[test]
        fn arbitrary_filenames_round_trip(filename in "[^\\p{Cc}]{1,200}") {
            let disposition = format!("attachment; {}", filename_params(&filename).join("; "));
            prop_assert_eq!(param(&disposition, "filename").unwrap(), filename.clone());
            let content_type = format!("application/octet-stream; {}", name_param(&filename));
            prop_assert_eq!(param(&content_type, "name").unwrap(), filename);
        }
    }
}
