//! The native driver: moves bytes between an [`Engine`] and any socket
//! that implements the `futures` I/O traits, on any async runtime.
//!
//! The driver owns no protocol knowledge. It writes what the engine hands
//! out (one write per flight), feeds back what it reads, arms one timer at
//! the engine's next deadline, and streams message bodies with the engine's
//! back-pressure.
//!
//! TLS: [`Client::connect_tls`] (feature `tls-engine`, or `rustls`) runs the
//! [`SecureConnection`] over the raw socket, so rustls lives inside the
//! engine exactly as in wasm. [`Client::connect`] drives a plain
//! [`Connection`] and runs the upgrades it asks for through a
//! [`TlsUpgrader`]: the hook for other TLS stacks (or [`NoTls`]).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::{Pin, pin};

use futures_timer::Delay;
use futures_util::future::{Either, select};
use futures_util::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Cursor};

use crate::config::Config;
use crate::connection::Connection;
use crate::engine::Engine;
use crate::envelope::Envelope;
use crate::error::{ErrorCode, Phase, SmtpError};
use crate::event::{Delivery, Event, MessageId, SessionInfo, TranscriptLine};
use crate::time::Instant;
use crate::tls::{TlsFailure, TlsFailureKind, TlsInfo};
#[cfg(feature = "tls-engine")]
use crate::tls_engine::{SecureConnection, TlsOptions};

/// A byte stream the driver can use: a TCP socket, a TLS stream over one...
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed byte stream (its type changes when TLS starts).
pub type BoxIo = Box<dyn Io>;

/// What a TLS upgrade resolves to.
pub type UpgradeFuture = Pin<Box<dyn Future<Output = Result<(BoxIo, TlsInfo), TlsFailure>> + Send>>;

/// The TLS-upgrade hook for TLS stacks other than the engine's own: turns
/// the plain stream into a TLS stream in place (implicit TLS right after
/// connecting, or after the STARTTLS 220).
pub trait TlsUpgrader: Send {
    fn upgrade(&self, io: BoxIo, server_name: &str) -> UpgradeFuture;
}

/// For plaintext-only use: any request for TLS fails.
pub struct NoTls;

impl TlsUpgrader for NoTls {
    fn upgrade(&self, _io: BoxIo, _server_name: &str) -> UpgradeFuture {
        Box::pin(async {
            Err(TlsFailure::new(
                TlsFailureKind::Handshake,
                "this client was built without TLS (NoTls)",
            ))
        })
    }
}

type BodyReader = Box<dyn AsyncRead + Unpin + Send>;

/// A callback that sees every transcript line (credentials already redacted).
pub type TranscriptSink = Box<dyn FnMut(&TranscriptLine) + Send>;

struct BodySource {
    id: MessageId,
    reader: BodyReader,
    /// Bytes read from the source that the engine has not taken yet.
    buffered: Vec<u8>,
    eof: bool,
}

const READ_CHUNK: usize = 64 * 1024;

/// An SMTP client session over one connection, driving engine `E`: a plain
/// [`Connection`] (TLS through a [`TlsUpgrader`]) or a `SecureConnection`.
pub struct Client<E: Engine = Connection> {
    conn: E,
    io: Option<BoxIo>,
    upgrader: Box<dyn TlsUpgrader>,
    epoch: std::time::Instant,
    session: Option<SessionInfo>,
    outcomes: HashMap<MessageId, Result<Delivery, SmtpError>>,
    closed: Option<Option<SmtpError>>,
    bodies: VecDeque<BodySource>,
    on_transcript: Option<TranscriptSink>,
    read_buf: Vec<u8>,
}

impl Client<Connection> {
    /// Runs the session set-up (greeting, EHLO, TLS, AUTH) over an open
    /// connection to `config.host`, with TLS through `upgrader`.
    pub async fn connect(
        io: impl Io + 'static,
        config: Config,
        upgrader: impl TlsUpgrader + 'static,
    ) -> Result<Client, SmtpError> {
        Client::connect_with_transcript(io, config, upgrader, None).await
    }

