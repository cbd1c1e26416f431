//! The message producer: checks the whole [`MessageSpec`] up front, lays
//! the message out as a list of steps, then runs the steps as it is polled.

use super::base64_stream::{Base64LineEncoder, encoded_len as base64_encoded_len};
use super::date::format_date;
use super::headers::{
    Header, MAX_DISPLAY_NAME, MAX_HEADER_VALUE, MAX_SUBJECT, address_list, check_field_name, check_header_text,
    check_length, unstructured,
};
use super::part_encoding::{LineChecker, PartEncoder, PartEncoding, QpStream};
use super::parts::{
    MultipartKind, TextKind, alternative_headers, attachment_headers, multipart_headers, text_part_headers,
};
use super::quoted_printable::{TextEncoder, TextEncoding, choose_text_encoding};
use super::{Attachment, AttachmentContent, MessageSpec};
use crate::address::{Mailbox, parse_mailbox, parse_mailbox_list, quote};
use crate::envelope::{BodyType, Envelope};
use crate::error::{Phase, SmtpError};
use std::collections::BinaryHeap;

/// How much output one [`Segment::Bytes`] carries at most from content
/// that is in hand (a streamed chunk comes out whole, however large).
const OUTPUT_CHUNK: usize = 16 * 1024;
/// Input bytes that make one full base64 line of 76 characters.
const BASE64_LINE_BYTES: usize = 57;

/// What [`MessageBuilder::poll_output`] has next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// The next bytes of the message, to send as they are.
    Bytes(Vec<u8>),
    /// The builder has reached streamed attachment `index`: call
    /// [`MessageBuilder::push_attachment`] with its next chunk, or
    /// [`MessageBuilder::end_attachment`] when there is none, then poll again.
    NeedAttachment(usize),
    /// The message is complete.
    Done,
}

/// The shape of the body, before it is written.
#[derive(Debug)]
enum Node {
    Multipart(MultipartKind, Vec<Node>),
    Text(TextKind),
    Attachment(usize),
}

/// The message as a list of things to write, in order.
#[derive(Debug)]
enum Step {
    /// Bytes ready to go: headers, boundaries.
    Literal(Vec<u8>),
    Body(BodyStep),
}

/// A part body, encoded when its turn comes.
#[derive(Debug, Clone, Copy)]
enum BodyStep {
    Text(TextKind),
    /// Base64 of an attachment given as bytes.
    InHand(usize),
    /// Base64 of an attachment pushed by the caller.
    Streamed(usize),
}

/// Where an attachment's bytes are.
#[derive(Debug)]
enum Source {
    /// Given up front; emptied once encoded, to give the memory back.
    InHand(Vec<u8>),
    /// Given up front for an encoding other than base64, and encoded when
    /// the builder was made (which checked it and gives its size); the
    /// planner moves the bytes into the message's steps.
    Encoded(Vec<u8>),
    Streamed {
        ended: bool,
    },
}

/// Produces one message; see the [module documentation](super).
#[derive(Debug)]
pub struct MessageBuilder {
    envelope: Envelope,
    message_id: String,
    needs_smtputf8: bool,
    text: String,
    html: String,
    text_encoding: TextEncoding,
    html_encoding: TextEncoding,
    sources: Vec<Source>,
    /// The encoder of each source, by the same index.
    encoders: Vec<PartEncoder>,
    steps: Vec<Step>,
    /// The step being written.
    cursor: usize,
    /// Per-step progress, reset when a step finishes.
    text_encoder: Option<TextEncoder>,
    in_hand_offset: usize,
    /// Encoded bytes of the streamed attachment not yet polled.
    stream_output: Vec<u8>,
}

