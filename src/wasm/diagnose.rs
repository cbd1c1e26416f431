//! The connection doctor for JS (`diagnose()` in the npm package).
//!
//! A `Probe` collects the facts of one probe of one port: most are read
//! straight from the engine connection the probe ran on (`observe`, before
//! the driver frees it), the rest are what only the host knows (connect
//! time, the certificate its TLS layer saw, the error, the login). `Doctor`
//! turns probes into findings and a recommendation. Every judgement,
//! sentence and hint is [`crate::diagnose`]'s; this file only moves values.
//! Only in the `doctor` artifact (feature `doctor`, which includes `tls-engine`).

use core::str::FromStr;

use wasm_bindgen::prelude::*;

use super::{EngineError, WasmConnection};
use super::{WasmSecureConnection, WasmTlsOptions};
use crate::auth::Mechanism;
use crate::config::Security;
use crate::connection::Connection;
use crate::diagnose::{
    self, AuthOutcome, CertificateFacts, Diagnosis, Finding, PortProbe, Reachability, TranscriptExplainer,
};
use crate::engine::Engine;
use crate::error::{ErrorCode, Phase, SmtpError};
use crate::reply::Reply;

/// What one probe of one port found.
#[wasm_bindgen(js_name = Probe)]
pub struct WasmProbe {
    host: String,
    probe: PortProbe,
}

#[wasm_bindgen(js_class = Probe)]
impl WasmProbe {
    /// A probe of port `port` with `security` (`"tls"`, `"starttls"`,
    /// `"opportunistic"`, `"none"`; by default the port's usual mode: 465
    /// TLS, 587 STARTTLS, others opportunistic). `host` is the name the
    /// certificate must match (`tls.servername`, or the host dialled).
    #[wasm_bindgen(constructor)]
    pub fn new(host: String, port: u16, security: Option<String>) -> Result<WasmProbe, EngineError> {
        let security = match security {
            Some(mode) => parse_security(&mode)?,
            None => Security::default_for_port(port),
        };
        Ok(WasmProbe {
            host,
            probe: PortProbe::new(port, security, Reachability::Failed("not probed".into())),
        })
    }

    /// The TCP connection opened after `connect_ms` milliseconds.
    #[wasm_bindgen(js_name = setConnected)]
    pub fn set_connected(&mut self, connect_ms: f64) {
        self.probe.reachability = Reachability::Open {
            connect_ms: connect_ms as u64,
        };
    }

    /// Copies what the engine learned (greeting, capabilities before and
    /// after TLS, TLS facts). Call before the connection is freed.
    pub fn observe(&mut self, conn: &WasmConnection) {
        self.observe_engine(&conn.inner);
    }

    /// As `observe`, for TLS inside the engine: also the certificate it saw.
    /// `unixNowMs` (`Date.now()`) decides whether it is within its validity.
    #[wasm_bindgen(js_name = observeSecure)]
    pub fn observe_secure(&mut self, conn: &WasmSecureConnection, unix_now_ms: f64) {
        self.observe_engine(conn.inner.smtp());
        if let Some((der, fingerprint)) = conn.inner.peer_certificate() {
            let fingerprint = crate::tls_engine::hex_fingerprint(&fingerprint);
            self.set_certificate(&der, fingerprint, unix_now_ms);
        }
    }

    /// The certificate the host's TLS layer saw (DER) and its SHA-256
    /// fingerprint as `AB:CD:…`; `unixNowMs` is `Date.now()`.
    #[wasm_bindgen(js_name = setCertificate)]
    pub fn set_certificate(&mut self, der: &[u8], fingerprint_sha256: String, unix_now_ms: f64) {
        let now = (unix_now_ms / 1000.0) as i64;
        self.probe.certificate = CertificateFacts::from_der(der, fingerprint_sha256, &self.host, now);
    }

    /// The login succeeded with this mechanism (the session's `authMethod`).
    #[wasm_bindgen(js_name = setLogin)]
    pub fn set_login(&mut self, mechanism: &str) {
        if let Ok(mechanism) = Mechanism::from_str(mechanism) {
            self.probe.auth = AuthOutcome::Succeeded(mechanism);
        }
    }

