//! The connection doctor's judgement: from what probes of several ports
//! found (reachability, greeting, capabilities before and after TLS, the
//! certificate, AUTH), decide what works, what is wrong, and what to use.
//!
//! Hosts run the probes (each one an ordinary [`Connection`](crate::Connection)
//! without messages) and fill in a [`PortProbe`] per port; every verdict,
//! message and hint is made here, so each runtime and the web page say the same.

use crate::auth::Mechanism;
use crate::capabilities::Capabilities;
use crate::config::Security;
use crate::error::{ErrorCode, Fix, Hint, Phase, SmtpError};
use crate::reply::Reply;
use crate::tls::TlsInfo;

mod dkim_key;
mod dmarc;
pub mod domain;
mod explain;
mod finding_code;
mod spf;

pub use crate::certificate::CertificateFacts;
pub use dkim_key::selector_in_message;
pub use domain::{DeliveryMode, DomainDiagnosis, DomainFacts, MxRecord, Port25Probe, Verdict, diagnose_domain};
pub use explain::TranscriptExplainer;
pub use finding_code::FindingCode;

/// What opening the TCP connection gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reachability {
    /// Connected after this many milliseconds.
    Open { connect_ms: u64 },
    /// Actively refused: nothing listens there.
    Refused,
    /// No answer at all within the probe's time-out: typically a firewall
    /// or a provider that blocks outbound SMTP.
    TimedOut,
    /// The host name does not resolve.
    Unresolved,
    /// Anything else, with the host's text.
    Failed(String),
}

impl Reachability {
    /// What a probe that ended with `err` says about the TCP connection:
    /// `Some` for a failure to connect (refused, time-out, unknown host),
    /// `None` when the error came later (the connection was open).
    pub fn from_error(err: &SmtpError) -> Option<Reachability> {
        if err.phase != Phase::Connect {
            return None;
        }
        if err.code == ErrorCode::TimedOut {
            return Some(Reachability::TimedOut);
        }
        if err.code != ErrorCode::Connect {
            return None;
        }
        // The message carries the host's text, e.g. "connect ECONNREFUSED 127.0.0.1:25".
        let text = err.message.to_ascii_lowercase();
        let has = |words: &[&str]| words.iter().any(|w| text.contains(w));
        Some(if has(&["refused", "downstream server"]) {
            Reachability::Refused
        } else if has(&[
            "enotfound",
            "getaddrinfo",
            "name resolution",
            "dns",
            "eai_again",
            "no such host",
        ]) {
            Reachability::Unresolved
        } else if has(&["timed out", "timeout", "etimedout"]) {
            Reachability::TimedOut
        } else {
            Reachability::Failed(err.message.clone())
        })
    }

    /// `"open"`, `"refused"`, `"timeout"`, `"unresolved"` or `"failed"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reachability::Open { .. } => "open",
            Reachability::Refused => "refused",
            Reachability::TimedOut => "timeout",
            Reachability::Unresolved => "unresolved",
            Reachability::Failed(_) => "failed",
        }
    }
}

/// How the optional login attempt went.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthOutcome {
    /// No credentials were given, or the probe never got that far.
    #[default]
    NotTried,
    Succeeded(Mechanism),
    Failed(SmtpError),
}

/// Everything one probe of one port found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortProbe {
    pub port: u16,
    /// The security mode the probe used on this port.
    pub security: Security,
    pub reachability: Reachability,
    pub greeting: Option<Reply>,
    /// The plaintext EHLO of a STARTTLS probe.
    pub capabilities_before_tls: Option<Capabilities>,
    /// The last EHLO (after TLS when there was TLS).
    pub capabilities: Option<Capabilities>,
    pub tls: Option<TlsInfo>,
    pub certificate: Option<CertificateFacts>,
    pub auth: AuthOutcome,
    /// The error that ended the probe early, if any.
    pub error: Option<SmtpError>,
}

impl PortProbe {
    /// A probe that has not learned anything yet.
    pub fn new(port: u16, security: Security, reachability: Reachability) -> Self {
        PortProbe {
            port,
            security,
            reachability,
            greeting: None,
            capabilities_before_tls: None,
            capabilities: None,
            tls: None,
            certificate: None,
            auth: AuthOutcome::NotTried,
            error: None,
        }
    }

