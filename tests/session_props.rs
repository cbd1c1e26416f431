//! The session driven by arbitrary servers: random replies (well-formed,
//! odd or garbage), random splits, random stalls and TLS upgrades. Whatever
//! the server does, the engine must not panic, must end every message with
//! exactly one outcome, must never claim a delivery it did not get, and must
//! never send a credential or an envelope before TLS in `starttls` mode.

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
