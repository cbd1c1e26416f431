//! Addresses and other user input that ends up inside SMTP commands.
//!
//! Everything here is a guard as much as a parser: a value that reaches
//! `MAIL FROM:<...>`, `RCPT TO:<...>` or `EHLO ...` is written between fixed
//! text on a line of its own, so a CR or LF in it would let the caller (or
//! whoever filled in a web form) inject whole commands. Control characters
//! are therefore refused everywhere, before any other check, and every error
//! quotes the offending value with its controls escaped so the log line
//! itself cannot be forged.

use crate::error::{Phase, SmtpError};
use core::fmt::{self, Write as _};

/// A parsed mailbox: an optional display name and an envelope address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

/// Whether an address can be sent as is or needs the SMTPUTF8 extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressKind {
    /// Plain ASCII: any server accepts it.
    Ascii,
    /// Contains UTF-8 (RFC 6531): the server must offer SMTPUTF8.
    Utf8,
}

/// RFC 5321 §4.5.3.1.1.
const MAX_LOCAL_PART: usize = 64;
/// RFC 5321 §4.5.3.1.3: the path, angle brackets included, is at most 256.
const MAX_PATH: usize = 256;
/// RFC 1035 §2.3.4 (and RFC 5321 §4.5.3.1.2).
const MAX_DOMAIN: usize = 255;
const MAX_LABEL: usize = 63;
/// How much of a value an error message shows before cutting it short.
const QUOTE_MAX_CHARS: usize = 80;

/// Quotes `value` for an error message: wrapped in double quotes, controls
/// escaped (`\r`, `\n`, `\0`, `\t`, `\xNN`, `\u{NNNN}`), quotes and
/// backslashes escaped, Unicode bidi overrides escaped (they can reorder a
/// log line), and cut after 80 characters.
pub(crate) fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len().min(QUOTE_MAX_CHARS * 2) + 2);
    out.push('"');
    for (count, c) in value.chars().enumerate() {
        if count == QUOTE_MAX_CHARS {
            let _ = write!(out, "\"… ({} bytes in all)", value.len());
            return out;
        }
        match c {
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\0' => out.push_str("\\0"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_control() => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            // Invisible or reordering characters would hide what the value is.
            c if c.is_control() || is_bidi_control(c) || (c.is_whitespace() && c != ' ') => {
                let _ = write!(out, "\\u{{{:04X}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Unicode bidirectional formatting characters (embeddings, overrides and
/// isolates), which reorder the text displayed around them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// What is being checked, for error messages: `the address "..."`.
struct Subject<'a> {
    phase: Phase,
    /// "the address", "the EHLO name"...
    label: &'a str,
    /// Noun phrase for the injection warning: "an address".
    noun: &'a str,
    value: &'a str,
}

impl Subject<'_> {
    fn error(&self, problem: impl fmt::Display, hint: impl Into<String>) -> SmtpError {
        SmtpError::input(self.phase, format!("{} {} {problem}.", self.label, quote(self.value))).with_hint(hint.into())
    }

    /// Refuses every control character. Runs first so that no later message
    /// ever has to talk about a value that could still carry a line break.
    fn check_controls(&self) -> Result<(), SmtpError> {
        let Some(c) = self.value.chars().find(|c| c.is_control()) else {
            return Ok(());
        };
        Err(match c {
            '\r' | '\n' => self.error(
                format_args!(
                    "contains a line break (CR or LF); line breaks in {} would inject SMTP commands",
                    self.noun
                ),
                "remove the line break; values taken from forms or headers must be trimmed and checked before use.",
            ),
            '\0' => self.error(
                format_args!(
                    "contains a NUL character (\\0), which is never allowed in {}",
                    self.noun
                ),
                "remove the NUL; it usually comes from a C string or a binary field read as text.",
            ),
            c => self.error(
                format_args!(
                    "contains the control character {}, which is not allowed in {}",
                    escape_char(c),
                    self.noun
                ),
                "remove control characters (tabs included) from the value.",
            ),
        })
    }
}

/// One character as it appears inside `quote`, for messages that name it.
fn escape_char(c: char) -> String {
    let mut buf = [0u8; 4];
    let quoted = quote(c.encode_utf8(&mut buf));
    quoted[1..quoted.len() - 1].to_string()
}

/// Validates an envelope address (RFC 5321 §4.1.2 Mailbox with RFC 6531
/// UTF-8): dot-string or quoted local part (≤ 64 octets), domain of LDH
/// labels (UTF-8 labels allowed, each ≤ 63, total ≤ 255) or an address
/// literal [1.2.3.4] / [IPv6:...]; whole path ≤ 256. Returns whether it
/// needs SMTPUTF8.
///
/// Label and domain lengths are measured in their DNS (A-label) form, so a
/// UTF-8 label is counted as its Punycode encoding plus "xn--".
pub fn validate_address(address: &str, phase: Phase) -> Result<AddressKind, SmtpError> {
    let subject = Subject {
        phase,
        label: "the address",
        noun: "an address",
        value: address,
    };
    subject.check_controls()?;
    if address.is_empty() {
        return Err(subject.error(
            "is empty",
            "give an address such as name@example.com; a null reverse-path (<>) is only for MAIL FROM of bounces.",
        ));
    }
    if address.len() + 2 > MAX_PATH {
        return Err(subject.error(
            format_args!(
                "is {} bytes; SMTP allows at most {} for an address",
                address.len(),
                MAX_PATH - 2
            ),
            "check that the value is a single address and not a list or a whole header.",
        ));
    }
    let (local, domain) = split_address(&subject)?;
    check_local_part(&subject, local)?;
    if domain.is_empty() {
        return Err(subject.error(
            "has an empty domain after @",
            "write the full address, e.g. name@example.com.",
        ));
    }
    check_domain(&subject, domain, true)?;
    Ok(if address.is_ascii() {
        AddressKind::Ascii
    } else {
        AddressKind::Utf8
    })
}

/// Splits at the @ that ends the local part, which for a quoted local part
/// is the one right after the closing quote (a quoted local part may itself
/// contain @).
fn split_address<'a>(subject: &Subject<'a>) -> Result<(&'a str, &'a str), SmtpError> {
    let address = subject.value;
    let local_end = if address.starts_with('"') {
        quoted_string_end(address).ok_or_else(|| unterminated_quote(subject))?
    } else {
        match address.find('@') {
            Some(at) => at,
            None => {
                return Err(subject.error("has no @", "an address looks like name@example.com."));
            }
        }
    };
    let rest = &address[local_end..];
    match rest.strip_prefix('@') {
        Some(domain) => Ok((&address[..local_end], domain)),
        None if rest.is_empty() => Err(subject.error("has no @", "an address looks like name@example.com.")),
        None => Err(subject.error(
            "has text between the closing quote of the local part and the @",
            "an address with a quoted local part looks like \"first last\"@example.com.",
        )),
    }
}

fn unterminated_quote(subject: &Subject<'_>) -> SmtpError {
    subject.error(
        "has an opening double quote without a closing one",
        "close the quoted part, or remove the quote; inside quotes, write \\\" for a quote and \\\\ for a backslash.",
    )
}

/// `s` starts with a double quote: the byte index just after the matching
/// closing quote, honouring backslash escapes, or None if it is unterminated.
fn quoted_string_end(s: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(i + 1),
            _ => {}
        }
    }
    None
}

