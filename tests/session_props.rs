//! The session driven by arbitrary servers: random replies (well-formed,
//! odd or garbage), random splits, random stalls and TLS upgrades. Whatever
//! the server does, the engine must not panic, must end every message with
//! exactly one outcome, must never claim a delivery it did not get, and must
//! never send a credential or an envelope before TLS in `starttls` mode.
//! Then model servers that keep transaction state the way Postfix, Exim,
//! Dovecot LMTP and OpenSMTPD do: no message is reported `not-sent` that the
//! server accepted, and none is accepted under another message's envelope.

use proptest::prelude::*;
use wasmtp::testkit::Harness;
use wasmtp::*;

/// One thing the fake server does.
#[derive(Debug, Clone)]
enum Move {
    /// A reply with this code, `lines` lines long, with these EHLO-ish words.
    Reply {
        code: u16,
        lines: usize,
        words: Vec<&'static str>,
    },
    /// Raw bytes, possibly garbage.
    Bytes(Vec<u8>),
    /// Completes the TLS handshake if the client asked for it.
    TlsUp,
    /// The clock moves.
    Wait(u64),
    /// A well-behaved server answers the next few commands the client sent.
    Cooperate(usize),
}

/// Reads what the client sent and answers like a real server would, so the
/// random moves around it reach every phase (AUTH, pipelined envelopes,
/// DATA and BDAT bodies, QUIT) instead of dying at the greeting.
#[derive(Default)]
struct CooperativeServer {
    cursor: usize,
    /// Bytes of BDAT data still to skip.
    skip: usize,
    in_data: bool,
}

impl CooperativeServer {
    /// Answers up to `budget` complete commands not answered yet. Records
    /// in `sent_before_tls` how much was sent before a handshake it completes.
    fn answer(&mut self, h: &mut Harness, mut budget: usize, sent_before_tls: &mut Option<usize>) {
        while budget > 0 && h.closed().is_none() {
            if h.conn.state() == State::TlsHandshake {
                sent_before_tls.get_or_insert(h.sent.len());
                h.tls_up();
                continue;
            }
            let pending = &h.sent[self.cursor..];
            if self.skip > 0 {
                let n = self.skip.min(pending.len());
                if n == 0 {
                    return;
                }
                self.skip -= n;
                self.cursor += n;
                continue;
            }
            let Some(end) = pending.windows(2).position(|w| w == b"\r\n") else {
                return;
            };
            let line = String::from_utf8_lossy(&pending[..end]).into_owned();
            self.cursor += end + 2;
            if self.in_data {
                if line == "." {
                    self.in_data = false;
                    h.server("250 2.0.0 queued as ABC");
                    budget -= 1;
                }
                continue;
            }
            let verb = line.split(' ').next().unwrap_or("").to_ascii_uppercase();
            budget -= 1;
            match verb.as_str() {
                "EHLO" | "LHLO" => h.server_bytes(b"250-mx\r\n250-PIPELINING\r\n250-CHUNKING\r\n250-STARTTLS\r\n250-SIZE 100000\r\n250 AUTH PLAIN\r\n"),
                "STARTTLS" => h.server("220 2.0.0 go ahead"),
                "AUTH" => h.server("235 2.7.0 ok"),
                "DATA" => {
                    self.in_data = true;
                    h.server("354 go ahead");
                }
                "BDAT" => {
                    self.skip = line.split(' ').nth(1).and_then(|n| n.parse().ok()).unwrap_or(0);
                    h.server("250 2.0.0 chunk ok");
                }
                "QUIT" => h.server("221 bye"),
                _ => h.server("250 ok"),
            }
        }
    }
}

const CODES: &[u16] = &[
    220, 221, 235, 250, 251, 252, 334, 354, 421, 450, 451, 452, 454, 500, 501, 502, 503, 504, 530, 534, 535, 550, 552,
    553, 554,
];
const WORDS: &[&str] = &[
    "PIPELINING",
    "CHUNKING",
    "STARTTLS",
    "AUTH PLAIN LOGIN",
    "AUTH CRAM-MD5",
    "SIZE 100",
    "SIZE 0",
    "8BITMIME",
    "SMTPUTF8",
    "DSN",
    "ENHANCEDSTATUSCODES",
    "2.0.0 ok",
    "5.7.139 no",
    "x",
];

