//! A scripted server for tests: plays a server's side of a conversation
//! byte by byte against an [`Engine`] (a [`Connection`] unless another is
//! given), with a fake clock and no sockets
//! (the quinn-proto way). Used by this crate's tests and the fuzz targets,
//! and usable by anyone testing code built on the engine.
//!
//! A script is plain text, one step a line:
//!
//! ```text
//! S: 220 mx.example.com ESMTP      server sends this line (CRLF added)
//! C: EHLO client.example.com       the client must have sent exactly this line next
//! TLS                              the client asked for TLS; complete the handshake
//! WAIT 3000                        the clock moves 3000 ms (time-outs fire)
//! EOF                              the server closes the connection
//! # comment
//! ```

use std::collections::VecDeque;

use crate::config::Config;
use crate::connection::Connection;
use crate::engine::Engine;
use crate::envelope::Envelope;
use crate::error::SmtpError;
use crate::event::{Delivery, Event, MessageId, SessionInfo};
use crate::time::{Duration, Instant};
use crate::tls::TlsInfo;

struct Body {
    id: MessageId,
    data: Vec<u8>,
    offset: usize,
}

/// An engine under test plus everything it said.
pub struct Harness<E: Engine = Connection> {
    pub conn: E,
    pub now: Instant,
    /// Every byte the client sent.
    pub sent: Vec<u8>,
    /// The same bytes, one entry per write (per `poll_transmit`): what a
    /// server without PIPELINING sees arrive at once.
    pub writes: Vec<Vec<u8>>,
    /// Every event the client emitted, in order.
    pub events: Vec<Event>,
    /// Feed server bytes one at a time (true) or in whole lines (false).
    pub bytewise: bool,
    unmatched: Vec<u8>,
    bodies: VecDeque<Body>,
    tls_requests_handled: usize,
}

impl Harness<Connection> {
    /// A connection to `config` whose TCP connection just opened at time 0.
    pub fn new(config: Config) -> Self {
        Harness::connect(Connection::new(config, Instant::from_millis(0)).expect("valid test configuration"))
    }

    /// A connection still waiting for its TCP connection.
    pub fn unconnected(config: Config) -> Self {
        Harness::unconnected_engine(Connection::new(config, Instant::from_millis(0)).expect("valid test configuration"))
    }
}

impl<E: Engine> Harness<E> {
    /// `engine` (created at time 0) whose TCP connection just opened.
    pub fn connect(engine: E) -> Self {
        let mut harness = Harness::unconnected_engine(engine);
        harness.conn.connected(harness.now);
        harness.pump();
        harness
    }

    /// `engine` (created at time 0), still waiting for its TCP connection.
    pub fn unconnected_engine(engine: E) -> Self {
        let now = Instant::from_millis(0);
        Harness {
            conn: engine,
            now,
            sent: Vec::new(),
            writes: Vec::new(),
            events: Vec::new(),
            bytewise: true,
            unmatched: Vec::new(),
            bodies: VecDeque::new(),
            tls_requests_handled: 0,
        }
    }

