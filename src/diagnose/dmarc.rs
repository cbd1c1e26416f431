//! DMARC records (RFC 7489 §6.3) and the tag lists that DKIM keys, MTA-STS
//! and TLS-RPT records share with them: `name=value` pairs split by `;`.

/// `tag=value` pairs of a tag list, names lower-cased, values trimmed.
/// `Err` names the first part that is not a tag.
pub fn tags(record: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for part in record.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| format!("\"{part}\" is not a tag=value pair"))?;
        out.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    Ok(out)
}

/// The value of tag `name`, if present.
pub fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// Whether a TXT string starts with `v=<version>` (the way these records say what they are).
pub fn has_version(txt: &str, version: &str) -> bool {
    let first = txt.split(';').next().unwrap_or_default();
    first
        .split_once('=')
        .is_some_and(|(n, v)| n.trim().eq_ignore_ascii_case("v") && v.trim().eq_ignore_ascii_case(version))
}

/// What a receiver does with mail that fails DMARC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    None,
    Quarantine,
    Reject,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Quarantine => "quarantine",
            Policy::Reject => "reject",
        }
    }

    fn parse(value: &str) -> Option<Policy> {
        match value.to_ascii_lowercase().as_str() {
            "none" => Some(Policy::None),
            "quarantine" => Some(Policy::Quarantine),
            "reject" => Some(Policy::Reject),
            _ => None,
        }
    }
}

/// A DMARC record, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DmarcRecord {
    pub policy: Policy,
    pub subdomain_policy: Option<Policy>,
    /// `adkim=s`: the DKIM d= domain must equal the From: domain.
    pub strict_dkim: bool,
    /// `aspf=s`: the MAIL FROM domain must equal the From: domain.
    pub strict_spf: bool,
    /// The share of failing mail the policy applies to (`pct`, 100 by default).
    pub percent: u8,
    /// Where aggregate reports go (`rua`).
    pub reports_to: Option<String>,
}

/// Parses a record that has `v=DMARC1`; `Err` says what is wrong.
pub fn parse(record: &str) -> Result<DmarcRecord, String> {
    let tags = tags(record)?;
    if !tags.first().is_some_and(|(n, v)| n == "v" && v == "DMARC1") {
        return Err("it must start with v=DMARC1".into());
    }
    let policy_of = |name: &str| -> Result<Option<Policy>, String> {
        tag(&tags, name)
            .map(|v| Policy::parse(v).ok_or_else(|| format!("{name}={v} is not none, quarantine or reject")))
            .transpose()
    };
    let policy = policy_of("p")?.ok_or("it has no p= policy tag")?;
    let alignment = |name: &str| -> Result<bool, String> {
        match tag(&tags, name).map(str::to_ascii_lowercase).as_deref() {
            None | Some("r") => Ok(false),
            Some("s") => Ok(true),
            Some(other) => Err(format!("{name}={other} is not r or s")),
        }
    };
    let percent = match tag(&tags, "pct") {
        None => 100,
        Some(v) => v
            .parse::<u8>()
            .ok()
            .filter(|p| *p <= 100)
            .ok_or_else(|| format!("pct={v} is not a number from 0 to 100"))?,
    };
    Ok(DmarcRecord {
        policy,
        subdomain_policy: policy_of("sp")?,
        strict_dkim: alignment("adkim")?,
        strict_spf: alignment("aspf")?,
        percent,
        reports_to: tag(&tags, "rua").map(str::to_string),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_parsed() {
        let r = parse("v=DMARC1; p=quarantine; sp=reject; adkim=s; pct=50; rua=mailto:d@example.com").unwrap();
        assert_eq!(r.policy, Policy::Quarantine);
        assert_eq!(r.subdomain_policy, Some(Policy::Reject));
        assert!(r.strict_dkim && !r.strict_spf);
        assert_eq!(r.percent, 50);
        assert_eq!(r.reports_to.as_deref(), Some("mailto:d@example.com"));
        assert_eq!(parse("v=DMARC1;p=none").unwrap().percent, 100);
        assert!(has_version("v=DMARC1; p=none", "DMARC1"));
        assert!(has_version("v = STSv1; id=1", "stsv1"));
        assert!(!has_version("p=none; v=DMARC1", "DMARC1"));
    }

    #[test]
    fn mistakes_are_named() {
        for (record, word) in [
            ("p=none; v=DMARC1", "v=DMARC1"),
            ("v=DMARC1; rua=mailto:x@example.com", "p="),
            ("v=DMARC1; p=block", "p=block"),
            ("v=DMARC1; p=none; pct=120", "pct=120"),
            ("v=DMARC1; p=none; aspf=x", "aspf=x"),
            ("v=DMARC1; p=none; oops", "oops"),
        ] {
            let err = parse(record).unwrap_err();
            assert!(err.contains(word), "{record}: {err}");
        }
    }
}
