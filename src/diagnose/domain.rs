//! The domain doctor's judgement: for a sending domain, what its DNS says
//! about mail (MX, SPF, DMARC, DKIM, MTA-STS, TLS-RPT), and whether this
//! machine should deliver directly or through a relay.
//!
//! Hosts fetch the records and run one TCP probe; every finding, hint and
//! the verdict are made here. The host asks [`DomainFacts::txt_names_wanted`]
//! which TXT names to look up (SPF includes appear as the records that name
//! them are learned), until nothing more is wanted.

use std::collections::BTreeMap;

use super::dkim_key::{self, DkimKey};
use super::dmarc::{self, Policy, has_version, tag, tags};
use super::spf;
use super::{Finding, FindingCode, Reachability, Severity};
use crate::mta_sts;

/// One MX record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    pub priority: u16,
    /// The host name; `""` or `"."` in a null MX (RFC 7505).
    pub exchange: String,
}

impl MxRecord {
    fn is_null(&self) -> bool {
        matches!(self.exchange.trim_end_matches('.'), "")
    }
}

/// A DNS answer: the records, or the resolver's error text. A name that
/// does not exist, or has no record of the type, is an empty answer.
pub type Answer<T> = Result<Vec<T>, String>;

/// Whether this machine reached port 25 of the domain's mail host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port25Probe {
    pub host: String,
    pub port: u16,
    pub reachability: Reachability,
}

/// Everything the host found about a domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainFacts {
    /// The domain, lower case, without a trailing dot.
    pub domain: String,
    /// `None` until looked up.
    pub mx: Option<Answer<MxRecord>>,
    /// TXT answers by lower-case name (each string one record, its parts joined).
    pub txt: BTreeMap<String, Answer<String>>,
    /// The DKIM selector to check, if one was given or found in a message.
    pub dkim_selector: Option<String>,
    /// The MTA-STS policy file, or why it could not be fetched; `None` until fetched.
    pub mta_sts_policy: Option<Result<String, String>>,
    pub port25: Option<Port25Probe>,
    /// The name this machine would announce in EHLO when delivering
    /// directly; `None`: not told, not judged.
    pub ehlo_name: Option<String>,
}

impl DomainFacts {
    pub fn new(domain: &str) -> DomainFacts {
        DomainFacts {
            domain: normalize(domain),
            mx: None,
            txt: BTreeMap::new(),
            dkim_selector: None,
            mta_sts_policy: None,
            port25: None,
            ehlo_name: None,
        }
    }

    pub fn dmarc_name(&self) -> String {
        format!("_dmarc.{}", self.domain)
    }

    pub fn mta_sts_name(&self) -> String {
        format!("_mta-sts.{}", self.domain)
    }

    pub fn tls_rpt_name(&self) -> String {
        format!("_smtp._tls.{}", self.domain)
    }

    pub fn dkim_name(&self) -> Option<String> {
        self.dkim_selector
            .as_ref()
            .map(|s| format!("{s}._domainkey.{}", self.domain))
    }

    /// Records a TXT answer for `name`.
    pub fn add_txt(&mut self, name: &str, answer: Answer<String>) {
        self.txt.insert(normalize(name), answer);
    }

    /// TXT names still to look up: the domain's own records, then the
    /// domains its SPF record includes (as far as they are known).
    pub fn txt_names_wanted(&self) -> Vec<String> {
        let mut names = vec![
            self.domain.clone(),
            self.dmarc_name(),
            self.mta_sts_name(),
            self.tls_rpt_name(),
        ];
        names.extend(self.dkim_name());
        if let Some(Ok(record)) = self.spf_record() {
            names.extend(spf::count_lookups(&record, &self.known_txt()).unresolved);
        }
        names.retain(|n| !self.txt.contains_key(n));
        names
    }

    /// Whether the policy file should be fetched: the `_mta-sts` record says there is one.
    pub fn wants_mta_sts_policy(&self) -> bool {
        let announced = match self.txt.get(&self.mta_sts_name()) {
            Some(Ok(list)) => matches!(mta_sts::record_id(list), Ok(Some(_))),
            _ => false,
        };
        self.mta_sts_policy.is_none() && announced
    }

    /// The host to probe on port 25: the most preferred MX, or the domain
    /// itself when it has no MX (RFC 5321 §5.1); `None` for a null MX.
    pub fn port25_target(&self) -> Option<String> {
        match self.mx.as_ref()? {
            Ok(list) if list.iter().any(MxRecord::is_null) => None,
            Ok(list) => Some(
                list.iter()
                    .min_by_key(|mx| mx.priority)
                    .map_or_else(|| self.domain.clone(), |mx| normalize(&mx.exchange)),
            ),
            Err(_) => None,
        }
    }

