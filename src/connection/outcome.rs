//! Server replies and host failures turned into errors a person can act on.
//!
//! The connection decides what happens; this module says it: every error
//! message and hint the connection produces is worded here.

use crate::config::{Config, Protocol, Security};
use crate::envelope::Envelope;
use crate::error::{DeliveryState, ErrorCode, Phase, SmtpError};
use crate::event::MessageId;
use crate::reply::{EnhancedCode, Reply, escape_for_log};
use crate::tls::{self, TlsFailure, TlsFailureKind, TlsInfo};

use super::Expect;

fn enhanced_is(reply: &Reply, class_any: bool, subject: u16, detail: u16) -> bool {
    matches!(reply.enhanced, Some(EnhancedCode { class, subject: s, detail: d }) if (class_any || class == 5) && s == subject && d == detail)
}

/// The message is too big. 552 is "exceeded storage allocation", which
/// servers use for a full mailbox too: the enhanced code (RFC 3463) tells
/// X.3.4 and X.2.3 (message size) from X.2.2 (mailbox full).
fn is_size_reply(reply: &Reply) -> bool {
    match reply.enhanced {
        Some(_) => enhanced_is(reply, true, 3, 4) || enhanced_is(reply, true, 2, 3),
        None => reply.code == 552 && !is_mailbox_full(reply),
    }
}

/// The recipient's mailbox is full (RFC 3463 X.2.2; LMTP servers such as
/// Dovecot answer a recipient over quota with "552 5.2.2").
pub(super) fn is_mailbox_full(reply: &Reply) -> bool {
    match reply.enhanced {
        Some(_) => enhanced_is(reply, true, 2, 2),
        None => {
            let text = reply.message().to_ascii_lowercase();
            text.contains("quota") || text.contains("mailbox full") || text.contains("mailbox is full")
        }
    }
}

const MAILBOX_FULL_HINT: &str = "the recipient's mailbox is full: they must make room (or have their quota raised) before it can take this message; sending again later may succeed.";

/// MAIL FROM was refused.
pub(super) fn mail_error(envelope: &Envelope, reply: &Reply) -> SmtpError {
    let from = if envelope.from.is_empty() {
        "<>"
    } else {
        envelope.from.as_str()
    };
    if is_size_reply(reply) {
        return SmtpError::from_reply(
            ErrorCode::Size,
            Phase::Mail,
            format!("the server refused the message size: {reply}."),
            reply,
        )
        .with_hint("make the message smaller; the server's EHLO SIZE tells its limit.");
    }
    if enhanced_is(reply, true, 6, 7) || enhanced_is(reply, true, 6, 8) {
        return SmtpError::from_reply(
            ErrorCode::Utf8,
            Phase::Mail,
            if envelope.addresses_are_ascii() {
                format!("the server refused a message that needs SMTPUTF8: {reply}.")
            } else {
                format!("the server refused an internationalised address: {reply}.")
            },
            reply,
        )
        .with_hint(envelope.smtputf8_hint());
    }
    let hint = if reply.code == 530
        || enhanced_is(reply, true, 7, 0) && reply.message().to_ascii_lowercase().contains("auth")
    {
        "the server requires authentication before sending: configure auth (user and password or access token)."
    } else if reply.is_transient() {
        "a temporary refusal (rate limit, greylisting or server load); try again later."
    } else {
        "the server refuses this sender: send from an address the authenticated account may use (usually its own)."
    };
    SmtpError::from_reply(
        ErrorCode::Envelope,
        Phase::Mail,
        format!("the server refused the sender {from}: {reply}."),
        reply,
    )
    .with_hint(hint)
}

/// MAIL FROM was answered 503 because the server still held a transaction
/// (Exim: "sender already given"; Dovecot: "MAIL already given"). The
/// recipients and data pipelined behind it may have joined that transaction.
/// `data_taken`: the server accepted the data (or its reply cannot be known),
/// so the message may have gone out under another message's sender.
pub(super) fn nested_mail_error(reply: &Reply, data_taken: bool) -> SmtpError {
    let err = SmtpError::from_reply(
        ErrorCode::Protocol,
        Phase::Mail,
        format!(
            "the server answered MAIL FROM with {reply}: it still held an earlier transaction, and what was pipelined behind this MAIL joined that one."
        ),
        reply,
    );
    if data_taken {
        err.with_delivery_state(DeliveryState::Unknown)
            .retryable(false)
            .with_hint("the server may have delivered this message under another message's sender; check the recipient's mailbox before resending.")
    } else {
        err.retryable(true).with_hint(
            "the server did not take this message's data, and wasmtp resets the transaction before the next message; resending is safe.",
        )
    }
}

