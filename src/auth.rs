//! SASL authentication (RFC 4954): choosing a mechanism and running its
//! exchange as a small state machine, one server reply at a time.
//!
//! Supported: PLAIN (RFC 4616), LOGIN, CRAM-MD5 (RFC 2195), XOAUTH2
//! (Google/Microsoft) and OAUTHBEARER (RFC 7628). Payloads never reach the
//! transcript: every line comes with a redacted twin for logs.

use core::fmt;
use core::str::FromStr;

use crate::base64;
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;

use crate::address::quote;
use crate::error::{ErrorCode, Phase, SmtpError};
use crate::reply::{EnhancedCode, Reply};

/// What the client authenticates with.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A user name and a password (or an app password).
    Password { user: String, pass: String },
    /// A user name and an OAuth 2.0 access token (XOAUTH2 / OAUTHBEARER).
    OAuth2 { user: String, access_token: String },
}

impl Credentials {
    pub fn user(&self) -> &str {
        match self {
            Credentials::Password { user, .. } | Credentials::OAuth2 { user, .. } => user,
        }
    }

    fn is_token(&self) -> bool {
        matches!(self, Credentials::OAuth2 { .. })
    }
}

impl fmt::Debug for Credentials {
    /// Never prints the secret, so a `{:?}` in someone's log is harmless.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Password { user, .. } => write!(f, "Password {{ user: {user:?}, pass: <redacted> }}"),
            Credentials::OAuth2 { user, .. } => write!(f, "OAuth2 {{ user: {user:?}, access_token: <redacted> }}"),
        }
    }
}

/// A SASL mechanism wasmtp can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mechanism {
    Plain,
    Login,
    CramMd5,
    XOAuth2,
    OAuthBearer,
}

impl Mechanism {
    /// The name as it appears in EHLO and AUTH, e.g. `"CRAM-MD5"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::CramMd5 => "CRAM-MD5",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// Whether this mechanism takes a token rather than a password.
    pub fn uses_token(self) -> bool {
        matches!(self, Mechanism::XOAuth2 | Mechanism::OAuthBearer)
    }
}

impl fmt::Display for Mechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mechanism {
    type Err = SmtpError;

    fn from_str(name: &str) -> Result<Self, SmtpError> {
        const ALL: [Mechanism; 5] = [
            Mechanism::Plain,
            Mechanism::Login,
            Mechanism::CramMd5,
            Mechanism::XOAuth2,
            Mechanism::OAuthBearer,
        ];
        ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(name)).ok_or_else(|| {
            SmtpError::input(Phase::Auth, format!("\"{name}\" is not an authentication method wasmtp supports."))
                .with_hint("use one of PLAIN, LOGIN, CRAM-MD5, XOAUTH2, OAUTHBEARER, or leave the method out to pick the best one offered.")
        })
    }
}

