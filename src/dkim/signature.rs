//! The DKIM-Signature header field: which header fields it covers, its tag
//! list, the bytes the key signs, and the `b=` value folded in at the end.

use crate::base64;
use sha2::{Digest, Sha256};

use super::canonicalize::{Canonicalization, header_field, relaxed_header};
use super::hasher::HashedMessage;
use crate::error::{Phase, SmtpError};

/// The signing algorithm (the `a=` tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (RFC 6376), what every verifier knows.
    RsaSha256,
    /// Ed25519 over the SHA-256 of the signed data (RFC 8463).
    Ed25519Sha256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RsaSha256 => "rsa-sha256",
            Algorithm::Ed25519Sha256 => "ed25519-sha256",
        }
    }

    pub fn parse(name: &str) -> Result<Self, SmtpError> {
        match name.to_ascii_lowercase().as_str() {
            "rsa-sha256" | "rsa" => Ok(Algorithm::RsaSha256),
            "ed25519-sha256" | "ed25519" => Ok(Algorithm::Ed25519Sha256),
            _ => Err(
                SmtpError::input(Phase::Data, format!("dkim algorithm \"{name}\" is not supported."))
                    .with_hint("use \"rsa-sha256\" (the default) or \"ed25519-sha256\"."),
            ),
        }
    }
}

/// The header fields signed by default. From comes twice: the second,
/// which matches no field, makes adding a From after signing break the
/// signature (over-signing).
pub const DEFAULT_HEADERS: &[&str] = &[
    "from",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "reply-to",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "list-unsubscribe",
    "list-unsubscribe-post",
];

/// What one signature says: who signs, how, and what it covers.
#[derive(Debug, Clone)]
pub struct SignatureSpec {
    /// The signing domain (`d=`), in ASCII (A-labels for IDNs).
    pub domain: String,
    /// The selector (`s=`): the key is published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    pub algorithm: Algorithm,
    /// Header and body canonicalization (`c=`).
    pub canonicalization: (Canonicalization, Canonicalization),
    /// The header fields to sign; `None` for [`DEFAULT_HEADERS`]. Each
    /// present field is signed (all instances), and From once more.
    pub headers: Option<Vec<String>>,
    /// Seconds the signature stays valid (`x=`); none by default.
    pub expires_in: Option<u64>,
}

impl SignatureSpec {
    /// rsa-sha256, relaxed/relaxed, the default header list.
    pub fn new(domain: impl Into<String>, selector: impl Into<String>) -> Self {
        SignatureSpec {
            domain: domain.into(),
            selector: selector.into(),
            algorithm: Algorithm::RsaSha256,
            canonicalization: (Canonicalization::Relaxed, Canonicalization::Relaxed),
            headers: None,
            expires_in: None,
        }
    }

    /// Parses `c=` syntax: `relaxed/relaxed`, `simple`, `relaxed/simple`...
    /// (one word is the header canonicalization, the body's is then simple).
    pub fn parse_canonicalization(text: &str) -> Result<(Canonicalization, Canonicalization), SmtpError> {
        let one = |word: &str| match word {
            "simple" => Some(Canonicalization::Simple),
            "relaxed" => Some(Canonicalization::Relaxed),
            _ => None,
        };
        let lower = text.to_ascii_lowercase();
        let (header, body) = lower.split_once('/').unwrap_or((&lower, "simple"));
        match (one(header), one(body)) {
            (Some(h), Some(b)) => Ok((h, b)),
            _ => Err(SmtpError::input(
                Phase::Data,
                format!("dkim canonicalization \"{text}\" is not known."),
            )
            .with_hint("use \"relaxed/relaxed\" (the default), \"simple/simple\", \"relaxed/simple\" or \"simple/relaxed\".")),
        }
    }

    /// Checks the domain, selector and header names before anything is signed.
    pub fn check(&self) -> Result<(), SmtpError> {
        check_dns_name("domain", &self.domain)?;
        check_dns_name("selector", &self.selector)?;
        for name in self.headers.iter().flatten() {
            let valid = !name.is_empty() && name.bytes().all(|b| matches!(b, b'!'..=b'~') && b != b':');
            if !valid {
                return Err(SmtpError::input(
                    Phase::Data,
                    format!("dkim headers: \"{name}\" is not a header field name."),
                )
                .with_hint("list names like \"From\", \"Subject\" or \"List-Unsubscribe\"."));
            }
        }
        Ok(())
    }

