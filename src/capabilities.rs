//! What the server offers, read from its EHLO reply (RFC 5321 §4.1.1.1).
//!
//! Capabilities are only ever taken from the latest EHLO: after STARTTLS the
//! connection forgets them and asks again (RFC 3207 §4.2), so nothing a
//! man-in-the-middle added to the plaintext list survives the upgrade.

use crate::reply::Reply;

/// The extensions a server advertised, with their parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Capabilities {
    /// The server's name from the first EHLO line.
    pub domain: String,
    /// False after a HELO fallback: no extension may be used.
    pub esmtp: bool,
    /// RFC 1870 SIZE was advertised.
    pub size: bool,
    /// Its limit in octets, when one was given (`SIZE 0` means none).
    pub size_limit: Option<u64>,
    /// RFC 2920 command pipelining.
    pub pipelining: bool,
    /// RFC 3030 BDAT.
    pub chunking: bool,
    /// RFC 3030 BINARYMIME.
    pub binarymime: bool,
    /// RFC 6152 8-bit bodies.
    pub eightbitmime: bool,
    /// RFC 6531 UTF-8 addresses and headers.
    pub smtputf8: bool,
    /// RFC 3461 delivery status notifications.
    pub dsn: bool,
    /// RFC 2034 enhanced status codes in replies.
    pub enhanced_status_codes: bool,
    /// RFC 8689 REQUIRETLS.
    pub requiretls: bool,
    /// RFC 3207 STARTTLS.
    pub starttls: bool,
    /// SASL mechanisms (RFC 4954 `AUTH`, and the legacy `AUTH=` form),
    /// upper-cased, in the server's order, without duplicates.
    pub auth: Vec<String>,
    /// Every keyword line as sent after the first: keyword upper-cased,
    /// parameters as given. For diagnostics and extensions not modelled above.
    pub keywords: Vec<(String, Vec<String>)>,
}

impl Capabilities {
    /// Reads a positive EHLO (or LHLO) reply.
    pub fn from_ehlo(reply: &Reply) -> Self {
        let mut caps = Capabilities {
            esmtp: true,
            ..Capabilities::default()
        };
        let mut lines = reply.lines.iter();
        if let Some(first) = lines.next() {
            caps.domain = first.split_whitespace().next().unwrap_or("").to_string();
        }
        for line in lines {
            let mut words = line.split_whitespace();
            let Some(keyword) = words.next() else { continue };
            let keyword = keyword.to_ascii_uppercase();
            let params: Vec<String> = words.map(str::to_string).collect();
            caps.apply(&keyword, &params);
            caps.keywords.push((keyword, params));
        }
        caps
    }

    /// A server that only answered HELO: plain RFC 821 SMTP, no extensions.
    pub fn from_helo(reply: &Reply) -> Self {
        let domain = reply
            .lines
            .first()
            .and_then(|l| l.split_whitespace().next())
            .unwrap_or("")
            .to_string();
        Capabilities {
            domain,
            ..Capabilities::default()
        }
    }

    /// True when the server advertised this keyword (case-insensitive).
    pub fn has(&self, keyword: &str) -> bool {
        self.keywords.iter().any(|(k, _)| k.eq_ignore_ascii_case(keyword))
    }

    /// True when the server offers this SASL mechanism.
    pub fn offers_auth(&self, mechanism: &str) -> bool {
        self.auth.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }

    fn apply(&mut self, keyword: &str, params: &[String]) {
        match keyword {
            "SIZE" => {
                self.size = true;
                // A limit that does not parse is treated as none, not as zero.
                self.size_limit = params.first().and_then(|p| p.parse::<u64>().ok()).filter(|&n| n > 0);
            }
            "PIPELINING" => self.pipelining = true,
            "CHUNKING" => self.chunking = true,
            "BINARYMIME" => self.binarymime = true,
            "8BITMIME" => self.eightbitmime = true,
            "SMTPUTF8" => self.smtputf8 = true,
            "DSN" => self.dsn = true,
            "ENHANCEDSTATUSCODES" => self.enhanced_status_codes = true,
            "REQUIRETLS" => self.requiretls = true,
            "STARTTLS" => self.starttls = true,
            "AUTH" => self.add_auth(params.iter().map(String::as_str)),
            _ => {
                // Old servers (and Outlook-era clients) also accept `AUTH=LOGIN PLAIN`.
                if let Some(first) = keyword.strip_prefix("AUTH=") {
                    let rest = params.iter().map(String::as_str);
                    self.add_auth(std::iter::once(first).filter(|m| !m.is_empty()).chain(rest));
                }
            }
        }
    }

    fn add_auth<'a>(&mut self, mechanisms: impl Iterator<Item = &'a str>) {
        for mechanism in mechanisms {
            let name = mechanism.to_ascii_uppercase();
            if !self.auth.contains(&name) {
                self.auth.push(name);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ehlo(lines: &[&str]) -> Capabilities {
        Capabilities::from_ehlo(&Reply {
            code: 250,
            enhanced: None,
            lines: lines.iter().map(|l| l.to_string()).collect(),
        })
    }

    #[test]
    fn postfix_style_ehlo() {
        let caps = ehlo(&[
            "mx.example.com",
            "PIPELINING",
            "SIZE 10240000",
            "VRFY",
            "ETRN",
            "STARTTLS",
            "AUTH PLAIN LOGIN CRAM-MD5",
            "ENHANCEDSTATUSCODES",
            "8BITMIME",
            "DSN",
            "SMTPUTF8",
            "CHUNKING",
        ]);
        assert_eq!(caps.domain, "mx.example.com");
        assert!(caps.esmtp && caps.pipelining && caps.starttls && caps.chunking && caps.dsn && caps.smtputf8);
        assert!(caps.eightbitmime && caps.enhanced_status_codes && caps.size);
        assert_eq!(caps.size_limit, Some(10_240_000));
        assert_eq!(caps.auth, vec!["PLAIN", "LOGIN", "CRAM-MD5"]);
        assert!(caps.has("vrfy") && !caps.requiretls && !caps.binarymime);
    }

    #[test]
    fn legacy_auth_form_and_case_are_understood() {
        let caps = ehlo(&["mx", "auth=LOGIN PLAIN", "Auth login xoauth2", "size"]);
        assert_eq!(caps.auth, vec!["LOGIN", "PLAIN", "XOAUTH2"]);
        assert!(caps.offers_auth("xoauth2"));
        assert!(caps.size);
        assert_eq!(caps.size_limit, None);
    }

    #[test]
    fn size_zero_or_garbage_means_no_limit() {
        assert_eq!(ehlo(&["mx", "SIZE 0"]).size_limit, None);
        assert_eq!(ehlo(&["mx", "SIZE lots"]).size_limit, None);
    }

    #[test]
    fn helo_has_no_extensions() {
        let caps = Capabilities::from_helo(&Reply {
            code: 250,
            enhanced: None,
            lines: vec!["old.example.com hi".into()],
        });
        assert_eq!(caps.domain, "old.example.com");
        assert!(!caps.esmtp && !caps.pipelining && caps.auth.is_empty());
    }
}