    /// TLS is up and its certificate was verified.
    fn tls_verified(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.authorized)
    }

    /// Credentials were given and withheld because the link had no encryption.
    fn credentials_withheld_in_clear(&self) -> bool {
        self.tls.is_none() && self.error.as_ref().is_some_and(|e| e.code == ErrorCode::AuthInsecure)
    }

    /// The connection opened and then nothing came: no greeting within the
    /// time-out, without TLS (what an implicit-TLS port looks like).
    fn silent_without_tls(&self) -> bool {
        self.security != Security::Tls
            && self.greeting.is_none()
            && self.error.as_ref().is_some_and(|e| {
                e.phase == Phase::Greeting && matches!(e.code, ErrorCode::TimedOut | ErrorCode::TlsPortMismatch)
            })
    }

    /// The port spoke SMTP and ended up in a state messages could use.
    fn works(&self) -> bool {
        // A refused login (or a login withheld from an unverified TLS link)
        // says nothing against the port and security themselves.
        let withheld = |e: &SmtpError| e.code == ErrorCode::AuthInsecure && self.tls.is_some();
        let fatal = self
            .error
            .as_ref()
            .is_some_and(|e| !matches!(e.code, ErrorCode::Auth | ErrorCode::AuthUnsupported) && !withheld(e));
        matches!(self.reachability, Reachability::Open { .. }) && self.greeting.is_some() && !fatal
    }
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Something that works.
    Ok,
    /// Worth knowing.
    Info,
    /// Works, but unsafe or fragile.
    Warning,
    /// Does not work.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One observation, with what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The port it is about (`None` for the host as a whole).
    pub port: Option<u16>,
    pub severity: Severity,
    /// What it is about, e.g. [`FindingCode::CertSelfSigned`].
    pub code: FindingCode,
    /// What was found, as a sentence.
    pub message: String,
    /// What to do, as a sentence.
    pub hint: Option<String>,
    /// The options the hint tells the user to change (as `SmtpError::fix`).
    pub fix: Vec<Fix>,
}

/// The set-up to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommendation {
    pub port: u16,
    pub security: Security,
    /// The certificate is private or self-signed: pass it (or its CA) as `tls.ca`.
    pub needs_ca: bool,
    /// Why this one, as a sentence.
    pub reason: String,
}

/// The doctor's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnosis {
    pub findings: Vec<Finding>,
    pub recommended: Option<Recommendation>,
}

impl Diagnosis {
    /// True when at least one port works (the CLI's exit status).
    pub fn has_working_configuration(&self) -> bool {
        self.recommended.is_some()
    }
}

/// Mechanisms wasmtp can run, by name.
const USABLE_AUTH: [&str; 5] = ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2", "OAUTHBEARER"];

/// The mechanisms among `offered` that wasmtp can run, in the server's order.
pub fn usable_mechanisms(offered: &[String]) -> Vec<String> {
    offered
        .iter()
        .filter(|m| USABLE_AUTH.contains(&m.as_str()))
        .cloned()
        .collect()
}

/// The security to try next on the same port when a probe found a port
/// mix-up: a plaintext greeting where TLS was expected (try STARTTLS), or
/// silence where a greeting was expected (try TLS from the first byte).
pub fn follow_up(probe: &PortProbe) -> Option<Security> {
    let err = probe.error.as_ref()?;
    if err.code == ErrorCode::TlsPortMismatch && probe.security == Security::Tls {
        return Some(Security::StartTls);
    }
    probe.silent_without_tls().then_some(Security::Tls)
}

