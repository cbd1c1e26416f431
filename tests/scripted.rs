//! The engine against scripted servers: every conversation is played byte by
//! byte (and again whole) with a fake clock and no sockets.

use wasmtp::testkit::Harness;
use wasmtp::*;

const HOST: &str = "mx.example.com";
const PASS: &str = "s3cret";
const PLAIN_B64: &str = "AGFubgBzM2NyZXQ="; // "\0ann\0s3cret"

fn config(security: Security, port: u16) -> Config {
    Config::new(HOST, port)
        .security(security)
        .client_name("client.example.com")
}

fn with_auth(config: Config) -> Config {
    config.credentials(Credentials::Password {
        user: "ann".into(),
        pass: PASS.into(),
    })
}

fn envelope(to: &[&str]) -> Envelope {
    Envelope::new("ann@example.com", to.iter().copied())
}

const BODY: &[u8] = b"Subject: hi\r\n\r\n.leading dot\r\nlast line";
const BODY_ON_WIRE: &str = "Subject: hi\r\n\r\n..leading dot\r\nlast line\r\n.\r\n";

/// Greeting and a plain EHLO without extensions.
const GREET_BARE: &str = "
    S: 220 mx.example.com ESMTP
    C: EHLO client.example.com
    S: 250 mx.example.com
";

/// Greeting, EHLO with STARTTLS, the upgrade and the post-TLS EHLO.
const STARTTLS_SETUP: &str = "
    S: 220 mx.example.com ESMTP
    C: EHLO client.example.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250 STARTTLS
    C: STARTTLS
    S: 220 2.0.0 Ready to start TLS
    TLS
    C: EHLO client.example.com
    S: 250-mx.example.com
    S: 250-PIPELINING
    S: 250-SIZE 10000000
    S: 250-AUTH PLAIN LOGIN
    S: 250-ENHANCEDSTATUSCODES
    S: 250 8BITMIME
";

fn nothing_sensitive_sent(h: &Harness) {
    let sent = String::from_utf8_lossy(&h.sent);
    for forbidden in ["AUTH", "MAIL FROM", "RCPT TO", "DATA", PLAIN_B64, PASS] {
        assert!(!sent.contains(forbidden), "{forbidden} was sent:\n{sent}");
    }
}

/// Runs `f` twice: server bytes fed one at a time, then whole lines, and
/// checks both give the same transcript and outcomes.
fn both_splits(f: impl Fn(&mut Harness), make: impl Fn() -> Harness) -> Harness {
    let mut bytewise = make();
    bytewise.bytewise = true;
    f(&mut bytewise);
    let mut whole = make();
    whole.bytewise = false;
    f(&mut whole);
    assert_eq!(bytewise.transcript(), whole.transcript());
    assert_eq!(bytewise.sent, whole.sent);
    bytewise
}

// ----- Happy paths ---------------------------------------------------------

#[test]
fn plain_send_without_pipelining_then_quit() {
    let h = both_splits(
        |h| {
            h.run(GREET_BARE);
            let id = h.submit(envelope(&["bob@example.org"]), BODY);
            h.run(
                "
                C: MAIL FROM:<ann@example.com>
                S: 250 2.1.0 Ok
                C: RCPT TO:<bob@example.org>
                S: 250 2.1.5 Ok
                C: DATA
                S: 354 End data with <CR><LF>.<CR><LF>
            ",
            );
            h.expect_client_bytes(BODY_ON_WIRE.as_bytes());
            h.server("250 2.0.0 Ok: queued as 4AbC123");
            let delivery = h.delivered(id).expect("delivered");
            assert_eq!(delivery.accepted, vec!["bob@example.org"]);
            assert_eq!(delivery.queue_id.as_deref(), Some("4AbC123"));
            h.conn.close(h.now);
            h.run(
                "
                C: QUIT
                S: 221 2.0.0 Bye
            ",
            );
            assert_eq!(h.closed(), Some(None));
        },
        || Harness::new(config(Security::None, 25)),
    );
    assert!(h.ready().unwrap().tls.is_none());
}

#[test]
fn starttls_auth_and_one_pipelined_flight_with_partial_recipients() {
    let mut h = Harness::new(with_auth(config(Security::StartTls, 587)));
    h.run(STARTTLS_SETUP);
    h.run(&format!(
        "
        C: AUTH PLAIN {PLAIN_B64}
        S: 235 2.7.0 Authentication successful
    "
    ));
    assert_eq!(h.ready().unwrap().auth_method, Some(Mechanism::Plain));
    let id = h.submit(
        envelope(&["bob@example.org", "nobody@example.org", "carol@example.org"]),
        BODY,
    );
    // RFC 2920: MAIL, RCPTs and DATA in one write.
    let flight = "MAIL FROM:<ann@example.com> BODY=8BITMIME\r\nRCPT TO:<bob@example.org>\r\nRCPT TO:<nobody@example.org>\r\nRCPT TO:<carol@example.org>\r\nDATA\r\n";
    h.expect_client_bytes(flight.as_bytes());
    h.expect_silence();
    h.run(
        "
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 550 5.1.1 <nobody@example.org>: Recipient address rejected: User unknown
        S: 250 2.1.5 Ok
        S: 354 go ahead
    ",
    );
    h.expect_client_bytes(BODY_ON_WIRE.as_bytes());
    h.server("250 2.0.0 Ok: queued as XYZ");
    let d = h.delivered(id).expect("partial delivery is a success");
    assert_eq!(d.accepted, vec!["bob@example.org", "carol@example.org"]);
    assert_eq!(d.rejected.len(), 1);
    assert_eq!(d.rejected[0].address, "nobody@example.org");
    assert_eq!(d.rejected[0].code(), 550);
    assert_eq!(d.rejected[0].enhanced_code().unwrap().to_string(), "5.1.1");
    let transcript = h.transcript();
    assert!(transcript.contains("C: AUTH PLAIN <"), "{transcript}");
    assert!(
        !transcript.contains(PLAIN_B64) && !transcript.contains(PASS),
        "{transcript}"
    );
}

#[test]
fn end_of_one_message_and_next_envelope_share_a_flight() {
    let mut h = Harness::new(config(Security::None, 25));
    h.run(
        "
        S: 220 mx
        C: EHLO client.example.com
        S: 250-mx
        S: 250 PIPELINING
    ",
    );
    let first = h.submit(envelope(&["b@example.org"]), b"one");
    let second = h.submit(envelope(&["c@example.org"]), b"two");
    h.expect_client_bytes(b"MAIL FROM:<ann@example.com>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n");
    h.run(
        "
        S: 250 ok
        S: 250 ok
        S: 354 go
    ",
    );
    h.expect_client_bytes(b"one\r\n.\r\nMAIL FROM:<ann@example.com>\r\nRCPT TO:<c@example.org>\r\nDATA\r\n");
    h.expect_silence();
    h.run(
        "
        S: 250 queued 1
        S: 250 ok
        S: 250 ok
        S: 354 go
    ",
    );
    h.expect_client_bytes(b"two\r\n.\r\n");
    h.server("250 queued 2");
    assert!(h.delivered(first).is_some() && h.delivered(second).is_some());
}

/// Greeting and an EHLO offering PIPELINING and CHUNKING (no TLS, no AUTH).
fn ready_chunking(h: &mut Harness) {
    h.run(
        "
        S: 220 mx
        C: EHLO client.example.com
        S: 250-mx
        S: 250-PIPELINING
        S: 250 CHUNKING
    ",
    );
}

#[test]
fn bdat_window_sends_several_transactions_in_one_flight() {
    let mut h = Harness::new(config(Security::None, 25));
    ready_chunking(&mut h);
    let a = h.submit(envelope(&["a@example.org"]), b"body a");
    let b = h.submit(envelope(&["reject@example.org"]), b"body b");
    let c = h.submit(envelope(&["c@example.org"]), b".dot\nbody c");
    // No stuffing under BDAT, bare LF normalised, and RSET before every
    // MAIL written while the previous BDAT LAST is unanswered: if that
    // transaction fails, some servers keep it open (Exim, Dovecot).
    h.expect_client_bytes(
        b"MAIL FROM:<ann@example.com>\r\nRCPT TO:<a@example.org>\r\nBDAT 8 LAST\r\nbody a\r\n\
RSET\r\nMAIL FROM:<ann@example.com>\r\nRCPT TO:<reject@example.org>\r\nBDAT 8 LAST\r\nbody b\r\n\
RSET\r\nMAIL FROM:<ann@example.com>\r\nRCPT TO:<c@example.org>\r\nBDAT 14 LAST\r\n.dot\r\nbody c\r\n",
    );
    h.expect_silence();
    // Postfix's replies to exactly this (tested against it in real_servers.rs).
    h.run(
        "
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.0.0 Ok: queued as A1
        S: 250 2.0.0 Ok
        S: 250 2.1.0 Ok
        S: 550 5.1.1 <reject@example.org>: User unknown
        S: 554 5.5.1 Error: no valid recipients
        S: 250 2.0.0 Ok
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.0.0 Ok: queued as C3
    ",
    );
    assert_eq!(h.delivered(a).unwrap().queue_id.as_deref(), Some("A1"));
    assert_eq!(h.failure(b).unwrap().code, ErrorCode::Recipients);
    assert_eq!(h.delivered(c).unwrap().queue_id.as_deref(), Some("C3"));
    for id in [a, b, c] {
        assert_eq!(h.outcomes(id), 1);
    }
    assert!(h.conn.is_idle());
    // The last transaction ended with a 2xx to its BDAT LAST: the server
    // holds nothing, so the next MAIL needs no RSET.
    let d = h.submit(envelope(&["d@example.org"]), b"d");
    h.expect_client_bytes(b"MAIL FROM:<ann@example.com>\r\nRCPT TO:<d@example.org>\r\nBDAT 3 LAST\r\nd\r\n");
    h.run("S: 250 ok\nS: 250 ok\nS: 250 2.0.0 Ok: queued as D4");
    assert!(h.delivered(d).is_some() && h.conn.is_idle());
    // A refused BDAT LAST (seen before the next message): RSET first.
    let e = h.submit(envelope(&["e@example.org"]), b"e");
    h.run("C: MAIL FROM:<ann@example.com>\nC: RCPT TO:<e@example.org>\nC: BDAT 3 LAST\nC: e\nS: 250 ok\nS: 250 ok\nS: 554 5.7.1 spam");
    assert_eq!(h.failure(e).unwrap().code, ErrorCode::Message);
    let f = h.submit(envelope(&["f@example.org"]), b"f");
    h.expect_client_bytes(b"RSET\r\nMAIL FROM:<ann@example.com>\r\nRCPT TO:<f@example.org>\r\nBDAT 3 LAST\r\nf\r\n");
    h.run("S: 250 2.0.0 Ok\nS: 250 ok\nS: 250 ok\nS: 250 queued");
    assert!(h.delivered(f).is_some() && h.conn.is_idle());
}

