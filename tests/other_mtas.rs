#![cfg(feature = "rustls")]
//! The native driver's pipelined `send_all` against Exim 4.96, Dovecot 2.3
//! LMTP and OpenSMTPD 6.8: private instances on 127.0.0.1 from
//! `tests/servers/{exim,dovecot,opensmtpd}/start.sh`, stopped by PID (a Drop
//! guard, so also on failure). The npm package's pool runs the same pattern
//! in `tests/mtas`.
//!
//! Ten messages in one batch on one connection, each from its own envelope
//! sender; message 4 is refused (no such recipient, a 4xx on MAIL, a refused
//! DATA command, or a 5xx after its data). Every valid message must be
//! delivered under its own sender; the refused one must fail with the
//! server's reply and never be delivered; a message reported not-sent must
//! never have been delivered.
//!
//! Needs `bash scripts/setup.sh` as root (scripts/setup-mtas.sh). Missing
//! pieces fail loudly; nothing is skipped.
//! Run: `cargo test --features rustls --test other_mtas`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtp::driver::{Client, NoTls};
use wasmtp::{Config, Delivery, DeliveryState, Envelope, Protocol, Security, SmtpError, Timeouts, TranscriptLine};

const SETUP_HINT: &str = "run `bash scripts/setup.sh` as root first (scripts/setup-mtas.sh installs Dovecot and unpacks Exim and OpenSMTPD into .tools/mta)";
const MESSAGES: usize = 10;
/// "Message 4", numbered from 1.
const FOURTH: usize = 3;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn free_port(taken: &[u16]) -> u16 {
    loop {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        if !taken.contains(&port) {
            return port;
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Exim,
    Dovecot,
    OpenSmtpd,
}

/// A private instance started by `tests/servers/<name>/start.sh`.
struct Server {
    kind: Kind,
    dir: PathBuf,
    /// Exim: PIPELINING + CHUNKING, PIPELINING only, CHUNKING only, neither. Others: one port.
    ports: Vec<u16>,
}

impl Server {
    fn start(kind: Kind) -> Server {
        assert!(
            is_root(),
            "the private Exim, Dovecot and OpenSMTPD instances need root: {SETUP_HINT}"
        );
        let (name, flags): (&str, &[&str]) = match kind {
            Kind::Exim => (
                "exim",
                &[
                    "--port",
                    "--data-port",
                    "--no-pipelining-port",
                    "--no-pipelining-data-port",
                ],
            ),
            Kind::Dovecot => ("dovecot", &["--port"]),
            Kind::OpenSmtpd => ("opensmtpd", &["--port"]),
        };
        let mut last = String::new();
        // A free port can be taken between the probe and the bind: retry.
        for attempt in 0..3 {
            let dir = std::env::temp_dir().join(format!("wasmtp-{name}-{}-{attempt}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            let mut ports = Vec::new();
            for _ in flags {
                ports.push(free_port(&ports));
            }
            let server = Server { kind, dir, ports };
            let mut cmd = Command::new("bash");
            cmd.arg(root().join(format!("tests/servers/{name}/start.sh")))
                .arg("--dir")
                .arg(&server.dir);
            for (flag, port) in flags.iter().zip(&server.ports) {
                cmd.arg(flag).arg(port.to_string());
            }
            let out = cmd.output().unwrap_or_else(|e| panic!("run {name}/start.sh: {e}"));
            if out.status.success() && out.stdout.starts_with(b"ready") {
                return server;
            }
            last = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            drop(server);
        }
        panic!("the private {name} instance did not start ({SETUP_HINT}):\n{last}");
    }

    fn name(&self) -> &'static str {
        match self.kind {
            Kind::Exim => "exim",
            Kind::Dovecot => "dovecot",
            Kind::OpenSmtpd => "opensmtpd",
        }
    }

    /// Every delivered message: (envelope sender from Return-Path, recipient, X-Wasmtp-Batch value).
    fn deliveries(&self) -> Vec<(String, String, String)> {
        let mut files = Vec::new();
        match self.kind {
            Kind::Exim => files.extend(list(&self.dir.join("mail/new"))),
            Kind::OpenSmtpd => {
                files.extend(list(&self.dir.join("spool")).filter(|p| p.extension().is_some_and(|e| e == "eml")))
            }
            Kind::Dovecot => {
                for user in list(&self.dir.join("mail")) {
                    files.extend(list(&user.join("Maildir/new")));
                }
            }
        }
        files
            .iter()
            .filter_map(|file| {
                let raw = std::fs::read(file).ok()?;
                let head = String::from_utf8_lossy(&raw);
                let header = |name: &str| -> Option<String> {
                    head.split("\n\n").next()?.lines().find_map(|l| {
                        let (key, value) = l.split_once(':')?;
                        key.eq_ignore_ascii_case(name)
                            .then(|| value.trim().trim_matches(['<', '>']).to_string())
                    })
                };
                let recipient = match self.kind {
                    Kind::Exim => header("Envelope-to")?,
                    Kind::OpenSmtpd => header("Delivered-To")?,
                    // mail/<user>/Maildir/new/<file>: Delivered-To is only added for single-recipient transactions.
                    Kind::Dovecot => format!("{}@lmtp.test", file.ancestors().nth(3)?.file_name()?.to_string_lossy()),
                };
                Some((header("Return-Path")?, recipient, header("X-Wasmtp-Batch")?))
            })
            .collect()
    }

    fn log(&self) -> String {
        let file = match self.kind {
            Kind::Exim => "log/mainlog",
            Kind::Dovecot => "dovecot.log",
            Kind::OpenSmtpd => "smtpd.log",
        };
        let text = std::fs::read_to_string(self.dir.join(file)).unwrap_or_default();
        text[text.len().saturating_sub(4000)..].to_string()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut stop = Command::new("bash");
        stop.arg(root().join(format!("tests/servers/{}/stop.sh", self.name())))
            .arg(&self.dir);
        if std::env::var_os("WASMTP_KEEP_TEST_DIRS").is_some() {
            stop.arg("--keep");
        }
        let _ = stop.output();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn list(dir: &Path) -> impl Iterator<Item = PathBuf> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
}

/// The envelope sender of message i.
type SenderOf = dyn Fn(usize) -> String;

/// How the batch is made to fail: message 4's sender, its recipients, and the
/// reply code the server must refuse it with.
struct Case<'a> {
    what: &'a str,
    port: u16,
    lmtp: bool,
    sender: &'a SenderOf,
    recipients: &'a dyn Fn(usize) -> Vec<String>,
    fourth_fails_with: u16,
}

fn sender(i: usize) -> String {
    format!("s{}@senders.test", i + 1)
}

/// Sends the batch with `send_all` on one connection and checks every outcome against the deliveries.
fn check_batch(server: &Server, case: Case<'_>) {
    static RUNS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let tag = format!(
        "rs{}-{}",
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        std::process::id()
    );
    let transcript: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = transcript.clone();
    let callback: Box<dyn FnMut(&TranscriptLine) + Send> = Box::new(move |line: &TranscriptLine| {
        sink.lock()
            .unwrap()
            .push(format!("{}: {}", line.dir.as_str(), line.text))
    });
    let secs = wasmtp::Duration::from_secs;
    let timeouts = Timeouts {
        connect: secs(10),
        tls_handshake: secs(10),
        greeting: secs(10),
        port_probe: secs(3),
        command: secs(15),
        data_end: secs(15),
    };
    let protocol = if case.lmtp { Protocol::Lmtp } else { Protocol::Smtp };
    let config = Config::new("127.0.0.1", case.port)
        .security(Security::None)
        .client_name("client.test")
        .protocol(protocol)
        .timeouts(timeouts);
    let batch: Vec<(Envelope, Vec<u8>)> = (0..MESSAGES)
        .map(|i| {
            let body = format!(
                "From: <{}>\r\nSubject: {tag} message {}\r\nMessage-ID: <{tag}.{i}@client.test>\r\nX-Wasmtp-Batch: {tag} {i}\r\n\r\nMessage {} of {tag}.\r\n",
                (case.sender)(i),
                i + 1,
                i + 1
            );
            (Envelope::new((case.sender)(i), (case.recipients)(i)), body.into_bytes())
        })
        .collect();
    let results: Vec<Result<Delivery, SmtpError>> = smol::block_on(smol::future::or(
        async {
            let stream = smol::net::TcpStream::connect(("127.0.0.1", case.port))
                .await
                .expect("connect");
            let mut client = Client::connect_with_transcript(stream, config, NoTls, Some(callback))
                .await
                .expect("connect and LHLO/EHLO");
            let results = client.send_all(batch).await;
            let _ = client.quit().await;
            results
        },
        async {
            smol::Timer::after(Duration::from_secs(60)).await;
            panic!("{}: the batch did not finish within 60 s", case.what);
        },
    ));

    let mut problems = Vec::new();
    for (i, result) in results.iter().enumerate() {
        match (i == FOURTH, result) {
            (false, Ok(_)) => {}
            (false, Err(e)) => problems.push(format!("message {} (a valid message) was not sent: {e}", i + 1)),
            (true, Ok(d)) => problems.push(format!("message {} should have been refused, got {}", i + 1, d.reply)),
            (true, Err(e)) => {
                let code = e.reply.as_ref().map(|r| r.code);
                if code != Some(case.fourth_fails_with) {
                    problems.push(format!(
                        "message {} must fail with the server's {}: {e}",
                        i + 1,
                        case.fourth_fails_with
                    ));
                }
            }
        }
    }
    let ours = || -> Vec<(String, String, usize)> {
        server
            .deliveries()
            .into_iter()
            .filter_map(|(from, to, batch)| {
                let (t, i) = batch.split_once(' ')?;
                (t == tag).then(|| (from, to, i.parse().unwrap()))
            })
            .collect()
    };
    let expected: usize = (0..MESSAGES)
        .filter(|&i| results[i].is_ok())
        .map(|i| (case.recipients)(i).len())
        .sum();
    let start = Instant::now();
    while ours().len() < expected && start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(800));
    let delivered = ours();
    for (from, to, i) in &delivered {
        if *from != (case.sender)(*i) {
            problems.push(format!(
                "message {} was delivered under <{from}>, not its own <{}>",
                i + 1,
                (case.sender)(*i)
            ));
        }
        if !(case.recipients)(*i).contains(to) {
            problems.push(format!(
                "message {} was delivered to <{to}>, not one of its recipients",
                i + 1
            ));
        }
    }
    for (i, result) in results.iter().enumerate() {
        let count = delivered.iter().filter(|(_, _, n)| *n == i).count();
        match result {
            Ok(_) if count != (case.recipients)(i).len() => problems.push(format!(
                "message {} was reported sent but delivered {count} time(s)",
                i + 1
            )),
            Err(e) if e.delivery_state == DeliveryState::NotSent && count > 0 => problems.push(format!(
                "message {} was reported not-sent but the server delivered it",
                i + 1
            )),
            _ => {}
        }
    }
    assert!(
        problems.is_empty(),
        "{} on {}:\n- {}\n--- transcript:\n{}\n--- server log:\n{}",
        case.what,
        server.name(),
        problems.join("\n- "),
        transcript.lock().unwrap().join("\n"),
        server.log()
    );
}

#[test]
fn exim_a_refused_message_never_spills_into_the_next() {
    let exim = Server::start(Kind::Exim);
    let rcpt = |i: usize| vec![format!("r{}@exim.test", i + 1)];
    let no_such_fourth = |i: usize| {
        if i == FOURTH {
            vec![format!("nouser{}@exim.test", i + 1)]
        } else {
            vec![format!("r{}@exim.test", i + 1)]
        }
    };
    let with_prefix = |prefix: &'static str| {
        move |i: usize| {
            if i == FOURTH {
                format!("{prefix}-s{}@senders.test", i + 1)
            } else {
                sender(i)
            }
        }
    };
    let [bdat, data, bdat_lockstep, data_lockstep] = exim.ports[..] else {
        unreachable!()
    };
    for (what, port) in [
        ("no valid recipient, BDAT pipelined", bdat),
        ("no valid recipient, DATA pipelined", data),
        ("no valid recipient, BDAT without PIPELINING", bdat_lockstep),
        ("no valid recipient, DATA without PIPELINING", data_lockstep),
    ] {
        check_batch(
            &exim,
            Case {
                what,
                port,
                lmtp: false,
                sender: &sender,
                recipients: &no_such_fourth,
                fourth_fails_with: 550,
            },
        );
    }
    let tempfail = with_prefix("tempfail");
    let reject_body = with_prefix("reject-body");
    let refuse_data = with_prefix("refuse-data");
    let cases: [(&str, u16, &SenderOf, u16); 4] = [
        ("a 4xx on MAIL, BDAT", bdat, &tempfail, 451),
        ("a 5xx on the final BDAT", bdat, &reject_body, 550),
        ("a 5xx after the data, DATA", data, &reject_body, 550),
        ("the DATA command refused", data, &refuse_data, 554),
    ];
    for (what, port, sender, code) in cases {
        check_batch(
            &exim,
            Case {
                what,
                port,
                lmtp: false,
                sender,
                recipients: &rcpt,
                fourth_fails_with: code,
            },
        );
    }
}

#[test]
fn dovecot_lmtp_a_refused_message_never_spills_into_the_next() {
    let dovecot = Server::start(Kind::Dovecot);
    let recipients = |i: usize| {
        if i == FOURTH {
            vec![format!("nobody{}@lmtp.test", i + 1)]
        } else {
            vec![format!("user{i}@lmtp.test")]
        }
    };
    check_batch(
        &dovecot,
        Case {
            what: "no valid recipient",
            port: dovecot.ports[0],
            lmtp: true,
            sender: &sender,
            recipients: &recipients,
            fourth_fails_with: 550,
        },
    );
}

#[test]
fn opensmtpd_without_pipelining_a_refused_message_never_spills_into_the_next() {
    // Plaintext: Debian 12's OpenSMTPD fails server-side TLS handshakes under OpenSSL 3.
    let smtpd = Server::start(Kind::OpenSmtpd);
    let recipients = |i: usize| {
        if i == FOURTH {
            vec![format!("nosuch{}@smtpd.test", i + 1)]
        } else {
            vec![format!("user{i}@smtpd.test")]
        }
    };
    check_batch(
        &smtpd,
        Case {
            what: "no valid recipient",
            port: smtpd.ports[0],
            lmtp: false,
            sender: &sender,
            recipients: &recipients,
            fourth_fails_with: 524,
        },
    );
}