    /// The successful TXT answers.
    fn known_txt(&self) -> BTreeMap<String, Vec<String>> {
        self.txt
            .iter()
            .filter_map(|(name, answer)| Some((name.clone(), answer.as_ref().ok()?.clone())))
            .collect()
    }

    /// The domain's one SPF record, parsed (`None` when there is not exactly one).
    fn spf_record(&self) -> Option<Result<spf::SpfRecord, String>> {
        match self.txt.get(&self.domain) {
            Some(Ok(list)) => match spf::records(list).as_slice() {
                [one] => Some(spf::parse(one)),
                _ => None,
            },
            _ => None,
        }
    }
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Relay or direct.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Through a provider's relay (a smarthost on 587 or 465, with AUTH).
    Relay,
    /// Straight to each recipient domain's MX on port 25.
    Direct,
}

impl DeliveryMode {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryMode::Relay => "relay",
            DeliveryMode::Direct => "direct",
        }
    }
}

/// How this machine should send the domain's mail, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub mode: DeliveryMode,
    pub reason: String,
}

/// The domain doctor's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainDiagnosis {
    pub findings: Vec<Finding>,
    pub verdict: Verdict,
}

impl DomainDiagnosis {
    /// No finding is an error (the CLI's exit status).
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.severity != Severity::Error)
    }
}

/// Judges what was found about a domain.
pub fn diagnose_domain(facts: &DomainFacts) -> DomainDiagnosis {
    let mut out = Findings(Vec::new());
    judge_mx(facts, &mut out);
    judge_spf(facts, &mut out);
    judge_dmarc(facts, &mut out);
    judge_dkim(facts, &mut out);
    judge_mta_sts(facts, &mut out);
    judge_tls_rpt(facts, &mut out);
    judge_ehlo_name(facts, &mut out);
    let verdict = judge_port25(facts, &mut out);
    DomainDiagnosis {
        findings: out.0,
        verdict,
    }
}

/// The findings so far, one sentence at a time.
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, severity: Severity, code: FindingCode, message: String, hint: Option<&str>) {
        self.0.push(Finding {
            port: None,
            severity,
            code,
            message,
            hint: hint.map(str::to_string),
            // A domain's fixes are DNS records, not client options.
            fix: Vec::new(),
        });
    }

    /// The TXT answer for `name`; a failed lookup is reported and gives `None`.
    fn txt<'a>(&mut self, facts: &'a DomainFacts, name: &str) -> Option<&'a [String]> {
        match facts.txt.get(name)? {
            Ok(list) => Some(list),
            Err(why) => {
                self.dns_failed(&format!("TXT {name}"), why);
                None
            }
        }
    }

    fn dns_failed(&mut self, what: &str, why: &str) {
        self.add(
            Severity::Error,
            FindingCode::DnsFailed,
            format!("looking up {what} failed: {why}."),
            Some("check the DNS server (the dns option), or try again: a time-out is often passing."),
        );
    }
}

fn judge_mx(facts: &DomainFacts, out: &mut Findings) {
    let domain = &facts.domain;
    let list = match &facts.mx {
        None => return,
        Some(Err(why)) => return out.dns_failed(&format!("MX {domain}"), why),
        Some(Ok(list)) => list,
    };
    if list.iter().any(MxRecord::is_null) {
        out.add(
            Severity::Warning,
            FindingCode::MxNull,
            format!("{domain} publishes a null MX (RFC 7505): it receives no mail."),
            Some("bounces and replies to this domain cannot arrive; send from an address of a domain that receives mail, or remove the null MX."),
        );
        return;
    }
    if list.is_empty() {
        out.add(
            Severity::Warning,
            FindingCode::MxNone,
            format!("{domain} has no MX record: mail to it goes to the address of {domain} itself."),
            Some(
                "publish an MX record naming the host that receives the domain's mail (bounces and replies go there).",
            ),
        );
        return;
    }
    let mut sorted = list.clone();
    sorted.sort_by_key(|mx| mx.priority);
    let hosts: Vec<String> = sorted
        .iter()
        .map(|mx| format!("{} {}", mx.priority, normalize(&mx.exchange)))
        .collect();
    out.add(
        Severity::Ok,
        FindingCode::MxFound,
        format!("{domain} receives mail at: {}.", hosts.join(", ")),
        None,
    );
}

const SPF_EXAMPLE: &str = "v=spf1 mx include:<your provider's SPF domain> -all";