#[test]
fn bdat_window_pairs_every_reply_after_failed_mail_rcpt_and_bdat() {
    let mut cfg = config(Security::None, 25);
    cfg.limits.bdat_chunk_size = 10;
    let mut h = Harness::new(cfg);
    ready_chunking(&mut h);
    let ok1 = h.submit(envelope(&["a@example.org"]), b"one");
    let bad_mail = h.submit(envelope(&["b@example.org"]), b"two");
    let bad_rcpt = h.submit(envelope(&["x@example.org", "y@example.org"]), b"three");
    // Three chunks; the first one fails while the rest is in the pipeline.
    let bad_chunk = h.submit(envelope(&["c@example.org"]), b"0123456789abcdefghij0");
    let ok2 = h.submit(envelope(&["d@example.org"]), b"five");
    // Everything in one flight, each MAIL after the first behind an RSET.
    h.expect_client_bytes(
        b"MAIL FROM:<ann@example.com>\r\nRCPT TO:<a@example.org>\r\nBDAT 5 LAST\r\none\r\n\
RSET\r\nMAIL FROM:<ann@example.com>\r\nRCPT TO:<b@example.org>\r\nBDAT 5 LAST\r\ntwo\r\n\
RSET\r\nMAIL FROM:<ann@example.com>\r\nRCPT TO:<x@example.org>\r\nRCPT TO:<y@example.org>\r\nBDAT 7 LAST\r\nthree\r\n\
RSET\r\nMAIL FROM:<ann@example.com>\r\nRCPT TO:<c@example.org>\r\n\
BDAT 10\r\n0123456789BDAT 10\r\nabcdefghijBDAT 3 LAST\r\n0\r\n\
RSET\r\nMAIL FROM:<ann@example.com>\r\nRCPT TO:<d@example.org>\r\nBDAT 6 LAST\r\nfive\r\n",
    );
    h.expect_silence();
    // Postfix's answers to each failure (see real_servers.rs).
    h.run(
        "
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.0.0 Ok: queued as Q1
        S: 250 2.0.0 Ok
        S: 552 5.3.4 Message size exceeds fixed limit
        S: 503 5.5.1 Error: need MAIL command
        S: 503 5.5.1 Error: need RCPT command
        S: 250 2.0.0 Ok
        S: 250 2.1.0 Ok
        S: 550 5.1.1 <x@example.org>: User unknown
        S: 450 4.2.0 <y@example.org>: greylisted
        S: 554 5.5.1 Error: no valid recipients
        S: 250 2.0.0 Ok
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 452 4.3.1 Insufficient system storage
        S: 551 5.0.0 Discarded 10 bytes after earlier error
        S: 551 5.0.0 Discarded 3 bytes after earlier error
        S: 250 2.0.0 Ok
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.0.0 Ok: queued as Q5
    ",
    );
    assert_eq!(h.delivered(ok1).unwrap().queue_id.as_deref(), Some("Q1"));
    let err = h.failure(bad_mail).unwrap();
    assert_eq!((err.code, err.phase), (ErrorCode::Size, Phase::Mail));
    let err = h.failure(bad_rcpt).unwrap();
    assert_eq!((err.code, err.phase), (ErrorCode::Recipients, Phase::Rcpt));
    let err = h.failure(bad_chunk).unwrap();
    assert_eq!(err.phase, Phase::Data);
    assert_eq!(
        err.reply.as_ref().unwrap().code,
        452,
        "the first failure is the one reported"
    );
    assert!(err.retryable);
    assert_eq!(err.delivery_state, DeliveryState::NotSent);
    assert_eq!(h.delivered(ok2).unwrap().queue_id.as_deref(), Some("Q5"));
    for id in [ok1, bad_mail, bad_rcpt, bad_chunk, ok2] {
        assert_eq!(h.outcomes(id), 1);
    }
    assert!(h.conn.is_idle());
    assert!(h.closed().is_none());
}

#[test]
fn a_bdat_failure_before_last_stops_the_message_and_rsets_before_the_next() {
    let mut cfg = config(Security::None, 25);
    cfg.limits.bdat_chunk_size = 1000;
    cfg.limits.max_buffered_body = 2000;
    let mut h = Harness::new(cfg);
    h.bytewise = false;
    ready_chunking(&mut h);
    let line = "x".repeat(98) + "\r\n";
    let big = line.repeat(50); // 5000 bytes: more than the engine holds at once
    // The host streams the body as the engine makes room (by hand here).
    let id = h.conn.submit(envelope(&["a@example.org"]), h.now).unwrap();
    let next = h.submit(envelope(&["b@example.org"]), b"next");
    let taken = h.conn.write_body(id, big.as_bytes(), h.now).unwrap();
    assert_eq!(taken, 2000);
    h.expect_client_bytes(b"MAIL FROM:<ann@example.com>\r\nRCPT TO:<a@example.org>\r\nBDAT 1000\r\n");
    h.expect_client_bytes(&big.as_bytes()[..1000]);
    h.expect_client_bytes(b"BDAT 1000\r\n");
    h.expect_client_bytes(&big.as_bytes()[1000..2000]);
    h.expect_silence();
    h.run(
        "
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 552 5.3.4 Message size exceeds fixed limit
    ",
    );
    // No further chunk of this message (the host is told to stop); the
    // reply to the chunk already sent is still paired with it; the server
    // may hold the transaction: RSET first.
    assert!(h.conn.write_body(id, &big.as_bytes()[2000..], h.now).is_err());
    let err = h.failure(id).unwrap();
    assert_eq!((err.code, err.phase), (ErrorCode::Size, Phase::Data));
    h.expect_client_bytes(b"RSET\r\nMAIL FROM:<ann@example.com>\r\nRCPT TO:<b@example.org>\r\nBDAT 6 LAST\r\nnext\r\n");
    h.run(
        "
        S: 551 5.0.0 Discarded 1000 bytes after earlier error
        S: 250 2.0.0 Ok
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.0.0 Ok: queued as N1
    ",
    );
    assert_eq!(h.outcomes(id), 1);
    assert_eq!(h.delivered(next).unwrap().queue_id.as_deref(), Some("N1"));
    assert!(h.conn.is_idle() && h.closed().is_none());
}

#[test]
fn a_bdat_transaction_refused_before_its_body_arrived_ends_cleanly() {
    let mut h = Harness::new(config(Security::None, 25));
    ready_chunking(&mut h);
    // The host has not read the body yet when the refusals come back.
    let first = h.conn.submit(envelope(&["x@example.org"]), h.now).unwrap();
    h.pump();
    h.expect_client_bytes(b"MAIL FROM:<ann@example.com>\r\nRCPT TO:<x@example.org>\r\n");
    h.run("S: 250 2.1.0 Ok\nS: 550 5.1.1 unknown");
    assert_eq!(h.failure(first).unwrap().code, ErrorCode::Recipients);
    assert_eq!(h.conn.wants_body(), None, "no body is asked for a failed message");
    assert!(h.conn.write_body(first, b"late", h.now).is_err());
    // MAIL was accepted and no BDAT LAST went out: RSET, then the next one.
    let second = h.submit(envelope(&["b@example.org"]), b"b");
    h.expect_client_bytes(b"RSET\r\nMAIL FROM:<ann@example.com>\r\nRCPT TO:<b@example.org>\r\nBDAT 3 LAST\r\nb\r\n");
    h.run("S: 250 2.0.0 Ok\nS: 250 ok\nS: 250 ok\nS: 250 queued");
    assert!(h.delivered(second).is_some() && h.conn.is_idle());

    // MAIL refused: the server holds nothing, so no RSET.
    let third = h.conn.submit(envelope(&["c@example.org"]), h.now).unwrap();
    h.pump();
    h.expect_client_bytes(b"MAIL FROM:<ann@example.com>\r\nRCPT TO:<c@example.org>\r\n");
    h.run("S: 550 5.7.1 sender refused\nS: 503 5.5.1 need MAIL");
    assert_eq!(h.failure(third).unwrap().code, ErrorCode::Envelope);
    let fourth = h.submit(envelope(&["d@example.org"]), b"d");
    h.expect_client_bytes(b"MAIL FROM:<ann@example.com>\r\nRCPT TO:<d@example.org>\r\nBDAT 3 LAST\r\nd\r\n");
    h.run("S: 250 ok\nS: 250 ok\nS: 250 queued");
    assert!(h.delivered(fourth).is_some() && h.conn.is_idle());
}

#[test]
fn the_window_refills_as_replies_arrive_in_one_write_each() {
    let mut cfg = config(Security::None, 25);
    cfg.limits.max_in_flight = 3;
    let mut h = Harness::new(cfg);
    ready_chunking(&mut h);
    let ids: Vec<MessageId> = (0..6)
        .map(|i| {
            let id = h.conn.submit(envelope(&[&format!("r{i}@example.org")]), h.now).unwrap();
            h.conn
                .write_body(id, format!("body {i}").as_bytes(), h.now)
                .unwrap_or(0);
            id
        })
        .collect();
    // Bodies arrive only for the message on the wire; push the rest as asked.
    let mut writes = Vec::new();
    let feed = |h: &mut Harness| {
        for _ in 0..20 {
            if let Some(id) = h.conn.wants_body() {
                let i = ids.iter().position(|x| *x == id).unwrap();
                let _ = h.conn.write_body(id, format!("body {i}").as_bytes(), h.now);
                let _ = h.conn.end_body(id, h.now);
            }
        }
    };
    feed(&mut h);
    while let Some(bytes) = h.conn.poll_transmit() {
        writes.push(bytes);
    }
    assert_eq!(writes.len(), 1, "one write for the whole flight");
    let flight = String::from_utf8(writes.pop().unwrap()).unwrap();
    assert_eq!(flight.matches("MAIL FROM").count(), 3, "the window is 3:\n{flight}");
    // The final reply of the first frees one slot: the fourth goes at once
    // (behind an RSET: the third's BDAT LAST is not answered yet).
    h.conn.receive(b"250 ok\r\n250 ok\r\n250 queued\r\n", h.now);
    feed(&mut h);
    let flight = String::from_utf8(h.conn.poll_transmit().unwrap()).unwrap();
    assert_eq!(
        flight,
        "RSET\r\nMAIL FROM:<ann@example.com>\r\nRCPT TO:<r3@example.org>\r\nBDAT 8 LAST\r\nbody 3\r\n"
    );
    assert!(h.conn.poll_transmit().is_none());
    // Two at once free two slots: both go in one write.
    h.conn.receive(
        b"250 reset\r\n250 ok\r\n250 ok\r\n250 queued\r\n250 reset\r\n250 ok\r\n250 ok\r\n250 queued\r\n",
        h.now,
    );
    feed(&mut h);
    let flight = String::from_utf8(h.conn.poll_transmit().unwrap()).unwrap();
    assert_eq!(flight.matches("MAIL FROM").count(), 2, "{flight}");
    assert!(h.conn.poll_transmit().is_none());
}

#[test]
fn large_bodies_go_in_bdat_chunks_with_back_pressure() {
    let mut cfg = config(Security::None, 25);
    cfg.limits.bdat_chunk_size = 1000;
    cfg.limits.max_buffered_body = 4000;
    let mut h = Harness::new(cfg);
    h.bytewise = false;
    ready_chunking(&mut h);
    let line = "x".repeat(98) + "\r\n";
    let body = line.repeat(25); // 2500 bytes
    let id = h.submit(envelope(&["a@example.org"]), body.as_bytes());
    h.expect_client_bytes(b"MAIL FROM:<ann@example.com>\r\nRCPT TO:<a@example.org>\r\nBDAT 1000\r\n");
    h.expect_client_bytes(&body.as_bytes()[..1000]);
    h.expect_client_bytes(b"BDAT 1000\r\n");
    h.expect_client_bytes(&body.as_bytes()[1000..2000]);
    h.expect_client_bytes(b"BDAT 500 LAST\r\n");
    h.expect_client_bytes(&body.as_bytes()[2000..]);
    h.run(
        "
        S: 250 ok
        S: 250 ok
        S: 250 1000 octets
        S: 250 1000 octets
        S: 250 queued
    ",
    );
    assert!(h.delivered(id).is_some());
}

#[test]
fn lmtp_gives_one_final_reply_per_recipient() {
    let mut h = Harness::new(config(Security::None, 24).protocol(Protocol::Lmtp));
    h.run(
        "
        S: 220 lmtp ready
        C: LHLO client.example.com
        S: 250-lmtp
        S: 250-PIPELINING
        S: 250 ENHANCEDSTATUSCODES
    ",
    );
    let id = h.submit(
        envelope(&["a@example.org", "gone@example.org", "b@example.org"]),
        b"hello",
    );
    h.run(
        "
        C: MAIL FROM:<ann@example.com>
        C: RCPT TO:<a@example.org>
        C: RCPT TO:<gone@example.org>
        C: RCPT TO:<b@example.org>
        C: DATA
        S: 250 2.1.0 ok
        S: 250 2.1.5 ok
        S: 550 5.1.1 no such user
        S: 250 2.1.5 ok
        S: 354 go
        C: hello
        C: .
        S: 250 2.0.0 <a@example.org> delivered
    ",
    );
    assert!(h.delivered(id).is_none(), "waits for every recipient's reply");
    h.server("452 4.2.2 <b@example.org> mailbox full");
    let d = h.delivered(id).expect("one recipient got it");
    assert_eq!(d.accepted, vec!["a@example.org"]);
    let rejected: Vec<_> = d.rejected.iter().map(|r| (r.address.as_str(), r.code())).collect();
    assert_eq!(rejected, vec![("gone@example.org", 550), ("b@example.org", 452)]);
}

#[test]
fn ehlo_refused_falls_back_to_helo_when_security_allows() {
    let mut h = Harness::new(config(Security::Opportunistic, 25));
    h.run(
        "
        S: 220 old.example.com SMTP
        C: EHLO client.example.com
        S: 502 5.5.2 Command not recognized
        C: HELO client.example.com
        S: 250 old.example.com
    ",
    );
    let id = h.submit(envelope(&["b@example.org"]), b"x");
    h.run(
        "
        C: MAIL FROM:<ann@example.com>
        S: 250 ok
        C: RCPT TO:<b@example.org>
        S: 250 ok
        C: DATA
        S: 354 go
        C: x
        C: .
        S: 250 ok
    ",
    );
    assert!(h.delivered(id).is_some());
}