fn check_local_part(subject: &Subject<'_>, local: &str) -> Result<(), SmtpError> {
    if local.is_empty() {
        return Err(subject.error(
            "has an empty local part before @",
            "write the full address, e.g. name@example.com.",
        ));
    }
    if local.len() > MAX_LOCAL_PART {
        return Err(subject.error(
            format_args!(
                "has a local part of {} bytes; SMTP allows at most {MAX_LOCAL_PART}",
                local.len()
            ),
            "check the part before the @; mailbox names are rarely that long, so the value is probably wrong.",
        ));
    }
    if local.starts_with('"') {
        check_quoted_local_part(subject, &local[1..local.len() - 1])
    } else {
        check_dot_string(subject, local)
    }
}

/// The inside of a quoted local part (RFC 5321 qtextSMTP / quoted-pairSMTP,
/// plus UTF-8 from RFC 6531). Controls were refused already; what is left to
/// check is that a backslash escapes a printable ASCII character.
fn check_quoted_local_part(subject: &Subject<'_>, inner: &str) -> Result<(), SmtpError> {
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' && !matches!(chars.next(), Some(' '..='~')) {
            return Err(subject.error(
                "has a backslash in its quoted local part that is not followed by a printable ASCII character",
                "inside quotes, a backslash may only escape a printable ASCII character such as \\\" or \\\\.",
            ));
        }
    }
    Ok(())
}

/// RFC 5321 Dot-string: atoms of atext (plus UTF-8) separated by single dots.
fn check_dot_string(subject: &Subject<'_>, local: &str) -> Result<(), SmtpError> {
    const QUOTE_HINT: &str = "if the mailbox really is spelled like that, quote the local part: \"a..b\"@example.com.";
    if local.starts_with('.') {
        return Err(subject.error("has a local part that starts with a dot", QUOTE_HINT));
    }
    if local.ends_with('.') {
        return Err(subject.error("has a local part that ends with a dot (just before the @)", QUOTE_HINT));
    }
    if local.contains("..") {
        return Err(subject.error("has two dots in a row in the local part", QUOTE_HINT));
    }
    for c in local.chars() {
        if is_atext(c) || c == '.' {
            continue;
        }
        return Err(bad_char(subject, c, "the local part (outside quotes)"));
    }
    Ok(())
}

/// RFC 5322 atext, extended with non-ASCII by RFC 6531. Unicode spaces are
/// kept out: they look like nothing and are almost always a copy-paste slip.
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || "!#$%&'*+-/=?^_`{|}~".contains(c)
        || (!c.is_ascii() && !c.is_whitespace() && !c.is_control() && !is_bidi_control(c))
}

