//! Builders for the two inputs the engine takes from the user: the
//! connection configuration and a message envelope.

use core::str::FromStr;

use wasm_bindgen::prelude::*;

use super::EngineError;
use crate::auth::{Credentials, Mechanism};
use crate::config::{Config, Protocol, Security};
use crate::envelope::{BodyType, Dsn, DsnReturn, Envelope, Notify, Recipient};
use crate::error::{Phase, SmtpError};
use crate::time::Duration;

/// A connection configuration; unset fields keep the engine's defaults.
#[wasm_bindgen(js_name = Options)]
pub struct WasmOptions {
    pub(super) config: Config,
}

#[wasm_bindgen(js_class = Options)]
impl WasmOptions {
    /// Defaults for `host:port`; security follows the port until set.
    #[wasm_bindgen(constructor)]
    pub fn new(host: String, port: u16) -> WasmOptions {
        WasmOptions {
            config: Config::new(host, port),
        }
    }

    /// `tls.minVersion`: `"TLSv1.2"` (the floor, always met) or `"TLSv1.3"`,
    /// checked by the engine after every handshake, whoever ran it.
    #[wasm_bindgen(js_name = setMinTlsVersion)]
    pub fn set_min_tls_version(&mut self, version: &str) -> Result<(), EngineError> {
        self.config.min_tls_version = crate::tls::MinTlsVersion::parse(version).ok_or_else(|| {
            SmtpError::input(
                Phase::Tls,
                format!("tls.minVersion \"{version}\" is not a TLS version wasmtp can require."),
            )
            .with_hint("use 'TLSv1.2' (always met: older versions are never used) or 'TLSv1.3'.")
        })?;
        Ok(())
    }

    /// `"tls"`, `"starttls"`, `"opportunistic"` or `"none"`.
    #[wasm_bindgen(js_name = setSecurity)]
    pub fn set_security(&mut self, mode: &str) -> Result<(), EngineError> {
        self.config.security = match mode {
            "tls" => Security::Tls,
            "starttls" => Security::StartTls,
            "opportunistic" => Security::Opportunistic,
            "none" => Security::None,
            other => {
                return Err(
                    SmtpError::input(Phase::Connect, format!("security \"{other}\" is not a security mode."))
                        .with_hint("use one of \"tls\", \"starttls\", \"opportunistic\" or \"none\".")
                        .into(),
                );
            }
        };
        Ok(())
    }

    /// The security mode in effect (the port's default until set).
    #[wasm_bindgen(getter)]
    pub fn security(&self) -> String {
        self.config.security.as_str().to_string()
    }

    #[wasm_bindgen(js_name = setPassword)]
    pub fn set_password(&mut self, user: String, pass: String) {
        self.config.credentials = Some(Credentials::Password { user, pass });
    }

    /// An OAuth 2.0 access token (XOAUTH2 / OAUTHBEARER).
    #[wasm_bindgen(js_name = setAccessToken)]
    pub fn set_access_token(&mut self, user: String, access_token: String) {
        self.config.credentials = Some(Credentials::OAuth2 { user, access_token });
    }

    /// The host fetches a fresh token when the server refuses this one
    /// (the `token-refused` event, answered with `supplyAccessToken`).
    #[wasm_bindgen(js_name = setRenewRefusedToken)]
    pub fn set_renew_refused_token(&mut self, renew: bool) {
        self.config.renew_refused_token = renew;
    }

    /// Forces one SASL mechanism, e.g. `"CRAM-MD5"`.
    #[wasm_bindgen(js_name = setAuthMethod)]
    pub fn set_auth_method(&mut self, name: &str) -> Result<(), EngineError> {
        self.config.auth_mechanism = Some(Mechanism::from_str(name)?);
        Ok(())
    }

    #[wasm_bindgen(js_name = setAllowInsecureAuth)]
    pub fn set_allow_insecure_auth(&mut self, allow: bool) {
        self.config.allow_insecure_auth = allow;
    }

    /// The EHLO name (validated when the connection is created).
    #[wasm_bindgen(js_name = setClientName)]
    pub fn set_client_name(&mut self, name: String) {
        self.config.client_name = name;
    }

    /// Speaks LMTP (RFC 2033) instead of SMTP.
    #[wasm_bindgen(js_name = setLmtp)]
    pub fn set_lmtp(&mut self, lmtp: bool) {
        self.config.protocol = if lmtp { Protocol::Lmtp } else { Protocol::Smtp };
    }

    /// Time-outs in milliseconds; `undefined` keeps a default.
    #[wasm_bindgen(js_name = setTimeouts)]
    pub fn set_timeouts(
        &mut self,
        connect: Option<f64>,
        tls_handshake: Option<f64>,
        greeting: Option<f64>,
        command: Option<f64>,
        data_end: Option<f64>,
    ) {
        let t = &mut self.config.timeouts;
        let ms = |v: Option<f64>, slot: &mut Duration| {
            if let Some(v) = v {
                *slot = Duration::from_millis(v as u64);
            }
        };
        ms(connect, &mut t.connect);
        ms(tls_handshake, &mut t.tls_handshake);
        ms(greeting, &mut t.greeting);
        ms(command, &mut t.command);
        ms(data_end, &mut t.data_end);
    }