#[test]
fn capabilities_and_mechanisms_come_only_from_the_post_tls_ehlo() {
    let mechs: Vec<String> = (0..40).map(|i| format!("X-MECH-{i}")).collect();
    let mut h = Harness::new(with_auth(config(Security::StartTls, 587)));
    h.run(&format!(
        "
        S: 220 mx
        C: EHLO client.example.com
        S: 250-mx
        S: 250-CHUNKING
        S: 250-AUTH CRAM-MD5 LOGIN {}
        S: 250 STARTTLS
        C: STARTTLS
        S: 220 go
        TLS
        C: EHLO client.example.com
        S: 250-mx
        S: 250 AUTH PLAIN
        C: AUTH PLAIN {PLAIN_B64}
        S: 235 ok
    ",
        mechs.join(" ")
    ));
    let info = h.ready().unwrap();
    assert!(!info.capabilities.chunking);
    assert_eq!(info.capabilities.auth, vec!["PLAIN"]);
}

#[test]
fn opportunistic_without_starttls_continues_but_never_sends_credentials() {
    let mut h = Harness::new(with_auth(config(Security::Opportunistic, 25)));
    h.run(GREET_BARE);
    let err = h.close_error();
    assert_eq!(err.code, ErrorCode::AuthInsecure);
    assert!(err.hint.as_deref().unwrap().contains("allowInsecureAuth"));
    nothing_sensitive_sent(&h);
}

/// Exchange on 587 without STARTTLS, offering only GSSAPI and NTLM: one
/// error names both problems, the missing encryption and mechanisms that
/// would not do even over TLS.
#[test]
fn insecure_auth_error_also_names_mechanisms_unusable_even_over_tls() {
    let mut h = Harness::new(with_auth(config(Security::Opportunistic, 587)));
    h.run(
        "
        S: 220 exchange.example.com Microsoft ESMTP MAIL Service ready
        C: EHLO client.example.com
        S: 250-exchange.example.com Hello
        S: 250-SIZE 37748736
        S: 250-PIPELINING
        S: 250 AUTH GSSAPI NTLM
    ",
    );
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::AuthInsecure, Phase::Auth));
    assert!(err.message.contains("unencrypted"), "{}", err.message);
    assert!(err.message.contains("only AUTH GSSAPI NTLM"), "{}", err.message);
    let hint = err.hint.as_deref().unwrap();
    assert!(hint.contains("security: 'tls'"), "{hint}");
    assert!(hint.contains("Exchange"), "{hint}");
    nothing_sensitive_sent(&h);

    // With a usable mechanism on offer, only the encryption is named.
    let mut h = Harness::new(with_auth(config(Security::Opportunistic, 587)));
    h.run(
        "
        S: 220 mx
        C: EHLO client.example.com
        S: 250-mx
        S: 250 AUTH GSSAPI NTLM LOGIN
    ",
    );
    let err = h.close_error();
    assert_eq!(err.code, ErrorCode::AuthInsecure);
    assert!(!err.message.contains("Besides"), "{}", err.message);
}

#[test]
fn insecure_auth_only_when_opted_in_and_then_prefers_cram_md5() {
    let mut h = Harness::new(with_auth(config(Security::None, 2525)).allow_insecure_auth(true));
    h.run(
        "
        S: 220 mx
        C: EHLO client.example.com
        S: 250-mx
        S: 250-STARTTLS
        S: 250 AUTH PLAIN LOGIN CRAM-MD5
        C: AUTH CRAM-MD5
    ",
    );
    assert!(
        !String::from_utf8_lossy(&h.sent).contains("STARTTLS"),
        "'none' never upgrades"
    );
}

#[test]
fn none_never_sends_starttls_even_when_offered() {
    let mut h = Harness::new(config(Security::None, 25));
    h.run(
        "
        S: 220 mx
        C: EHLO client.example.com
        S: 250-mx
        S: 250 STARTTLS
    ",
    );
    assert!(h.ready().is_some());
    h.expect_silence();
}

#[test]
fn implicit_tls_asks_for_the_handshake_before_anything_else() {
    let mut h = Harness::new(config(Security::Tls, 465));
    assert!(matches!(h.events.first(), Some(Event::StartTls { server_name }) if server_name == HOST));
    h.run(
        "
        TLS
        S: 220 mx
        C: EHLO client.example.com
        S: 250 mx
    ",
    );
    assert_eq!(h.ready().unwrap().tls.as_ref().unwrap().version, "TLSv1.3");
}

// ----- STARTTLS attacks ----------------------------------------------------

#[test]
fn starttls_stripping_fails_closed_before_anything_sensitive() {
    let prefix = "
        S: 220 mx
        C: EHLO client.example.com
    ";
    let cases = [
        (
            "not advertised",
            "S: 250-mx\nS: 250 AUTH PLAIN".to_string(),
            ErrorCode::StartTlsUnavailable,
        ),
        (
            "ehlo refused",
            "S: 500 5.5.1 unrecognized".to_string(),
            ErrorCode::StartTlsUnavailable,
        ),
        (
            "502",
            "S: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 502 5.5.1 not implemented".to_string(),
            ErrorCode::StartTlsUnavailable,
        ),
        (
            "454",
            "S: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 454 4.7.0 TLS not available".to_string(),
            ErrorCode::StartTlsUnavailable,
        ),
        (
            "354",
            "S: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 354 go ahead".to_string(),
            ErrorCode::StartTlsUnavailable,
        ),
        (
            "550",
            "S: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 550 no".to_string(),
            ErrorCode::StartTlsUnavailable,
        ),
    ];
    for (name, rest, code) in cases {
        let mut h = Harness::new(with_auth(config(Security::StartTls, 587)));
        let _ = h.submit(envelope(&["b@example.org"]), b"secret body");
        h.run(prefix);
        h.run(&rest);
        assert_eq!(h.close_error().code, code, "{name}");
        nothing_sensitive_sent(&h);
        assert!(
            !String::from_utf8_lossy(&h.sent).contains("HELO"),
            "{name}: no HELO fallback"
        );
    }
}

#[test]
fn replies_injected_after_the_starttls_220_are_refused() {
    for bytewise in [false, true] {
        let mut h = Harness::new(with_auth(config(Security::StartTls, 587)));
        h.bytewise = bytewise;
        h.run(
            "
            S: 220 mx
            C: EHLO client.example.com
            S: 250-mx
            S: 250 STARTTLS
            C: STARTTLS
        ",
        );
        h.server_bytes(b"220 Ready to start TLS\r\n250-mx\r\n250 AUTH PLAIN\r\n");
        let err = h.close_error();
        assert_eq!((err.code, err.phase), (ErrorCode::Protocol, Phase::StartTls));
        assert!(err.message.contains("before the TLS handshake"));
        nothing_sensitive_sent(&h);
    }
}

// ----- Port and TLS mix-ups --------------------------------------------------

#[test]
fn silence_on_465_without_tls_is_a_port_mismatch_within_seconds() {
    for security in [Security::StartTls, Security::None] {
        let mut h = Harness::new(config(security, 465));
        h.run("WAIT 2999");
        assert!(h.closed().is_none());
        h.run("WAIT 1");
        let err = h.close_error();
        assert_eq!(err.code, ErrorCode::TlsPortMismatch);
        assert!(err.hint.as_deref().unwrap().contains("security: 'tls'"));
    }
}

/// The bytes of the probe the engine asked for, if it asked.
fn port_probe_request(h: &Harness) -> Option<Vec<u8>> {
    h.events.iter().find_map(|e| match e {
        Event::PortProbe { client_hello } => Some(client_hello.clone()),
        _ => None,
    })
}

#[test]
fn silence_on_any_port_asks_for_a_tls_probe_and_a_tls_answer_names_the_mix_up() {
    for port in [2465, 8465, 587] {
        let mut h = Harness::new(config(Security::StartTls, port));
        h.run("WAIT 1999");
        assert!(
            port_probe_request(&h).is_none(),
            "no probe before two seconds of silence"
        );
        h.run("WAIT 1");
        let hello = port_probe_request(&h).expect("a probe after two seconds");
        assert_eq!(&hello[..3], &[22, 3, 1], "the probe is a TLS ClientHello");
        assert!(
            h.sent.is_empty(),
            "nothing is written on the session connection while it waits"
        );
        // The probe connection was answered with a ServerHello.
        h.conn.port_probe_result(&[22, 3, 3, 0, 122, 2, 0, 0, 118], h.now);
        h.pump();
        let err = h.close_error();
        assert_eq!((err.code, err.phase), (ErrorCode::TlsPortMismatch, Phase::Greeting));
        assert!(err.message.contains("answered with TLS"), "{}", err.message);
        assert!(err.hint.as_deref().unwrap().contains("security: 'tls'"));
        assert!(h.sent.is_empty());
    }
}

#[test]
fn a_server_that_pauses_before_its_greeting_still_works_after_a_plaintext_probe() {
    // postscreen's greet_wait or Exim's banner delay: six seconds of silence,
    // and no byte may reach the session connection before the greeting.
    let mut h = Harness::new(config(Security::StartTls, 2525));
    h.run("WAIT 2000");
    assert!(port_probe_request(&h).is_some());
    // The probe connection got the same pause, then closed: no answer at all.
    h.conn.port_probe_result(b"", h.now);
    h.pump();
    h.run("WAIT 4000");
    assert!(h.closed().is_none(), "silence on the probe is no evidence of TLS");
    assert!(h.sent.is_empty(), "nothing was sent before the greeting");
    h.run(STARTTLS_SETUP);
    assert!(h.ready().is_some(), "the session set up after the greeting came");

    // A probe answered by an SMTP greeting leaves the session waiting too.
    let mut h = Harness::new(config(Security::StartTls, 2525));
    h.run("WAIT 2000");
    h.conn.port_probe_result(b"220 mx ESMTP\r\n", h.now);
    h.pump();
    h.run("WAIT 20000");
    assert!(h.closed().is_none());
    h.run(
        "
        S: 220 mx ESMTP
        C: EHLO client.example.com
    ",
    );
}

#[test]
fn on_port_465_a_plaintext_probe_answer_overrules_the_guess() {
    let mut h = Harness::new(config(Security::StartTls, 465));
    h.run("WAIT 2000");
    assert!(port_probe_request(&h).is_some());
    h.conn.port_probe_result(b"220 mx ESMTP\r\n", h.now);
    h.pump();
    h.run("WAIT 1000");
    assert!(
        h.closed().is_none(),
        "a greeting on the probe: not a TLS port, whatever its number"
    );
}

#[test]
fn plaintext_greeting_where_tls_was_expected_is_a_port_mismatch() {
    let mut h = Harness::new(config(Security::Tls, 587));
    h.server("220 mx ESMTP");
    assert_eq!(h.close_error().code, ErrorCode::TlsPortMismatch);

    let mut h = Harness::new(config(Security::Tls, 587));
    h.conn
        .tls_failed(TlsFailure::from_message("ssl3_get_record:wrong version number"), h.now);
    h.pump();
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::TlsPortMismatch, Phase::Tls));
    assert!(err.hint.as_deref().unwrap().contains("starttls"));
}

#[test]
fn certificate_and_handshake_failures() {
    let mut h = Harness::new(config(Security::StartTls, 587));
    h.run(
        "
        S: 220 mx
        C: EHLO client.example.com
        S: 250-mx
        S: 250 STARTTLS
        C: STARTTLS
        S: 220 go
    ",
    );
    h.conn
        .tls_failed(TlsFailure::from_message("self-signed certificate"), h.now);
    h.pump();
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::Cert, Phase::StartTls));
    assert!(err.hint.as_deref().unwrap().contains("tls.ca"));

    let mut h = Harness::new(config(Security::Tls, 465));
    h.conn.tls_failed(TlsFailure::from_message("socket hang up"), h.now);
    h.pump();
    assert_eq!(h.close_error().code, ErrorCode::Tls);
}

#[test]
fn tls_handshake_has_a_deadline() {
    let mut h = Harness::new(config(Security::Tls, 465));
    h.run("WAIT 30000");
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::TimedOut, Phase::Tls));
}

// ----- Each error code -------------------------------------------------------