fn a_move() -> impl Strategy<Value = Move> {
    prop_oneof![
        // Mostly the codes a cooperative server sends, so the dialog gets deep.
        6 => (proptest::sample::select(&[220u16, 250, 235, 354][..]), 1usize..4, proptest::collection::vec(proptest::sample::select(WORDS), 0..4))
            .prop_map(|(code, lines, words)| Move::Reply { code, lines, words }),
        3 => (proptest::sample::select(CODES), 1usize..4, proptest::collection::vec(proptest::sample::select(WORDS), 0..4))
            .prop_map(|(code, lines, words)| Move::Reply { code, lines, words }),
        1 => proptest::collection::vec(any::<u8>(), 1..40).prop_map(Move::Bytes),
        2 => Just(Move::TlsUp),
        1 => (0u64..120_000).prop_map(Move::Wait),
        8 => (1usize..12).prop_map(Move::Cooperate),
    ]
}

fn render(code: u16, lines: usize, words: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..lines {
        let sep = if i + 1 == lines { ' ' } else { '-' };
        let word = words.get(i).copied().unwrap_or("mx");
        out.extend_from_slice(format!("{code}{sep}{word}\r\n").as_bytes());
    }
    out
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle.as_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_server_behaviour_ends_cleanly_and_safely(
        moves in proptest::collection::vec(a_move(), 0..60),
        security in proptest::sample::select(&[Security::StartTls, Security::Opportunistic, Security::None, Security::Tls][..]),
        bytewise in any::<bool>(),
        messages in 0usize..3,
    ) {
        let config = Config::new("mx.example.com", 587)
            .security(security)
            .client_name("client.example.com")
            .credentials(Credentials::Password { user: "ann".into(), pass: "s3cret".into() });
        let mut h = Harness::new(config);
        h.bytewise = bytewise;
        let ids: Vec<MessageId> = (0..messages)
            .map(|i| h.submit(Envelope::new("ann@example.com", [format!("r{i}@example.org")]), b"Subject: x\r\n\r\nbody\r\n"))
            .collect();
        let mut sent_before_tls: Option<usize> = None;
        let mut server = CooperativeServer::default();
        for m in moves {
            if h.closed().is_some() {
                break;
            }
            match m {
                Move::Reply { code, lines, words } => h.server_bytes(&render(code, lines, &words)),
                Move::Bytes(bytes) => h.server_bytes(&bytes),
                Move::TlsUp => {
                    if h.conn.state() == State::TlsHandshake {
                        sent_before_tls.get_or_insert(h.sent.len());
                        h.tls_up();
                    }
                }
                Move::Wait(ms) => h.advance(Duration::from_millis(ms)),
                Move::Cooperate(budget) => server.answer(&mut h, budget, &mut sent_before_tls),
            }
        }
        // The server goes away; within the longest time-out everything ends.
        h.eof();
        h.advance(Duration::from_secs(3600));
        prop_assert!(h.closed().is_some(), "the session did not end\n{}", h.transcript());
        prop_assert!(h.conn.poll_timeout().is_none());

        for id in &ids {
            prop_assert_eq!(h.outcomes(*id), 1, "message {:?} needs exactly one outcome\n{}", id, h.transcript());
        }
        // A delivery needs the whole message on the wire first.
        let delivered = ids.iter().filter(|id| h.delivered(**id).is_some()).count();
        let ends = h.sent.windows(5).filter(|w| w == b"\r\n.\r\n").count()
            + h.sent.windows(5).filter(|w| w == b" LAST").count();
        prop_assert!(delivered <= ends, "{} deliveries but {} ends of data\n{}", delivered, ends, h.transcript());

        // Secrets and envelopes never go out in clear where TLS is required.
        if matches!(security, Security::StartTls | Security::Tls) {
            let clear = &h.sent[..sent_before_tls.unwrap_or(h.sent.len())];
            for forbidden in ["AUTH", "MAIL FROM", "RCPT TO", "AGFubgBzM2NyZXQ="] {
                prop_assert!(!contains(clear, forbidden), "{} sent before TLS\n{}", forbidden, h.transcript());
            }
        }
        if security == Security::None {
            prop_assert!(!contains(&h.sent, "STARTTLS"));
        }
        // Without TLS no credential ever leaves (allow_insecure_auth is off).
        if sent_before_tls.is_none() {
            prop_assert!(!contains(&h.sent, "AUTH "));
        }
    }
}