/// Judges a set of probes of `host`.
pub fn diagnose(host: &str, probes: &[PortProbe]) -> Diagnosis {
    let mut findings = Vec::new();
    if !probes.is_empty() && probes.iter().all(|p| p.reachability == Reachability::Unresolved) {
        findings.push(Finding {
            port: None,
            severity: Severity::Error,
            code: FindingCode::HostUnknown,
            message: format!("the host name \"{host}\" does not resolve."),
            hint: Some(
                "check its spelling; your provider's documentation names its SMTP host (often smtp.<domain>).".into(),
            ),
            fix: Vec::new(),
        });
        return Diagnosis {
            findings,
            recommended: None,
        };
    }
    for probe in probes {
        // Silence on a port that answers TLS from the first byte is a mix-up, not a time-out.
        let tls_works_there = probes
            .iter()
            .any(|p| p.port == probe.port && p.security == Security::Tls && p.works());
        judge_port(host, probe, tls_works_there, &mut findings);
    }
    let recommended = recommend(probes);
    if recommended.is_none() && !probes.is_empty() {
        findings.push(Finding {
            port: None,
            severity: Severity::Error,
            code: FindingCode::NothingWorks,
            message: format!("no port of {host} gave a usable SMTP session."),
            hint: Some("see the findings above for each port; a blocked network is the most common cause when every port times out.".into()),
            fix: Vec::new(),
        });
    }
    Diagnosis { findings, recommended }
}

/// Findings about one port, added one sentence at a time.
struct PortFindings<'a> {
    port: u16,
    list: &'a mut Vec<Finding>,
}

impl PortFindings<'_> {
    fn add(&mut self, severity: Severity, code: FindingCode, message: String, hint: Option<Hint>) {
        let (hint, fix) = match hint {
            Some(Hint { text, fix }) => (Some(text), fix),
            None => (None, Vec::new()),
        };
        self.list.push(Finding {
            port: Some(self.port),
            severity,
            code,
            message,
            hint,
            fix,
        });
    }

    /// A finding that is an engine error: its sentence, hint and fix.
    fn add_error(&mut self, code: FindingCode, err: &SmtpError) {
        let hint = err.hint.clone().map(|text| Hint {
            text,
            fix: err.fix.clone(),
        });
        self.add(Severity::Error, code, err.message.clone(), hint);
    }
}

