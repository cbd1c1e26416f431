//! Structured messages: from fields (from, to, subject, text, html,
//! attachments...) to RFC 5322 / MIME bytes, without I/O.
//!
//! [`MessageBuilder`] is a sans-IO producer. It is polled for output; bytes
//! it has (headers, boundaries, text, attachments given as bytes) come out
//! encoded, and when it reaches an attachment given as a stream it asks for
//! it, chunk by chunk. A streamed attachment is never held whole: memory
//! stays at a few kilobytes plus the chunk being encoded.
//!
//! ```
//! use wasmtp::mime::{Attachment, MessageBuilder, MessageSpec, Segment};
//!
//! let spec = MessageSpec {
//!     from: "Ann <ann@example.com>".into(),
//!     to: vec!["bob@example.org".into()],
//!     subject: Some("Report".into()),
//!     text: Some("Attached.".into()),
//!     attachments: vec![Attachment::streamed("report.csv")],
//!     ..MessageSpec::default()
//! };
//! let mut message = MessageBuilder::new(spec, [7; 32], 1_700_000_000_000)?;
//! let envelope = message.envelope().clone(); // MAIL FROM / RCPT TO
//! let mut chunks = vec![&b"a,b\n"[..], b"1,2\n"].into_iter();
//! let mut out = Vec::new();
//! loop {
//!     match message.poll_output() {
//!         Segment::Bytes(bytes) => out.extend_from_slice(&bytes), // send them
//!         Segment::NeedAttachment(index) => match chunks.next() {
//!             Some(chunk) => message.push_attachment(index, chunk)?,
//!             None => message.end_attachment(index)?,
//!         },
//!         Segment::Done => break,
//!     }
//! }
//! # assert_eq!(envelope.recipients.len(), 1);
//! # Ok::<(), wasmtp::SmtpError>(())
//! ```
//!
//! Every output line ends in CRLF and is at most 998 octets; headers are
//! folded to 78 columns wherever the syntax allows. The output is 7-bit
//! (text in quoted-printable when needed, attachments in base64 unless
//! [`Attachment::encoding`] asks for quoted-printable, 7bit or 8bit,
//! non-ASCII header text in RFC 2047/2231 encoding) unless an address
//! itself is UTF-8, which needs SMTPUTF8 and raw UTF-8 headers (RFC 6532),
//! or a part is 8bit (or raw with 8-bit bytes), which needs 8BITMIME;
//! [`MessageBuilder::envelope`] is set up accordingly. Parts sent without
//! encoding (7bit, 8bit, raw) are checked line by line as they are written:
//! no NUL, no line over 998 octets, no line that starts like a boundary,
//! and bare CR or LF written as CRLF.
//!
//! A few checks are made by the npm package's JS layer before it calls the
//! engine, and the wasm build leaves them out (they would take the core
//! module over its size budget); native builds keep them: a streamed text
//! or HTML body is UTF-8 (checked in `pkg/src/message-parts.js` with the
//! runtime's `TextDecoder`); a raw part has no filename, content type, cid,
//! disposition or headers beside it; a body is not given both in hand and
//! as a stream.

mod base64_stream;
mod builder;
mod date;
mod headers;
mod part_encoding;
mod parts;
mod quoted_printable;
#[cfg(test)]
mod tests;

pub use base64_stream::Base64LineEncoder;
pub use builder::{MessageBuilder, Segment};
pub use date::format_date;
pub use part_encoding::PartEncoding;