/// The error for a character that has no place where it was found, with the
/// likely cause for the common ones.
fn bad_char(subject: &Subject<'_>, c: char, place: &str) -> SmtpError {
    match c {
        ' ' => subject.error(
            format_args!("contains a space in {place}"),
            "remove the space; to give a name with the address, write it as Name <name@example.com>.",
        ),
        '<' | '>' => subject.error(
            format_args!("contains '{c}' in {place}"),
            "pass the bare address (name@example.com); the angle brackets are added when the command is written.",
        ),
        '@' => subject.error(
            format_args!("contains a second @ in {place}"),
            "check that the value is a single address; quote the local part if it really contains @.",
        ),
        ',' | ';' => subject.error(
            format_args!("contains '{c}' in {place}"),
            "give one address per recipient instead of a list in one string.",
        ),
        c => subject.error(
            format_args!(
                "contains the character '{}', which is not allowed in {place}",
                escape_char(c)
            ),
            "check the address for typing or copy-paste mistakes.",
        ),
    }
}

/// A domain name or an address literal. `utf8` allows U-labels (RFC 6531).
fn check_domain(subject: &Subject<'_>, domain: &str, utf8: bool) -> Result<(), SmtpError> {
    if let Some(literal) = domain.strip_prefix('[') {
        return check_address_literal(subject, literal);
    }
    const DOMAIN_HINT: &str = "a domain is made of labels separated by single dots, like mail.example.com.";
    if domain.starts_with('.') {
        return Err(subject.error("has a domain that starts with a dot", DOMAIN_HINT));
    }
    if domain.ends_with('.') {
        return Err(subject.error("has a domain that ends with a dot", "remove the final dot."));
    }
    if domain.contains("..") {
        return Err(subject.error("has two dots in a row in the domain", DOMAIN_HINT));
    }
    let mut total = 0;
    for label in domain.split('.') {
        for c in label.chars() {
            let ok = c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && is_atext(c));
            if !ok {
                return Err(bad_char(subject, c, "the domain"));
            }
            if !c.is_ascii() && !utf8 {
                return Err(subject.error(
                    "contains non-ASCII characters",
                    "use the ASCII (A-label, \"xn--...\") form of the domain.",
                ));
            }
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(subject.error(
                format_args!(
                    "has a domain label that starts or ends with a hyphen ({})",
                    quote(label)
                ),
                "hyphens are only allowed inside a domain label, as in my-host.example.com.",
            ));
        }
        // A label long enough to overflow the arithmetic is too long anyway.
        let length = a_label_len(label).unwrap_or(usize::MAX);
        if length > MAX_LABEL {
            return Err(subject.error(
                format_args!("has a domain label longer than {MAX_LABEL} bytes ({})", quote(label)),
                "check the domain; DNS does not allow labels that long.",
            ));
        }
        total += length + 1;
    }
    if total - 1 > MAX_DOMAIN {
        return Err(subject.error(
            format_args!("has a domain longer than {MAX_DOMAIN} bytes"),
            "check the domain; DNS does not allow names that long.",
        ));
    }
    Ok(())
}

/// RFC 5321 §4.1.3: `[1.2.3.4]` or `[IPv6:...]`; `literal` follows the "[".
fn check_address_literal(subject: &Subject<'_>, literal: &str) -> Result<(), SmtpError> {
    const HINT: &str = "an address literal looks like [192.0.2.1] or [IPv6:2001:db8::1].";
    let Some(inner) = literal.strip_suffix(']') else {
        return Err(subject.error("has an address literal without a closing ]", HINT));
    };
    let ok = match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => is_ipv6(&inner[5..]),
        _ => is_ipv4(inner),
    };
    if ok {
        Ok(())
    } else {
        Err(subject.error(
            format_args!(
                "has an invalid address literal {}",
                quote(&literal[..literal.len() - 1])
            ),
            HINT,
        ))
    }
}

/// RFC 5321 IPv4-address-literal: four 1-3 digit numbers up to 255 (leading
/// zeros allowed, as the grammar allows them).
fn is_ipv4(s: &str) -> bool {
    let mut count = 0;
    for part in s.split('.') {
        count += 1;
        let digits_ok = (1..=3).contains(&part.len()) && part.bytes().all(|b| b.is_ascii_digit());
        if !digits_ok || part.parse::<u16>().map_or(true, |n| n > 255) {
            return false;
        }
    }
    count == 4
}

/// RFC 5321 §4.1.3's IPv6-addr: eight groups of one to four hex digits, or
/// fewer around one "::" (which stands for at least two), the last two
/// groups possibly written as an IPv4 address. Written out rather than
/// `core::net::Ipv6Addr`'s parser, which would cost the wasm build some 3 KB.
fn is_ipv6(s: &str) -> bool {
    let (head, tail) = match s.split_once("::") {
        Some((head, tail)) if !tail.contains("::") => (head, Some(tail)),
        Some(_) => return false,
        None => (s, None),
    };
    match tail {
        None => ipv6_groups(head, true) == Some(8),
        Some(tail) => match (ipv6_groups(head, false), ipv6_groups(tail, true)) {
            (Some(before), Some(after)) => before + after <= 6,
            _ => false,
        },
    }
}