    /// The error that ended the probe (the fields of the JS `SmtpError`).
    // One argument a field: a wasm-bindgen method takes no struct of strings.
    #[allow(clippy::too_many_arguments)]
    #[wasm_bindgen(js_name = setError)]
    pub fn set_error(
        &mut self,
        code: &str,
        phase: &str,
        message: String,
        hint: Option<String>,
        fix: Vec<String>,
        reply_code: Option<u16>,
        reply_lines: Vec<String>,
    ) {
        let code = ERROR_CODES
            .into_iter()
            .find(|c| c.as_str() == code)
            .unwrap_or(ErrorCode::Protocol);
        let phase = PHASES
            .into_iter()
            .find(|p| p.as_str() == phase)
            .unwrap_or(Phase::Connect);
        let mut err = SmtpError::new(code, phase, message);
        err.hint = hint;
        err.fix = fix.iter().filter_map(|fix| fix.parse().ok()).collect();
        err.reply = reply_code.map(|code| Reply {
            code,
            enhanced: None,
            lines: reply_lines,
        });
        if let Some(reachability) = Reachability::from_error(&err) {
            self.probe.reachability = reachability;
        }
        if matches!(code, ErrorCode::Auth | ErrorCode::AuthUnsupported) {
            self.probe.auth = AuthOutcome::Failed(err.clone());
        }
        self.probe.error = Some(err);
    }

    // ----- Facts, for the report

    #[wasm_bindgen(getter)]
    pub fn port(&self) -> u16 {
        self.probe.port
    }

    #[wasm_bindgen(getter)]
    pub fn security(&self) -> String {
        self.probe.security.as_str().to_string()
    }

    /// `"open"`, `"refused"`, `"timeout"`, `"unresolved"` or `"failed"`.
    #[wasm_bindgen(getter)]
    pub fn reachability(&self) -> String {
        self.probe.reachability.as_str().to_string()
    }

    #[wasm_bindgen(getter, js_name = connectMs)]
    pub fn connect_ms(&self) -> Option<f64> {
        match self.probe.reachability {
            Reachability::Open { connect_ms } => Some(connect_ms as f64),
            _ => None,
        }
    }

    /// The greeting, e.g. `"220 mx.example.com ESMTP"`.
    #[wasm_bindgen(getter)]
    pub fn greeting(&self) -> Option<String> {
        self.probe.greeting.as_ref().map(|r| r.to_string())
    }

    /// The plaintext EHLO's keyword lines, before STARTTLS.
    #[wasm_bindgen(getter, js_name = extensionsBeforeTls)]
    pub fn extensions_before_tls(&self) -> Option<Vec<String>> {
        self.probe.capabilities_before_tls.as_ref().map(keyword_lines)
    }

    /// The last EHLO's keyword lines (after TLS when there was TLS).
    #[wasm_bindgen(getter)]
    pub fn extensions(&self) -> Option<Vec<String>> {
        self.probe.capabilities.as_ref().map(keyword_lines)
    }

    /// The AUTH mechanisms offered (after TLS when there was TLS).
    #[wasm_bindgen(getter, js_name = authOffered)]
    pub fn auth_offered(&self) -> Vec<String> {
        self.last_capabilities().map(|c| c.auth.clone()).unwrap_or_default()
    }

    /// Those of them wasmtp can use.
    #[wasm_bindgen(getter, js_name = authUsable)]
    pub fn auth_usable(&self) -> Vec<String> {
        diagnose::usable_mechanisms(&self.auth_offered())
    }

    /// `"succeeded"`, `"failed"`, `"withheld"` (not sent: no verified TLS) or `"not-tried"`.
    #[wasm_bindgen(getter)]
    pub fn login(&self) -> String {
        let withheld = self
            .probe
            .error
            .as_ref()
            .is_some_and(|e| e.code == ErrorCode::AuthInsecure);
        match &self.probe.auth {
            AuthOutcome::Succeeded(_) => "succeeded",
            AuthOutcome::Failed(_) => "failed",
            AuthOutcome::NotTried if withheld => "withheld",
            AuthOutcome::NotTried => "not-tried",
        }
        .to_string()
    }