    /// Like [`Client::connect`], with a callback that sees every transcript
    /// line (credentials already redacted) from the first byte on.
    pub async fn connect_with_transcript(
        io: impl Io + 'static,
        config: Config,
        upgrader: impl TlsUpgrader + 'static,
        on_transcript: Option<TranscriptSink>,
    ) -> Result<Client, SmtpError> {
        let epoch = std::time::Instant::now();
        let conn = Connection::new(config, Instant::from_millis(0))?;
        Client::start(conn, epoch, Box::new(io), Box::new(upgrader), on_transcript).await
    }
}

#[cfg(feature = "tls-engine")]
impl Client<SecureConnection> {
    /// Runs the session set-up over an open connection to `config.host`,
    /// with TLS (implicit or STARTTLS, per `config.security`) inside the
    /// engine: rustls trusting what `options` says. `options.unix_time_ms`
    /// 0 (the default) means the system clock's time.
    pub async fn connect_tls(io: impl Io + 'static, config: Config, options: TlsOptions) -> Result<Self, SmtpError> {
        Client::connect_tls_with_transcript(io, config, options, None).await
    }

    /// Like [`Client::connect_tls`], with a callback that sees every
    /// transcript line (credentials already redacted) from the first byte on.
    pub async fn connect_tls_with_transcript(
        io: impl Io + 'static,
        config: Config,
        mut options: TlsOptions,
        on_transcript: Option<TranscriptSink>,
    ) -> Result<Self, SmtpError> {
        let epoch = std::time::Instant::now();
        if options.unix_time_ms == 0 {
            let since_1970 = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            options.unix_time_ms = u64::try_from(since_1970.as_millis()).unwrap_or(u64::MAX);
        }
        let conn = SecureConnection::new(config, options, Instant::from_millis(0))?;
        // The engine runs TLS itself and never asks the host to.
        Client::start(conn, epoch, Box::new(io), Box::new(NoTls), on_transcript).await
    }
}

impl<E: Engine> Client<E> {
    /// Opens the session on `conn` (created at `epoch`, its time 0) and runs the set-up.
    async fn start(
        conn: E,
        epoch: std::time::Instant,
        io: BoxIo,
        upgrader: Box<dyn TlsUpgrader>,
        on_transcript: Option<TranscriptSink>,
    ) -> Result<Self, SmtpError> {
        let mut client = Client {
            conn,
            io: Some(io),
            upgrader,
            epoch,
            session: None,
            outcomes: HashMap::new(),
            closed: None,
            bodies: VecDeque::new(),
            on_transcript,
            read_buf: vec![0; READ_CHUNK],
        };
        let now = client.now();
        client.conn.connected(now);
        client.drive(|c| c.session.is_some()).await;
        match client.closed.take() {
            Some(err) => Err(err.unwrap_or_else(|| closed_error("the server closed the connection during set-up."))),
            None => Ok(client),
        }
    }

    /// What the set-up established: capabilities, TLS facts, AUTH method.
    pub fn session(&self) -> &SessionInfo {
        self.session.as_ref().expect("a connected client has a session")
    }

    /// Sends one message, streaming its body from `body`.
    pub async fn send(
        &mut self,
        envelope: Envelope,
        body: impl AsyncRead + Unpin + Send + 'static,
    ) -> Result<Delivery, SmtpError> {
        let id = self.submit(envelope, Box::new(body))?;
        self.drive(|c| c.outcomes.contains_key(&id)).await;
        self.take_outcome(id)
    }