impl MessageBuilder {
    /// Checks `spec` and prepares the message. `random` makes the boundaries
    /// and the generated Message-ID (pass fresh random bytes, e.g. from
    /// `crypto.getRandomValues`); `now_unix_ms` is the Date header's time.
    /// Every input mistake is reported here, before any byte is produced.
    pub fn new(spec: MessageSpec, random: [u8; 32], now_unix_ms: i64) -> Result<Self, SmtpError> {
        let date = format_date(spec.date.unwrap_or(now_unix_ms))?;
        let addresses = Addresses::parse(&spec)?;
        let message_id = match &spec.message_id {
            Some(given) => checked_message_id(given)?,
            None => generated_message_id(&random[..16], &addresses.from.address),
        };
        let top_headers = top_level_headers(&spec, &addresses, &date, &message_id)?;
        // Attachments, then alternatives: one numbering for both, which is
        // also the index of a streamed part in `NeedAttachment`.
        let attached = spec
            .attachments
            .iter()
            .enumerate()
            .map(|(index, attachment)| attachment_headers(attachment, index));
        let alternatives = spec
            .alternatives
            .iter()
            .enumerate()
            .map(|(index, alternative)| alternative_headers(alternative, index));
        let part_headers = attached.chain(alternatives).collect::<Result<Vec<_>, _>>()?;

        let (mut envelope, needs_smtputf8) = addresses.envelope(!top_headers.is_ascii());

        // (The JS layer never gives a body twice: see the module docs.)
        #[cfg(not(target_arch = "wasm32"))]
        for (field, given, streamed) in [
            ("text", &spec.text, spec.text_streamed),
            ("html", &spec.html, spec.html_streamed),
        ] {
            if streamed && given.is_some() {
                return Err(
                    SmtpError::input(Phase::Data, format!("the {field} body is given twice."))
                        .with_hint("give it once."),
                );
            }
        }
        let text = spec.text.unwrap_or_default();
        let html = spec.html.unwrap_or_default();
        // A streamed body cannot be looked at first: it goes quoted-printable.
        let text_encoding = if spec.text_streamed {
            TextEncoding::QuotedPrintable
        } else {
            choose_text_encoding(&text)
        };
        let html_encoding = if spec.html_streamed {
            TextEncoding::QuotedPrintable
        } else {
            choose_text_encoding(&html)
        };
        let body = layout(
            !text.is_empty() || spec.text_streamed,
            !html.is_empty() || spec.html_streamed,
            &spec.attachments,
            spec.alternatives.len(),
        );
        let boundary_base = format!("=_wasmtp_{}", hex(&random[16..]));
        let mut sources = Vec::new();
        let mut encoders = Vec::new();
        let parts = spec.attachments.into_iter().chain(spec.alternatives);
        for (index, (part, headers)) in parts.zip(&part_headers).enumerate() {
            let mut encoder = part_encoder(&part, index, headers, &boundary_base);
            sources.push(match part.content {
                AttachmentContent::Bytes(bytes) if part.encoding != PartEncoding::Base64 => {
                    // Encoded now: a mistake in it is reported before
                    // anything is sent, and the message's size is known.
                    let mut encoded = Vec::with_capacity(bytes.len() + bytes.len() / 8 + 16);
                    encoder.push(&bytes, &mut encoded)?;
                    encoder.finish(&mut encoded)?;
                    Source::Encoded(encoded)
                }
                content => Source::from(content),
            });
            encoders.push(encoder);
        }
        let mut stream_of = |streamed: bool, what: &'static str| {
            streamed.then(|| {
                sources.push(Source::Streamed { ended: false });
                encoders.push(PartEncoder::QuotedPrintable(QpStream::utf8_body(what)));
                sources.len() - 1
            })
        };
        let text_stream = stream_of(spec.text_streamed, "text");
        let html_stream = stream_of(spec.html_streamed, "html");
        if encoders.iter().any(PartEncoder::needs_8bitmime) {
            envelope.body_type = BodyType::EightBitMime;
        }

        let planner = Planner {
            boundary_base,
            text_encoding,
            html_encoding,
            text_stream,
            html_stream,
            part_headers: &part_headers,
            sources: &mut sources,
            steps: Vec::new(),
        };
        let steps = planner.plan(&top_headers, &body);

