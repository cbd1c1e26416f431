//! The envelope of one message (RFC 5321 MAIL FROM / RCPT TO) and the exact
//! command lines it turns into, given what the server offers.

use crate::address::{AddressKind, format_path, validate_address, validate_dsn_value, xtext_encode};
use crate::capabilities::Capabilities;
use crate::error::{ErrorCode, Phase, SmtpError};

/// How the body is encoded, for MAIL FROM's `BODY=` parameter (RFC 6152).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyType {
    /// Decide from the server: declare 8BITMIME when it is offered.
    #[default]
    Auto,
    /// The body is 7-bit ASCII; an 8-bit byte in it is an error.
    SevenBit,
    /// The body has 8-bit bytes; the server must offer 8BITMIME.
    EightBitMime,
}

/// DSN `RET=` (RFC 3461): what a bounce should carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnReturn {
    Full,
    Headers,
}

/// Delivery status notifications requested for the whole message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dsn {
    pub ret: Option<DsnReturn>,
    /// An envelope id echoed in notifications.
    pub envid: Option<String>,
}

/// DSN `NOTIFY=` conditions for one recipient. All false means `NEVER`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

/// One recipient with its optional DSN parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    pub notify: Option<Notify>,
    /// The original recipient (`ORCPT=rfc822;...`).
    pub orcpt: Option<String>,
}

impl Recipient {
    pub fn new(address: impl Into<String>) -> Self {
        Recipient {
            address: address.into(),
            notify: None,
            orcpt: None,
        }
    }
}

/// Everything the server needs before the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path; empty for the null sender `<>` (bounces).
    pub from: String,
    pub recipients: Vec<Recipient>,
    /// The body size in octets, when known: sent as `SIZE=` and checked
    /// against the server's limit before anything is sent.
    pub size: Option<u64>,
    pub body_type: BodyType,
    /// Forces `SMTPUTF8` even when every address is ASCII (UTF-8 headers).
    pub smtputf8: bool,
    pub dsn: Option<Dsn>,
    /// RFC 8689 REQUIRETLS: every hop must use TLS.
    pub require_tls: bool,
}

impl Envelope {
    pub fn new(from: impl Into<String>, recipients: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Envelope {
            from: from.into(),
            recipients: recipients.into_iter().map(|r| Recipient::new(r)).collect(),
            size: None,
            body_type: BodyType::Auto,
            smtputf8: false,
            dsn: None,
            require_tls: false,
        }
    }

    /// Checks everything that does not depend on the server. Returns whether
    /// any address needs SMTPUTF8. Nothing is sent when this fails.
    pub fn validate(&self) -> Result<bool, SmtpError> {
        let mut needs_utf8 = self.smtputf8;
        if !self.from.is_empty() {
            needs_utf8 |= validate_address(&self.from, Phase::Mail)? == AddressKind::Utf8;
        }
        if self.recipients.is_empty() {
            return Err(SmtpError::input(Phase::Rcpt, "the message has no recipients.")
                .with_hint("give at least one address in to, cc or bcc (or in the envelope)."));
        }
        for recipient in &self.recipients {
            needs_utf8 |= validate_address(&recipient.address, Phase::Rcpt)? == AddressKind::Utf8;
            if let Some(orcpt) = &recipient.orcpt {
                validate_dsn_value(orcpt, "ORCPT", 500)?;
            }
        }
        if let Some(envid) = self.dsn.as_ref().and_then(|d| d.envid.as_ref()) {
            validate_dsn_value(envid, "ENVID", 100)?;
        }
        Ok(needs_utf8)
    }

    /// Every address is ASCII: SMTPUTF8, if needed, is asked for by the
    /// message itself (UTF-8 in its headers), not by the envelope.
    pub(crate) fn addresses_are_ascii(&self) -> bool {
        self.from.is_ascii() && self.recipients.iter().all(|r| r.address.is_ascii())
    }

    /// What to do when SMTPUTF8 is needed and not available.
    pub(crate) fn smtputf8_hint(&self) -> &'static str {
        if self.addresses_are_ascii() {
            "the addresses are ASCII but the message asks for SMTPUTF8 (UTF-8 in its headers): send through a server that offers SMTPUTF8, or keep the headers ASCII (non-ASCII names and subjects as RFC 2047 encoded words)."
        } else {
            "use ASCII addresses (an IDNA/punycode domain works), or a server that offers SMTPUTF8."
        }
    }

    fn wants_dsn(&self) -> bool {
        self.dsn.is_some() || self.recipients.iter().any(|r| r.notify.is_some() || r.orcpt.is_some())
    }
}

/// The decisions made for one transaction once the server's capabilities are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeCommands {
    pub mail: String,
    pub rcpts: Vec<String>,
    /// The body was declared 7-bit: an 8-bit byte must abort it.
    pub seven_bit_only: bool,
}

