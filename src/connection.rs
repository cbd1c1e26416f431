//! The connection: the whole client side of one SMTP/LMTP session as a
//! sans-IO state machine.
//!
//! The host feeds it what happened (`connected`, `receive`, `receive_eof`,
//! `tls_established`, `handle_timeout`) and what the user wants (`submit`,
//! `write_body`, `end_body`, `close`), then drains what it produced:
//! `poll_transmit` (bytes for the socket, one write per flight),
//! `poll_event` (what happened) and `poll_timeout` (when to call back).
//!
//! Hosts must drain `poll_transmit` before acting on `Event::Closed`, so a
//! final QUIT reaches the socket.

use std::collections::VecDeque;

use crate::address::validate_ehlo_name;
use crate::auth::{AuthStep, Mechanism, SaslClient, choose_mechanism};
use crate::body::{BodyEncoder, Framing};
use crate::capabilities::Capabilities;
use crate::config::{Config, Protocol, Security};
use crate::envelope::{Envelope, build_commands};
use crate::error::{DeliveryState, ErrorCode, Phase, SmtpError};
use crate::event::{Direction, Event, MessageId, SessionInfo, TranscriptLine};
use crate::reply::{Reply, ReplyParser, escape_for_log};
use crate::time::{Duration, Instant};
use crate::tls::{self, TlsFailure, TlsInfo};

mod outcome;
mod port_probe;
mod transaction;

pub use outcome::connect_error;
use outcome::{data_error, mail_error, nested_mail_error, recipients_error};
pub use port_probe::client_hello as port_probe_client_hello;
use port_probe::{PortProbe, ProbeAnswer};
use transaction::{Step, Transaction};

/// Where the session is, coarsely. Replies still expected are tracked apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Waiting for the host to open the TCP connection.
    Connecting,
    /// Waiting for the host's TLS handshake (implicit TLS or after STARTTLS).
    TlsHandshake,
    /// Greeting, EHLO, STARTTLS and AUTH.
    Setup,
    /// Messages can flow.
    Ready,
    /// QUIT sent.
    Quitting,
    /// Over; `Event::Closed` was emitted.
    Closed,
}

/// A reply the session waits for, in the order commands were sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Greeting,
    Ehlo,
    Helo,
    StartTls,
    Auth,
    Rset,
    Noop,
    Quit,
    Mail(MessageId),
    Rcpt(MessageId, usize),
    Data(MessageId),
    Bdat(MessageId),
    /// The reply after the end of data or BDAT LAST (LMTP: one per recipient).
    Final(MessageId),
}

impl Expect {
    /// RFC 2920: after these, more commands may follow without waiting.
    /// DATA waits for its 354; EHLO, STARTTLS, AUTH, NOOP and QUIT end a group.
    fn allows_pipelining_after(self) -> bool {
        matches!(
            self,
            Expect::Mail(_) | Expect::Rcpt(..) | Expect::Rset | Expect::Bdat(_) | Expect::Final(_)
        )
    }