/// Every recipient was refused.
pub(super) fn recipients_error(envelope: &Envelope, replies: &[(usize, Reply)]) -> SmtpError {
    let listed: Vec<String> = replies
        .iter()
        .map(|(i, r)| format!("{} ({r})", envelope.recipients[*i].address))
        .collect();
    let first = &replies[0].1;
    let all_transient = replies.iter().all(|(_, r)| r.is_transient());
    let relay_denied = replies
        .iter()
        .any(|(_, r)| enhanced_is(r, false, 7, 1) || r.message().to_ascii_lowercase().contains("relay"));
    let hint = if relay_denied {
        "the server will not relay to these recipients for this client: authenticate (auth), or send through your provider's submission server."
    } else if replies.iter().all(|(_, r)| is_mailbox_full(r)) {
        MAILBOX_FULL_HINT
    } else if all_transient {
        "temporary refusals (greylisting, full mailbox, rate limit); try again later."
    } else {
        "check the addresses for typos; the server says they do not exist or do not accept mail."
    };
    SmtpError::from_reply(
        ErrorCode::Recipients,
        Phase::Rcpt,
        format!("the server refused every recipient: {}.", listed.join("; ")),
        first,
    )
    .retryable(all_transient)
    .with_hint(hint)
}

/// DATA, a BDAT chunk or the end of data was refused.
pub(super) fn data_error(reply: &Reply, what: &str) -> SmtpError {
    data_refusal(reply, format!("{what}: {reply}."))
}

/// A refusal of the data, classified by `reply`, worded by `message`.
fn data_refusal(reply: &Reply, message: String) -> SmtpError {
    if is_mailbox_full(reply) {
        return SmtpError::from_reply(ErrorCode::Recipients, Phase::Data, message, reply).with_hint(MAILBOX_FULL_HINT);
    }
    if is_size_reply(reply) {
        return SmtpError::from_reply(ErrorCode::Size, Phase::Data, message, reply)
            .with_hint("the message is larger than the server accepts; make it smaller.");
    }
    let hint = if reply.is_transient() {
        "a temporary refusal; try again later."
    } else if matches!(reply.enhanced, Some(EnhancedCode { subject: 7, .. })) || reply.code == 554 {
        "the server judged the message unacceptable by policy (spam, authentication or content rules); the reply text says which."
    } else if matches!(reply.enhanced, Some(EnhancedCode { subject: 6, .. })) {
        "the server found the message malformed; check its headers and encoding."
    } else {
        "the server refused the message; the reply text says why."
    };
    SmtpError::from_reply(ErrorCode::Message, Phase::Data, message, reply).with_hint(hint)
}

/// LMTP refused the data for every accepted recipient, each with its own
/// reply (RFC 2033 §4.2): listed like refused recipients. When every one is
/// a full mailbox the error is about recipients, otherwise about the message.
pub(super) fn lmtp_data_error(failures: &[(&str, &Reply)]) -> SmtpError {
    let listed: Vec<String> = failures.iter().map(|(address, r)| format!("{address} ({r})")).collect();
    let what = format!(
        "the LMTP server refused the message for every recipient after its data: {}",
        listed.join("; ")
    );
    // Classified by a reply that is not a full mailbox, when there is one.
    let telling = failures
        .iter()
        .map(|(_, r)| *r)
        .find(|r| !is_mailbox_full(r))
        .unwrap_or(failures[0].1);
    data_refusal(telling, format!("{what}.")).retryable(failures.iter().all(|(_, r)| r.is_transient()))
}

