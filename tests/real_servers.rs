#![cfg(feature = "rustls")]
//! The native driver against real SMTP servers over real TCP on 127.0.0.1.
//!
//! Every test starts its own server on a free loopback port, talks to it
//! through `wasmtp::driver::Client`, checks what the server stored byte for
//! byte, and stops the server by PID (a Drop guard, so also on failure).
//!
//! - aiosmtpd (`tests/servers/aiosmtpd_server.py`, in `.tools/venv`):
//!   plaintext, STARTTLS, implicit TLS, AUTH PLAIN / LOGIN / CRAM-MD5,
//!   rejected recipients, pipelined `send_all`, certificate and STARTTLS
//!   policy failures.
//! - a private Postfix instance (`tests/servers/postfix/start.sh`): STARTTLS +
//!   Cyrus SASL, CHUNKING (BDAT) and PIPELINING with several messages,
//!   `smtpd_forbid_unauth_pipelining = yes`.
//! - test certificates from `tests/servers/make-certs.sh` (openssl CLI).
//!
//! Needs `bash scripts/setup.sh` (Postfix, sasl2-bin, openssl, the aiosmtpd
//! venv) and root for Postfix. Missing pieces fail loudly; nothing is skipped.
//! Run: `cargo test --features rustls --test real_servers`.
//! Set WASMTP_KEEP_TEST_DIRS=1 to keep the temporary directories and
//! WASMTP_TEST_TRACE=1 to print every transcript line as it happens.

use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use futures_util::io::Cursor;
use wasmtp::driver::Client;
use wasmtp::tls_engine::{SecureConnection, TlsOptions};
use wasmtp::{
    Config, Credentials, Delivery, Envelope, ErrorCode, Mechanism, Security, SmtpError, Timeouts, TranscriptLine,
};

const SETUP_HINT: &str =
    "run `bash scripts/setup.sh` first (it installs postfix, sasl2-bin, openssl and the aiosmtpd venv in .tools/venv)";
/// Upper bound for one test's SMTP conversation (set-up and sends).
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
const USER: &str = "wasmtp-user";
const PASS: &str = "s3cret pass";

// ------------------------------------------------------------------ helpers

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("wasmtp-test-{}-{n}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("WASMTP_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn require_file(path: &Path, what: &str) {
    assert!(path.exists(), "{what} ({}) is missing: {SETUP_HINT}", path.display());
}

/// Test CA, a localhost certificate it signed, and a self-signed one.
struct Certs {
    dir: TempDir,
}

impl Certs {
    fn new() -> Certs {
        require_file(Path::new("/usr/bin/openssl"), "openssl");
        let dir = TempDir::new("certs");
        let out = Command::new("bash")
            .arg(root().join("tests/servers/make-certs.sh"))
            .arg(dir.path())
            .output()
            .expect("run tests/servers/make-certs.sh");
        assert!(
            out.status.success(),
            "make-certs.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Certs { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn ca_pem(&self) -> Vec<u8> {
        std::fs::read(self.path("ca.pem")).expect("read ca.pem")
    }
}

/// Reads one line from a child's stdout with a time limit.
fn read_line_with_timeout(stdout: impl Read + Send + 'static, limit: Duration) -> Option<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        let _ = reader.read_line(&mut line);
        let _ = tx.send(line);
        // Keep draining so the child never blocks on a full pipe.
        let _ = std::io::copy(&mut reader, &mut std::io::sink());
    });
    rx.recv_timeout(limit).ok().filter(|l| !l.is_empty())
}

/// Runs an async test body on smol with an overall time limit.
fn run<F: Future<Output = ()>>(fut: F) {
    smol::block_on(smol::future::or(fut, async {
        smol::Timer::after(TEST_TIMEOUT).await;
        panic!("test timed out after {TEST_TIMEOUT:?}");
    }))
}

/// Polls `check` until it returns Some or `limit` passes.
fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().unwrap().port()
}

/// A message with CRLF line ends and every dot-stuffing edge case.
fn message(tag: &str, extra_body: &str) -> Vec<u8> {
    let mut m = String::new();
    m.push_str("From: Sender <sender@client.test>\r\n");
    m.push_str("To: rcpt@server.test\r\n");
    m.push_str(&format!("Subject: wasmtp real-server test {tag}\r\n"));
    m.push_str(&format!("Message-ID: <{tag}.{}@client.test>\r\n", std::process::id()));
    m.push_str("Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n");
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n");
    m.push_str("First line.\r\n");
    m.push_str(".\r\n");
    m.push_str("..\r\n");
    m.push_str(".leading dot\r\n");
    m.push_str("...three dots\r\n");
    m.push_str(" . space dot\r\n");
    m.push_str("\r\n");
    m.push_str("\tTabbed line with trailing spaces   \r\n");
    m.push_str(extra_body);
    m.push_str("Last line.\r\n");
    m.into_bytes()
}

/// A body of roughly `size` bytes of 76-column lines, some starting with a dot.
fn big_text(size: usize) -> String {
    let mut s = String::with_capacity(size + 100);
    let mut i = 0usize;
    while s.len() < size {
        if i % 7 == 0 {
            s.push('.');
        }
        s.push_str(&format!(
            "{i:08} abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789 -_=+\r\n"
        ));
        i += 1;
    }
    s
}

