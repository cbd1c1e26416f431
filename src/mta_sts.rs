//! MTA-STS (RFC 8461): the `_mta-sts` TXT record, the policy file, and
//! whether an MX host matches the policy's `mx` patterns.
//!
//! The host fetches (DNS, then `https://mta-sts.<domain>/.well-known/mta-sts.txt`
//! over HTTPS with a verified certificate); everything it fetched is judged
//! here, so MX delivery and the domain doctor read a policy the same way.
//!
//! ```
//! use wasmtp::mta_sts::{Mode, Policy};
//! let policy = Policy::parse("version: STSv1\r\nmode: enforce\r\nmx: *.mail.example\r\nmax_age: 86400\r\n").unwrap();
//! assert_eq!(policy.mode, Mode::Enforce);
//! assert!(policy.matches("mx1.mail.example."));
//! assert!(!policy.matches("a.b.mail.example"));
//! ```

use std::fmt;

/// The largest policy file read (RFC 8461 §3.3 lets a sender cap it; 64 KB is common).
pub const MAX_POLICY_BYTES: usize = 64 * 1024;
/// The largest `max_age` (RFC 8461 §3.2: one year, 31557600 seconds).
pub const MAX_AGE_LIMIT: u64 = 31_557_600;

/// What a policy asks of senders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Deliver only to a matching MX over TLS with a verified certificate.
    Enforce,
    /// Deliver anyway; report what would have failed.
    Testing,
    /// No policy (a domain withdrawing one).
    None,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Testing => "testing",
            Mode::None => "none",
        }
    }
}

/// A parsed policy file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub mode: Mode,
    /// The `mx` patterns, lower-case, without a trailing dot: `mail.example`
    /// or `*.example` (a wildcard stands for exactly one left-most label).
    pub mx: Vec<String>,
    /// How long the policy may be cached, in seconds.
    pub max_age: u64,
}

/// Why a TXT record or a policy file is not valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

fn error(message: impl Into<String>) -> PolicyError {
    PolicyError(message.into())
}

/// The `_mta-sts.<domain>` TXT records (each record's strings joined):
/// `Ok(None)` when no record starts with `v=STSv1` (the domain has no
/// policy), `Ok(Some(id))` for exactly one valid record, and an error for a
/// malformed record or more than one (RFC 8461 §3.1: then there is no
/// usable policy).
pub fn record_id<S: AsRef<str>>(records: &[S]) -> Result<Option<String>, PolicyError> {
    let sts: Vec<&str> = records
        .iter()
        .map(AsRef::as_ref)
        .filter(|r| r.trim_start().starts_with("v=STSv1"))
        .collect();
    match sts.as_slice() {
        [] => Ok(None),
        [one] => parse_record(one).map(Some),
        _ => Err(error(format!(
            "{} TXT records start with v=STSv1; RFC 8461 allows exactly one",
            sts.len()
        ))),
    }
}

/// One record: `v=STSv1; id=<1 to 32 letters and digits>;` (other fields ignored).
fn parse_record(record: &str) -> Result<String, PolicyError> {
    let mut fields = record.split(';').map(str::trim).filter(|f| !f.is_empty());
    if fields.next() != Some("v=STSv1") {
        return Err(error(format!(
            "the TXT record {record:?} does not start with \"v=STSv1;\""
        )));
    }
    let mut id = None;
    for field in fields {
        let Some((key, value)) = field.split_once('=') else {
            return Err(error(format!(
                "the TXT record {record:?} has a field without \"=\": {field:?}"
            )));
        };
        if key.trim() == "id" {
            if id.is_some() {
                return Err(error(format!("the TXT record {record:?} has two id fields")));
            }
            let value = value.trim();
            if value.is_empty() || value.len() > 32 || !value.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(error(format!(
                    "the TXT record's id {value:?} is not 1 to 32 letters and digits"
                )));
            }
            id = Some(value.to_owned());
        }
    }
    id.ok_or_else(|| error(format!("the TXT record {record:?} has no id field")))
}