fn judge_port(host: &str, probe: &PortProbe, tls_works_there: bool, findings: &mut Vec<Finding>) {
    let port = probe.port;
    let mut out = PortFindings { port, list: findings };
    match &probe.reachability {
        Reachability::Open { .. } => {}
        Reachability::Refused => {
            out.add(
                Severity::Error,
                FindingCode::PortClosed,
                format!("nothing accepts connections on {host}:{port}."),
                Some("the server does not offer this port; use one of the others.".into()),
            );
            return;
        }
        Reachability::TimedOut => {
            out.add(
                Severity::Error,
                FindingCode::PortTimeout,
                format!("{host}:{port} did not answer: the connection timed out."),
                Some(
                    "the network or hosting provider may block outbound SMTP (port 25 very often is); try 587 or 465, or 2525 if the provider offers it."
                        .into(),
                ),
            );
            return;
        }
        Reachability::Unresolved => {
            out.add(
                Severity::Error,
                FindingCode::HostUnknown,
                format!("the host name \"{host}\" does not resolve."),
                None,
            );
            return;
        }
        Reachability::Failed(detail) => {
            out.add(
                Severity::Error,
                FindingCode::ConnectFailed,
                format!("could not connect to {host}:{port} ({detail})."),
                None,
            );
            return;
        }
    }

    if let Some(err) = &probe.error {
        let silent = probe.silent_without_tls();
        match err.code {
            _ if silent && (tls_works_there || err.code == ErrorCode::TlsPortMismatch) => out.add(
                Severity::Error,
                FindingCode::TlsWherePlaintextExpected,
                format!("port {port} stayed silent without TLS: it expects TLS from the first byte."),
                Some(Hint::new(format!("use port {port} with security: 'tls'.")).fix(Fix::SECURITY_TLS)),
            ),
            ErrorCode::TlsPortMismatch if probe.security == Security::Tls => out.add(
                Severity::Error,
                FindingCode::PlaintextWhereTlsExpected,
                format!("port {port} answered with a plaintext greeting, not TLS: it does not speak TLS from the first byte."),
                Some(Hint::new(format!("use port {port} with security: 'starttls'.")).fix(Fix::SECURITY_STARTTLS)),
            ),
            ErrorCode::AuthInsecure if probe.tls.is_none() => out.add(
                Severity::Error,
                FindingCode::CredentialsInClear,
                format!("the credentials would cross the network in clear on port {port} (no encryption there); wasmtp did not send them."),
                Some(Hint::new("log in over TLS instead: 465 with security: 'tls', or 587 with 'starttls'. allowInsecureAuth is only for a trusted local test server.").fix(Fix::Port(465)).fix(Fix::SECURITY_TLS)),
            ),
            ErrorCode::StartTlsUnavailable => out.add(
                Severity::Error,
                FindingCode::NoStarttls,
                format!("port {port} does not offer STARTTLS{}.", reply_suffix(err)),
                Some(Hint::new("without STARTTLS the password and the mail would cross the network in clear; use 465 with security: 'tls' if offered, or ask the administrator to enable STARTTLS.").fix(Fix::Port(465)).fix(Fix::SECURITY_TLS)),
            ),
            ErrorCode::Cert if probe.certificate.is_none() => out.add_error(FindingCode::CertRejected, err),
            ErrorCode::Cert | ErrorCode::AuthInsecure | ErrorCode::Auth | ErrorCode::AuthUnsupported => {}
            _ => out.add_error(code_name(err.code), err),
        }
    }

    if let Some(cert) = &probe.certificate {
        judge_certificate(host, port, probe, cert, findings);
    }

    // Which AUTH list counts: the one after TLS when TLS is up.
    let caps = probe.capabilities.as_ref().or(probe.capabilities_before_tls.as_ref());
    if let Some(caps) = caps {
        judge_auth_offer(port, probe, caps, findings);
    }

    let mut out = PortFindings { port, list: findings };
    match &probe.auth {
        AuthOutcome::NotTried => {}
        AuthOutcome::Succeeded(mechanism) => out.add(
            Severity::Ok,
            FindingCode::AuthOk,
            format!("login with AUTH {mechanism} succeeded on port {port}."),
            None,
        ),
        AuthOutcome::Failed(err) => out.add_error(FindingCode::AuthFailed, err),
    }

    if probe.works() {
        let how = match &probe.tls {
            Some(tls) if tls.authorized => format!("{}, certificate verified", tls.version),
            Some(tls) => format!("{}, certificate NOT verified", tls.version),
            None => "no encryption".to_string(),
        };
        let severity = if probe.tls_verified() {
            Severity::Ok
        } else {
            Severity::Warning
        };
        out.add(
            severity,
            FindingCode::PortWorks,
            format!("port {port} with security '{}' works ({how}).", probe.security.as_str()),
            None,
        );
    }
}

fn judge_certificate(host: &str, port: u16, probe: &PortProbe, cert: &CertificateFacts, findings: &mut Vec<Finding>) {
    let mut out = PortFindings { port, list: findings };
    let verified = probe.tls_verified();
    let fingerprint = &cert.fingerprint_sha256;
    if cert.self_signed && !verified {
        out.add(
            Severity::Error,
            FindingCode::CertSelfSigned,
            format!(
                "port {port} presents a self-signed certificate ({}), which no one can verify by default.",
                cert.subject
            ),
            Some(Hint::new(format!(
                "pass that certificate as tls.ca (check its SHA-256 fingerprint {fingerprint} with the server's administrator); do not turn verification off, it would expose your password to anyone on the path."
            )).fix(Fix::TlsCa)),
        );
    } else if !verified && !cert.expired && cert.name_matches {
        out.add(
            Severity::Error,
            FindingCode::CertPrivateCa,
            format!(
                "port {port} presents a certificate issued by \"{}\", a CA this client does not trust.",
                cert.issuer
            ),
            Some(Hint::new(format!(
                "pass that CA's certificate as tls.ca (the server certificate's SHA-256 fingerprint is {fingerprint}); do not turn verification off. If it is a public CA, the server is missing its intermediate certificate."
            )).fix(Fix::TlsCa)),
        );
    }
    if cert.expired {
        out.add(
            Severity::Error,
            FindingCode::CertExpired,
            format!(
                "the certificate on port {port} is outside its validity ({} to {}).",
                cert.valid_from, cert.valid_to
            ),
            Some("the server's administrator must renew it; also check this machine's clock.".into()),
        );
    }
    if !cert.name_matches {
        let names = if cert.alt_names.is_empty() {
            cert.subject.clone()
        } else {
            cert.alt_names.join(", ")
        };
        out.add(
            Severity::Error,
            FindingCode::CertNameMismatch,
            format!("the certificate on port {port} is for {names}, not for \"{host}\"."),
            Some(
                Hint::new("connect with one of the names the certificate lists, or set tls.servername to it.")
                    .fix(Fix::TlsServername),
            ),
        );
    }
}

