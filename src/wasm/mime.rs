//! The MIME builder for JS: a message spec filled with setters, and a
//! builder polled for bytes (`pollOutput`) that asks for streamed
//! attachments (`waitingFor`, `pushAttachment`, `endAttachment`).

use wasm_bindgen::prelude::*;

use super::{EngineError, WasmEnvelope};
use crate::error::{Phase, SmtpError};
use crate::mime::{Attachment, AttachmentContent, Disposition, MessageBuilder, MessageSpec, PartEncoding, Segment};

/// The fields of a structured message (`client.send({ from, to, ... })`).
#[wasm_bindgen(js_name = MessageSpec)]
pub struct WasmMessageSpec {
    spec: MessageSpec,
}

#[wasm_bindgen(js_class = MessageSpec)]
impl WasmMessageSpec {
    /// `from`: `ann@example.com` or `Ann <ann@example.com>`.
    #[wasm_bindgen(constructor)]
    pub fn new(from: String) -> WasmMessageSpec {
        WasmMessageSpec {
            spec: MessageSpec {
                from,
                ..MessageSpec::default()
            },
        }
    }

    #[wasm_bindgen(js_name = addTo)]
    pub fn add_to(&mut self, address: String) {
        self.spec.to.push(address);
    }

    #[wasm_bindgen(js_name = addCc)]
    pub fn add_cc(&mut self, address: String) {
        self.spec.cc.push(address);
    }

    #[wasm_bindgen(js_name = addBcc)]
    pub fn add_bcc(&mut self, address: String) {
        self.spec.bcc.push(address);
    }

    #[wasm_bindgen(js_name = addReplyTo)]
    pub fn add_reply_to(&mut self, address: String) {
        self.spec.reply_to.push(address);
    }

    #[wasm_bindgen(js_name = setSubject)]
    pub fn set_subject(&mut self, subject: String) {
        self.spec.subject = Some(subject);
    }

    /// The text body as UTF-8 bytes (`TextEncoder.encode`). Bytes, not a
    /// `String`: wasm-bindgen passes a string with a JavaScript loop over
    /// its characters, bytes with one copy, and a body is the one large
    /// string of a message (that loop was ~7% of the client's CPU).
    #[wasm_bindgen(js_name = setText)]
    pub fn set_text(&mut self, utf8: Vec<u8>) -> Result<(), EngineError> {
        self.spec.text = Some(body_text(utf8, "text")?);
        Ok(())
    }

    /// The HTML body as UTF-8 bytes (see `setText`).
    #[wasm_bindgen(js_name = setHtml)]
    pub fn set_html(&mut self, utf8: Vec<u8>) -> Result<(), EngineError> {
        self.spec.html = Some(body_text(utf8, "html")?);
        Ok(())
    }

    #[wasm_bindgen(js_name = addHeader)]
    pub fn add_header(&mut self, name: String, value: String) {
        self.spec.headers.push((name, value));
    }

    #[wasm_bindgen(js_name = setMessageId)]
    pub fn set_message_id(&mut self, id: String) {
        self.spec.message_id = Some(id);
    }

    /// An attachment whose bytes are in hand; returns its index.
    #[wasm_bindgen(js_name = addAttachmentBytes)]
    pub fn add_attachment_bytes(
        &mut self,
        bytes: Vec<u8>,
        filename: Option<String>,
        content_type: Option<String>,
        cid: Option<String>,
        disposition: Option<String>,
    ) -> Result<usize, EngineError> {
        self.add_attachment(
            AttachmentContent::Bytes(bytes),
            filename,
            content_type,
            cid,
            disposition,
        )
    }

    /// A field of the message that takes one text value: `"sender"` (an
    /// address), `"inReplyTo"` and `"reference"` (Message-IDs; each
    /// `reference` adds one), `"date"` (ms since the Unix epoch, as
    /// decimal text), `"stream"` (`"text"` or `"html"`: that body is pushed
    /// through `MessageBuilder.pushAttachment`, numbered after every
    /// attachment and alternative, text before html). One entry point for
    /// these keeps the module small.
    #[wasm_bindgen(js_name = setField)]
    pub fn set_field(&mut self, name: &str, value: String) -> Result<(), EngineError> {
        let spec = &mut self.spec;
        match name {
            "sender" => spec.sender = Some(value),
            "inReplyTo" => spec.in_reply_to = Some(value),
            "reference" => spec.references.push(value),
            "stream" if value == "text" => spec.text_streamed = true,
            "stream" if value == "html" => spec.html_streamed = true,
            "date" => {
                let ms = value.parse::<i64>().map_err(|_| {
                    SmtpError::input(Phase::Data, "the date is not a valid time.")
                        .with_hint("pass a Date, a date string Date.parse reads, or milliseconds since 1970.")
                })?;
                spec.date = Some(ms);
            }
            _ => return Err(SmtpError::input(Phase::Data, "setField was given an unknown field name.").into()),
        }
        Ok(())
    }