/// A config for 127.0.0.1 (TLS name "localhost") with short time-outs, so a
/// stuck conversation ends as ETIMEDOUT with a transcript, not a hang.
fn local_config(port: u16) -> Config {
    let secs = wasmtp::Duration::from_secs;
    let timeouts = Timeouts {
        connect: secs(10),
        tls_handshake: secs(10),
        greeting: secs(10),
        port_probe: secs(3),
        command: secs(10),
        data_end: secs(20),
    };
    Config::new("localhost", port).timeouts(timeouts)
}

fn password() -> Credentials {
    Credentials::Password {
        user: USER.into(),
        pass: PASS.into(),
    }
}

async fn tcp(port: u16) -> smol::net::TcpStream {
    let stream = smol::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect to the test server");
    stream.set_nodelay(true).ok();
    stream
}

type Transcript = Arc<Mutex<Vec<String>>>;

/// Connects with a transcript recorder; panics with the transcript on error.
async fn connect(port: u16, config: Config, tls: TlsOptions) -> (Client<SecureConnection>, Transcript) {
    match try_connect(port, config, tls).await {
        (Ok(client), transcript) => (client, transcript),
        (Err(err), transcript) => panic!(
            "connect failed: {err}\ntranscript:\n{}",
            transcript.lock().unwrap().join("\n")
        ),
    }
}

async fn try_connect(
    port: u16,
    config: Config,
    tls: TlsOptions,
) -> (Result<Client<SecureConnection>, SmtpError>, Transcript) {
    let transcript: Transcript = Arc::default();
    let sink = transcript.clone();
    let live = std::env::var_os("WASMTP_TEST_TRACE").is_some();
    let callback: Box<dyn FnMut(&TranscriptLine) + Send> = Box::new(move |line: &TranscriptLine| {
        let text = format!("{}: {}", line.dir.as_str(), line.text);
        if live {
            eprintln!("[{port}] {text}");
        }
        sink.lock().unwrap().push(text);
    });
    let result = Client::connect_tls_with_transcript(tcp(port).await, config, tls, Some(callback)).await;
    (result, transcript)
}

/// The public roots plus the CA (or self-signed certificate) in `pem`.
fn trust_ca(pem: &[u8]) -> TlsOptions {
    TlsOptions {
        ca_pem: vec![String::from_utf8(pem.to_vec()).expect("PEM is text")],
        ..TlsOptions::default()
    }
}

fn dump(transcript: &Transcript) -> String {
    transcript.lock().unwrap().join("\n")
}

fn expect_ok(result: Result<Delivery, SmtpError>, transcript: &Transcript) -> Delivery {
    result.unwrap_or_else(|err| panic!("send failed: {err}\ntranscript:\n{}", dump(transcript)))
}

// ------------------------------------------------------------------ aiosmtpd

// Named as the test servers' modes are (`--tls starttls`).
#[allow(clippy::enum_variant_names)]
#[derive(Default, Clone, Copy, PartialEq)]
enum Tls {
    #[default]
    None,
    StartTls,
    Implicit,
}

#[derive(Default)]
struct AioOptions {
    tls: Tls,
    auth: bool,
    self_signed: bool,
    no_pipelining: bool,
}

/// A running aiosmtpd test server; killed by PID on drop.
struct Aiosmtpd {
    child: Child,
    port: u16,
    dir: TempDir,
}

impl Aiosmtpd {
    fn start(certs: &Certs, opts: AioOptions) -> Aiosmtpd {
        let python = root().join(".tools/venv/bin/python");
        require_file(&python, "the aiosmtpd venv (.tools/venv)");
        let dir = TempDir::new("aiosmtpd");
        let spool = dir.path().join("spool");
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut cmd = Command::new(&python);
        cmd.arg(root().join("tests/servers/aiosmtpd_server.py"))
            .args(["--port", "0", "--spool"])
            .arg(&spool)
            .args(["--user", USER, "--password", PASS]);
        let (cert, key) = if opts.self_signed {
            ("selfsigned.pem", "selfsigned.key")
        } else {
            ("server.pem", "server.key")
        };
        match opts.tls {
            Tls::None => {}
            Tls::StartTls => {
                cmd.args(["--tls", "starttls", "--cert"])
                    .arg(certs.path(cert))
                    .arg("--key")
                    .arg(certs.path(key));
            }
            Tls::Implicit => {
                cmd.args(["--tls", "implicit", "--cert"])
                    .arg(certs.path(cert))
                    .arg("--key")
                    .arg(certs.path(key));
            }
        }
        if opts.auth {
            cmd.args(["--auth", "--auth-required"]);
        }
        if opts.no_pipelining {
            cmd.arg("--no-pipelining");
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(stderr)
            .stdin(Stdio::null())
            .spawn()
            .expect("start aiosmtpd_server.py");
        let stdout = child.stdout.take().unwrap();
        let line = read_line_with_timeout(stdout, Duration::from_secs(15));
        let mut server = Aiosmtpd { child, port: 0, dir };
        let Some(line) = line else {
            let log = std::fs::read_to_string(server.dir.path().join("stderr.log")).unwrap_or_default();
            panic!(
                "aiosmtpd did not print its ready line within 15 s (if it cannot import aiosmtpd: {SETUP_HINT}).\nstderr:\n{log}"
            );
        };
        server.port = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("port="))
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected ready line from aiosmtpd: {line:?}"));
        server
    }

    fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// The stored messages, in arrival order: (raw bytes, envelope JSON text).
    fn received(&self) -> Vec<(Vec<u8>, String)> {
        let mut names: Vec<String> = match std::fs::read_dir(self.spool()) {
            Ok(entries) => entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| n.ends_with(".json"))
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
            .into_iter()
            .map(|json| {
                let base = json.trim_end_matches(".json");
                let raw = std::fs::read(self.spool().join(format!("{base}.eml"))).unwrap();
                let meta = std::fs::read_to_string(self.spool().join(&json)).unwrap();
                (raw, meta)
            })
            .collect()
    }
}

impl Drop for Aiosmtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON string value as the server's json.dump writes it (ASCII input).
fn json_has(meta: &str, key: &str, value: &str) -> bool {
    let compact: String = meta.split_whitespace().collect::<Vec<_>>().join("");
    compact.contains(&format!("\"{key}\":{value}"))
}

fn assert_same_bytes(what: &str, got: &[u8], sent: &[u8]) {
    if got != sent {
        let first = got
            .iter()
            .zip(sent)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(sent.len()));
        let from = first.saturating_sub(60);
        panic!(
            "{what}: the server stored {} bytes, the client sent {} bytes; first difference at byte {first}:\n got: {:?}\nsent: {:?}",
            got.len(),
            sent.len(),
            String::from_utf8_lossy(&got[from..got.len().min(first + 60)]),
            String::from_utf8_lossy(&sent[from..sent.len().min(first + 60)]),
        );
    }
}

/// The transactions overlapped on the wire: message i's MAIL FROM went out
/// before message i-1's final "250 ... queued as" reply came back.
fn assert_pipelined(transcript: &str, sender_prefix: &str, n: usize) {
    let lines: Vec<&str> = transcript.lines().collect();
    let queued: Vec<usize> = (0..lines.len())
        .filter(|&i| lines[i].starts_with("S: 250") && lines[i].contains("queued as"))
        .collect();
    assert_eq!(queued.len(), n, "one final reply per message:\n{transcript}");
    for i in 1..n {
        let mail = lines
            .iter()
            .position(|l| l.starts_with(&format!("C: MAIL FROM:<{sender_prefix}{i}@")))
            .unwrap_or_else(|| panic!("no MAIL FROM for message {i}:\n{transcript}"));
        assert!(
            mail < queued[i - 1],
            "message {i}'s MAIL FROM waited for message {}'s final reply (not pipelined):\n{transcript}",
            i - 1
        );
    }
}

#[test]
fn plaintext_send_with_security_none() {
    let certs = Certs::new();
    let server = Aiosmtpd::start(&certs, AioOptions::default());
    let body = message("plain", "");
    run(async {
        let config = local_config(server.port)
            .security(Security::None)
            .client_name("client.test");
        let (mut client, transcript) = connect(server.port, config, TlsOptions::default()).await;
        assert!(client.session().tls.is_none());
        assert!(client.session().auth_method.is_none());
        let envelope = Envelope::new("sender@client.test", ["rcpt@server.test"]);
        let delivery = expect_ok(client.send(envelope, Cursor::new(body.clone())).await, &transcript);
        assert_eq!(delivery.accepted, vec!["rcpt@server.test".to_string()]);
        assert!(delivery.rejected.is_empty());
        assert_eq!(delivery.reply.code, 250);
        assert!(
            delivery.queue_id.as_deref().is_some_and(|q| q.starts_with('Q')),
            "queue id from '{}'",
            delivery.reply
        );
        client.quit().await.unwrap();
    });
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_same_bytes("plaintext", &received[0].0, &body);
    let meta = &received[0].1;
    assert!(json_has(meta, "mail_from", "\"sender@client.test\""), "{meta}");
    assert!(json_has(meta, "rcpt_tos", "[\"rcpt@server.test\"]"), "{meta}");
    assert!(json_has(meta, "tls", "null"), "{meta}");
    assert!(json_has(meta, "ehlo", "\"client.test\""), "{meta}");
}

#[test]
fn security_none_never_sends_starttls_even_when_offered() {
    let certs = Certs::new();
    let server = Aiosmtpd::start(
        &certs,
        AioOptions {
            tls: Tls::StartTls,
            ..Default::default()
        },
    );
    let body = message("none-offered", "");
    run(async {
        let config = local_config(server.port).security(Security::None);
        let (mut client, transcript) = connect(server.port, config, TlsOptions::default()).await;
        assert!(client.session().capabilities.starttls, "the server offers STARTTLS");
        assert!(client.session().tls.is_none());
        expect_ok(
            client
                .send(
                    Envelope::new("a@client.test", ["b@server.test"]),
                    Cursor::new(body.clone()),
                )
                .await,
            &transcript,
        );
        client.quit().await.unwrap();
        assert!(!dump(&transcript).contains("C: STARTTLS"), "{}", dump(&transcript));
    });
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_same_bytes("security none", &received[0].0, &body);
    assert!(json_has(&received[0].1, "tls", "null"));
}