#[test]
fn connect_failures_and_refusals() {
    let mut h = Harness::unconnected(config(Security::StartTls, 587));
    h.conn.connect_failed("connect ECONNREFUSED 127.0.0.1:587", h.now);
    h.pump();
    assert_eq!(h.close_error().code, ErrorCode::Connect);

    let mut h = Harness::unconnected(config(Security::StartTls, 587));
    h.run("WAIT 30000");
    assert_eq!(h.close_error().code, ErrorCode::TimedOut);
    assert_eq!(h.close_error().phase, Phase::Connect);

    let mut h = Harness::new(config(Security::StartTls, 587));
    h.server("554 5.7.1 no SMTP service for you");
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::Connect, Phase::Greeting));
}

#[test]
fn auth_failures_name_the_cause() {
    let mut h = Harness::new(with_auth(config(Security::StartTls, 587)));
    h.run(STARTTLS_SETUP);
    h.run(&format!(
        "
        C: AUTH PLAIN {PLAIN_B64}
        S: 535 5.7.139 Authentication unsuccessful, basic authentication is disabled.
    "
    ));
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::Auth, Phase::Auth));
    assert!(err.hint.as_deref().unwrap().contains("OAuth2"), "{err}");
    assert!(!err.to_string().contains(PASS));
}

#[test]
fn unusable_mechanisms_are_named_and_auth_is_never_skipped() {
    let mut h = Harness::new(with_auth(config(Security::Tls, 587)));
    let id = h.submit(envelope(&["b@example.org"]), b"x");
    h.run(
        "
        TLS
        S: 220 outlook
        C: EHLO client.example.com
        S: 250-outlook
        S: 250 AUTH GSSAPI NTLM
        C: QUIT
    ",
    );
    let err = h.close_error();
    assert_eq!(err.code, ErrorCode::AuthUnsupported);
    assert!(err.message.contains("GSSAPI NTLM"), "{}", err.message);
    assert_eq!(h.failure(id).unwrap().code, ErrorCode::AuthUnsupported);
    nothing_sensitive_sent(&h);
}

fn ready_plain(h: &mut Harness) {
    h.run(
        "
        S: 220 mx
        C: EHLO client.example.com
        S: 250-mx
        S: 250-PIPELINING
        S: 250-SIZE 1000
        S: 250 ENHANCEDSTATUSCODES
    ",
    );
}

#[test]
fn envelope_recipient_message_and_size_refusals() {
    let mut h = Harness::new(config(Security::None, 25));
    ready_plain(&mut h);
    let id = h.submit(envelope(&["b@example.org"]), b"x");
    h.run(
        "
        C: MAIL FROM:<ann@example.com>
        C: RCPT TO:<b@example.org>
        C: DATA
        S: 550 5.7.1 sender rejected
        S: 503 5.5.1 need MAIL
        S: 503 5.5.1 need RCPT
    ",
    );
    let err = h.failure(id).unwrap();
    assert_eq!(
        (err.code, err.phase, err.delivery_state),
        (ErrorCode::Envelope, Phase::Mail, DeliveryState::NotSent)
    );
    assert!(h.conn.is_idle(), "stray 503s are paired and consumed");

    let id = h.submit(envelope(&["x@example.org", "y@example.org"]), b"x");
    h.run(
        "
        C: MAIL FROM:<ann@example.com>
        C: RCPT TO:<x@example.org>
        C: RCPT TO:<y@example.org>
        C: DATA
        S: 250 ok
        S: 550 5.1.1 unknown
        S: 450 4.2.0 greylisted
        S: 554 5.5.1 no valid recipients
    ",
    );
    let err = h.failure(id).unwrap();
    assert_eq!(err.code, ErrorCode::Recipients);
    assert!(err.message.contains("x@example.org") && err.message.contains("y@example.org"));

    // The failed transaction may still be open on the server: RSET first.
    let id = h.submit(envelope(&["z@example.org"]), b"x");
    h.run(
        "
        C: RSET
        C: MAIL FROM:<ann@example.com>
        C: RCPT TO:<z@example.org>
        C: DATA
        S: 250 flushed
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: x
        C: .
        S: 554 5.7.1 spam
    ",
    );
    let err = h.failure(id).unwrap();
    assert_eq!(
        (err.code, err.delivery_state),
        (ErrorCode::Message, DeliveryState::NotSent)
    );

    let mut big = envelope(&["z@example.org"]);
    big.size = Some(5000);
    let id = h.submit(big, b"x");
    assert_eq!(h.failure(id).unwrap().code, ErrorCode::Size);
    h.expect_silence();

    let id = h.submit(envelope(&["z@example.org"]), b"x");
    h.run(
        "
        C: MAIL FROM:<ann@example.com>
        C: RCPT TO:<z@example.org>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: x
        C: .
        S: 552 5.3.4 message too big
    ",
    );
    assert_eq!(h.failure(id).unwrap().code, ErrorCode::Size);
}

#[test]
fn utf8_addresses_need_smtputf8_and_bad_input_sends_nothing() {
    let mut h = Harness::new(config(Security::None, 25));
    ready_plain(&mut h);
    let id = h.submit(Envelope::new("josé@example.com", ["b@example.org"]), b"x");
    assert_eq!(h.failure(id).unwrap().code, ErrorCode::Utf8);
    h.expect_silence();

    let err = h
        .conn
        .submit(
            Envelope::new("a@example.com>\r\nRCPT TO:<evil@x.org", ["b@example.org"]),
            h.now,
        )
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Input);
    let err = h
        .conn
        .submit(Envelope::new("a@example.com", ["b@example.org\0"]), h.now)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::Input);
    h.expect_silence();

    let bad_name = Config::new(HOST, 25).client_name("evil\r\nMAIL FROM:<x>");
    assert_eq!(
        Connection::new(bad_name, Instant::from_millis(0)).err().unwrap().code,
        ErrorCode::Input
    );
}

#[test]
fn garbage_and_unsolicited_replies_are_protocol_errors() {
    let mut h = Harness::new(config(Security::None, 25));
    h.server_bytes(b"HTTP/1.1 400 Bad Request\r\n");
    assert_eq!(h.close_error().code, ErrorCode::Protocol);

    let mut h = Harness::new(config(Security::None, 25));
    ready_plain(&mut h);
    h.server("250 surprise");
    assert_eq!(h.close_error().code, ErrorCode::Protocol);

    let mut h = Harness::new(config(Security::None, 25));
    ready_plain(&mut h);
    h.server("421 4.4.2 idle timeout");
    let err = h.close_error();
    assert_eq!(err.code, ErrorCode::Closed);
    assert!(err.retryable);

    let mut h = Harness::new(config(Security::None, 25));
    h.server_bytes(format!("220 {}\r\n", "x".repeat(5000)).as_bytes());
    assert_eq!(h.close_error().code, ErrorCode::Protocol);
}

#[test]
fn over_long_body_lines_abort_without_a_truncated_delivery() {
    let mut h = Harness::new(config(Security::None, 25));
    ready_plain(&mut h);
    let body = format!("Subject: x\r\n\r\n{}\r\n", "a".repeat(1200));
    let id = h.submit(envelope(&["b@example.org"]), body.as_bytes());
    h.run(
        "
        C: MAIL FROM:<ann@example.com>
        C: RCPT TO:<b@example.org>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
    ",
    );
    let err = h.failure(id).unwrap();
    assert_eq!(
        (err.code, err.delivery_state),
        (ErrorCode::Message, DeliveryState::NotSent)
    );
    assert!(h.closed().is_some());
    assert!(
        !String::from_utf8_lossy(&h.sent).contains("\r\n.\r\n"),
        "DATA was never terminated"
    );
}

// ----- Time-outs and dropped links -------------------------------------------

#[test]
fn stalls_end_with_the_configured_time_outs() {
    let mut h = Harness::new(config(Security::None, 25));
    ready_plain(&mut h);
    let id = h.submit(envelope(&["b@example.org"]), b"x");
    h.run(
        "
        C: MAIL FROM:<ann@example.com>
        C: RCPT TO:<b@example.org>
        C: DATA
        WAIT 59000
    ",
    );
    assert!(h.closed().is_none());
    h.run("WAIT 1000");
    let err = h.failure(id).unwrap();
    assert_eq!(
        (err.code, err.phase, err.delivery_state),
        (ErrorCode::TimedOut, Phase::Mail, DeliveryState::NotSent)
    );

    let mut h = Harness::new(config(Security::None, 25));
    ready_plain(&mut h);
    let id = h.submit(envelope(&["b@example.org"]), b"x");
    h.run(
        "
        C: MAIL FROM:<ann@example.com>
        C: RCPT TO:<b@example.org>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        C: x
        C: .
        WAIT 599000
    ",
    );
    assert!(h.failure(id).is_none(), "the end of data gets the RFC's 10 minutes");
    h.run("WAIT 1000");
    let err = h.failure(id).unwrap();
    assert_eq!(
        (err.code, err.delivery_state),
        (ErrorCode::TimedOut, DeliveryState::Unknown)
    );
}

#[test]
fn a_dropped_link_at_every_phase_reports_the_right_delivery_state() {
    let steps = [
        ("", Phase::Greeting),
        ("S: 220 mx\nC: EHLO client.example.com", Phase::Ehlo),
        (
            "S: 220 mx\nC: EHLO client.example.com\nS: 250-mx\nS: 250 STARTTLS\nC: STARTTLS",
            Phase::StartTls,
        ),
        (
            "S: 220 mx\nC: EHLO client.example.com\nS: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go",
            Phase::StartTls,
        ),
        (
            "S: 220 mx\nC: EHLO client.example.com\nS: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go\nTLS\nC: EHLO client.example.com\nS: 250-mx\nS: 250 AUTH PLAIN",
            Phase::Auth,
        ),
    ];
    for (script, phase) in steps {
        let mut h = Harness::new(with_auth(config(Security::StartTls, 587)));
        let id = h.submit(envelope(&["b@example.org"]), b"x");
        h.run(script);
        h.eof();
        let err = h.close_error();
        assert_eq!((err.code, err.phase), (ErrorCode::Closed, phase), "{script}");
        let msg = h.failure(id).unwrap();
        assert_eq!(msg.delivery_state, DeliveryState::NotSent, "{script}");
    }

    let tx_steps = [
        ("C: MAIL FROM:<ann@example.com>", Phase::Mail, DeliveryState::NotSent),
        (
            "C: MAIL FROM:<ann@example.com>\nS: 250 ok\nC: RCPT TO:<b@example.org>",
            Phase::Rcpt,
            DeliveryState::NotSent,
        ),
        (
            "C: MAIL FROM:<ann@example.com>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nS: 250 ok\nC: DATA",
            Phase::Data,
            DeliveryState::NotSent,
        ),
        (
            "C: MAIL FROM:<ann@example.com>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nS: 250 ok\nC: DATA\nS: 354 go\nC: line 1",
            Phase::Data,
            DeliveryState::Unknown,
        ),
    ];
    for (script, phase, state) in tx_steps {
        let mut h = Harness::new(config(Security::None, 25));
        h.run("S: 220 mx\nC: EHLO client.example.com\nS: 250 mx");
        let id = h.submit(envelope(&["b@example.org"]), b"line 1");
        h.run(script);
        h.eof();
        let err = h.failure(id).unwrap();
        assert_eq!(
            (err.code, err.phase, err.delivery_state),
            (ErrorCode::Closed, phase, state),
            "{script}"
        );
        assert!(h.delivered(id).is_none());
    }

    // Mid-body: the body is still streaming when the link drops.
    let mut cfg = config(Security::None, 25);
    cfg.limits.max_buffered_body = 16;
    let mut h = Harness::new(cfg);
    h.run("S: 220 mx\nC: EHLO client.example.com\nS: 250 mx");
    let id = h.conn.submit(envelope(&["b@example.org"]), h.now).unwrap();
    h.run("C: MAIL FROM:<ann@example.com>\nS: 250 ok\nC: RCPT TO:<b@example.org>\nS: 250 ok\nC: DATA\nS: 354 go");
    h.conn.write_body(id, b"partial body", h.now).unwrap();
    h.eof();
    let err = h.failure(id).unwrap();
    assert_eq!((err.phase, err.delivery_state), (Phase::Data, DeliveryState::NotSent));

    // QUIT: the server hangs up without 221; the session still ends cleanly.
    let mut h = Harness::new(config(Security::None, 25));
    h.run("S: 220 mx\nC: EHLO client.example.com\nS: 250 mx");
    h.conn.close(h.now);
    h.run("C: QUIT\nEOF");
    assert_eq!(h.closed(), Some(None));
}

