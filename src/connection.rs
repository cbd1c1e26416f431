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
use crate::auth::{
    AuthStep, Credentials, Mechanism, SaslClient, TokenRenewal, choose_mechanism, renewed_credentials,
    token_provider_error,
};
use crate::body::{BodyEncoder, Framing};
use crate::capabilities::Capabilities;
use crate::config::{Config, Protocol, Security};
use crate::envelope::{Envelope, build_commands};
use crate::error::{Phase, SmtpError};
use crate::event::{Direction, Event, MessageId, SessionInfo, TranscriptLine};
use crate::reply::{Reply, ReplyParser};
use crate::time::{Duration, Instant};
use crate::tls::{self, TlsFailure, TlsInfo};

mod outcome;
mod port_probe;
mod timer;
mod transaction;

pub use outcome::connect_error;
use outcome::{Unfinished, Wait, data_error, mail_error, nested_mail_error, recipients_error};
pub use port_probe::client_hello as port_probe_client_hello;
use port_probe::{PortProbe, ProbeAnswer};
use timer::{Timer, Timers};
use transaction::{MailAnswer, Outcome, Step, Transaction};

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

/// Where the session is, with what each stage has to remember; [`State`]
/// is its public summary.
#[derive(Debug)]
enum Stage {
    Connecting,
    Handshake(Handshake),
    /// `tls_unconfirmed`: TLS was reported up by a host that cannot confirm
    /// the handshake (see `tls_established_unconfirmed`), and nothing has
    /// arrived since.
    Setup {
        tls_unconfirmed: bool,
    },
    Ready,
    Quitting,
    Closed,
}

/// A TLS handshake the host is running.
#[derive(Debug)]
enum Handshake {
    /// TLS from the first byte, with the bytes that arrived meanwhile (a
    /// plaintext greeting among them names a port mix-up).
    Implicit { early_bytes: Vec<u8> },
    /// After the server's 220 to STARTTLS.
    StartTls,
}

/// A command the user asked for besides messages, sent once every message
/// queued before it is on the wire. QUIT replaces a NOOP not yet sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Noop,
    Quit,
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

/// One client connection. See the module documentation for the protocol
/// between the engine and its host.
pub struct Connection {
    config: Config,
    stage: Stage,
    parser: ReplyParser,
    out: Vec<u8>,
    events: VecDeque<Event>,
    /// Replies awaited, oldest first; the `Reply` timer runs for the first.
    pending: VecDeque<Expect>,
    txs: VecDeque<Transaction>,
    next_message: u64,
    timers: Timers,
    /// Without TLS, silence before the greeting: is this a TLS port?
    port_probe: PortProbe,
    greeting: Option<Reply>,
    caps: Option<Capabilities>,
    /// The plaintext EHLO's capabilities, after a STARTTLS upgrade. Never
    /// used for decisions; reported for diagnostics.
    caps_before_tls: Option<Capabilities>,
    tls: Option<TlsInfo>,
    sasl: Option<SaslClient>,
    auth_method: Option<Mechanism>,
    /// Whether a refused OAuth2 token was (or is being) renewed.
    token_renewal: TokenRenewal,
    /// The message whose MAIL FROM was written last, while the server may
    /// still hold its transaction at the end of what was written: the next
    /// MAIL FROM is then preceded by RSET (see `start_transaction`). `None`
    /// once RSET, an end of DATA or a 2xx to BDAT LAST (or a refused MAIL)
    /// shows the server holds none.
    open_transaction: Option<MessageId>,
    /// NOOP or QUIT the user asked for, not sent yet.
    requested: Option<Verb>,
}