fn judge_spf(facts: &DomainFacts, out: &mut Findings) {
    let domain = &facts.domain;
    let Some(txt) = out.txt(facts, domain) else { return };
    let found = spf::records(txt);
    let record = match found.as_slice() {
        [] => {
            return out.add(
                Severity::Error,
                FindingCode::SpfMissing,
                format!("{domain} has no SPF record: receivers cannot tell which servers may send its mail."),
                Some(&format!(
                    "publish a TXT record on {domain} naming the servers that send for it, e.g. \"{SPF_EXAMPLE}\"."
                )),
            );
        }
        [one] => *one,
        _ => {
            return out.add(
                Severity::Error,
                FindingCode::SpfMultiple,
                format!(
                    "{domain} has {} SPF records; receivers treat that as a permanent error (RFC 7208 §4.5).",
                    found.len()
                ),
                Some("merge them into one TXT record that starts with v=spf1."),
            );
        }
    };
    let parsed = match spf::parse(record) {
        Ok(parsed) => parsed,
        Err(why) => {
            return out.add(
                Severity::Error,
                FindingCode::SpfSyntax,
                format!("the SPF record of {domain} is not valid: {why}. Receivers treat it as a permanent error."),
                Some(&format!(
                    "correct the record; a valid one looks like \"{SPF_EXAMPLE}\"."
                )),
            );
        }
    };
    let count = spf::count_lookups(&parsed, &facts.known_txt());
    let unknown = if count.unresolved.is_empty() {
        String::new()
    } else {
        format!(", not counting {} (not looked up)", count.unresolved.join(", "))
    };
    out.add(
        Severity::Ok,
        FindingCode::SpfFound,
        format!(
            "SPF record of {domain}: \"{record}\" ({} DNS lookup{}{unknown}).",
            count.total,
            if count.total == 1 { "" } else { "s" }
        ),
        None,
    );
    match parsed.all.or(parsed.redirect.as_ref().map(|_| spf::Qualifier::Fail)) {
        Some(spf::Qualifier::Pass) => out.add(
            Severity::Error,
            FindingCode::SpfPassAll,
            format!("the SPF record of {domain} ends with +all: it lets every server on the Internet send as {domain}."),
            Some("end it with -all (or ~all while you check that every sender is listed)."),
        ),
        Some(spf::Qualifier::Neutral) | None => out.add(
            Severity::Warning,
            FindingCode::SpfNeutralAll,
            format!(
                "the SPF record of {domain} {}: mail from servers it does not list gets a neutral result, which protects nothing.",
                if parsed.all.is_some() { "ends with ?all" } else { "has no all mechanism" }
            ),
            Some("end it with -all (or ~all while you check that every sender is listed)."),
        ),
        Some(_) => {}
    }
    if count.total > 10 {
        out.add(
            Severity::Error,
            FindingCode::SpfTooManyLookups,
            format!(
                "the SPF record of {domain} needs {} DNS lookups (include, a, mx, ptr, exists and redirect, counted through the includes); more than 10 is a permanent error (RFC 7208 §4.6.4).",
                count.total
            ),
            Some("remove includes of services you no longer use, replace a and mx by ip4:/ip6: ranges, or flatten an include into its addresses."),
        );
    }
    for missing in &count.without_spf {
        out.add(
            Severity::Error,
            FindingCode::SpfIncludeMissing,
            format!("the SPF record of {domain} includes {missing}, which has no SPF record: receivers treat that as a permanent error."),
            Some("check the spelling of the include against your provider's documentation, or remove it."),
        );
    }
}

fn judge_dmarc(facts: &DomainFacts, out: &mut Findings) {
    let domain = &facts.domain;
    let name = facts.dmarc_name();
    let Some(txt) = out.txt(facts, &name) else { return };
    let found: Vec<&String> = txt.iter().filter(|t| has_version(t, "DMARC1")).collect();
    let record = match found.as_slice() {
        [] => {
            return out.add(
                Severity::Warning,
                FindingCode::DmarcMissing,
                format!("{domain} has no DMARC record ({name}): large receivers (Gmail, Yahoo) require one from bulk senders, and anyone can use {domain} in From:."),
                Some(&format!("publish a TXT record on {name}, starting with \"v=DMARC1; p=none; rua=mailto:dmarc@{domain}\" to collect reports, then move to p=quarantine or p=reject.")),
            );
        }
        [one] => one.as_str(),
        _ => {
            return out.add(
                Severity::Error,
                FindingCode::DmarcSyntax,
                format!(
                    "{name} has {} DMARC records; receivers then apply none (RFC 7489 §6.6.3).",
                    found.len()
                ),
                Some("keep one TXT record that starts with v=DMARC1."),
            );
        }
    };
    let parsed = match dmarc::parse(record) {
        Ok(parsed) => parsed,
        Err(why) => {
            return out.add(
                Severity::Error,
                FindingCode::DmarcSyntax,
                format!("the DMARC record of {domain} is not valid: {why}."),
                Some("correct it; a valid one looks like \"v=DMARC1; p=quarantine; rua=mailto:dmarc@example.com\"."),
            );
        }
    };
    let applied = if parsed.percent < 100 {
        format!(" to {}% of failing mail", parsed.percent)
    } else {
        String::new()
    };
    let policy = parsed.policy.as_str();
    if parsed.policy == Policy::None {
        out.add(
            Severity::Warning,
            FindingCode::DmarcPolicyNone,
            format!("the DMARC policy of {domain} is p=none: receivers only report failing mail, they do not stop it."),
            Some(if parsed.reports_to.is_some() {
                "once the reports show all your mail passing, move to p=quarantine, then p=reject."
            } else {
                "add rua=mailto:<address> to receive reports, and once they show all your mail passing, move to p=quarantine, then p=reject."
            }),
        );
    } else {
        out.add(
            Severity::Ok,
            FindingCode::DmarcFound,
            format!("the DMARC policy of {domain} is p={policy}{applied}: receivers act on mail that fails."),
            None,
        );
    }
    let mode = |strict: bool| {
        if strict {
            "strict: exactly"
        } else {
            "relaxed: the same organisational domain as"
        }
    };
    out.add(
        Severity::Info,
        FindingCode::DmarcAlignment,
        format!(
            "DMARC passes only when the From: domain is aligned: SPF ({}) the MAIL FROM domain, or DKIM ({}) the d= domain of a valid signature.",
            mode(parsed.strict_spf),
            mode(parsed.strict_dkim)
        ),
        Some(&format!(
            "send with a From: at {domain} and sign with DKIM d={domain}: a relay that signs with its own domain, or a bounce address at another domain, does not align."
        )),
    );
}