    /// Drains output and events, and pushes queued bodies as the engine
    /// makes room, the way a real driver does.
    pub fn pump(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(bytes) = self.conn.poll_transmit() {
                self.sent.extend_from_slice(&bytes);
                self.unmatched.extend_from_slice(&bytes);
                self.writes.push(bytes);
                progressed = true;
            }
            while let Some(event) = self.conn.poll_event() {
                if let Event::Failed(id, _) = &event {
                    self.bodies.retain(|b| b.id != *id);
                }
                self.events.push(event);
                progressed = true;
            }
            if let Some(wanted) = self.conn.wants_body() {
                if let Some(body) = self.bodies.iter_mut().find(|b| b.id == wanted) {
                    let n = self
                        .conn
                        .write_body(wanted, &body.data[body.offset..], self.now)
                        .unwrap_or(0);
                    body.offset += n;
                    if body.offset == body.data.len() {
                        let _ = self.conn.end_body(wanted, self.now);
                        self.bodies.retain(|b| b.id != wanted);
                        progressed = true;
                    }
                    progressed |= n > 0;
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// The server sends raw bytes.
    pub fn server_bytes(&mut self, bytes: &[u8]) {
        if self.bytewise {
            for byte in bytes {
                self.conn.receive(std::slice::from_ref(byte), self.now);
                self.pump();
            }
        } else {
            self.conn.receive(bytes, self.now);
            self.pump();
        }
    }

    /// The server sends one line (CRLF added).
    pub fn server(&mut self, line: &str) {
        self.server_bytes(format!("{line}\r\n").as_bytes());
    }

    /// Asserts the client sent exactly these bytes next.
    pub fn expect_client_bytes(&mut self, expected: &[u8]) {
        self.pump();
        assert!(
            self.unmatched.starts_with(expected),
            "client should have sent {:?}\nbut sent {:?}\ntranscript:\n{}",
            String::from_utf8_lossy(expected),
            String::from_utf8_lossy(&self.unmatched),
            self.transcript()
        );
        self.unmatched.drain(..expected.len());
    }

    /// Asserts the client sent exactly this line next.
    pub fn expect_client(&mut self, line: &str) {
        self.expect_client_bytes(format!("{line}\r\n").as_bytes());
    }

    /// Asserts the client sent nothing not yet matched.
    pub fn expect_silence(&mut self) {
        self.pump();
        assert!(
            self.unmatched.is_empty(),
            "client should be silent but sent {:?}\ntranscript:\n{}",
            String::from_utf8_lossy(&self.unmatched),
            self.transcript()
        );
    }

    /// Completes the TLS handshake the client asked for, with a verified certificate.
    pub fn tls_up(&mut self) {
        self.tls_up_with(TlsInfo {
            version: "TLSv1.3".into(),
            cipher: Some("TLS_AES_128_GCM_SHA256".into()),
            authorized: true,
            authorization_error: None,
        });
    }

    /// Completes the TLS handshake the client asked for, with these facts
    /// (e.g. a certificate the host did not verify).
    pub fn tls_up_with(&mut self, info: TlsInfo) {
        self.pump();
        let requests = self
            .events
            .iter()
            .filter(|e| matches!(e, Event::StartTls { .. }))
            .count();
        assert!(
            requests > self.tls_requests_handled,
            "the client did not ask for TLS\n{}",
            self.transcript()
        );
        self.tls_requests_handled = requests;
        self.conn
            .host_tls()
            .expect("an engine that asks for TLS takes the host's report")
            .tls_established(info, self.now);
        self.pump();
    }

    /// Moves the clock and fires the time-outs that are due.
    pub fn advance(&mut self, by: Duration) {
        let target = self.now + by;
        while let Some(deadline) = self.conn.poll_timeout() {
            if deadline > target {
                break;
            }
            self.now = self.now.max(deadline);
            self.conn.handle_timeout(self.now);
            self.pump();
        }
        self.now = target;
    }

    /// The server closes the connection.
    pub fn eof(&mut self) {
        self.conn.receive_eof(self.now);
        self.pump();
    }

    /// Submits a message and queues its body to be pushed as the engine asks.
    pub fn submit(&mut self, envelope: Envelope, body: &[u8]) -> MessageId {
        let id = self.conn.submit(envelope, self.now).expect("valid envelope");
        self.bodies.push_back(Body {
            id,
            data: body.to_vec(),
            offset: 0,
        });
        self.pump();
        id
    }

    /// Plays a script (see the module documentation).
    pub fn run(&mut self, script: &str) {
        for raw in script.lines() {
            let line = raw.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(text) = line.strip_prefix("S: ").or_else(|| (line == "S:").then_some("")) {
                self.server(text);
            } else if let Some(text) = line.strip_prefix("C: ").or_else(|| (line == "C:").then_some("")) {
                self.expect_client(text);
            } else if line == "TLS" {
                self.tls_up();
            } else if line == "EOF" {
                self.eof();
            } else if let Some(ms) = line.strip_prefix("WAIT ") {
                self.advance(Duration::from_millis(
                    ms.trim().parse().expect("WAIT takes milliseconds"),
                ));
            } else {
                panic!("unknown script line: {raw}");
            }
        }
    }

    /// The session info, once ready.
    pub fn ready(&self) -> Option<&SessionInfo> {
        self.events
            .iter()
            .find_map(|e| if let Event::Ready(info) = e { Some(info) } else { None })
    }

    /// The delivery of a message, once accepted.
    pub fn delivered(&self, id: MessageId) -> Option<&Delivery> {
        self.events.iter().find_map(|e| match e {
            Event::Delivered(i, d) if *i == id => Some(d),
            _ => None,
        })
    }

    /// The failure of a message, once failed.
    pub fn failure(&self, id: MessageId) -> Option<&SmtpError> {
        self.events.iter().find_map(|e| match e {
            Event::Failed(i, err) if *i == id => Some(err),
            _ => None,
        })
    }

    /// `Some(None)` after a clean close, `Some(Some(err))` after a failure.
    pub fn closed(&self) -> Option<Option<&SmtpError>> {
        self.events.iter().find_map(|e| {
            if let Event::Closed(err) = e {
                Some(err.as_ref())
            } else {
                None
            }
        })
    }

    /// The error that closed the connection; panics if it closed cleanly or is open.
    pub fn close_error(&self) -> &SmtpError {
        match self.closed() {
            Some(Some(err)) => err,
            other => panic!("expected the connection to fail, got {other:?}\n{}", self.transcript()),
        }
    }

    /// How many outcome events (delivered + failed) each message got.
    pub fn outcomes(&self, id: MessageId) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Event::Delivered(i, _) | Event::Failed(i, _) if *i == id))
            .count()
    }

    /// The transcript as `C: ...` / `S: ...` lines.
    pub fn transcript(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| {
                if let Event::Transcript(t) = e {
                    Some(format!("{}: {}\n", t.dir.as_str(), t.text))
                } else {
                    None
                }
            })
            .collect()
    }
}