    fn phase(self) -> Phase {
        match self {
            Expect::Greeting => Phase::Greeting,
            Expect::Ehlo | Expect::Helo => Phase::Ehlo,
            Expect::StartTls => Phase::StartTls,
            Expect::Auth => Phase::Auth,
            Expect::Rset | Expect::Noop | Expect::Mail(_) => Phase::Mail,
            Expect::Rcpt(..) => Phase::Rcpt,
            Expect::Data(_) | Expect::Bdat(_) | Expect::Final(_) => Phase::Data,
            Expect::Quit => Phase::Quit,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    expect: Expect,
    deadline: Instant,
}

/// One client connection. See the module documentation for the protocol
/// between the engine and its host.
pub struct Connection {
    config: Config,
    state: State,
    parser: ReplyParser,
    out: Vec<u8>,
    events: VecDeque<Event>,
    pending: VecDeque<Pending>,
    txs: VecDeque<Transaction>,
    next_message: u64,
    /// Deadline of the current non-reply wait (connect, handshake).
    wait_deadline: Option<(Instant, Phase)>,
    /// Without TLS, silence before the greeting: is this a TLS port?
    port_probe: PortProbe,
    greeting: Option<Reply>,
    caps: Option<Capabilities>,
    /// The plaintext EHLO's capabilities, after a STARTTLS upgrade. Never
    /// used for decisions; reported for diagnostics.
    caps_before_tls: Option<Capabilities>,
    tls: Option<TlsInfo>,
    /// The TLS handshake in progress was asked for by STARTTLS.
    starttls_handshake: bool,
    /// Bytes that arrived while an implicit-TLS handshake was pending.
    early_bytes: Vec<u8>,
    /// TLS was reported up by a host that cannot confirm the handshake
    /// (see `tls_established_unconfirmed`), and nothing has arrived since.
    tls_unconfirmed: bool,
    sasl: Option<SaslClient>,
    auth_method: Option<Mechanism>,
    /// The message whose MAIL FROM was written last, while the server may
    /// still hold its transaction at the end of what was written: the next
    /// MAIL FROM is then preceded by RSET (see `start_transaction`). `None`
    /// once RSET, an end of DATA or a 2xx to BDAT LAST (or a refused MAIL)
    /// shows the server holds none.
    open_transaction: Option<MessageId>,
    quit_requested: bool,
    noop_requested: bool,
}

impl Connection {
    /// A connection that waits for the host to open the socket. Fails with
    /// `EINPUT` when the configuration itself is unusable.
    pub fn new(config: Config, now: Instant) -> Result<Connection, SmtpError> {
        validate_ehlo_name(&config.client_name)?;
        if config.host.is_empty() || config.host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(SmtpError::input(
                Phase::Connect,
                format!(
                    "the host \"{}\" is not a valid host name.",
                    escape_for_log(config.host.as_bytes(), 80)
                ),
            ));
        }
        if config.limits.max_in_flight == 0
            || config.limits.bdat_chunk_size == 0
            || config.limits.max_buffered_body == 0
        {
            return Err(SmtpError::input(Phase::Connect, "limits must be greater than zero."));
        }
        let deadline = now + config.timeouts.connect;
        Ok(Connection {
            parser: ReplyParser::new(config.limits.reply),
            config,
            state: State::Connecting,
            out: Vec::new(),
            events: VecDeque::new(),
            pending: VecDeque::new(),
            txs: VecDeque::new(),
            next_message: 1,
            wait_deadline: Some((deadline, Phase::Connect)),
            port_probe: PortProbe::Off,
            greeting: None,
            caps: None,
            caps_before_tls: None,
            tls: None,
            starttls_handshake: false,
            early_bytes: Vec::new(),
            tls_unconfirmed: false,
            sasl: None,
            auth_method: None,
            open_transaction: None,
            quit_requested: false,
            noop_requested: false,
        })
    }

    // ----- What the host reports -------------------------------------------

    /// The TCP connection is open.
    pub fn connected(&mut self, now: Instant) {
        if self.state != State::Connecting {
            return;
        }
        if self.config.security == Security::Tls {
            self.begin_handshake(false, now);
        } else {
            self.await_greeting(now);
            self.port_probe = PortProbe::arm(now, self.config.timeouts.port_probe, self.config.port);
        }
    }

    /// The TCP connection could not be opened; `detail` is the host's text.
    pub fn connect_failed(&mut self, detail: &str, _now: Instant) {
        if self.state == State::Closed {
            return;
        }
        let err = connect_error(&self.config.host, self.config.port, detail);
        self.fail_connection(err, false);
    }

    /// The TLS handshake the engine asked for with `Event::StartTls` finished.
    pub fn tls_established(&mut self, info: TlsInfo, now: Instant) {
        if self.state != State::TlsHandshake {
            return;
        }
        if let Some(too_old) = tls::below_min_version(&info.version, self.config.min_tls_version) {
            return self.tls_failed(too_old, now);
        }
        self.wait_deadline = None;
        let verified = if info.authorized {
            "certificate verified".to_string()
        } else {
            format!(
                "certificate NOT verified ({})",
                info.authorization_error.as_deref().unwrap_or("verification disabled")
            )
        };
        self.transcript(
            Direction::Tls,
            format!(
                "{} {} established, {verified}",
                info.version,
                info.cipher.as_deref().unwrap_or("")
            )
            .replace("  ", " "),
        );
        self.tls = Some(info);
        if self.starttls_handshake {
            // RFC 3207 §4.2: everything learned before TLS is forgotten
            // (kept aside only to report what the plaintext EHLO offered).
            self.caps_before_tls = self.caps.take();
            self.state = State::Setup;
            self.send_hello(now);
        } else {
            self.await_greeting(now);
        }
        self.flush_work(now);
    }

    /// Like [`tls_established`](Self::tls_established), for a host whose
    /// upgrade call returns before the handshake is known to have succeeded
    /// (Cloudflare Workers: `startTls()` resolves, and a refused certificate
    /// shows only as a failed first read or write, with a text that does not
    /// name it). Until the first byte arrives over TLS, an end of stream or
    /// a socket failure is the TLS failure it most likely is.
    pub fn tls_established_unconfirmed(&mut self, info: TlsInfo, now: Instant) {
        let was_handshaking = self.state == State::TlsHandshake;
        self.tls_established(info, now);
        self.tls_unconfirmed = was_handshaking && self.state != State::Closed;
    }

    /// The first read or write after an unconfirmed handshake failed: the
    /// handshake did. The host's text may name the cause; when it does not,
    /// a refused certificate is by far the likeliest.
    fn unconfirmed_tls_failed(&mut self, detail: &str, now: Instant) {
        self.tls_unconfirmed = false;
        let named = TlsFailure::from_message(detail);
        let kind = if named.kind == tls::TlsFailureKind::Handshake {
            tls::TlsFailureKind::Certificate
        } else {
            named.kind
        };
        let detail = format!(
            "{detail}; the connection failed at the first read or write after the TLS upgrade, \
             which is how this platform reports a refused certificate or handshake"
        );
        self.tls_failed(TlsFailure::new(kind, detail), now);
    }

    /// The TLS handshake failed.
    pub fn tls_failed(&mut self, failure: TlsFailure, _now: Instant) {
        if self.state == State::Closed {
            return;
        }
        let err = tls::failure_error(&failure, &self.config.host, self.config.port, self.starttls_handshake);
        self.fail_connection(err, false);
    }

    /// Bytes arrived from the server (already decrypted when TLS is up).
    pub fn receive(&mut self, mut data: &[u8], now: Instant) {
        if self.state == State::Closed || data.is_empty() {
            return;
        }
        self.tls_unconfirmed = false;
        if self.state == State::Connecting {
            // Bytes prove the connection is open even if the host forgot to say so.
            self.connected(now);
        }
        if self.state == State::TlsHandshake {
            self.bytes_during_handshake(data);
            return;
        }
        self.port_probe = PortProbe::Off;
        while !data.is_empty() && self.state != State::Closed {
            match self.parser.parse(data) {
                Err(err) => {
                    let phase = self.current_phase();
                    self.fail_connection(
                        SmtpError::protocol(phase, format!("the server sent an invalid reply: {err}."))
                            .with_hint("this is not a working SMTP server on this port, or something on the path is corrupting the dialog."),
                        false,
                    );
                    return;
                }
                Ok((consumed, reply)) => {
                    data = &data[consumed.min(data.len())..];
                    if let Some(reply) = reply {
                        self.on_reply(reply, now);
                        if self.state == State::TlsHandshake && (!data.is_empty() || self.parser.has_partial()) {
                            self.bytes_during_handshake(data);
                            return;
                        }
                    }
                }
            }
        }
        self.flush_work(now);
    }

    /// The server closed the connection (end of stream).
    pub fn receive_eof(&mut self, now: Instant) {
        if self.tls_unconfirmed {
            return self.unconfirmed_tls_failed("the server closed the connection", now);
        }
        match self.state {
            State::Closed => {}
            State::Quitting => self.finish_closed(None),
            _ => {
                let phase = self.current_phase();
                let idle = self.pending.is_empty() && self.txs.is_empty() && self.state == State::Ready;
                let mut err = SmtpError::new(
                    ErrorCode::Closed,
                    phase,
                    if idle {
                        "the server closed the idle connection.".to_string()
                    } else {
                        format!("the server closed the connection during {phase}.")
                    },
                )
                .retryable(true);
                if phase == Phase::Greeting {
                    err = err.with_hint(
                        "the server hung up before greeting: it may be rejecting this client (rate limits, IP reputation), or the port expects TLS from the first byte (security: 'tls').",
                    );
                }
                self.fail_connection(err, false);
            }
        }
    }

    /// What the second connection of an `Event::PortProbe` received first
    /// (up to a few bytes; empty when nothing came or it could not connect).
    /// A TLS answer ends this connection with `ETLS_PORT_MISMATCH`; anything
    /// else leaves it waiting for its greeting.
    pub fn port_probe_result(&mut self, first_bytes: &[u8], _now: Instant) {
        if !matches!(self.port_probe, PortProbe::Asked { .. }) || self.state == State::Closed {
            return;
        }
        self.port_probe = PortProbe::Off;
        if port_probe::judge(first_bytes) == ProbeAnswer::Tls {
            let detail = "a second connection to the same port that started a TLS handshake was answered with TLS";
            self.fail_connection(self.port_mismatch_error(detail), false);
        }
    }

    /// Call when `poll_timeout` has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.handle_port_probe_timeout(now) {
            return;
        }
        if let Some((deadline, phase)) = self.wait_deadline {
            if now >= deadline {
                let err = self.timeout_error(phase, None);
                self.fail_connection(err, false);
                return;
            }
        }
        if let Some(front) = self.pending.front().copied() {
            if now >= front.deadline {
                if front.expect == Expect::Quit {
                    self.transcript(Direction::Client, "(no reply to QUIT; closing)".to_string());
                    self.finish_closed(None);
                    return;
                }
                let err = self.timeout_error(front.expect.phase(), Some(front.expect));
                self.fail_connection(err, false);
            }
        }
    }

    /// The socket failed under the engine: a read or write error, or a
    /// write that made no progress for the command time-out (the server
    /// stopped reading). `detail` is the host's description.
    pub fn socket_failed(&mut self, detail: &str, write_stalled: bool, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if self.tls_unconfirmed && !write_stalled {
            return self.unconfirmed_tls_failed(detail, now);
        }
        let phase = self.current_phase();
        let err = if write_stalled {
            SmtpError::new(
                ErrorCode::TimedOut,
                phase,
                format!(
                    "the server stopped reading for {} during {phase}.",
                    crate::time::describe(self.config.timeouts.command)
                ),
            )
            .with_hint("the server or the network stalled; try again later.")
        } else {
            SmtpError::new(
                ErrorCode::Closed,
                phase,
                format!("the connection failed during {phase} ({detail})."),
            )
            .with_hint("the connection was reset or broke; try again.")
        };
        self.fail_connection(err.retryable(true), false);
    }

    // ----- What the user asks for -------------------------------------------

    /// Queues a message. Its body is pushed with `write_body` / `end_body`;
    /// its outcome comes back as `Event::Delivered` or `Event::Failed` with
    /// the returned id. Input errors are returned at once and nothing is sent.
    pub fn submit(&mut self, envelope: Envelope, now: Instant) -> Result<MessageId, SmtpError> {
        if matches!(self.state, State::Closed | State::Quitting) || self.quit_requested {
            return Err(SmtpError::new(
                ErrorCode::Closed,
                Phase::Mail,
                "the connection is closing; the message was not sent.",
            )
            .retryable(true));
        }
        envelope.validate()?;
        let id = MessageId(self.next_message);
        self.next_message += 1;
        self.txs
            .push_back(Transaction::new(id, envelope, self.config.limits.max_line_len));
        self.flush_work(now);
        Ok(id)
    }

    /// How many body bytes `write_body` would take now for this message.
    pub fn body_capacity(&self, id: MessageId) -> usize {
        let Some(tx) = self.wire_tx() else { return 0 };
        if tx.id != id || tx.failure.is_some() || tx.caller_done {
            return 0;
        }
        let held = tx.raw.len() + tx.chunk.len() + if tx.step == Step::Body { self.out.len() } else { 0 };
        self.config.limits.max_buffered_body.saturating_sub(held)
    }

    /// The message whose body the engine wants next, if it has room for it.
    pub fn wants_body(&self) -> Option<MessageId> {
        let tx = self.wire_tx()?;
        (self.body_capacity(tx.id) > 0).then_some(tx.id)
    }

    /// Pushes body bytes; returns how many were taken (back-pressure: fewer
    /// than offered, possibly zero, when the engine's buffer is full).
    /// Fails once the message has failed, so the host stops reading its source.
    pub fn write_body(&mut self, id: MessageId, data: &[u8], now: Instant) -> Result<usize, SmtpError> {
        self.check_body_target(id)?;
        let take = self.body_capacity(id).min(data.len());
        if take == 0 {
            return Ok(0);
        }
        let idx = self.tx_index(id).expect("checked above");
        let framing = self.framing();
        let tx = &mut self.txs[idx];
        match (tx.step, framing) {
            (Step::Body, Framing::Data) => {
                let result = tx.encoder.encode(&data[..take], &mut self.out);
                if let Err(err) = result {
                    return Err(self.body_error(idx, err.to_string()));
                }
            }
            _ => tx.raw.extend_from_slice(&data[..take]),
        }
        self.flush_work(now);
        Ok(take)
    }

    /// Marks the end of a message's body.
    pub fn end_body(&mut self, id: MessageId, now: Instant) -> Result<(), SmtpError> {
        self.check_body_target(id)?;
        let idx = self.tx_index(id).expect("checked above");
        self.txs[idx].caller_done = true;
        self.flush_work(now);
        Ok(())
    }

    /// Asks the server for a NOOP (a liveness check for pooled connections).
    pub fn noop(&mut self, now: Instant) {
        if self.state != State::Closed {
            self.noop_requested = true;
            self.flush_work(now);
        }
    }

    /// Ends the session gracefully: queued messages are still sent, then QUIT.
    pub fn close(&mut self, now: Instant) {
        match self.state {
            State::Closed | State::Quitting => {}
            State::Connecting => self.finish_closed(None),
            _ => {
                self.quit_requested = true;
                self.flush_work(now);
            }
        }
    }

    /// Ends the session at once: queued messages fail with `ECLOSED`.
    pub fn abort(&mut self) {
        if self.state != State::Closed {
            let phase = self.current_phase();
            let err = SmtpError::new(
                ErrorCode::Closed,
                phase,
                "the connection was aborted by the application.",
            );
            self.fail_connection(err, false);
        }
    }

    // ----- What the host drains ----------------------------------------------

    /// How many bytes [`poll_transmit`](Self::poll_transmit) would return now.
    pub fn transmit_len(&self) -> usize {
        self.out.len()
    }

    /// Like [`poll_transmit`](Self::poll_transmit), into the caller's buffer
    /// (reused from write to write): moves up to `buf.len()` bytes, returns how many.
    pub fn poll_transmit_into(&mut self, buf: &mut [u8]) -> usize {
        crate::outbuf::take_into(&mut self.out, buf)
    }

    /// Bytes to write to the socket: everything produced so far, as one write.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        crate::outbuf::take_all(&mut self.out)
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next, if anything is awaited.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.wait_deadline.map(|(d, _)| d),
            self.port_probe.deadline(),
            self.pending.front().map(|p| p.deadline),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ----- Queries -----------------------------------------------------------

    pub fn state(&self) -> State {
        self.state
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Ready and nothing queued or awaited: a pool may hand it new work.
    pub fn is_idle(&self) -> bool {
        self.state == State::Ready && self.txs.is_empty() && self.pending.is_empty()
    }

    /// Capabilities from the last EHLO, when known.
    pub fn capabilities(&self) -> Option<&Capabilities> {
        self.caps.as_ref()
    }

    /// What the plaintext EHLO offered before a STARTTLS upgrade (for
    /// diagnostics only: no decision is ever made from it).
    pub fn capabilities_before_tls(&self) -> Option<&Capabilities> {
        self.caps_before_tls.as_ref()
    }

    /// The server's greeting, once received.
    pub fn greeting(&self) -> Option<&Reply> {
        self.greeting.as_ref()
    }

    pub fn tls_info(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    // ----- Setup ---------------------------------------------------------------

    fn begin_handshake(&mut self, after_starttls: bool, now: Instant) {
        self.state = State::TlsHandshake;
        self.starttls_handshake = after_starttls;
        let phase = if after_starttls { Phase::StartTls } else { Phase::Tls };
        self.wait_deadline = Some((now + self.config.timeouts.tls_handshake, phase));
        self.events.push_back(Event::StartTls {
            server_name: self.config.host.clone(),
        });
    }

    fn await_greeting(&mut self, now: Instant) {
        self.state = State::Setup;
        self.wait_deadline = None;
        self.expect(Expect::Greeting, now + self.config.timeouts.greeting);
    }

    fn bytes_during_handshake(&mut self, data: &[u8]) {
        if !self.starttls_handshake {
            // Implicit TLS: a host whose TLS layer hands back the raw bytes
            // lets the engine tell a plaintext greeting (a 587/25 port) from
            // garbage. Wait for the four bytes that decide it.
            self.early_bytes.extend_from_slice(data);
            let early = &self.early_bytes;
            let could_be_greeting = early.iter().take(3).all(u8::is_ascii_digit);
            if early.len() < 4 && could_be_greeting {
                return;
            }
        }
        let err = if !self.starttls_handshake && tls::looks_like_plaintext_greeting(&self.early_bytes) {
            tls::failure_error(
                &TlsFailure::new(tls::TlsFailureKind::PlaintextReply, "plaintext SMTP greeting"),
                &self.config.host,
                self.config.port,
                false,
            )
        } else {
            let shown = if self.starttls_handshake {
                data
            } else {
                &self.early_bytes
            };
            SmtpError::protocol(
                if self.starttls_handshake { Phase::StartTls } else { Phase::Tls },
                format!(
                    "the server sent data before the TLS handshake ({}): a response injection attack or a broken server.",
                    escape_for_log(shown, 60)
                ),
            )
            .with_hint(if self.starttls_handshake {
                "nothing may follow the STARTTLS 220 reply; wasmtp refuses to continue. If this persists, something on the network path is tampering with SMTP."
            } else {
                "the server did not answer the TLS handshake with TLS: check that this port offers implicit TLS (465), or use security: 'starttls' on 587."
            })
        };
        self.fail_connection(err, false);
    }

    fn send_hello(&mut self, now: Instant) {
        let verb = if self.config.protocol == Protocol::Lmtp {
            "LHLO"
        } else {
            "EHLO"
        };
        let line = format!("{verb} {}", self.config.client_name);
        self.send_command(&line, None, Expect::Ehlo, now);
    }

    /// After EHLO/HELO: upgrade, authenticate, or start sending.
    fn after_hello(&mut self, now: Instant) {
        let caps = self.caps.as_ref().expect("set by the hello reply");
        let wants_starttls = matches!(self.config.security, Security::StartTls | Security::Opportunistic);
        if wants_starttls && self.tls.is_none() {
            if caps.starttls {
                self.send_command("STARTTLS", None, Expect::StartTls, now);
                return;
            }
            if self.config.security == Security::StartTls {
                let err = SmtpError::new(
                    ErrorCode::StartTlsUnavailable,
                    Phase::StartTls,
                    format!(
                        "security is 'starttls' but {}:{} does not offer STARTTLS; nothing was sent (no credentials, no message).",
                        self.config.host, self.config.port
                    ),
                )
                .with_hint(starttls_missing_hint(self.config.port));
                self.fail_connection(err, true);
                return;
            }
        }
        self.begin_auth(now);
    }

    fn begin_auth(&mut self, now: Instant) {
        let Some(credentials) = self.config.credentials.clone() else {
            self.become_ready(now);
            return;
        };
        let encrypted = self.tls.is_some();
        if !self.config.allow_insecure_auth {
            if let Some(err) = self.insecure_auth_error() {
                self.fail_connection(err, true);
                return;
            }
        }
        let offered = self.caps.as_ref().map(|c| c.auth.clone()).unwrap_or_default();
        match choose_mechanism(&offered, &credentials, self.config.auth_mechanism, encrypted) {
            Err(err) => self.fail_connection(err, true),
            Ok(mechanism) => {
                let mut sasl = SaslClient::new(mechanism, &credentials, &self.config.host, self.config.port);
                let first = sasl.start();
                self.sasl = Some(sasl);
                self.auth_method = Some(mechanism);
                self.send_command(&first.line, Some(&first.redacted), Expect::Auth, now);
            }
        }
    }

    /// The probe's timers: ask the host for a probe after a silence; on port
    /// 465, name the mix-up after the full silence if no probe answered.
    /// True when the connection ended.
    fn handle_port_probe_timeout(&mut self, now: Instant) -> bool {
        let awaiting_greeting = self.pending.front().map(|p| p.expect) == Some(Expect::Greeting);
        if !awaiting_greeting {
            self.port_probe = PortProbe::Off;
            return false;
        }
        if let PortProbe::Armed { at, guess_at } = self.port_probe {
            if now >= at {
                self.port_probe = PortProbe::Asked { guess_at };
                let client_hello = port_probe::client_hello(&self.config.host);
                self.events.push_back(Event::PortProbe { client_hello });
            }
        }
        match self.port_probe {
            PortProbe::Armed {
                guess_at: Some(guess), ..
            }
            | PortProbe::Asked { guess_at: Some(guess) }
                if now >= guess =>
            {
                let err = self.port_mismatch_error("port 465 is the TLS port by convention");
                self.fail_connection(err, false);
                true
            }
            _ => false,
        }
    }

    /// `ETLS_PORT_MISMATCH` for a plaintext connection that heard no greeting.
    fn port_mismatch_error(&self, evidence: &str) -> SmtpError {
        let waited = crate::time::describe(self.config.timeouts.port_probe);
        SmtpError::new(
            ErrorCode::TlsPortMismatch,
            Phase::Greeting,
            format!(
                "no greeting from {}:{} within {waited} while connecting without TLS (security: '{}'), and {evidence}.",
                self.config.host,
                self.config.port,
                self.config.security.as_str()
            ),
        )
        .with_hint(tls::silent_greeting_hint(self.config.port, self.config.security))
    }

    /// The error AUTH would end with over TLS, when none of the mechanisms
    /// this plaintext EHLO offers fits the credentials given.
    fn mechanisms_unusable_even_over_tls(&self) -> Option<SmtpError> {
        let credentials = self.config.credentials.as_ref()?;
        let offered = &self.caps.as_ref()?.auth;
        choose_mechanism(offered, credentials, self.config.auth_mechanism, true).err()
    }

    /// Why credentials may not be sent on this link, if they may not: it is
    /// unencrypted, or encrypted with a certificate nobody verified (which
    /// anyone on the path could have presented).
    fn insecure_auth_error(&self) -> Option<SmtpError> {
        let (host, port, security) = (&self.config.host, self.config.port, self.config.security.as_str());
        match &self.tls {
            None => {
                let offered_tls = self.caps.as_ref().is_some_and(|c| c.starttls);
                let hint = if offered_tls && self.config.security == Security::None {
                    "the server offers STARTTLS: use security: 'starttls'. Only for a trusted local test server, set allowInsecureAuth: true."
                } else {
                    "use security: 'tls' (port 465) or 'starttls' (port 587). Only for a trusted local test server, set allowInsecureAuth: true."
                };
                let mut message = format!("refusing to send credentials to {host}:{port} over an unencrypted connection (security: '{security}').");
                let mut hint = hint.to_string();
                // Name the second problem too, so one error tells the whole
                // story: what the server offers is unusable even over TLS
                // (an Exchange server with only GSSAPI and NTLM, say).
                if let Some(unusable) = self.mechanisms_unusable_even_over_tls() {
                    message.push_str(&format!(" Besides, {}", unusable.message));
                    if let Some(fix) = unusable.hint {
                        hint.push_str(&format!(" And for AUTH: {fix}"));
                    }
                }
                Some(SmtpError::new(ErrorCode::AuthInsecure, Phase::Auth, message).with_hint(hint))
            }
            Some(tls) if !tls.authorized => Some(
                SmtpError::new(
                    ErrorCode::AuthInsecure,
                    Phase::Auth,
                    format!(
                        "refusing to send credentials to {host}:{port}: the TLS certificate was not verified ({}), so the link may lead to someone else.",
                        tls.authorization_error.as_deref().unwrap_or("verification was turned off")
                    ),
                )
                .with_hint("pass the server's CA (or its self-signed certificate) as tls.ca and keep verification on. Only for a trusted local test server, set allowInsecureAuth: true."),
            ),
            Some(_) => None,
        }
    }

    fn become_ready(&mut self, now: Instant) {
        self.state = State::Ready;
        let info = SessionInfo {
            greeting: self.greeting.clone().expect("greeted before ready"),
            capabilities: self.caps.clone().unwrap_or_default(),
            capabilities_before_tls: self.caps_before_tls.clone(),
            tls: self.tls.clone(),
            auth_method: self.auth_method,
        };
        self.events.push_back(Event::Ready(info));
        self.flush_work(now);
    }

    // ----- Replies ---------------------------------------------------------------

    fn on_reply(&mut self, reply: Reply, now: Instant) {
        for (i, line) in reply.lines.iter().enumerate() {
            let sep = if i + 1 == reply.lines.len() { ' ' } else { '-' };
            let text = if line.is_empty() && sep == ' ' {
                reply.code.to_string()
            } else {
                format!("{}{sep}{line}", reply.code)
            };
            self.transcript(Direction::Server, text);
        }
        let Some(pending) = self.pending.pop_front() else {
            self.unsolicited(reply);
            return;
        };
        // Progress: the next awaited reply gets a fresh allowance.
        if let Some(expect) = self.pending.front().map(|p| p.expect) {
            let allowance = self.timeout_for(expect);
            let front = self.pending.front_mut().expect("just looked at it");
            front.deadline = front.deadline.max(now + allowance);
        }
        if reply.code == 221 && pending.expect != Expect::Quit {
            // 221 is "closing": success for QUIT, the end of the session anywhere else.
            let err = SmtpError::from_reply(
                ErrorCode::Closed,
                pending.expect.phase(),
                format!("the server ended the session: {reply}."),
                &reply,
            )
            .with_hint(
                "the server closed the session instead of answering; it may be shutting down or rejecting this client.",
            );
            self.fail_connection(err, false);
            return;
        }
        let closing = reply.code == 421;
        let closing_reply = closing.then(|| reply.clone());
        match pending.expect {
            Expect::Greeting => self.on_greeting(reply, now),
            Expect::Ehlo => self.on_ehlo(reply, now),
            Expect::Helo => self.on_helo(reply, now),
            Expect::StartTls => self.on_starttls(reply, now),
            Expect::Auth => self.on_auth(reply, now),
            Expect::Rset | Expect::Noop => {
                if !reply.is_positive() && !closing {
                    let err = SmtpError::from_reply(
                        ErrorCode::Protocol,
                        pending.expect.phase(),
                        format!(
                            "the server refused {}: {reply}.",
                            if pending.expect == Expect::Rset { "RSET" } else { "NOOP" }
                        ),
                        &reply,
                    );
                    self.fail_connection(err, true);
                }
            }
            Expect::Quit => self.finish_closed(None),
            Expect::Mail(id) => self.on_mail(id, reply),
            Expect::Rcpt(id, index) => self.on_rcpt(id, index, reply),
            Expect::Data(id) => self.on_data(id, reply, now),
            Expect::Bdat(id) => self.on_bdat(id, reply),
            Expect::Final(id) => self.on_final(id, reply, now),
        }
        if let Some(reply) = closing_reply.filter(|_| self.state != State::Closed) {
            let phase = pending.expect.phase();
            let err = SmtpError::from_reply(
                ErrorCode::Closed,
                phase,
                format!("the server is closing the connection: {reply}."),
                &reply,
            )
            .with_hint("the server is shutting down or limiting connections; try again later.");
            self.fail_connection(err, false);
        }
        self.reap_transactions();
    }

    fn unsolicited(&mut self, reply: Reply) {
        let phase = self.current_phase();
        let err = if reply.code == 421 {
            SmtpError::from_reply(
                ErrorCode::Closed,
                phase,
                format!("the server closed the session: {reply}."),
                &reply,
            )
            .with_hint("the server is shutting down or dropped an idle connection; try again.")
        } else {
            SmtpError::from_reply(
                ErrorCode::Protocol,
                phase,
                format!("the server sent a reply no command asked for: {reply}."),
                &reply,
            )
            .with_hint("the server (or something on the path) is out of step with the dialog; wasmtp stops rather than pair replies wrongly.")
            .retryable(false)
        };
        self.fail_connection(err, false);
    }

    fn on_greeting(&mut self, reply: Reply, now: Instant) {
        self.port_probe = PortProbe::Off;
        if reply.code == 220 {
            self.greeting = Some(reply);
            self.send_hello(now);
            return;
        }
        let (code, message, hint) = match reply.code {
            554 | 521 | 550 => (
                ErrorCode::Connect,
                format!("the server refused the session in its greeting: {reply}."),
                "the server does not accept mail from this client (IP reputation, blocklist or policy); ask its administrator.",
            ),
            421 => (
                ErrorCode::Connect,
                format!("the server is not accepting connections now: {reply}."),
                "the server is busy or shutting down; try again later.",
            ),
            _ => (
                ErrorCode::Protocol,
                format!("the server greeted with an unexpected reply: {reply}."),
                "this does not look like an SMTP server on this port; check the host and port.",
            ),
        };
        let err = SmtpError::from_reply(code, Phase::Greeting, message, &reply).with_hint(hint);
        self.fail_connection(err, reply.code != 421);
    }

    fn on_ehlo(&mut self, reply: Reply, now: Instant) {
        if reply.is_positive() {
            self.caps = Some(Capabilities::from_ehlo(&reply));
            self.after_hello(now);
            return;
        }
        if reply.code == 421 {
            return; // on_reply closes the connection.
        }
        // Only where security allows it: HELO cannot negotiate STARTTLS, and
        // a refused EHLO under required TLS is a stripping attempt or a broken server.
        let helo_allowed = self.config.protocol == Protocol::Smtp
            && matches!(self.config.security, Security::None | Security::Opportunistic)
            && self.tls.is_none();
        if helo_allowed {
            let line = format!("HELO {}", self.config.client_name);
            self.send_command(&line, None, Expect::Helo, now);
            return;
        }
        let err = match (self.config.security, self.tls.is_some()) {
            (Security::StartTls, false) => SmtpError::from_reply(
                ErrorCode::StartTlsUnavailable,
                Phase::Ehlo,
                format!("the server refused EHLO ({reply}), so STARTTLS cannot be negotiated; nothing was sent."),
                &reply,
            )
            .with_hint("a server that refuses EHLO cannot upgrade to TLS. Check that this is a submission server (port 587), or use security: 'tls' on port 465."),
            _ => SmtpError::from_reply(
                ErrorCode::Protocol,
                Phase::Ehlo,
                format!("the server refused {} ({reply}); wasmtp does not fall back to HELO when TLS is required.", if self.config.protocol == Protocol::Lmtp { "LHLO" } else { "EHLO" }),
                &reply,
            )
            .with_hint("HELO has no extensions (no AUTH, no size checks); ask the server's administrator to enable ESMTP."),
        };
        self.fail_connection(err, true);
    }

    fn on_helo(&mut self, reply: Reply, now: Instant) {
        if reply.is_positive() {
            self.caps = Some(Capabilities::from_helo(&reply));
            self.after_hello(now);
        } else if reply.code != 421 {
            let err = SmtpError::from_reply(
                ErrorCode::Protocol,
                Phase::Ehlo,
                format!("the server refused both EHLO and HELO: {reply}."),
                &reply,
            )
            .with_hint("check the client name (clientName) is a valid domain or address literal, and that this is an SMTP server.");
            self.fail_connection(err, true);
        }
    }

    fn on_starttls(&mut self, reply: Reply, now: Instant) {
        if reply.code == 220 {
            self.begin_handshake(true, now);
            return;
        }
        if reply.code == 421 {
            return;
        }
        if self.config.security == Security::StartTls {
            let err = SmtpError::from_reply(
                ErrorCode::StartTlsUnavailable,
                Phase::StartTls,
                format!("the server offered STARTTLS but refused it: {reply}. Nothing was sent (no credentials, no message)."),
                &reply,
            )
            .with_hint("the server's TLS set-up is broken or something on the path blocks STARTTLS; try security: 'tls' on port 465, or ask the server's administrator.");
            self.fail_connection(err, true);
        } else {
            // Opportunistic: RFC 3207 lets the client carry on in plaintext.
            self.transcript(
                Direction::Tls,
                format!("STARTTLS refused ({}); continuing without TLS", reply.code),
            );
            self.begin_auth(now);
        }
    }

    fn on_auth(&mut self, reply: Reply, now: Instant) {
        let Some(sasl) = self.sasl.as_mut() else {
            self.unsolicited(reply);
            return;
        };
        match sasl.step(&reply) {
            AuthStep::Send(line) => self.send_command(&line.line, Some(&line.redacted), Expect::Auth, now),
            AuthStep::Done => {
                self.sasl = None;
                self.become_ready(now);
            }
            AuthStep::Failed(err) => {
                self.sasl = None;
                if reply.code != 421 {
                    self.fail_connection(err, true);
                }
            }
        }
    }

    fn on_mail(&mut self, id: MessageId, reply: Reply) {
        let Some(idx) = self.tx_index(id) else { return };
        let tx = &mut self.txs[idx];
        tx.outstanding -= 1;
        if reply.is_positive() {
            tx.mail_ok = true;
            return;
        }
        if reply.code == 503 {
            // Bad sequence: the server still holds a transaction this client
            // did not know of (Exim's "sender already given", Dovecot's "MAIL
            // already given"), and the RCPTs and data pipelined behind this
            // MAIL join it, under its sender.
            return self.on_mail_into_open_transaction(idx, reply);
        }
        // A refused MAIL opens no transaction (RFC 5321 §4.1.1.2), and what
        // was pipelined behind it is answered "need MAIL" (RFC 2920 §3.1).
        if self.open_transaction == Some(id) {
            self.open_transaction = None;
        }
        let err = mail_error(&tx.envelope, &reply);
        self.fail_tx(idx, err);
    }

    /// MAIL met a transaction the server still held. What is not on the wire
    /// yet is not sent (the next MAIL is preceded by RSET, which ends that
    /// transaction). Once the end of data is out, the final reply tells
    /// whether the server took the data into the other transaction: then the
    /// message may have gone out under another sender, and its state is
    /// `unknown`, never `not-sent`.
    fn on_mail_into_open_transaction(&mut self, idx: usize, reply: Reply) {
        let tx = &mut self.txs[idx];
        if !tx.end_sent {
            let err = nested_mail_error(&reply, false);
            self.fail_tx(idx, err);
            return;
        }
        if self.config.protocol == Protocol::Lmtp {
            // LMTP answers the end of data once per recipient of the
            // transaction, and that one holds recipients this client never
            // sent: the replies that follow cannot be paired any more.
            let err = nested_mail_error(&reply, true);
            self.fail_connection(err, false);
            return;
        }
        tx.mail_into_open_transaction = Some(reply);
    }

    fn on_rcpt(&mut self, id: MessageId, index: usize, reply: Reply) {
        let Some(idx) = self.tx_index(id) else { return };
        let tx = &mut self.txs[idx];
        tx.outstanding -= 1;
        tx.rcpt_replies.push((index, reply));
        if tx.rcpt_replies.len() < tx.envelope.recipients.len()
            || tx.failure.is_some()
            || tx.mail_into_open_transaction.is_some()
        {
            return;
        }
        if tx.accepted_indexes().is_empty() {
            let err = recipients_error(&tx.envelope, &tx.rcpt_replies);
            self.fail_tx(idx, err);
        }
    }

    fn on_data(&mut self, id: MessageId, reply: Reply, now: Instant) {
        let Some(idx) = self.tx_index(id) else { return };
        let tx = &mut self.txs[idx];
        tx.outstanding -= 1;
        if reply.code == 354 {
            if tx.failure.is_none() {
                tx.data_go = true;
                return;
            }
            if !tx.accepted_indexes().is_empty() {
                // The failed message has recipients on the server (its MAIL
                // met a transaction the server still held): an empty end of
                // data would deliver an empty message to them. Only dropping
                // the connection abandons DATA.
                let err = SmtpError::new(
                    ErrorCode::Closed,
                    Phase::Data,
                    "the connection was dropped to abandon DATA that the server opened for a message that had already failed, so that nothing is delivered under another message's envelope.",
                )
                .retryable(true);
                self.fail_connection(err, false);
                return;
            }
            // The server opened DATA for a transaction that already failed
            // (pipelined): end it empty; no accepted recipient can receive it.
            self.out.extend_from_slice(b".\r\n");
            self.transcript(Direction::Client, ".".to_string());
            let tx = &mut self.txs[idx];
            tx.outstanding += 1;
            tx.end_sent = true;
            tx.wire_ended = true;
            self.end_of_data_sent(id);
            self.expect(Expect::Final(id), now + self.config.timeouts.data_end);
            return;
        }
        if reply.code < 400 {
            // Only 354 opens DATA. Any other non-failure reply means the
            // replies are out of step with the commands (a server that
            // answered one command twice), so nothing can be paired safely.
            let err = SmtpError::from_reply(
                ErrorCode::Protocol,
                Phase::Data,
                format!("the server answered DATA with {reply} instead of 354; its replies are out of step with the commands."),
                &reply,
            )
            .with_hint("the server (or something on the path) broke the dialog; wasmtp stops rather than pair replies with the wrong commands. The message was not sent.");
            self.fail_connection(err, false);
            return;
        }
        if tx.failure.is_none() {
            let err = data_error(&reply, "the server refused DATA");
            self.fail_tx(idx, err);
        }
        self.end_wire(idx);
    }

    fn on_bdat(&mut self, id: MessageId, reply: Reply) {
        let Some(idx) = self.tx_index(id) else { return };
        let tx = &mut self.txs[idx];
        tx.outstanding -= 1;
        // A refused chunk leaves `open_transaction` set: RFC 3030 §2 asks for
        // RSET before further commands once a BDAT failed. Those already
        // pipelined behind it are paired as usual: the server answers each.
        if reply.is_positive() || tx.failure.is_some() || tx.mail_into_open_transaction.is_some() {
            return;
        }
        let err = data_error(&reply, "the server refused a BDAT chunk");
        self.fail_tx(idx, err);
        if !self.txs[idx].wire_ended {
            self.end_wire(idx);
        }
    }

    fn on_final(&mut self, id: MessageId, reply: Reply, now: Instant) {
        let Some(idx) = self.tx_index(id) else { return };
        let lmtp = self.config.protocol == Protocol::Lmtp;
        let tx = &mut self.txs[idx];
        tx.final_replies.push(reply);
        let accepted = tx.accepted_indexes();
        let needed = if lmtp && !accepted.is_empty() {
            accepted.len()
        } else {
            1
        };
        if tx.final_replies.len() < needed {
            // LMTP: the next reply belongs to this message too.
            let deadline = now + self.config.timeouts.data_end;
            self.pending.push_front(Pending {
                expect: Expect::Final(id),
                deadline,
            });
            return;
        }
        tx.outstanding -= 1;
        // A 2xx to the end of the data is the server saying the transaction
        // is over. Anything else leaves `open_transaction` set: whether a
        // refused BDAT LAST ends the transaction is the server's own choice
        // (Postfix: yes; Exim and Dovecot: no).
        let data_taken = if lmtp && !accepted.is_empty() {
            tx.final_replies.iter().any(Reply::is_positive)
        } else {
            tx.final_replies[0].is_positive()
        };
        if data_taken && self.open_transaction == Some(id) {
            self.open_transaction = None;
        }
        if let Some(mail_reply) = tx.mail_into_open_transaction.clone() {
            self.fail_tx(idx, nested_mail_error(&mail_reply, data_taken));
            return;
        }
        if tx.failure.is_some() {
            return;
        }
        let outcome = tx.final_outcome(lmtp);
        match outcome {
            Ok(delivery) => {
                tx.reported = true;
                self.events.push_back(Event::Delivered(id, delivery));
            }
            Err(err) => self.fail_tx(idx, err),
        }
    }

    // ----- Sending ----------------------------------------------------------------

    /// Sends whatever the state allows: transactions, then NOOP or QUIT.
    fn flush_work(&mut self, now: Instant) {
        if self.state != State::Ready {
            return;
        }
        while self.state == State::Ready && self.advance_wire(now) {}
        if self.state != State::Ready || !self.txs.iter().all(|t| t.wire_ended) {
            return;
        }
        if self.quit_requested && self.can_send_command() {
            self.send_command("QUIT", None, Expect::Quit, now);
            self.state = State::Quitting;
        } else if self.noop_requested && self.pending.is_empty() && self.txs.is_empty() {
            self.noop_requested = false;
            self.send_command("NOOP", None, Expect::Noop, now);
        }
    }

    /// Moves the transaction at the head of the wire one step; false when it
    /// has to wait (for a reply, the body, or room in the window).
    fn advance_wire(&mut self, now: Instant) -> bool {
        let Some(idx) = self.txs.iter().position(|t| !t.wire_ended) else {
            return false;
        };
        let framing = self.framing();
        let step = self.txs[idx].step;
        match step {
            Step::Mail => self.start_transaction(idx, framing, now),
            Step::Rcpt(i) => {
                if !self.can_send_command() {
                    return false;
                }
                if self.txs[idx].failure.is_some() {
                    return self.end_wire(idx);
                }
                let tx = &mut self.txs[idx];
                let line = tx.commands.as_ref().expect("built with MAIL").rcpts[i].clone();
                let id = tx.id;
                tx.step = if i + 1 < tx.envelope.recipients.len() {
                    Step::Rcpt(i + 1)
                } else {
                    Step::AfterRcpts
                };
                tx.outstanding += 1;
                self.send_command(&line, None, Expect::Rcpt(id, i), now);
                true
            }
            Step::AfterRcpts => {
                if !self.can_send_command() {
                    return false;
                }
                if self.txs[idx].failure.is_some() {
                    return self.end_wire(idx);
                }
                let tx = &mut self.txs[idx];
                let id = tx.id;
                match framing {
                    Framing::Data => {
                        tx.step = Step::AwaitGo;
                        tx.outstanding += 1;
                        self.send_command("DATA", None, Expect::Data(id), now);
                    }
                    Framing::Bdat => tx.step = Step::Body,
                }
                true
            }
            Step::AwaitGo => {
                if !self.txs[idx].data_go {
                    return false;
                }
                let tx = &mut self.txs[idx];
                tx.step = Step::Body;
                let raw = std::mem::take(&mut tx.raw);
                if let Err(err) = tx.encoder.encode(&raw, &mut self.out) {
                    let _ = self.body_error(idx, err.to_string());
                }
                true
            }
            Step::Body => match framing {
                Framing::Data => self.finish_data_body(idx, now),
                Framing::Bdat if self.txs[idx].failure.is_some() => {
                    // MAIL or every RCPT failed before the whole body was
                    // there: the host stops feeding it, so end it here.
                    self.end_wire(idx)
                }
                Framing::Bdat => self.send_bdat_chunks(idx, now),
            },
        }
    }

    fn start_transaction(&mut self, idx: usize, framing: Framing, now: Instant) -> bool {
        let started = self
            .txs
            .iter()
            .filter(|t| t.step != Step::Mail && (t.outstanding > 0 || !t.wire_ended))
            .count();
        if started >= self.config.limits.max_in_flight || !self.can_send_command() {
            return false;
        }
        let caps = self.caps.clone().unwrap_or_default();
        let commands = match build_commands(&self.txs[idx].envelope, &caps, self.tls.is_some()) {
            Ok(commands) => commands,
            Err(err) => {
                self.fail_tx(idx, err);
                self.txs[idx].wire_ended = true;
                self.reap_transactions();
                return true;
            }
        };
        // RSET goes before MAIL whenever the server may still hold a
        // transaction at this point of the wire: one that failed, one this
        // client stopped sending, or one whose BDAT LAST is not answered
        // yet. After a refused BDAT, what a server keeps is its own choice
        // (RFC 3030 §2 only says the transaction failed): Postfix ends it at
        // BDAT LAST, Exim and Dovecot keep the MAIL open, and a MAIL written
        // behind it would join it ("503 sender already given") and its data
        // would go out under the other message's sender. RSET inside a
        // pipelined group costs no round trip (RFC 2920 §3.1) and is
        // harmless after a success. No RSET is needed after an end of DATA
        // (RFC 5321 §4.1.1.4: it clears the transaction, whatever the
        // reply), nor after a 2xx to BDAT LAST. Without PIPELINING, RSET
        // is a round trip of its own: MAIL waits for its reply.
        if self.open_transaction.take().is_some() {
            self.send_command("RSET", None, Expect::Rset, now);
            if !self.pipelining() {
                return true;
            }
        }
        let pipelining = self.pipelining();
        let tx = &mut self.txs[idx];
        tx.encoder = BodyEncoder::with_line_limit(framing, self.config.limits.max_line_len);
        let mail = commands.mail.clone();
        tx.commands = Some(commands);
        tx.step = Step::Rcpt(0);
        tx.outstanding += 1;
        let id = tx.id;
        self.send_command(&mail, None, Expect::Mail(id), now);
        self.open_transaction = Some(id);
        if !pipelining {
            return true;
        }
        // RFC 2920: MAIL, every RCPT and DATA go in one flight.
        while let Step::Rcpt(_) | Step::AfterRcpts = self.txs[idx].step {
            if !self.advance_wire(now) {
                break;
            }
        }
        true
    }

    fn finish_data_body(&mut self, idx: usize, now: Instant) -> bool {
        let tx = &mut self.txs[idx];
        if !tx.caller_done {
            return false;
        }
        if let Err(err) = tx.encoder.finish(&mut self.out) {
            let _ = self.body_error(idx, err.to_string());
            return true;
        }
        let tx = &mut self.txs[idx];
        if let Some(err) = tx.seven_bit_violation() {
            self.fail_tx(idx, err);
            self.close_mid_body();
            return true;
        }
        let summary = format!("<message body, {} bytes>", tx.encoder.bytes_out().saturating_sub(3));
        let id = tx.id;
        tx.end_sent = true;
        tx.wire_ended = true;
        tx.outstanding += 1;
        self.end_of_data_sent(id);
        self.transcript(Direction::Client, summary);
        self.transcript(Direction::Client, ".".to_string());
        self.expect(Expect::Final(id), now + self.config.timeouts.data_end);
        true
    }

    fn send_bdat_chunks(&mut self, idx: usize, now: Instant) -> bool {
        if !self.can_send_command() {
            return false;
        }
        let chunk_size = self.config.limits.bdat_chunk_size;
        let tx = &mut self.txs[idx];
        if !tx.raw.is_empty() {
            let raw = std::mem::take(&mut tx.raw);
            if let Err(err) = tx.encoder.encode(&raw, &mut tx.chunk) {
                let _ = self.body_error(idx, err.to_string());
                return true;
            }
        }
        let tx = &mut self.txs[idx];
        if tx.caller_done && !tx.end_sent {
            if let Err(err) = tx.encoder.finish(&mut tx.chunk) {
                let _ = self.body_error(idx, err.to_string());
                return true;
            }
            if let Some(err) = tx.seven_bit_violation() {
                self.fail_tx(idx, err);
                self.end_wire(idx);
                return true;
            }
        }
        let tx = &mut self.txs[idx];
        let last = tx.caller_done && tx.chunk.len() <= chunk_size;
        if !last && tx.chunk.len() < chunk_size {
            return false;
        }
        let size = tx.chunk.len().min(chunk_size);
        let id = tx.id;
        let line = if last {
            format!("BDAT {size} LAST")
        } else {
            format!("BDAT {size}")
        };
        tx.outstanding += 1;
        if last {
            tx.end_sent = true;
            tx.wire_ended = true;
        }
        let body: Vec<u8> = tx.chunk.drain(..size).collect();
        let (expect, deadline) = if last {
            (Expect::Final(id), now + self.config.timeouts.data_end)
        } else {
            (Expect::Bdat(id), now + self.config.timeouts.command)
        };
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(&body);
        self.transcript(Direction::Client, format!("{line} <{size} bytes of message data>"));
        self.expect(expect, deadline);
        true
    }

    /// Stops sending a failed transaction. The server may still hold it
    /// (`open_transaction` stays set), so the next MAIL is preceded by RSET.
    fn end_wire(&mut self, idx: usize) -> bool {
        let tx = &mut self.txs[idx];
        tx.wire_ended = true;
        tx.raw = Vec::new();
        tx.chunk = Vec::new();
        true
    }

    /// The end of DATA went out: RFC 5321 §4.1.1.4 has the server clear the
    /// transaction there, whatever its reply, so the next MAIL needs no RSET.
    fn end_of_data_sent(&mut self, id: MessageId) {
        if self.open_transaction == Some(id) {
            self.open_transaction = None;
        }
    }

    /// Fails a message whose body cannot be sent and returns its error.
    /// The transaction may be gone afterwards (DATA ends the connection).
    fn body_error(&mut self, idx: usize, message: String) -> SmtpError {
        let err = SmtpError::new(ErrorCode::Message, Phase::Data, format!("the message cannot be sent as it is: {message}"))
            .with_hint("wasmtp's message builder encodes long lines for you; for raw messages, wrap lines or use quoted-printable/base64.");
        self.fail_tx(idx, err.clone());
        let failure = self.txs[idx].failure.clone().unwrap_or(err);
        match self.framing() {
            Framing::Data if self.txs[idx].step == Step::Body => self.close_mid_body(),
            _ => {
                self.end_wire(idx);
            }
        }
        failure
    }

    /// DATA cannot be cancelled: ending it would deliver a truncated
    /// message, so the only safe way out is to drop the connection.
    fn close_mid_body(&mut self) {
        let err = SmtpError::new(
            ErrorCode::Closed,
            Phase::Data,
            "the connection was dropped to abandon a message in the middle of DATA, so that no truncated copy is delivered.",
        )
        .retryable(true);
        self.fail_connection(err, false);
    }

    fn send_command(&mut self, line: &str, redacted: Option<&str>, expect: Expect, now: Instant) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.transcript(Direction::Client, redacted.unwrap_or(line).to_string());
        let deadline = now + self.timeout_for(expect);
        self.expect(expect, deadline);
    }

    fn expect(&mut self, expect: Expect, deadline: Instant) {
        self.pending.push_back(Pending { expect, deadline });
    }

    fn can_send_command(&self) -> bool {
        if self.pipelining() {
            self.pending.iter().all(|p| p.expect.allows_pipelining_after())
        } else {
            self.pending.is_empty()
        }
    }

    fn pipelining(&self) -> bool {
        self.config.use_pipelining && self.caps.as_ref().is_some_and(|c| c.pipelining)
    }

    fn framing(&self) -> Framing {
        if self.config.use_chunking && self.caps.as_ref().is_some_and(|c| c.chunking) {
            Framing::Bdat
        } else {
            Framing::Data
        }
    }

    // ----- Bookkeeping --------------------------------------------------------------

    fn wire_tx(&self) -> Option<&Transaction> {
        self.txs.iter().find(|t| !t.wire_ended)
    }

    fn tx_index(&self, id: MessageId) -> Option<usize> {
        self.txs.iter().position(|t| t.id == id)
    }

    fn check_body_target(&self, id: MessageId) -> Result<(), SmtpError> {
        let Some(tx) = self.txs.iter().find(|t| t.id == id) else {
            return Err(SmtpError::input(
                Phase::Data,
                format!("message {} is not queued on this connection.", id.0),
            ));
        };
        if let Some(err) = &tx.failure {
            return Err(err.clone());
        }
        if tx.caller_done {
            return Err(SmtpError::input(
                Phase::Data,
                "the body of this message was already ended.",
            ));
        }
        Ok(())
    }

    fn fail_tx(&mut self, idx: usize, err: SmtpError) {
        let tx = &mut self.txs[idx];
        if tx.failure.is_none() && !tx.reported {
            tx.failure = Some(err.clone());
            tx.reported = true;
            self.events.push_back(Event::Failed(tx.id, err));
        }
    }

    fn reap_transactions(&mut self) {
        self.txs.retain(|t| !(t.reported && t.wire_ended && t.outstanding == 0));
    }

    /// Ends the connection: every unfinished message fails with what is
    /// known about it, then `Closed(Some(err))`.
    fn fail_connection(&mut self, err: SmtpError, send_quit: bool) {
        if self.state == State::Closed {
            return;
        }
        // When an earlier message's final reply was awaited, the error is
        // about that message; the ones behind it get a sentence of their own.
        let awaiting_final = self.txs.iter().any(|t| t.end_sent && !t.reported);
        for idx in 0..self.txs.len() {
            let tx = &self.txs[idx];
            if tx.reported {
                continue;
            }
            let mut tx_err = err.clone();
            if tx.end_sent {
                // Only here can the server hold the message without having said so.
                tx_err.delivery_state = DeliveryState::Unknown;
                tx_err.phase = Phase::Data;
                tx_err.hint = Some(
                    "the whole message was sent but the server never confirmed it: it may or may not have been accepted. Check the recipient's mailbox before resending."
                        .to_string(),
                );
            } else {
                // Its end of data never went out: the server cannot have it,
                // whatever the connection's own error says.
                tx_err.delivery_state = DeliveryState::NotSent;
                if tx.step != Step::Mail {
                    tx_err.phase = tx.phase();
                }
                if awaiting_final {
                    tx_err.message = format!(
                        "this message was not sent: the connection ended ({}) while an earlier message's final reply was awaited.",
                        err.code
                    );
                    tx_err.hint = Some("the server never received this message; resending it is safe.".to_string());
                }
            }
            self.fail_tx(idx, tx_err);
        }
        if send_quit {
            self.out.extend_from_slice(b"QUIT\r\n");
            self.transcript(Direction::Client, "QUIT".to_string());
        }
        self.finish_closed(Some(err));
    }

    fn finish_closed(&mut self, err: Option<SmtpError>) {
        if self.state == State::Closed {
            return;
        }
        if err.is_none() {
            // A clean close can still leave messages that never went out.
            let leftover = SmtpError::new(
                ErrorCode::Closed,
                Phase::Quit,
                "the connection closed before this message was sent.",
            )
            .retryable(true);
            for idx in 0..self.txs.len() {
                self.fail_tx(idx, leftover.clone());
            }
        }
        self.state = State::Closed;
        self.pending.clear();
        self.txs.clear();
        self.wait_deadline = None;
        self.port_probe = PortProbe::Off;
        self.events.push_back(Event::Closed(err));
    }

    fn current_phase(&self) -> Phase {
        if let Some(front) = self.pending.front() {
            return front.expect.phase();
        }
        match self.state {
            State::Connecting => Phase::Connect,
            State::TlsHandshake => {
                if self.starttls_handshake {
                    Phase::StartTls
                } else {
                    Phase::Tls
                }
            }
            State::Quitting | State::Closed => Phase::Quit,
            State::Setup | State::Ready => self.wire_tx().map_or(Phase::Mail, |t| t.phase()),
        }
    }

    fn timeout_for(&self, expect: Expect) -> Duration {
        let t = &self.config.timeouts;
        match expect {
            Expect::Greeting => t.greeting,
            Expect::Final(_) => t.data_end,
            _ => t.command,
        }
    }

    fn timeout_error(&self, phase: Phase, expect: Option<Expect>) -> SmtpError {
        let t = &self.config.timeouts;
        let (waited, what, hint) = match (phase, expect) {
            (Phase::Connect, _) => (
                t.connect,
                format!("could not connect to {}:{}", self.config.host, self.config.port),
                "the host may be down, or a firewall or the hosting provider may block outbound SMTP ports; try port 587 or 465, or 2525 if the provider offers it.".to_string(),
            ),
            (Phase::Tls | Phase::StartTls, None) => (
                t.tls_handshake,
                "the TLS handshake did not finish".to_string(),
                if self.starttls_handshake {
                    "the server accepted STARTTLS but never completed the handshake; try security: 'tls' on port 465.".to_string()
                } else {
                    "the server did not answer the TLS handshake: if this port expects a plaintext greeting (587, 25), use security: 'starttls'.".to_string()
                },
            ),
            (_, Some(Expect::Greeting)) => (
                t.greeting,
                format!("{}:{} accepted the connection but sent no greeting", self.config.host, self.config.port),
                tls::silent_greeting_hint(self.config.port, self.config.security),
            ),
            (_, Some(Expect::Final(_))) => (
                t.data_end,
                "the server did not confirm the message after its end".to_string(),
                "the message may or may not have been accepted; check before resending.".to_string(),
            ),
            _ => (
                t.command,
                format!("the server did not answer during {phase}"),
                "the server or the network stalled; try again later.".to_string(),
            ),
        };
        SmtpError::new(
            ErrorCode::TimedOut,
            phase,
            format!("{what} within {}.", crate::time::describe(waited)),
        )
        .with_hint(hint)
        .retryable(true)
    }

    fn transcript(&mut self, dir: Direction, text: String) {
        self.events.push_back(Event::Transcript(TranscriptLine { dir, text }));
    }
}

fn starttls_missing_hint(port: u16) -> String {
    match port {
        465 => "port 465 uses TLS from the first byte: use security: 'tls'.".to_string(),
        25 => "port 25 often lacks STARTTLS on internal relays: use the submission port 587 (STARTTLS) or 465 (TLS). Only if you accept plaintext, use security: 'opportunistic'.".to_string(),
        _ => "use port 465 with security: 'tls' if the server offers it; if something on the network strips STARTTLS, do not downgrade — fix the path. Only for a trusted local server, use security: 'none'.".to_string(),
    }
}

#[cfg(test)]
mod tests;
