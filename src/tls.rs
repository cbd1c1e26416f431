//! TLS policy: the facts a host reports about a handshake, and how a failed
//! handshake becomes an error that names the cause and the fix.
//!
//! The plain engine never does TLS itself (hosts have native TLS); it decides
//! when TLS must start, what a failure means, and what to tell the user. The
//! in-engine TLS (`tls_engine`) reports its typed rustls failures through the
//! same [`TlsFailure`]; only hosts that see nothing but error text (Node,
//! Deno, Bun, workerd) go through [`TlsFailure::from_message`].

use crate::config::Security;
use crate::error::{ErrorCode, Fix, Hint, Phase, SmtpError};

/// What the host learned from a finished handshake.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsInfo {
    /// e.g. `"TLSv1.3"`.
    pub version: String,
    /// e.g. `"TLS_AES_256_GCM_SHA384"`.
    pub cipher: Option<String>,
    /// The certificate chain was verified (false only when the user disabled verification).
    pub authorized: bool,
    /// Why verification failed, when `authorized` is false.
    pub authorization_error: Option<String>,
}

/// Why a handshake failed, as far as the host could tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsFailureKind {
    /// The chain does not lead to a trusted root (private CA).
    UnknownIssuer,
    /// The server presented a self-signed certificate.
    SelfSigned,
    /// The certificate has expired or is not yet valid.
    Expired,
    /// The certificate is not valid for the host name that was dialled.
    NameMismatch,
    /// Another certificate problem (revoked, bad usage, pin mismatch...).
    Certificate,
    /// The server answered the ClientHello with plaintext (an SMTP greeting):
    /// the port expects STARTTLS, not TLS from the first byte.
    PlaintextReply,
    /// Anything else: protocol versions, ciphers, a reset during the handshake.
    Handshake,
    /// The handshake succeeded with a version older than `tls.minVersion`
    /// (or one the host could not name, where the minimum is TLS 1.3).
    BelowMinVersion,
}

/// The oldest TLS version a connection accepts (`tls.minVersion`). TLS 1.2
/// is the floor: no runtime wasmtp runs on negotiates less by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum MinTlsVersion {
    #[default]
    Tls12,
    Tls13,
}

impl MinTlsVersion {
    /// `"TLSv1.2"` or `"TLSv1.3"`, as runtimes name versions.
    pub fn parse(text: &str) -> Option<MinTlsVersion> {
        match text {
            "TLSv1.2" => Some(MinTlsVersion::Tls12),
            "TLSv1.3" => Some(MinTlsVersion::Tls13),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MinTlsVersion::Tls12 => "TLSv1.2",
            MinTlsVersion::Tls13 => "TLSv1.3",
        }
    }
}

/// Why a negotiated `version` (as the host names it: "TLSv1.2") does not
/// meet `min`, or `None`. The same decision for every host: the runtime's
/// TLS (Node, Bun, Deno, Workers) and TLS inside the engine. A version the
/// host did not report meets TLS 1.2 (every runtime refuses older ones by
/// default) but cannot be confirmed as TLS 1.3.
pub fn below_min_version(version: &str, min: MinTlsVersion) -> Option<TlsFailure> {
    let rank = match version {
        "SSLv3" => Some(0),
        "TLSv1" => Some(1),
        "TLSv1.1" => Some(2),
        "TLSv1.2" => Some(3),
        "TLSv1.3" => Some(4),
        _ => None,
    };
    let wanted = match min {
        MinTlsVersion::Tls12 => 3,
        MinTlsVersion::Tls13 => 4,
    };
    let detail = match rank {
        Some(got) if got >= wanted => return None,
        Some(_) => format!("the server negotiated {version}, below tls.minVersion {}", min.as_str()),
        None if min == MinTlsVersion::Tls12 => return None,
        None => format!(
            "the runtime's TLS did not report its version, so tls.minVersion {} cannot be confirmed",
            min.as_str()
        ),
    };
    Some(TlsFailure::new(TlsFailureKind::BelowMinVersion, detail))
}

/// A failed handshake as reported by the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFailure {
    pub kind: TlsFailureKind,
    /// The host's own description (e.g. Node's or rustls's error text).
    pub detail: String,
}

impl TlsFailure {
    pub fn new(kind: TlsFailureKind, detail: impl Into<String>) -> Self {
        TlsFailure {
            kind,
            detail: detail.into(),
        }
    }

    /// Classifies a host's TLS error text (OpenSSL/Node, rustls, Deno,
    /// Workers), so every runtime maps failures the same way without
    /// protocol knowledge of its own.
    pub fn from_message(detail: &str) -> Self {
        TlsFailure::new(classify(detail), detail)
    }
}