        let mut builder = MessageBuilder {
            envelope,
            message_id,
            needs_smtputf8,
            text,
            html,
            text_encoding,
            html_encoding,
            sources,
            encoders,
            steps,
            cursor: 0,
            text_encoder: None,
            in_hand_offset: 0,
            stream_output: Vec::new(),
        };
        // With every byte in hand the size is known before sending, so the
        // server's SIZE limit can be checked before any data goes out.
        builder.envelope.size = builder.exact_size();
        Ok(builder)
    }

    /// MAIL FROM and RCPT TO: the From address, and every To, Cc and Bcc
    /// address once, in order. `body_type` is 7-bit unless the headers
    /// carry UTF-8 addresses; `smtputf8` is set when they do.
    pub fn envelope(&self) -> &Envelope {
        &self.envelope
    }

    /// The Message-ID, angle brackets included.
    pub fn message_id(&self) -> &str {
        &self.message_id
    }

    /// Whether the server must offer SMTPUTF8: some address, in the
    /// envelope or in the headers, has a UTF-8 local part or domain.
    pub fn needs_smtputf8(&self) -> bool {
        self.needs_smtputf8
    }

    /// True once [`poll_output`](Self::poll_output) has returned everything.
    pub fn is_done(&self) -> bool {
        self.cursor >= self.steps.len()
    }

    /// The next piece of the message. Call it until [`Segment::Done`].
    pub fn poll_output(&mut self) -> Segment {
        let mut out = Vec::new();
        while out.len() < OUTPUT_CHUNK {
            let body = match self.steps.get_mut(self.cursor) {
                None => break,
                Some(Step::Literal(bytes)) => {
                    out.append(bytes);
                    self.cursor += 1;
                    continue;
                }
                Some(Step::Body(body)) => *body,
            };
            let finished = match body {
                BodyStep::Text(kind) => self.encode_text(kind, &mut out),
                BodyStep::InHand(index) => self.encode_in_hand(index, &mut out),
                BodyStep::Streamed(index) => {
                    out.append(&mut self.stream_output);
                    let ended = matches!(self.sources.get(index), Some(Source::Streamed { ended: true }));
                    if !ended {
                        // Hand over what is ready before asking for more.
                        return if out.is_empty() {
                            Segment::NeedAttachment(index)
                        } else {
                            Segment::Bytes(out)
                        };
                    }
                    true
                }
            };
            if finished {
                self.cursor += 1;
                self.text_encoder = None;
                self.in_hand_offset = 0;
            }
        }
        if out.is_empty() {
            Segment::Done
        } else {
            Segment::Bytes(out)
        }
    }

    /// Gives the next chunk of streamed attachment `index`, after
    /// [`poll_output`](Self::poll_output) returned `NeedAttachment(index)`.
    /// Chunks may have any size; the encoded bytes come out of the next
    /// poll, so poll after each push to keep memory bounded.
    ///
    /// A part sent other than in base64 is checked as it comes: a chunk
    /// that breaks its rules (a line over 998 octets in 7bit, text that is
    /// not UTF-8...) is an error, and the message must then be abandoned.
    pub fn push_attachment(&mut self, index: usize, chunk: &[u8]) -> Result<(), SmtpError> {
        self.check_stream_turn(index, "push_attachment")?;
        match self.encoders.get_mut(index) {
            Some(encoder) => encoder.push(chunk, &mut self.stream_output),
            None => Ok(()),
        }
    }

    /// Ends streamed attachment `index`: its last bytes are encoded and the
    /// builder moves on to what follows it.
    pub fn end_attachment(&mut self, index: usize) -> Result<(), SmtpError> {
        self.check_stream_turn(index, "end_attachment")?;
        if let Some(encoder) = self.encoders.get_mut(index) {
            encoder.finish(&mut self.stream_output)?;
        }
        if let Some(Source::Streamed { ended }) = self.sources.get_mut(index) {
            *ended = true;
        }
        Ok(())
    }

    /// The whole message, for one without streamed attachments.
    pub fn into_vec(mut self) -> Result<Vec<u8>, SmtpError> {
        let mut message = Vec::new();
        loop {
            match self.poll_output() {
                Segment::Bytes(bytes) => message.extend_from_slice(&bytes),
                Segment::Done => return Ok(message),
                Segment::NeedAttachment(index) => {
                    return Err(SmtpError::input(
                        Phase::Data,
                        format!("attachment {index} is a stream, which into_vec cannot read."),
                    )
                    .with_hint("poll the builder and push the stream's chunks, or give the attachment as bytes."));
                }
            }
        }
    }

    /// Puts whole header fields (each ending in CRLF) before the message's
    /// first header: fields that belong at the top, like DKIM-Signature
    /// (see [`crate::dkim`]). Only before the first poll; the size grows
    /// by their length.
    pub fn prepend_header(&mut self, fields: &str) -> Result<(), SmtpError> {
        let bytes = fields.as_bytes();
        // Every CR is followed by LF and every LF preceded by CR; the
        // first line is not a continuation; the last line is ended.
        let line_ends_paired = bytes.iter().enumerate().all(|(i, &b)| match b {
            b'\r' => bytes.get(i + 1) == Some(&b'\n'),
            b'\n' => i > 0 && bytes[i - 1] == b'\r',
            _ => true,
        });
        let whole_fields = bytes.is_empty() || (bytes.ends_with(b"\r\n") && !matches!(bytes[0], b' ' | b'\t'));
        let first = match self.steps.first_mut() {
            Some(Step::Literal(first)) if self.cursor == 0 && line_ends_paired && whole_fields => first,
            _ => {
                return Err(SmtpError::input(
                    Phase::Data,
                    "prepend_header takes whole header fields, before the message is polled.",
                )
                .with_hint("pass fields like \"Name: value\\r\\n\" before the first poll_output."));
            }
        };
        let mut joined = bytes.to_vec();
        joined.append(first);
        *first = joined;
        if let Some(size) = &mut self.envelope.size {
            *size += bytes.len() as u64;
        }
        Ok(())
    }

    /// The size of the whole message in octets, when no attachment is
    /// streamed. Text bodies are encoded once, into a scratch buffer, to
    /// count them; base64 sizes follow from the input size.
    fn exact_size(&self) -> Option<u64> {
        let mut total: u64 = 0;
        for step in &self.steps {
            let size = match step {
                Step::Literal(bytes) => bytes.len() as u64,
                Step::Body(BodyStep::Text(kind)) => self.encoded_text_size(*kind),
                Step::Body(BodyStep::InHand(index)) => match self.sources.get(*index) {
                    Some(Source::InHand(bytes)) => base64_encoded_len(bytes.len() as u64),
                    _ => 0,
                },
                Step::Body(BodyStep::Streamed(_)) => return None,
            };
            total = total.saturating_add(size);
        }
        Some(total)
    }

    fn encoded_text_size(&self, kind: TextKind) -> u64 {
        let (text, encoding) = match kind {
            TextKind::Plain => (&self.text, self.text_encoding),
            TextKind::Html => (&self.html, self.html_encoding),
        };
        let mut encoder = TextEncoder::new(encoding);
        let mut scratch = Vec::with_capacity(OUTPUT_CHUNK + 8);
        let mut size = 0u64;
        loop {
            let finished = encoder.encode_some(text.as_bytes(), &mut scratch, OUTPUT_CHUNK);
            size += scratch.len() as u64;
            scratch.clear();
            if finished {
                return size;
            }
        }
    }

    fn encode_text(&mut self, kind: TextKind, out: &mut Vec<u8>) -> bool {
        let (text, encoding) = match kind {
            TextKind::Plain => (&mut self.text, self.text_encoding),
            TextKind::Html => (&mut self.html, self.html_encoding),
        };
        let encoder = self.text_encoder.get_or_insert_with(|| TextEncoder::new(encoding));
        let finished = encoder.encode_some(text.as_bytes(), out, OUTPUT_CHUNK.saturating_sub(out.len()));
        if finished {
            *text = String::new(); // written out: give the memory back
        }
        finished
    }

    fn encode_in_hand(&mut self, index: usize, out: &mut Vec<u8>) -> bool {
        let (Some(Source::InHand(bytes)), Some(PartEncoder::Base64(base64))) =
            (self.sources.get_mut(index), self.encoders.get_mut(index))
        else {
            return true;
        };
        // As many whole lines (76 characters and CRLF) as the segment has room for.
        let lines = (OUTPUT_CHUNK.saturating_sub(out.len()) / 78).max(1);
        let start = self.in_hand_offset.min(bytes.len());
        let end = start.saturating_add(lines * BASE64_LINE_BYTES).min(bytes.len());
        base64.push(&bytes[start..end], out);
        self.in_hand_offset = end;
        if end < bytes.len() {
            return false;
        }
        base64.finish(out);
        *bytes = Vec::new();
        true
    }

    /// Pushing is only right for a streamed attachment the builder is
    /// waiting for: anything else would put bytes in the wrong place.
    fn check_stream_turn(&self, index: usize, call: &str) -> Result<(), SmtpError> {
        let problem = match self.sources.get(index) {
            None => format!("the message has no attachment {index} (it has {}).", self.sources.len()),
            Some(Source::InHand(_) | Source::Encoded(_)) => {
                format!("attachment {index} was given as bytes, not as a stream.")
            }
            Some(Source::Streamed { ended: true }) => format!("attachment {index} has already ended."),
            Some(Source::Streamed { ended: false }) => {
                let waiting =
                    matches!(self.steps.get(self.cursor), Some(Step::Body(BodyStep::Streamed(i))) if *i == index);
                if waiting {
                    return Ok(());
                }
                format!("attachment {index} is not the one the message has reached.")
            }
        };
        Err(SmtpError::input(
            Phase::Data,
            format!("{call}({index}) was called out of turn: {problem}"),
        )
        .with_hint(
            "call push_attachment / end_attachment only for the index in the last NeedAttachment from poll_output.",
        ))
    }
}