// ----- Servers that keep state after a failure ------------------------------
//
// A model SMTP/LMTP server that lives the transaction the way real ones do,
// with the state each keeps after a refused transaction, and records every
// delivery with the envelope it was accepted under. Whatever fails, the
// engine must never report `not-sent` for a message the server accepted,
// nothing may be accepted under another message's envelope, and every
// message the server had no reason to refuse must be delivered.

/// Whose behaviour the model plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mta {
    /// Ends a transaction at BDAT LAST whatever happened.
    Postfix,
    /// Keeps MAIL open after a refused BDAT or DATA ("503 sender already given").
    Exim,
    /// LMTP; after a refused chunk, "issue RSET first" until RSET.
    Dovecot,
    /// No PIPELINING: two commands in one write are refused.
    OpenSmtpd,
}

/// What the server does to one message (keyed by its sender and recipients).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// One of two recipients refused.
    OneRecipientRefused,
    /// Every recipient refused.
    AllRecipientsRefused,
    /// MAIL answered 451.
    MailDeferred,
    /// DATA answered 554.
    DataRefused,
    /// The end of data answered 554.
    FinalRefused,
    /// LMTP: the mailbox is full (552 5.2.2 after the data).
    MailboxFull,
}

struct ModelTx {
    from: String,
    rcpts: Vec<String>,
    chunk_failed: bool,
    data: Vec<u8>,
}

enum Mode {
    Command,
    Data(Vec<u8>),
    Chunk { remaining: usize, last: bool },
}

struct ModelServer {
    mta: Mta,
    chunking: bool,
    tx: Option<ModelTx>,
    mode: Mode,
    pending: Vec<u8>,
    next_write: usize,
    /// (sender, recipient, body) for every recipient a message was delivered to.
    deliveries: Vec<(String, String, Vec<u8>)>,
    violations: Vec<String>,
    quit: bool,
}

fn angle(text: &str) -> String {
    let start = text.find('<').map_or(0, |i| i + 1);
    let end = text[start..].find('>').map_or(text.len(), |i| start + i);
    text[start..end].to_string()
}

impl ModelServer {
    fn new(mta: Mta, chunking: bool) -> Self {
        ModelServer {
            mta,
            chunking,
            tx: None,
            mode: Mode::Command,
            pending: Vec::new(),
            next_write: 0,
            deliveries: Vec::new(),
            violations: Vec::new(),
            quit: false,
        }
    }

    fn lmtp(&self) -> bool {
        self.mta == Mta::Dovecot
    }

    /// Plays the client's writes not seen yet; returns the replies.
    fn converse(&mut self, h: &mut Harness) {
        loop {
            h.pump();
            if self.next_write >= h.writes.len() || h.closed().is_some() {
                return;
            }
            let write = h.writes[self.next_write].clone();
            self.next_write += 1;
            let replies = self.on_write(&write);
            if !replies.is_empty() {
                h.server_bytes(&replies);
            }
            if self.quit {
                h.eof();
            }
        }
    }

