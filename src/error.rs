//! The error taxonomy shared by every layer: a stable code, the phase the
//! session was in, a sentence for the person reading the log, a hint with the
//! most likely fix, and what is known about delivery.

use crate::reply::Reply;
use core::fmt;

/// Stable machine-readable error codes (the `code` field of `SmtpError` in JS).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The TCP connection could not be opened.
    Connect,
    /// A phase did not finish within its configured time-out.
    TimedOut,
    /// The TLS handshake or the TLS layer failed for a reason other than the certificate.
    Tls,
    /// The server's certificate was rejected.
    Cert,
    /// The port speaks a different security than the one configured (465 vs 587).
    TlsPortMismatch,
    /// `security: "starttls"` but the server does not offer, or refused, STARTTLS.
    StartTlsUnavailable,
    /// The server rejected the credentials.
    Auth,
    /// Credentials are configured but no mechanism both sides support is offered.
    AuthUnsupported,
    /// Credentials would cross an unencrypted link and `allow_insecure_auth` is off.
    AuthInsecure,
    /// The server rejected the envelope (MAIL FROM) or an envelope option is unusable.
    Envelope,
    /// The server rejected every recipient.
    Recipients,
    /// The server rejected the message content, or the content is malformed.
    Message,
    /// The message is larger than the server accepts.
    Size,
    /// An address needs SMTPUTF8 and the server does not offer it.
    Utf8,
    /// The server broke the protocol (unparsable, unsolicited or injected replies).
    Protocol,
    /// The connection closed before the operation finished.
    Closed,
    /// The caller passed invalid input (control characters, bad address syntax...).
    Input,
}

impl ErrorCode {
    /// The code as it appears in `SmtpError.code`, e.g. `"EAUTH_INSECURE"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Connect => "ECONNECT",
            ErrorCode::TimedOut => "ETIMEDOUT",
            ErrorCode::Tls => "ETLS",
            ErrorCode::Cert => "ECERT",
            ErrorCode::TlsPortMismatch => "ETLS_PORT_MISMATCH",
            ErrorCode::StartTlsUnavailable => "ESTARTTLS_UNAVAILABLE",
            ErrorCode::Auth => "EAUTH",
            ErrorCode::AuthUnsupported => "EAUTH_UNSUPPORTED",
            ErrorCode::AuthInsecure => "EAUTH_INSECURE",
            ErrorCode::Envelope => "EENVELOPE",
            ErrorCode::Recipients => "ERECIPIENTS",
            ErrorCode::Message => "EMESSAGE",
            ErrorCode::Size => "ESIZE",
            ErrorCode::Utf8 => "EUTF8",
            ErrorCode::Protocol => "EPROTOCOL",
            ErrorCode::Closed => "ECLOSED",
            ErrorCode::Input => "EINPUT",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The part of the dialog an error happened in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Connect,
    Tls,
    Greeting,
    Ehlo,
    StartTls,
    Auth,
    Mail,
    Rcpt,
    Data,
    Quit,
}

impl Phase {
    /// The phase as it appears in `SmtpError.phase`, e.g. `"starttls"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Greeting => "greeting",
            Phase::Ehlo => "ehlo",
            Phase::StartTls => "starttls",
            Phase::Auth => "auth",
            Phase::Mail => "mail",
            Phase::Rcpt => "rcpt",
            Phase::Data => "data",
            Phase::Quit => "quit",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the client can know about a message when an error ends its attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DeliveryState {
    /// The server cannot have accepted the message: resending is safe.
    #[default]
    NotSent,
    /// The link died after the end of data and before the final reply, or
    /// the server took the data into a transaction it still held from before
    /// (MAIL answered 503): the server may or may not have queued the
    /// message, possibly under another sender. Resending may duplicate it.
    Unknown,
}

impl DeliveryState {
    /// `"not-sent"` or `"unknown"`, as in `SmtpError.deliveryState`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::NotSent => "not-sent",
            DeliveryState::Unknown => "unknown",
        }
    }
}

/// An option the user can change to fix an error, as its hint names it (the
/// `fix` field of `SmtpError` in JS): tools map it to their own switches
/// (the CLI's `--security`, `--ca`...) instead of reading the hint's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fix {
    /// `security`, set to this mode (`Security::as_str`: `"tls"`, `"starttls"`...;
    /// a name, so that errors need not depend on the configuration).
    Security(&'static str),
    /// `port`, set to this port.
    Port(u16),
    /// `tls.ca`: trust the server's CA (or its self-signed certificate).
    TlsCa,
    /// `tls.servername`: verify the certificate against another name.
    TlsServername,
    /// `allowInsecureAuth`: credentials over an unencrypted link (trusted local servers only).
    AllowInsecureAuth,
}