/// How many 16-bit groups `part` (groups joined by ':') holds, an IPv4
/// address at its end counting two; `None` if a group is malformed.
fn ipv6_groups(part: &str, may_end_in_ipv4: bool) -> Option<usize> {
    if part.is_empty() {
        return Some(0);
    }
    let mut groups = 0;
    let mut rest = part.split(':').peekable();
    while let Some(group) = rest.next() {
        let last = rest.peek().is_none();
        if last && may_end_in_ipv4 && group.contains('.') {
            groups += if is_ipv4(group) { 2 } else { return None };
        } else if (1..=4).contains(&group.len()) && group.bytes().all(|b| b.is_ascii_hexdigit()) {
            groups += 1;
        } else {
            return None;
        }
    }
    Some(groups)
}

/// Length of the label in DNS: itself if ASCII, else "xn--" + Punycode.
fn a_label_len(label: &str) -> Option<usize> {
    if label.is_ascii() {
        Some(label.len())
    } else {
        Some(4 + punycode(label)?.len())
    }
}

/// RFC 3492 Punycode encoding of one label, as written (no IDNA mapping).
/// None on arithmetic overflow, which only absurdly long input can reach.
fn punycode(input: &str) -> Option<String> {
    const BASE: u32 = 36;
    const T_MIN: u32 = 1;
    const T_MAX: u32 = 26;
    const SKEW: u32 = 38;
    const DAMP: u32 = 700;

    fn adapt(delta: u32, points: u32, first: bool) -> u32 {
        let mut delta = if first { delta / DAMP } else { delta / 2 };
        delta += delta / points;
        let mut k = 0;
        while delta > ((BASE - T_MIN) * T_MAX) / 2 {
            delta /= BASE - T_MIN;
            k += BASE;
        }
        k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
    }
    fn digit(d: u32) -> char {
        // 0..=25 are a..z, 26..=35 are 0..9.
        char::from(if d < 26 { b'a' + d as u8 } else { b'0' + (d - 26) as u8 })
    }

    let code_points: Vec<u32> = input.chars().map(u32::from).collect();
    let mut out: String = input.chars().filter(char::is_ascii).collect();
    let basic = out.len() as u32;
    if basic > 0 {
        out.push('-');
    }
    let (mut n, mut delta, mut bias, mut handled) = (128u32, 0u32, 72u32, basic);
    while (handled as usize) < code_points.len() {
        let m = code_points.iter().copied().filter(|&c| c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
        n = m;
        for &c in &code_points {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    out.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(out)
}

/// "<addr>"; the empty string gives the null reverse-path "<>" (only valid
/// for MAIL FROM — callers decide). Does not validate: call
/// [`validate_address`] first.
pub fn format_path(address: &str) -> String {
    let mut path = String::with_capacity(address.len() + 2);
    path.push('<');
    path.push_str(address);
    path.push('>');
    path
}

/// EHLO/HELO name: a domain or an address literal; no controls, no spaces,
/// ≤ 255. It must be ASCII: EHLO is sent before the server has said whether
/// it supports SMTPUTF8.
pub fn validate_ehlo_name(name: &str) -> Result<(), SmtpError> {
    let subject = Subject {
        phase: Phase::Ehlo,
        label: "the EHLO name",
        noun: "the EHLO name",
        value: name,
    };
    subject.check_controls()?;
    if name.is_empty() {
        return Err(subject.error(
            "is empty",
            "use the client's fully qualified host name, or an address literal such as [192.0.2.1].",
        ));
    }
    if name.contains(' ') {
        return Err(subject.error(
            "contains a space",
            "an EHLO name is a single host name such as mail.example.com, or an address literal such as [192.0.2.1].",
        ));
    }
    if name.len() > MAX_DOMAIN {
        return Err(subject.error(
            format_args!("is {} bytes; a domain is at most {MAX_DOMAIN}", name.len()),
            "use the client's fully qualified host name.",
        ));
    }
    check_domain(&subject, name, false)
}

/// RFC 3461 xtext encoding for ENVID and ORCPT values ("+" and "=",
/// controls, space and non-ASCII bytes as +XX).
pub fn xtext_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if matches!(b, b'!'..=b'~') && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "+{b:02X}");
        }
    }
    out
}

/// Validates an ENVID or ORCPT original value: no CR/LF/NUL/controls, not
/// empty, at most `max_encoded` octets once xtext-encoded (RFC 3461: 100 for
/// ENVID). `what` names the parameter ("ENVID", "ORCPT") in the message; the
/// error's phase is `Rcpt` for ORCPT and `Mail` otherwise.
pub fn validate_dsn_value(value: &str, what: &str, max_encoded: usize) -> Result<(), SmtpError> {
    let phase = if what.eq_ignore_ascii_case("ORCPT") {
        Phase::Rcpt
    } else {
        Phase::Mail
    };
    let label = format!("the {what} value");
    let noun = format!("an {what} value");
    let subject = Subject {
        phase,
        label: &label,
        noun: &noun,
        value,
    };
    subject.check_controls()?;
    if value.is_empty() {
        return Err(subject.error(
            "is empty",
            format!("leave {what} unset instead of passing an empty value."),
        ));
    }
    let encoded = xtext_encode(value).len();
    if encoded > max_encoded {
        return Err(subject.error(
            format_args!("is {encoded} bytes once encoded as xtext; at most {max_encoded} are allowed"),
            format!("shorten the {what} value; characters outside printable ASCII take 3 bytes each."),
        ));
    }
    Ok(())
}