    /// The `h=` list for this message: each named field once per instance
    /// present, From always and once more than it occurs.
    fn signed_names(&self, fields: &[Field<'_>]) -> Vec<String> {
        let mut wanted: Vec<String> = match &self.headers {
            Some(names) => names.iter().map(|n| n.to_ascii_lowercase()).collect(),
            None => DEFAULT_HEADERS.iter().map(|n| n.to_string()).collect(),
        };
        // Each name once, in the order given (instances are counted below).
        let mut seen = std::collections::HashSet::new();
        wanted.retain(|name| seen.insert(name.clone()));
        if !wanted.iter().any(|n| n == "from") {
            wanted.insert(0, "from".to_string());
        }
        let mut names = Vec::new();
        for name in &wanted {
            let count = fields.iter().filter(|f| f.is(name)).count();
            let times = if name == "from" { count + 1 } else { count };
            names.extend(std::iter::repeat_n(name.clone(), times));
        }
        names
    }
}

/// A DNS label sequence: letters, digits, hyphens, underscores and dots.
fn check_dns_name(what: &str, name: &str) -> Result<(), SmtpError> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        return Ok(());
    }
    Err(SmtpError::input(Phase::Data, format!("dkim {what} \"{name}\" is not a DNS name."))
        .with_hint("use ASCII letters, digits, hyphens and dots (an internationalised domain in its xn-- form), like domain: \"example.com\", selector: \"mail2026\"."))
}

/// One header field of the message.
#[derive(Debug)]
struct Field<'a> {
    name: &'a [u8],
    /// The whole field, CRLF included.
    raw: &'a [u8],
}

impl Field<'_> {
    fn is(&self, lower_name: &str) -> bool {
        self.name.eq_ignore_ascii_case(lower_name.as_bytes())
    }
}

/// The header section as fields (a line starting with whitespace continues
/// the field before it).
fn fields(header: &[u8]) -> Result<Vec<Field<'_>>, SmtpError> {
    let mut fields: Vec<Field<'_>> = Vec::new();
    let mut start = 0;
    let mut at = 0;
    while at < header.len() {
        let line_end = memchr::memmem::find(&header[at..], b"\r\n").map_or(header.len(), |i| at + i + 2);
        let continues = matches!(header.get(line_end), Some(b' ' | b'\t'));
        if !continues {
            let raw = &header[start..line_end];
            let Some(colon) = raw.iter().position(|&b| b == b':') else {
                return Err(SmtpError::input(
                    Phase::Data,
                    format!("the message's header section has a line that is not a header field: \"{}\".", String::from_utf8_lossy(&raw[..raw.len().min(60)]).trim_end()),
                )
                .with_hint("every header line must be Name: value (continuation lines start with a space), and an empty line must separate the headers from the body."));
            };
            let name = &raw[..colon];
            let name = &name[..name.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |i| i + 1)];
            fields.push(Field { name, raw });
            start = line_end;
        }
        at = line_end;
    }
    Ok(fields)
}

/// A signature whose tags are set and whose `b=` value awaits the key.
#[derive(Debug, Clone)]
pub struct PendingSignature {
    algorithm: Algorithm,
    /// The DKIM-Signature field up to and including `b=`.
    header: String,
    /// The canonical signed header fields and this field without its
    /// `b=` value: what RSA signs (and whose SHA-256 Ed25519 signs).
    data: Vec<u8>,
}