fn judge_dkim(facts: &DomainFacts, out: &mut Findings) {
    let domain = &facts.domain;
    let Some(name) = facts.dkim_name() else {
        return out.add(
            Severity::Info,
            FindingCode::DkimNotChecked,
            format!("no DKIM selector was given, so no key of {domain} was checked (DNS cannot list selectors)."),
            Some("name one with selector (CLI: --selector), or pass a message signed by your server (CLI: --file): its DKIM-Signature names it."),
        );
    };
    let Some(txt) = out.txt(facts, &name) else { return };
    let keys: Vec<&String> = txt
        .iter()
        .filter(|t| has_version(t, "DKIM1") || t.contains("p="))
        .collect();
    let Some(record) = keys.first() else {
        return out.add(
            Severity::Error,
            FindingCode::DkimMissing,
            format!("there is no DKIM key at {name}: signatures with this selector fail."),
            Some("publish the public key there (wasmtp dkim keygen prints the record), or check the selector's spelling."),
        );
    };
    match dkim_key::parse_key(record) {
        Err(why) => out.add(
            Severity::Error,
            FindingCode::DkimSyntax,
            format!("the DKIM key at {name} is not usable: {why}."),
            Some(
                "publish the record again as \"v=DKIM1; k=rsa; p=<base64 public key>\" (wasmtp dkim keygen prints it).",
            ),
        ),
        Ok(DkimKey::Revoked) => out.add(
            Severity::Error,
            FindingCode::DkimRevoked,
            format!("the DKIM key at {name} is revoked (empty p=): signatures with this selector fail."),
            Some("sign with a current selector, or publish a new key."),
        ),
        Ok(DkimKey::Rsa { bits }) if bits < 1024 => out.add(
            Severity::Error,
            FindingCode::DkimKeyTooSmall,
            format!(
                "the DKIM key at {name} is RSA with {bits} bits: receivers ignore keys under 1024 bits (RFC 8301)."
            ),
            Some("generate a 2048-bit key (wasmtp dkim keygen) under a new selector, publish it, then switch."),
        ),
        Ok(DkimKey::Rsa { bits }) if bits < 2048 => out.add(
            Severity::Warning,
            FindingCode::DkimKeyWeak,
            format!(
                "the DKIM key at {name} is RSA with {bits} bits: still accepted, but 2048 is the recommended minimum."
            ),
            Some("generate a 2048-bit key (wasmtp dkim keygen) under a new selector, publish it, then switch."),
        ),
        Ok(key) => out.add(
            Severity::Ok,
            FindingCode::DkimFound,
            format!(
                "DKIM key at {name}: {}.",
                match key {
                    DkimKey::Rsa { bits } => format!("RSA, {bits} bits"),
                    _ => "Ed25519".to_string(),
                }
            ),
            None,
        ),
    }
}

fn judge_mta_sts(facts: &DomainFacts, out: &mut Findings) {
    let domain = &facts.domain;
    let name = facts.mta_sts_name();
    let Some(txt) = out.txt(facts, &name) else { return };
    match mta_sts::record_id(txt) {
        Ok(None) => out.add(
            Severity::Info,
            FindingCode::MtaStsMissing,
            format!("{domain} has no MTA-STS record ({name}): senders may deliver to it without TLS, or to an impostor."),
            Some(&format!("optional: publish \"v=STSv1; id=<date>\" there and a policy at https://mta-sts.{domain}/.well-known/mta-sts.txt.")),
        ),
        Err(why) => out.add(
            Severity::Error,
            FindingCode::MtaStsSyntax,
            format!("the MTA-STS record at {name} is not valid: {why}; senders then ignore MTA-STS."),
            Some("publish exactly one \"v=STSv1; id=<1 to 32 letters and digits, changed with each policy>\"."),
        ),
        Ok(Some(_)) => judge_mta_sts_policy(facts, out),
    }
}