/// The error for a TCP connection that could not be opened, with a hint
/// chosen from the host's error text (refused, DNS, time-out, blocked port).
pub fn connect_error(host: &str, port: u16, detail: &str) -> SmtpError {
    let text = detail.to_ascii_lowercase();
    let (hint, retryable) = if text.contains("refused") {
        (
            format!(
                "nothing accepts connections on {host}:{port}: check the port (465 for TLS, 587 for STARTTLS, 25 for relay)."
            ),
            true,
        )
    } else if text.contains("enotfound")
        || text.contains("getaddrinfo")
        || text.contains("name resolution")
        || text.contains("dns")
    {
        (
            format!("the host name \"{host}\" could not be resolved: check its spelling."),
            false,
        )
    } else if text.contains("timed out") || text.contains("timeout") {
        ("the network or hosting provider may block outbound SMTP: try port 587 or 465, or 2525 if the provider offers it.".to_string(), true)
    } else if text.contains("unreachable") {
        (
            "the network cannot reach the host; check connectivity and firewall rules.".to_string(),
            true,
        )
    } else if text.contains("port 25") || text.contains("blocked") || text.contains("prohibited") {
        (
            "this platform blocks that port; use the submission ports 587 or 465.".to_string(),
            false,
        )
    } else if text.contains("proxy request failed") {
        // Cloudflare Workers: connect() could not reach the destination.
        (
            format!(
                "the platform could not open {host}:{port}: nothing accepts connections there, the destination is blocked (Cloudflare's own addresses, port 25), or, with security: 'tls', the TLS handshake failed: the port does not speak TLS from the first byte (587 and 25 expect security: 'starttls') or its certificate is not trusted (a private CA needs TLS inside the engine: tls: {{ engine: 'wasm', ca }})."
            ),
            true,
        )
    } else {
        (
            "check the host and port, and that outbound connections are allowed.".to_string(),
            true,
        )
    };
    SmtpError::new(
        ErrorCode::Connect,
        Phase::Connect,
        format!("could not connect to {host}:{port} ({detail})."),
    )
    .with_hint(hint)
    .retryable(retryable)
}

// ----- The configuration ---------------------------------------------------------

/// `Config::host` is empty or has spaces or control characters.
pub(super) fn invalid_host(host: &str) -> SmtpError {
    SmtpError::input(
        Phase::Connect,
        format!(
            "the host \"{}\" is not a valid host name.",
            escape_for_log(host.as_bytes(), 80)
        ),
    )
}

pub(super) fn zero_limits() -> SmtpError {
    SmtpError::input(Phase::Connect, "limits must be greater than zero.")
}

// ----- The link --------------------------------------------------------------------

/// The server's bytes do not parse as SMTP replies.
pub(super) fn invalid_reply(phase: Phase, problem: impl std::fmt::Display) -> SmtpError {
    SmtpError::protocol(phase, format!("the server sent an invalid reply: {problem}."))
        .with_hint("this is not a working SMTP server on this port, or something on the path is corrupting the dialog.")
}

/// The server closed the connection before QUIT. `idle`: ready, with
/// nothing queued or awaited.
pub(super) fn closed_by_server(phase: Phase, idle: bool) -> SmtpError {
    let mut err = SmtpError::new(
        ErrorCode::Closed,
        phase,
        if idle {
            "the server closed the idle connection.".to_string()
        } else {
            format!("the server closed the connection during {phase}.")
        },
    )
    .retryable(true);
    if phase == Phase::Greeting {
        err = err.with_hint(
            "the server hung up before greeting: it may be rejecting this client (rate limits, IP reputation), or the port expects TLS from the first byte (security: 'tls').",
        );
    }
    err
}

/// A read or write failed; `write_stalled`: a write made no progress for
/// the command time-out.
pub(super) fn socket_failed(config: &Config, phase: Phase, detail: &str, write_stalled: bool) -> SmtpError {
    let err = if write_stalled {
        SmtpError::new(
            ErrorCode::TimedOut,
            phase,
            format!(
                "the server stopped reading for {} during {phase}.",
                crate::time::describe(config.timeouts.command)
            ),
        )
        .with_hint("the server or the network stalled; try again later.")
    } else {
        SmtpError::new(
            ErrorCode::Closed,
            phase,
            format!("the connection failed during {phase} ({detail})."),
        )
        .with_hint("the connection was reset or broke; try again.")
    };
    err.retryable(true)
}