/// Builds MAIL FROM and RCPT TO lines (without CRLF), refusing what the
/// server cannot do before anything is sent.
pub fn build_commands(
    envelope: &Envelope,
    caps: &Capabilities,
    tls_active: bool,
) -> Result<EnvelopeCommands, SmtpError> {
    let needs_utf8 = envelope.validate()?;
    let mut mail = format!("MAIL FROM:{}", format_path(&envelope.from));

    if let (Some(size), Some(limit)) = (envelope.size, caps.size_limit) {
        if size > limit {
            return Err(SmtpError::new(
                ErrorCode::Size,
                Phase::Mail,
                format!("the message is {size} bytes and the server accepts at most {limit} (its SIZE limit)."),
            )
            .with_hint(
                "make the message smaller, for example by linking large attachments instead of attaching them.",
            ));
        }
    }
    if let (Some(size), true) = (envelope.size, caps.size) {
        mail.push_str(&format!(" SIZE={size}"));
    }

    // An address that needs SMTPUTF8 is the cause to report first (its
    // headers are what make such a body 8-bit).
    if needs_utf8 && !caps.smtputf8 {
        let what = if envelope.addresses_are_ascii() {
            "the message needs SMTPUTF8 (UTF-8 in its headers), which the server does not offer."
        } else {
            "an address in the envelope needs SMTPUTF8, which the server does not offer."
        };
        return Err(SmtpError::new(ErrorCode::Utf8, Phase::Mail, what).with_hint(envelope.smtputf8_hint()));
    }

    match envelope.body_type {
        BodyType::EightBitMime if !caps.eightbitmime => {
            return Err(SmtpError::new(
                ErrorCode::Message,
                Phase::Mail,
                "the body is 8-bit but the server does not offer 8BITMIME (RFC 6152), so it may only receive 7-bit data.",
            )
            .with_hint("encode the body as quoted-printable or base64 (7-bit), which every server accepts, or send a structured message (wasmtp encodes it)."));
        }
        BodyType::EightBitMime | BodyType::Auto if caps.eightbitmime => mail.push_str(" BODY=8BITMIME"),
        _ => {}
    }
    if needs_utf8 {
        mail.push_str(" SMTPUTF8");
    }

    if envelope.wants_dsn() && !caps.dsn {
        return Err(SmtpError::new(
            ErrorCode::Envelope,
            Phase::Mail,
            "delivery status notifications (DSN) were requested but the server does not offer DSN.",
        )
        .with_hint("remove the DSN options or send through a server that offers DSN."));
    }
    if let Some(dsn) = &envelope.dsn {
        match dsn.ret {
            Some(DsnReturn::Full) => mail.push_str(" RET=FULL"),
            Some(DsnReturn::Headers) => mail.push_str(" RET=HDRS"),
            None => {}
        }
        if let Some(envid) = &dsn.envid {
            mail.push_str(&format!(" ENVID={}", xtext_encode(envid)));
        }
    }

    if envelope.require_tls {
        if !tls_active || !caps.requiretls {
            return Err(SmtpError::new(
                ErrorCode::Envelope,
                Phase::Mail,
                "REQUIRETLS was requested but the connection is not encrypted or the server does not offer REQUIRETLS.",
            )
            .with_hint("use security 'tls' or 'starttls' with a server that offers REQUIRETLS, or drop requireTls."));
        }
        mail.push_str(" REQUIRETLS");
    }

    let rcpts = envelope.recipients.iter().map(rcpt_command).collect();
    Ok(EnvelopeCommands {
        mail,
        rcpts,
        // Auto without 8BITMIME: the body must turn out 7-bit (RFC 6152 §3),
        // so 8-bit bytes end the message before its end of data.
        seven_bit_only: envelope.body_type == BodyType::SevenBit
            || (envelope.body_type == BodyType::Auto && !caps.eightbitmime),
    })
}

