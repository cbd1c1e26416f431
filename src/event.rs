//! What the engine tells its host: events polled with `Connection::poll_event`.

use crate::auth::Mechanism;
use crate::capabilities::Capabilities;
use crate::error::SmtpError;
use crate::reply::{EnhancedCode, Reply};
use crate::tls::TlsInfo;

/// Identifies a submitted message in later events (the imap-next pattern:
/// the handle returned by `submit` comes back with its outcome).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub u64);

/// Who a transcript line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Sent by the client.
    Client,
    /// Received from the server.
    Server,
    /// A note about the TLS layer (handshake facts).
    Tls,
}

impl Direction {
    /// `"C"`, `"S"` or `"tls"`, as in the JS `onTranscript` callback.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Client => "C",
            Direction::Server => "S",
            Direction::Tls => "tls",
        }
    }
}

/// One line of the dialog, with credentials already redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranscriptLine {
    pub dir: Direction,
    pub text: String,
}

/// The state of an established session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub greeting: Reply,
    /// Capabilities from the last EHLO (after TLS when TLS is used).
    pub capabilities: Capabilities,
    /// What the plaintext EHLO offered before STARTTLS, for diagnostics only.
    pub capabilities_before_tls: Option<Capabilities>,
    pub tls: Option<TlsInfo>,
    pub auth_method: Option<Mechanism>,
}

/// A recipient the server refused while others were accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRecipient {
    pub address: String,
    pub reply: Reply,
}

impl RejectedRecipient {
    pub fn code(&self) -> u16 {
        self.reply.code
    }

    pub fn enhanced_code(&self) -> Option<EnhancedCode> {
        self.reply.enhanced
    }

    pub fn message(&self) -> String {
        self.reply.message()
    }
}

/// A message the server accepted with its final 2xx.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Recipients the server took responsibility for.
    pub accepted: Vec<String>,
    /// Recipients refused at RCPT time (or, with LMTP, after the data).
    pub rejected: Vec<RejectedRecipient>,
    /// The final reply (for LMTP: the first successful per-recipient reply).
    pub reply: Reply,
    /// The server's queue id when its reply names one (`queued as X`, `id=X`).
    pub queue_id: Option<String>,
}

/// Something the host must act on or may want to know.
// `Ready` is the large variant; it comes once per connection and events are
// polled one at a time, so boxing it would only cost every host a deref.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A line of the dialog for logs and `-v` output.
    Transcript(TranscriptLine),
    /// The host must start TLS on the socket now (implicit TLS right after
    /// connecting, or after the STARTTLS 220), then call `tls_established`
    /// or `tls_failed`. Bytes read before the handshake must not be fed in.
    StartTls { server_name: String },
    /// The plaintext connection has been silent since it opened: is this a
    /// port that expects TLS from the first byte? The host may open a second
    /// connection to the same host and port, write `client_hello`, and report
    /// the first bytes it receives within a second or so (or none) with
    /// `port_probe_result`, then close that connection. A TLS answer names
    /// the mix-up at once; a host that ignores this event waits for the
    /// greeting time-out instead (on port 465 the silence alone is taken as
    /// the mix-up).
    PortProbe { client_hello: Vec<u8> },
    /// The server refused the OAuth2 access token (only with
    /// `Config::renew_refused_token`): the host fetches a fresh one (never
    /// the refused one again) and hands it over with `supply_access_token`,
    /// or reports `access_token_failed`. AUTH then runs once more.
    AccessTokenRefused,
    /// The session is set up (greeting, EHLO, TLS, AUTH): messages flow.
    Ready(SessionInfo),
    /// A message was accepted with the server's final 2xx.
    Delivered(MessageId, Delivery),
    /// A message failed; the error tells whether the server may have it.
    Failed(MessageId, SmtpError),
    /// The connection is over; the host closes the socket. `None` after a
    /// clean QUIT, the error that ended it otherwise.
    Closed(Option<SmtpError>),
}