/// The first read or write after a handshake the host could not confirm
/// failed: the handshake did. The host's text may name the cause; when it
/// does not, a refused certificate is by far the likeliest.
pub(super) fn unconfirmed_handshake_failure(detail: &str) -> TlsFailure {
    let named = TlsFailure::from_message(detail);
    let kind = if named.kind == TlsFailureKind::Handshake {
        TlsFailureKind::Certificate
    } else {
        named.kind
    };
    let detail = format!(
        "{detail}; the connection failed at the first read or write after the TLS upgrade, \
         which is how this platform reports a refused certificate or handshake"
    );
    TlsFailure::new(kind, detail)
}

/// Bytes arrived while a TLS handshake was pending. `shown`: those bytes
/// (for implicit TLS, all of them since the connection opened).
pub(super) fn bytes_before_handshake(config: &Config, after_starttls: bool, shown: &[u8]) -> SmtpError {
    if !after_starttls && tls::looks_like_plaintext_greeting(shown) {
        return tls::failure_error(
            &TlsFailure::new(TlsFailureKind::PlaintextReply, "plaintext SMTP greeting"),
            &config.host,
            config.port,
            false,
        );
    }
    SmtpError::protocol(
        if after_starttls { Phase::StartTls } else { Phase::Tls },
        format!(
            "the server sent data before the TLS handshake ({}): a response injection attack or a broken server.",
            escape_for_log(shown, 60)
        ),
    )
    .with_hint(if after_starttls {
        "nothing may follow the STARTTLS 220 reply; wasmtp refuses to continue. If this persists, something on the network path is tampering with SMTP."
    } else {
        "the server did not answer the TLS handshake with TLS: check that this port offers implicit TLS (465), or use security: 'starttls' on 587."
    })
}

/// `ETLS_PORT_MISMATCH` for a plaintext connection that heard no greeting.
pub(super) fn port_mismatch(config: &Config, evidence: &str) -> SmtpError {
    let waited = crate::time::describe(config.timeouts.port_probe);
    SmtpError::new(
        ErrorCode::TlsPortMismatch,
        Phase::Greeting,
        format!(
            "no greeting from {}:{} within {waited} while connecting without TLS (security: '{}'), and {evidence}.",
            config.host,
            config.port,
            config.security.as_str()
        ),
    )
    .with_hint(tls::silent_greeting_hint(config.port, config.security))
}

/// What the connection waited for when its time ran out.
#[derive(Debug, Clone, Copy)]
pub(super) enum Wait {
    Connect,
    Handshake {
        after_starttls: bool,
    },
    Reply(Expect),
    /// A fresh OAuth2 token from the host.
    Token,
}

pub(super) fn timed_out(config: &Config, wait: Wait) -> SmtpError {
    let t = &config.timeouts;
    let (phase, waited, what, hint) = match wait {
        Wait::Connect => (
            Phase::Connect,
            t.connect,
            format!("could not connect to {}:{}", config.host, config.port),
            "the host may be down, or a firewall or the hosting provider may block outbound SMTP ports; try port 587 or 465, or 2525 if the provider offers it.".to_string(),
        ),
        Wait::Handshake { after_starttls } => (
            if after_starttls { Phase::StartTls } else { Phase::Tls },
            t.tls_handshake,
            "the TLS handshake did not finish".to_string(),
            if after_starttls {
                "the server accepted STARTTLS but never completed the handshake; try security: 'tls' on port 465.".to_string()
            } else {
                "the server did not answer the TLS handshake: if this port expects a plaintext greeting (587, 25), use security: 'starttls'.".to_string()
            },
        ),
        Wait::Token => (
            Phase::Auth,
            t.command,
            "no token came from the token provider".to_string(),
            "check that auth.accessToken can reach the token endpoint.".to_string(),
        ),
        Wait::Reply(expect @ Expect::Greeting) => (
            expect.phase(),
            t.greeting,
            format!("{}:{} accepted the connection but sent no greeting", config.host, config.port),
            tls::silent_greeting_hint(config.port, config.security),
        ),
        Wait::Reply(expect @ Expect::Final(_)) => (
            expect.phase(),
            t.data_end,
            "the server did not confirm the message after its end".to_string(),
            "the message may or may not have been accepted; check before resending.".to_string(),
        ),
        Wait::Reply(expect) => (
            expect.phase(),
            t.command,
            format!("the server did not answer during {}", expect.phase()),
            "the server or the network stalled; try again later.".to_string(),
        ),
    };
    SmtpError::new(
        ErrorCode::TimedOut,
        phase,
        format!("{what} within {}.", crate::time::describe(waited)),
    )
    .with_hint(hint)
    .retryable(true)
}