#[test]
fn starttls_with_the_test_ca() {
    let certs = Certs::new();
    let server = Aiosmtpd::start(
        &certs,
        AioOptions {
            tls: Tls::StartTls,
            ..Default::default()
        },
    );
    let body = message("starttls", &big_text(200 * 1024));
    run(async {
        let config = local_config(server.port)
            .security(Security::StartTls)
            .client_name("client.test");
        let tls = trust_ca(&certs.ca_pem());
        let (mut client, transcript) = connect(server.port, config, tls).await;
        let tls = client.session().tls.clone().expect("a TLS session after STARTTLS");
        assert!(tls.authorized);
        assert!(tls.version.starts_with("TLSv1."), "version {:?}", tls.version);
        let delivery = expect_ok(
            client
                .send(
                    Envelope::new("a@client.test", ["b@server.test"]),
                    Cursor::new(body.clone()),
                )
                .await,
            &transcript,
        );
        assert_eq!(delivery.accepted, vec!["b@server.test".to_string()]);
        client.quit().await.unwrap();
    });
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_same_bytes("starttls", &received[0].0, &body);
    assert!(
        json_has(&received[0].1, "tls", "\"TLSv1.3\"") || json_has(&received[0].1, "tls", "\"TLSv1.2\""),
        "{}",
        received[0].1
    );
}

#[test]
fn implicit_tls_with_the_test_ca() {
    let certs = Certs::new();
    let server = Aiosmtpd::start(
        &certs,
        AioOptions {
            tls: Tls::Implicit,
            ..Default::default()
        },
    );
    let body = message("implicit", "");
    run(async {
        let config = local_config(server.port).security(Security::Tls);
        let tls = trust_ca(&certs.ca_pem());
        let (mut client, transcript) = connect(server.port, config, tls).await;
        assert!(client.session().tls.is_some());
        assert!(!client.session().capabilities.starttls);
        expect_ok(
            client
                .send(
                    Envelope::new("a@client.test", ["b@server.test"]),
                    Cursor::new(body.clone()),
                )
                .await,
            &transcript,
        );
        client.quit().await.unwrap();
    });
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_same_bytes("implicit tls", &received[0].0, &body);
    assert!(!json_has(&received[0].1, "tls", "null"), "{}", received[0].1);
}

fn auth_over_starttls(mechanism: Mechanism, server_name: &str) {
    let certs = Certs::new();
    let server = Aiosmtpd::start(
        &certs,
        AioOptions {
            tls: Tls::StartTls,
            auth: true,
            ..Default::default()
        },
    );
    let body = message(&format!("auth-{server_name}"), "");
    run(async {
        let config = local_config(server.port)
            .security(Security::StartTls)
            .credentials(password())
            .auth_mechanism(mechanism);
        let tls = trust_ca(&certs.ca_pem());
        let (mut client, transcript) = connect(server.port, config, tls).await;
        assert_eq!(client.session().auth_method, Some(mechanism));
        expect_ok(
            client
                .send(
                    Envelope::new("a@client.test", ["b@server.test"]),
                    Cursor::new(body.clone()),
                )
                .await,
            &transcript,
        );
        client.quit().await.unwrap();
        let text = dump(&transcript);
        assert!(
            !text.contains(PASS),
            "the transcript must not show the password:\n{text}"
        );
    });
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_same_bytes("auth", &received[0].0, &body);
    let meta = &received[0].1;
    assert!(json_has(meta, "mechanism", &format!("\"{server_name}\"")), "{meta}");
    assert!(json_has(meta, "login", &format!("\"{USER}\"")), "{meta}");
}

#[test]
fn auth_plain_over_starttls() {
    auth_over_starttls(Mechanism::Plain, "PLAIN");
}

#[test]
fn auth_login_over_starttls() {
    auth_over_starttls(Mechanism::Login, "LOGIN");
}

#[test]
fn auth_cram_md5_over_starttls() {
    auth_over_starttls(Mechanism::CramMd5, "CRAM-MD5");
}

#[test]
fn auth_with_a_wrong_password_fails_with_eauth() {
    let certs = Certs::new();
    let server = Aiosmtpd::start(
        &certs,
        AioOptions {
            tls: Tls::StartTls,
            auth: true,
            ..Default::default()
        },
    );
    run(async {
        let config = local_config(server.port)
            .security(Security::StartTls)
            .credentials(Credentials::Password {
                user: USER.into(),
                pass: "wrong".into(),
            })
            .auth_mechanism(Mechanism::Plain);
        let tls = trust_ca(&certs.ca_pem());
        let (result, transcript) = try_connect(server.port, config, tls).await;
        let err = result
            .err()
            .unwrap_or_else(|| panic!("a wrong password must fail\n{}", dump(&transcript)));
        assert_eq!(err.code, ErrorCode::Auth, "{err}\n{}", dump(&transcript));
        assert_eq!(err.reply.as_ref().map(|r| r.code), Some(535), "{err}");
    });
    assert!(server.received().is_empty());
}

#[test]
fn plaintext_auth_needs_allow_insecure_auth() {
    let certs = Certs::new();
    let server = Aiosmtpd::start(
        &certs,
        AioOptions {
            tls: Tls::None,
            auth: true,
            ..Default::default()
        },
    );
    let body = message("insecure-auth", "");
    run(async {
        // Without the opt-in: refused before any credential is sent.
        let config = local_config(server.port)
            .security(Security::None)
            .credentials(password());
        let (result, transcript) = try_connect(server.port, config, TlsOptions::default()).await;
        let err = result.err().expect("credentials over plaintext must be refused");
        assert_eq!(err.code, ErrorCode::AuthInsecure, "{err}");
        assert!(!dump(&transcript).contains("C: AUTH"), "{}", dump(&transcript));

        // With it: AUTH LOGIN in plaintext against a local server.
        let config = local_config(server.port)
            .security(Security::None)
            .credentials(password())
            .auth_mechanism(Mechanism::Login)
            .allow_insecure_auth(true);
        let (mut client, transcript) = connect(server.port, config, TlsOptions::default()).await;
        assert_eq!(client.session().auth_method, Some(Mechanism::Login));
        expect_ok(
            client
                .send(
                    Envelope::new("a@client.test", ["b@server.test"]),
                    Cursor::new(body.clone()),
                )
                .await,
            &transcript,
        );
        client.quit().await.unwrap();
    });
    let received = server.received();
    assert_eq!(received.len(), 1);
    assert_same_bytes("insecure auth", &received[0].0, &body);
    assert!(json_has(&received[0].1, "mechanism", "\"LOGIN\""), "{}", received[0].1);
}