/// "ann@example.com", "Ann <ann@example.com>", "\"Doe, John\" <j@example.com>",
/// "<ann@example.com>", "José <josé@exämple.com>" (RFC 6532).
pub fn parse_mailbox(input: &str, phase: Phase) -> Result<Mailbox, SmtpError> {
    let subject = Subject {
        phase,
        label: "the mailbox",
        noun: "a mailbox",
        value: input,
    };
    // Display names never reach the wire as commands, but a line break in
    // one is as likely to be an injection attempt as in the address.
    subject.check_controls()?;
    let text = input.trim_matches(' ');
    if text.is_empty() {
        return Err(subject.error(
            "is empty",
            "give an address such as ann@example.com or Ann <ann@example.com>.",
        ));
    }
    let Some(open) = find_unquoted(text, |c| c == '<').map_err(|()| unterminated_quote(&subject))? else {
        validate_address(text, phase)?;
        return Ok(Mailbox {
            name: None,
            address: text.to_string(),
        });
    };
    let after = &text[open + 1..];
    let close = match find_unquoted(after, |c| c == '>') {
        Ok(Some(close)) => close,
        Ok(None) => {
            return Err(subject.error(
                "has a '<' without a matching '>'",
                "write it as Name <name@example.com>.",
            ));
        }
        Err(()) => return Err(unterminated_quote(&subject)),
    };
    if !after[close + 1..].trim_matches(' ').is_empty() {
        return Err(subject.error(
            "has text after the closing '>'",
            "give one mailbox per entry, written as Name <name@example.com>.",
        ));
    }
    let address = after[..close].trim_matches(' ');
    validate_address(address, phase)?;
    let name = parse_display_name(&subject, &text[..open])?;
    Ok(Mailbox {
        name,
        address: address.to_string(),
    })
}

/// Removes the quoting from a display name: quoted parts lose their quotes
/// and backslash escapes, the rest is kept as written.
fn parse_display_name(subject: &Subject<'_>, display: &str) -> Result<Option<String>, SmtpError> {
    let mut name = String::with_capacity(display.len());
    let mut chars = display.chars();
    while let Some(c) = chars.next() {
        if c != '"' {
            name.push(c);
            continue;
        }
        loop {
            match chars.next() {
                None => return Err(unterminated_quote(subject)),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some(escaped) => name.push(escaped),
                    None => return Err(unterminated_quote(subject)),
                },
                Some(c) => name.push(c),
            }
        }
    }
    let name = name.trim_matches(' ');
    Ok((!name.is_empty()).then(|| name.to_string()))
}

/// The byte index of the first character outside double quotes that matches
/// `target`; Err(()) when a quote is left open.
fn find_unquoted(s: &str, target: impl Fn(char) -> bool) -> Result<Option<usize>, ()> {
    let (mut quoted, mut escaped) = (false, false);
    for (i, c) in s.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
        } else if c == '"' {
            quoted = true;
        } else if target(c) {
            return Ok(Some(i));
        }
    }
    if quoted { Err(()) } else { Ok(None) }
}

/// A comma-separated list (commas inside quotes or angle brackets do not
/// split). Empty entries, as left by a trailing comma, are skipped; a list
/// with no mailbox at all is an error.
pub fn parse_mailbox_list(input: &str, phase: Phase) -> Result<Vec<Mailbox>, SmtpError> {
    let mut mailboxes = Vec::new();
    let mut rest = input;
    loop {
        let (entry, next) = match split_list_entry(rest) {
            Some(comma) => (&rest[..comma], Some(&rest[comma + 1..])),
            None => (rest, None),
        };
        // Only spaces count as blank: an entry made of a lone CR must still
        // reach parse_mailbox and be refused.
        if !entry.trim_matches(' ').is_empty() {
            mailboxes.push(parse_mailbox(entry, phase)?);
        }
        match next {
            Some(next) => rest = next,
            None => break,
        }
    }
    if mailboxes.is_empty() {
        let subject = Subject {
            phase,
            label: "the address list",
            noun: "an address list",
            value: input,
        };
        return Err(subject.error(
            "contains no address",
            "give at least one address, e.g. ann@example.com.",
        ));
    }
    Ok(mailboxes)
}