#[test]
fn odd_codes_at_each_setup_step_end_in_a_defined_state() {
    let codes = [220, 221, 354, 421, 500, 501, 502, 504, 530, 550, 554];
    let stages: [(&str, &str); 5] = [
        ("greeting", ""),
        ("ehlo", "S: 220 mx\nC: EHLO client.example.com"),
        (
            "starttls",
            "S: 220 mx\nC: EHLO client.example.com\nS: 250-mx\nS: 250-PIPELINING\nS: 250 STARTTLS\nC: STARTTLS",
        ),
        (
            "rset",
            "S: 220 mx\nC: EHLO client.example.com\nS: 250-mx\nS: 250-PIPELINING\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go\nTLS\nC: EHLO client.example.com\nS: 250-mx\nS: 250 PIPELINING\nSUBMIT",
        ),
        (
            "quit",
            "S: 220 mx\nC: EHLO client.example.com\nS: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go\nTLS\nC: EHLO client.example.com\nS: 250 mx\nQUIT",
        ),
    ];
    for (stage, script) in stages {
        for code in codes {
            let mut h = Harness::new(config(Security::StartTls, 587));
            for line in script.lines() {
                match line {
                    // A failed DATA leaves the transaction open: the next MAIL is preceded by RSET.
                    "SUBMIT" => {
                        h.submit(envelope(&["b@example.org"]), b"x");
                        h.run("C: MAIL FROM:<ann@example.com>\nC: RCPT TO:<b@example.org>\nC: DATA\nS: 250 ok\nS: 250 ok\nS: 451 later");
                        h.submit(envelope(&["c@example.org"]), b"x");
                        h.run("C: RSET");
                    }
                    "QUIT" => {
                        h.conn.close(h.now);
                        h.run("C: QUIT");
                    }
                    _ => h.run(line),
                }
            }
            h.server(&format!("{code} odd reply"));
            // Whatever the code, the session either moved on by the rules or
            // ended with a defined error — and a dead server never hangs it.
            h.advance(Duration::from_secs(700));
            let closed = h
                .closed()
                .unwrap_or_else(|| panic!("{stage}/{code} left the session open\n{}", h.transcript()));
            if stage == "quit" {
                assert!(closed.is_none(), "quit/{code}");
                continue;
            }
            if let Some(err) = closed {
                assert!(!err.message.is_empty());
                if stage == "starttls" && code != 220 {
                    assert_eq!(
                        err.code,
                        if code == 421 || code == 221 {
                            ErrorCode::Closed
                        } else {
                            ErrorCode::StartTlsUnavailable
                        },
                        "starttls/{code}"
                    );
                }
            }
            assert!(!String::from_utf8_lossy(&h.sent).contains("AUTH"));
        }
    }
}

#[test]
fn noop_waits_for_its_reply_before_anything_else() {
    let mut h = Harness::new(config(Security::None, 25));
    ready_plain(&mut h);
    h.conn.noop(h.now);
    h.run("C: NOOP");
    let id = h.submit(envelope(&["b@example.org"]), b"x");
    h.expect_silence();
    h.run(
        "
        S: 250 ok
        C: MAIL FROM:<ann@example.com>
    ",
    );
    assert!(h.delivered(id).is_none());
}

#[test]
fn credentials_never_cross_an_unverified_tls_link() {
    let unverified = TlsInfo {
        version: "TLSv1.3".into(),
        cipher: None,
        authorized: false,
        authorization_error: Some("self-signed certificate".into()),
    };
    let setup = "
        S: 220 mx
        C: EHLO client.example.com
        S: 250-mx
        S: 250 STARTTLS
        C: STARTTLS
        S: 220 go
    ";
    let mut h = Harness::new(with_auth(config(Security::StartTls, 587)));
    h.run(setup);
    h.tls_up_with(unverified.clone());
    h.run(
        "
        C: EHLO client.example.com
        S: 250-mx
        S: 250 AUTH PLAIN
        C: QUIT
    ",
    );
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::AuthInsecure, Phase::Auth));
    assert!(err.message.contains("self-signed certificate"), "{err}");
    assert!(err.hint.as_deref().unwrap().contains("tls.ca"), "{err}");
    nothing_sensitive_sent(&h);

    // Only the explicit opt-in sends them anyway.
    let mut h = Harness::new(with_auth(config(Security::StartTls, 587)).allow_insecure_auth(true));
    h.run(setup);
    h.tls_up_with(unverified);
    h.run(&format!(
        "
        C: EHLO client.example.com
        S: 250-mx
        S: 250 AUTH PLAIN
        C: AUTH PLAIN {PLAIN_B64}
    "
    ));
}

#[test]
fn the_plaintext_capabilities_are_reported_but_never_used() {
    let mut h = Harness::new(config(Security::StartTls, 587));
    h.run(
        "
        S: 220 mx
        C: EHLO client.example.com
        S: 250-mx
        S: 250-AUTH PLAIN LOGIN
        S: 250 STARTTLS
        C: STARTTLS
        S: 220 go
        TLS
        C: EHLO client.example.com
        S: 250-mx
        S: 250 AUTH XOAUTH2
    ",
    );
    let info = h.ready().unwrap();
    assert_eq!(info.capabilities.auth, vec!["XOAUTH2"]);
    assert_eq!(
        info.capabilities_before_tls.as_ref().unwrap().auth,
        vec!["PLAIN", "LOGIN"]
    );
    assert_eq!(h.conn.greeting().unwrap().code, 220);
}

/// Found by fuzzing: a server must not be able to rewrite what a terminal
/// shows of the transcript (`\r`, ANSI escapes).
#[test]
fn server_control_characters_are_escaped_in_the_transcript() {
    let mut h = Harness::new(config(Security::None, 25));
    h.server_bytes(b"220 mx.example.com ESMTP\rS: 250 fake line\x1b[2K\r\n");
    let transcript = h.transcript();
    assert!(!transcript.contains(['\r', '\x1b']), "{transcript:?}");
    assert!(transcript.contains("\\rS: 250 fake line\\x1b[2K"), "{transcript:?}");
}

/// Fail-safe finding F1: plaintext in answer to the ClientHello after a
/// STARTTLS 220 is a broken or tampered STARTTLS, not a port mix-up.
#[test]
fn plaintext_after_the_starttls_220_is_a_tls_failure_not_a_port_mix_up() {
    let mut h = Harness::new(config(Security::StartTls, 587));
    h.run("S: 220 mx\nC: EHLO client.example.com\nS: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go");
    h.conn.tls_failed(
        TlsFailure::from_message("wrong version number (ERR_SSL_WRONG_VERSION_NUMBER)"),
        h.now,
    );
    h.pump();
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::Tls, Phase::StartTls));
    assert!(
        !err.hint.as_deref().unwrap().contains("use security: 'starttls'"),
        "{err}"
    );
}

/// Fail-safe finding F2: every failure of the STARTTLS handshake, a stall
/// included, is in phase `starttls`.
#[test]
fn a_stalled_starttls_handshake_is_phase_starttls() {
    let mut h = Harness::new(config(Security::StartTls, 587));
    h.run("S: 220 mx\nC: EHLO client.example.com\nS: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go\nWAIT 30000");
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::TimedOut, Phase::StartTls));
}

/// Fail-safe finding F3: messages queued behind a lost final reply fail
/// `not-sent` with an error about themselves.
#[test]
fn messages_behind_a_lost_final_reply_get_their_own_error() {
    let mut h = Harness::new(config(Security::None, 25));
    h.run("S: 220 mx\nC: EHLO client.example.com\nS: 250-mx\nS: 250 PIPELINING");
    let first = h.submit(envelope(&["b@example.org"]), b"x");
    let second = h.submit(envelope(&["c@example.org"]), b"y");
    h.run(
        "
        C: MAIL FROM:<ann@example.com>
        C: RCPT TO:<b@example.org>
        C: DATA
        S: 250 ok
        S: 250 ok
        S: 354 go
        WAIT 600000
    ",
    );
    let unknown = h.failure(first).unwrap();
    assert_eq!(
        (unknown.code, unknown.delivery_state),
        (ErrorCode::TimedOut, DeliveryState::Unknown)
    );
    let hint = unknown.hint.as_deref().unwrap();
    assert_eq!(hint.matches("may or may not").count(), 1, "{hint}");
    let behind = h.failure(second).unwrap();
    assert_eq!(behind.delivery_state, DeliveryState::NotSent);
    assert!(
        behind.message.starts_with("this message was not sent"),
        "{}",
        behind.message
    );
    assert!(behind.hint.as_deref().unwrap().contains("resending it is safe"));
}

/// Found by fuzzing: a body the encoder refuses after DATA's 354 fails the
/// message (EMESSAGE) and drops the link; it used to panic in write_body.

#[test]
fn a_too_long_line_written_after_354_fails_the_message_without_panicking() {
    let mut config = Config::new("mx.example.com", 25)
        .security(Security::None)
        .client_name("client.example.com");
    // Small enough that the body is still being pushed when DATA's 354 comes
    // (the same happens with the default 256 KiB and a bigger message).
    config.limits.max_buffered_body = 64;
    let mut h = Harness::new(config);
    let mut body = b"Subject: long\r\n\r\n".to_vec();
    body.extend(std::iter::repeat_n(b'x', 1200)); // over RFC 5322's 998
    body.extend_from_slice(b"\r\n");
    let id = h.submit(Envelope::new("ann@example.com", ["bob@example.org"]), &body);
    h.run(
        "
        S: 220 mx.example.com ESMTP
        C: EHLO client.example.com
        S: 250 mx.example.com
        C: MAIL FROM:<ann@example.com>
        S: 250 2.1.0 Ok
        C: RCPT TO:<bob@example.org>
        S: 250 2.1.5 Ok
        C: DATA
        S: 354 go ahead
        ",
    );
    assert_eq!(h.outcomes(id), 1);
    assert_eq!(h.failure(id).map(|e| e.code), Some(ErrorCode::Message));
}

/// A host whose TLS upgrade returns before the handshake is known good
/// (Workers): a failure before the first byte over TLS is the handshake's.
#[test]
fn a_failure_right_after_an_unconfirmed_handshake_is_a_tls_failure() {
    let setup = "S: 220 mx\nC: EHLO client.example.com\nS: 250-mx\nS: 250 STARTTLS\nC: STARTTLS\nS: 220 go";
    let info = || TlsInfo {
        version: "TLS".into(),
        cipher: None,
        authorized: true,
        authorization_error: None,
    };
    let mut h = Harness::new(with_auth(config(Security::StartTls, 587)));
    h.run(setup);
    h.conn.tls_established_unconfirmed(info(), h.now);
    h.run("C: EHLO client.example.com");
    h.conn.socket_failed("internal error; reference = abc", false, h.now);
    h.pump();
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::Cert, Phase::StartTls), "{err}");
    nothing_sensitive_sent(&h);

    // Once the server spoke over TLS, failures are ordinary again.
    let mut h = Harness::new(config(Security::StartTls, 587));
    h.run(setup);
    h.conn.tls_established_unconfirmed(info(), h.now);
    h.run("C: EHLO client.example.com\nS: 250 mx");
    h.conn.socket_failed("internal error; reference = abc", false, h.now);
    h.pump();
    assert_eq!(h.close_error().code, ErrorCode::Closed);
}

// ----- Servers that keep a failed transaction --------------------------------
//
// What a server holds after a refused transaction is its own choice: Postfix
// ends it at BDAT LAST whatever happened; Exim and Dovecot LMTP keep the MAIL
// open after a refused BDAT (or DATA), and a MAIL written behind it meets
// "503 sender already given". The replies below are those servers' own
// (Exim 4.96, Dovecot 2.3 LMTP, OpenSMTPD 6.8, Postfix 3.7).

fn sender(i: usize) -> String {
    format!("s{i}@example.com")
}

fn message_from(i: usize, to: &[&str]) -> Envelope {
    Envelope::new(sender(i), to.iter().copied())
}

/// One end of data (`.` or `BDAT … LAST`) as the server saw it: the sender
/// the client meant it for (its last MAIL FROM), the sender of the
/// transaction the server actually held (per its replies), and the reply.
#[derive(Debug, PartialEq, Eq)]
struct Landing {
    meant_for: String,
    held_by: Option<String>,
    code: u16,
}