fn judge_auth_offer(port: u16, probe: &PortProbe, caps: &Capabilities, findings: &mut Vec<Finding>) {
    let mut out = PortFindings { port, list: findings };
    let usable: Vec<&String> = caps.auth.iter().filter(|m| USABLE_AUTH.contains(&m.as_str())).collect();
    if !caps.auth.is_empty() && usable.is_empty() {
        let windows_only = caps
            .auth
            .iter()
            .all(|m| matches!(m.as_str(), "GSSAPI" | "NTLM" | "KERBEROS_V4"));
        out.add(
            Severity::Error,
            FindingCode::AuthUnsupportedOnly,
            format!(
                "port {port} offers only AUTH {}, which wasmtp cannot use.",
                caps.auth.join(" ")
            ),
            Some(if windows_only {
                "this is an Exchange/Active Directory login: ask the administrator to enable AUTH PLAIN or LOGIN over TLS for SMTP submission, or use OAuth2 where XOAUTH2 is offered.".into()
            } else {
                "ask the administrator for AUTH PLAIN or LOGIN over TLS.".into()
            }),
        );
    } else if !usable.is_empty() {
        let list: Vec<&str> = usable.iter().map(|s| s.as_str()).collect();
        out.add(
            Severity::Info,
            FindingCode::AuthOffered,
            format!("port {port} offers AUTH {}.", list.join(" ")),
            None,
        );
    }
    if probe.tls.is_none() && !caps.auth.is_empty() && !probe.credentials_withheld_in_clear() {
        out.add(
            Severity::Warning,
            FindingCode::AuthInClear,
            format!("port {port} offers AUTH without encryption: a password sent there crosses the network in clear."),
            Some(Hint::new("use a port with TLS (465 with security: 'tls', or 587 with 'starttls'); wasmtp refuses to send credentials here unless allowInsecureAuth is set.").fix(Fix::Port(465)).fix(Fix::SECURITY_TLS)),
        );
    }
}

/// The best working set-up: verified implicit TLS, then verified
/// STARTTLS, then TLS that needs a CA, then plaintext (never with a warning missing).
fn recommend(probes: &[PortProbe]) -> Option<Recommendation> {
    let rank = |p: &PortProbe| -> Option<u8> {
        if !p.works() {
            return None;
        }
        Some(match (p.security, p.tls_verified(), p.tls.is_some()) {
            (Security::Tls, true, _) => 0,
            (Security::StartTls, true, _) => 1,
            (_, true, _) => 2,
            (_, false, true) => 3,
            _ => 4,
        })
    };
    let best = probes
        .iter()
        .filter_map(|p| rank(p).map(|r| (r, p)))
        .min_by_key(|(r, p)| (*r, p.port))?
        .1;
    let needs_ca = best.tls.is_some() && !best.tls_verified();
    let security = match (best.security, best.tls.is_some()) {
        // The upgrade happened: require it from now on.
        (Security::Opportunistic, true) => Security::StartTls,
        // Plaintext was all there was: say so rather than leave it to chance.
        (Security::Opportunistic, false) => Security::None,
        (security, _) => security,
    };
    let reason = match (best.tls.as_ref(), needs_ca) {
        (Some(tls), false) => format!("{} with a verified certificate.", tls.version),
        (Some(_), true) => "TLS works once the server's certificate (or CA) is passed as tls.ca.".to_string(),
        (None, _) => "the only port that works, without encryption: use it only on a network you trust.".to_string(),
    };
    Some(Recommendation {
        port: best.port,
        security,
        needs_ca,
        reason,
    })
}

