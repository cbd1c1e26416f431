//! Events as a JS class: `kind` says which variant it is, and the getter for
//! that variant's payload returns it (the others return `undefined`).

use wasm_bindgen::prelude::*;

use super::EngineError;
use crate::event::{Delivery, Event, RejectedRecipient, SessionInfo};

#[wasm_bindgen]
pub struct EngineEvent {
    pub(super) event: Event,
}

#[wasm_bindgen]
impl EngineEvent {
    /// `"transcript"`, `"starttls"`, `"port-probe"`, `"token-refused"`, `"ready"`, `"delivered"`, `"failed"` or `"closed"`.
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        match &self.event {
            Event::Transcript(_) => "transcript",
            Event::StartTls { .. } => "starttls",
            Event::PortProbe { .. } => "port-probe",
            Event::AccessTokenRefused => "token-refused",
            Event::Ready(_) => "ready",
            Event::Delivered(..) => "delivered",
            Event::Failed(..) => "failed",
            Event::Closed(_) => "closed",
        }
        .to_string()
    }

    /// Transcript: `"C"`, `"S"` or `"tls"`.
    #[wasm_bindgen(getter)]
    pub fn dir(&self) -> Option<String> {
        match &self.event {
            Event::Transcript(line) => Some(line.dir.as_str().to_string()),
            _ => None,
        }
    }

    /// Transcript: the line, credentials redacted.
    #[wasm_bindgen(getter)]
    pub fn text(&self) -> Option<String> {
        match &self.event {
            Event::Transcript(line) => Some(line.text.clone()),
            _ => None,
        }
    }

    /// StartTls: the name to verify the certificate against.
    #[wasm_bindgen(getter, js_name = serverName)]
    pub fn server_name(&self) -> Option<String> {
        match &self.event {
            Event::StartTls { server_name } => Some(server_name.clone()),
            _ => None,
        }
    }

    /// PortProbe: the bytes to write on the probe connection (a TLS ClientHello).
    #[wasm_bindgen(getter, js_name = clientHello)]
    pub fn client_hello(&self) -> Option<Vec<u8>> {
        match &self.event {
            Event::PortProbe { client_hello } => Some(client_hello.clone()),
            _ => None,
        }
    }

    /// Delivered / Failed: the id `submit` returned.
    #[wasm_bindgen(getter, js_name = messageId)]
    pub fn message_id(&self) -> Option<f64> {
        match &self.event {
            Event::Delivered(id, _) | Event::Failed(id, _) => Some(id.0 as f64),
            _ => None,
        }
    }

    /// Ready: what the set-up established.
    #[wasm_bindgen(getter)]
    pub fn session(&self) -> Option<EngineSession> {
        match &self.event {
            Event::Ready(info) => Some(EngineSession { info: info.clone() }),
            _ => None,
        }
    }

    /// Delivered: the server's acceptance.
    #[wasm_bindgen(getter)]
    pub fn delivery(&self) -> Option<EngineDelivery> {
        match &self.event {
            Event::Delivered(_, delivery) => Some(EngineDelivery {
                delivery: delivery.clone(),
            }),
            _ => None,
        }
    }

    /// Failed: why; Closed: the error that ended the connection (none after a clean QUIT).
    #[wasm_bindgen(getter)]
    pub fn error(&self) -> Option<EngineError> {
        match &self.event {
            Event::Failed(_, err) | Event::Closed(Some(err)) => Some(err.clone().into()),
            _ => None,
        }
    }
}

/// The session set-up's outcome (`Event::Ready`).
#[wasm_bindgen]
pub struct EngineSession {
    info: SessionInfo,
}

#[wasm_bindgen]
impl EngineSession {
    /// The greeting, e.g. `"220 mx.example.com ESMTP"`.
    #[wasm_bindgen(getter)]
    pub fn greeting(&self) -> String {
        self.info.greeting.to_string()
    }

    /// The server's name from its EHLO reply.
    #[wasm_bindgen(getter)]
    pub fn domain(&self) -> String {
        self.info.capabilities.domain.clone()
    }

    /// True unless the server only answered HELO.
    #[wasm_bindgen(getter)]
    pub fn esmtp(&self) -> bool {
        self.info.capabilities.esmtp
    }