    /// Sends several messages at once: with PIPELINING (and CHUNKING) their
    /// transactions overlap on the wire, each result in the same order.
    pub async fn send_all(&mut self, messages: Vec<(Envelope, Vec<u8>)>) -> Vec<Result<Delivery, SmtpError>> {
        let mut ids = Vec::with_capacity(messages.len());
        for (envelope, body) in messages {
            ids.push(self.submit(envelope, Box::new(Cursor::new(body))));
        }
        let waiting: Vec<MessageId> = ids.iter().filter_map(|r| r.as_ref().ok().copied()).collect();
        self.drive(|c| waiting.iter().all(|id| c.outcomes.contains_key(id)))
            .await;
        ids.into_iter()
            .map(|r| r.and_then(|id| self.take_outcome(id)))
            .collect()
    }

    /// Sends QUIT and waits for the session to end.
    pub async fn quit(mut self) -> Result<(), SmtpError> {
        let now = self.now();
        self.conn.close(now);
        self.drive(|_| false).await;
        match self.closed.take() {
            Some(Some(err)) => Err(err),
            _ => Ok(()),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_millis(u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
    }

    fn submit(&mut self, envelope: Envelope, reader: BodyReader) -> Result<MessageId, SmtpError> {
        if let Some(closed) = &self.closed {
            return Err(closed.clone().unwrap_or_else(|| closed_error("the session is closed.")));
        }
        let now = self.now();
        let id = self.conn.submit(envelope, now)?;
        self.bodies.push_back(BodySource {
            id,
            reader,
            buffered: Vec::new(),
            eof: false,
        });
        Ok(id)
    }

    fn take_outcome(&mut self, id: MessageId) -> Result<Delivery, SmtpError> {
        self.outcomes
            .remove(&id)
            .unwrap_or_else(|| Err(closed_error("the connection closed before the message was sent.")))
    }

    /// Pumps until `done` holds or the connection is closed.
    async fn drive(&mut self, mut done: impl FnMut(&Self) -> bool) {
        loop {
            self.flush().await;
            // Handling an event can make output (the EHLO after a TLS
            // upgrade): go round again so it is written before waiting.
            if self.dispatch_events().await {
                continue;
            }
            if done(self) || self.closed.is_some() {
                return;
            }
            if self.feed_body().await {
                continue;
            }
            self.wait_for_socket_or_timer().await;
        }
    }

    /// Writes everything the engine produced, one write per flight.
    async fn flush(&mut self) {
        while let Some(bytes) = self.conn.poll_transmit() {
            let Some(io) = self.io.as_mut() else { return };
            let stall = self.conn.config().timeouts.command;
            let write = async {
                io.write_all(&bytes).await?;
                io.flush().await
            };
            let result = match select(pin!(write), Delay::new(stall)).await {
                Either::Left((result, _)) => result.map_err(|e| (e.to_string(), false)),
                Either::Right(_) => Err((String::new(), true)),
            };
            if let Err((detail, stalled)) = result {
                let now = self.now();
                self.conn.socket_failed(&detail, stalled, now);
            }
        }
    }

    /// Hands every pending event to its handler; true when there was any.
    async fn dispatch_events(&mut self) -> bool {
        let mut any = false;
        while let Some(event) = self.conn.poll_event() {
            any = true;
            match event {
                Event::Transcript(line) => {
                    if let Some(callback) = self.on_transcript.as_mut() {
                        callback(&line);
                    }
                }
                Event::StartTls { server_name } => self.upgrade(&server_name).await,
                // This driver is handed one connected stream and cannot open
                // a second: it waits for the greeting time-out (port 465
                // keeps its guess). A host that can connect answers with
                // `Connection::port_probe_result`.
                Event::PortProbe { .. } => {}
                // This driver has no token provider to ask: the refusal stands.
                Event::AccessTokenRefused => {
                    let now = self.now();
                    self.conn.access_token_failed(
                        "this driver cannot fetch tokens.",
                        Some("pass a current token in Credentials::OAuth2, and leave Config::renew_refused_token off."),
                        false,
                        now,
                    );
                }
                Event::Ready(info) => self.session = Some(info),
                Event::Delivered(id, delivery) => {
                    self.outcomes.insert(id, Ok(delivery));
                }
                Event::Failed(id, err) => {
                    self.bodies.retain(|b| b.id != id);
                    self.outcomes.insert(id, Err(err));
                }
                Event::Closed(err) => {
                    // The final QUIT (if any) was flushed before this event.
                    self.flush().await;
                    if let Some(mut io) = self.io.take() {
                        let _ = io.close().await;
                    }
                    self.bodies.clear();
                    self.closed = Some(err);
                }
            }
        }
        any
    }

    async fn upgrade(&mut self, server_name: &str) {
        // Only an engine that takes the host's TLS reports asks for TLS.
        if self.conn.host_tls().is_none() {
            return;
        }
        let Some(io) = self.io.take() else { return };
        let limit = self.conn.config().timeouts.tls_handshake;
        let result = match select(self.upgrader.upgrade(io, server_name), Delay::new(limit)).await {
            Either::Left((result, _)) => Some(result),
            Either::Right(_) => None,
        };
        let now = self.now();
        match result {
            Some(Ok((io, info))) => {
                self.io = Some(io);
                if let Some(host_tls) = self.conn.host_tls() {
                    host_tls.tls_established(info, now);
                }
            }
            Some(Err(failure)) => {
                if let Some(host_tls) = self.conn.host_tls() {
                    host_tls.tls_failed(failure, now);
                }
            }
            // The engine's own handshake deadline turns this into ETIMEDOUT.
            None => self.conn.handle_timeout(now + limit),
        }
    }

    /// Moves body bytes from the source of the message the engine wants.
    /// Returns whether anything moved.
    async fn feed_body(&mut self) -> bool {
        let Some(id) = self.conn.wants_body() else { return false };
        let Some(source) = self.bodies.iter_mut().find(|b| b.id == id) else {
            return false;
        };
        if source.buffered.is_empty() && !source.eof {
            source.buffered.resize(READ_CHUNK, 0);
            match source.reader.read(&mut source.buffered).await {
                Ok(0) => {
                    source.buffered.clear();
                    source.eof = true;
                }
                Ok(n) => source.buffered.truncate(n),
                Err(e) => {
                    let err = SmtpError::input(Phase::Data, format!("reading the message body failed: {e}."));
                    self.bodies.retain(|b| b.id != id);
                    self.outcomes.insert(id, Err(err));
                    // The engine still holds a half-sent message: only dropping the link is safe.
                    let now = self.now();
                    self.conn.abort(now);
                    return true;
                }
            }
        }
        let now = self.now();
        let source = self.bodies.iter_mut().find(|b| b.id == id).expect("found above");
        if !source.buffered.is_empty() {
            return match self.conn.write_body(id, &source.buffered, now) {
                Ok(taken) => {
                    source.buffered.drain(..taken);
                    taken > 0
                }
                Err(_) => {
                    self.bodies.retain(|b| b.id != id);
                    true
                }
            };
        }
        if source.eof {
            self.bodies.retain(|b| b.id != id);
            let _ = self.conn.end_body(id, now);
            return true;
        }
        false
    }

    async fn wait_for_socket_or_timer(&mut self) {
        let now = self.now();
        let deadline = self.conn.poll_timeout();
        let Some(io) = self.io.as_mut() else {
            self.conn.abort(now);
            return;
        };
        let read = io.read(&mut self.read_buf);
        let result = match deadline {
            Some(deadline) => match select(read, Delay::new(deadline - now)).await {
                Either::Left((result, _)) => Some(result),
                Either::Right(_) => None,
            },
            None => Some(read.await),
        };
        let now = self.now();
        match result {
            Some(Ok(0)) => self.conn.receive_eof(now),
            Some(Ok(n)) => self.conn.receive(&self.read_buf[..n], now),
            Some(Err(e)) => self.conn.socket_failed(&e.to_string(), false, now),
            None => self.conn.handle_timeout(now.max(deadline.unwrap_or(now))),
        }
    }
}

fn closed_error(message: &str) -> SmtpError {
    SmtpError::new(ErrorCode::Closed, Phase::Quit, message).retryable(true)
}