/// The policy file, once the `_mta-sts` record says there is one.
fn judge_mta_sts_policy(facts: &DomainFacts, out: &mut Findings) {
    let domain = &facts.domain;
    let url = format!("https://mta-sts.{domain}/.well-known/mta-sts.txt");
    let text = match &facts.mta_sts_policy {
        None => return,
        Some(Err(why)) => {
            return out.add(
                Severity::Error,
                FindingCode::MtaStsPolicyUnavailable,
                format!("{domain} announces MTA-STS, but its policy could not be fetched from {url}: {why}."),
                Some("serve the policy there over HTTPS with a valid certificate for mta-sts.<domain>, or remove the _mta-sts record."),
            );
        }
        Some(Ok(text)) => text,
    };
    let policy = match mta_sts::Policy::parse(text) {
        Ok(policy) => policy,
        Err(why) => {
            return out.add(
                Severity::Error,
                FindingCode::MtaStsSyntax,
                format!("the MTA-STS policy at {url} is not valid: {why}; senders then ignore it."),
                Some("it needs the lines version: STSv1, mode: enforce|testing|none, one mx: line per MX host (or *.domain pattern) and max_age: <seconds>."),
            );
        }
    };
    let mode = policy.mode;
    let patterns = if policy.mx.is_empty() {
        "(none)".to_string()
    } else {
        policy.mx.join(", ")
    };
    out.add(
        Severity::Ok,
        FindingCode::MtaStsFound,
        format!(
            "the MTA-STS policy of {domain}: mode {}, mx {patterns}, max_age {} s.",
            mode.as_str(),
            policy.max_age
        ),
        None,
    );
    if mode != mta_sts::Mode::Enforce {
        out.add(
            Severity::Info,
            FindingCode::MtaStsTesting,
            format!(
                "the MTA-STS policy of {domain} is in {} mode: senders deliver even when TLS to the MX fails.",
                mode.as_str()
            ),
            Some("once TLS reports (TLS-RPT) show no failures, switch to mode: enforce."),
        );
    }
    let Some(Ok(mx)) = &facts.mx else { return };
    if mode == mta_sts::Mode::None {
        return;
    }
    for host in mx.iter().filter(|r| !r.is_null()).map(|r| normalize(&r.exchange)) {
        if !policy.matches(&host) {
            out.add(
                if mode == mta_sts::Mode::Enforce {
                    Severity::Error
                } else {
                    Severity::Warning
                },
                FindingCode::MtaStsMxMismatch,
                format!("the MX host {host} does not match the MTA-STS policy's mx patterns ({patterns}): senders that enforce it will not deliver there."),
                Some(&format!("add \"mx: {host}\" to the policy (and change the id of the _mta-sts record), or correct the MX record.")),
            );
        }
    }
}

fn judge_tls_rpt(facts: &DomainFacts, out: &mut Findings) {
    let domain = &facts.domain;
    let name = facts.tls_rpt_name();
    let Some(txt) = out.txt(facts, &name) else { return };
    let found: Vec<&String> = txt.iter().filter(|t| has_version(t, "TLSRPTv1")).collect();
    let Some(record) = found.first() else {
        return out.add(
            Severity::Info,
            FindingCode::TlsRptMissing,
            format!("{domain} has no TLS-RPT record ({name}): senders cannot tell you when TLS to your MX fails."),
            Some(&format!(
                "optional: publish \"v=TLSRPTv1; rua=mailto:tls-reports@{domain}\" there."
            )),
        );
    };
    let rua = tags(record)
        .ok()
        .and_then(|t| tag(&t, "rua").map(str::to_string))
        .filter(|rua| {
            rua.split(',')
                .all(|u| u.trim().starts_with("mailto:") || u.trim().starts_with("https:"))
        });
    match rua {
        Some(rua) if found.len() == 1 => out.add(
            Severity::Ok,
            FindingCode::TlsRptFound,
            format!("{domain} asks for TLS reports at {rua}."),
            None,
        ),
        _ => out.add(
            Severity::Error,
            FindingCode::TlsRptSyntax,
            format!("the TLS-RPT record at {name} is not valid: it needs exactly one record with rua=mailto:… or rua=https:… (RFC 8460)."),
            Some(&format!("publish one \"v=TLSRPTv1; rua=mailto:tls-reports@{domain}\".")),
        ),
    }
}

