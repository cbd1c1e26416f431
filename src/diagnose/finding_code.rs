//! The stable identifiers of the doctor's findings, as [`ErrorCode`](crate::ErrorCode)
//! is for errors. Each code names one case; the README lists them all, and
//! `pkg/index.d.ts` types them (a test keeps the three in step).

/// Declares [`FindingCode`] with its JS name per variant, and the list of all.
macro_rules! finding_codes {
    ($($(#[doc = $doc:literal])* $variant:ident = $name:literal,)*) => {
        /// What a [`Finding`](super::Finding) is about.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FindingCode {
            $($(#[doc = $doc])* $variant,)*
        }

        impl FindingCode {
            /// Every code, in declaration order.
            pub const ALL: &[FindingCode] = &[$(FindingCode::$variant,)*];

            /// The stable identifier, e.g. `"CERT_SELF_SIGNED"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FindingCode::$variant => $name,)*
                }
            }
        }
    };
}

finding_codes! {
    // ----- The host as a whole
    /// The host name does not resolve.
    HostUnknown = "HOST_UNKNOWN",
    /// No port gave a usable SMTP session.
    NothingWorks = "NOTHING_WORKS",

    // ----- Reaching a port
    /// Nothing accepts connections on the port (actively refused).
    PortClosed = "PORT_CLOSED",
    /// The port did not answer: often a network or provider that blocks outbound SMTP.
    PortTimeout = "PORT_TIMEOUT",
    /// The TCP connection failed for another reason (the host's text says which).
    ConnectFailed = "CONNECT_FAILED",

    // ----- The session on a port
    /// The port works with the probed security mode.
    PortWorks = "PORT_WORKS",
    /// Silence without TLS: the port expects TLS from the first byte.
    TlsWherePlaintextExpected = "TLS_WHERE_PLAINTEXT_EXPECTED",
    /// A plaintext greeting where TLS was expected: the port wants STARTTLS.
    PlaintextWhereTlsExpected = "PLAINTEXT_WHERE_TLS_EXPECTED",
    /// The port offers no STARTTLS, so the session stays in clear.
    NoStarttls = "NO_STARTTLS",
    /// Credentials would have crossed the network in clear; they were withheld.
    CredentialsInClear = "CREDENTIALS_IN_CLEAR",
    /// The certificate was refused, and its facts could not be read.
    CertRejected = "CERT_REJECTED",
    /// The session set-up timed out (`ETIMEDOUT`).
    TimedOut = "TIMED_OUT",
    /// The server does not speak SMTP (`EPROTOCOL`).
    NotSmtp = "NOT_SMTP",
    /// The server closed the connection during the set-up (`ECLOSED`).
    Closed = "CLOSED",
    /// The server refused the session, e.g. a 554 greeting (`ECONNECT` after connecting).
    RefusedSession = "REFUSED_SESSION",
    /// The TLS handshake failed for a reason other than the certificate (`ETLS`).
    TlsFailed = "TLS_FAILED",
    /// A TLS/plaintext port mix-up the other probes could not resolve (`ETLS_PORT_MISMATCH`).
    PortMismatch = "PORT_MISMATCH",
    /// Any other failure of the set-up; the message carries the error.
    Failed = "FAILED",

    // ----- The certificate
    /// Self-signed: pass it (or pin it) as `tls.ca`.
    CertSelfSigned = "CERT_SELF_SIGNED",
    /// Issued by a CA no one trusts by default: pass the CA as `tls.ca`.
    CertPrivateCa = "CERT_PRIVATE_CA",
    /// Expired or not yet valid.
    CertExpired = "CERT_EXPIRED",
    /// Not valid for the host name that was dialled.
    CertNameMismatch = "CERT_NAME_MISMATCH",

    // ----- Logging in
    /// The server offers AUTH, with these mechanisms.
    AuthOffered = "AUTH_OFFERED",
    /// Only mechanisms wasmtp does not run (e.g. GSSAPI, NTLM).
    AuthUnsupportedOnly = "AUTH_UNSUPPORTED_ONLY",
    /// AUTH is offered without encryption.
    AuthInClear = "AUTH_IN_CLEAR",
    /// The login with the given credentials worked.
    AuthOk = "AUTH_OK",
    /// The login with the given credentials failed.
    AuthFailed = "AUTH_FAILED",

    // ----- A sending domain (the domain doctor)
    /// A DNS lookup failed (not "no such name": that is an empty answer).
    DnsFailed = "DNS_FAILED",
    /// The domain's MX records, in preference order.
    MxFound = "MX_FOUND",
    /// No MX record: mail to the domain goes to its A/AAAA address.
    MxNone = "MX_NONE",
    /// A null MX (RFC 7505): the domain receives no mail.
    MxNull = "MX_NULL",
    /// The SPF record, with its DNS lookup count.
    SpfFound = "SPF_FOUND",
    /// No SPF record.
    SpfMissing = "SPF_MISSING",
    /// More than one SPF record (a permanent error).
    SpfMultiple = "SPF_MULTIPLE",
    /// The SPF record does not parse.
    SpfSyntax = "SPF_SYNTAX",
    /// `+all`: every server may send as the domain.
    SpfPassAll = "SPF_PASS_ALL",
    /// `?all`, or no `all` at all: unlisted senders get a neutral result.
    SpfNeutralAll = "SPF_NEUTRAL_ALL",
    /// More than 10 DNS lookups, counted through includes (a permanent error).
    SpfTooManyLookups = "SPF_TOO_MANY_LOOKUPS",
    /// An `include:` names a domain without an SPF record.
    SpfIncludeMissing = "SPF_INCLUDE_MISSING",
    /// A DMARC policy of quarantine or reject.
    DmarcFound = "DMARC_FOUND",
    /// No DMARC record.
    DmarcMissing = "DMARC_MISSING",
    /// `p=none`: failing mail is reported, not stopped.
    DmarcPolicyNone = "DMARC_POLICY_NONE",
    /// The DMARC record does not parse, or there are several.
    DmarcSyntax = "DMARC_SYNTAX",
    /// What From: must align with for DMARC to pass (relaxed or strict).
    DmarcAlignment = "DMARC_ALIGNMENT",
    /// The DKIM key of the selector: its type and size.
    DkimFound = "DKIM_FOUND",
    /// No selector was given, so no DKIM key was checked.
    DkimNotChecked = "DKIM_NOT_CHECKED",
    /// No key at `<selector>._domainkey.<domain>`.
    DkimMissing = "DKIM_MISSING",
    /// The key is revoked (empty `p=`).
    DkimRevoked = "DKIM_REVOKED",
    /// The key record does not parse.
    DkimSyntax = "DKIM_SYNTAX",
    /// An RSA key under 1024 bits: receivers ignore it.
    DkimKeyTooSmall = "DKIM_KEY_TOO_SMALL",
    /// An RSA key under 2048 bits: accepted, but weak.
    DkimKeyWeak = "DKIM_KEY_WEAK",
    /// The MTA-STS policy, its mode and MX patterns.
    MtaStsFound = "MTA_STS_FOUND",
    /// No `_mta-sts` record.
    MtaStsMissing = "MTA_STS_MISSING",
    /// The `_mta-sts` record or the policy file does not parse.
    MtaStsSyntax = "MTA_STS_SYNTAX",
    /// The `_mta-sts` record exists but the policy file could not be fetched.
    MtaStsPolicyUnavailable = "MTA_STS_POLICY_UNAVAILABLE",
    /// An MX host that the policy's `mx:` patterns do not match.
    MtaStsMxMismatch = "MTA_STS_MX_MISMATCH",
    /// The policy is in `testing` (or `none`) mode: nothing is enforced.
    MtaStsTesting = "MTA_STS_TESTING",
    /// The TLS-RPT record: where TLS failure reports go.
    TlsRptFound = "TLS_RPT_FOUND",
    /// No TLS-RPT record.
    TlsRptMissing = "TLS_RPT_MISSING",
    /// The TLS-RPT record does not parse.
    TlsRptSyntax = "TLS_RPT_SYNTAX",
    /// This machine reaches port 25 of the domain's MX: direct delivery is possible.
    Port25Open = "PORT_25_OPEN",
    /// This machine cannot reach port 25 of the domain's MX: use a relay.
    Port25Blocked = "PORT_25_BLOCKED",
    /// The name direct delivery announces in EHLO: a fully qualified name.
    EhloName = "EHLO_NAME",
    /// The EHLO name is `localhost`, an address literal or a name without a
    /// dot: receivers score such a name as spam.
    EhloNameSuspect = "EHLO_NAME_SUSPECT",
}

impl std::fmt::Display for FindingCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::FindingCode;

    /// Every code is documented in the README and typed in `index.d.ts`,
    /// and nothing is typed that the doctor cannot produce.
    #[test]
    fn every_code_is_documented_and_typed() {
        let readme = include_str!("../../README.md");
        let types = include_str!("../../pkg/index.d.ts");
        let union = types
            .split("export type FindingCode =")
            .nth(1)
            .and_then(|rest| rest.split(';').next())
            .expect("index.d.ts declares FindingCode");
        let typed: Vec<&str> = union
            .split('|')
            .map(|t| t.trim().trim_matches('\''))
            .filter(|t| !t.is_empty())
            .collect();
        for code in FindingCode::ALL {
            let name = code.as_str();
            assert!(readme.contains(&format!("`{name}`")), "{name} is not in the README");
            assert!(typed.contains(&name), "{name} is not in index.d.ts's FindingCode");
        }
        assert_eq!(typed.len(), FindingCode::ALL.len(), "index.d.ts types {typed:?}");
    }
}