impl Fix {
    pub const SECURITY_TLS: Fix = Fix::Security("tls");
    pub const SECURITY_STARTTLS: Fix = Fix::Security("starttls");
    pub const SECURITY_OPPORTUNISTIC: Fix = Fix::Security("opportunistic");
    pub const SECURITY_NONE: Fix = Fix::Security("none");

    /// The option's name in the JS API, e.g. `"tls.ca"`.
    pub fn option(self) -> &'static str {
        match self {
            Fix::Security(_) => "security",
            Fix::Port(_) => "port",
            Fix::TlsCa => "tls.ca",
            Fix::TlsServername => "tls.servername",
            Fix::AllowInsecureAuth => "allowInsecureAuth",
        }
    }

    /// The value to set, when the engine knows it (`None`: the user's to give).
    pub fn value(self) -> Option<String> {
        match self {
            Fix::Security(mode) => Some(mode.to_string()),
            Fix::Port(port) => Some(port.to_string()),
            _ => None,
        }
    }
}

impl core::str::FromStr for Fix {
    type Err = ();

    /// The [`Display`](fmt::Display) form back: `security=tls`, `port=465`, `tls.ca`...
    fn from_str(text: &str) -> Result<Fix, ()> {
        let (option, value) = text.split_once('=').unwrap_or((text, ""));
        Ok(match (option, value) {
            ("security", _) => [
                Fix::SECURITY_TLS,
                Fix::SECURITY_STARTTLS,
                Fix::SECURITY_OPPORTUNISTIC,
                Fix::SECURITY_NONE,
            ]
            .into_iter()
            .find(|fix| fix.value().as_deref() == Some(value))
            .ok_or(())?,
            ("port", port) => Fix::Port(port.parse().map_err(|_| ())?),
            ("tls.ca", "") => Fix::TlsCa,
            ("tls.servername", "") => Fix::TlsServername,
            ("allowInsecureAuth", "") => Fix::AllowInsecureAuth,
            _ => return Err(()),
        })
    }
}

impl fmt::Display for Fix {
    /// `option` or `option=value`, e.g. `security=tls`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.option())?;
        match self.value() {
            Some(value) => write!(f, "={value}"),
            None => Ok(()),
        }
    }
}

/// A hint and the options it names, built in one place so that they agree:
/// `Hint::new("use security: 'tls' on port 465.").fix(Fix::SECURITY_TLS).fix(Fix::Port(465))`.
/// Plain text (`&str`, `String`) is a hint that names no option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub text: String,
    pub fix: Vec<Fix>,
}

impl Hint {
    pub fn new(text: impl Into<String>) -> Self {
        Hint {
            text: text.into(),
            fix: Vec::new(),
        }
    }

    /// Adds an option the text names.
    pub fn fix(mut self, fix: Fix) -> Self {
        self.fix.push(fix);
        self
    }
}

impl From<&str> for Hint {
    #[inline(never)]
    fn from(text: &str) -> Self {
        Hint::new(text)
    }
}

impl From<String> for Hint {
    fn from(text: String) -> Self {
        Hint::new(text)
    }
}

/// Every failure the engine reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpError {
    /// Stable code, see [`ErrorCode`].
    pub code: ErrorCode,
    /// Where in the dialog it happened.
    pub phase: Phase,
    /// What was tried and what happened, as a sentence.
    pub message: String,
    /// The most likely fix, as a sentence, when one is known.
    pub hint: Option<String>,
    /// The server reply that caused the error, if any.
    pub reply: Option<Reply>,
    /// True when trying again later may succeed (4xx replies, time-outs, drops).
    pub retryable: bool,
    /// Whether the server may have accepted the message.
    pub delivery_state: DeliveryState,
    /// The options the hint tells the user to change, in its order.
    pub fix: Vec<Fix>,
}

impl SmtpError {
    /// A new error; not retryable, nothing sent, no hint and no reply.
    pub fn new(code: ErrorCode, phase: Phase, message: impl Into<String>) -> Self {
        SmtpError::with_message(code, phase, message.into())
    }

    // The builders below are called from some two hundred places; kept out
    // of line (and not generic past the `.into()`), they exist once in the
    // wasm module instead of being copied into every caller.
    #[inline(never)]
    fn with_message(code: ErrorCode, phase: Phase, message: String) -> Self {
        SmtpError {
            code,
            phase,
            message,
            hint: None,
            reply: None,
            retryable: false,
            delivery_state: DeliveryState::NotSent,
            fix: Vec::new(),
        }
    }