#[test]
fn partial_recipients_are_delivered_and_the_rejected_listed() {
    let certs = Certs::new();
    let server = Aiosmtpd::start(&certs, AioOptions::default());
    let body = message("partial", "");
    run(async {
        let config = local_config(server.port).security(Security::None);
        let (mut client, transcript) = connect(server.port, config, TlsOptions::default()).await;
        let envelope = Envelope::new(
            "a@client.test",
            ["ok1@server.test", "reject-me@server.test", "ok2@server.test"],
        );
        let delivery = expect_ok(client.send(envelope, Cursor::new(body.clone())).await, &transcript);
        assert_eq!(
            delivery.accepted,
            vec!["ok1@server.test".to_string(), "ok2@server.test".to_string()]
        );
        assert_eq!(delivery.rejected.len(), 1, "{:?}", delivery.rejected);
        let rejected = &delivery.rejected[0];
        assert_eq!(rejected.address, "reject-me@server.test");
        assert_eq!(rejected.code(), 550);
        assert_eq!(
            rejected.enhanced_code().map(|c| c.to_string()).as_deref(),
            Some("5.1.1")
        );
        assert!(rejected.message().contains("User unknown"), "{}", rejected.message());

        // All recipients rejected: ERECIPIENTS, and nothing is sent.
        let envelope = Envelope::new("a@client.test", ["reject1@server.test", "reject2@server.test"]);
        let err = client
            .send(envelope, Cursor::new(body.clone()))
            .await
            .expect_err("no recipient accepted");
        assert_eq!(err.code, ErrorCode::Recipients, "{err}\n{}", dump(&transcript));
        client.quit().await.unwrap();
    });
    let received = server.received();
    assert_eq!(received.len(), 1, "only the partial message is stored");
    assert_same_bytes("partial", &received[0].0, &body);
    assert!(
        json_has(&received[0].1, "rcpt_tos", "[\"ok1@server.test\",\"ok2@server.test\"]"),
        "{}",
        received[0].1
    );
}

#[test]
fn send_all_pipelines_several_messages() {
    let certs = Certs::new();
    let server = Aiosmtpd::start(
        &certs,
        AioOptions {
            tls: Tls::StartTls,
            auth: true,
            ..Default::default()
        },
    );
    let bodies: Vec<Vec<u8>> = (0..5)
        .map(|i| message(&format!("batch-{i}"), &big_text(i * 20_000)))
        .collect();
    run(async {
        let config = local_config(server.port)
            .security(Security::StartTls)
            .credentials(password());
        let tls = trust_ca(&certs.ca_pem());
        let (mut client, transcript) = connect(server.port, config, tls).await;
        assert!(client.session().capabilities.pipelining);
        let batch = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                (
                    Envelope::new(
                        format!("from{i}@client.test"),
                        [format!("to{i}@server.test"), "reject-x@server.test".into()],
                    ),
                    body.clone(),
                )
            })
            .collect();
        let results = client.send_all(batch).await;
        assert_eq!(results.len(), 5);
        for (i, result) in results.into_iter().enumerate() {
            let delivery = expect_ok(result, &transcript);
            assert_eq!(delivery.accepted, vec![format!("to{i}@server.test")]);
            assert_eq!(delivery.rejected.len(), 1);
        }
        client.quit().await.unwrap();
        assert_pipelined(&dump(&transcript), "from", 5);
    });
    let received = server.received();
    assert_eq!(received.len(), 5);
    for (i, (raw, meta)) in received.iter().enumerate() {
        assert_same_bytes(&format!("batch message {i}"), raw, &bodies[i]);
        assert!(
            json_has(meta, "mail_from", &format!("\"from{i}@client.test\"")),
            "{meta}"
        );
    }
}

#[test]
fn self_signed_server_without_ca_fails_with_ecert() {
    let certs = Certs::new();
    for tls in [Tls::StartTls, Tls::Implicit] {
        let server = Aiosmtpd::start(
            &certs,
            AioOptions {
                tls,
                self_signed: true,
                ..Default::default()
            },
        );
        run(async {
            let security = if tls == Tls::Implicit {
                Security::Tls
            } else {
                Security::StartTls
            };
            let config = local_config(server.port).security(security).credentials(password());
            let (result, transcript) = try_connect(server.port, config, TlsOptions::default()).await;
            let err = result
                .err()
                .unwrap_or_else(|| panic!("an unknown self-signed certificate must fail\n{}", dump(&transcript)));
            assert_eq!(err.code, ErrorCode::Cert, "{err}\n{}", dump(&transcript));
            assert!(err.hint.is_some(), "ECERT should come with a hint: {err}");
            assert!(!dump(&transcript).contains("C: AUTH"));
        });
        assert!(server.received().is_empty());
    }
}