    /// The login outcome for a person (the CLI's and the page's "login"
    /// line), e.g. `"succeeded (PLAIN)"`.
    #[wasm_bindgen(getter, js_name = loginText)]
    pub fn login_text(&self) -> String {
        match (&self.probe.auth, self.login().as_str()) {
            (AuthOutcome::Succeeded(mechanism), _) => format!("succeeded ({mechanism})"),
            (_, "failed") => "FAILED".into(),
            (_, "withheld") => "withheld: credentials are only sent over TLS whose certificate was verified".into(),
            _ => "not tried".into(),
        }
    }

    #[wasm_bindgen(getter, js_name = tlsVersion)]
    pub fn tls_version(&self) -> Option<String> {
        self.probe.tls.as_ref().map(|t| t.version.clone())
    }

    #[wasm_bindgen(getter, js_name = tlsCipher)]
    pub fn tls_cipher(&self) -> Option<String> {
        self.probe.tls.as_ref().and_then(|t| t.cipher.clone())
    }

    #[wasm_bindgen(getter, js_name = tlsAuthorized)]
    pub fn tls_authorized(&self) -> Option<bool> {
        self.probe.tls.as_ref().map(|t| t.authorized)
    }

    #[wasm_bindgen(getter, js_name = tlsAuthorizationError)]
    pub fn tls_authorization_error(&self) -> Option<String> {
        self.probe.tls.as_ref().and_then(|t| t.authorization_error.clone())
    }

    /// Whether the certificate's facts are known (the `cert…` getters).
    #[wasm_bindgen(getter, js_name = hasCertificate)]
    pub fn has_certificate(&self) -> bool {
        self.probe.certificate.is_some()
    }

    #[wasm_bindgen(getter, js_name = certSubject)]
    pub fn cert_subject(&self) -> String {
        self.cert(|c| c.subject.clone())
    }

    #[wasm_bindgen(getter, js_name = certAltNames)]
    pub fn cert_alt_names(&self) -> Vec<String> {
        self.cert(|c| c.alt_names.clone())
    }

    #[wasm_bindgen(getter, js_name = certIssuer)]
    pub fn cert_issuer(&self) -> String {
        self.cert(|c| c.issuer.clone())
    }

    #[wasm_bindgen(getter, js_name = certValidFrom)]
    pub fn cert_valid_from(&self) -> String {
        self.cert(|c| c.valid_from.clone())
    }

    #[wasm_bindgen(getter, js_name = certValidTo)]
    pub fn cert_valid_to(&self) -> String {
        self.cert(|c| c.valid_to.clone())
    }

    #[wasm_bindgen(getter, js_name = certSelfSigned)]
    pub fn cert_self_signed(&self) -> bool {
        self.cert(|c| c.self_signed)
    }

    #[wasm_bindgen(getter, js_name = certNameMatches)]
    pub fn cert_name_matches(&self) -> bool {
        self.cert(|c| c.name_matches)
    }

    #[wasm_bindgen(getter, js_name = certExpired)]
    pub fn cert_expired(&self) -> bool {
        self.cert(|c| c.expired)
    }

    #[wasm_bindgen(getter, js_name = certFingerprint256)]
    pub fn cert_fingerprint(&self) -> String {
        self.cert(|c| c.fingerprint_sha256.clone())
    }

    /// The security to probe this port with next (a port mix-up was found), if any.
    #[wasm_bindgen(getter, js_name = followUp)]
    pub fn follow_up(&self) -> Option<String> {
        diagnose::follow_up(&self.probe).map(|s| s.as_str().to_string())
    }
}

impl WasmProbe {
    fn observe_engine(&mut self, conn: &Connection) {
        self.probe.greeting = conn.greeting().cloned();
        self.probe.capabilities = conn.capabilities().cloned();
        self.probe.capabilities_before_tls = conn.capabilities_before_tls().cloned();
        self.probe.tls = conn.tls_info().cloned();
    }

    fn last_capabilities(&self) -> Option<&crate::Capabilities> {
        self.probe
            .capabilities
            .as_ref()
            .or(self.probe.capabilities_before_tls.as_ref())
    }

    fn cert<T: Default>(&self, field: impl Fn(&CertificateFacts) -> T) -> T {
        self.probe.certificate.as_ref().map(field).unwrap_or_default()
    }
}