impl PendingSignature {
    /// Prepares a signature over a hashed message, made at `timestamp`
    /// (seconds since the Unix epoch).
    pub fn new(spec: &SignatureSpec, message: &HashedMessage, timestamp: u64) -> Result<Self, SmtpError> {
        spec.check()?;
        let (header_canon, body_canon) = spec.canonicalization;
        let body_hash = message.body_hash(body_canon).ok_or_else(|| {
            SmtpError::input(
                Phase::Data,
                format!(
                    "the message was hashed without {} body canonicalization.",
                    body_canon.as_str()
                ),
            )
            .with_hint("create the MessageHasher with every body canonicalization the signatures use.")
        })?;
        let fields = fields(&message.header)?;
        if !fields.iter().any(|f| f.is("from")) {
            return Err(SmtpError::input(
                Phase::Data,
                "the message has no From header field, which DKIM must sign.",
            )
            .with_hint("a message needs exactly one From: add one before signing."));
        }
        let names = spec.signed_names(&fields);

        let mut tags = vec![
            "v=1".to_string(),
            format!("a={}", spec.algorithm.as_str()),
            format!("c={}/{}", header_canon.as_str(), body_canon.as_str()),
            format!("d={}", spec.domain),
            format!("s={}", spec.selector),
            format!("t={timestamp}"),
        ];
        if let Some(expires) = spec.expires_in {
            tags.push(format!("x={}", timestamp.saturating_add(expires)));
        }
        tags.push(format!("h={}", names.join(":")));
        tags.push(format!("bh={}", base64::encode(body_hash)));
        let header = fold_tags(&tags);

        // Signed fields bottom-up: the n-th mention of a name takes the
        // n-th instance from the bottom (RFC 6376 §5.4.2); none left, none signed.
        let mut data = Vec::new();
        let mut used = vec![false; fields.len()];
        for name in &names {
            let instance = (0..fields.len()).rev().find(|&i| !used[i] && fields[i].is(name));
            if let Some(i) = instance {
                used[i] = true;
                header_field(header_canon, fields[i].raw, &mut data);
            }
        }
        match header_canon {
            Canonicalization::Simple => data.extend_from_slice(header.as_bytes()),
            Canonicalization::Relaxed => relaxed_header(header.as_bytes(), &mut data),
        }
        Ok(PendingSignature {
            algorithm: spec.algorithm,
            header,
            data,
        })
    }