/// The encoder of a part: `headers` are its own, as `part_headers` wrote
/// them (whether it is text shows in the first line).
fn part_encoder(part: &Attachment, index: usize, headers: &str, boundary_base: &str) -> PartEncoder {
    match part.encoding {
        PartEncoding::Base64 => PartEncoder::Base64(Base64LineEncoder::new()),
        PartEncoding::QuotedPrintable if headers.starts_with("Content-Type: text/") => {
            PartEncoder::QuotedPrintable(QpStream::text())
        }
        PartEncoding::QuotedPrintable => PartEncoder::QuotedPrintable(QpStream::binary()),
        encoding => {
            // A raw part in hand may carry 8-bit bytes (the message is then
            // declared 8BITMIME); a streamed one cannot be looked at before
            // the envelope is sent, so it must be 7-bit.
            let allow_8bit = encoding == PartEncoding::Raw
                && matches!(&part.content, AttachmentContent::Bytes(bytes) if !bytes.is_ascii());
            PartEncoder::Lines(LineChecker::new(index, encoding, allow_8bit, boundary_base))
        }
    }
}

impl From<AttachmentContent> for Source {
    fn from(content: AttachmentContent) -> Self {
        match content {
            AttachmentContent::Bytes(bytes) => Source::InHand(bytes),
            AttachmentContent::Stream => Source::Streamed { ended: false },
        }
    }
}