/// Collects probes of one host, then judges them.
#[wasm_bindgen(js_name = Doctor)]
pub struct WasmDoctor {
    host: String,
    probes: Vec<PortProbe>,
}

#[wasm_bindgen(js_class = Doctor)]
impl WasmDoctor {
    #[wasm_bindgen(constructor)]
    pub fn new(host: String) -> WasmDoctor {
        WasmDoctor {
            host,
            probes: Vec::new(),
        }
    }

    /// Adds a probe's facts (copied: the probe stays usable).
    pub fn add(&mut self, probe: &WasmProbe) {
        self.probes.push(probe.probe.clone());
    }

    /// The verdict on every probe added.
    pub fn diagnose(&self) -> WasmDiagnosis {
        WasmDiagnosis {
            diagnosis: diagnose::diagnose(&self.host, &self.probes),
        }
    }
}

/// Findings and the recommended set-up.
#[wasm_bindgen(js_name = Diagnosis)]
pub struct WasmDiagnosis {
    diagnosis: Diagnosis,
}

#[wasm_bindgen(js_class = Diagnosis)]
impl WasmDiagnosis {
    #[wasm_bindgen(getter)]
    pub fn findings(&self) -> Vec<WasmFinding> {
        WasmFinding::list(&self.diagnosis.findings)
    }

    /// True when some port works (the CLI's exit status).
    #[wasm_bindgen(getter)]
    pub fn ok(&self) -> bool {
        self.diagnosis.has_working_configuration()
    }

    #[wasm_bindgen(getter, js_name = recommendedPort)]
    pub fn recommended_port(&self) -> Option<u16> {
        self.diagnosis.recommended.as_ref().map(|r| r.port)
    }

    #[wasm_bindgen(getter, js_name = recommendedSecurity)]
    pub fn recommended_security(&self) -> Option<String> {
        self.diagnosis
            .recommended
            .as_ref()
            .map(|r| r.security.as_str().to_string())
    }

    /// The recommendation works once the server's certificate (or CA) is passed as `tls.ca`.
    #[wasm_bindgen(getter, js_name = recommendedNeedsCa)]
    pub fn recommended_needs_ca(&self) -> bool {
        self.diagnosis.recommended.as_ref().is_some_and(|r| r.needs_ca)
    }

    #[wasm_bindgen(getter, js_name = recommendedReason)]
    pub fn recommended_reason(&self) -> Option<String> {
        self.diagnosis.recommended.as_ref().map(|r| r.reason.clone())
    }
}

/// One observation, with what to do about it.
#[wasm_bindgen(js_name = Finding)]
pub struct WasmFinding {
    finding: Finding,
}

impl WasmFinding {
    /// JS objects for a report's findings (copies).
    pub(super) fn list(findings: &[Finding]) -> Vec<WasmFinding> {
        findings
            .iter()
            .cloned()
            .map(|finding| WasmFinding { finding })
            .collect()
    }
}

#[wasm_bindgen(js_class = Finding)]
impl WasmFinding {
    /// The port it is about; `undefined` for the host as a whole.
    #[wasm_bindgen(getter)]
    pub fn port(&self) -> Option<u16> {
        self.finding.port
    }

    /// `"ok"`, `"info"`, `"warning"` or `"error"`.
    #[wasm_bindgen(getter)]
    pub fn severity(&self) -> String {
        self.finding.severity.as_str().to_string()
    }