/// Replays the transcript the way the server lived it: replies pair with
/// commands in order (SMTP: one each), a 250 to MAIL opens a transaction
/// under that sender (a 503 leaves the one held), a 250 to RSET and any
/// reply to an end of DATA close it, and a reply to BDAT LAST closes it when
/// it is a 2xx, or always when `ends_at_bdat_last` (Postfix).
fn landings(h: &Harness, ends_at_bdat_last: bool) -> Vec<Landing> {
    let transcript = h.transcript();
    let mut commands = Vec::new();
    let mut replies = Vec::new();
    for line in transcript.lines() {
        if let Some(text) = line.strip_prefix("C: ") {
            if !text.starts_with('<') && !text.starts_with('(') {
                commands.push(text.to_string());
            }
        } else if let Some(text) = line.strip_prefix("S: ") {
            // The last line of a reply has a space (or nothing) after its code.
            if text.len() == 3 || text.as_bytes()[3] == b' ' {
                replies.push(text[..3].parse::<u16>().unwrap());
            }
        }
    }
    let mut held: Option<String> = None;
    let mut meant_for = String::new();
    let mut out = Vec::new();
    // The first reply is the greeting.
    for (command, code) in commands.iter().zip(replies.iter().skip(1).copied()) {
        if let Some(path) = command.strip_prefix("MAIL FROM:<") {
            let from = path[..path.find('>').unwrap()].to_string();
            meant_for.clone_from(&from);
            if code == 250 {
                held = Some(from);
            }
        } else if command == "RSET" && code == 250 {
            held = None;
        } else if command == "." || (command.starts_with("BDAT ") && command.contains(" LAST ")) {
            out.push(Landing {
                meant_for: meant_for.clone(),
                held_by: held.clone(),
                code,
            });
            if command == "." || ends_at_bdat_last || (200..300).contains(&code) {
                held = None;
            }
        }
    }
    out
}

/// Every end of data the server accepted belonged to a transaction opened
/// by the message it carried; returns the senders of those, in order.
fn accepted_under_own_sender(h: &Harness, ends_at_bdat_last: bool) -> Vec<String> {
    let mut accepted = Vec::new();
    for landing in landings(h, ends_at_bdat_last) {
        if (200..300).contains(&landing.code) {
            assert_eq!(
                landing.held_by.as_deref(),
                Some(landing.meant_for.as_str()),
                "data accepted under another message's envelope\n{}",
                h.transcript()
            );
            accepted.push(landing.meant_for);
        }
    }
    accepted
}

/// Without PIPELINING every write holds one command (a BDAT with its chunk,
/// or message data ending in `.`, counts as one): OpenSMTPD answers two
/// commands in one write with "500 5.5.1 Invalid command: Pipelining not supported".
fn assert_one_command_per_write(h: &Harness) {
    for write in &h.writes {
        let text = String::from_utf8_lossy(write);
        if text.ends_with("\r\n.\r\n") || text == ".\r\n" {
            continue; // message data after 354
        }
        let line_end = text.find("\r\n").expect("a write ends a command") + 2;
        let expected = match text.strip_prefix("BDAT ") {
            Some(rest) => line_end + rest.split([' ', '\r']).next().unwrap().parse::<usize>().unwrap(),
            None => line_end,
        };
        assert_eq!(
            write.len(),
            expected,
            "more than one command in one write: {text:?}\n{}",
            h.transcript()
        );
    }
}

#[test]
fn exim_keeps_a_refused_bdat_transaction_so_the_next_mail_goes_behind_rset() {
    both_splits(
        |h| {
            h.run(
                "
                S: 220 mail.example.com ESMTP Exim 4.96
                C: EHLO client.example.com
                S: 250-mail.example.com Hello client.example.com [127.0.0.1]
                S: 250-SIZE 52428800
                S: 250-PIPELINING
                S: 250-CHUNKING
                S: 250 HELP
            ",
            );
            let ok1 = h.submit(message_from(1, &["r1@example.org"]), b"one");
            let refused = h.submit(message_from(2, &["nobody@example.org"]), b"two");
            let ok3 = h.submit(message_from(3, &["r3@example.org"]), b"three");
            h.expect_client_bytes(
                b"MAIL FROM:<s1@example.com>\r\nRCPT TO:<r1@example.org>\r\nBDAT 5 LAST\r\none\r\n\
RSET\r\nMAIL FROM:<s2@example.com>\r\nRCPT TO:<nobody@example.org>\r\nBDAT 5 LAST\r\ntwo\r\n\
RSET\r\nMAIL FROM:<s3@example.com>\r\nRCPT TO:<r3@example.org>\r\nBDAT 7 LAST\r\nthree\r\n",
            );
            h.expect_silence();
            h.run(
                "
                S: 250 OK
                S: 250 Accepted
                S: 250- 5 byte chunk, total 5
                S: 250 OK id=1vA001-000001-AB
                S: 250 Reset OK
                S: 250 OK
                S: 550 Unrouteable address
                S: 503 Valid RCPT command must precede BDAT
                S: 250 Reset OK
                S: 250 OK
                S: 250 Accepted
                S: 250- 7 byte chunk, total 7
                S: 250 OK id=1vA003-000003-CD
            ",
            );
            let d = h.delivered(ok1).unwrap();
            assert_eq!(d.queue_id.as_deref(), Some("1vA001-000001-AB"));
            assert_eq!(d.reply.to_string(), "250 5 byte chunk, total 5 OK id=1vA001-000001-AB");
            let err = h.failure(refused).unwrap();
            assert_eq!(
                (err.code, err.delivery_state),
                (ErrorCode::Recipients, DeliveryState::NotSent)
            );
            assert_eq!(h.delivered(ok3).unwrap().queue_id.as_deref(), Some("1vA003-000003-CD"));
            assert_eq!(accepted_under_own_sender(h, false), [sender(1), sender(3)]);
            assert!(h.conn.is_idle());
        },
        || Harness::new(config(Security::None, 25)),
    );
}

/// What the engine did before it knew: MAIL right behind the refused BDAT
/// LAST. The transcript pairing shows Exim would have delivered message 3
/// under message 2's sender; the engine no longer writes this.
#[test]
fn the_landing_check_sees_data_accepted_under_another_sender() {
    let mut h = Harness::new(config(Security::None, 25));
    h.run("S: 220 mx\nC: EHLO client.example.com\nS: 250 mx");
    // Built by hand: the replies Exim gives when MAIL is written right
    // behind a refused BDAT LAST, checked with the same replay as above.
    let transcript_events = [
        ("C", "MAIL FROM:<s2@example.com>"),
        ("C", "RCPT TO:<nobody@example.org>"),
        ("C", "BDAT 5 LAST <5 bytes of message data>"),
        ("C", "MAIL FROM:<s3@example.com>"),
        ("C", "RCPT TO:<r3@example.org>"),
        ("C", "BDAT 7 LAST <7 bytes of message data>"),
        ("S", "250 OK"),
        ("S", "550 Unrouteable address"),
        ("S", "503 Valid RCPT command must precede BDAT"),
        ("S", "503 sender already given"),
        ("S", "250 Accepted"),
        ("S", "250 OK id=1vA003-000003-CD"),
    ];
    for (dir, text) in transcript_events {
        h.events.push(Event::Transcript(TranscriptLine {
            dir: if dir == "C" {
                Direction::Client
            } else {
                Direction::Server
            },
            text: text.to_string(),
        }));
    }
    let landed = landings(&h, false);
    assert_eq!(
        landed.last().unwrap(),
        &Landing {
            meant_for: sender(3),
            held_by: Some(sender(2)),
            code: 250
        }
    );
}

#[test]
fn exim_with_data_a_refused_transaction_mid_batch_is_reset_before_the_next() {
    let mut h = Harness::new(config(Security::None, 25));
    h.run(
        "
        S: 220 mail.example.com ESMTP Exim 4.96
        C: EHLO client.example.com
        S: 250-mail.example.com Hello client.example.com [127.0.0.1]
        S: 250-PIPELINING
        S: 250 HELP
    ",
    );
    let ok1 = h.submit(message_from(1, &["r1@example.org"]), b"one");
    let refused = h.submit(message_from(2, &["nobody@example.org"]), b"two");
    let ok3 = h.submit(message_from(3, &["r3@example.org"]), b"three");
    h.run(
        "
        C: MAIL FROM:<s1@example.com>
        C: RCPT TO:<r1@example.org>
        C: DATA
        S: 250 OK
        S: 250 Accepted
        S: 354 Enter message, ending with \".\" on a line by itself
    ",
    );
    // The end of DATA clears the transaction (RFC 5321 §4.1.1.4): the next
    // envelope shares the write, without RSET.
    h.expect_client_bytes(b"one\r\n.\r\nMAIL FROM:<s2@example.com>\r\nRCPT TO:<nobody@example.org>\r\nDATA\r\n");
    h.run(
        "
        S: 250 OK id=1vA001-000001-AB
        S: 250 OK
        S: 550 Unrouteable address
        S: 503-All RCPT commands were rejected with this error:
        S: 503-550 Unrouteable address
        S: 503 Valid RCPT command must precede DATA
    ",
    );
    // Exim still holds s2's MAIL: RSET, in the same flight as the next envelope.
    h.expect_client_bytes(b"RSET\r\nMAIL FROM:<s3@example.com>\r\nRCPT TO:<r3@example.org>\r\nDATA\r\n");
    h.run(
        "
        S: 250 Reset OK
        S: 250 OK
        S: 250 Accepted
        S: 354 Enter message, ending with \".\" on a line by itself
        C: three
        C: .
        S: 250 OK id=1vA003-000003-CD
    ",
    );
    assert!(h.delivered(ok1).is_some());
    let err = h.failure(refused).unwrap();
    assert_eq!(
        (err.code, err.delivery_state),
        (ErrorCode::Recipients, DeliveryState::NotSent)
    );
    assert!(h.delivered(ok3).is_some());
    assert_eq!(accepted_under_own_sender(&h, false), [sender(1), sender(3)]);
}

/// Dovecot LMTP keeps MAIL after "503 5.5.0 No valid recipients" and then
/// answers every MAIL "503 5.5.0 MAIL already given" and every BDAT
/// "503 5.5.0 Previous data chunk failed, issue RSET first" until RSET.
#[test]
fn dovecot_lmtp_demands_rset_after_a_refused_chunk() {
    let mut h = Harness::new(config(Security::None, 24).protocol(Protocol::Lmtp));
    h.run(
        "
        S: 220 mail.example.com Dovecot ready.
        C: LHLO client.example.com
        S: 250-mail.example.com
        S: 250-8BITMIME
        S: 250-CHUNKING
        S: 250-ENHANCEDSTATUSCODES
        S: 250 PIPELINING
    ",
    );
    let ok1 = h.submit(message_from(1, &["r1@example.org", "full@example.org"]), b"one");
    let refused = h.submit(message_from(2, &["nobody@example.org"]), b"two");
    let ok3 = h.submit(message_from(3, &["r3@example.org"]), b"three");
    let all_full = h.submit(message_from(4, &["full@example.org"]), b"four");
    h.expect_client_bytes(
        b"MAIL FROM:<s1@example.com> BODY=8BITMIME\r\nRCPT TO:<r1@example.org>\r\nRCPT TO:<full@example.org>\r\nBDAT 5 LAST\r\none\r\n\
RSET\r\nMAIL FROM:<s2@example.com> BODY=8BITMIME\r\nRCPT TO:<nobody@example.org>\r\nBDAT 5 LAST\r\ntwo\r\n\
RSET\r\nMAIL FROM:<s3@example.com> BODY=8BITMIME\r\nRCPT TO:<r3@example.org>\r\nBDAT 7 LAST\r\nthree\r\n\
RSET\r\nMAIL FROM:<s4@example.com> BODY=8BITMIME\r\nRCPT TO:<full@example.org>\r\nBDAT 6 LAST\r\nfour\r\n",
    );
    h.run(
        "
        S: 250 2.1.0 OK
        S: 250 2.1.5 OK
        S: 250 2.1.5 OK
        S: 250 2.0.0 <r1@example.org> Kx2Lr3nX1GYbDAAA Saved
        S: 552 5.2.2 <full@example.org> Quota exceeded (mailbox for user is full)
        S: 250 2.0.0 OK
        S: 250 2.1.0 OK
        S: 550 5.1.1 <nobody@example.org> User doesn't exist: nobody@example.org
        S: 503 5.5.0 No valid recipients
        S: 250 2.0.0 OK
        S: 250 2.1.0 OK
        S: 250 2.1.5 OK
        S: 250 2.0.0 <r3@example.org> Mx2Lr3nX1GYbDAAA Saved
        S: 250 2.0.0 OK
        S: 250 2.1.0 OK
        S: 250 2.1.5 OK
        S: 552 5.2.2 <full@example.org> Quota exceeded (mailbox for user is full)
    ",
    );
    let d = h.delivered(ok1).unwrap();
    assert_eq!(d.accepted, ["r1@example.org"]);
    assert_eq!(d.rejected[0].address, "full@example.org");
    let err = h.failure(refused).unwrap();
    assert_eq!(
        (err.code, err.delivery_state),
        (ErrorCode::Recipients, DeliveryState::NotSent)
    );
    assert!(h.delivered(ok3).is_some());
    // A full mailbox is about the recipient, not about the message's size.
    let err = h.failure(all_full).unwrap();
    assert_eq!(err.code, ErrorCode::Recipients, "{err}");
    assert!(err.message.contains("full@example.org (552 5.2.2"), "{err}");
    assert!(err.hint.as_deref().unwrap().contains("mailbox is full"), "{err}");
    assert!(h.conn.is_idle() && h.closed().is_none());
    assert!(!h.transcript().contains("S: 503 5.5.0 MAIL already given"));
}