fn rcpt_command(recipient: &Recipient) -> String {
    let mut line = format!("RCPT TO:{}", format_path(&recipient.address));
    if let Some(notify) = recipient.notify {
        let mut conditions = Vec::new();
        if notify.success {
            conditions.push("SUCCESS");
        }
        if notify.failure {
            conditions.push("FAILURE");
        }
        if notify.delay {
            conditions.push("DELAY");
        }
        let value = if conditions.is_empty() {
            "NEVER".to_string()
        } else {
            conditions.join(",")
        };
        line.push_str(&format!(" NOTIFY={value}"));
    }
    if let Some(orcpt) = &recipient.orcpt {
        line.push_str(&format!(" ORCPT=rfc822;{}", xtext_encode(orcpt)));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(f: impl FnOnce(&mut Capabilities)) -> Capabilities {
        let mut c = Capabilities::default();
        f(&mut c);
        c
    }

    #[test]
    fn plain_envelope_needs_no_parameters() {
        let env = Envelope::new("a@example.com", ["b@example.org"]);
        let cmds = build_commands(&env, &Capabilities::default(), false).unwrap();
        assert_eq!(cmds.mail, "MAIL FROM:<a@example.com>");
        assert_eq!(cmds.rcpts, vec!["RCPT TO:<b@example.org>"]);
    }

    #[test]
    fn null_sender_is_allowed() {
        let env = Envelope::new("", ["b@example.org"]);
        assert_eq!(
            build_commands(&env, &Capabilities::default(), false).unwrap().mail,
            "MAIL FROM:<>"
        );
    }

    #[test]
    fn size_is_declared_and_checked_before_sending() {
        let mut env = Envelope::new("a@example.com", ["b@example.org"]);
        env.size = Some(1000);
        let c = caps(|c| {
            c.size = true;
            c.size_limit = Some(5000)
        });
        assert_eq!(
            build_commands(&env, &c, false).unwrap().mail,
            "MAIL FROM:<a@example.com> SIZE=1000"
        );
        env.size = Some(6000);
        let err = build_commands(&env, &c, false).unwrap_err();
        assert_eq!(err.code, ErrorCode::Size);
        assert!(err.message.contains("5000"));
    }

    #[test]
    fn utf8_addresses_need_smtputf8() {
        let env = Envelope::new("josé@example.com", ["b@example.org"]);
        let err = build_commands(&env, &Capabilities::default(), false).unwrap_err();
        assert_eq!(err.code, ErrorCode::Utf8);
        let c = caps(|c| {
            c.smtputf8 = true;
            c.eightbitmime = true
        });
        assert_eq!(
            build_commands(&env, &c, false).unwrap().mail,
            "MAIL FROM:<josé@example.com> BODY=8BITMIME SMTPUTF8"
        );
        assert!(err.hint.unwrap().contains("use ASCII addresses"));
    }

    #[test]
    fn smtputf8_asked_for_by_the_message_is_not_blamed_on_ascii_addresses() {
        let mut env = Envelope::new("a@example.com", ["b@example.org"]);
        env.smtputf8 = true;
        let err = build_commands(&env, &Capabilities::default(), false).unwrap_err();
        assert_eq!(err.code, ErrorCode::Utf8);
        assert!(err.message.contains("the message needs SMTPUTF8"), "{err}");
        let hint = err.hint.unwrap();
        assert!(
            !hint.contains("use ASCII addresses") && hint.contains("headers"),
            "{hint}"
        );
    }

    #[test]
    fn dsn_parameters_are_xtext_encoded() {
        let mut env = Envelope::new("a@example.com", ["b@example.org"]);
        env.dsn = Some(Dsn {
            ret: Some(DsnReturn::Headers),
            envid: Some("id+1=x".into()),
        });
        env.recipients[0].notify = Some(Notify {
            success: true,
            failure: true,
            delay: false,
        });
        env.recipients[0].orcpt = Some("b@example.org".into());
        let err = build_commands(&env, &Capabilities::default(), false).unwrap_err();
        assert_eq!(err.code, ErrorCode::Envelope);
        let cmds = build_commands(&env, &caps(|c| c.dsn = true), false).unwrap();
        assert_eq!(cmds.mail, "MAIL FROM:<a@example.com> RET=HDRS ENVID=id+2B1+3Dx");
        assert_eq!(
            cmds.rcpts[0],
            "RCPT TO:<b@example.org> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;b@example.org"
        );
    }

    #[test]
    fn eight_bit_body_needs_8bitmime() {
        let mut env = Envelope::new("a@example.com", ["b@example.org"]);
        env.body_type = BodyType::EightBitMime;
        assert_eq!(
            build_commands(&env, &Capabilities::default(), false).unwrap_err().code,
            ErrorCode::Message
        );
        env.body_type = BodyType::SevenBit;
        let cmds = build_commands(&env, &caps(|c| c.eightbitmime = true), false).unwrap();
        assert_eq!(cmds.mail, "MAIL FROM:<a@example.com>");
        assert!(cmds.seven_bit_only);
    }

    #[test]
    fn requiretls_needs_tls_and_the_extension() {
        let mut env = Envelope::new("a@example.com", ["b@example.org"]);
        env.require_tls = true;
        let c = caps(|c| c.requiretls = true);
        assert_eq!(build_commands(&env, &c, false).unwrap_err().code, ErrorCode::Envelope);
        assert!(build_commands(&env, &c, true).unwrap().mail.ends_with(" REQUIRETLS"));
    }

    #[test]
    fn injection_attempts_are_input_errors() {
        let env = Envelope::new("a@example.com>\r\nRCPT TO:<evil@example.com", ["b@example.org"]);
        assert_eq!(
            build_commands(&env, &Capabilities::default(), false).unwrap_err().code,
            ErrorCode::Input
        );
        let env = Envelope::new("a@example.com", Vec::<String>::new());
        assert_eq!(env.validate().unwrap_err().code, ErrorCode::Input);
    }
}