// ----- The session's replies ----------------------------------------------------------

/// A 221 to anything but QUIT: the server ended the session.
pub(super) fn session_ended(phase: Phase, reply: &Reply) -> SmtpError {
    SmtpError::from_reply(
        ErrorCode::Closed,
        phase,
        format!("the server ended the session: {reply}."),
        reply,
    )
    .with_hint("the server closed the session instead of answering; it may be shutting down or rejecting this client.")
}

/// A 421 to a command: the server is closing the connection.
pub(super) fn server_closing(phase: Phase, reply: &Reply) -> SmtpError {
    SmtpError::from_reply(
        ErrorCode::Closed,
        phase,
        format!("the server is closing the connection: {reply}."),
        reply,
    )
    .with_hint("the server is shutting down or limiting connections; try again later.")
}

/// A reply no command asked for.
pub(super) fn unsolicited(phase: Phase, reply: &Reply) -> SmtpError {
    if reply.code == 421 {
        SmtpError::from_reply(
            ErrorCode::Closed,
            phase,
            format!("the server closed the session: {reply}."),
            reply,
        )
        .with_hint("the server is shutting down or dropped an idle connection; try again.")
    } else {
        SmtpError::from_reply(
            ErrorCode::Protocol,
            phase,
            format!("the server sent a reply no command asked for: {reply}."),
            reply,
        )
        .with_hint("the server (or something on the path) is out of step with the dialog; wasmtp stops rather than pair replies wrongly.")
        .retryable(false)
    }
}

/// RSET or NOOP (`verb`) was refused.
pub(super) fn refused(verb: &str, phase: Phase, reply: &Reply) -> SmtpError {
    SmtpError::from_reply(
        ErrorCode::Protocol,
        phase,
        format!("the server refused {verb}: {reply}."),
        reply,
    )
}

/// The greeting was not 220.
pub(super) fn greeting_refused(reply: &Reply) -> SmtpError {
    let (code, message, hint) = match reply.code {
        554 | 521 | 550 => (
            ErrorCode::Connect,
            format!("the server refused the session in its greeting: {reply}."),
            "the server does not accept mail from this client (IP reputation, blocklist or policy); ask its administrator.",
        ),
        421 => (
            ErrorCode::Connect,
            format!("the server is not accepting connections now: {reply}."),
            "the server is busy or shutting down; try again later.",
        ),
        _ => (
            ErrorCode::Protocol,
            format!("the server greeted with an unexpected reply: {reply}."),
            "this does not look like an SMTP server on this port; check the host and port.",
        ),
    };
    SmtpError::from_reply(code, Phase::Greeting, message, reply).with_hint(hint)
}

/// EHLO (LHLO) was refused where falling back to HELO is not allowed.
pub(super) fn ehlo_refused(config: &Config, tls_up: bool, reply: &Reply) -> SmtpError {
    match (config.security, tls_up) {
        (Security::StartTls, false) => SmtpError::from_reply(
            ErrorCode::StartTlsUnavailable,
            Phase::Ehlo,
            format!("the server refused EHLO ({reply}), so STARTTLS cannot be negotiated; nothing was sent."),
            reply,
        )
        .with_hint("a server that refuses EHLO cannot upgrade to TLS. Check that this is a submission server (port 587), or use security: 'tls' on port 465."),
        _ => SmtpError::from_reply(
            ErrorCode::Protocol,
            Phase::Ehlo,
            format!(
                "the server refused {} ({reply}); wasmtp does not fall back to HELO when TLS is required.",
                if config.protocol == Protocol::Lmtp { "LHLO" } else { "EHLO" }
            ),
            reply,
        )
        .with_hint("HELO has no extensions (no AUTH, no size checks); ask the server's administrator to enable ESMTP."),
    }
}

