//! What a host does with an engine, whichever engine it is: the plain
//! [`Connection`] (the host runs TLS) or the
//! [`SecureConnection`](crate::tls_engine::SecureConnection) (TLS runs
//! inside). The native driver, the test harness, the fuzz targets and the
//! wasm bindings are written once, against this trait.
//!
//! Three kinds of calls, all sans-IO:
//! - the host's reports: the socket opened or failed, bytes or EOF arrived,
//!   time passed, a fresh OAuth2 token;
//! - the user's verbs: submit a message, stream its body, NOOP, quit, abort;
//! - the host's drains: bytes to write, events, the next deadline.
//!
//! Queries go to the SMTP session inside ([`Engine::smtp`]), so every engine
//! answers them the same way.

use crate::config::Config;
use crate::connection::{Connection, State};
use crate::envelope::Envelope;
use crate::error::SmtpError;
use crate::event::{Event, MessageId};
use crate::time::Instant;
use crate::tls::{TlsFailure, TlsInfo};

/// An SMTP client engine: bytes and facts in, bytes, events and deadlines out.
pub trait Engine {
    // ----- What the host reports ----------------------------------------------

    /// The socket is open.
    fn connected(&mut self, now: Instant);

    /// The socket could not be opened; `detail` is the host's text.
    fn connect_failed(&mut self, detail: &str, now: Instant);

    /// Bytes read from the socket.
    fn receive(&mut self, data: &[u8], now: Instant);

    /// The server closed its side.
    fn receive_eof(&mut self, now: Instant);

    /// A read or write failed; `write_stalled`: a write had not gone out
    /// within the command time-out.
    fn socket_failed(&mut self, detail: &str, write_stalled: bool, now: Instant);

    /// The deadline from [`poll_timeout`](Engine::poll_timeout) has passed.
    fn handle_timeout(&mut self, now: Instant);

    /// What the second connection of an [`Event::PortProbe`] received first
    /// (empty: nothing, or it could not connect).
    fn port_probe_result(&mut self, first_bytes: &[u8], now: Instant);

    /// The fresh OAuth2 token an [`Event::AccessTokenRefused`] asked for.
    fn supply_access_token(&mut self, token: &str, now: Instant);

    /// The host could not fetch the token an [`Event::AccessTokenRefused`]
    /// asked for; `detail` and `hint` say why (the connection ends with `EAUTH`).
    fn access_token_failed(&mut self, detail: &str, hint: Option<&str>, retryable: bool, now: Instant);

    // ----- What the user asks for ------------------------------------------------

    /// Queues a message; its body follows through [`write_body`](Engine::write_body).
    fn submit(&mut self, envelope: Envelope, now: Instant) -> Result<MessageId, SmtpError>;

    /// Pushes body bytes of message `id`; returns how many were taken (0 when full).
    fn write_body(&mut self, id: MessageId, data: &[u8], now: Instant) -> Result<usize, SmtpError>;

    /// The body of message `id` is complete.
    fn end_body(&mut self, id: MessageId, now: Instant) -> Result<(), SmtpError>;

    /// Asks the server for a NOOP (a liveness check for pooled connections).
    fn noop(&mut self, now: Instant);

    /// Ends the session gracefully: queued messages still go, then QUIT.
    fn close(&mut self, now: Instant);

    /// Ends the session at once: queued messages fail with `ECLOSED`.
    fn abort(&mut self, now: Instant);

    // ----- What the host drains ----------------------------------------------------

    /// How many bytes [`poll_transmit`](Engine::poll_transmit) would return now.
    fn transmit_len(&self) -> usize;

    /// Bytes for the socket, everything ready as one write.
    fn poll_transmit(&mut self) -> Option<Vec<u8>>;

    /// Like [`poll_transmit`](Engine::poll_transmit), into a buffer the host
    /// reuses: moves up to `buf.len()` bytes, returns how many.
    fn poll_transmit_into(&mut self, buf: &mut [u8]) -> usize;

    /// The next event, in order.
    fn poll_event(&mut self) -> Option<Event>;

    /// When [`handle_timeout`](Engine::handle_timeout) is due, if anything is awaited.
    fn poll_timeout(&self) -> Option<Instant> {
        self.smtp().poll_timeout()
    }

    // ----- Queries -------------------------------------------------------------------