/// The index of the first comma outside quotes and angle brackets. An open
/// quote runs to the end, so the entry is handed whole to `parse_mailbox`,
/// which reports it.
fn split_list_entry(s: &str) -> Option<usize> {
    let (mut quoted, mut escaped, mut angle) = (false, false, false);
    for (i, c) in s.char_indices() {
        if quoted {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '<' => angle = true,
            '>' => angle = false,
            ',' if !angle => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {

    #[test]
    fn ipv6_literals_follow_rfc_5321() {
        for good in [
            "2001:db8:0:0:0:0:0:1",
            "2001:db8::1",
            "::1",
            "::",
            "1::",
            "fe80::1:2:3:4",
            "::ffff:192.0.2.1",
            "1:2:3:4:5:6:192.0.2.1",
            "1:2:3:4::192.0.2.1",
            "ABCD:ef01::",
        ] {
            assert!(is_ipv6(good), "{good} is an IPv6 address");
            assert!(
                good.parse::<core::net::Ipv6Addr>().is_ok(),
                "the standard parser agrees on {good}"
            );
        }
        for bad in [
            "",
            ":",
            "1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "12345::1",
            "g::1",
            "1:::2",
            ":1:2:3:4:5:6:7",
            "1:2:3:4:5:6:7::",
            "::1.2.3",
            "1.2.3.4::",
            "::256.0.0.1",
            "1:2:3:4:5::192.0.2.1",
        ] {
            assert!(!is_ipv6(bad), "{bad} is not an RFC 5321 IPv6 address");
        }
    }

    use super::*;
    use crate::error::ErrorCode;
    use proptest::prelude::*;

    fn addr_err(address: &str) -> SmtpError {
        let err = validate_address(address, Phase::Rcpt).unwrap_err();
        assert_eq!(err.code, ErrorCode::Input);
        assert_eq!(err.phase, Phase::Rcpt);
        assert!(err.hint.is_some());
        err
    }

    fn assert_addr_err(address: &str, needle: &str) {
        let err = addr_err(address);
        assert!(err.message.contains(needle), "{:?}: {}", address, err.message);
    }

    #[test]
    fn accepts_ordinary_and_unusual_valid_addresses() {
        for ok in [
            "ann@example.com",
            "a.b+tag@sub.example.co.uk",
            "!#$%&'*+-/=?^_`{|}~@example.com",
            "\"first last\"@example.com",
            "\"a..b\"@example.com",
            "\"quote\\\"inside\"@example.com",
            "\"at@sign\"@example.com",
            "\"\"@example.com",
            "user@localhost",
            "user@[192.0.2.1]",
            "user@[IPv6:2001:db8::1]",
            "user@[ipv6:::1]",
            "x@123.example",
            "a@xn--bcher-kva.example",
        ] {
            assert_eq!(validate_address(ok, Phase::Rcpt), Ok(AddressKind::Ascii), "{ok}");
        }
        for utf8 in ["josé@exämple.com", "用户@例子.广告", "\"José Doe\"@example.com"] {
            assert_eq!(validate_address(utf8, Phase::Rcpt), Ok(AddressKind::Utf8), "{utf8}");
        }
    }

    #[test]
    fn refuses_command_injection() {
        let err = addr_err("bob@example.com\r\nRCPT TO:<x>");
        assert_eq!(
            err.message,
            "the address \"bob@example.com\\r\\nRCPT TO:<x>\" contains a line break (CR or LF); \
             line breaks in an address would inject SMTP commands."
        );
        assert_addr_err("a@b.c>\r\nRCPT TO:<evil@x>", "line break");
        assert_addr_err("a@b.c\nDATA", "line break");
        assert_addr_err("a@b.c\r", "line break");
        assert_addr_err("a@b.c\0evil", "NUL");
        assert_addr_err("a@exa\tmple.com", "control character \\t");
        assert_addr_err("a@b.c\x7f", "control character \\x7F");
        assert_addr_err("a@b.c\u{85}", "control character \\u{0085}");
    }

    #[test]
    fn refuses_malformed_addresses() {
        assert_addr_err("", "is empty");
        assert_addr_err("no-at-sign", "has no @");
        assert_addr_err("a@", "empty domain");
        assert_addr_err("@example.com", "empty local part");
        assert_addr_err(".a@example.com", "starts with a dot");
        assert_addr_err("a.@example.com", "ends with a dot");
        assert_addr_err("a..b@example.com", "two dots in a row");
        assert_addr_err("a b@example.com", "space");
        assert_addr_err("ann@exa mple.com", "space");
        assert_addr_err("<ann@example.com>", "'<'");
        assert_addr_err("ann@example.com>", "'>'");
        assert_addr_err("a@b@example.com", "second @");
        assert_addr_err("a,b@example.com", "','");
        assert_addr_err("\"open@example.com", "opening double quote");
        assert_addr_err("\"a\"b@example.com", "closing quote");
        assert_addr_err("\"quoted only\"", "has no @");
        assert_addr_err("\"a\\é\"@example.com", "backslash");
        assert_addr_err("a@.example.com", "starts with a dot");
        assert_addr_err("a@example.com.", "ends with a dot");
        assert_addr_err("a@example..com", "two dots");
        assert_addr_err("a@-example.com", "hyphen");
        assert_addr_err("a@exam_ple.com", "'_'");
        assert_addr_err("a@[192.0.2.256]", "invalid address literal");
        assert_addr_err("a@[1.2.3]", "invalid address literal");
        assert_addr_err("a@[IPv6:zz::1]", "invalid address literal");
        assert_addr_err("a@[192.0.2.1", "closing ]");
        assert_addr_err("a@ex\u{a0}ample.com", "'\\u{00A0}', which is not allowed");
    }

    #[test]
    fn enforces_length_limits() {
        let local64 = "a".repeat(64);
        assert!(validate_address(&format!("{local64}@example.com"), Phase::Mail).is_ok());
        assert_addr_err(&format!("a{local64}@example.com"), "local part of 65 bytes");

        let label63 = "b".repeat(63);
        assert!(validate_address(&format!("a@{label63}.com"), Phase::Mail).is_ok());
        assert_addr_err(&format!("a@b{label63}.com"), "label longer than 63");

        // 254 bytes is the longest address that fits a 256-byte path.
        let domain = format!("{label63}.{label63}.{label63}.{}", "c".repeat(60));
        let longest = format!("a@{domain}");
        assert_eq!(longest.len(), 254);
        assert!(validate_address(&longest, Phase::Mail).is_ok());
        assert_addr_err(&format!("ab@{domain}"), "is 255 bytes");
    }

    #[test]
    fn utf8_labels_are_measured_as_punycode() {
        // 30 CJK characters are 90 UTF-8 bytes but a much shorter A-label.
        let label = "例".repeat(30);
        assert!(label.len() > 63);
        assert!(validate_address(&format!("a@{label}.com"), Phase::Rcpt).is_ok());
        let too_long = "例子广告用户".repeat(12);
        assert_addr_err(&format!("a@{too_long}.com"), "label longer than 63");
    }

    #[test]
    fn punycode_matches_rfc_3492() {
        assert_eq!(punycode("bücher").as_deref(), Some("bcher-kva"));
        assert_eq!(punycode("münchen").as_deref(), Some("mnchen-3ya"));
        assert_eq!(punycode("例子").as_deref(), Some("fsqu00a"));
        // RFC 3492 §7.1 (L), Japanese.
        assert_eq!(punycode("3年B組金八先生").as_deref(), Some("3B-ww4c5e180e575a65lsy2b"));
    }

    #[test]
    fn quoting_escapes_and_truncates() {
        assert_eq!(quote("a\r\n\0\t\x01\"\\b"), "\"a\\r\\n\\0\\t\\x01\\\"\\\\b\"");
        assert_eq!(quote("a\u{202E}b"), "\"a\\u{202E}b\"");
        assert_eq!(quote("é"), "\"é\"");
        let long = "x".repeat(200);
        let quoted = quote(&long);
        assert!(quoted.starts_with(&format!("\"{}\"…", "x".repeat(80))));
        assert!(quoted.ends_with("(200 bytes in all)"));
    }

    #[test]
    fn format_path_wraps_in_angle_brackets() {
        assert_eq!(format_path("ann@example.com"), "<ann@example.com>");
        assert_eq!(format_path(""), "<>");
    }

    #[test]
    fn parses_mailboxes() {
        let parse = |s| parse_mailbox(s, Phase::Mail).unwrap();
        let mb = |name: Option<&str>, address: &str| Mailbox {
            name: name.map(str::to_string),
            address: address.into(),
        };
        assert_eq!(parse("ann@example.com"), mb(None, "ann@example.com"));
        assert_eq!(parse("  ann@example.com "), mb(None, "ann@example.com"));
        assert_eq!(parse("Ann <ann@example.com>"), mb(Some("Ann"), "ann@example.com"));
        assert_eq!(
            parse("\"Doe, John\" <j@example.com>"),
            mb(Some("Doe, John"), "j@example.com")
        );
        assert_eq!(parse("<ann@example.com>"), mb(None, "ann@example.com"));
        assert_eq!(parse("José <josé@exämple.com>"), mb(Some("José"), "josé@exämple.com"));
        assert_eq!(
            parse("\"Say \\\"hi\\\" \\\\o/\" <a@b.c>"),
            mb(Some("Say \"hi\" \\o/"), "a@b.c")
        );
        assert_eq!(parse("\"<not@addr>\" <a@b.c>"), mb(Some("<not@addr>"), "a@b.c"));
        assert_eq!(
            parse("Ann \"the Admin\" Lee <a@b.c>"),
            mb(Some("Ann the Admin Lee"), "a@b.c")
        );
        assert_eq!(parse("Ann <\"a>b\"@b.c>"), mb(Some("Ann"), "\"a>b\"@b.c"));
        assert_eq!(parse("😀 Smile <s@b.c>"), mb(Some("😀 Smile"), "s@b.c"));
    }

    #[test]
    fn refuses_malformed_mailboxes() {
        let err = |s: &str| parse_mailbox(s, Phase::Rcpt).unwrap_err();
        assert!(err("").message.contains("is empty"));
        assert!(err("Ann <a@b.c").message.contains("without a matching"));
        assert!(err("Ann <a@b.c> trailing").message.contains("after the closing"));
        assert!(err("Ann <a@b.c> <d@e.f>").message.contains("after the closing"));
        assert!(err("\"Ann <a@b.c>").message.contains("opening double quote"));
        assert!(err("Ann a@b.c").message.contains("space"));
        assert!(err("Ann <>").message.contains("is empty"));
        assert!(err("Ann\r\n <a@b.c>").message.contains("line break"));
        assert!(err("Ann <a@b.c\r\nRCPT TO:<evil@x>>").message.contains("line break"));
        assert!(err("A\u{7}nn <a@b.c>").message.contains("\\x07"));
        assert_eq!(err("Ann <a..b@c.d>").phase, Phase::Rcpt);
    }

    #[test]
    fn parses_mailbox_lists() {
        let list = parse_mailbox_list(
            "\"Doe, John\" <j@example.com>, ann@example.com,, <\"x,y\"@b.c>,",
            Phase::Rcpt,
        )
        .unwrap();
        let addresses: Vec<_> = list.iter().map(|m| m.address.as_str()).collect();
        assert_eq!(addresses, ["j@example.com", "ann@example.com", "\"x,y\"@b.c"]);
        assert_eq!(list[0].name.as_deref(), Some("Doe, John"));

        assert!(
            parse_mailbox_list(" , ", Phase::Rcpt)
                .unwrap_err()
                .message
                .contains("no address")
        );
        assert!(
            parse_mailbox_list("a@b.c, \r\n", Phase::Rcpt)
                .unwrap_err()
                .message
                .contains("line break")
        );
        assert!(
            parse_mailbox_list("a@b.c, bad", Phase::Rcpt)
                .unwrap_err()
                .message
                .contains("\"bad\"")
        );
    }

    #[test]
    fn ehlo_names() {
        for ok in [
            "mail.example.com",
            "localhost",
            "[192.0.2.1]",
            "[IPv6:::1]",
            "xn--bcher-kva.example",
        ] {
            assert_eq!(validate_ehlo_name(ok), Ok(()), "{ok}");
        }
        for (bad, needle) in [
            ("", "is empty"),
            ("host name", "space"),
            ("host\r\nMAIL FROM:<x>", "line break"),
            ("host\0", "NUL"),
            ("bücher.example", "non-ASCII"),
            ("host_1.example", "'_'"),
            ("host.", "ends with a dot"),
            ("[999.1.1.1]", "invalid address literal"),
        ] {
            let err = validate_ehlo_name(bad).unwrap_err();
            assert_eq!(err.phase, Phase::Ehlo);
            assert!(err.message.contains(needle), "{bad:?}: {}", err.message);
        }
        assert!(
            validate_ehlo_name(&"a.".repeat(128))
                .unwrap_err()
                .message
                .contains("256 bytes")
        );
    }

    #[test]
    fn xtext_encodes_specials_and_non_ascii() {
        assert_eq!(xtext_encode("abc-123@x.y"), "abc-123@x.y");
        assert_eq!(xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(xtext_encode("é\r"), "+C3+A9+0D");
        assert_eq!(xtext_encode(""), "");
    }

    #[test]
    fn dsn_values() {
        assert_eq!(validate_dsn_value("QQ314159", "ENVID", 100), Ok(()));
        assert_eq!(validate_dsn_value(&"a".repeat(100), "ENVID", 100), Ok(()));
        let err = validate_dsn_value(&"+".repeat(34), "ENVID", 100).unwrap_err();
        assert!(err.message.contains("102 bytes once encoded"), "{}", err.message);
        assert_eq!(err.phase, Phase::Mail);
        let err = validate_dsn_value("x\r\nDATA", "ORCPT", 500).unwrap_err();
        assert_eq!(err.phase, Phase::Rcpt);
        assert!(
            err.message
                .starts_with("the ORCPT value \"x\\r\\nDATA\" contains a line break")
        );
        assert!(validate_dsn_value("", "ENVID", 100).is_err());
        assert!(validate_dsn_value("a\0", "ENVID", 100).is_err());
        assert!(validate_dsn_value("a\u{1b}[31m", "ENVID", 100).is_err());
    }

    /// Any string with a CR, LF or NUL spliced in somewhere.
    fn with_breaker() -> impl Strategy<Value = String> {
        (
            any::<String>(),
            any::<String>(),
            prop_oneof![Just('\r'), Just('\n'), Just('\0')],
        )
            .prop_map(|(a, b, c)| format!("{a}{c}{b}"))
    }

    proptest! {
        #[test]
        fn line_breaks_and_nul_are_always_refused(value in with_breaker()) {
            prop_assert!(validate_address(&value, Phase::Rcpt).is_err());
            prop_assert!(parse_mailbox(&value, Phase::Rcpt).is_err());
            prop_assert!(parse_mailbox_list(&value, Phase::Rcpt).is_err());
            prop_assert!(validate_ehlo_name(&value).is_err());
            prop_assert!(validate_dsn_value(&value, "ENVID", 1000).is_err());
        }

        #[test]
        fn arbitrary_input_never_panics(value in any::<String>()) {
            let _ = validate_address(&value, Phase::Mail);
            let _ = parse_mailbox_list(&value, Phase::Mail);
            let _ = validate_ehlo_name(&value);
            let _ = validate_dsn_value(&value, "ENVID", 100);
            let _ = quote(&value);
        }

        #[test]
        fn accepted_addresses_are_safe_to_embed(value in "[a-z.\"@<> \\[\\]:0-9é]{0,30}") {
            if validate_address(&value, Phase::Mail).is_ok() {
                let path = format_path(&value);
                prop_assert!(!path.contains(['\r', '\n', '\0']));
                prop_assert!(!value.contains(['<', '>']) || value.starts_with('"'));
            }
        }

        #[test]
        fn xtext_output_is_printable_ascii(value in any::<String>()) {
            let encoded = xtext_encode(&value);
            prop_assert!(encoded.bytes().all(|b| (b'!'..=b'~').contains(&b) && b != b'='));
        }
    }
}
