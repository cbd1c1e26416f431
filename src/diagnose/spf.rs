//! SPF records (RFC 7208) as the domain doctor reads them: the syntax of a
//! record, what its `all` says, and how many DNS lookups evaluating it
//! costs (at most 10 are allowed, §4.6.4), counting through `include:` and
//! `redirect=` into the records they name.

use std::collections::BTreeMap;

/// How a mechanism's match counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qualifier {
    Pass,
    Fail,
    SoftFail,
    Neutral,
}

impl Qualifier {
    fn from_char(c: char) -> Option<Qualifier> {
        Some(match c {
            '+' => Qualifier::Pass,
            '-' => Qualifier::Fail,
            '~' => Qualifier::SoftFail,
            '?' => Qualifier::Neutral,
            _ => return None,
        })
    }
}

/// One SPF record, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SpfRecord {
    /// The qualifier of `all`, when the record has one.
    pub all: Option<Qualifier>,
    /// Domains of `include:` mechanisms, in order.
    pub includes: Vec<String>,
    /// The `redirect=` domain.
    pub redirect: Option<String>,
    /// Mechanisms that cost a DNS lookup here (`a`, `mx`, `ptr`, `exists`,
    /// `include` and `redirect`).
    pub lookups: usize,
    /// Whether `ptr` is used (discouraged by RFC 7208 §5.5).
    pub uses_ptr: bool,
}

/// Whether a TXT string is an SPF record (`v=spf1`, then a space or nothing).
pub fn is_spf(txt: &str) -> bool {
    let lower = txt.trim_start().to_ascii_lowercase();
    lower == "v=spf1" || lower.starts_with("v=spf1 ")
}

/// Parses a record that [`is_spf`]; `Err` says what is wrong, as a phrase.
pub fn parse(record: &str) -> Result<SpfRecord, String> {
    let mut out = SpfRecord::default();
    for term in record.split_ascii_whitespace().skip(1) {
        if let Some((name, value)) = modifier(term) {
            match name.as_str() {
                "redirect" if out.redirect.is_some() => return Err("it has more than one redirect= modifier".into()),
                "redirect" => {
                    check_domain(term, value)?;
                    out.redirect = Some(target_name(value));
                    out.lookups += 1;
                }
                _ => {} // exp= and unknown modifiers are allowed (§6)
            }
            continue;
        }
        let (qualifier, rest) = match term.chars().next().and_then(Qualifier::from_char) {
            Some(q) => (q, &term[1..]),
            None => (Qualifier::Pass, term),
        };
        let (name, argument) = match rest.find([':', '/']) {
            Some(i) => (&rest[..i], Some(&rest[i..])),
            None => (rest, None),
        };
        let domain_arg = argument.and_then(|a| a.strip_prefix(':'));
        match name.to_ascii_lowercase().as_str() {
            "all" if argument.is_some() => return Err(format!("\"{term}\" takes no argument")),
            "all" => out.all = Some(qualifier),
            "include" | "exists" => {
                let domain = domain_arg.ok_or_else(|| format!("\"{term}\" needs a domain ({name}:example.com)"))?;
                check_domain(term, domain)?;
                if name.eq_ignore_ascii_case("include") {
                    out.includes.push(target_name(domain));
                }
                out.lookups += 1;
            }
            "a" | "mx" | "ptr" => {
                if let Some(domain) = domain_arg {
                    let domain = domain.split('/').next().unwrap_or_default();
                    check_domain(term, domain)?;
                }
                out.uses_ptr |= name.eq_ignore_ascii_case("ptr");
                out.lookups += 1;
            }
            "ip4" => check_address(term, domain_arg, 32, |a| a.parse::<std::net::Ipv4Addr>().is_ok())?,
            "ip6" => check_address(term, domain_arg, 128, |a| a.parse::<std::net::Ipv6Addr>().is_ok())?,
            _ => return Err(format!("\"{term}\" is not an SPF mechanism")),
        }
    }
    Ok(out)
}

/// An include or redirect target as a lookup name: lower case, no trailing dot.
fn target_name(domain: &str) -> String {
    domain.trim_end_matches('.').to_ascii_lowercase()
}

/// `name=value` with a valid modifier name, if `term` is one.
fn modifier(term: &str) -> Option<(String, &str)> {
    let (name, value) = term.split_once('=')?;
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    valid.then(|| (name.to_ascii_lowercase(), value))
}

/// A domain-spec: not empty; macros (`%{…}`) are taken as they are.
fn check_domain(term: &str, domain: &str) -> Result<(), String> {
    if domain.is_empty() || domain.starts_with('.') || domain.contains("..") || domain.contains(':') {
        return Err(format!("\"{term}\" has no valid domain"));
    }
    Ok(())
}

fn check_address(
    term: &str,
    argument: Option<&str>,
    max_prefix: u8,
    valid: impl Fn(&str) -> bool,
) -> Result<(), String> {
    let bad = || format!("\"{term}\" has no valid address");
    let argument = argument.ok_or_else(bad)?;
    let (address, prefix) = match argument.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (argument, None),
    };
    let prefix_ok = prefix.is_none_or(|p| p.parse::<u8>().is_ok_and(|n| n <= max_prefix));
    if valid(address) && prefix_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// The SPF records among a name's TXT strings.
pub fn records(txt: &[String]) -> Vec<&str> {
    txt.iter().map(String::as_str).filter(|t| is_spf(t)).collect()
}