#[test]
fn self_signed_server_with_its_certificate_as_ca_works() {
    let certs = Certs::new();
    let server = Aiosmtpd::start(
        &certs,
        AioOptions {
            tls: Tls::StartTls,
            self_signed: true,
            ..Default::default()
        },
    );
    let body = message("self-signed-ca", "");
    run(async {
        let pem = std::fs::read(certs.path("selfsigned.pem")).unwrap();
        let config = local_config(server.port).security(Security::StartTls);
        let (mut client, transcript) = connect(server.port, config, trust_ca(&pem)).await;
        expect_ok(
            client
                .send(
                    Envelope::new("a@client.test", ["b@server.test"]),
                    Cursor::new(body.clone()),
                )
                .await,
            &transcript,
        );
        client.quit().await.unwrap();
    });
    assert_same_bytes("self-signed", &server.received()[0].0, &body);
}

#[test]
fn starttls_required_but_not_offered_fails_before_credentials() {
    let certs = Certs::new();
    let server = Aiosmtpd::start(
        &certs,
        AioOptions {
            tls: Tls::None,
            auth: true,
            ..Default::default()
        },
    );
    run(async {
        let config = local_config(server.port)
            .security(Security::StartTls)
            .credentials(password());
        let tls = trust_ca(&certs.ca_pem());
        let (result, transcript) = try_connect(server.port, config, tls).await;
        let err = result
            .err()
            .unwrap_or_else(|| panic!("STARTTLS is required\n{}", dump(&transcript)));
        assert_eq!(err.code, ErrorCode::StartTlsUnavailable, "{err}\n{}", dump(&transcript));
        let text = dump(&transcript);
        assert!(!text.contains("C: AUTH") && !text.contains("C: MAIL"), "{text}");
    });
    assert!(server.received().is_empty());
}

// ------------------------------------------------------------------- Postfix

/// A private Postfix instance; stopped by PID (stop.sh) on drop.
struct Postfix {
    port: u16,
    pid: Option<u32>,
    dir: TempDir,
}

impl Postfix {
    fn start(certs: &Certs) -> Postfix {
        require_file(Path::new("/usr/sbin/postfix"), "postfix");
        require_file(Path::new("/usr/sbin/saslpasswd2"), "saslpasswd2 (sasl2-bin)");
        let mut last_error = String::new();
        // A free port can be taken between the probe and Postfix's bind: retry.
        for _attempt in 0..3 {
            let dir = TempDir::new("postfix");
            let port = free_port();
            let out = Command::new("timeout")
                .args(["60", "bash"])
                .arg(root().join("tests/servers/postfix/start.sh"))
                .args(["--port", &port.to_string(), "--dir"])
                .arg(dir.path())
                .arg("--cert")
                .arg(certs.path("server.pem"))
                .arg("--key")
                .arg(certs.path("server.key"))
                .args(["--user", USER, "--password", PASS])
                .stdin(Stdio::null())
                .output()
                .expect("run tests/servers/postfix/start.sh");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let pid = stdout
                .split_whitespace()
                .find_map(|w| w.strip_prefix("pid="))
                .and_then(|p| p.parse().ok());
            let postfix = Postfix { port, pid, dir };
            if out.status.success() && stdout.starts_with("ready") {
                return postfix;
            }
            last_error = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
            drop(postfix); // stops whatever started, by PID
        }
        panic!("the private Postfix instance did not start ({SETUP_HINT}; Postfix needs root):\n{last_error}");
    }