pub(super) fn helo_refused(reply: &Reply) -> SmtpError {
    SmtpError::from_reply(
        ErrorCode::Protocol,
        Phase::Ehlo,
        format!("the server refused both EHLO and HELO: {reply}."),
        reply,
    )
    .with_hint(
        "check the client name (clientName) is a valid domain or address literal, and that this is an SMTP server.",
    )
}

/// security: 'starttls', and the EHLO reply has no STARTTLS.
pub(super) fn starttls_missing(config: &Config) -> SmtpError {
    let hint = match config.port {
        465 => "port 465 uses TLS from the first byte: use security: 'tls'.",
        25 => {
            "port 25 often lacks STARTTLS on internal relays: use the submission port 587 (STARTTLS) or 465 (TLS). Only if you accept plaintext, use security: 'opportunistic'."
        }
        _ => {
            "use port 465 with security: 'tls' if the server offers it; if something on the network strips STARTTLS, do not downgrade — fix the path. Only for a trusted local server, use security: 'none'."
        }
    };
    SmtpError::new(
        ErrorCode::StartTlsUnavailable,
        Phase::StartTls,
        format!(
            "security is 'starttls' but {}:{} does not offer STARTTLS; nothing was sent (no credentials, no message).",
            config.host, config.port
        ),
    )
    .with_hint(hint)
}

/// security: 'starttls', and the server refused the STARTTLS it offered.
pub(super) fn starttls_refused(reply: &Reply) -> SmtpError {
    SmtpError::from_reply(
        ErrorCode::StartTlsUnavailable,
        Phase::StartTls,
        format!("the server offered STARTTLS but refused it: {reply}. Nothing was sent (no credentials, no message)."),
        reply,
    )
    .with_hint("the server's TLS set-up is broken or something on the path blocks STARTTLS; try security: 'tls' on port 465, or ask the server's administrator.")
}

/// Credentials are not sent over plaintext. `offers_starttls`: the EHLO
/// reply offered STARTTLS. `unusable_over_tls`: the error AUTH would end
/// with over TLS too, named as well so one error tells the whole story
/// (an Exchange server with only GSSAPI and NTLM, say).
pub(super) fn auth_unencrypted(
    config: &Config,
    offers_starttls: bool,
    unusable_over_tls: Option<SmtpError>,
) -> SmtpError {
    let hint = if offers_starttls && config.security == Security::None {
        "the server offers STARTTLS: use security: 'starttls'. Only for a trusted local test server, set allowInsecureAuth: true."
    } else {
        "use security: 'tls' (port 465) or 'starttls' (port 587). Only for a trusted local test server, set allowInsecureAuth: true."
    };
    let mut message = format!(
        "refusing to send credentials to {}:{} over an unencrypted connection (security: '{}').",
        config.host,
        config.port,
        config.security.as_str()
    );
    let mut hint = hint.to_string();
    if let Some(unusable) = unusable_over_tls {
        message.push_str(&format!(" Besides, {}", unusable.message));
        if let Some(fix) = unusable.hint {
            hint.push_str(&format!(" And for AUTH: {fix}"));
        }
    }
    SmtpError::new(ErrorCode::AuthInsecure, Phase::Auth, message).with_hint(hint)
}

/// Credentials are not sent over TLS whose certificate nobody verified
/// (anyone on the path could have presented it).
pub(super) fn auth_unverified(config: &Config, tls: &TlsInfo) -> SmtpError {
    SmtpError::new(
        ErrorCode::AuthInsecure,
        Phase::Auth,
        format!(
            "refusing to send credentials to {}:{}: the TLS certificate was not verified ({}), so the link may lead to someone else.",
            config.host,
            config.port,
            tls.authorization_error.as_deref().unwrap_or("verification was turned off")
        ),
    )
    .with_hint("pass the server's CA (or its self-signed certificate) as tls.ca and keep verification on. Only for a trusted local test server, set allowInsecureAuth: true.")
}

// ----- Messages ----------------------------------------------------------------------

/// `submit` after `close`.
pub(super) fn closing() -> SmtpError {
    SmtpError::new(
        ErrorCode::Closed,
        Phase::Mail,
        "the connection is closing; the message was not sent.",
    )
    .retryable(true)
}

pub(super) fn not_queued(id: MessageId) -> SmtpError {
    SmtpError::input(
        Phase::Data,
        format!("message {} is not queued on this connection.", id.0),
    )
}

