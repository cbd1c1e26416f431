//! The in-engine TLS (`SecureConnection`) against arbitrary server bytes:
//! the plaintext part of a STARTTLS dialog, then whatever arrives where
//! TLS records are expected (garbage, truncated records, alerts, a
//! plaintext greeting on the implicit-TLS port).
//!
//! Input layout: `flags ++ server bytes` with the same 0xFF escapes as the
//! `session` target (FF FF literal, FF 'W' n wait, FF 'E' EOF, FF 'M' n
//! submit, FF 'C' close, FF 'A' abort, FF 'N' NOOP, FF 'S' n socket
//! failure, FF other: a read boundary). `flags` bits 0-1: security (tls,
//! starttls, opportunistic, none), bit 2: port 465 instead of 587.
//!
//! The certificate is pinned to a fingerprint no server has, so no
//! handshake can complete; what is fuzzed is the glue around rustls.
//! Invariants: no panic; after EOF and an hour the connection is closed and
//! wants no timer; every submitted message gets exactly one outcome.

#![no_main]

mod script;

use libfuzzer_sys::fuzz_target;
use wasmtp::tls_engine::{SecureConnection, TlsOptions};
use wasmtp::*;

use script::{Script, Step};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, script)) = data.split_first() else {
        return;
    };
    let security = [
        Security::Tls,
        Security::StartTls,
        Security::Opportunistic,
        Security::None,
    ][usize::from(flags & 3)];
    let port = if flags & 4 != 0 { 465 } else { 587 };
    let config = Config::new("mx.example.com", port)
        .security(security)
        .client_name("client.example.com")
        .credentials(Credentials::Password {
            user: "ann".into(),
            pass: "s3cret".into(),
        });
    let options = TlsOptions {
        pins_sha256: vec![[0x11; 32]],
        no_public_roots: true,
        unix_time_ms: 1_700_000_000_000,
        ..TlsOptions::default()
    };
    let mut now = Instant::from_millis(0);
    let mut conn = SecureConnection::new(config, options, now).expect("valid configuration");
    let mut run = Run::default();
    conn.connected(now);
    run.pump(&mut conn, now);

    let mut closing = false;
    let mut script = Script::new(script);
    while let Some(step) = script.next_step() {
        let op = match step {
            Step::Bytes(bytes) => {
                receive(&mut conn, &bytes, now);
                run.pump(&mut conn, now);
                continue;
            }
            Step::Action(op) => op,
        };
        match op {
            b'W' => {
                let ms = script.wait_ms();
                now = advance(&mut conn, &mut run, now, Duration::from_millis(ms));
            }
            b'E' => conn.receive_eof(now),
            b'M' => {
                let n = script.arg();
                if !closing && !matches!(conn.state(), State::Closed | State::Quitting) {
                    let envelope = Envelope::new("ann@example.com", [format!("r{n}@example.org")]);
                    let id = conn.submit(envelope, now).expect("valid envelope");
                    run.messages.push((id, 0));
                }
            }
            b'C' => {
                closing = true;
                conn.close(now);
            }
            b'A' => conn.abort(now),
            b'N' => conn.noop(now),
            b'S' => conn.socket_failed("fuzz: reset", script.arg() & 1 == 1, now),
            _ => {}
        }
        run.pump(&mut conn, now);
    }
    conn.receive_eof(now);
    run.pump(&mut conn, now);
    advance(&mut conn, &mut run, now, Duration::from_secs(3600));

    assert!(
        conn.smtp().is_closed(),
        "the connection did not end: {:?}",
        conn.state()
    );
    assert!(conn.poll_timeout().is_none(), "a closed connection still wants a timer");
    assert_eq!(run.closed, 1, "{} Closed events", run.closed);
    for (id, outcomes) in &run.messages {
        assert_eq!(*outcomes, 1, "message {id:?} got {outcomes} outcomes");
    }
    assert!(
        run.sent <= 64 * 1024 + 64 * data.len(),
        "{} bytes sent for {} input bytes",
        run.sent,
        data.len()
    );
});

/// Bytes keep coming after the close too (NOTES-fuzz-findings.md, finding
/// 2, fixed in ae9f7e4: they used to reach rustls after its close_notify).
fn receive(conn: &mut SecureConnection, bytes: &[u8], now: Instant) {
    conn.receive(bytes, now);
}

#[derive(Default)]
struct Run {
    sent: usize,
    closed: usize,
    /// Each submitted message and how many outcomes it got.
    messages: Vec<(MessageId, usize)>,
}

impl Run {
    fn pump(&mut self, conn: &mut SecureConnection, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(bytes) = conn.poll_transmit() {
                self.sent += bytes.len();
                progressed = true;
            }
            while let Some(event) = conn.poll_event() {
                progressed = true;
                match event {
                    Event::StartTls { .. } => panic!("StartTls reached the host of a SecureConnection"),
                    Event::Delivered(id, _) | Event::Failed(id, _) => {
                        if let Some(m) = self.messages.iter_mut().find(|m| m.0 == id) {
                            m.1 += 1;
                        } else {
                            panic!("an outcome for unknown message {id:?}");
                        }
                    }
                    Event::Closed(_) => self.closed += 1,
                    _ => {}
                }
            }
            if let Some(id) = conn.wants_body() {
                let _ = conn.write_body(id, b"Subject: x\r\n\r\nbody\r\n", now);
                let _ = conn.end_body(id, now);
                progressed = true;
            }
            if !progressed {
                return;
            }
        }
    }
}

fn advance(conn: &mut SecureConnection, run: &mut Run, mut now: Instant, by: Duration) -> Instant {
    let target = now + by;
    while let Some(deadline) = conn.poll_timeout() {
        if deadline > target {
            break;
        }
        now = now.max(deadline);
        conn.handle_timeout(now);
        run.pump(conn, now);
    }
    target
}