/// What the message says: the fields of `client.send({...})`.
///
/// Addresses are written `ann@example.com` or `Ann <ann@example.com>`; an
/// entry of `to`, `cc`, `bcc` or `reply_to` may also hold a comma-separated
/// list.
#[derive(Debug, Clone, Default)]
pub struct MessageSpec {
    /// The author, a single mailbox; its address is also the envelope sender.
    pub from: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    /// Recipients that get the message without being listed in it: they
    /// are in the envelope only.
    pub bcc: Vec<String>,
    pub reply_to: Vec<String>,
    /// Any Unicode; absent or empty means no Subject header.
    pub subject: Option<String>,
    /// The plain-text body.
    pub text: Option<String>,
    /// The HTML body; with `text` too, the message offers both.
    pub html: Option<String>,
    /// The text body is pushed in chunks instead (UTF-8, written
    /// quoted-printable), through [`MessageBuilder::push_attachment`] with
    /// the index after every attachment and alternative.
    pub text_streamed: bool,
    /// The HTML body is pushed in chunks, with the index after those and
    /// after the streamed text body, if any.
    pub html_streamed: bool,
    /// Extra headers, in order. The ones the builder writes (From, To,
    /// Subject, Content-Type...) are refused, and so are line breaks.
    pub headers: Vec<(String, String)>,
    pub attachments: Vec<Attachment>,
    /// `<id@domain>` or `id@domain`; generated from the injected randomness
    /// and the sender's domain when absent.
    pub message_id: Option<String>,
    /// Sender: the mailbox that sent the message on behalf of `from`.
    pub sender: Option<String>,
    /// In-Reply-To: the Message-ID this message answers.
    pub in_reply_to: Option<String>,
    /// References: the Message-IDs of the thread, oldest first.
    pub references: Vec<String>,
    /// The Date header's time (ms since the Unix epoch) when it is not the
    /// time passed to the builder.
    pub date: Option<i64>,
    /// More versions of the body next to text and html, in the same
    /// multipart/alternative (a text/calendar invitation...), in order.
    pub alternatives: Vec<Attachment>,
}

/// One attached file, or an image the HTML shows through `cid:`.
#[derive(Debug, Clone)]
pub struct Attachment {
    pub filename: Option<String>,
    /// `type/subtype`; guessed from the file name's extension when absent.
    pub content_type: Option<String>,
    /// Content-ID for `<img src="cid:...">`. With HTML, parts that have one
    /// are placed next to the HTML in a multipart/related.
    pub cid: Option<String>,
    /// Defaults to inline when `cid` is set, attachment otherwise.
    pub disposition: Option<Disposition>,
    pub content: AttachmentContent,
    /// More headers of this part (not the Content-* ones the builder writes).
    pub headers: Vec<(String, String)>,
    /// Its Content-Transfer-Encoding; base64 unless chosen.
    pub encoding: PartEncoding,
}

impl Attachment {
    /// A file whose bytes are in hand.
    pub fn from_bytes(filename: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Attachment {
            filename: Some(filename.into()),
            content_type: None,
            cid: None,
            disposition: None,
            content: AttachmentContent::Bytes(bytes.into()),
            headers: Vec::new(),
            encoding: PartEncoding::Base64,
        }
    }

    /// A file whose bytes are pushed later, see [`MessageBuilder::push_attachment`].
    pub fn streamed(filename: impl Into<String>) -> Self {
        Attachment {
            content: AttachmentContent::Stream,
            ..Attachment::from_bytes(filename, Vec::new())
        }
    }

    pub fn with_content_type(mut self, content_type: impl Into<String>) -> Self {
        self.content_type = Some(content_type.into());
        self
    }

    pub fn with_cid(mut self, cid: impl Into<String>) -> Self {
        self.cid = Some(cid.into());
        self
    }

    pub fn with_disposition(mut self, disposition: Disposition) -> Self {
        self.disposition = Some(disposition);
        self
    }

    pub fn with_encoding(mut self, encoding: PartEncoding) -> Self {
        self.encoding = encoding;
        self
    }
}

/// Where an attachment's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachmentContent {
    Bytes(Vec<u8>),
    /// Pushed in chunks when the builder asks ([`Segment::NeedAttachment`]).
    Stream,
}

/// Content-Disposition: shown in the message body, or offered as a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    Inline,
    Attachment,
}

impl Disposition {
    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Inline => "inline",
            Disposition::Attachment => "attachment",
        }
    }
}