/// Picks the mechanism to use from what the server offered (after TLS).
///
/// Over TLS a password goes with PLAIN (one round trip), then LOGIN, then
/// CRAM-MD5. Over plaintext (only ever with `allowInsecureAuth`) CRAM-MD5
/// comes first because it does not reveal the password. A token goes with
/// XOAUTH2, the form Google and Microsoft both accept, then OAUTHBEARER.
pub fn choose_mechanism(
    offered: &[String],
    credentials: &Credentials,
    forced: Option<Mechanism>,
    encrypted: bool,
) -> Result<Mechanism, SmtpError> {
    let offers = |m: Mechanism| offered.iter().any(|o| o.eq_ignore_ascii_case(m.as_str()));
    let listed = if offered.is_empty() {
        "no AUTH mechanisms at all".to_string()
    } else {
        format!("only AUTH {}", offered.join(" "))
    };

    if let Some(forced) = forced {
        if forced.uses_token() != credentials.is_token() {
            let (wants, has) = if forced.uses_token() {
                ("an access token", "a password")
            } else {
                ("a password", "an access token")
            };
            return Err(SmtpError::input(
                Phase::Auth,
                format!("auth method {forced} needs {wants}, but {has} was given."),
            )
            .with_hint("give auth.accessToken for XOAUTH2/OAUTHBEARER and auth.pass for PLAIN/LOGIN/CRAM-MD5."));
        }
        if !offers(forced) {
            return Err(SmtpError::new(
                ErrorCode::AuthUnsupported,
                Phase::Auth,
                format!("auth method {forced} was requested, but the server offers {listed}; nothing was sent."),
            )
            .with_hint(if offered.is_empty() {
                "leave auth.method out, or check whether this server needs authentication at all.".to_string()
            } else {
                format!("leave auth.method out to use the best of {}, or ask the server's administrator to enable {forced}.", offered.join(" "))
            }));
        }
        return Ok(forced);
    }

    let preference: &[Mechanism] = match (credentials.is_token(), encrypted) {
        (true, _) => &[Mechanism::XOAuth2, Mechanism::OAuthBearer],
        (false, true) => &[Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5],
        (false, false) => &[Mechanism::CramMd5, Mechanism::Plain, Mechanism::Login],
    };
    if let Some(mechanism) = preference.iter().copied().find(|m| offers(*m)) {
        return Ok(mechanism);
    }

    let what = if credentials.is_token() {
        "an access token (XOAUTH2, OAUTHBEARER)"
    } else {
        "a password (PLAIN, LOGIN, CRAM-MD5)"
    };
    let hint = if offered.is_empty() {
        "the server advertises no AUTH: it may accept mail from this network without login (remove auth), or only offer AUTH on another port (587 with security: 'starttls', or 465 with 'tls')."
            .to_string()
    } else if offered.iter().any(|m| m == "GSSAPI" || m == "NTLM") && !credentials.is_token() {
        "this looks like an Exchange/Active Directory server: ask for PLAIN or LOGIN over TLS to be enabled (SMTP AUTH for the mailbox), or use OAuth2 with auth.accessToken where XOAUTH2 is offered."
            .to_string()
    } else if credentials.is_token() {
        "this server does not take OAuth2 tokens: use a user name and password (or an app password) instead."
            .to_string()
    } else if offered.iter().any(|m| m == "XOAUTH2" || m == "OAUTHBEARER") {
        "this server wants OAuth2: pass auth: { user, accessToken } instead of a password.".to_string()
    } else {
        "ask the server's administrator for PLAIN or LOGIN over TLS.".to_string()
    };
    Err(SmtpError::new(
        ErrorCode::AuthUnsupported,
        Phase::Auth,
        format!("the server offers {listed}; none of them is supported for {what}. Nothing was sent."),
    )
    .with_hint(hint))
}

/// One line to send during the exchange, and what the transcript shows.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthLine {
    pub line: String,
    pub redacted: String,
}

impl fmt::Debug for AuthLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthLine({:?})", self.redacted)
    }
}

/// What to do after a server reply.
#[derive(Debug)]
pub enum AuthStep {
    /// Send this line and wait for the next reply.
    Send(AuthLine),
    /// Authenticated.
    Done,
    /// The exchange failed; the error names the cause.
    Failed(SmtpError),
}

/// A running SASL exchange.
pub struct SaslClient {
    mechanism: Mechanism,
    credentials: Credentials,
    host: String,
    port: u16,
    /// How many 334 challenges were answered.
    answered: usize,
    /// The error document an OAuth server sent in its 334 challenge.
    oauth_error: Option<String>,
}

const REDACTED: &str = "<redacted>";