    fn stop(&mut self, keep: bool) {
        let mut cmd = Command::new("timeout");
        cmd.args(["30", "bash"])
            .arg(root().join("tests/servers/postfix/stop.sh"))
            .arg(self.dir.path());
        if keep {
            cmd.arg("--keep");
        }
        let _ = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        if let Some(pid) = self.pid.take() {
            // Belt and braces: the master by PID, in case stop.sh could not
            // (only if that PID still is a Postfix master).
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("postfix/sbin/master") {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }

    fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    fn maillog(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// Waits until `n` messages were delivered; returns (queue id, bytes).
    fn wait_delivered(&self, n: usize) -> Vec<(String, Vec<u8>)> {
        let spool = self.spool();
        let ids: Vec<String> = wait_for(
            Duration::from_secs(20),
            &format!("{n} messages in {}\nmaillog:\n{}", spool.display(), self.maillog()),
            || {
                let ids: Vec<String> = std::fs::read_dir(&spool)
                    .ok()?
                    .filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter_map(|n| n.strip_suffix(".meta").map(str::to_string))
                    .filter(|n| !n.starts_with('.'))
                    .collect();
                (ids.len() >= n).then_some(ids)
            },
        );
        ids.into_iter()
            .map(|id| (id.clone(), std::fs::read(spool.join(format!("{id}.eml"))).unwrap()))
            .collect()
    }

    fn meta(&self, queue_id: &str) -> String {
        std::fs::read_to_string(self.spool().join(format!("{queue_id}.meta"))).unwrap()
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        if std::env::var_os("WASMTP_KEEP_TEST_DIRS").is_some() {
            self.stop(true);
        } else {
            self.stop(false);
        }
    }
}

/// Postfix prepends exactly one (folded) `Received:` header; strip it.
fn strip_postfix_received(raw: &[u8]) -> &[u8] {
    assert!(
        raw.starts_with(b"Received: "),
        "Postfix should prepend a Received: header: {:?}",
        String::from_utf8_lossy(&raw[..raw.len().min(200)])
    );
    let mut pos = 0;
    loop {
        let end = raw[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| pos + i + 2)
            .expect("a CRLF-terminated header");
        pos = end;
        if !matches!(raw.get(pos), Some(b' ' | b'\t')) {
            return &raw[pos..];
        }
    }
}

fn postfix_config(port: u16, certs: &Certs) -> (Config, TlsOptions) {
    let config = local_config(port)
        .security(Security::StartTls)
        .client_name("client.test")
        .credentials(password());
    (config, trust_ca(&certs.ca_pem()))
}

#[test]
fn postfix_bdat_and_pipelining_with_sasl_over_starttls() {
    let certs = Certs::new();
    let postfix = Postfix::start(&certs);
    // Four messages, one big enough for several BDAT chunks (bdat_chunk_size is 128 KiB).
    let sizes = [0usize, 5_000, 300_000, 100];
    let bodies: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| message(&format!("postfix-bdat-{i}"), &big_text(n)))
        .collect();
    let mut queue_ids = Vec::new();
    run(async {
        let (config, tls) = postfix_config(postfix.port, &certs);
        let (mut client, transcript) = connect(postfix.port, config, tls).await;
        let session = client.session();
        assert!(session.tls.is_some());
        assert!(
            session.capabilities.chunking && session.capabilities.pipelining,
            "{:?}",
            session.capabilities
        );
        assert!(session.auth_method.is_some());
        let batch = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let rcpts = if i == 1 {
                    vec!["a@y.test".to_string(), "reject-1@y.test".into(), "b@z.test".into()]
                } else {
                    vec![format!("r{i}@y.test")]
                };
                (Envelope::new(format!("s{i}@client.test"), rcpts), body.clone())
            })
            .collect();
        let results = client.send_all(batch).await;
        for (i, result) in results.into_iter().enumerate() {
            let delivery = expect_ok(result, &transcript);
            if i == 1 {
                assert_eq!(delivery.accepted, vec!["a@y.test".to_string(), "b@z.test".to_string()]);
                assert_eq!(delivery.rejected.len(), 1);
                assert_eq!(delivery.rejected[0].address, "reject-1@y.test");
                assert_eq!(delivery.rejected[0].code(), 550);
            }
            queue_ids.push(
                delivery
                    .queue_id
                    .clone()
                    .unwrap_or_else(|| panic!("no queue id in '{}'", delivery.reply)),
            );
        }
        client.quit().await.unwrap();
        let text = dump(&transcript);
        assert!(
            text.lines().any(|l| l.starts_with("C: BDAT")),
            "CHUNKING was offered, so BDAT is expected:\n{text}"
        );
        assert!(!text.lines().any(|l| l == "C: DATA"), "{text}");
        assert!(!text.contains("synchronization"), "{text}");
        assert_pipelined(&text, "s", 4);
    });
    let delivered = postfix.wait_delivered(bodies.len());
    assert_eq!(delivered.len(), bodies.len());
    for (i, queue_id) in queue_ids.iter().enumerate() {
        let (_, raw) = delivered
            .iter()
            .find(|(id, _)| id == queue_id)
            .unwrap_or_else(|| panic!("queue id {queue_id} was not delivered"));
        assert_same_bytes(
            &format!("postfix BDAT message {i}"),
            strip_postfix_received(raw),
            &bodies[i],
        );
        let meta = postfix.meta(queue_id);
        assert!(meta.contains(&format!("sender=s{i}@client.test\n")), "{meta}");
    }
    assert!(
        postfix
            .meta(&queue_ids[1])
            .contains("recipient=a@y.test\nrecipient=b@z.test\n")
    );
    // Postfix counts the commands per session (logged just after the 221,
    // so wait for it): BDAT was used, and AUTH once.
    let disconnect = wait_for(
        Duration::from_secs(10),
        "smtpd's disconnect line in the maillog",
        || {
            postfix
                .maillog()
                .lines()
                .find(|l| l.contains("disconnect from") && l.contains("starttls=1"))
                .map(str::to_string)
        },
    );
    assert!(
        disconnect.contains(" bdat=") && disconnect.contains(" auth=1") && !disconnect.contains(" data="),
        "{disconnect}"
    );
}