/// OpenSMTPD offers no PIPELINING and refuses two commands in one write:
/// the RSET after a refused transaction is a round trip of its own.
#[test]
fn without_pipelining_rset_and_mail_never_share_a_write() {
    let mut h = Harness::new(config(Security::None, 25));
    h.run(
        "
        S: 220 mail.example.com ESMTP OpenSMTPD
        C: EHLO client.example.com
        S: 250-mail.example.com Hello client.example.com [127.0.0.1], pleased to meet you
        S: 250-8BITMIME
        S: 250-ENHANCEDSTATUSCODES
        S: 250-SIZE 36700160
        S: 250 HELP
    ",
    );
    let ok1 = h.submit(message_from(1, &["r1@example.org"]), b"one");
    let refused = h.submit(message_from(2, &["nobody@example.org"]), b"two");
    let later = h.submit(message_from(3, &["r3@example.org"]), b"three");
    let ok4 = h.submit(message_from(4, &["r4@example.org"]), b"four");
    h.run(
        "
        C: MAIL FROM:<s1@example.com> BODY=8BITMIME
        S: 250 2.0.0 Ok
        C: RCPT TO:<r1@example.org>
        S: 250 2.1.5 Destination address valid: Recipient ok
        C: DATA
        S: 354 Enter mail, end with \".\" on a line by itself
        C: one
        C: .
        S: 250 2.0.0 6a1f2c3d Message accepted for delivery
        C: MAIL FROM:<s2@example.com> BODY=8BITMIME
        S: 250 2.0.0 Ok
        C: RCPT TO:<nobody@example.org>
        S: 524 5.2.4 Mailing list expansion problem: <nobody@example.org>
        C: RSET
        S: 250 2.0.0 Reset state
        C: MAIL FROM:<s3@example.com> BODY=8BITMIME
        S: 451 4.3.0 Temporary failure, try again later
        C: MAIL FROM:<s4@example.com> BODY=8BITMIME
        S: 250 2.0.0 Ok
        C: RCPT TO:<r4@example.org>
        S: 250 2.1.5 Destination address valid: Recipient ok
        C: DATA
        S: 354 Enter mail, end with \".\" on a line by itself
        C: four
        C: .
        S: 250 2.0.0 7b2e3d4f Message accepted for delivery
    ",
    );
    assert_one_command_per_write(&h);
    assert!(h.delivered(ok1).is_some());
    assert_eq!(h.failure(refused).unwrap().code, ErrorCode::Recipients);
    let err = h.failure(later).unwrap();
    assert_eq!(
        (err.code, err.retryable, err.delivery_state),
        (ErrorCode::Envelope, true, DeliveryState::NotSent)
    );
    assert!(h.delivered(ok4).is_some());
    assert_eq!(accepted_under_own_sender(&h, false), [sender(1), sender(4)]);
    h.conn.close(h.now);
    h.run("C: QUIT\nS: 221 2.0.0 Bye");
    assert_one_command_per_write(&h);
}

/// A 4xx on MAIL (Postfix, BDAT window): the RCPT and BDAT pipelined behind
/// it are answered "need MAIL"; nothing is held, every other message goes.
#[test]
fn a_4xx_on_mail_in_a_bdat_window() {
    let mut h = Harness::new(config(Security::None, 25));
    ready_chunking(&mut h);
    let ok1 = h.submit(message_from(1, &["r1@example.org"]), b"one");
    let deferred = h.submit(message_from(2, &["r2@example.org"]), b"two");
    let ok3 = h.submit(message_from(3, &["r3@example.org"]), b"three");
    h.expect_client_bytes(
        b"MAIL FROM:<s1@example.com>\r\nRCPT TO:<r1@example.org>\r\nBDAT 5 LAST\r\none\r\n\
RSET\r\nMAIL FROM:<s2@example.com>\r\nRCPT TO:<r2@example.org>\r\nBDAT 5 LAST\r\ntwo\r\n\
RSET\r\nMAIL FROM:<s3@example.com>\r\nRCPT TO:<r3@example.org>\r\nBDAT 7 LAST\r\nthree\r\n",
    );
    h.run(
        "
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.0.0 Ok: queued as Q1
        S: 250 2.0.0 Ok
        S: 451 4.3.0 <s2@example.com>: Temporary lookup failure
        S: 503 5.5.1 Error: need MAIL command
        S: 503 5.5.1 Error: need MAIL command
        S: 250 2.0.0 Ok
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 2.0.0 Ok: queued as Q3
    ",
    );
    assert!(h.delivered(ok1).is_some() && h.delivered(ok3).is_some());
    let err = h.failure(deferred).unwrap();
    assert_eq!(
        (err.code, err.phase, err.retryable, err.delivery_state),
        (ErrorCode::Envelope, Phase::Mail, true, DeliveryState::NotSent)
    );
    assert_eq!(accepted_under_own_sender(&h, true), [sender(1), sender(3)]);
    // MAIL refused opens nothing: the next message needs no RSET.
    let ok4 = h.submit(message_from(4, &["r4@example.org"]), b"four");
    h.run("C: MAIL FROM:<s4@example.com>\nC: RCPT TO:<r4@example.org>\nC: BDAT 6 LAST\nC: four");
    h.run("S: 250 2.1.0 Ok\nS: 250 2.1.5 Ok\nS: 250 2.0.0 Ok: queued as Q4");
    assert!(h.delivered(ok4).is_some());
}

/// A 5xx on the final BDAT (Exim's data ACL): the message fails with the
/// server's reason, and the next one (already behind an RSET) is delivered.
#[test]
fn a_5xx_on_the_final_bdat() {
    let mut h = Harness::new(config(Security::None, 25));
    ready_chunking(&mut h);
    let refused = h.submit(message_from(1, &["r1@example.org"]), b"spam");
    let ok2 = h.submit(message_from(2, &["r2@example.org"]), b"ham");
    h.expect_client_bytes(
        b"MAIL FROM:<s1@example.com>\r\nRCPT TO:<r1@example.org>\r\nBDAT 6 LAST\r\nspam\r\n\
RSET\r\nMAIL FROM:<s2@example.com>\r\nRCPT TO:<r2@example.org>\r\nBDAT 5 LAST\r\nham\r\n",
    );
    h.run(
        "
        S: 250 OK
        S: 250 Accepted
        S: 550 Administrative prohibition
        S: 250 Reset OK
        S: 250 OK
        S: 250 Accepted
        S: 250- 5 byte chunk, total 5
        S: 250 OK id=1vA002-000002-BC
    ",
    );
    let err = h.failure(refused).unwrap();
    assert_eq!(
        (err.code, err.phase, err.delivery_state),
        (ErrorCode::Message, Phase::Data, DeliveryState::NotSent)
    );
    assert!(err.message.contains("550 Administrative prohibition"), "{err}");
    assert!(h.delivered(ok2).is_some());
    assert_eq!(accepted_under_own_sender(&h, false), [sender(2)]);
    // The refused BDAT LAST is known now: RSET before the next message.
    let ok3 = h.submit(message_from(3, &["r3@example.org"]), b"x");
    h.run("C: MAIL FROM:<s3@example.com>");
    let ok4 = h.submit(message_from(4, &["r4@example.org"]), b"y");
    h.run("C: RCPT TO:<r3@example.org>\nC: BDAT 3 LAST\nC: x\nS: 250 OK\nS: 250 Accepted\nS: 554 5.7.1 rejected");
    assert!(h.failure(ok3).is_some());
    h.run("C: RSET\nC: MAIL FROM:<s4@example.com>\nC: RCPT TO:<r4@example.org>\nC: BDAT 3 LAST\nC: y");
    h.run("S: 250 Reset OK\nS: 250 OK\nS: 250 Accepted\nS: 250 OK id=4");
    assert!(h.delivered(ok4).is_some());
}

/// The server refuses the DATA command (and another answers it with 250,
/// which is out of step, not a refusal).
#[test]
fn a_server_that_rejects_the_data_command() {
    let mut h = Harness::new(config(Security::None, 25));
    ready_plain(&mut h);
    let refused = h.submit(message_from(1, &["r1@example.org"]), b"one");
    let ok2 = h.submit(message_from(2, &["r2@example.org"]), b"two");
    h.run(
        "
        C: MAIL FROM:<s1@example.com>
        C: RCPT TO:<r1@example.org>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 554 5.7.1 DATA refused by policy
        C: RSET
        C: MAIL FROM:<s2@example.com>
        C: RCPT TO:<r2@example.org>
        C: DATA
        S: 250 2.0.0 Ok
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 354 go ahead
        C: two
        C: .
        S: 250 2.0.0 Ok: queued as Q2
    ",
    );
    let err = h.failure(refused).unwrap();
    assert_eq!(
        (err.code, err.phase, err.delivery_state),
        (ErrorCode::Message, Phase::Data, DeliveryState::NotSent)
    );
    assert!(err.message.contains("refused DATA"), "{err}");
    assert!(h.delivered(ok2).is_some());
    assert_eq!(accepted_under_own_sender(&h, false), [sender(2)]);

    let mut h = Harness::new(config(Security::None, 25));
    ready_plain(&mut h);
    let odd = h.submit(message_from(1, &["r1@example.org"]), b"one");
    h.run(
        "
        C: MAIL FROM:<s1@example.com>
        C: RCPT TO:<r1@example.org>
        C: DATA
        S: 250 2.1.0 Ok
        S: 250 2.1.5 Ok
        S: 250 ok
    ",
    );
    let err = h.failure(odd).unwrap();
    assert_eq!(
        (err.code, err.phase, err.delivery_state),
        (ErrorCode::Protocol, Phase::Data, DeliveryState::NotSent),
        "{err}"
    );
    assert!(err.message.contains("instead of 354"), "{err}");
    assert_eq!(h.close_error().code, ErrorCode::Protocol);
    h.expect_silence();
}