/// Every address of the spec, parsed.
struct Addresses {
    from: Mailbox,
    sender: Option<Mailbox>,
    to: Vec<Mailbox>,
    cc: Vec<Mailbox>,
    bcc: Vec<Mailbox>,
    reply_to: Vec<Mailbox>,
}

impl Addresses {
    fn parse(spec: &MessageSpec) -> Result<Self, SmtpError> {
        let addresses = Addresses {
            from: parse_mailbox(&spec.from, Phase::Data)?,
            sender: spec
                .sender
                .as_deref()
                .map(|sender| parse_mailbox(sender, Phase::Data))
                .transpose()?,
            to: parse_entries(&spec.to)?,
            cc: parse_entries(&spec.cc)?,
            bcc: parse_entries(&spec.bcc)?,
            reply_to: parse_entries(&spec.reply_to)?,
        };
        let all = std::iter::once(&addresses.from)
            .chain(&addresses.sender)
            .chain(&addresses.to)
            .chain(&addresses.cc)
            .chain(&addresses.bcc)
            .chain(&addresses.reply_to);
        for mailbox in all {
            if let Some(name) = &mailbox.name {
                check_length(
                    &format!("the display name of {}", mailbox.address),
                    name,
                    MAX_DISPLAY_NAME,
                    false,
                )?;
            }
        }
        if addresses.to.is_empty() && addresses.cc.is_empty() && addresses.bcc.is_empty() {
            return Err(SmtpError::input(Phase::Data, "the message has no recipients.")
                .with_hint("give at least one address in to, cc or bcc."));
        }
        Ok(addresses)
    }