impl Policy {
    /// Parses the policy file (RFC 8461 §3.2): `key: value` lines ended by
    /// CRLF or LF; `version: STSv1`, `mode`, `max_age` and (unless the mode
    /// is none) at least one `mx` are required; unknown keys are ignored.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return Err(error(format!(
                "the policy is {} bytes, more than the {MAX_POLICY_BYTES} read",
                text.len()
            )));
        }
        let mut version = None;
        let mut mode = None;
        let mut max_age = None;
        let mut mx = Vec::new();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.trim().is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Err(error(format!("the policy line {line:?} is not \"key: value\"")));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "version" => set_once(&mut version, value, key)?,
                "mode" => set_once(&mut mode, value, key)?,
                "max_age" => set_once(&mut max_age, value, key)?,
                "mx" => mx.push(parse_pattern(value)?),
                _ => {} // RFC 8461 §3.2: other fields are ignored
            }
        }
        if version != Some("STSv1") {
            return Err(error(match version {
                None => "the policy has no \"version: STSv1\" line".to_owned(),
                Some(v) => format!("the policy's version is {v:?}, not \"STSv1\""),
            }));
        }
        let mode = match mode {
            Some("enforce") => Mode::Enforce,
            Some("testing") => Mode::Testing,
            Some("none") => Mode::None,
            Some(other) => {
                return Err(error(format!(
                    "the policy's mode {other:?} is not enforce, testing or none"
                )));
            }
            None => return Err(error("the policy has no mode line")),
        };
        let max_age = match max_age {
            None => return Err(error("the policy has no max_age line")),
            Some(v) => match v.parse::<u64>() {
                Ok(n) if n <= MAX_AGE_LIMIT && v.bytes().all(|b| b.is_ascii_digit()) && v.len() <= 10 => n,
                _ => {
                    return Err(error(format!(
                        "the policy's max_age {v:?} is not a number of seconds from 0 to {MAX_AGE_LIMIT}"
                    )));
                }
            },
        };
        if mx.is_empty() && mode != Mode::None {
            return Err(error(format!("the policy (mode {}) has no mx line", mode.as_str())));
        }
        Ok(Policy { mode, mx, max_age })
    }

    /// Whether `host` (an MX host name; case and a trailing dot ignored)
    /// matches one of the `mx` patterns (RFC 8461 §4.1).
    pub fn matches(&self, host: &str) -> bool {
        let host = normalize(host);
        self.mx.iter().any(|pattern| pattern_matches(pattern, &host))
    }
}

fn set_once<'a>(slot: &mut Option<&'a str>, value: &'a str, key: &str) -> Result<(), PolicyError> {
    if slot.replace(value).is_some() {
        return Err(error(format!("the policy has more than one {key} line")));
    }
    Ok(())
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// An `mx` value: a host name, or `*.` followed by one (the wildcard).
fn parse_pattern(value: &str) -> Result<String, PolicyError> {
    let pattern = normalize(value);
    let name = pattern.strip_prefix("*.").unwrap_or(&pattern);
    let valid_label = |l: &str| {
        !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
        return Err(error(format!(
            "the policy's mx pattern {value:?} is not a host name or \"*.\" and a host name"
        )));
    }
    Ok(pattern)
}