    /// Another version of the body (e.g. `text/calendar; method=REQUEST`)
    /// whose bytes are in hand; returns its index among the alternatives.
    #[wasm_bindgen(js_name = addAlternativeBytes)]
    pub fn add_alternative_bytes(
        &mut self,
        bytes: Vec<u8>,
        content_type: Option<String>,
        filename: Option<String>,
    ) -> usize {
        self.add_alternative(AttachmentContent::Bytes(bytes), content_type, filename)
    }

    /// An alternative pushed later through `MessageBuilder.pushAttachment`
    /// (its index there follows every attachment's); returns its index
    /// among the alternatives.
    #[wasm_bindgen(js_name = addAlternativeStream)]
    pub fn add_alternative_stream(&mut self, content_type: Option<String>, filename: Option<String>) -> usize {
        self.add_alternative(AttachmentContent::Stream, content_type, filename)
    }

    /// A header of part `index`, numbered as in `pushAttachment`: the
    /// attachments, then the alternatives (checked when the builder is made).
    /// `Content-Transfer-Encoding` with `base64`, `quoted-printable`,
    /// `7bit`, `8bit` or `raw` (a part given whole, its headers included)
    /// chooses how the part is written instead (one entry point for both
    /// keeps the module small; the JS side refuses that header from users).
    #[wasm_bindgen(js_name = addPartHeader)]
    pub fn add_part_header(&mut self, index: usize, name: String, value: String) {
        let attachments = self.spec.attachments.len();
        let part = match index.checked_sub(attachments) {
            None => self.spec.attachments.get_mut(index),
            Some(alternative) => self.spec.alternatives.get_mut(alternative),
        };
        if let Some(part) = part {
            match PartEncoding::from_name(&value) {
                Some(encoding) if name == "Content-Transfer-Encoding" => part.encoding = encoding,
                // Any other Content-* header is refused when the builder is made.
                _ => part.headers.push((name, value)),
            }
        }
    }

    /// An attachment pushed later through `MessageBuilder.pushAttachment`; returns its index.
    #[wasm_bindgen(js_name = addAttachmentStream)]
    pub fn add_attachment_stream(
        &mut self,
        filename: Option<String>,
        content_type: Option<String>,
        cid: Option<String>,
        disposition: Option<String>,
    ) -> Result<usize, EngineError> {
        self.add_attachment(AttachmentContent::Stream, filename, content_type, cid, disposition)
    }
}

/// A body given as bytes must be UTF-8 (TextEncoder's output always is).
fn body_text(utf8: Vec<u8>, field: &str) -> Result<String, EngineError> {
    String::from_utf8(utf8).map_err(|error| {
        SmtpError::input(
            Phase::Data,
            format!(
                "the {field} body is not valid UTF-8 (at byte {}).",
                error.utf8_error().valid_up_to()
            ),
        )
        .with_hint("pass the body as a string, or encode it with TextEncoder.")
        .into()
    })
}

impl WasmMessageSpec {
    fn add_alternative(
        &mut self,
        content: AttachmentContent,
        content_type: Option<String>,
        filename: Option<String>,
    ) -> usize {
        self.spec.alternatives.push(Attachment {
            filename,
            content_type,
            cid: None,
            disposition: None,
            content,
            headers: Vec::new(),
            encoding: Default::default(),
        });
        self.spec.alternatives.len() - 1
    }

    fn add_attachment(
        &mut self,
        content: AttachmentContent,
        filename: Option<String>,
        content_type: Option<String>,
        cid: Option<String>,
        disposition: Option<String>,
    ) -> Result<usize, EngineError> {
        let disposition = match disposition.as_deref() {
            None => None,
            Some("inline") => Some(Disposition::Inline),
            Some("attachment") => Some(Disposition::Attachment),
            Some(_) => {
                return Err(
                    SmtpError::input(Phase::Data, "an attachment's contentDisposition is not known.")
                        .with_hint("use \"inline\" or \"attachment\".")
                        .into(),
                );
            }
        };
        self.spec.attachments.push(Attachment {
            filename,
            content_type,
            cid,
            disposition,
            content,
            headers: Vec::new(),
            encoding: Default::default(),
        });
        Ok(self.spec.attachments.len() - 1)
    }
}

/// Produces one message from a spec, polled piece by piece.
#[wasm_bindgen(js_name = MessageBuilder)]
pub struct WasmMessageBuilder {
    builder: MessageBuilder,
    /// After `pollOutput` returned nothing: the streamed attachment it waits for.
    waiting_for: Option<usize>,
    /// Output polled for `Connection.writeBodyFromBuilder` that the engine
    /// had no room for yet (from `pending_at` on).
    pending: Vec<u8>,
    pending_at: usize,
}

/// `writeBodyFromBuilder`: the engine is full; drain `pollTransmit` and call again.
pub(super) const FEED_BLOCKED: i32 = -1;
/// `writeBodyFromBuilder`: the whole message is in the engine; call `endBody`.
pub(super) const FEED_DONE: i32 = -2;