    /// The SMTP session inside, for queries (capabilities, greeting, TLS facts).
    fn smtp(&self) -> &Connection;

    /// Where a host that runs TLS itself reports the handshake an
    /// [`Event::StartTls`] asked for; `None` when TLS runs inside the engine
    /// (which then never emits `StartTls`).
    fn host_tls(&mut self) -> Option<&mut dyn HostTls> {
        None
    }

    /// The message whose body the engine wants next, if it has room.
    fn wants_body(&self) -> Option<MessageId> {
        self.smtp().wants_body()
    }

    /// How many body bytes [`write_body`](Engine::write_body) would take now.
    fn body_capacity(&self, id: MessageId) -> usize {
        self.smtp().body_capacity(id)
    }

    fn state(&self) -> State {
        self.smtp().state()
    }

    fn is_closed(&self) -> bool {
        self.smtp().is_closed()
    }

    /// Ready with nothing queued or awaited: a pool may hand it new work.
    fn is_idle(&self) -> bool {
        self.smtp().is_idle()
    }

    fn config(&self) -> &Config {
        self.smtp().config()
    }
}

/// The reports of a host that runs TLS itself (Node's `tls`, an upgrader
/// in the native driver), after an [`Event::StartTls`].
pub trait HostTls {
    /// The handshake finished with these facts.
    fn tls_established(&mut self, info: TlsInfo, now: Instant);

    /// The handshake failed.
    fn tls_failed(&mut self, failure: TlsFailure, now: Instant);
}

impl HostTls for Connection {
    fn tls_established(&mut self, info: TlsInfo, now: Instant) {
        Connection::tls_established(self, info, now);
    }

    fn tls_failed(&mut self, failure: TlsFailure, now: Instant) {
        Connection::tls_failed(self, failure, now);
    }
}

/// The plain engine: every call is the session's own.
impl Engine for Connection {
    fn connected(&mut self, now: Instant) {
        Connection::connected(self, now);
    }

    fn connect_failed(&mut self, detail: &str, now: Instant) {
        Connection::connect_failed(self, detail, now);
    }

    fn receive(&mut self, data: &[u8], now: Instant) {
        Connection::receive(self, data, now);
    }

    fn receive_eof(&mut self, now: Instant) {
        Connection::receive_eof(self, now);
    }

    fn socket_failed(&mut self, detail: &str, write_stalled: bool, now: Instant) {
        Connection::socket_failed(self, detail, write_stalled, now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        Connection::handle_timeout(self, now);
    }

    fn port_probe_result(&mut self, first_bytes: &[u8], now: Instant) {
        Connection::port_probe_result(self, first_bytes, now);
    }

    fn supply_access_token(&mut self, token: &str, now: Instant) {
        Connection::supply_access_token(self, token, now);
    }

    fn access_token_failed(&mut self, detail: &str, hint: Option<&str>, retryable: bool, now: Instant) {
        Connection::access_token_failed(self, detail, hint, retryable, now);
    }

    fn submit(&mut self, envelope: Envelope, now: Instant) -> Result<MessageId, SmtpError> {
        Connection::submit(self, envelope, now)
    }

    fn write_body(&mut self, id: MessageId, data: &[u8], now: Instant) -> Result<usize, SmtpError> {
        Connection::write_body(self, id, data, now)
    }

    fn end_body(&mut self, id: MessageId, now: Instant) -> Result<(), SmtpError> {
        Connection::end_body(self, id, now)
    }

    fn noop(&mut self, now: Instant) {
        Connection::noop(self, now);
    }

    fn close(&mut self, now: Instant) {
        Connection::close(self, now);
    }

    fn abort(&mut self, _now: Instant) {
        Connection::abort(self);
    }

    fn transmit_len(&self) -> usize {
        Connection::transmit_len(self)
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        Connection::poll_transmit(self)
    }

    fn poll_transmit_into(&mut self, buf: &mut [u8]) -> usize {
        Connection::poll_transmit_into(self, buf)
    }

    fn poll_event(&mut self) -> Option<Event> {
        Connection::poll_event(self)
    }

    fn smtp(&self) -> &Connection {
        self
    }

    fn host_tls(&mut self) -> Option<&mut dyn HostTls> {
        Some(self)
    }
}