/// The BDAT window with refused transactions in the middle: every MAIL
/// written while the previous BDAT LAST is unanswered goes behind an RSET
/// (some servers keep a refused transaction open; Postfix ends it at BDAT
/// LAST, and answers the RSET with 250 all the same), so every reply pairs
/// and every later message is delivered under its own sender.
#[test]
fn postfix_bdat_window_with_failures_in_the_middle() {
    let certs = Certs::new();
    let postfix = Postfix::start(&certs);
    let rejected = [2usize, 5];
    let bodies: Vec<Vec<u8>> = (0..8)
        .map(|i| {
            message(
                &format!("postfix-window-{i}"),
                &big_text(if i == 4 { 300_000 } else { 3_000 }),
            )
        })
        .collect();
    let mut queue_ids = Vec::new();
    run(async {
        let (config, tls) = postfix_config(postfix.port, &certs);
        let (mut client, transcript) = connect(postfix.port, config, tls).await;
        let batch = bodies
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let rcpt = if rejected.contains(&i) {
                    format!("reject-{i}@y.test")
                } else {
                    format!("r{i}@y.test")
                };
                (Envelope::new(format!("w{i}@client.test"), [rcpt]), body.clone())
            })
            .collect();
        let results = client.send_all(batch).await;
        for (i, result) in results.into_iter().enumerate() {
            if rejected.contains(&i) {
                let err = result.expect_err("every recipient was refused");
                assert_eq!(err.code, ErrorCode::Recipients, "{err}\n{}", dump(&transcript));
            } else {
                queue_ids.push((i, expect_ok(result, &transcript).queue_id.unwrap()));
            }
        }
        client.quit().await.unwrap();
        let text = dump(&transcript);
        assert!(!text.contains("nested MAIL") && !text.contains("S: 503"), "{text}");
        // At most one RSET per transaction after the first, never a refused one.
        assert!(
            text.lines().filter(|l| *l == "C: RSET").count() < bodies.len(),
            "{text}"
        );
        assert_eq!(
            text.lines().filter(|l| l.starts_with("S: 554 5.5.1")).count(),
            rejected.len(),
            "{text}"
        );
    });
    let delivered = postfix.wait_delivered(queue_ids.len());
    assert_eq!(delivered.len(), queue_ids.len());
    for (i, queue_id) in &queue_ids {
        let (_, raw) = delivered
            .iter()
            .find(|(id, _)| id == queue_id)
            .unwrap_or_else(|| panic!("queue id {queue_id} was not delivered"));
        assert_same_bytes(
            &format!("postfix window message {i}"),
            strip_postfix_received(raw),
            &bodies[*i],
        );
        assert!(postfix.meta(queue_id).contains(&format!("sender=w{i}@client.test\n")));
    }
}

#[test]
fn postfix_data_path_pipelined_when_chunking_is_off() {
    let certs = Certs::new();
    let postfix = Postfix::start(&certs);
    let bodies: Vec<Vec<u8>> = (0..3)
        .map(|i| message(&format!("postfix-data-{i}"), &big_text(i * 40_000)))
        .collect();
    let mut queue_ids = Vec::new();
    run(async {
        let (mut config, tls) = postfix_config(postfix.port, &certs);
        config.use_chunking = false;
        let (mut client, transcript) = connect(postfix.port, config, tls).await;
        let batch = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| (Envelope::new("s@client.test", [format!("r{i}@y.test")]), b.clone()))
            .collect();
        for result in client.send_all(batch).await {
            queue_ids.push(expect_ok(result, &transcript).queue_id.expect("queue id"));
        }
        client.quit().await.unwrap();
        let text = dump(&transcript);
        assert!(!text.lines().any(|l| l.starts_with("C: BDAT")), "{text}");
        assert_eq!(text.lines().filter(|l| *l == "C: DATA").count(), 3, "{text}");
    });
    let delivered = postfix.wait_delivered(bodies.len());
    for (i, queue_id) in queue_ids.iter().enumerate() {
        let (_, raw) = delivered.iter().find(|(id, _)| id == queue_id).expect("delivered");
        assert_same_bytes(
            &format!("postfix DATA message {i}"),
            strip_postfix_received(raw),
            &bodies[i],
        );
    }
}

#[test]
fn postfix_sasl_mechanisms() {
    let certs = Certs::new();
    let postfix = Postfix::start(&certs);
    let mechanisms = [Mechanism::Plain, Mechanism::Login, Mechanism::CramMd5];
    let bodies: Vec<Vec<u8>> = mechanisms
        .iter()
        .map(|m| message(&format!("postfix-{}", m.as_str()), ""))
        .collect();
    let mut queue_ids = Vec::new();
    run(async {
        for (mechanism, body) in mechanisms.iter().zip(&bodies) {
            let (config, tls) = postfix_config(postfix.port, &certs);
            let (mut client, transcript) = connect(postfix.port, config.auth_mechanism(*mechanism), tls).await;
            assert_eq!(client.session().auth_method, Some(*mechanism));
            let delivery = expect_ok(
                client
                    .send(Envelope::new("s@client.test", ["r@y.test"]), Cursor::new(body.clone()))
                    .await,
                &transcript,
            );
            queue_ids.push(delivery.queue_id.expect("queue id"));
            client.quit().await.unwrap();
        }
        // And a wrong password is EAUTH with Postfix's 535.
        let (config, tls) = postfix_config(postfix.port, &certs);
        let config = config.credentials(Credentials::Password {
            user: USER.into(),
            pass: "nope".into(),
        });
        let (result, transcript) = try_connect(postfix.port, config, tls).await;
        let err = result
            .err()
            .unwrap_or_else(|| panic!("wrong password accepted?\n{}", dump(&transcript)));
        assert_eq!(err.code, ErrorCode::Auth, "{err}");
    });
    let delivered = postfix.wait_delivered(bodies.len());
    for (i, queue_id) in queue_ids.iter().enumerate() {
        let (_, raw) = delivered.iter().find(|(id, _)| id == queue_id).expect("delivered");
        assert_same_bytes("postfix sasl", strip_postfix_received(raw), &bodies[i]);
    }
    let log = postfix.maillog();
    for name in ["PLAIN", "LOGIN", "CRAM-MD5"] {
        assert!(
            log.contains(&format!("sasl_method={name}")),
            "no sasl_method={name} in the maillog:\n{log}"
        );
    }
}