    fn on_write(&mut self, write: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        self.pending.extend_from_slice(write);
        let mut commands_in_write = 0;
        loop {
            match &mut self.mode {
                Mode::Chunk { remaining, last } => {
                    if self.pending.len() < *remaining {
                        return out;
                    }
                    let chunk: Vec<u8> = self.pending.drain(..*remaining).collect();
                    let last = *last;
                    self.mode = Mode::Command;
                    self.on_chunk(chunk, last, &mut out);
                }
                Mode::Data(body) => {
                    let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") else {
                        return out;
                    };
                    let line: Vec<u8> = self.pending.drain(..end + 2).collect();
                    if line == b".\r\n" {
                        // The end of data answers like a command.
                        commands_in_write += 1;
                        let body = std::mem::take(body);
                        self.mode = Mode::Command;
                        self.end_of_data(body, &mut out);
                    } else {
                        body.extend_from_slice(line.strip_prefix(b".").unwrap_or(&line));
                    }
                }
                Mode::Command => {
                    let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") else {
                        return out;
                    };
                    let line: Vec<u8> = self.pending.drain(..end + 2).collect();
                    let line = String::from_utf8_lossy(&line[..end]).into_owned();
                    commands_in_write += 1;
                    if self.mta == Mta::OpenSmtpd && commands_in_write > 1 {
                        self.violations.push(format!("two commands in one write: {line}"));
                        out.extend_from_slice(b"500 5.5.1 Invalid command: Pipelining not supported\r\n");
                        continue;
                    }
                    self.on_command(&line, &mut out);
                    if self.quit {
                        return out;
                    }
                }
            }
        }
    }

    fn reply(out: &mut Vec<u8>, text: &str) {
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    }

    fn on_command(&mut self, line: &str, out: &mut Vec<u8>) {
        let upper = line.to_ascii_uppercase();
        let verb = upper.split([' ', ':']).next().unwrap_or("");
        match verb {
            "EHLO" | "LHLO" => {
                let mut caps = vec!["250-model.example.com", "250-8BITMIME"];
                if self.mta != Mta::OpenSmtpd {
                    caps.push("250-PIPELINING");
                }
                if self.chunking && self.mta != Mta::OpenSmtpd {
                    caps.push("250-CHUNKING");
                }
                caps.push("250 ENHANCEDSTATUSCODES");
                Self::reply(out, &caps.join("\r\n"));
            }
            "MAIL" => {
                let from = angle(line);
                if self.tx.is_some() {
                    Self::reply(
                        out,
                        match self.mta {
                            Mta::Exim => "503 sender already given",
                            Mta::Dovecot => "503 5.5.0 MAIL already given",
                            _ => "503 5.5.1 Error: nested MAIL command",
                        },
                    );
                } else if from.starts_with("deferred") {
                    Self::reply(out, "451 4.3.0 Temporary failure, try again later");
                } else {
                    self.tx = Some(ModelTx {
                        from,
                        rcpts: Vec::new(),
                        chunk_failed: false,
                        data: Vec::new(),
                    });
                    Self::reply(out, "250 2.1.0 Ok");
                }
            }
            "RCPT" => {
                let to = angle(line);
                match &mut self.tx {
                    None => Self::reply(out, "503 5.5.1 Error: need MAIL command"),
                    Some(_) if to.starts_with("refused") => Self::reply(out, "550 5.1.1 User unknown"),
                    Some(tx) => {
                        tx.rcpts.push(to);
                        Self::reply(out, "250 2.1.5 Ok");
                    }
                }
            }
            "DATA" => match &self.tx {
                None => Self::reply(out, "503 5.5.1 Error: need MAIL command"),
                // A refused DATA keeps the transaction (every MTA modelled here).
                Some(tx) if tx.rcpts.is_empty() => Self::reply(out, "554 5.5.1 Error: no valid recipients"),
                Some(tx) if tx.from.starts_with("datarefused") => Self::reply(out, "554 5.7.1 DATA refused"),
                Some(_) => {
                    self.mode = Mode::Data(Vec::new());
                    Self::reply(out, "354 go ahead");
                }
            },
            "BDAT" => {
                let mut words = line.split(' ').skip(1);
                let size = words.next().and_then(|n| n.parse().ok()).unwrap_or(0);
                let last = words.next().is_some_and(|w| w.eq_ignore_ascii_case("LAST"));
                self.mode = Mode::Chunk { remaining: size, last };
            }
            "RSET" => {
                self.tx = None;
                Self::reply(out, "250 2.0.0 Ok");
            }
            "NOOP" => Self::reply(out, "250 2.0.0 Ok"),
            "QUIT" => {
                Self::reply(out, "221 2.0.0 Bye");
                self.quit = true;
            }
            _ => Self::reply(out, "502 5.5.2 Error: command not recognized"),
        }
    }

    fn on_chunk(&mut self, chunk: Vec<u8>, last: bool, out: &mut Vec<u8>) {
        let mta = self.mta;
        let Some(tx) = &mut self.tx else {
            Self::reply(out, "503 5.5.1 Error: need MAIL command");
            return;
        };
        let refusal = if tx.chunk_failed {
            Some(match mta {
                Mta::Dovecot => "503 5.5.0 Previous data chunk failed, issue RSET first",
                Mta::Exim => "503 Valid RCPT command must precede BDAT",
                _ => "551 5.0.0 Discarded bytes after earlier error",
            })
        } else if tx.rcpts.is_empty() {
            Some(match mta {
                Mta::Dovecot => "503 5.5.0 No valid recipients",
                Mta::Exim => "503 Valid RCPT command must precede BDAT",
                _ => "554 5.5.1 Error: no valid recipients",
            })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            tx.chunk_failed = true;
            Self::reply(out, refusal);
            // Postfix ends the transaction at BDAT LAST whatever happened;
            // Exim and Dovecot keep it until RSET.
            if last && mta == Mta::Postfix {
                self.tx = None;
            }
            return;
        }
        tx.data.extend_from_slice(&chunk);
        if last {
            let body = std::mem::take(&mut tx.data);
            self.end_of_data(body, out);
        } else {
            Self::reply(out, &format!("250 2.0.0 {} bytes received", chunk.len()));
        }
    }

    /// The whole message is in: deliver (or refuse), and the transaction ends.
    fn end_of_data(&mut self, body: Vec<u8>, out: &mut Vec<u8>) {
        let Some(tx) = self.tx.take() else {
            Self::reply(out, "503 5.5.1 Error: need MAIL command");
            return;
        };
        let refused = tx.from.starts_with("finalrefused");
        if self.lmtp() {
            for rcpt in &tx.rcpts {
                if refused {
                    Self::reply(out, &format!("554 5.6.0 <{rcpt}> rejected by content filter"));
                } else if rcpt.starts_with("full") {
                    Self::reply(
                        out,
                        &format!("552 5.2.2 <{rcpt}> Quota exceeded (mailbox for user is full)"),
                    );
                } else {
                    self.deliveries.push((tx.from.clone(), rcpt.clone(), body.clone()));
                    Self::reply(out, &format!("250 2.0.0 <{rcpt}> Saved"));
                }
            }
        } else if refused {
            Self::reply(out, "554 5.7.1 rejected by content filter");
        } else {
            for rcpt in &tx.rcpts {
                self.deliveries.push((tx.from.clone(), rcpt.clone(), body.clone()));
            }
            Self::reply(out, "250 2.0.0 Ok: queued");
        }
    }
}