impl SaslClient {
    pub fn new(mechanism: Mechanism, credentials: &Credentials, host: &str, port: u16) -> Self {
        SaslClient {
            mechanism,
            credentials: credentials.clone(),
            host: host.to_string(),
            port,
            answered: 0,
            oauth_error: None,
        }
    }

    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// The AUTH command, with an initial response where the mechanism has one.
    pub fn start(&mut self) -> AuthLine {
        let name = self.mechanism.as_str();
        let initial = match (&self.credentials, self.mechanism) {
            (Credentials::Password { user, pass }, Mechanism::Plain) => Some(format!("\0{user}\0{pass}")),
            (Credentials::OAuth2 { user, access_token }, Mechanism::XOAuth2) => {
                Some(format!("user={user}\x01auth=Bearer {access_token}\x01\x01"))
            }
            (Credentials::OAuth2 { user, access_token }, Mechanism::OAuthBearer) => Some(format!(
                "n,a={},\x01host={}\x01port={}\x01auth=Bearer {access_token}\x01\x01",
                gs2_escape(user),
                self.host,
                self.port
            )),
            // LOGIN and CRAM-MD5 wait for the server's first challenge.
            _ => None,
        };
        match initial {
            Some(payload) => AuthLine {
                line: format!("AUTH {name} {}", base64::encode(payload)),
                redacted: format!("AUTH {name} {REDACTED}"),
            },
            None => AuthLine {
                line: format!("AUTH {name}"),
                redacted: format!("AUTH {name}"),
            },
        }
    }

    /// Consumes the server's reply to the last line sent.
    pub fn step(&mut self, reply: &Reply) -> AuthStep {
        if reply.is_positive() {
            return AuthStep::Done;
        }
        if reply.code != 334 {
            return AuthStep::Failed(self.failure(reply));
        }
        self.answered += 1;
        let challenge = reply.lines.first().map(|l| l.trim()).unwrap_or("");
        let answer = match (self.mechanism, self.answered) {
            (Mechanism::Login, 1) => Ok(base64::encode(self.credentials.user())),
            (Mechanism::Login, 2) => match &self.credentials {
                Credentials::Password { pass, .. } => Ok(base64::encode(pass)),
                Credentials::OAuth2 { .. } => Err(()),
            },
            (Mechanism::CramMd5, 1) => self.cram_md5_answer(challenge),
            // An OAuth failure arrives as a 334 with a JSON error document;
            // the client must answer (empty for XOAUTH2, ^A for OAUTHBEARER)
            // before the server sends the real 5xx (RFC 7628 §3.2.3).
            (Mechanism::XOAuth2, 1) | (Mechanism::OAuthBearer, 1) => {
                let document = base64::decode(challenge).map(|d| String::from_utf8_lossy(&d).into_owned());
                self.oauth_error = Some(document.unwrap_or_else(|| challenge.to_string()));
                let abort = if self.mechanism == Mechanism::XOAuth2 {
                    String::new()
                } else {
                    base64::encode("\x01")
                };
                return AuthStep::Send(AuthLine {
                    line: abort,
                    redacted: "(acknowledging the OAuth error)".to_string(),
                });
            }
            _ => Err(()),
        };
        match answer {
            Ok(line) => AuthStep::Send(AuthLine {
                line,
                redacted: REDACTED.to_string(),
            }),
            Err(()) => AuthStep::Failed(
                SmtpError::from_reply(
                    ErrorCode::Protocol,
                    Phase::Auth,
                    format!(
                        "the server sent an unexpected challenge during AUTH {}: {reply}.",
                        self.mechanism
                    ),
                    reply,
                )
                .with_hint(format!(
                    "the server's {} implementation is not standard; force another method with auth.method.",
                    self.mechanism
                )),
            ),
        }
    }

    fn cram_md5_answer(&self, challenge: &str) -> Result<String, ()> {
        let Credentials::Password { user, pass } = &self.credentials else {
            return Err(());
        };
        let challenge = base64::decode(challenge).ok_or(())?;
        let mut mac = Hmac::<Md5>::new_from_slice(pass.as_bytes()).map_err(|_| ())?;
        mac.update(&challenge);
        let digest = mac.finalize().into_bytes();
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Ok(base64::encode(format!("{user} {hex}")))
    }

