//! What a connection is told before it starts: where it goes, how strict its
//! security is, who it is, and how long each phase may take.

use crate::auth::{Credentials, Mechanism};
use crate::reply::ReplyLimits;
use crate::time::Duration;

/// How the connection is protected. Each mode means exactly what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Security {
    /// TLS from the first byte (RFC 8314 implicit TLS, usually port 465).
    Tls,
    /// Plaintext greeting, then STARTTLS is required: without it nothing
    /// sensitive is sent and the connection fails.
    StartTls,
    /// Upgrade with STARTTLS when offered, continue in plaintext when not.
    Opportunistic,
    /// Never send STARTTLS, even when it is offered.
    None,
}

impl Security {
    /// The port a mode usually goes with: 465, 587, or 25.
    pub fn default_port(self) -> u16 {
        match self {
            Security::Tls => 465,
            Security::StartTls => 587,
            Security::Opportunistic | Security::None => 25,
        }
    }

    /// The mode a port usually goes with: 465 → TLS, 587 → STARTTLS,
    /// anything else → opportunistic (what MTAs do on 25).
    pub fn default_for_port(port: u16) -> Security {
        match port {
            465 => Security::Tls,
            587 => Security::StartTls,
            _ => Security::Opportunistic,
        }
    }

    /// `"tls"`, `"starttls"`, `"opportunistic"` or `"none"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Security::Tls => "tls",
            Security::StartTls => "starttls",
            Security::Opportunistic => "opportunistic",
            Security::None => "none",
        }
    }
}

/// SMTP (RFC 5321) or LMTP (RFC 2033, one final reply per recipient).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Protocol {
    #[default]
    Smtp,
    Lmtp,
}

/// How long each phase may take before the connection fails with `ETIMEDOUT`.
///
/// RFC 5321 §4.5.3.2 gives servers generous minimums (5 minutes for the
/// greeting and for MAIL/RCPT, 2 for DATA, 10 for the end of data). A client
/// submitting mail wants to hear about a dead server sooner, so only the end
/// of data keeps the RFC's 10 minutes: that is the one wait where giving up
/// early risks a duplicate (the server may still be queueing the message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// Opening the TCP connection.
    pub connect: Duration,
    /// The TLS handshake (implicit TLS or after STARTTLS).
    pub tls_handshake: Duration,
    /// Waiting for the 220 greeting.
    pub greeting: Duration,
    /// On port 465 without TLS: how long silence may last before it is read
    /// as "this port expects TLS from the first byte".
    pub port_probe: Duration,
    /// Any command reply other than the end of data.
    pub command: Duration,
    /// The final reply after the end of the message data.
    pub data_end: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            tls_handshake: Duration::from_secs(30),
            greeting: Duration::from_secs(30),
            port_probe: Duration::from_secs(3),
            command: Duration::from_secs(60),
            data_end: Duration::from_secs(600),
        }
    }
}

/// Bounds on memory and on work in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bounds on a single server reply.
    pub reply: ReplyLimits,
    /// Transactions whose replies may be outstanding at once (pipelining window).
    pub max_in_flight: usize,
    /// Body bytes the engine holds before it applies back-pressure.
    pub max_buffered_body: usize,
    /// Largest BDAT chunk sent in one command.
    pub bdat_chunk_size: usize,
    /// Checks body lines against RFC 5322's 998-octet limit; `None` disables it.
    pub max_line_len: Option<usize>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            reply: ReplyLimits::default(),
            max_in_flight: 32,
            max_buffered_body: 256 * 1024,
            bdat_chunk_size: 128 * 1024,
            max_line_len: Some(crate::body::MAX_LINE_LEN),
        }
    }
}

/// Everything a [`Connection`](crate::Connection) needs to know up front.
#[derive(Debug, Clone)]
pub struct Config {
    /// The server's host name: the TLS server name and OAUTHBEARER's `host=`.
    pub host: String,
    /// The server's port (used to recognise 465/587 mix-ups and for OAUTHBEARER).
    pub port: u16,
    pub security: Security,
    pub credentials: Option<Credentials>,
    /// Forces one SASL mechanism instead of choosing the best offered.
    pub auth_mechanism: Option<Mechanism>,
    /// Allows credentials over an unencrypted link. Off by default, no exceptions.
    pub allow_insecure_auth: bool,
    /// The host can fetch a fresh OAuth2 token: when the server refuses the
    /// token, the engine emits `Event::AccessTokenRefused` and waits for
    /// `supply_access_token` (or `access_token_failed`), then runs AUTH once
    /// more. Off by default: a refused token ends the connection.
    pub renew_refused_token: bool,
    /// The name sent with EHLO/LHLO/HELO.
    pub client_name: String,
    pub protocol: Protocol,
    pub timeouts: Timeouts,
    pub limits: Limits,
    /// Uses PIPELINING (RFC 2920) when the server offers it.
    pub use_pipelining: bool,
    /// Uses BDAT (RFC 3030) when the server offers CHUNKING.
    pub use_chunking: bool,
    /// The oldest TLS version accepted (`tls.minVersion`); checked when
    /// any handshake completes, whoever ran it (see `tls::below_min_version`).
    pub min_tls_version: crate::tls::MinTlsVersion,
}

impl Config {
    /// A configuration with the security mode usual for `port` and every
    /// other setting at its safe default.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Config {
            host: host.into(),
            port,
            security: Security::default_for_port(port),
            credentials: None,
            auth_mechanism: None,
            allow_insecure_auth: false,
            renew_refused_token: false,
            client_name: "localhost".to_string(),
            protocol: Protocol::Smtp,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            use_pipelining: true,
            use_chunking: true,
            min_tls_version: crate::tls::MinTlsVersion::Tls12,
        }
    }

    pub fn security(mut self, security: Security) -> Self {
        self.security = security;
        self
    }

    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    pub fn auth_mechanism(mut self, mechanism: Mechanism) -> Self {
        self.auth_mechanism = Some(mechanism);
        self
    }

    pub fn allow_insecure_auth(mut self, allow: bool) -> Self {
        self.allow_insecure_auth = allow;
        self
    }

    pub fn renew_refused_token(mut self, renew: bool) -> Self {
        self.renew_refused_token = renew;
        self
    }

    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    pub fn min_tls_version(mut self, min: crate::tls::MinTlsVersion) -> Self {
        self.min_tls_version = min;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn security_follows_the_well_known_ports() {
        assert_eq!(Config::new("h", 465).security, Security::Tls);
        assert_eq!(Config::new("h", 587).security, Security::StartTls);
        assert_eq!(Config::new("h", 25).security, Security::Opportunistic);
        assert_eq!(Security::StartTls.default_port(), 587);
    }

    #[test]
    fn defaults_are_safe() {
        let config = Config::new("h", 587);
        assert!(!config.allow_insecure_auth);
        assert_eq!(config.timeouts.data_end, Duration::from_secs(600));
        assert!(config.timeouts.greeting < Duration::from_secs(60));
    }
}