    /// The bytes to give the key: for rsa-sha256 the signed data itself
    /// (RSASSA-PKCS1-v1_5 hashes it with SHA-256, as WebCrypto's `sign`
    /// does); for ed25519-sha256 its SHA-256 digest, which Ed25519 signs
    /// (RFC 8463 §3).
    pub fn to_sign(&self) -> Vec<u8> {
        match self.algorithm {
            Algorithm::RsaSha256 => self.data.clone(),
            Algorithm::Ed25519Sha256 => Sha256::digest(&self.data).to_vec(),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The complete DKIM-Signature header field (CRLF-terminated) with the
    /// signature folded into `b=`, to put before the message's first header.
    pub fn finish(self, signature: &[u8]) -> Result<String, SmtpError> {
        if signature.is_empty() {
            return Err(
                SmtpError::input(Phase::Data, "the DKIM signer returned an empty signature.")
                    .with_hint("a signer function must resolve to the signature bytes (a Uint8Array)."),
            );
        }
        let encoded = base64::encode(signature);
        let mut header = self.header;
        let mut column = header.len() - header.rfind('\n').map_or(0, |i| i + 1);
        for piece in encoded.as_bytes().chunks(64) {
            if column + piece.len() > 78 {
                header.push_str("\r\n\t");
                column = 8;
            }
            // Base64 is ASCII, so every chunk is valid UTF-8.
            header.push_str(std::str::from_utf8(piece).unwrap_or_default());
            column += piece.len();
        }
        header.push_str("\r\n");
        Ok(header)
    }
}

/// `DKIM-Signature: tag; tag; ...; b=` folded at 78 columns; the `h=` list
/// may break before any colon.
fn fold_tags(tags: &[String]) -> String {
    let mut out = String::from("DKIM-Signature:");
    let mut column = out.len();
    let mut put = |out: &mut String, piece: &str, space: bool| {
        let width = piece.len() + usize::from(space);
        if column + width > 78 {
            out.push_str("\r\n\t");
            column = 8;
        } else if space {
            out.push(' ');
            column += 1;
        }
        out.push_str(piece);
        column += piece.len();
    };
    for tag in tags {
        let mut pieces = tag.split_inclusive(':').peekable();
        let mut first = true;
        while let Some(piece) = pieces.next() {
            let last = pieces.peek().is_none();
            let piece = if last { format!("{piece};") } else { piece.to_string() };
            put(&mut out, &piece, first);
            first = false;
        }
    }
    put(&mut out, "b=", true);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dkim::MessageHasher;

    fn hashed(message: &[u8]) -> HashedMessage {
        let mut hasher = MessageHasher::new(&[Canonicalization::Relaxed, Canonicalization::Simple]);
        hasher.update(message).unwrap();
        hasher.finish().unwrap()
    }

    const MESSAGE: &[u8] =
        b"From: Ann <ann@example.com>\r\nTo: bob@example.org\r\nSubject: Hi\r\n\tthere\r\nX-Other: 1\r\n\r\nHello.\r\n";

    #[test]
    fn tags_name_every_present_field_and_from_twice() {
        let spec = SignatureSpec::new("example.com", "sel");
        let pending = PendingSignature::new(&spec, &hashed(MESSAGE), 1_700_000_000).unwrap();
        let header = pending.clone().finish(&[1, 2, 3]).unwrap();
        let unfolded = header.replace("\r\n\t", " ");
        assert!(
            unfolded.starts_with(
                "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.com; s=sel; t=1700000000;"
            ),
            "{unfolded}"
        );
        assert!(unfolded.contains("h=from:from:to:subject;"), "{unfolded}");
        assert!(unfolded.ends_with("b=AQID\r\n"), "{unfolded}");
        assert!(header.lines().all(|l| l.len() <= 78), "{header}");
        let data = String::from_utf8(pending.data).unwrap();
        assert!(data.starts_with("from:Ann <ann@example.com>\r\nto:bob@example.org\r\nsubject:Hi there\r\ndkim-signature:v=1; a=rsa-sha256;"), "{data}");
        assert!(data.ends_with("b="), "{data}");
    }

    #[test]
    fn simple_header_canonicalization_signs_the_fields_as_written() {
        let mut spec = SignatureSpec::new("example.com", "sel");
        spec.canonicalization = (Canonicalization::Simple, Canonicalization::Simple);
        spec.headers = Some(vec!["Subject".into(), "X-Other".into()]);
        spec.expires_in = Some(60);
        let pending = PendingSignature::new(&spec, &hashed(MESSAGE), 100).unwrap();
        let data = String::from_utf8(pending.data.clone()).unwrap();
        assert!(
            data.starts_with("From: Ann <ann@example.com>\r\nSubject: Hi\r\n\tthere\r\nX-Other: 1\r\nDKIM-Signature: "),
            "{data}"
        );
        assert!(data.contains("x=160;"));
        let header = pending.finish(&[0; 256]).unwrap();
        assert!(header.starts_with(&data[data.find("DKIM-Signature").unwrap()..]));
    }

    #[test]
    fn prepend_header_takes_whole_fields_before_the_first_poll() {
        use crate::mime::{MessageBuilder, MessageSpec, Segment};
        let spec = MessageSpec {
            from: "a@example.com".into(),
            to: vec!["b@example.org".into()],
            text: Some("x".into()),
            ..MessageSpec::default()
        };
        let mut builder = MessageBuilder::new(spec.clone(), [0; 32], 0).unwrap();
        let size = builder.envelope().size.unwrap();
        for bad in ["X: y", "X: y\n", " X: y\r\n", "X: y\r\nZ\r", "X: y\rZ\r\n"] {
            assert!(builder.prepend_header(bad).is_err(), "{bad:?}");
        }
        builder.prepend_header("X-Test: 1\r\n").unwrap();
        assert_eq!(builder.envelope().size, Some(size + 11));
        let bytes = builder.into_vec().unwrap();
        assert!(bytes.starts_with(b"X-Test: 1\r\nDate: "));
        assert_eq!(bytes.len() as u64, size + 11);

        let mut polled = MessageBuilder::new(spec, [0; 32], 0).unwrap();
        assert!(matches!(polled.poll_output(), Segment::Bytes(_)));
        assert!(polled.prepend_header("X: y\r\n").is_err());
    }

    #[test]
    fn bottom_up_instances_and_input_checks() {
        let message = b"From: a@example.com\r\nReceived: 1\r\nReceived: 2\r\n\r\n";
        let mut spec = SignatureSpec::new("example.com", "sel");
        spec.headers = Some(vec!["received".into(), "Received".into()]);
        let pending = PendingSignature::new(&spec, &hashed(message), 1).unwrap();
        let data = String::from_utf8(pending.data).unwrap();
        assert!(
            data.starts_with("from:a@example.com\r\nreceived:2\r\nreceived:1\r\ndkim-signature:"),
            "{data}"
        );
        for (domain, selector) in [("exa mple.com", "s"), ("example.com", ""), ("ex\u{e4}mple.com", "s")] {
            let spec = SignatureSpec::new(domain, selector);
            assert!(
                PendingSignature::new(&spec, &hashed(message), 1).is_err(),
                "{domain} {selector}"
            );
        }
        let no_from = hashed(b"To: b@example.com\r\n\r\nx");
        assert!(PendingSignature::new(&SignatureSpec::new("example.com", "s"), &no_from, 1).is_err());
        assert!(SignatureSpec::parse_canonicalization("relaxed").is_ok());
        assert!(SignatureSpec::parse_canonicalization("loose/relaxed").is_err());
    }
}