fn a_fault(mta: Mta) -> impl Strategy<Value = Fault> {
    let lmtp = mta == Mta::Dovecot;
    prop_oneof![
        4 => Just(Fault::None),
        1 => Just(Fault::OneRecipientRefused),
        2 => Just(Fault::AllRecipientsRefused),
        1 => Just(Fault::MailDeferred),
        1 => Just(Fault::DataRefused),
        1 => Just(Fault::FinalRefused),
        1 => Just(if lmtp { Fault::MailboxFull } else { Fault::None }),
    ]
}

/// The envelope of message `i` under `fault`: the sender and recipients'
/// names carry the fault, so the model server knows what to do.
fn faulty_envelope(i: usize, fault: Fault) -> Envelope {
    let from = match fault {
        Fault::MailDeferred => format!("deferred{i}@example.com"),
        Fault::DataRefused => format!("datarefused{i}@example.com"),
        Fault::FinalRefused => format!("finalrefused{i}@example.com"),
        _ => format!("s{i}@example.com"),
    };
    let to = match fault {
        Fault::OneRecipientRefused => vec![format!("r{i}@example.org"), format!("refused{i}@example.org")],
        Fault::AllRecipientsRefused => vec![format!("refused{i}a@example.org"), format!("refused{i}b@example.org")],
        Fault::MailboxFull => vec![format!("full{i}@example.org")],
        _ => vec![format!("r{i}@example.org")],
    };
    Envelope::new(from, to)
}