    /// The error for a refused exchange, with the likeliest fix.
    fn failure(&self, reply: &Reply) -> SmtpError {
        let user = self.credentials.user();
        let mechanism = self.mechanism;
        let enhanced = reply
            .enhanced
            .map(|EnhancedCode { subject, detail, .. }| (subject, detail));
        let text = reply.message().to_ascii_lowercase();
        let oauth = self
            .oauth_error
            .as_deref()
            .map(|d| format!(" The OAuth server said: {d}."))
            .unwrap_or_default();

        let (code, hint): (ErrorCode, String) = match (reply.code, enhanced) {
            (_, Some((7, 139))) => (
                ErrorCode::Auth,
                "basic authentication (a password) is disabled for this account, as Microsoft 365 does by default: use OAuth2 (auth: { user, accessToken }, XOAUTH2), or have the administrator enable SMTP AUTH for the mailbox.".into(),
            ),
            (_, Some((7, 9))) | (534, _) if text.contains("application-specific") || text.contains("app password") || enhanced == Some((7, 9)) => (
                ErrorCode::Auth,
                "the provider wants an app password (accounts with 2-step verification, e.g. Gmail): create one in the account's security settings and use it as auth.pass.".into(),
            ),
            (534, Some((7, 14))) => (
                ErrorCode::Auth,
                "the provider blocked this sign-in as suspicious: sign in once through its web interface, allow the access, or use an app password or OAuth2.".into(),
            ),
            (530 | 538, _) => (
                ErrorCode::AuthInsecure,
                "the server requires encryption before AUTH: use security: 'starttls' (port 587) or 'tls' (port 465).".into(),
            ),
            (504, _) | (502, _) => (
                ErrorCode::AuthUnsupported,
                format!("the server refused {mechanism} although it advertised it: force another method with auth.method."),
            ),
            (code, _) if (400..500).contains(&code) => (
                ErrorCode::Auth,
                "a temporary authentication failure on the server side; try again later.".into(),
            ),
            _ if mechanism.uses_token() => (
                ErrorCode::Auth,
                "the access token was refused: it may be expired (a token provider such as oauth2() renews it) or lack the mail scope (https://mail.google.com/ for Gmail, SMTP.Send for Microsoft 365), or the user is not the token's account.".into(),
            ),
            _ => (
                ErrorCode::Auth,
                "check the user name and password; many providers want the full e-mail address as the user name.".into(),
            ),
        };
        SmtpError::from_reply(
            code,
            Phase::Auth,
            // The user name is escaped like every value quoted in an error:
            // controls and bidi overrides must not reach a log line raw.
            format!(
                "the server rejected AUTH {mechanism} for user {}: {reply}.{oauth}",
                quote(user)
            ),
            reply,
        )
        .with_hint(hint)
    }
}

// ----- OAuth2 tokens the host renews -------------------------------------------

/// One token renewal per connection. Access tokens expire (Gmail's and
/// Microsoft's after an hour), so a refused token is often only a stale
/// one: when the host can fetch a fresh token
/// ([`Config::renew_refused_token`](crate::Config::renew_refused_token)),
/// the engine asks for it with [`Event::AccessTokenRefused`](crate::Event::AccessTokenRefused)
/// and runs AUTH again with it. A second refusal is final.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum TokenRenewal {
    /// No token has been refused yet.
    #[default]
    Unused,
    /// The host was asked for a fresh token; AUTH resumes with this mechanism.
    Awaited(Mechanism),
    /// The fresh token was handed over; the next refusal ends the connection.
    Spent,
}