fn classify(detail: &str) -> TlsFailureKind {
    let text = detail.to_ascii_lowercase();
    let has = |needles: &[&str]| needles.iter().any(|n| text.contains(n));
    if has(&[
        "wrong version number",
        "wrong_version_number", // BoringSSL (Bun, workerd)
        "packet length too long",
        "unknown protocol",
        "corruptmessage",
        "invalidcontenttype",
        "received corrupt message",
        "http request",
    ]) {
        TlsFailureKind::PlaintextReply
    } else if has(&[
        "self signed",
        "self-signed",
        "selfsigned",
        "ca used as end entity",
        "causedasendentity",
    ]) {
        TlsFailureKind::SelfSigned
    } else if has(&["expired", "not yet valid", "notvalidyet"]) {
        TlsFailureKind::Expired
    } else if has(&[
        "altnames",
        "hostname",
        "notvalidforname",
        "name mismatch",
        "not valid for name",
        "does not match",
    ]) {
        TlsFailureKind::NameMismatch
    } else if has(&[
        "unknownissuer",
        "unknown issuer",
        "unable to get local issuer",
        "unable to verify the first certificate",
        "unable to get issuer",
        "certificate chain",
    ]) {
        TlsFailureKind::UnknownIssuer
    } else if has(&["certificate", "cert_", "pin"]) {
        TlsFailureKind::Certificate
    } else {
        TlsFailureKind::Handshake
    }
}

/// True when the first bytes from a server look like an SMTP greeting (`220`
/// and printable text) rather than a TLS record. Hosts that see the raw bytes
/// of a failed implicit-TLS handshake use this to name a port mix-up.
pub fn looks_like_plaintext_greeting(first_bytes: &[u8]) -> bool {
    first_bytes.len() >= 4
        && first_bytes[..3].iter().all(u8::is_ascii_digit)
        && matches!(first_bytes[3], b' ' | b'-' | b'\r')
}

/// The error for a failed handshake, with a hint that fits its cause.
pub fn failure_error(failure: &TlsFailure, host: &str, port: u16, during_starttls: bool) -> SmtpError {
    let phase = if during_starttls { Phase::StartTls } else { Phase::Tls };
    let detail = &failure.detail;
    let ca_hint = "pass the server's CA certificate (for a self-signed server, its certificate itself) as tls.ca; \
                   disabling verification (rejectUnauthorized: false) would let anyone on the path read your password";
    match failure.kind {
        TlsFailureKind::PlaintextReply if during_starttls => SmtpError::new(
            ErrorCode::Tls,
            phase,
            format!("the server accepted STARTTLS but then answered the TLS handshake with plaintext ({detail})."),
        )
        .with_hint("the server's STARTTLS is broken, or something on the network path interferes with it; wasmtp will not continue without TLS. Try port 465 with security: 'tls', or ask the server's administrator.")
        .with_fix(Fix::Port(465))
        .with_fix(Fix::SECURITY_TLS)
        .retryable(true),
        TlsFailureKind::PlaintextReply => SmtpError::new(
            ErrorCode::TlsPortMismatch,
            phase,
            format!("the server on port {port} answered the TLS handshake with plaintext ({detail}): it does not speak TLS from the first byte."),
        )
        .with_hint(format!(
            "port {port} expects a plaintext greeting followed by STARTTLS; use security: 'starttls'{}.",
            if port == 465 { "" } else { " (or port 465 with security: 'tls')" }
        ))
        .with_fix(Fix::SECURITY_STARTTLS),
        TlsFailureKind::SelfSigned => SmtpError::new(
            ErrorCode::Cert,
            phase,
            format!("the certificate of {host} is self-signed and not trusted ({detail})."),
        )
        .with_hint(format!("{ca_hint}. Deno also refuses a self-signed certificate marked CA:TRUE used as the server certificate: issue a separate server certificate from that CA."))
        .with_fix(Fix::TlsCa),
        TlsFailureKind::UnknownIssuer => SmtpError::new(
            ErrorCode::Cert,
            phase,
            format!("the certificate of {host} was issued by a CA that is not trusted ({detail})."),
        )
        .with_hint(format!("{ca_hint}; if it is a public CA, the server may be missing its intermediate certificate."))
        .with_fix(Fix::TlsCa),
        TlsFailureKind::Expired => SmtpError::new(
            ErrorCode::Cert,
            phase,
            format!("the certificate of {host} is expired or not yet valid ({detail})."),
        )
        .with_hint("ask the server's administrator to renew the certificate, and check this machine's clock."),
        TlsFailureKind::NameMismatch => SmtpError::new(
            ErrorCode::Cert,
            phase,
            format!("the certificate presented by the server is not valid for the name \"{host}\" ({detail})."),
        )
        .with_hint("connect with the host name the certificate names (see its subject alternative names), or set tls.servername to it.")
        .with_fix(Fix::TlsServername),
        TlsFailureKind::Certificate => SmtpError::new(
            ErrorCode::Cert,
            phase,
            format!("the certificate of {host} was rejected ({detail})."),
        )
        .with_hint(ca_hint)
        .with_fix(Fix::TlsCa),
        TlsFailureKind::BelowMinVersion => SmtpError::new(
            ErrorCode::Tls,
            phase,
            format!("{host}:{port} does not meet the TLS minimum: {detail}; nothing was sent over it."),
        )
        .with_hint("the server speaks only older TLS: ask its administrator to enable TLS 1.3, or lower tls.minVersion to 'TLSv1.2'."),
        TlsFailureKind::Handshake => SmtpError::new(
            ErrorCode::Tls,
            phase,
            format!("the TLS handshake with {host}:{port} failed ({detail})."),
        )
        .with_hint("the server may require a TLS version or cipher this runtime does not offer, or the connection was reset; check the port and security mode.")
        .retryable(true),
    }
}