#[wasm_bindgen(js_class = MessageBuilder)]
impl WasmMessageBuilder {
    /// Checks the spec (consumed) and prepares the message. `random` is 32
    /// fresh random bytes (boundaries, Message-ID); `now_ms` the Date
    /// header's time (ms since the Unix epoch). Throws an `EngineError`
    /// (`EINPUT`) for any mistake in the spec.
    #[wasm_bindgen(constructor)]
    pub fn new(spec: WasmMessageSpec, random: &[u8], now_ms: f64) -> Result<WasmMessageBuilder, EngineError> {
        let random: [u8; 32] = random
            .try_into()
            .map_err(|_| SmtpError::input(Phase::Data, "the MIME builder needs exactly 32 random bytes."))?;
        let builder = MessageBuilder::new(spec.spec, random, now_ms as i64)?;
        Ok(WasmMessageBuilder {
            builder,
            waiting_for: None,
            pending: Vec::new(),
            pending_at: 0,
        })
    }

    /// MAIL FROM / RCPT TO for this message (From, To, Cc and Bcc), with its size when known.
    pub fn envelope(&self) -> WasmEnvelope {
        WasmEnvelope {
            envelope: self.builder.envelope().clone(),
        }
    }

    /// The envelope sender the headers give (the From address).
    #[wasm_bindgen(getter, js_name = envelopeFrom)]
    pub fn envelope_from(&self) -> String {
        self.builder.envelope().from.clone()
    }

    /// The recipients the headers give (To, Cc and Bcc, each once).
    #[wasm_bindgen(getter)]
    pub fn recipients(&self) -> Vec<String> {
        self.builder
            .envelope()
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect()
    }

    /// The envelope for a message that names its own (`envelope: { from,
    /// to, dsn, requireTls }`): the addresses and options of `custom`
    /// (consumed) with this message's size and body type. SMTPUTF8 is on
    /// when `custom` asks for it or the headers need it.
    #[wasm_bindgen(js_name = envelopeWith)]
    pub fn envelope_with(&self, custom: WasmEnvelope) -> WasmEnvelope {
        let own = self.builder.envelope();
        let mut envelope = custom.envelope;
        envelope.size = own.size;
        envelope.body_type = own.body_type;
        envelope.smtputf8 |= own.smtputf8;
        WasmEnvelope { envelope }
    }

    /// The Message-ID, angle brackets included.
    #[wasm_bindgen(getter, js_name = messageId)]
    pub fn message_id(&self) -> String {
        self.builder.message_id().to_string()
    }

    /// The size in octets when every part is in hand (no streamed attachment).
    #[wasm_bindgen(getter)]
    pub fn size(&self) -> Option<f64> {
        self.builder.envelope().size.map(|n| n as f64)
    }

    /// The next bytes of the message; `undefined` when it is complete or
    /// waits for a streamed attachment (see `waitingFor`).
    #[wasm_bindgen(js_name = pollOutput)]
    pub fn poll_output(&mut self) -> Option<Vec<u8>> {
        match self.builder.poll_output() {
            Segment::Bytes(bytes) => {
                self.waiting_for = None;
                Some(bytes)
            }
            Segment::NeedAttachment(index) => {
                self.waiting_for = Some(index);
                None
            }
            Segment::Done => {
                self.waiting_for = None;
                None
            }
        }
    }

    /// The streamed attachment `pollOutput` waits for; `undefined` when done.
    #[wasm_bindgen(getter, js_name = waitingFor)]
    pub fn waiting_for(&self) -> Option<usize> {
        self.waiting_for
    }

    #[wasm_bindgen(js_name = pushAttachment)]
    pub fn push_attachment(&mut self, index: usize, chunk: &[u8]) -> Result<(), EngineError> {
        Ok(self.builder.push_attachment(index, chunk)?)
    }

    #[wasm_bindgen(js_name = endAttachment)]
    pub fn end_attachment(&mut self, index: usize) -> Result<(), EngineError> {
        Ok(self.builder.end_attachment(index)?)
    }
}

impl WasmMessageBuilder {
    /// Moves the builder's output into `write` (a connection's `write_body`)
    /// until it takes no more, without a round trip through JS. Returns the
    /// index of the streamed attachment the builder waits for (>= 0),
    /// [`FEED_BLOCKED`] or [`FEED_DONE`]. Output that did not fit stays here.
    pub(crate) fn feed(&mut self, mut write: impl FnMut(&[u8]) -> Result<usize, SmtpError>) -> Result<i32, SmtpError> {
        loop {
            if self.pending_at < self.pending.len() {
                self.pending_at += write(&self.pending[self.pending_at..])?;
                if self.pending_at < self.pending.len() {
                    return Ok(FEED_BLOCKED);
                }
            }
            match self.builder.poll_output() {
                Segment::Bytes(bytes) => {
                    self.waiting_for = None;
                    self.pending = bytes;
                    self.pending_at = 0;
                }
                Segment::NeedAttachment(index) => {
                    self.waiting_for = Some(index);
                    self.pending = Vec::new();
                    self.pending_at = 0;
                    return Ok(index as i32);
                }
                Segment::Done => {
                    self.waiting_for = None;
                    self.pending = Vec::new();
                    self.pending_at = 0;
                    return Ok(FEED_DONE);
                }
            }
        }
    }
}