fn reply_suffix(err: &SmtpError) -> String {
    err.reply
        .as_ref()
        .map(|r| format!(" (the server said: {r})"))
        .unwrap_or_default()
}

fn code_name(code: ErrorCode) -> FindingCode {
    match code {
        ErrorCode::TimedOut => FindingCode::TimedOut,
        ErrorCode::Protocol => FindingCode::NotSmtp,
        ErrorCode::Closed => FindingCode::Closed,
        ErrorCode::Connect => FindingCode::RefusedSession,
        ErrorCode::Tls => FindingCode::TlsFailed,
        ErrorCode::TlsPortMismatch => FindingCode::PortMismatch,
        _ => FindingCode::Failed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Phase;

    fn caps(auth: &[&str], starttls: bool) -> Capabilities {
        Capabilities {
            esmtp: true,
            starttls,
            auth: auth.iter().map(|s| s.to_string()).collect(),
            ..Capabilities::default()
        }
    }

    fn greeting() -> Option<Reply> {
        Some(Reply {
            code: 220,
            enhanced: None,
            lines: vec!["mx ESMTP".into()],
        })
    }

    fn tls(authorized: bool) -> Option<TlsInfo> {
        Some(TlsInfo {
            version: "TLSv1.3".into(),
            cipher: None,
            authorized,
            authorization_error: (!authorized).then(|| "self-signed certificate".into()),
        })
    }

    fn open(port: u16, security: Security) -> PortProbe {
        let mut p = PortProbe::new(port, security, Reachability::Open { connect_ms: 3 });
        p.greeting = greeting();
        p
    }

    fn codes(d: &Diagnosis) -> Vec<&'static str> {
        d.findings.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn verified_implicit_tls_is_preferred() {
        let mut p465 = open(465, Security::Tls);
        p465.tls = tls(true);
        p465.capabilities = Some(caps(&["PLAIN", "LOGIN"], false));
        let mut p587 = open(587, Security::StartTls);
        p587.tls = tls(true);
        p587.capabilities = Some(caps(&["PLAIN"], false));
        let p25 = PortProbe::new(25, Security::Opportunistic, Reachability::TimedOut);
        let d = diagnose("smtp.example.com", &[p465, p587, p25]);
        let rec = d.recommended.clone().unwrap();
        assert_eq!((rec.port, rec.security, rec.needs_ca), (465, Security::Tls, false));
        assert!(codes(&d).contains(&"PORT_TIMEOUT"));
        let timeout = d.findings.iter().find(|f| f.code.as_str() == "PORT_TIMEOUT").unwrap();
        assert!(timeout.hint.as_deref().unwrap().contains("2525"));
    }

    #[test]
    fn exchange_without_starttls_and_only_gssapi_ntlm() {
        let mut p587 = open(587, Security::StartTls);
        p587.capabilities = Some(caps(&["GSSAPI", "NTLM"], false));
        p587.error = Some(SmtpError::new(
            ErrorCode::StartTlsUnavailable,
            Phase::StartTls,
            "no STARTTLS",
        ));
        let d = diagnose("mail.corp.example", &[p587]);
        assert_eq!(
            codes(&d),
            vec!["NO_STARTTLS", "AUTH_UNSUPPORTED_ONLY", "AUTH_IN_CLEAR", "NOTHING_WORKS"]
        );
        let auth = d
            .findings
            .iter()
            .find(|f| f.code.as_str() == "AUTH_UNSUPPORTED_ONLY")
            .unwrap();
        assert!(auth.message.contains("GSSAPI NTLM"));
        assert!(auth.hint.as_deref().unwrap().contains("PLAIN or LOGIN"));
        assert!(!d.has_working_configuration());
    }

    #[test]
    fn a_self_signed_starttls_server_gets_the_ca_hint_with_its_fingerprint() {
        let mut p587 = open(587, Security::StartTls);
        p587.tls = tls(false);
        p587.capabilities = Some(caps(&["PLAIN"], false));
        // Credentials were given, and withheld from the unverified link.
        p587.error = Some(SmtpError::new(ErrorCode::AuthInsecure, Phase::Auth, "not verified"));
        p587.certificate = Some(CertificateFacts {
            subject: "CN=mx.local".into(),
            issuer: "CN=mx.local".into(),
            self_signed: true,
            fingerprint_sha256: "AB:CD".into(),
            name_matches: true,
            ..CertificateFacts::default()
        });
        let d = diagnose("mx.local", &[p587]);
        let cert = d
            .findings
            .iter()
            .find(|f| f.code.as_str() == "CERT_SELF_SIGNED")
            .unwrap();
        let hint = cert.hint.as_deref().unwrap();
        assert!(
            hint.starts_with("pass that certificate as tls.ca") && hint.contains("AB:CD"),
            "{hint}"
        );
        let rec = d.recommended.unwrap();
        assert_eq!((rec.port, rec.security, rec.needs_ca), (587, Security::StartTls, true));
    }

    #[test]
    fn port_mix_ups_in_both_directions() {
        let mut plain_on_tls = open(587, Security::Tls);
        plain_on_tls.greeting = None;
        plain_on_tls.error = Some(SmtpError::new(ErrorCode::TlsPortMismatch, Phase::Tls, "plaintext"));
        let mut silent = PortProbe::new(465, Security::StartTls, Reachability::Open { connect_ms: 1 });
        silent.error = Some(SmtpError::new(ErrorCode::TlsPortMismatch, Phase::Greeting, "silence"));
        let d = diagnose("h", &[plain_on_tls, silent]);
        let f: Vec<_> = d
            .findings
            .iter()
            .map(|f| (f.code.as_str(), f.hint.clone().unwrap_or_default()))
            .collect();
        assert_eq!(f[0].0, "PLAINTEXT_WHERE_TLS_EXPECTED");
        assert!(f[0].1.contains("'starttls'"));
        assert_eq!(f[1].0, "TLS_WHERE_PLAINTEXT_EXPECTED");
        assert!(f[1].1.contains("'tls'"));
    }

    #[test]
    fn plaintext_only_is_recommended_as_none_with_a_warning() {
        let mut p25 = open(25, Security::Opportunistic);
        p25.capabilities = Some(caps(&["PLAIN"], false));
        let d = diagnose("relay.local", &[p25]);
        assert!(codes(&d).contains(&"AUTH_IN_CLEAR"));
        let works = d.findings.iter().find(|f| f.code.as_str() == "PORT_WORKS").unwrap();
        assert_eq!(works.severity, Severity::Warning);
        assert_eq!(d.recommended.unwrap().security, Security::None);
    }

    #[test]
    fn login_results_and_unknown_hosts() {
        let mut p465 = open(465, Security::Tls);
        p465.tls = tls(true);
        p465.auth = AuthOutcome::Failed(
            SmtpError::new(ErrorCode::Auth, Phase::Auth, "rejected").with_hint("check the password"),
        );
        let d = diagnose("h", &[p465.clone()]);
        assert!(codes(&d).contains(&"AUTH_FAILED"));
        assert_eq!(
            d.recommended.unwrap().port,
            465,
            "the port is right even if the password is not"
        );
        p465.auth = AuthOutcome::Succeeded(Mechanism::Plain);
        assert!(codes(&diagnose("h", &[p465])).contains(&"AUTH_OK"));

        let gone = PortProbe::new(587, Security::StartTls, Reachability::Unresolved);
        assert_eq!(codes(&diagnose("nope.invalid", &[gone])), vec!["HOST_UNKNOWN"]);
    }

    #[test]
    fn credentials_that_would_cross_a_plaintext_link() {
        let mut p25 = open(25, Security::Opportunistic);
        p25.capabilities = Some(caps(&["PLAIN", "LOGIN"], false));
        p25.error = Some(SmtpError::new(ErrorCode::AuthInsecure, Phase::Auth, "refusing"));
        let d = diagnose("relay.local", &[p25]);
        assert_eq!(codes(&d), vec!["CREDENTIALS_IN_CLEAR", "AUTH_OFFERED", "NOTHING_WORKS"]);
        let f = &d.findings[0];
        assert_eq!(f.severity, Severity::Error);
        assert!(f.hint.as_deref().unwrap().contains("465"));
    }

    #[test]
    fn silence_on_a_port_that_speaks_tls_is_a_mix_up_and_gets_a_follow_up() {
        let mut silent = PortProbe::new(2465, Security::Opportunistic, Reachability::Open { connect_ms: 1 });
        silent.error = Some(SmtpError::new(ErrorCode::TimedOut, Phase::Greeting, "no greeting"));
        assert_eq!(follow_up(&silent), Some(Security::Tls));
        let mut tls_probe = open(2465, Security::Tls);
        tls_probe.tls = tls(true);
        assert_eq!(follow_up(&tls_probe), None);
        let d = diagnose("h", &[silent.clone(), tls_probe]);
        assert_eq!(codes(&d), vec!["TLS_WHERE_PLAINTEXT_EXPECTED", "PORT_WORKS"]);
        // Alone, silence is only a time-out.
        assert_eq!(codes(&diagnose("h", &[silent]))[0], "TIMED_OUT");

        let mut plain_on_tls = open(2465, Security::Tls);
        plain_on_tls.greeting = None;
        plain_on_tls.error = Some(SmtpError::new(ErrorCode::TlsPortMismatch, Phase::Tls, "plaintext"));
        assert_eq!(follow_up(&plain_on_tls), Some(Security::StartTls));
    }

    #[test]
    fn an_opportunistic_upgrade_is_recommended_as_starttls() {
        let mut p = open(2525, Security::Opportunistic);
        p.tls = tls(true);
        let rec = diagnose("h", &[p]).recommended.unwrap();
        assert_eq!((rec.port, rec.security), (2525, Security::StartTls));
    }

    #[test]
    fn connect_failures_are_classified() {
        let err = |code, text: &str| SmtpError::new(code, Phase::Connect, text);
        let cases = [
            (
                err(
                    ErrorCode::Connect,
                    "could not connect (connect ECONNREFUSED 127.0.0.1:25).",
                ),
                Some(Reachability::Refused),
            ),
            (
                err(
                    ErrorCode::Connect,
                    "could not connect (getaddrinfo ENOTFOUND nope.invalid).",
                ),
                Some(Reachability::Unresolved),
            ),
            (
                err(ErrorCode::TimedOut, "no connection within 5 s."),
                Some(Reachability::TimedOut),
            ),
            (
                err(
                    ErrorCode::Connect,
                    "could not connect (Failed to connect to downstream server).",
                ),
                Some(Reachability::Refused),
            ),
            (
                SmtpError::new(ErrorCode::TimedOut, Phase::Greeting, "no greeting"),
                None,
            ),
        ];
        for (e, expected) in cases {
            assert_eq!(Reachability::from_error(&e), expected, "{}", e.message);
        }
        assert!(matches!(
            Reachability::from_error(&err(ErrorCode::Connect, "EHOSTUNREACH")),
            Some(Reachability::Failed(_))
        ));
        assert_eq!(
            usable_mechanisms(&["GSSAPI".into(), "LOGIN".into(), "XOAUTH2".into()]),
            vec!["LOGIN", "XOAUTH2"]
        );
    }

    #[test]
    fn expired_and_mismatched_certificates() {
        let mut p = open(465, Security::Tls);
        p.error = Some(SmtpError::new(ErrorCode::Cert, Phase::Tls, "bad cert"));
        p.certificate = Some(CertificateFacts {
            subject: "CN=other".into(),
            alt_names: vec!["other.example.com".into()],
            expired: true,
            name_matches: false,
            ..CertificateFacts::default()
        });
        let d = diagnose("smtp.example.com", &[p]);
        assert_eq!(codes(&d), vec!["CERT_EXPIRED", "CERT_NAME_MISMATCH", "NOTHING_WORKS"]);
        assert!(d.findings[1].message.contains("other.example.com"));
    }
}