/// The hint for silence on port 465 (or a time-out waiting for the greeting)
/// when the connection did not start with TLS.
pub fn silent_greeting_hint(port: u16, security: Security) -> Hint {
    let text = if port == 465 && security != Security::Tls {
        "port 465 expects TLS from the first byte (implicit TLS); use security: 'tls', or port 587 with security: 'starttls'."
    } else {
        "the server accepted the connection but never greeted: if this port expects TLS from the first byte, use security: 'tls'; otherwise the server is overloaded or a firewall is interfering."
    };
    Hint::new(text).fix(Fix::SECURITY_TLS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_rustls_messages_are_classified() {
        let cases = [
            (
                "write EPROTO 40C8:error:0A00010B:SSL routines:ssl3_get_record:wrong version number",
                TlsFailureKind::PlaintextReply,
            ),
            ("self signed certificate", TlsFailureKind::SelfSigned),
            (
                "self-signed certificate in certificate chain",
                TlsFailureKind::SelfSigned,
            ),
            ("unable to verify the first certificate", TlsFailureKind::UnknownIssuer),
            ("invalid peer certificate: UnknownIssuer", TlsFailureKind::UnknownIssuer),
            ("certificate has expired", TlsFailureKind::Expired),
            (
                "Hostname/IP does not match certificate's altnames: Host: a. is not in the cert's altnames",
                TlsFailureKind::NameMismatch,
            ),
            (
                "invalid peer certificate: NotValidForName",
                TlsFailureKind::NameMismatch,
            ),
            (
                "invalid peer certificate: CaUsedAsEndEntity",
                TlsFailureKind::SelfSigned,
            ),
            ("certificate pin mismatch", TlsFailureKind::Certificate),
            // Bun (BoringSSL)
            (
                "error:100000f7:SSL routines:OPENSSL_internal:WRONG_VERSION_NUMBER (EPROTO)",
                TlsFailureKind::PlaintextReply,
            ),
            // Deno (rustls) for a self-signed CA:TRUE certificate given as the CA
            (
                "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))",
                TlsFailureKind::SelfSigned,
            ),
            // workerd
            (
                "TLS peer's certificate is not trusted; reason = unable to get local issuer certificate",
                TlsFailureKind::UnknownIssuer,
            ),
            ("socket hang up", TlsFailureKind::Handshake),
        ];
        for (text, kind) in cases {
            assert_eq!(TlsFailure::from_message(text).kind, kind, "{text}");
        }
    }

    #[test]
    fn plaintext_reply_names_the_port_mix_up() {
        let err = failure_error(&TlsFailure::from_message("wrong version number"), "h", 587, false);
        assert_eq!(err.code, ErrorCode::TlsPortMismatch);
        assert!(err.hint.unwrap().contains("security: 'starttls'"));
    }

    #[test]
    fn certificate_hints_recommend_a_ca_not_disabling_checks() {
        let err = failure_error(
            &TlsFailure::new(TlsFailureKind::SelfSigned, "self signed"),
            "h",
            587,
            true,
        );
        assert_eq!((err.code, err.phase), (ErrorCode::Cert, Phase::StartTls));
        let hint = err.hint.unwrap();
        assert!(hint.starts_with("pass the server's CA certificate"));
    }

    #[test]
    fn greeting_detection() {
        assert!(looks_like_plaintext_greeting(b"220 mx ESMTP\r\n"));
        assert!(looks_like_plaintext_greeting(b"220-mx\r\n"));
        assert!(!looks_like_plaintext_greeting(&[0x16, 0x03, 0x03, 0x00]));
        assert!(!looks_like_plaintext_greeting(b"22"));
    }

    #[test]
    fn the_minimum_version_is_decided_here_for_every_host() {
        use MinTlsVersion::*;
        assert_eq!(below_min_version("TLSv1.3", Tls13), None);
        assert_eq!(below_min_version("TLSv1.2", Tls12), None);
        let old = below_min_version("TLSv1.2", Tls13).unwrap();
        assert_eq!(old.kind, TlsFailureKind::BelowMinVersion);
        assert!(old.detail.contains("negotiated TLSv1.2, below tls.minVersion TLSv1.3"));
        assert!(below_min_version("TLSv1.1", Tls12).is_some());
        // A host that cannot name the version (Deno.startTls reports "TLS").
        assert_eq!(below_min_version("TLS", Tls12), None);
        assert!(
            below_min_version("TLS", Tls13)
                .unwrap()
                .detail
                .contains("cannot be confirmed")
        );
        let err = failure_error(&old, "mx.example.com", 587, true);
        assert_eq!((err.code, err.phase), (ErrorCode::Tls, Phase::StartTls));
        assert!(!err.retryable, "a retry meets the same server");
        assert_eq!(MinTlsVersion::parse("TLSv1.3"), Some(Tls13));
        assert_eq!(MinTlsVersion::parse("TLSv1"), None);
    }
}