    /// The envelope, and whether the message needs SMTPUTF8.
    ///
    /// Recipients are To, Cc then Bcc, each address once. Domains are
    /// compared without case (DNS ignores it); local parts as written (RFC
    /// 5321 §2.4: only the receiving server may treat them as
    /// case-insensitive).
    ///
    /// Only an address can put non-ASCII in the headers (all other text is
    /// encoded); when one does, the headers are raw UTF-8 (RFC 6532), which
    /// takes SMTPUTF8 and 8-bit transport. Otherwise the message is 7-bit.
    fn envelope(&self, utf8_headers: bool) -> (Envelope, bool) {
        let all: Vec<&str> = [&self.to, &self.cc, &self.bcc]
            .into_iter()
            .flatten()
            .map(|mailbox| mailbox.address.as_str())
            .collect();
        let recipients = first_of_each(&all);
        let mut envelope = Envelope::new(self.from.address.clone(), recipients);
        envelope.smtputf8 = utf8_headers;
        envelope.body_type = if utf8_headers {
            BodyType::EightBitMime
        } else {
            BodyType::SevenBit
        };
        let utf8_envelope = !envelope.from.is_ascii() || envelope.recipients.iter().any(|r| !r.address.is_ascii());
        (envelope, utf8_headers || utf8_envelope)
    }
}

/// Each entry may itself be a comma-separated list; blank entries are skipped.
fn parse_entries(entries: &[String]) -> Result<Vec<Mailbox>, SmtpError> {
    let mut mailboxes = Vec::new();
    for entry in entries.iter().filter(|e| !e.trim_matches(' ').is_empty()) {
        mailboxes.extend(parse_mailbox_list(entry, Phase::Data)?);
    }
    Ok(mailboxes)
}

/// The addresses in their order, each only at its first occurrence (as
/// `comparable_address` compares them). Sorting rather than hashing: a
/// hash set would bring hashing code into the wasm build for this alone,
/// and a message may have 100,000 recipients, so no quadratic scan either.
/// A heap sort (`BinaryHeap::into_sorted_vec`): a few hundred bytes of wasm,
/// where the slice sorts' pattern-defeating quicksort takes kilobytes.
fn first_of_each<'a>(addresses: &[&'a str]) -> Vec<&'a str> {
    // (key, position): ties are broken by position, so the first occurrence
    // leads its run of equal keys.
    let keyed: Vec<(String, usize)> = addresses.iter().map(|a| comparable_address(a)).zip(0..).collect();
    let sorted = BinaryHeap::from(keyed).into_sorted_vec();
    let mut keep = vec![true; addresses.len()];
    for pair in sorted.windows(2) {
        if pair[0].0 == pair[1].0 {
            keep[pair[1].1] = false;
        }
    }
    addresses
        .iter()
        .zip(keep)
        .filter_map(|(a, k)| k.then_some(*a))
        .collect()
}

fn comparable_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => address.to_string(),
    }
}