    /// An error caused by a server reply. A 4xx reply makes it retryable.
    pub fn from_reply(code: ErrorCode, phase: Phase, message: impl Into<String>, reply: &Reply) -> Self {
        SmtpError::caused_by(code, phase, message.into(), reply)
    }

    #[inline(never)]
    fn caused_by(code: ErrorCode, phase: Phase, message: String, reply: &Reply) -> Self {
        let mut err = SmtpError::with_message(code, phase, message);
        err.retryable = reply.is_transient();
        err.reply = Some(reply.clone());
        err
    }

    /// Sets the hint (and adds the options it names, for a [`Hint`]).
    pub fn with_hint(self, hint: impl Into<Hint>) -> Self {
        self.set_hint(hint.into())
    }

    #[inline(never)]
    fn set_hint(mut self, Hint { text, fix }: Hint) -> Self {
        self.hint = Some(text);
        self.fix.extend(fix);
        self
    }

    /// Adds an option the hint tells the user to change.
    #[inline(never)]
    pub fn with_fix(mut self, fix: Fix) -> Self {
        self.fix.push(fix);
        self
    }

    /// True when sending the message again cannot duplicate it and may
    /// succeed: the server took none of it (`NotSent`) and the cause is
    /// transient (`retryable`). Hosts decide resends on this alone.
    pub fn resend_safe(&self) -> bool {
        self.retryable && self.delivery_state == DeliveryState::NotSent
    }

    /// Sets whether a retry may succeed.
    pub fn retryable(mut self, retryable: bool) -> Self {
        self.retryable = retryable;
        self
    }

    /// Sets the delivery state.
    pub fn with_delivery_state(mut self, state: DeliveryState) -> Self {
        self.delivery_state = state;
        self
    }

    /// Shorthand for an `EINPUT` error (caller mistakes are never retryable).
    pub fn input(phase: Phase, message: impl Into<String>) -> Self {
        SmtpError::new(ErrorCode::Input, phase, message)
    }

    /// Shorthand for an `EPROTOCOL` error.
    pub fn protocol(phase: Phase, message: impl Into<String>) -> Self {
        SmtpError::new(ErrorCode::Protocol, phase, message)
    }
}

impl fmt::Display for SmtpError {
    /// `EAUTH (auth): message. Hint: ...` — one line a person can act on.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.phase, self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " Hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SmtpError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_code_phase_message_and_hint() {
        let err = SmtpError::new(
            ErrorCode::AuthInsecure,
            Phase::Auth,
            "refusing to send credentials in clear text.",
        )
        .with_hint("set allowInsecureAuth: true only for a trusted local server.");
        assert_eq!(
            err.to_string(),
            "EAUTH_INSECURE (auth): refusing to send credentials in clear text. Hint: set allowInsecureAuth: true only for a trusted local server."
        );
    }

    #[test]
    fn codes_and_phases_use_the_documented_spelling() {
        assert_eq!(ErrorCode::TlsPortMismatch.as_str(), "ETLS_PORT_MISMATCH");
        assert_eq!(ErrorCode::StartTlsUnavailable.as_str(), "ESTARTTLS_UNAVAILABLE");
        assert_eq!(Phase::StartTls.as_str(), "starttls");
        assert_eq!(DeliveryState::Unknown.as_str(), "unknown");
        assert_eq!(Fix::SECURITY_STARTTLS.to_string(), "security=starttls");
        assert_eq!(Fix::Port(465).to_string(), "port=465");
        assert_eq!(Fix::TlsCa.to_string(), "tls.ca");
        for fix in [
            Fix::SECURITY_NONE,
            Fix::Port(587),
            Fix::TlsServername,
            Fix::AllowInsecureAuth,
        ] {
            assert_eq!(fix.to_string().parse(), Ok(fix));
        }
        assert_eq!("security=plain".parse::<Fix>(), Err(()));
    }

    #[test]
    fn resend_is_safe_only_for_a_transient_cause_with_nothing_sent() {
        let closed = SmtpError::new(ErrorCode::Closed, Phase::Data, "dropped.");
        assert!(!closed.resend_safe(), "not retryable");
        assert!(closed.clone().retryable(true).resend_safe());
        assert!(
            !closed
                .retryable(true)
                .with_delivery_state(DeliveryState::Unknown)
                .resend_safe()
        );
    }
}