    /// A stable identifier, e.g. `"CERT_SELF_SIGNED"`.
    #[wasm_bindgen(getter)]
    pub fn code(&self) -> String {
        self.finding.code.as_str().to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn message(&self) -> String {
        self.finding.message.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn hint(&self) -> Option<String> {
        self.finding.hint.clone()
    }

    /// The options the hint names, as `option` or `option=value` (see `EngineError.fix`).
    #[wasm_bindgen(getter)]
    pub fn fix(&self) -> Vec<String> {
        self.finding.fix.iter().map(|fix| fix.to_string()).collect()
    }
}

/// One sentence per transcript line, in order (see [`TranscriptExplainer`]).
#[wasm_bindgen(js_name = TranscriptExplainer)]
pub struct WasmTranscriptExplainer {
    inner: TranscriptExplainer,
}

#[wasm_bindgen(js_class = TranscriptExplainer)]
impl WasmTranscriptExplainer {
    #[wasm_bindgen(constructor)]
    pub fn new() -> WasmTranscriptExplainer {
        WasmTranscriptExplainer {
            inner: TranscriptExplainer::new(),
        }
    }

    /// `dir` is `"C"`, `"S"` or `"tls"`, as in transcript lines.
    pub fn explain(&mut self, dir: &str, text: &str) -> String {
        self.inner.explain(dir, text)
    }
}

impl Default for WasmTranscriptExplainer {
    fn default() -> Self {
        Self::new()
    }
}

#[wasm_bindgen(js_class = TlsOptions)]
impl WasmTlsOptions {
    /// For the doctor only: complete the handshake whatever the certificate,
    /// to report it. The session says `authorized: false` and the engine
    /// never sends credentials over it.
    #[wasm_bindgen(js_name = acceptUnverifiedForDiagnosis)]
    pub fn accept_unverified_for_diagnosis(&mut self) {
        self.options.accept_unverified = true;
    }
}

fn keyword_lines(caps: &crate::Capabilities) -> Vec<String> {
    caps.keywords
        .iter()
        .map(|(keyword, params)| {
            if params.is_empty() {
                keyword.clone()
            } else {
                format!("{keyword} {}", params.join(" "))
            }
        })
        .collect()
}

fn parse_security(mode: &str) -> Result<Security, EngineError> {
    [
        Security::Tls,
        Security::StartTls,
        Security::Opportunistic,
        Security::None,
    ]
    .into_iter()
    .find(|s| s.as_str() == mode)
    .ok_or_else(|| {
        SmtpError::input(Phase::Connect, format!("security \"{mode}\" is not a security mode."))
            .with_hint("use one of \"tls\", \"starttls\", \"opportunistic\" or \"none\".")
            .into()
    })
}

const ERROR_CODES: [ErrorCode; 17] = [
    ErrorCode::Connect,
    ErrorCode::TimedOut,
    ErrorCode::Tls,
    ErrorCode::Cert,
    ErrorCode::TlsPortMismatch,
    ErrorCode::StartTlsUnavailable,
    ErrorCode::Auth,
    ErrorCode::AuthUnsupported,
    ErrorCode::AuthInsecure,
    ErrorCode::Envelope,
    ErrorCode::Recipients,
    ErrorCode::Message,
    ErrorCode::Size,
    ErrorCode::Utf8,
    ErrorCode::Protocol,
    ErrorCode::Closed,
    ErrorCode::Input,
];

const PHASES: [Phase; 10] = [
    Phase::Connect,
    Phase::Tls,
    Phase::Greeting,
    Phase::Ehlo,
    Phase::StartTls,
    Phase::Auth,
    Phase::Mail,
    Phase::Rcpt,
    Phase::Data,
    Phase::Quit,
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Fix;

    #[test]
    fn error_fields_round_trip_and_set_reachability() {
        for code in ERROR_CODES {
            assert_eq!(ERROR_CODES.iter().filter(|c| c.as_str() == code.as_str()).count(), 1);
        }
        let mut probe = WasmProbe::new("h".into(), 25, None).unwrap_or_else(|_| panic!());
        probe.set_error(
            "ECONNECT",
            "connect",
            "could not connect to h:25 (connect ECONNREFUSED 127.0.0.1:25).".into(),
            None,
            vec![],
            None,
            vec![],
        );
        assert_eq!(probe.reachability(), "refused");
        let mut probe = WasmProbe::new("h".into(), 587, Some("starttls".into())).unwrap_or_else(|_| panic!());
        probe.set_connected(2.0);
        probe.set_error(
            "EAUTH",
            "auth",
            "rejected".into(),
            Some("check".into()),
            vec!["port=465".into(), "bogus".into()],
            Some(535),
            vec!["5.7.8 no".into()],
        );
        assert_eq!(
            (probe.reachability().as_str(), probe.login().as_str()),
            ("open", "failed")
        );
        assert_eq!(
            probe.probe.error.as_ref().map(|e| e.fix.clone()),
            Some(vec![Fix::Port(465)])
        );
        assert!(WasmProbe::new("h".into(), 1, Some("bogus".into())).is_err());
        assert_eq!(probe.security(), "starttls");
    }
}
