//! Server replies and host failures turned into errors a person can act on.

use crate::envelope::Envelope;
use crate::error::{DeliveryState, ErrorCode, Phase, SmtpError};
use crate::reply::{EnhancedCode, Reply};

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