/// Date, From, Reply-To, To, Cc, Message-ID, Subject, the caller's headers
/// and MIME-Version. The Content-* headers of the body follow them.
fn top_level_headers(
    spec: &MessageSpec,
    addresses: &Addresses,
    date: &str,
    message_id: &str,
) -> Result<String, SmtpError> {
    let subject = spec.subject.as_deref().filter(|s| !s.is_empty());
    if let Some(subject) = subject {
        check_header_text("the subject", subject)?;
        check_length("the subject", subject, MAX_SUBJECT, false)?;
    }
    for (name, value) in &spec.headers {
        check_field_name(name)?;
        let what = format!("the value of header {name}");
        check_header_text(&what, value)?;
        check_length(&what, value, MAX_HEADER_VALUE, true)?;
    }
    let mut out = Header::simple("Date", date);
    out.push_str(&address_list("From", std::slice::from_ref(&addresses.from)));
    if let Some(sender) = &addresses.sender {
        out.push_str(&address_list("Sender", std::slice::from_ref(sender)));
    }
    for (name, list) in [
        ("Reply-To", &addresses.reply_to),
        ("To", &addresses.to),
        ("Cc", &addresses.cc),
    ] {
        if !list.is_empty() {
            out.push_str(&address_list(name, list));
        }
    }
    out.push_str(&Header::simple("Message-ID", message_id));
    if let Some(in_reply_to) = &spec.in_reply_to {
        out.push_str(&Header::simple("In-Reply-To", &checked_message_id(in_reply_to)?));
    }
    if !spec.references.is_empty() {
        let mut references = Header::new("References");
        for id in &spec.references {
            references.push(format!(" {}", checked_message_id(id)?));
        }
        out.push_str(&references.render());
    }
    if let Some(subject) = subject {
        out.push_str(&unstructured("Subject", subject));
    }
    for (name, value) in &spec.headers {
        out.push_str(&unstructured(name, value));
    }
    out.push_str(&Header::simple("MIME-Version", "1.0"));
    Ok(out)
}

/// `<id@domain>`, from `<id@domain>` or `id@domain`: printable ASCII, no
/// space or brackets, an `@` with text on both sides.
fn checked_message_id(given: &str) -> Result<String, SmtpError> {
    let bare = given
        .strip_prefix('<')
        .and_then(|id| id.strip_suffix('>'))
        .unwrap_or(given);
    let printable = bare
        .bytes()
        .all(|b| matches!(b, b'!'..=b'~') && !b"<>\"\\".contains(&b));
    let has_both_sides = bare
        .rsplit_once('@')
        .is_some_and(|(left, right)| !left.is_empty() && !right.is_empty());
    if !printable || !has_both_sides || bare.len() > 250 {
        return Err(SmtpError::input(Phase::Data, format!("the message id {} is not a valid Message-ID.", quote(given)))
            .with_hint("use the form unique-part@your-domain (angle brackets optional), in printable ASCII without spaces, or leave it out to have one generated."));
    }
    Ok(format!("<{bare}>"))
}

/// `<random-hex@sender-domain>`. A UTF-8 domain is not used: the id would
/// then need UTF-8 headers, and the random part alone makes it unique.
fn generated_message_id(random: &[u8], from_address: &str) -> String {
    let domain = from_address
        .rsplit_once('@')
        .map(|(_, domain)| domain)
        .filter(|domain| domain.is_ascii() && !domain.is_empty())
        .unwrap_or("wasmtp.invalid");
    format!("<{}@{domain}>", hex(random))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The body's structure. Inline parts with a Content-ID sit next to the
/// HTML in multipart/related (inside the alternative, so a reader showing
/// the plain text does not list them); everything else is attached in
/// multipart/mixed. Plain text alone is a single part.
fn layout(has_text: bool, has_html: bool, attachments: &[Attachment], alternatives: usize) -> Node {
    let (related, attached): (Vec<usize>, Vec<usize>) =
        (0..attachments.len()).partition(|&i| has_html && attachments[i].cid.is_some());
    let html = if related.is_empty() {
        Node::Text(TextKind::Html)
    } else {
        let parts = related.into_iter().map(Node::Attachment);
        Node::Multipart(
            MultipartKind::Related,
            std::iter::once(Node::Text(TextKind::Html)).chain(parts).collect(),
        )
    };
    // The versions of the body, the preferred one last (RFC 2046 §5.1.4):
    // text, HTML, then the alternatives given.
    let mut versions: Vec<Node> = Vec::new();
    if has_text {
        versions.push(Node::Text(TextKind::Plain));
    }
    if has_html {
        versions.push(html);
    }
    versions.extend((0..alternatives).map(|i| Node::Attachment(attachments.len() + i)));
    let content = match versions.len() {
        // No body at all: an empty text part, unless attachments make the message.
        0 if attached.is_empty() => Some(Node::Text(TextKind::Plain)),
        0 => None,
        1 => versions.pop(),
        _ => Some(Node::Multipart(MultipartKind::Alternative, versions)),
    };
    if attached.is_empty() {
        return content.unwrap_or(Node::Text(TextKind::Plain));
    }
    let parts = content.into_iter().chain(attached.into_iter().map(Node::Attachment));
    Node::Multipart(MultipartKind::Mixed, parts.collect())
}

/// Turns the body's structure into steps.
struct Planner<'a> {
    boundary_base: String,
    text_encoding: TextEncoding,
    html_encoding: TextEncoding,
    /// The source indexes of a streamed text and HTML body.
    text_stream: Option<usize>,
    html_stream: Option<usize>,
    part_headers: &'a [String],
    sources: &'a mut [Source],
    steps: Vec<Step>,
}