impl TokenRenewal {
    /// After AUTH with `mechanism` failed with `reply` (`err` says why):
    /// `None` when the host is to be asked for a fresh token, otherwise the
    /// error that ends the connection.
    pub fn after_failure(
        &mut self,
        renewable: bool,
        mechanism: Mechanism,
        reply: &Reply,
        err: SmtpError,
    ) -> Option<SmtpError> {
        // 535 is "credentials invalid" (RFC 4954), what Gmail and Microsoft
        // 365 answer to an expired token, after the error challenge.
        let token_refused = mechanism.uses_token() && reply.code == 535;
        match *self {
            TokenRenewal::Unused if token_refused && renewable => {
                *self = TokenRenewal::Awaited(mechanism);
                None
            }
            TokenRenewal::Spent if token_refused => Some(err.with_hint(
                "a fresh token was refused too: check its scope (https://mail.google.com/ for Gmail, SMTP.Send for Microsoft 365) and that auth.user is its account.",
            )),
            _ => Some(err),
        }
    }

    /// The host answered (a token, or its failure): the mechanism AUTH
    /// resumes with, when a token was awaited.
    pub fn take_awaited(&mut self) -> Option<Mechanism> {
        match *self {
            TokenRenewal::Awaited(mechanism) => {
                *self = TokenRenewal::Spent;
                Some(mechanism)
            }
            _ => None,
        }
    }
}

/// The credentials for `user` with a token the host fetched. A token with a
/// control character (`\x01` separates the SASL message's fields) or none
/// at all is refused rather than sent.
pub fn renewed_credentials(user: &str, token: &str) -> Result<Credentials, SmtpError> {
    if token.is_empty() || token.chars().any(|c| c.is_control()) {
        return Err(SmtpError::input(
            Phase::Auth,
            "the token provider gave an empty token or one with a control character; it was not sent.",
        )
        .with_hint("auth.accessToken must resolve with the token alone."));
    }
    Ok(Credentials::OAuth2 {
        user: user.to_string(),
        access_token: token.to_string(),
    })
}

/// The error when the host could not fetch a fresh token: `detail` and
/// `hint` are the host's (its token provider's) own words.
pub fn token_provider_error(detail: &str, hint: Option<&str>, retryable: bool) -> SmtpError {
    SmtpError::new(
        ErrorCode::Auth,
        Phase::Auth,
        format!("the server refused the token and no fresh one came: {detail}"),
    )
    .with_hint(hint.unwrap_or("check the token provider (auth.accessToken)."))
    .retryable(retryable)
}