pub(super) fn body_already_ended() -> SmtpError {
    SmtpError::input(Phase::Data, "the body of this message was already ended.")
}

/// The body cannot be framed (`problem`: the encoder's words).
pub(super) fn unsendable_body(problem: impl std::fmt::Display) -> SmtpError {
    SmtpError::new(
        ErrorCode::Message,
        Phase::Data,
        format!("the message cannot be sent as it is: {problem}"),
    )
    .with_hint("wasmtp's message builder encodes long lines for you; for raw messages, wrap lines or use quoted-printable/base64.")
}

/// The body was declared 7-bit and carried 8-bit bytes.
pub(super) fn eight_bit_in_seven_bit_body() -> SmtpError {
    SmtpError::new(
        ErrorCode::Message,
        Phase::Data,
        "the body contains 8-bit bytes, but it was declared 7-bit or the server does not offer 8BITMIME (RFC 6152); the end of data was not sent.",
    )
    .with_hint("encode the body as quoted-printable or base64 (7-bit), send a structured message (wasmtp encodes it), or use a server that offers 8BITMIME.")
}

/// DATA cannot be cancelled: ending it would deliver a truncated message.
pub(super) fn dropped_mid_body() -> SmtpError {
    SmtpError::new(
        ErrorCode::Closed,
        Phase::Data,
        "the connection was dropped to abandon a message in the middle of DATA, so that no truncated copy is delivered.",
    )
    .retryable(true)
}

/// The server opened DATA for a failed message that has recipients on it.
pub(super) fn dropped_to_abandon_data() -> SmtpError {
    SmtpError::new(
        ErrorCode::Closed,
        Phase::Data,
        "the connection was dropped to abandon DATA that the server opened for a message that had already failed, so that nothing is delivered under another message's envelope.",
    )
    .retryable(true)
}

/// DATA was answered with a success other than 354.
pub(super) fn data_out_of_step(reply: &Reply) -> SmtpError {
    SmtpError::from_reply(
        ErrorCode::Protocol,
        Phase::Data,
        format!("the server answered DATA with {reply} instead of 354; its replies are out of step with the commands."),
        reply,
    )
    .with_hint("the server (or something on the path) broke the dialog; wasmtp stops rather than pair replies with the wrong commands. The message was not sent.")
}

/// `abort()`.
pub(super) fn aborted(phase: Phase) -> SmtpError {
    SmtpError::new(
        ErrorCode::Closed,
        phase,
        "the connection was aborted by the application.",
    )
}

/// A clean close left a message that never went out.
pub(super) fn closed_before_sent() -> SmtpError {
    SmtpError::new(
        ErrorCode::Closed,
        Phase::Quit,
        "the connection closed before this message was sent.",
    )
    .retryable(true)
}

/// Where one unfinished message stands when the connection ends with `err`.
#[derive(Debug, Clone, Copy)]
pub(super) enum Unfinished {
    /// Its whole data went out: only here can the server hold it without
    /// having said so.
    EndSent,
    /// Its end of data never went out. `phase`: where it was, when known
    /// better than the connection's error says; `behind_final`: an earlier
    /// message's final reply was awaited (the error is about that one).
    NotSent { phase: Option<Phase>, behind_final: bool },
}

/// The connection's error `err`, as it applies to one unfinished message.
pub(super) fn for_unfinished_message(err: &SmtpError, message: Unfinished) -> SmtpError {
    let mut tx_err = err.clone();
    match message {
        Unfinished::EndSent => {
            tx_err.delivery_state = DeliveryState::Unknown;
            tx_err.phase = Phase::Data;
            tx_err.hint = Some(
                "the whole message was sent but the server never confirmed it: it may or may not have been accepted. Check the recipient's mailbox before resending."
                    .to_string(),
            );
        }
        Unfinished::NotSent { phase, behind_final } => {
            // Whatever the connection's own error says, the server cannot have it.
            tx_err.delivery_state = DeliveryState::NotSent;
            if let Some(phase) = phase {
                tx_err.phase = phase;
            }
            if behind_final {
                tx_err.message = format!(
                    "this message was not sent: the connection ended ({}) while an earlier message's final reply was awaited.",
                    err.code
                );
                tx_err.hint = Some("the server never received this message; resending it is safe.".to_string());
            }
        }
    }
    tx_err
}