/// RFC 5321 §4.1.1.1 wants the client's fully qualified name in EHLO, and
/// receivers check it: `localhost`, a bare host name or an address literal
/// is a spam signal when a machine delivers directly (a relay does not care).
fn judge_ehlo_name(facts: &DomainFacts, out: &mut Findings) {
    let Some(name) = &facts.ehlo_name else { return };
    let lower = name.to_ascii_lowercase();
    let suspect = lower == "localhost"
        || lower.ends_with(".localdomain")
        || lower.ends_with(".local")
        || lower.starts_with('[')
        || !lower.trim_end_matches('.').contains('.');
    if suspect {
        out.add(
            Severity::Warning,
            FindingCode::EhloNameSuspect,
            format!("delivering directly, this machine would announce itself in EHLO as \"{name}\", which receivers score as spam (not a public, fully qualified name)."),
            Some("set clientName to this machine's public name, the one its reverse DNS (PTR) names and whose address SPF lists; through a relay it does not matter."),
        );
    } else {
        out.add(
            Severity::Ok,
            FindingCode::EhloName,
            format!("delivering directly, this machine announces itself in EHLO as \"{name}\"; its reverse DNS (PTR) should name it too."),
            None,
        );
    }
}

fn judge_port25(facts: &DomainFacts, out: &mut Findings) -> Verdict {
    let relay = |reason: String| Verdict {
        mode: DeliveryMode::Relay,
        reason,
    };
    let Some(probe) = &facts.port25 else {
        return relay(format!(
            "port 25 could not be tested (no mail host of {} to try); a relay on 587 or 465 works from anywhere.",
            facts.domain
        ));
    };
    let (host, port) = (&probe.host, probe.port);
    let why = match &probe.reachability {
        Reachability::Open { connect_ms } => {
            out.add(
                Severity::Ok,
                FindingCode::Port25Open,
                format!("this machine reaches port {port} of {host} (in {connect_ms} ms): outbound SMTP is not blocked here."),
                None,
            );
            return Verdict {
                mode: DeliveryMode::Direct,
                reason: format!(
                    "this machine can reach port {port} of mail servers, so it can deliver directly (mx: true). Receivers also want SPF of {} to list this machine's public address, and its reverse DNS (PTR) to name it; if you cannot arrange both, or it is a home or cloud address, use a relay.",
                    facts.domain
                ),
            };
        }
        Reachability::Refused => "the connection was refused",
        Reachability::TimedOut => "the connection timed out",
        Reachability::Unresolved => "the host name does not resolve",
        Reachability::Failed(detail) => detail.as_str(),
    };
    out.add(
        Severity::Warning,
        FindingCode::Port25Blocked,
        format!("this machine cannot reach port {port} of {host}: {why}."),
        Some("many networks and cloud providers (and Cloudflare Workers) block outbound port 25; send through a relay on 587 or 465."),
    );
    relay(format!(
        "this machine cannot reach port {port} of {host} ({why}), so direct delivery would fail: send through your provider's relay on 587 or 465 with AUTH."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn txt(list: &[&str]) -> Answer<String> {
        Ok(list.iter().map(|s| s.to_string()).collect())
    }

    /// A domain with an MX and, unless replaced, nothing else.
    fn facts() -> DomainFacts {
        let mut f = DomainFacts::new("Example.COM.");
        f.mx = Some(Ok(vec![
            MxRecord {
                priority: 20,
                exchange: "mx2.example.com.".into(),
            },
            MxRecord {
                priority: 10,
                exchange: "mx1.example.com".into(),
            },
        ]));
        for name in f.txt_names_wanted() {
            f.add_txt(&name, Ok(vec![]));
        }
        f
    }

    fn codes(f: &DomainFacts) -> Vec<&'static str> {
        diagnose_domain(f).findings.iter().map(|f| f.code.as_str()).collect()
    }

    fn finding(f: &DomainFacts, code: FindingCode) -> Finding {
        diagnose_domain(f)
            .findings
            .into_iter()
            .find(|x| x.code == code)
            .unwrap_or_else(|| panic!("no {code} in {:?}", codes(f)))
    }

    #[test]
    fn a_bare_domain() {
        let f = facts();
        assert_eq!(f.domain, "example.com");
        assert_eq!(f.port25_target().as_deref(), Some("mx1.example.com"));
        assert_eq!(
            codes(&f),
            vec![
                "MX_FOUND",
                "SPF_MISSING",
                "DMARC_MISSING",
                "DKIM_NOT_CHECKED",
                "MTA_STS_MISSING",
                "TLS_RPT_MISSING"
            ]
        );
        assert!(
            finding(&f, FindingCode::MxFound)
                .message
                .contains("10 mx1.example.com, 20 mx2.example.com")
        );
        let d = diagnose_domain(&f);
        assert!(!d.ok());
        assert_eq!(d.verdict.mode, DeliveryMode::Relay);
    }

    #[test]
    fn null_and_missing_mx() {
        let mut f = facts();
        f.mx = Some(Ok(vec![MxRecord {
            priority: 0,
            exchange: ".".into(),
        }]));
        assert_eq!(finding(&f, FindingCode::MxNull).severity, Severity::Warning);
        assert_eq!(f.port25_target(), None);
        f.mx = Some(Ok(vec![]));
        assert!(codes(&f).contains(&"MX_NONE"));
        assert_eq!(f.port25_target().as_deref(), Some("example.com"));
        f.mx = Some(Err("SERVFAIL".into()));
        assert!(
            finding(&f, FindingCode::DnsFailed)
                .message
                .contains("MX example.com failed: SERVFAIL")
        );
    }

    #[test]
    fn spf_findings() {
        let mut f = facts();
        f.add_txt("example.com", txt(&["v=spf1 mx -all"]));
        assert!(finding(&f, FindingCode::SpfFound).message.contains("(1 DNS lookup)"));
        assert!(
            diagnose_domain(&f)
                .findings
                .iter()
                .all(|x| !x.code.as_str().starts_with("SPF_") || x.code == FindingCode::SpfFound)
        );
        f.add_txt("example.com", txt(&["v=spf1 +all"]));
        assert_eq!(finding(&f, FindingCode::SpfPassAll).severity, Severity::Error);
        f.add_txt("example.com", txt(&["v=spf1 mx ?all"]));
        assert_eq!(finding(&f, FindingCode::SpfNeutralAll).severity, Severity::Warning);
        f.add_txt("example.com", txt(&["v=spf1 mx"]));
        assert!(finding(&f, FindingCode::SpfNeutralAll).message.contains("no all"));
        f.add_txt("example.com", txt(&["v=spf1 mx -all", "v=spf1 a -all"]));
        assert!(codes(&f).contains(&"SPF_MULTIPLE"));
        f.add_txt("example.com", txt(&["v=spf1 include: -all"]));
        assert!(finding(&f, FindingCode::SpfSyntax).message.contains("include:"));
        f.add_txt("example.com", txt(&["v=spf1 redirect=_spf.example.com"]));
        assert!(!codes(&f).contains(&"SPF_NEUTRAL_ALL"), "a redirect ends the record");
        f.add_txt("example.com", Err("timed out".into()));
        assert!(finding(&f, FindingCode::DnsFailed).message.contains("TXT example.com"));
    }

    #[test]
    fn spf_includes_are_looked_up_and_counted() {
        let mut f = facts();
        f.add_txt(
            "example.com",
            txt(&["v=spf1 a mx include:a.example include:gone.example -all"]),
        );
        assert_eq!(f.txt_names_wanted(), vec!["a.example", "gone.example"]);
        f.add_txt("a.example", txt(&["v=spf1 include:b.example a a a ~all"]));
        f.add_txt("gone.example", txt(&[]));
        assert_eq!(f.txt_names_wanted(), vec!["b.example"]);
        f.add_txt("b.example", txt(&["v=spf1 a a a a ptr -all"]));
        assert!(f.txt_names_wanted().is_empty());
        let too_many = finding(&f, FindingCode::SpfTooManyLookups);
        assert!(
            too_many.message.contains("needs 13 DNS lookups"),
            "{}",
            too_many.message
        );
        assert!(
            finding(&f, FindingCode::SpfIncludeMissing)
                .message
                .contains("gone.example")
        );
    }

    #[test]
    fn dmarc_findings() {
        let mut f = facts();
        f.add_txt("_dmarc.example.com", txt(&["v=DMARC1; p=reject; adkim=s"]));
        assert_eq!(finding(&f, FindingCode::DmarcFound).severity, Severity::Ok);
        let alignment = finding(&f, FindingCode::DmarcAlignment);
        assert!(alignment.message.contains("DKIM (strict"), "{}", alignment.message);
        f.add_txt("_dmarc.example.com", txt(&["v=DMARC1; p=none"]));
        assert!(finding(&f, FindingCode::DmarcPolicyNone).hint.unwrap().contains("rua="));
        f.add_txt("_dmarc.example.com", txt(&["v=DMARC1; p=maybe"]));
        assert!(finding(&f, FindingCode::DmarcSyntax).message.contains("p=maybe"));
        f.add_txt("_dmarc.example.com", txt(&["v=DMARC1; p=none", "v=DMARC1; p=reject"]));
        assert!(codes(&f).contains(&"DMARC_SYNTAX"));
    }

    #[test]
    fn dkim_findings() {
        let mut f = facts();
        f.dkim_selector = Some("s1".into());
        assert_eq!(f.txt_names_wanted(), vec!["s1._domainkey.example.com"]);
        f.add_txt("s1._domainkey.example.com", txt(&[]));
        assert!(codes(&f).contains(&"DKIM_MISSING"));
        f.add_txt("s1._domainkey.example.com", txt(&["v=DKIM1; p="]));
        assert!(codes(&f).contains(&"DKIM_REVOKED"));
        f.add_txt("s1._domainkey.example.com", txt(&["v=DKIM1; k=rsa; p=%%%"]));
        assert!(codes(&f).contains(&"DKIM_SYNTAX"));
        let ed = crate::base64::encode([1u8; 32]);
        f.add_txt(
            "s1._domainkey.example.com",
            txt(&[&format!("v=DKIM1; k=ed25519; p={ed}")]),
        );
        assert!(finding(&f, FindingCode::DkimFound).message.contains("Ed25519"));
    }

    #[test]
    fn mta_sts_and_tls_rpt_records() {
        let mut f = facts();
        assert!(!f.wants_mta_sts_policy());
        f.add_txt("_mta-sts.example.com", txt(&["v=STSv1;"]));
        assert!(finding(&f, FindingCode::MtaStsSyntax).message.contains("no id"));
        assert!(!f.wants_mta_sts_policy());
        f.add_txt("_mta-sts.example.com", txt(&["v=STSv1; id=2026"]));
        assert!(f.wants_mta_sts_policy());
        f.mta_sts_policy = Some(Err("HTTP 404".into()));
        assert!(!f.wants_mta_sts_policy());
        assert!(
            finding(&f, FindingCode::MtaStsPolicyUnavailable)
                .message
                .contains("HTTP 404")
        );

        let policy =
            |mode: &str, mx: &str| Some(Ok(format!("version: STSv1\nmode: {mode}\nmx: {mx}\nmax_age: 86400\n")));
        f.mta_sts_policy = policy("enforce", "*.example.com");
        assert!(
            finding(&f, FindingCode::MtaStsFound)
                .message
                .contains("mode enforce, mx *.example.com")
        );
        assert!(!codes(&f).contains(&"MTA_STS_MX_MISMATCH"));
        f.mta_sts_policy = policy("enforce", "mx1.example.com");
        let mismatch = finding(&f, FindingCode::MtaStsMxMismatch);
        assert_eq!(mismatch.severity, Severity::Error);
        assert!(mismatch.message.contains("mx2.example.com"));
        f.mta_sts_policy = policy("testing", "mx1.example.com");
        assert_eq!(finding(&f, FindingCode::MtaStsMxMismatch).severity, Severity::Warning);
        assert!(codes(&f).contains(&"MTA_STS_TESTING"));
        f.mta_sts_policy = Some(Ok("version: STSv1\nmode: strict\n".into()));
        assert!(codes(&f).contains(&"MTA_STS_SYNTAX"));

        f.add_txt("_smtp._tls.example.com", txt(&["v=TLSRPTv1; rua=mailto:r@example.com"]));
        assert!(
            finding(&f, FindingCode::TlsRptFound)
                .message
                .contains("mailto:r@example.com")
        );
        f.add_txt("_smtp._tls.example.com", txt(&["v=TLSRPTv1; rua=r@example.com"]));
        assert!(codes(&f).contains(&"TLS_RPT_SYNTAX"));
    }

    #[test]
    fn the_verdict_follows_port_25() {
        let mut f = facts();
        f.port25 = Some(Port25Probe {
            host: "mx1.example.com".into(),
            port: 25,
            reachability: Reachability::Open { connect_ms: 3 },
        });
        let d = diagnose_domain(&f);
        assert_eq!(d.verdict.mode, DeliveryMode::Direct);
        assert!(codes(&f).contains(&"PORT_25_OPEN"));
        f.port25.as_mut().unwrap().reachability = Reachability::TimedOut;
        let d = diagnose_domain(&f);
        assert_eq!(d.verdict.mode, DeliveryMode::Relay);
        assert!(d.verdict.reason.contains("timed out"));
        assert_eq!(finding(&f, FindingCode::Port25Blocked).severity, Severity::Warning);
    }

    #[test]
    fn the_ehlo_name_is_judged_when_known() {
        let mut f = facts();
        assert!(!codes(&f).iter().any(|c| c.starts_with("EHLO_NAME")));
        for bad in ["localhost", "LOCALHOST", "build-box", "host.localdomain", "[192.0.2.1]"] {
            f.ehlo_name = Some(bad.into());
            let found = finding(&f, FindingCode::EhloNameSuspect);
            assert_eq!(found.severity, Severity::Warning, "{bad}");
            assert!(found.message.contains(bad), "{}", found.message);
        }
        f.ehlo_name = Some("mail.example.com".into());
        assert_eq!(finding(&f, FindingCode::EhloName).severity, Severity::Ok);
        assert!(!codes(&f).contains(&"EHLO_NAME_SUSPECT"));
    }
}