    /// Each EHLO keyword line as advertised, e.g. `"SIZE 10240000"`.
    #[wasm_bindgen(getter)]
    pub fn extensions(&self) -> Vec<String> {
        self.info
            .capabilities
            .keywords
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

    /// SASL mechanisms offered, upper-cased.
    #[wasm_bindgen(getter, js_name = authMechanisms)]
    pub fn auth_mechanisms(&self) -> Vec<String> {
        self.info.capabilities.auth.clone()
    }

    /// The SIZE limit in octets, when the server announced one.
    #[wasm_bindgen(getter, js_name = sizeLimit)]
    pub fn size_limit(&self) -> Option<f64> {
        self.info.capabilities.size_limit.map(|n| n as f64)
    }

    #[wasm_bindgen(getter)]
    pub fn pipelining(&self) -> bool {
        self.info.capabilities.pipelining
    }

    #[wasm_bindgen(getter)]
    pub fn chunking(&self) -> bool {
        self.info.capabilities.chunking
    }

    #[wasm_bindgen(getter, js_name = eightBitMime)]
    pub fn eightbitmime(&self) -> bool {
        self.info.capabilities.eightbitmime
    }

    #[wasm_bindgen(getter, js_name = smtpUtf8)]
    pub fn smtputf8(&self) -> bool {
        self.info.capabilities.smtputf8
    }

    #[wasm_bindgen(getter)]
    pub fn dsn(&self) -> bool {
        self.info.capabilities.dsn
    }

    #[wasm_bindgen(getter)]
    pub fn starttls(&self) -> bool {
        self.info.capabilities.starttls
    }

    #[wasm_bindgen(getter, js_name = requireTls)]
    pub fn requiretls(&self) -> bool {
        self.info.capabilities.requiretls
    }

    #[wasm_bindgen(getter, js_name = enhancedStatusCodes)]
    pub fn enhanced_status_codes(&self) -> bool {
        self.info.capabilities.enhanced_status_codes
    }

    /// The TLS version in use, e.g. `"TLSv1.3"`; `undefined` in plaintext.
    #[wasm_bindgen(getter, js_name = tlsVersion)]
    pub fn tls_version(&self) -> Option<String> {
        self.info.tls.as_ref().map(|t| t.version.clone())
    }

    #[wasm_bindgen(getter, js_name = tlsCipher)]
    pub fn tls_cipher(&self) -> Option<String> {
        self.info.tls.as_ref().and_then(|t| t.cipher.clone())
    }

    /// Whether the certificate was verified; `undefined` in plaintext.
    #[wasm_bindgen(getter, js_name = tlsAuthorized)]
    pub fn tls_authorized(&self) -> Option<bool> {
        self.info.tls.as_ref().map(|t| t.authorized)
    }

    /// The SASL mechanism used, e.g. `"PLAIN"`; `undefined` without auth.
    #[wasm_bindgen(getter, js_name = authMethod)]
    pub fn auth_method(&self) -> Option<String> {
        self.info.auth_method.map(|m| m.as_str().to_string())
    }
}

/// A message the server accepted (`Event::Delivered`).
#[wasm_bindgen]
pub struct EngineDelivery {
    delivery: Delivery,
}

#[wasm_bindgen]
impl EngineDelivery {
    #[wasm_bindgen(getter)]
    pub fn accepted(&self) -> Vec<String> {
        self.delivery.accepted.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn rejected(&self) -> Vec<EngineRejected> {
        self.delivery
            .rejected
            .iter()
            .cloned()
            .map(|recipient| EngineRejected { recipient })
            .collect()
    }

    /// The final reply, e.g. `"250 2.0.0 Ok: queued as 4BCD"`.
    #[wasm_bindgen(getter)]
    pub fn response(&self) -> String {
        self.delivery.reply.to_string()
    }

    /// The server's queue id, when its reply names one.
    #[wasm_bindgen(getter, js_name = queueId)]
    pub fn queue_id(&self) -> Option<String> {
        self.delivery.queue_id.clone()
    }
}

/// A recipient the server refused while others were accepted.
#[wasm_bindgen]
pub struct EngineRejected {
    recipient: RejectedRecipient,
}

#[wasm_bindgen]
impl EngineRejected {
    #[wasm_bindgen(getter)]
    pub fn address(&self) -> String {
        self.recipient.address.clone()
    }

    #[wasm_bindgen(getter)]
    pub fn code(&self) -> u16 {
        self.recipient.code()
    }

    #[wasm_bindgen(getter, js_name = enhancedCode)]
    pub fn enhanced_code(&self) -> Option<String> {
        self.recipient.enhanced_code().map(|e| e.to_string())
    }

    #[wasm_bindgen(getter)]
    pub fn message(&self) -> String {
        self.recipient.message()
    }
}