impl Planner<'_> {
    /// The top-level headers, then the body's entities.
    fn plan(mut self, top_headers: &str, body: &Node) -> Vec<Step> {
        self.literal(top_headers.as_bytes());
        self.entity(body, true);
        self.steps
    }

    /// Appends bytes, joining them to the previous literal step if any.
    fn literal(&mut self, bytes: &[u8]) {
        match self.steps.last_mut() {
            Some(Step::Literal(last)) => last.extend_from_slice(bytes),
            _ => self.steps.push(Step::Literal(bytes.to_vec())),
        }
    }

    /// One MIME entity: its Content-* headers, a blank line, its body.
    ///
    /// A body never ends with a line break of its own: the CRLF before each
    /// boundary belongs to the boundary (RFC 2046 §5.1.1), so what a part
    /// ends with is exactly what it contained.
    fn entity(&mut self, node: &Node, top_level: bool) {
        match node {
            Node::Multipart(kind, children) => {
                let boundary = format!("{}_{}", self.boundary_base, kind.boundary_tag());
                self.literal(multipart_headers(*kind, &boundary).as_bytes());
                self.literal(b"\r\n");
                for (i, child) in children.iter().enumerate() {
                    let separator = if i == 0 { "" } else { "\r\n" };
                    self.literal(format!("{separator}--{boundary}\r\n").as_bytes());
                    self.entity(child, false);
                }
                self.literal(format!("\r\n--{boundary}--").as_bytes());
                if top_level {
                    self.literal(b"\r\n");
                }
            }
            Node::Text(kind) => {
                let encoding = match kind {
                    TextKind::Plain => self.text_encoding,
                    TextKind::Html => self.html_encoding,
                };
                self.literal(text_part_headers(*kind, encoding).as_bytes());
                self.literal(b"\r\n");
                let stream = match kind {
                    TextKind::Plain => self.text_stream,
                    TextKind::Html => self.html_stream,
                };
                let step = stream.map_or(BodyStep::Text(*kind), BodyStep::Streamed);
                self.steps.push(Step::Body(step));
            }
            Node::Attachment(index) => {
                let headers = self.part_headers.get(*index).map_or("", String::as_str);
                // A raw part has no headers here: it brings its own, and its empty line.
                if !headers.is_empty() {
                    self.literal(headers.as_bytes());
                    self.literal(b"\r\n");
                }
                let step = match self.sources.get_mut(*index) {
                    Some(Source::Streamed { .. }) => BodyStep::Streamed(*index),
                    Some(Source::Encoded(encoded)) => {
                        // Moved, not copied: the part's only copy is now in the steps.
                        self.steps.push(Step::Literal(std::mem::take(encoded)));
                        return;
                    }
                    _ => BodyStep::InHand(*index),
                };
                self.steps.push(Step::Body(step));
            }
        }
    }
}