fn a_setup() -> impl Strategy<Value = (Mta, bool)> {
    prop_oneof![
        Just((Mta::Postfix, true)),
        Just((Mta::Postfix, false)),
        Just((Mta::Exim, true)),
        Just((Mta::Exim, false)),
        Just((Mta::Dovecot, true)),
        Just((Mta::Dovecot, false)),
        Just((Mta::OpenSmtpd, false)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn no_message_is_lost_or_delivered_under_another_envelope(
        ((mta, chunking), faults) in a_setup().prop_flat_map(|setup| (Just(setup), proptest::collection::vec(a_fault(setup.0), 1..8))),
        max_in_flight in 1usize..6,
        bdat_chunk_size in proptest::sample::select(&[4usize, 16, 4096][..]),
        bytewise in any::<bool>(),
        pipelined_config in any::<bool>(),
    ) {
        let mut config = Config::new("mx.example.com", 25)
            .security(Security::None)
            .client_name("client.example.com");
        if mta == Mta::Dovecot {
            config = config.protocol(Protocol::Lmtp);
        }
        config.limits.max_in_flight = max_in_flight;
        config.limits.bdat_chunk_size = bdat_chunk_size;
        config.use_pipelining = pipelined_config || mta == Mta::OpenSmtpd;
        let mut h = Harness::new(config);
        h.bytewise = bytewise;
        let mut server = ModelServer::new(mta, chunking);
        let bodies: Vec<Vec<u8>> = (0..faults.len())
            .map(|i| format!("Subject: message {i}\r\n\r\nbody of message {i}\r\n.dot line\r\n").into_bytes())
            .collect();
        let ids: Vec<MessageId> = faults
            .iter()
            .enumerate()
            .map(|(i, fault)| h.submit(faulty_envelope(i, *fault), &bodies[i]))
            .collect();
        h.server("220 model.example.com ESMTP");
        server.converse(&mut h);
        h.conn.close(h.now);
        server.converse(&mut h);
        if h.closed().is_none() {
            h.eof();
        }

        prop_assert!(server.violations.is_empty(), "{:?}\n{}", server.violations, h.transcript());
        prop_assert!(h.closed().is_some());
        for (i, (id, fault)) in ids.iter().zip(&faults).enumerate() {
            prop_assert_eq!(h.outcomes(*id), 1, "message {} needs exactly one outcome\n{}", i, h.transcript());
            let envelope = faulty_envelope(i, *fault);
            // Everything the server delivered with this body: under this
            // message's own sender, to its own recipients, once each.
            let landed: Vec<&(String, String, Vec<u8>)> =
                server.deliveries.iter().filter(|(_, _, body)| *body == bodies[i]).collect();
            for (from, rcpt, _) in &landed {
                prop_assert_eq!(from, &envelope.from, "message {} went out under another sender\n{}", i, h.transcript());
                prop_assert!(envelope.recipients.iter().any(|r| &r.address == rcpt), "message {} went to {}\n{}", i, rcpt, h.transcript());
            }
            let mut seen: Vec<&String> = landed.iter().map(|(_, rcpt, _)| rcpt).collect();
            seen.dedup();
            prop_assert_eq!(seen.len(), landed.len(), "message {} delivered twice\n{}", i, h.transcript());
            match (h.delivered(*id), h.failure(*id)) {
                (Some(delivery), _) => {
                    let mut accepted = delivery.accepted.clone();
                    accepted.sort();
                    let mut got: Vec<String> = landed.iter().map(|(_, rcpt, _)| rcpt.clone()).collect();
                    got.sort();
                    prop_assert_eq!(accepted, got, "message {} reported delivered to others than the server has\n{}", i, h.transcript());
                }
                (None, Some(err)) => {
                    if err.delivery_state == DeliveryState::NotSent {
                        prop_assert!(landed.is_empty(), "message {} reported not-sent but the server delivered it\n{}", i, h.transcript());
                    }
                    // Only the server's own reasons fail a message.
                    prop_assert!(*fault != Fault::None && *fault != Fault::OneRecipientRefused,
                        "message {} had no reason to fail: {}\n{}", i, err, h.transcript());
                    prop_assert!(err.code != ErrorCode::Size, "{}", err);
                }
                (None, None) => prop_assert!(false, "no outcome for message {}", i),
            }
        }
        // Every delivery belongs to some message.
        prop_assert!(server.deliveries.iter().all(|(_, _, body)| bodies.contains(body)));
    }
}