    /// The command time-out in milliseconds: how long a write may stall
    /// before the host reports `socketFailed(.., writeStalled = true)`.
    #[wasm_bindgen(js_name = commandTimeout)]
    pub fn command_timeout(&self) -> f64 {
        self.config.timeouts.command.as_millis() as f64
    }
}

/// The envelope of one message.
#[wasm_bindgen(js_name = Envelope)]
pub struct WasmEnvelope {
    pub(super) envelope: Envelope,
}

#[wasm_bindgen(js_class = Envelope)]
impl WasmEnvelope {
    /// `from` is the bare address; `""` is the null sender `<>`.
    #[wasm_bindgen(constructor)]
    pub fn new(from: String) -> WasmEnvelope {
        WasmEnvelope {
            envelope: Envelope::new(from, Vec::<String>::new()),
        }
    }

    /// Checks the addresses and DSN values (EINPUT), so a message that can
    /// never be sent fails before anything connects.
    pub fn validate(&self) -> Result<(), EngineError> {
        self.envelope.validate().map(|_| ()).map_err(EngineError::from)
    }

    #[wasm_bindgen(js_name = addRecipient)]
    pub fn add_recipient(&mut self, address: String) {
        self.envelope.recipients.push(Recipient::new(address));
    }

    /// A recipient with DSN options: `notify` is a list of
    /// `"success"`, `"failure"`, `"delay"`, or `["never"]` alone. An empty
    /// list and `"never"` next to a condition are refused (RFC 3461 §4.1:
    /// NEVER excludes the others), never guessed at.
    #[wasm_bindgen(js_name = addRecipientWithDsn)]
    pub fn add_recipient_with_dsn(
        &mut self,
        address: String,
        notify: Option<Vec<String>>,
        orcpt: Option<String>,
    ) -> Result<(), EngineError> {
        let notify = match notify {
            None => None,
            Some(words) => {
                let never = words.iter().any(|w| w.eq_ignore_ascii_case("never"));
                if words.is_empty() || (never && words.len() > 1) {
                    return Err(SmtpError::input(
                        Phase::Rcpt,
                        "DSN notify is empty or has \"never\" next to a condition (RFC 3461 §4.1).",
                    )
                    .with_hint(
                        "use some of \"success\", \"failure\", \"delay\", or [\"never\"] alone for no notification.",
                    )
                    .into());
                }
                let mut n = Notify::default();
                for word in &words {
                    match word.to_ascii_lowercase().as_str() {
                        "success" => n.success = true,
                        "failure" => n.failure = true,
                        "delay" => n.delay = true,
                        "never" => {}
                        other => {
                            return Err(SmtpError::input(
                                Phase::Rcpt,
                                format!("DSN notify \"{other}\" is not a condition."),
                            )
                            .with_hint("use \"success\", \"failure\", \"delay\" or \"never\".")
                            .into());
                        }
                    }
                }
                Some(n)
            }
        };
        self.envelope.recipients.push(Recipient { address, notify, orcpt });
        Ok(())
    }

    /// The body size in octets: sent as `SIZE=` and checked against the server's limit.
    #[wasm_bindgen(js_name = setSize)]
    pub fn set_size(&mut self, size: f64) {
        self.envelope.size = Some(size as u64);
    }

    /// `"auto"`, `"7bit"` or `"8bitmime"`.
    #[wasm_bindgen(js_name = setBodyType)]
    pub fn set_body_type(&mut self, body_type: &str) -> Result<(), EngineError> {
        self.envelope.body_type = match body_type {
            "auto" => BodyType::Auto,
            "7bit" => BodyType::SevenBit,
            "8bitmime" => BodyType::EightBitMime,
            other => {
                return Err(
                    SmtpError::input(Phase::Mail, format!("body type \"{other}\" is not known."))
                        .with_hint("use \"auto\", \"7bit\" or \"8bitmime\".")
                        .into(),
                );
            }
        };
        Ok(())
    }

    /// Forces SMTPUTF8 even for ASCII addresses (UTF-8 in the headers).
    #[wasm_bindgen(js_name = setSmtpUtf8)]
    pub fn set_smtputf8(&mut self, on: bool) {
        self.envelope.smtputf8 = on;
    }

    #[wasm_bindgen(js_name = setRequireTls)]
    pub fn set_require_tls(&mut self, on: bool) {
        self.envelope.require_tls = on;
    }

    /// DSN `RET=` (`"full"` or `"headers"`) and `ENVID=`.
    #[wasm_bindgen(js_name = setDsn)]
    pub fn set_dsn(&mut self, ret: Option<String>, envid: Option<String>) -> Result<(), EngineError> {
        let ret = match ret.as_deref() {
            None => None,
            Some("full") => Some(DsnReturn::Full),
            Some("headers") => Some(DsnReturn::Headers),
            Some(other) => {
                return Err(
                    SmtpError::input(Phase::Mail, format!("DSN return \"{other}\" is not known."))
                        .with_hint("use \"full\" or \"headers\".")
                        .into(),
                );
            }
        };
        self.envelope.dsn = Some(Dsn { ret, envid });
        Ok(())
    }
}

/// The port a security mode usually goes with: 465, 587 or 25.
#[wasm_bindgen(js_name = defaultPort)]
pub fn default_port(security: &str) -> Result<u16, EngineError> {
    let mut options = WasmOptions::new(String::new(), 0);
    options.set_security(security)?;
    Ok(options.config.security.default_port())
}