/// RFC 5801 §5.1: `,` and `=` in the authzid become `=2C` and `=3D`.
fn gs2_escape(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password() -> Credentials {
        Credentials::Password {
            user: "ann".into(),
            pass: "s3cret".into(),
        }
    }

    fn token() -> Credentials {
        Credentials::OAuth2 {
            user: "ann@example.com".into(),
            access_token: "ya29.tok".into(),
        }
    }

    fn offered(names: &str) -> Vec<String> {
        names.split_whitespace().map(str::to_string).collect()
    }

    fn reply(code: u16, text: &str) -> Reply {
        Reply::single_line(code, text)
    }

    fn decode(b64: &str) -> String {
        String::from_utf8(base64::decode(b64).unwrap()).unwrap()
    }

    #[test]
    fn the_best_mechanism_depends_on_encryption_and_credentials() {
        let all = offered("LOGIN CRAM-MD5 PLAIN XOAUTH2 OAUTHBEARER");
        assert_eq!(
            choose_mechanism(&all, &password(), None, true).unwrap(),
            Mechanism::Plain
        );
        assert_eq!(
            choose_mechanism(&all, &password(), None, false).unwrap(),
            Mechanism::CramMd5
        );
        assert_eq!(
            choose_mechanism(&all, &token(), None, true).unwrap(),
            Mechanism::XOAuth2
        );
        assert_eq!(
            choose_mechanism(&offered("OAUTHBEARER"), &token(), None, true).unwrap(),
            Mechanism::OAuthBearer
        );
        assert_eq!(
            choose_mechanism(&all, &password(), Some(Mechanism::Login), true).unwrap(),
            Mechanism::Login
        );
    }

    #[test]
    fn nothing_usable_names_what_the_server_offers() {
        let err = choose_mechanism(&offered("GSSAPI NTLM"), &password(), None, true).unwrap_err();
        assert_eq!(err.code, ErrorCode::AuthUnsupported);
        assert!(err.message.contains("only AUTH GSSAPI NTLM"), "{}", err.message);
        assert!(err.hint.unwrap().contains("PLAIN or LOGIN"));
        let err = choose_mechanism(&[], &password(), None, true).unwrap_err();
        assert!(err.message.contains("no AUTH mechanisms"));
        let err = choose_mechanism(&offered("PLAIN"), &password(), Some(Mechanism::CramMd5), true).unwrap_err();
        assert_eq!(err.code, ErrorCode::AuthUnsupported);
        let err = choose_mechanism(&offered("PLAIN"), &token(), Some(Mechanism::Plain), true).unwrap_err();
        assert_eq!(err.code, ErrorCode::Input);
        let err = choose_mechanism(&offered("XOAUTH2"), &password(), None, true).unwrap_err();
        assert!(err.hint.unwrap().contains("accessToken"));
    }

    #[test]
    fn plain_sends_everything_at_once_and_redacts_it() {
        let mut sasl = SaslClient::new(Mechanism::Plain, &password(), "mx", 587);
        let line = sasl.start();
        assert_eq!(line.line, "AUTH PLAIN AGFubgBzM2NyZXQ=");
        assert_eq!(line.redacted, "AUTH PLAIN <redacted>");
        assert!(matches!(sasl.step(&reply(235, "2.7.0 ok")), AuthStep::Done));
    }

    #[test]
    fn login_answers_two_challenges() {
        let mut sasl = SaslClient::new(Mechanism::Login, &password(), "mx", 587);
        assert_eq!(sasl.start().line, "AUTH LOGIN");
        let AuthStep::Send(user) = sasl.step(&reply(334, "VXNlcm5hbWU6")) else {
            panic!()
        };
        assert_eq!(decode(&user.line), "ann");
        let AuthStep::Send(pass) = sasl.step(&reply(334, "UGFzc3dvcmQ6")) else {
            panic!()
        };
        assert_eq!(
            (decode(&pass.line).as_str(), pass.redacted.as_str()),
            ("s3cret", "<redacted>")
        );
        assert!(matches!(sasl.step(&reply(334, "more?")), AuthStep::Failed(e) if e.code == ErrorCode::Protocol));
    }

    #[test]
    fn cram_md5_matches_rfc_2195() {
        // The example exchange of RFC 2195 §2.
        let creds = Credentials::Password {
            user: "tim".into(),
            pass: "tanstaaftanstaaf".into(),
        };
        let mut sasl = SaslClient::new(Mechanism::CramMd5, &creds, "mx", 587);
        assert_eq!(sasl.start().line, "AUTH CRAM-MD5");
        let challenge = base64::encode("<1896.697170952@postoffice.reston.mci.net>");
        let AuthStep::Send(answer) = sasl.step(&reply(334, &challenge)) else {
            panic!()
        };
        assert_eq!(decode(&answer.line), "tim b913a602c7eda7a495b4e6e7334d3890");
        assert!(matches!(sasl.step(&reply(334, "!!not base64")), AuthStep::Failed(_)));
    }

    #[test]
    fn oauth_initial_responses() {
        let mut sasl = SaslClient::new(Mechanism::XOAuth2, &token(), "smtp.example.com", 587);
        let line = sasl.start();
        assert_eq!(
            decode(line.line.strip_prefix("AUTH XOAUTH2 ").unwrap()),
            "user=ann@example.com\x01auth=Bearer ya29.tok\x01\x01"
        );
        assert!(!line.redacted.contains("ya29"));
        let creds = Credentials::OAuth2 {
            user: "a,b=c".into(),
            access_token: "t".into(),
        };
        let mut sasl = SaslClient::new(Mechanism::OAuthBearer, &creds, "smtp.example.com", 465);
        let line = sasl.start();
        assert_eq!(
            decode(line.line.strip_prefix("AUTH OAUTHBEARER ").unwrap()),
            "n,a=a=2Cb=3Dc,\x01host=smtp.example.com\x01port=465\x01auth=Bearer t\x01\x01"
        );
    }

    #[test]
    fn the_user_name_is_escaped_in_the_failure_message() {
        let credentials = Credentials::Password {
            user: "ann\r\n\u{1b}[31m\u{202e}evil".into(),
            pass: "x".into(),
        };
        let mut sasl = SaslClient::new(Mechanism::Plain, &credentials, "mx", 587);
        sasl.start();
        let AuthStep::Failed(err) = sasl.step(&reply(535, "5.7.8 no")) else {
            panic!()
        };
        assert!(
            err.message.contains(r#"user "ann\r\n\x1B[31m\u{202E}evil""#),
            "{}",
            err.message
        );
        assert!(!err.message.chars().any(|c| c.is_control() || c == '\u{202e}'));
    }

    #[test]
    fn an_oauth_error_challenge_is_acknowledged_then_reported() {
        let json = r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;
        for (mechanism, ack) in [(Mechanism::XOAuth2, ""), (Mechanism::OAuthBearer, "AQ==")] {
            let mut sasl = SaslClient::new(mechanism, &token(), "mx", 587);
            sasl.start();
            let AuthStep::Send(line) = sasl.step(&reply(334, &base64::encode(json))) else {
                panic!()
            };
            assert_eq!(line.line, ack);
            let AuthStep::Failed(err) = sasl.step(&reply(535, "5.7.8 Username and Password not accepted")) else {
                panic!()
            };
            assert_eq!(err.code, ErrorCode::Auth);
            assert!(err.message.contains("\"status\":\"401\""), "{}", err.message);
            assert!(err.hint.unwrap().contains("expired"));
        }
    }

    #[test]
    fn refusals_get_specific_hints_and_never_show_the_password() {
        let cases = [
            (
                reply(
                    535,
                    "5.7.139 Authentication unsuccessful, basic authentication is disabled.",
                ),
                ErrorCode::Auth,
                "OAuth2",
            ),
            (
                reply(534, "5.7.9 Application-specific password required."),
                ErrorCode::Auth,
                "app password",
            ),
            (
                reply(534, "5.7.14 Please log in via your web browser"),
                ErrorCode::Auth,
                "web interface",
            ),
            (
                reply(535, "5.7.8 Authentication credentials invalid"),
                ErrorCode::Auth,
                "user name and password",
            ),
            (
                reply(530, "5.7.0 Must issue a STARTTLS command first"),
                ErrorCode::AuthInsecure,
                "starttls",
            ),
            (
                reply(504, "5.5.4 Unrecognized authentication type"),
                ErrorCode::AuthUnsupported,
                "auth.method",
            ),
            (
                reply(454, "4.7.0 Temporary authentication failure"),
                ErrorCode::Auth,
                "try again later",
            ),
        ];
        for (reply, code, needle) in cases {
            let mut sasl = SaslClient::new(Mechanism::Plain, &password(), "mx", 587);
            sasl.start();
            let AuthStep::Failed(err) = sasl.step(&reply) else {
                panic!()
            };
            assert_eq!(err.code, code, "{reply}");
            assert_eq!(err.retryable, reply.is_transient());
            assert!(err.hint.as_deref().unwrap().contains(needle), "{reply}: {err}");
            assert!(!err.to_string().contains("s3cret"));
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        assert!(!format!("{:?}", password()).contains("s3cret"));
        assert!(!format!("{:?}", token()).contains("ya29"));
    }

    #[test]
    fn mechanism_names_parse() {
        assert_eq!("cram-md5".parse::<Mechanism>().unwrap(), Mechanism::CramMd5);
        assert_eq!("NTLM".parse::<Mechanism>().unwrap_err().code, ErrorCode::Input);
    }
}