/// The queue id in a final reply: Postfix's "queued as X", Exim's "id=X".
pub(super) fn queue_id(reply: &Reply) -> Option<String> {
    let text = reply.message();
    let token = |rest: &str| {
        let id: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
            .collect();
        (!id.is_empty()).then_some(id)
    };
    if let Some(pos) = text.find("queued as ") {
        return token(&text[pos + "queued as ".len()..]);
    }
    text.find("id=").and_then(|pos| token(&text[pos + 3..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(code: u16, text: &str) -> Reply {
        Reply::single_line(code, text)
    }

    #[test]
    fn queue_ids_are_found() {
        assert_eq!(
            queue_id(&reply(250, "2.0.0 Ok: queued as 4dXyz12AbC")).as_deref(),
            Some("4dXyz12AbC")
        );
        assert_eq!(
            queue_id(&reply(250, "OK id=1abcD-0007xy-Qz")).as_deref(),
            Some("1abcD-0007xy-Qz")
        );
        assert_eq!(queue_id(&reply(250, "2.0.0 OK")), None);
    }

    #[test]
    fn size_refusals_are_esize() {
        assert_eq!(
            data_error(&reply(552, "5.3.4 Message too big"), "x").code,
            ErrorCode::Size
        );
        let env = Envelope::new("a@example.com", ["b@example.org"]);
        assert_eq!(mail_error(&env, &reply(552, "5.3.4 too big")).code, ErrorCode::Size);
        assert!(mail_error(&env, &reply(451, "4.7.1 later")).retryable);
    }

    #[test]
    fn a_full_mailbox_is_not_a_size_problem() {
        let full = reply(552, "5.2.2 <b@example.org> Mailbox is full / Quota exceeded");
        let err = data_error(&full, "the server refused the message after its data");
        assert_eq!(err.code, ErrorCode::Recipients);
        assert!(err.hint.unwrap().contains("mailbox is full"));
        assert_eq!(
            data_error(&reply(552, "Message size exceeds fixed maximum"), "x").code,
            ErrorCode::Size
        );
        assert_eq!(data_error(&reply(552, "mailbox full"), "x").code, ErrorCode::Recipients);
        let env = Envelope::new("a@example.com", ["b@example.org"]);
        let err = recipients_error(&env, &[(0, full.clone())]);
        assert!(err.hint.unwrap().contains("mailbox is full"));
        let other = reply(554, "5.6.0 rejected by content filter");
        let err = lmtp_data_error(&[("b@example.org", &full), ("c@example.org", &full)]);
        assert_eq!(err.code, ErrorCode::Recipients);
        assert!(err.message.contains("b@example.org (552 5.2.2") && err.message.contains("c@example.org"));
        let err = lmtp_data_error(&[("b@example.org", &full), ("c@example.org", &other)]);
        assert_eq!(err.code, ErrorCode::Message);
    }

    #[test]
    fn relay_denial_gets_its_own_hint() {
        let env = Envelope::new("a@example.com", ["b@example.org"]);
        let err = recipients_error(&env, &[(0, reply(554, "5.7.1 <b@example.org>: Relay access denied"))]);
        assert_eq!(err.code, ErrorCode::Recipients);
        assert!(err.hint.unwrap().contains("relay"));
        assert!(err.message.contains("b@example.org"));
    }

    #[test]
    fn connect_failures_are_classified() {
        assert!(
            connect_error("h", 25, "connect ECONNREFUSED 127.0.0.1:25")
                .hint
                .unwrap()
                .contains("nothing accepts")
        );
        let blocked = connect_error("h", 25, "Port 25 prohibited");
        assert!(blocked.hint.unwrap().contains("587 or 465") && !blocked.retryable);
        assert!(
            connect_error(
                "h",
                465,
                "proxy request failed, cannot connect to the specified address"
            )
            .hint
            .unwrap()
            .contains("security: 'starttls'")
        );
        assert!(
            connect_error("nope", 25, "getaddrinfo ENOTFOUND nope")
                .hint
                .unwrap()
                .contains("resolved")
        );
    }
}
