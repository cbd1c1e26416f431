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
use wasmtp::testkit::Harness;
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
    let conn = SecureConnection::new(config, options, Instant::from_millis(0)).expect("valid configuration");
    // The same harness as the `session` target, over the TLS engine; each
    // run of server bytes arrives in one read.
    let mut h = Harness::connect(conn);
    h.bytewise = false;

    let mut ids = Vec::new();
    let mut closing = false;
    let mut script = Script::new(script);
    while let Some(step) = script.next_step() {
        let op = match step {
            // Bytes keep coming after the close too (NOTES-fuzz-findings.md,
            // finding 2, fixed in ae9f7e4: they used to reach rustls after
            // its close_notify).
            Step::Bytes(bytes) => {
                h.server_bytes(&bytes);
                continue;
            }
            Step::Action(op) => op,
        };
        match op {
            b'W' => h.advance(Duration::from_millis(script.wait_ms())),
            b'E' => h.eof(),
            b'M' => {
                let n = script.arg();
                if !closing && !matches!(h.conn.state(), State::Closed | State::Quitting) {
                    let envelope = Envelope::new("ann@example.com", [format!("r{n}@example.org")]);
                    ids.push(h.submit(envelope, b"Subject: x\r\n\r\nbody\r\n"));
                }
            }
            b'C' => {
                closing = true;
                h.conn.close(h.now);
            }
            b'A' => h.conn.abort(h.now),
            b'N' => h.conn.noop(h.now),
            b'S' => h.conn.socket_failed("fuzz: reset", script.arg() & 1 == 1, h.now),
            _ => {}
        }
        h.pump();
    }
    h.eof();
    h.advance(Duration::from_secs(3600));

    assert!(h.conn.is_closed(), "the connection did not end: {:?}", h.conn.state());
    assert!(h.conn.poll_timeout().is_none(), "a closed connection still wants a timer");
    let closes = h.events.iter().filter(|e| matches!(e, Event::Closed(_))).count();
    assert_eq!(closes, 1, "{closes} Closed events");
    assert!(
        !h.events.iter().any(|e| matches!(e, Event::StartTls { .. })),
        "StartTls reached the host of a SecureConnection"
    );
    for id in &ids {
        assert_eq!(h.outcomes(*id), 1, "message {id:?} needs exactly one outcome");
    }
    for event in &h.events {
        if let Event::Delivered(id, _) | Event::Failed(id, _) = event {
            assert!(ids.contains(id), "an outcome for unknown message {id:?}");
        }
    }
    assert!(
        h.sent.len() <= 64 * 1024 + 64 * data.len(),
        "{} bytes sent for {} input bytes",
        h.sent.len(),
        data.len()
    );
});