/// A server that still holds a transaction nobody knew of answers MAIL with
/// 503; the RCPT and data pipelined behind it join that transaction. Once
/// the data is out, a 2xx means it went out under another sender: `unknown`,
/// never `not-sent` nor delivered. Before the data is out, the message
/// stops there (not sent) and RSET clears the server for the next one.
#[test]
fn mail_answered_sender_already_given_is_never_attributed_to_the_message() {
    let mut h = Harness::new(config(Security::None, 25));
    ready_chunking(&mut h);
    let joined = h.submit(message_from(1, &["r1@example.org"]), b"one");
    let next = h.submit(message_from(2, &["r2@example.org"]), b"two");
    h.expect_client_bytes(
        b"MAIL FROM:<s1@example.com>\r\nRCPT TO:<r1@example.org>\r\nBDAT 5 LAST\r\none\r\n\
RSET\r\nMAIL FROM:<s2@example.com>\r\nRCPT TO:<r2@example.org>\r\nBDAT 5 LAST\r\ntwo\r\n",
    );
    h.run(
        "
        S: 503 sender already given
        S: 250 Accepted
        S: 250 OK id=1vA009-000009-ZZ
        S: 250 Reset OK
        S: 250 OK
        S: 250 Accepted
        S: 250 OK id=1vA002-000002-BC
    ",
    );
    let err = h.failure(joined).unwrap();
    assert_eq!(
        (err.code, err.delivery_state, err.retryable),
        (ErrorCode::Protocol, DeliveryState::Unknown, false),
        "{err}"
    );
    assert!(err.message.contains("503 sender already given"), "{err}");
    assert!(h.delivered(joined).is_none());
    assert!(h.delivered(next).is_some());

    // The same 503 seen before the data went out (no PIPELINING): not sent.
    let mut h = Harness::new(config(Security::None, 25));
    h.run("S: 220 mx\nC: EHLO client.example.com\nS: 250-mx\nS: 250 CHUNKING");
    let stopped = h.submit(message_from(1, &["r1@example.org"]), b"one");
    let next = h.submit(message_from(2, &["r2@example.org"]), b"two");
    h.run(
        "
        C: MAIL FROM:<s1@example.com>
        S: 503 sender already given
        C: RSET
        S: 250 Reset OK
        C: MAIL FROM:<s2@example.com>
        S: 250 OK
        C: RCPT TO:<r2@example.org>
        S: 250 Accepted
        C: BDAT 5 LAST
        C: two
        S: 250 OK id=2
    ",
    );
    assert_one_command_per_write(&h);
    let err = h.failure(stopped).unwrap();
    assert_eq!(
        (err.code, err.delivery_state, err.retryable),
        (ErrorCode::Protocol, DeliveryState::NotSent, true),
        "{err}"
    );
    assert!(h.delivered(next).is_some());

    // With DATA the server opens DATA for the joined transaction: ending it
    // empty would deliver an empty message, so the connection is dropped.
    let mut h = Harness::new(config(Security::None, 25));
    ready_plain(&mut h);
    let joined = h.submit(message_from(1, &["r1@example.org"]), b"one");
    let behind = h.submit(message_from(2, &["r2@example.org"]), b"two");
    h.run(
        "
        C: MAIL FROM:<s1@example.com>
        C: RCPT TO:<r1@example.org>
        C: DATA
        S: 503 sender already given
        S: 250 Accepted
        S: 354 Enter message
    ",
    );
    h.expect_silence();
    assert_eq!(h.failure(joined).unwrap().delivery_state, DeliveryState::NotSent);
    let err = h.failure(behind).unwrap();
    assert_eq!(
        (err.code, err.retryable, err.delivery_state),
        (ErrorCode::Closed, true, DeliveryState::NotSent)
    );
    assert!(h.closed().is_some());
}

/// LMTP answers the end of data once per recipient of the transaction; once
/// MAIL met a transaction the server held, that count is unknown, so the
/// connection ends and every message whose data is out is `unknown`.
#[test]
fn lmtp_mail_already_given_after_the_data_went_out_ends_the_connection() {
    let mut h = Harness::new(config(Security::None, 24).protocol(Protocol::Lmtp));
    h.run(
        "
        S: 220 mail.example.com Dovecot ready.
        C: LHLO client.example.com
        S: 250-mail.example.com
        S: 250-CHUNKING
        S: 250-ENHANCEDSTATUSCODES
        S: 250 PIPELINING
    ",
    );
    let joined = h.submit(message_from(1, &["r1@example.org"]), b"one");
    let behind = h.submit(message_from(2, &["r2@example.org"]), b"two");
    let waiting = h.conn.submit(message_from(3, &["r3@example.org"]), h.now).unwrap();
    h.expect_client_bytes(
        b"MAIL FROM:<s1@example.com>\r\nRCPT TO:<r1@example.org>\r\nBDAT 5 LAST\r\none\r\n\
RSET\r\nMAIL FROM:<s2@example.com>\r\nRCPT TO:<r2@example.org>\r\nBDAT 5 LAST\r\ntwo\r\n\
RSET\r\nMAIL FROM:<s3@example.com>\r\nRCPT TO:<r3@example.org>\r\n",
    );
    h.server("503 5.5.0 MAIL already given");
    for id in [joined, behind] {
        let err = h.failure(id).unwrap();
        assert_eq!(err.delivery_state, DeliveryState::Unknown, "{err}");
    }
    let err = h.failure(waiting).unwrap();
    assert_eq!(err.delivery_state, DeliveryState::NotSent, "{err}");
    let err = h.close_error();
    assert_eq!(err.code, ErrorCode::Protocol);
    assert!(err.message.contains("MAIL already given"), "{err}");
    h.expect_silence();
}

// ----- OAuth2: a refused token is renewed once ----------------------------------

const STALE: &str = "ya29.stale";
const FRESH: &str = "ya29.fresh";

fn token_config(renew: bool) -> Config {
    config(Security::StartTls, 587)
        .credentials(Credentials::OAuth2 {
            user: "ann@example.com".into(),
            access_token: STALE.into(),
        })
        .renew_refused_token(renew)
}

/// STARTTLS_SETUP with the OAuth2 mechanisms offered after TLS.
fn oauth_setup() -> String {
    STARTTLS_SETUP.replace("AUTH PLAIN LOGIN", "AUTH XOAUTH2 OAUTHBEARER")
}

fn xoauth2_line(token: &str) -> String {
    let payload = format!("user=ann@example.com\x01auth=Bearer {token}\x01\x01");
    format!("AUTH XOAUTH2 {}", base64::encode(payload))
}

/// The 334 error challenge Gmail sends for an expired token, the client's
/// empty answer, and the final 535.
fn xoauth2_refusal(token: &str) -> String {
    let challenge = base64::encode(r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#);
    format!(
        "
        C: {}
        S: 334 {challenge}
        C:
        S: 535-5.7.8 Username and Password not accepted.
        S: 535 5.7.8 https://support.google.com/mail/?p=BadCredentials
    ",
        xoauth2_line(token)
    )
}

fn renewal_requests(h: &Harness) -> usize {
    h.events
        .iter()
        .filter(|e| matches!(e, Event::AccessTokenRefused))
        .count()
}

#[test]
fn a_refused_token_is_renewed_once_and_auth_runs_again() {
    let h = both_splits(
        |h| {
            h.run(&oauth_setup());
            let id = h.submit(envelope(&["bob@example.org"]), b"hi");
            h.run(&xoauth2_refusal(STALE));
            // The engine waits for the host: nothing is sent, nothing failed.
            h.expect_silence();
            assert_eq!(renewal_requests(h), 1);
            assert!(h.closed().is_none() && h.failure(id).is_none());
            assert_eq!(h.conn.state(), State::Setup);
            h.conn.supply_access_token(FRESH, h.now);
            h.run(&format!(
                "
                C: {}
                S: 235 2.7.0 Accepted
                C: MAIL FROM:<ann@example.com> BODY=8BITMIME
                C: RCPT TO:<bob@example.org>
                C: DATA
                S: 250 ok
                S: 250 ok
                S: 354 go
                C: hi
                C: .
                S: 250 queued
            ",
                xoauth2_line(FRESH)
            ));
            assert!(h.delivered(id).is_some());
            // A second token arriving unasked changes nothing.
            h.conn.supply_access_token("ya29.unasked", h.now);
            h.expect_silence();
        },
        || Harness::new(token_config(true)),
    );
    assert_eq!(h.ready().unwrap().auth_method, Some(Mechanism::XOAuth2));
    let transcript = h.transcript();
    assert!(
        transcript.contains("(token refused; asking for a fresh one)"),
        "{transcript}"
    );
    assert_eq!(
        transcript.matches("C: AUTH XOAUTH2 <redacted>").count(),
        2,
        "{transcript}"
    );
    assert!(!transcript.contains("ya29"), "{transcript}");
}

#[test]
fn oauthbearer_is_renewed_the_same_way() {
    let mut h = Harness::new(token_config(true).auth_mechanism(Mechanism::OAuthBearer));
    h.run(&oauth_setup());
    let line = |token: &str| {
        let payload = format!("n,a=ann@example.com,\x01host=mx.example.com\x01port=587\x01auth=Bearer {token}\x01\x01");
        format!("AUTH OAUTHBEARER {}", base64::encode(payload))
    };
    let challenge = base64::encode(r#"{"status":"invalid_token"}"#);
    h.run(&format!(
        "
        C: {}
        S: 334 {challenge}
        C: AQ==
        S: 535 5.7.8 Authentication credentials invalid
    ",
        line(STALE)
    ));
    assert_eq!(renewal_requests(&h), 1);
    h.conn.supply_access_token(FRESH, h.now);
    h.run(&format!("C: {}\nS: 235 2.7.0 ok", line(FRESH)));
    assert_eq!(h.ready().unwrap().auth_method, Some(Mechanism::OAuthBearer));
}

#[test]
fn a_fresh_token_refused_too_ends_with_eauth_naming_the_token() {
    let mut h = Harness::new(token_config(true));
    h.run(&oauth_setup());
    let id = h.submit(envelope(&["bob@example.org"]), b"hi");
    h.run(&xoauth2_refusal(STALE));
    h.conn.supply_access_token(FRESH, h.now);
    h.run(&xoauth2_refusal(FRESH));
    h.run("C: QUIT");
    assert_eq!(renewal_requests(&h), 1, "one renewal per connection");
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::Auth, Phase::Auth));
    assert_eq!(err.reply.as_ref().map(|r| r.code), Some(535));
    assert!(
        err.hint.as_deref().unwrap().contains("fresh token was refused too"),
        "{err}"
    );
    assert!(err.message.contains("\"status\":\"401\""), "{}", err.message);
    assert_eq!(h.failure(id).unwrap().code, ErrorCode::Auth);
    assert!(!err.to_string().contains("ya29"));
}

#[test]
fn without_renewal_a_refused_token_is_final() {
    let mut h = Harness::new(token_config(false));
    h.run(&oauth_setup());
    h.run(&xoauth2_refusal(STALE));
    h.run("C: QUIT");
    assert_eq!(renewal_requests(&h), 0);
    let err = h.close_error();
    assert_eq!(err.code, ErrorCode::Auth);
    assert!(err.hint.as_deref().unwrap().contains("expired"), "{err}");
}

#[test]
fn only_a_refused_token_is_renewed() {
    // A temporary failure, or a refused password, is no reason to ask for a token.
    let mut h = Harness::new(token_config(true));
    h.run(&oauth_setup());
    h.run(&format!(
        "C: {}\nS: 454 4.7.0 Temporary authentication failure\nC: QUIT",
        xoauth2_line(STALE)
    ));
    assert_eq!(renewal_requests(&h), 0);
    assert!(h.close_error().retryable);

    let mut h = Harness::new(with_auth(config(Security::StartTls, 587)).renew_refused_token(true));
    h.run(STARTTLS_SETUP);
    h.run(&format!("C: AUTH PLAIN {PLAIN_B64}\nS: 535 5.7.8 no\nC: QUIT"));
    assert_eq!(renewal_requests(&h), 0);
    assert_eq!(h.close_error().code, ErrorCode::Auth);
}

#[test]
fn a_token_provider_failure_ends_with_eauth_in_its_words() {
    let mut h = Harness::new(token_config(true));
    h.run(&oauth_setup());
    h.run(&xoauth2_refusal(STALE));
    h.conn.access_token_failed(
        "the token endpoint answered invalid_grant.",
        Some("the refresh token was revoked: get a new one."),
        false,
        h.now,
    );
    h.pump();
    h.run("C: QUIT");
    let err = h.close_error();
    assert_eq!(
        (err.code, err.phase, err.retryable),
        (ErrorCode::Auth, Phase::Auth, false)
    );
    assert!(err.message.contains("invalid_grant"), "{}", err.message);
    assert_eq!(
        err.hint.as_deref(),
        Some("the refresh token was revoked: get a new one.")
    );
}

#[test]
fn a_token_provider_that_never_answers_times_out() {
    let mut h = Harness::new(token_config(true));
    h.run(&oauth_setup());
    h.run(&xoauth2_refusal(STALE));
    h.advance(Duration::from_secs(59));
    assert!(h.closed().is_none());
    h.advance(Duration::from_secs(2));
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::TimedOut, Phase::Auth));
    assert!(err.message.contains("token provider"), "{}", err.message);
    // A late answer finds the connection closed.
    h.conn.supply_access_token(FRESH, h.now);
    h.pump();
    assert!(!String::from_utf8_lossy(&h.sent).contains(&xoauth2_line(FRESH)));
}

#[test]
fn a_token_with_a_control_character_is_never_sent() {
    let mut h = Harness::new(token_config(true));
    h.run(&oauth_setup());
    h.run(&xoauth2_refusal(STALE));
    h.conn.supply_access_token("ya29.x\x01user=mallory", h.now);
    h.run("C: QUIT");
    let err = h.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::Input, Phase::Auth));
    assert!(!String::from_utf8_lossy(&h.sent).contains("mallory"));
}