/// `*.example.com` matches `mx.example.com`, not `example.com` nor `a.b.example.com`.
fn pattern_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest == suffix),
        None => pattern == host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str =
        "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\nmx: *.example.net\r\nmax_age: 604800\r\n";

    #[test]
    fn parses_the_rfc_example() {
        let policy = Policy::parse(POLICY).unwrap();
        assert_eq!(policy.mode, Mode::Enforce);
        assert_eq!(policy.mx, ["mail.example.com", "*.example.net"]);
        assert_eq!(policy.max_age, 604_800);
    }

    #[test]
    fn matches_exact_names_and_one_label_wildcards() {
        let policy = Policy::parse(POLICY).unwrap();
        assert!(policy.matches("mail.example.com"));
        assert!(policy.matches("MAIL.Example.COM."));
        assert!(policy.matches("mx1.example.net"));
        assert!(!policy.matches("example.net"), "the wildcard needs a label");
        assert!(!policy.matches("a.b.example.net"), "the wildcard is one label only");
        assert!(!policy.matches("xmail.example.com"));
        assert!(!policy.matches(".example.net"));
    }

    #[test]
    fn lf_line_ends_unknown_keys_and_whitespace() {
        let policy =
            Policy::parse("version:STSv1\nmode:  testing \nfoo: bar\nmx: MX.Example.Org.\nmax_age:0\n").unwrap();
        assert_eq!(policy.mode, Mode::Testing);
        assert_eq!(policy.mx, ["mx.example.org"]);
        assert_eq!(policy.max_age, 0);
    }

    #[test]
    fn mode_none_needs_no_mx() {
        assert_eq!(
            Policy::parse("version: STSv1\nmode: none\nmax_age: 86400\n")
                .unwrap()
                .mode,
            Mode::None
        );
    }

    #[test]
    fn rejects_broken_policies_with_a_reason() {
        let cases = [
            ("mode: enforce\nmx: a.example\nmax_age: 1\n", "no \"version"),
            (
                "version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1\n",
                "not \"STSv1\"",
            ),
            (
                "version: STSv1\nmode: strict\nmx: a.example\nmax_age: 1\n",
                "not enforce, testing or none",
            ),
            ("version: STSv1\nmx: a.example\nmax_age: 1\n", "no mode"),
            ("version: STSv1\nmode: enforce\nmax_age: 1\n", "no mx"),
            ("version: STSv1\nmode: enforce\nmx: a.example\n", "no max_age"),
            (
                "version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 31557601\n",
                "max_age",
            ),
            ("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n", "max_age"),
            (
                "version: STSv1\nmode: enforce\nmx: a.*.example\nmax_age: 1\n",
                "mx pattern",
            ),
            ("version: STSv1\nmode: enforce\nmx: *\nmax_age: 1\n", "mx pattern"),
            (
                "version: STSv1\nmode: enforce\nmode: testing\nmx: a.example\nmax_age: 1\n",
                "more than one mode",
            ),
            ("<html>not a policy</html>", "not \"key: value\""),
        ];
        for (text, reason) in cases {
            let e = Policy::parse(text).unwrap_err();
            assert!(e.0.contains(reason), "{text:?}: {e}");
        }
        assert!(
            Policy::parse(&"x".repeat(MAX_POLICY_BYTES + 1))
                .unwrap_err()
                .0
                .contains("more than")
        );
    }

    #[test]
    fn txt_record_ids() {
        assert_eq!(
            record_id(&["v=STSv1; id=20260101T000000;"]).unwrap().as_deref(),
            Some("20260101T000000")
        );
        assert_eq!(record_id(&["v=STSv1;id=abc"]).unwrap().as_deref(), Some("abc"));
        assert_eq!(record_id(&["v=spf1 -all"]).unwrap(), None);
        assert_eq!(record_id::<&str>(&[]).unwrap(), None);
        assert!(
            record_id(&["v=STSv1; id=a", "v=STSv1; id=b"])
                .unwrap_err()
                .0
                .contains("exactly one")
        );
        assert!(record_id(&["v=STSv1;"]).unwrap_err().0.contains("no id"));
        assert!(
            record_id(&["v=STSv1; id=not-valid!"])
                .unwrap_err()
                .0
                .contains("letters and digits")
        );
        assert!(
            record_id(&["v=STSv1; id=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"])
                .unwrap_err()
                .0
                .contains("1 to 32")
        );
    }
}