impl Connection {
    /// A connection that waits for the host to open the socket. Fails with
    /// `EINPUT` when the configuration itself is unusable.
    pub fn new(config: Config, now: Instant) -> Result<Connection, SmtpError> {
        validate_ehlo_name(&config.client_name)?;
        if config.host.is_empty() || config.host.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(outcome::invalid_host(&config.host));
        }
        if config.limits.max_in_flight == 0
            || config.limits.bdat_chunk_size == 0
            || config.limits.max_buffered_body == 0
        {
            return Err(outcome::zero_limits());
        }
        let mut timers = Timers::default();
        timers.set(Timer::Connect, now + config.timeouts.connect);
        Ok(Connection {
            parser: ReplyParser::new(config.limits.reply),
            config,
            stage: Stage::Connecting,
            out: Vec::new(),
            events: VecDeque::new(),
            pending: VecDeque::new(),
            txs: VecDeque::new(),
            next_message: 1,
            timers,
            port_probe: PortProbe::Off,
            greeting: None,
            caps: None,
            caps_before_tls: None,
            tls: None,
            sasl: None,
            auth_method: None,
            token_renewal: TokenRenewal::default(),
            open_transaction: None,
            requested: None,
        })
    }

    // ----- What the host reports -------------------------------------------

    /// The TCP connection is open.
    pub fn connected(&mut self, now: Instant) {
        if self.state() != State::Connecting {
            return;
        }
        if self.config.security == Security::Tls {
            let early_bytes = Vec::new();
            self.begin_handshake(Handshake::Implicit { early_bytes }, now);
        } else {
            self.await_greeting(now);
            self.arm_port_probe(now);
        }
    }

    /// The TCP connection could not be opened; `detail` is the host's text.
    pub fn connect_failed(&mut self, detail: &str, _now: Instant) {
        if self.state() == State::Closed {
            return;
        }
        let err = connect_error(&self.config.host, self.config.port, detail);
        self.fail_connection(err, false);
    }

    /// The TLS handshake the engine asked for with `Event::StartTls` finished.
    pub fn tls_established(&mut self, info: TlsInfo, now: Instant) {
        if self.state() != State::TlsHandshake {
            return;
        }
        if let Some(too_old) = tls::below_min_version(&info.version, self.config.min_tls_version) {
            return self.tls_failed(too_old, now);
        }
        self.timers.stop(Timer::Handshake);
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
        if self.after_starttls() {
            // RFC 3207 §4.2: everything learned before TLS is forgotten
            // (kept aside only to report what the plaintext EHLO offered).
            self.caps_before_tls = self.caps.take();
            self.stage = Stage::Setup { tls_unconfirmed: false };
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
        let was_handshaking = self.state() == State::TlsHandshake;
        self.tls_established(info, now);
        if let Stage::Setup { tls_unconfirmed } = &mut self.stage {
            *tls_unconfirmed = was_handshaking;
        }
    }

    /// Bytes arrived over TLS: the handshake is confirmed.
    fn confirm_tls(&mut self) {
        if let Stage::Setup { tls_unconfirmed } = &mut self.stage {
            *tls_unconfirmed = false;
        }
    }

    fn tls_unconfirmed(&self) -> bool {
        matches!(self.stage, Stage::Setup { tls_unconfirmed: true })
    }

    /// Whether the TLS handshake under way, or else the last one, came
    /// after STARTTLS (without TLS from the first byte, every one does).
    fn after_starttls(&self) -> bool {
        match &self.stage {
            Stage::Handshake(handshake) => matches!(handshake, Handshake::StartTls),
            _ => self.tls.is_some() && self.config.security != Security::Tls,
        }
    }

    /// The first read or write after an unconfirmed handshake failed: the
    /// handshake did. The host's text may name the cause; when it does not,
    /// a refused certificate is by far the likeliest.
    fn unconfirmed_tls_failed(&mut self, detail: &str, now: Instant) {
        self.confirm_tls();
        self.tls_failed(outcome::unconfirmed_handshake_failure(detail), now);
    }

    /// The TLS handshake failed.
    pub fn tls_failed(&mut self, failure: TlsFailure, _now: Instant) {
        if self.state() == State::Closed {
            return;
        }
        let err = tls::failure_error(&failure, &self.config.host, self.config.port, self.after_starttls());
        self.fail_connection(err, false);
    }

    /// Bytes arrived from the server (already decrypted when TLS is up).
    pub fn receive(&mut self, mut data: &[u8], now: Instant) {
        if self.state() == State::Closed || data.is_empty() {
            return;
        }
        self.confirm_tls();
        if self.state() == State::Connecting {
            // Bytes prove the connection is open even if the host forgot to say so.
            self.connected(now);
        }
        if self.state() == State::TlsHandshake {
            self.bytes_during_handshake(data);
            return;
        }
        self.stop_port_probe();
        while !data.is_empty() && self.state() != State::Closed {
            match self.parser.parse(data) {
                Err(err) => {
                    let phase = self.current_phase();
                    self.fail_connection(outcome::invalid_reply(phase, err), false);
                    return;
                }
                Ok((consumed, reply)) => {
                    data = &data[consumed.min(data.len())..];
                    if let Some(reply) = reply {
                        self.on_reply(reply, now);
                        if self.state() == State::TlsHandshake && (!data.is_empty() || self.parser.has_partial()) {
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
        if self.tls_unconfirmed() {
            return self.unconfirmed_tls_failed("the server closed the connection", now);
        }
        match self.state() {
            State::Closed => {}
            State::Quitting => self.finish_closed(None),
            _ => {
                let phase = self.current_phase();
                let idle = self.pending.is_empty() && self.txs.is_empty() && self.state() == State::Ready;
                let err = outcome::closed_by_server(phase, idle);
                self.fail_connection(err, false);
            }
        }
    }

    /// What the second connection of an `Event::PortProbe` received first
    /// (up to a few bytes; empty when nothing came or it could not connect).
    /// A TLS answer ends this connection with `ETLS_PORT_MISMATCH`; anything
    /// else leaves it waiting for its greeting.
    pub fn port_probe_result(&mut self, first_bytes: &[u8], _now: Instant) {
        if self.port_probe != PortProbe::Asked || self.state() == State::Closed {
            return;
        }
        self.stop_port_probe();
        if port_probe::judge(first_bytes) == ProbeAnswer::Tls {
            let detail = "a second connection to the same port that started a TLS handshake was answered with TLS";
            self.fail_connection(outcome::port_mismatch(&self.config, detail), false);
        }
    }

    /// Call when `poll_timeout` has passed: each timer that expired is
    /// handled in turn, until one of them ends the connection.
    pub fn handle_timeout(&mut self, now: Instant) {
        while self.state() != State::Closed {
            let Some(timer) = self.timers.take_expired(now) else {
                return;
            };
            self.on_timer(timer);
        }
    }

    fn on_timer(&mut self, timer: Timer) {
        match timer {
            Timer::PortProbe | Timer::PortGuess if !self.awaiting_greeting() => self.stop_port_probe(),
            Timer::PortProbe => {
                self.port_probe = PortProbe::Asked;
                let client_hello = port_probe::client_hello(&self.config.host);
                self.events.push_back(Event::PortProbe { client_hello });
            }
            Timer::PortGuess => {
                let err = outcome::port_mismatch(&self.config, "port 465 is the TLS port by convention");
                self.fail_connection(err, false);
            }
            Timer::Connect => {
                let err = outcome::timed_out(&self.config, Wait::Connect);
                self.fail_connection(err, false);
            }
            Timer::Handshake => {
                let wait = Wait::Handshake {
                    after_starttls: self.after_starttls(),
                };
                let err = outcome::timed_out(&self.config, wait);
                self.fail_connection(err, false);
            }
            Timer::Reply => {
                let Some(&expect) = self.pending.front() else { return };
                if expect == Expect::Quit {
                    self.transcript(Direction::Client, "(no reply to QUIT; closing)".to_string());
                    self.finish_closed(None);
                    return;
                }
                let err = outcome::timed_out(&self.config, Wait::Reply(expect));
                self.fail_connection(err, false);
            }
            Timer::Token => {
                // The server is still there: it gets its QUIT.
                let err = outcome::timed_out(&self.config, Wait::Token);
                self.fail_connection(err, true);
            }
        }
    }

    /// The socket failed under the engine: a read or write error, or a
    /// write that made no progress for the command time-out (the server
    /// stopped reading). `detail` is the host's description.
    pub fn socket_failed(&mut self, detail: &str, write_stalled: bool, now: Instant) {
        if self.state() == State::Closed {
            return;
        }
        if self.tls_unconfirmed() && !write_stalled {
            return self.unconfirmed_tls_failed(detail, now);
        }
        let phase = self.current_phase();
        let err = outcome::socket_failed(&self.config, phase, detail, write_stalled);
        self.fail_connection(err, false);
    }

    // ----- What the user asks for -------------------------------------------

    /// Queues a message. Its body is pushed with `write_body` / `end_body`;
    /// its outcome comes back as `Event::Delivered` or `Event::Failed` with
    /// the returned id. Input errors are returned at once and nothing is sent.
    pub fn submit(&mut self, envelope: Envelope, now: Instant) -> Result<MessageId, SmtpError> {
        if matches!(self.state(), State::Closed | State::Quitting) || self.requested == Some(Verb::Quit) {
            return Err(outcome::closing());
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
        if tx.id != id || tx.outcome.is_failed() || tx.caller_done {
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
            // Straight onto the wire, unless bytes from before the 354 are
            // still waiting to go first.
            (Step::Body, Framing::Data) if tx.raw.is_empty() => {
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
        if self.state() != State::Closed {
            // A QUIT asked for already goes instead (nothing follows QUIT).
            self.requested.get_or_insert(Verb::Noop);
            self.flush_work(now);
        }
    }

    /// Ends the session gracefully: queued messages are still sent, then QUIT.
    pub fn close(&mut self, now: Instant) {
        match self.state() {
            State::Closed | State::Quitting => {}
            State::Connecting => self.finish_closed(None),
            _ => {
                self.requested = Some(Verb::Quit);
                self.flush_work(now);
            }
        }
    }

    /// Ends the session at once: queued messages fail with `ECLOSED`.
    pub fn abort(&mut self) {
        if self.state() != State::Closed {
            let phase = self.current_phase();
            let err = outcome::aborted(phase);
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
        self.timers.next()
    }

    // ----- Queries -----------------------------------------------------------

    pub fn state(&self) -> State {
        match self.stage {
            Stage::Connecting => State::Connecting,
            Stage::Handshake(_) => State::TlsHandshake,
            Stage::Setup { .. } => State::Setup,
            Stage::Ready => State::Ready,
            Stage::Quitting => State::Quitting,
            Stage::Closed => State::Closed,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.state() == State::Closed
    }

    /// Ready and nothing queued or awaited: a pool may hand it new work.
    pub fn is_idle(&self) -> bool {
        self.state() == State::Ready && self.txs.is_empty() && self.pending.is_empty()
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

    fn begin_handshake(&mut self, handshake: Handshake, now: Instant) {
        self.stage = Stage::Handshake(handshake);
        self.timers.stop(Timer::Connect);
        self.timers
            .set(Timer::Handshake, now + self.config.timeouts.tls_handshake);
        self.events.push_back(Event::StartTls {
            server_name: self.config.host.clone(),
        });
    }

    fn await_greeting(&mut self, now: Instant) {
        self.stage = Stage::Setup { tls_unconfirmed: false };
        self.timers.stop(Timer::Connect);
        self.timers.stop(Timer::Handshake);
        self.expect(Expect::Greeting, now);
    }

    fn bytes_during_handshake(&mut self, data: &[u8]) {
        let err = match &mut self.stage {
            Stage::Handshake(Handshake::Implicit { early_bytes }) => {
                // A host whose TLS layer hands back the raw bytes lets the
                // engine tell a plaintext greeting (a 587/25 port) from
                // garbage. Wait for the four bytes that decide it.
                early_bytes.extend_from_slice(data);
                let could_be_greeting = early_bytes.iter().take(3).all(u8::is_ascii_digit);
                if early_bytes.len() < 4 && could_be_greeting {
                    return;
                }
                outcome::bytes_before_handshake(&self.config, false, early_bytes)
            }
            _ => outcome::bytes_before_handshake(&self.config, true, data),
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
                let err = outcome::starttls_missing(&self.config);
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
            Ok(mechanism) => self.start_sasl(mechanism, &credentials, now),
        }
    }

    fn start_sasl(&mut self, mechanism: Mechanism, credentials: &Credentials, now: Instant) {
        let mut sasl = SaslClient::new(mechanism, credentials, &self.config.host, self.config.port);
        let first = sasl.start();
        self.sasl = Some(sasl);
        self.auth_method = Some(mechanism);
        self.send_command(&first.line, Some(&first.redacted), Expect::Auth, now);
    }

    /// A plaintext connection opened: if it stays silent, ask the host for
    /// a probe (and on port 465 name the mix-up after the full silence).
    fn arm_port_probe(&mut self, now: Instant) {
        let (probe_at, guess_at) = port_probe::schedule(now, self.config.timeouts.port_probe, self.config.port);
        self.port_probe = PortProbe::Armed;
        self.timers.set(Timer::PortProbe, probe_at);
        if let Some(guess_at) = guess_at {
            self.timers.set(Timer::PortGuess, guess_at);
        }
    }

    fn stop_port_probe(&mut self) {
        self.port_probe = PortProbe::Off;
        self.timers.stop(Timer::PortProbe);
        self.timers.stop(Timer::PortGuess);
    }

    fn awaiting_greeting(&self) -> bool {
        self.pending.front() == Some(&Expect::Greeting)
    }

    /// The error AUTH would end with over TLS, when none of the mechanisms
    /// this plaintext EHLO offers fits the credentials given.
    fn mechanisms_unusable_even_over_tls(&self) -> Option<SmtpError> {
        let credentials = self.config.credentials.as_ref()?;
        let offered = &self.caps.as_ref()?.auth;
        choose_mechanism(offered, credentials, self.config.auth_mechanism, true).err()
    }

    /// Why credentials may not be sent on this link, if they may not: it is
    /// unencrypted, or encrypted with a certificate nobody verified.
    fn insecure_auth_error(&self) -> Option<SmtpError> {
        match &self.tls {
            None => {
                let offers_starttls = self.caps.as_ref().is_some_and(|c| c.starttls);
                let unusable_over_tls = self.mechanisms_unusable_even_over_tls();
                Some(outcome::auth_unencrypted(
                    &self.config,
                    offers_starttls,
                    unusable_over_tls,
                ))
            }
            Some(tls) if !tls.authorized => Some(outcome::auth_unverified(&self.config, tls)),
            Some(_) => None,
        }
    }

    fn become_ready(&mut self, now: Instant) {
        self.stage = Stage::Ready;
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
        let Some(expect) = self.pending.pop_front() else {
            self.unsolicited(reply);
            return;
        };
        // Progress: the next awaited reply gets a fresh allowance.
        self.restart_reply_timer(now);
        if reply.code == 221 && expect != Expect::Quit {
            // 221 is "closing": success for QUIT, the end of the session anywhere else.
            let err = outcome::session_ended(expect.phase(), &reply);
            self.fail_connection(err, false);
            return;
        }
        let closing = reply.code == 421;
        let closing_reply = closing.then(|| reply.clone());
        match expect {
            Expect::Greeting => self.on_greeting(reply, now),
            Expect::Ehlo => self.on_ehlo(reply, now),
            Expect::Helo => self.on_helo(reply, now),
            Expect::StartTls => self.on_starttls(reply, now),
            Expect::Auth => self.on_auth(reply, now),
            Expect::Rset | Expect::Noop => {
                if !reply.is_positive() && !closing {
                    let verb = if expect == Expect::Rset { "RSET" } else { "NOOP" };
                    let err = outcome::refused(verb, expect.phase(), &reply);
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
        if let Some(reply) = closing_reply.filter(|_| self.state() != State::Closed) {
            let err = outcome::server_closing(expect.phase(), &reply);
            self.fail_connection(err, false);
        }
        self.reap_transactions();
    }

    fn unsolicited(&mut self, reply: Reply) {
        let phase = self.current_phase();
        let err = outcome::unsolicited(phase, &reply);
        self.fail_connection(err, false);
    }

    fn on_greeting(&mut self, reply: Reply, now: Instant) {
        self.stop_port_probe();
        if reply.code == 220 {
            self.greeting = Some(reply);
            self.send_hello(now);
            return;
        }
        let err = outcome::greeting_refused(&reply);
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
        let err = outcome::ehlo_refused(&self.config, self.tls.is_some(), &reply);
        self.fail_connection(err, true);
    }

    fn on_helo(&mut self, reply: Reply, now: Instant) {
        if reply.is_positive() {
            self.caps = Some(Capabilities::from_helo(&reply));
            self.after_hello(now);
        } else if reply.code != 421 {
            let err = outcome::helo_refused(&reply);
            self.fail_connection(err, true);
        }
    }

    fn on_starttls(&mut self, reply: Reply, now: Instant) {
        if reply.code == 220 {
            self.begin_handshake(Handshake::StartTls, now);
            return;
        }
        if reply.code == 421 {
            return;
        }
        if self.config.security == Security::StartTls {
            let err = outcome::starttls_refused(&reply);
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
                let mechanism = sasl.mechanism();
                self.sasl = None;
                if reply.code == 421 {
                    return;
                }
                let renewable = self.config.renew_refused_token;
                match self.token_renewal.after_failure(renewable, mechanism, &reply, err) {
                    None => self.await_fresh_token(now),
                    Some(err) => self.fail_connection(err, true),
                }
            }
        }
    }

    /// The server refused the token: the host is asked for a fresh one,
    /// within the command time-out.
    fn await_fresh_token(&mut self, now: Instant) {
        self.transcript(Direction::Client, "(token refused; asking for a fresh one)".to_string());
        self.events.push_back(Event::AccessTokenRefused);
        self.timers.set(Timer::Token, now + self.config.timeouts.command);
    }

    /// The fresh OAuth2 token an `Event::AccessTokenRefused` asked for: AUTH
    /// runs again with it. Ignored when no token is awaited.
    pub fn supply_access_token(&mut self, token: &str, now: Instant) {
        if self.state() != State::Setup {
            return;
        }
        let Some(mechanism) = self.token_renewal.take_awaited() else {
            return;
        };
        self.timers.stop(Timer::Token);
        let user = self.config.credentials.as_ref().map_or("", Credentials::user);
        match renewed_credentials(user, token) {
            Ok(credentials) => self.start_sasl(mechanism, &credentials, now),
            Err(err) => self.fail_connection(err, true),
        }
    }

    /// The host could not fetch the token an `Event::AccessTokenRefused`
    /// asked for: the connection ends with `EAUTH`, in the host's words.
    pub fn access_token_failed(&mut self, detail: &str, hint: Option<&str>, retryable: bool, _now: Instant) {
        if self.state() == State::Setup && self.token_renewal.take_awaited().is_some() {
            self.timers.stop(Timer::Token);
            self.fail_connection(token_provider_error(detail, hint, retryable), true);
        }
    }

    fn on_mail(&mut self, id: MessageId, reply: Reply) {
        let Some(idx) = self.tx_index(id) else { return };
        let tx = &mut self.txs[idx];
        tx.outstanding -= 1;
        if reply.is_positive() {
            tx.mail = MailAnswer::Accepted;
            return;
        }
        tx.mail = MailAnswer::Refused;
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
        if tx.step != Step::EndSent {
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
        tx.mail = MailAnswer::IntoOpenTransaction(reply);
    }

    fn on_rcpt(&mut self, id: MessageId, index: usize, reply: Reply) {
        let Some(idx) = self.tx_index(id) else { return };
        let tx = &mut self.txs[idx];
        tx.outstanding -= 1;
        tx.rcpt_replies.push((index, reply));
        if tx.rcpt_replies.len() < tx.envelope.recipients.len()
            || tx.outcome.is_failed()
            || tx.joined_open_transaction().is_some()
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
            if !tx.outcome.is_failed() {
                // The body follows (what the caller gave so far goes first).
                tx.step = Step::Body;
                return;
            }
            if !tx.accepted_indexes().is_empty() {
                // The failed message has recipients on the server (its MAIL
                // met a transaction the server still held): an empty end of
                // data would deliver an empty message to them. Only dropping
                // the connection abandons DATA.
                let err = outcome::dropped_to_abandon_data();
                self.fail_connection(err, false);
                return;
            }
            // The server opened DATA for a transaction that already failed
            // (pipelined): end it empty; no accepted recipient can receive it.
            self.out.extend_from_slice(b".\r\n");
            self.transcript(Direction::Client, ".".to_string());
            let tx = &mut self.txs[idx];
            tx.outstanding += 1;
            tx.step = Step::EndSent;
            self.end_of_data_sent(id);
            self.expect(Expect::Final(id), now);
            return;
        }
        if reply.code < 400 {
            // Only 354 opens DATA. Any other non-failure reply means the
            // replies are out of step with the commands (a server that
            // answered one command twice), so nothing can be paired safely.
            let err = outcome::data_out_of_step(&reply);
            self.fail_connection(err, false);
            return;
        }
        if !tx.outcome.is_failed() {
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
        if reply.is_positive() || tx.outcome.is_failed() || tx.joined_open_transaction().is_some() {
            return;
        }
        let err = data_error(&reply, "the server refused a BDAT chunk");
        self.fail_tx(idx, err);
        self.end_wire(idx);
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
            self.pending.push_front(Expect::Final(id));
            self.restart_reply_timer(now);
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
        if let Some(mail_reply) = tx.joined_open_transaction() {
            let err = nested_mail_error(mail_reply, data_taken);
            self.fail_tx(idx, err);
            return;
        }
        if tx.outcome.is_failed() {
            return;
        }
        match tx.final_outcome(lmtp) {
            Ok(delivery) => {
                tx.outcome = Outcome::Delivered;
                self.events.push_back(Event::Delivered(id, delivery));
            }
            Err(err) => self.fail_tx(idx, err),
        }
    }

    // ----- Sending ----------------------------------------------------------------

    /// Sends whatever the state allows: transactions, then NOOP or QUIT.
    fn flush_work(&mut self, now: Instant) {
        if self.state() != State::Ready {
            return;
        }
        while self.state() == State::Ready && self.advance_wire(now) {}
        if self.state() != State::Ready || !self.txs.iter().all(|t| t.step.wire_ended()) {
            return;
        }
        match self.requested {
            Some(Verb::Quit) if self.can_send_command() => {
                self.requested = None;
                self.send_command("QUIT", None, Expect::Quit, now);
                self.stage = Stage::Quitting;
            }
            Some(Verb::Noop) if self.pending.is_empty() && self.txs.is_empty() => {
                self.requested = None;
                self.send_command("NOOP", None, Expect::Noop, now);
            }
            _ => {}
        }
    }

    /// Moves the transaction at the head of the wire one step; false when it
    /// has to wait (for a reply, the body, or room in the window).
    fn advance_wire(&mut self, now: Instant) -> bool {
        let Some(idx) = self.txs.iter().position(|t| !t.step.wire_ended()) else {
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
                if self.txs[idx].outcome.is_failed() {
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
                if self.txs[idx].outcome.is_failed() {
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
            // The 354 moves the step on.
            Step::AwaitGo => false,
            Step::Body => match framing {
                Framing::Data if !self.txs[idx].raw.is_empty() => {
                    // What the caller gave before the 354.
                    let tx = &mut self.txs[idx];
                    let raw = std::mem::take(&mut tx.raw);
                    if let Err(err) = tx.encoder.encode(&raw, &mut self.out) {
                        let _ = self.body_error(idx, err.to_string());
                    }
                    true
                }
                Framing::Data => self.finish_data_body(idx, now),
                Framing::Bdat if self.txs[idx].outcome.is_failed() => {
                    // MAIL or every RCPT failed before the whole body was
                    // there: the host stops feeding it, so end it here.
                    self.end_wire(idx)
                }
                Framing::Bdat => self.send_bdat_chunks(idx, now),
            },
            // Not on the wire any more: never found above.
            Step::EndSent | Step::Stopped => false,
        }
    }

    fn start_transaction(&mut self, idx: usize, framing: Framing, now: Instant) -> bool {
        let started = self
            .txs
            .iter()
            .filter(|t| t.step != Step::Mail && (t.outstanding > 0 || !t.step.wire_ended()))
            .count();
        if started >= self.config.limits.max_in_flight || !self.can_send_command() {
            return false;
        }
        let caps = self.caps.clone().unwrap_or_default();
        let commands = match build_commands(&self.txs[idx].envelope, &caps, self.tls.is_some()) {
            Ok(commands) => commands,
            Err(err) => {
                self.fail_tx(idx, err);
                self.txs[idx].step = Step::Stopped;
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
        tx.step = Step::EndSent;
        tx.outstanding += 1;
        self.end_of_data_sent(id);
        self.transcript(Direction::Client, summary);
        self.transcript(Direction::Client, ".".to_string());
        self.expect(Expect::Final(id), now);
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
        if tx.caller_done {
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
            tx.step = Step::EndSent;
        }
        let body: Vec<u8> = tx.chunk.drain(..size).collect();
        let expect = if last { Expect::Final(id) } else { Expect::Bdat(id) };
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(&body);
        self.transcript(Direction::Client, format!("{line} <{size} bytes of message data>"));
        self.expect(expect, now);
        true
    }

    /// Stops sending a failed transaction. The server may still hold it
    /// (`open_transaction` stays set), so the next MAIL is preceded by RSET.
    fn end_wire(&mut self, idx: usize) -> bool {
        let tx = &mut self.txs[idx];
        if !tx.step.wire_ended() {
            tx.step = Step::Stopped;
        }
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
        let err = outcome::unsendable_body(message);
        self.fail_tx(idx, err.clone());
        let failure = match &self.txs[idx].outcome {
            Outcome::Failed(failure) => failure.clone(),
            _ => err,
        };
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
        let err = outcome::dropped_mid_body();
        self.fail_connection(err, false);
    }

    fn send_command(&mut self, line: &str, redacted: Option<&str>, expect: Expect, now: Instant) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        self.transcript(Direction::Client, redacted.unwrap_or(line).to_string());
        self.expect(expect, now);
    }

    /// Awaits a reply to what was just sent at `now`.
    fn expect(&mut self, expect: Expect, now: Instant) {
        self.pending.push_back(expect);
        if self.pending.len() == 1 {
            self.restart_reply_timer(now);
        }
    }

    /// The reply now at the head of the queue gets its whole allowance from
    /// `now` (time is monotonic, so never less than it had when its command
    /// went out).
    fn restart_reply_timer(&mut self, now: Instant) {
        match self.pending.front() {
            Some(&expect) => self.timers.set(Timer::Reply, now + self.timeout_for(expect)),
            None => self.timers.stop(Timer::Reply),
        }
    }

    fn can_send_command(&self) -> bool {
        if self.pipelining() {
            self.pending.iter().all(|e| e.allows_pipelining_after())
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
        self.txs.iter().find(|t| !t.step.wire_ended())
    }

    fn tx_index(&self, id: MessageId) -> Option<usize> {
        self.txs.iter().position(|t| t.id == id)
    }

    fn check_body_target(&self, id: MessageId) -> Result<(), SmtpError> {
        let Some(tx) = self.txs.iter().find(|t| t.id == id) else {
            return Err(outcome::not_queued(id));
        };
        if let Outcome::Failed(err) = &tx.outcome {
            return Err(err.clone());
        }
        if tx.caller_done {
            return Err(outcome::body_already_ended());
        }
        Ok(())
    }

    fn fail_tx(&mut self, idx: usize, err: SmtpError) {
        let tx = &mut self.txs[idx];
        if tx.outcome.is_pending() {
            tx.outcome = Outcome::Failed(err.clone());
            self.events.push_back(Event::Failed(tx.id, err));
        }
    }

    fn reap_transactions(&mut self) {
        self.txs
            .retain(|t| t.outcome.is_pending() || !t.step.wire_ended() || t.outstanding > 0);
    }

    /// Ends the connection: every unfinished message fails with what is
    /// known about it, then `Closed(Some(err))`.
    fn fail_connection(&mut self, err: SmtpError, send_quit: bool) {
        if self.state() == State::Closed {
            return;
        }
        // When an earlier message's final reply was awaited, the error is
        // about that message; the ones behind it get a sentence of their own.
        let awaiting_final = self
            .txs
            .iter()
            .any(|t| t.step == Step::EndSent && t.outcome.is_pending());
        for idx in 0..self.txs.len() {
            let tx = &self.txs[idx];
            if !tx.outcome.is_pending() {
                continue;
            }
            let unfinished = if tx.step == Step::EndSent {
                Unfinished::EndSent
            } else {
                Unfinished::NotSent {
                    phase: (tx.step != Step::Mail).then(|| tx.phase()),
                    behind_final: awaiting_final,
                }
            };
            let tx_err = outcome::for_unfinished_message(&err, unfinished);
            self.fail_tx(idx, tx_err);
        }
        if send_quit {
            self.out.extend_from_slice(b"QUIT\r\n");
            self.transcript(Direction::Client, "QUIT".to_string());
        }
        self.finish_closed(Some(err));
    }

    fn finish_closed(&mut self, err: Option<SmtpError>) {
        if self.state() == State::Closed {
            return;
        }
        if err.is_none() {
            // A clean close can still leave messages that never went out.
            let leftover = outcome::closed_before_sent();
            for idx in 0..self.txs.len() {
                self.fail_tx(idx, leftover.clone());
            }
        }
        self.stage = Stage::Closed;
        self.pending.clear();
        self.txs.clear();
        self.timers.stop_all();
        self.port_probe = PortProbe::Off;
        self.events.push_back(Event::Closed(err));
    }

    fn current_phase(&self) -> Phase {
        if let Some(front) = self.pending.front() {
            return front.phase();
        }
        match self.stage {
            Stage::Connecting => Phase::Connect,
            Stage::Handshake(Handshake::StartTls) => Phase::StartTls,
            Stage::Handshake(Handshake::Implicit { .. }) => Phase::Tls,
            Stage::Quitting | Stage::Closed => Phase::Quit,
            Stage::Setup { .. } | Stage::Ready => self.wire_tx().map_or(Phase::Mail, |t| t.phase()),
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

    fn transcript(&mut self, dir: Direction, text: String) {
        self.events.push_back(Event::Transcript(TranscriptLine { dir, text }));
    }
}

#[cfg(test)]
mod tests;