/// What counting lookups through includes found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LookupCount {
    /// The lookups evaluation costs, as far as the known records tell.
    pub total: usize,
    /// Included (or redirect) domains whose TXT answer is not known yet.
    pub unresolved: Vec<String>,
    /// Included domains that have no SPF record (a permanent error, §5.2).
    pub without_spf: Vec<String>,
}

/// Counts the DNS lookups of `record`, following includes and redirects
/// into `txt` (TXT answers by lower-case name; absent = not looked up).
pub fn count_lookups(record: &SpfRecord, txt: &BTreeMap<String, Vec<String>>) -> LookupCount {
    let mut count = LookupCount::default();
    let mut path = Vec::new();
    walk(record, txt, &mut count, &mut path);
    count
}

/// Deeper than this, includes are a loop or an abuse: evaluation would stop long before.
const MAX_DEPTH: usize = 12;

fn walk(record: &SpfRecord, txt: &BTreeMap<String, Vec<String>>, count: &mut LookupCount, path: &mut Vec<String>) {
    count.total += record.lookups;
    // A redirect is ignored when the record has `all` (§6.1).
    let redirect = record.redirect.iter().filter(|_| record.all.is_none());
    for domain in record.includes.iter().chain(redirect) {
        // A macro (%{i}, %{d} ...) names a domain only at evaluation time: counted, not followed.
        if path.len() >= MAX_DEPTH || path.contains(domain) || domain.contains('%') {
            continue;
        }
        let Some(answer) = txt.get(domain) else {
            if !count.unresolved.contains(domain) {
                count.unresolved.push(domain.clone());
            }
            continue;
        };
        match records(answer).first().map(|r| parse(r)) {
            Some(Ok(inner)) => {
                path.push(domain.clone());
                walk(&inner, txt, count, path);
                path.pop();
            }
            Some(Err(_)) => {}
            None => {
                if !count.without_spf.contains(domain) {
                    count.without_spf.push(domain.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_recognised_and_parsed() {
        assert!(is_spf("v=spf1 -all"));
        assert!(is_spf("V=SPF1"));
        assert!(!is_spf("v=spf10 -all"));
        assert!(!is_spf("google-site-verification=x"));
        let r = parse("v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 a mx:mail.example.com/24 include:_spf.example.net exp=explain._spf.%{d} ~all").unwrap();
        assert_eq!(r.all, Some(Qualifier::SoftFail));
        assert_eq!(r.includes, vec!["_spf.example.net"]);
        assert_eq!(r.lookups, 3);
        assert!(!r.uses_ptr);
        let r = parse("v=spf1 ptr exists:%{i}.rbl.example redirect=_spf.example.org").unwrap();
        assert_eq!(
            (r.lookups, r.uses_ptr, r.redirect.as_deref()),
            (3, true, Some("_spf.example.org"))
        );
        assert_eq!(r.all, None);
    }

    #[test]
    fn syntax_errors_name_the_term() {
        for (record, word) in [
            ("v=spf1 include -all", "include"),
            ("v=spf1 ip4:300.1.1.1 -all", "ip4:300.1.1.1"),
            ("v=spf1 ip4:192.0.2.1/33 -all", "ip4:192.0.2.1/33"),
            ("v=spf1 mx:: -all", "mx::"),
            ("v=spf1 allow -all", "allow"),
            ("v=spf1 all:x", "all:x"),
            ("v=spf1 redirect=a.example redirect=b.example", "redirect"),
        ] {
            let err = parse(record).unwrap_err();
            assert!(err.contains(word), "{record}: {err}");
        }
    }

    #[test]
    fn lookups_are_counted_through_includes() {
        let top = parse("v=spf1 a mx include:one.example include:two.example -all").unwrap();
        let mut txt = BTreeMap::new();
        txt.insert(
            "one.example".to_string(),
            vec!["v=spf1 include:three.example a ~all".to_string()],
        );
        let count = count_lookups(&top, &txt);
        assert_eq!(count.total, 4 + 2);
        assert_eq!(count.unresolved, vec!["three.example", "two.example"]);
        assert!(
            count_lookups(&parse("v=spf1 include:%{d}._spf.example -all").unwrap(), &txt)
                .unresolved
                .is_empty(),
            "a macro is not a name to look up"
        );
        assert_eq!(
            parse("v=spf1 include:Two.Example. -all").unwrap().includes,
            vec!["two.example"]
        );
        txt.insert("two.example".into(), vec!["some other text".into()]);
        txt.insert(
            "three.example".into(),
            vec!["v=spf1 mx mx mx mx mx include:one.example".into()],
        );
        let count = count_lookups(&top, &txt);
        // The loop back to one.example is not followed twice.
        assert_eq!(count.total, 4 + 2 + 6);
        assert!(count.unresolved.is_empty());
        assert_eq!(count.without_spf, vec!["two.example"]);
    }

    #[test]
    fn a_redirect_counts_only_without_all() {
        let mut txt = BTreeMap::new();
        txt.insert("r.example".to_string(), vec!["v=spf1 a a a -all".to_string()]);
        let with = parse("v=spf1 redirect=r.example").unwrap();
        assert_eq!(count_lookups(&with, &txt).total, 4);
        let ignored = parse("v=spf1 -all redirect=r.example").unwrap();
        assert_eq!(count_lookups(&ignored, &txt).total, 1);
    }
}
