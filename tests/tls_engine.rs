//! TLS inside the engine, against an in-memory SMTP server that speaks real
//! TLS (rustls) with certificates made by the test: STARTTLS and implicit
//! TLS, a private CA, pinning, and every certificate failure a user meets.
#![cfg(feature = "tls-engine")]

use std::io::{Read, Write};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection};
use wasmtp::tls_engine::{SecureConnection, TlsOptions, hex_fingerprint, parse_fingerprint};
use wasmtp::*;

const HOST: &str = "mx.example.com";

/// A server certificate and the CA that signed it.
struct Pki {
    ca_pem: String,
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

fn pki_for(name: &str, tweak: impl FnOnce(&mut CertificateParams)) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "wasmtp test CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    tweak(&mut params);
    let cert = params.signed_by(&key, &ca).unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert: cert.der().clone(),
        key: key.serialize_der(),
    }
}

fn self_signed(name: &str) -> Pki {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        cert: cert.der().clone(),
        key: key.serialize_der(),
    }
}

/// Self-signed with CA:TRUE, as `openssl req -x509` makes them.
fn self_signed_ca(name: &str) -> Pki {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec![name.to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    Pki {
        ca_pem: cert.pem(),
        cert: cert.der().clone(),
        key: key.serialize_der(),
    }
}

fn fingerprint(cert: &CertificateDer<'_>) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    digest.as_ref().try_into().unwrap()
}

fn server_config(pki: &Pki, versions: &[&'static rustls::SupportedProtocolVersion]) -> Arc<ServerConfig> {
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone()));
    Arc::new(
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![pki.cert.clone()], key)
            .unwrap(),
    )
}

/// A small SMTP server over real TLS, in memory.
struct Server {
    config: Arc<ServerConfig>,
    tls: Option<ServerConnection>,
    /// Serve TLS from the first byte (port 465).
    implicit: bool,
    /// Extra plaintext appended to the STARTTLS 220 (an injection attack).
    inject_after_220: Option<&'static str>,
    out: Vec<u8>,
    pending: Vec<u8>,
    in_data: bool,
    body: Vec<u8>,
    commands: Vec<String>,
    greeted: bool,
}

impl Server {
    /// Whether anything past the handshake that matters reached the server.
    fn got_credentials_or_mail(&self) -> bool {
        self.commands
            .iter()
            .any(|c| c.starts_with("AUTH") || c.starts_with("MAIL"))
    }

    fn new(config: Arc<ServerConfig>, implicit: bool) -> Self {
        Server {
            config,
            tls: None,
            implicit,
            inject_after_220: None,
            out: Vec::new(),
            pending: Vec::new(),
            in_data: false,
            body: Vec::new(),
            commands: Vec::new(),
            greeted: false,
        }
    }

    fn start(&mut self) {
        if self.implicit {
            self.tls = Some(ServerConnection::new(self.config.clone()).unwrap());
        } else {
            self.greet();
        }
    }

    fn greet(&mut self) {
        self.greeted = true;
        self.send("220 mx.example.com ESMTP test\r\n");
    }

    fn send(&mut self, text: &str) {
        match self.tls.as_mut() {
            Some(tls) => {
                tls.writer().write_all(text.as_bytes()).unwrap();
                self.flush();
            }
            None => self.out.extend_from_slice(text.as_bytes()),
        }
    }

    fn flush(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            while tls.wants_write() {
                tls.write_tls(&mut self.out).unwrap();
            }
        }
    }

    fn receive(&mut self, mut raw: &[u8]) {
        if self.tls.is_none() {
            self.plaintext(raw);
            return;
        }
        while !raw.is_empty() {
            let tls = self.tls.as_mut().expect("checked");
            tls.read_tls(&mut raw).unwrap();
            if tls.process_new_packets().is_err() {
                self.flush();
                return;
            }
            let mut plain = Vec::new();
            let _ = tls.reader().read_to_end(&mut plain);
            let handshaking = tls.is_handshaking();
            self.flush();
            if self.implicit && !self.greeted && !handshaking {
                self.greet();
            }
            self.plaintext(&plain);
        }
    }

    fn plaintext(&mut self, data: &[u8]) {
        self.pending.extend_from_slice(data);
        while let Some(end) = self.pending.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = self.pending.drain(..end + 2).collect();
            let text = String::from_utf8_lossy(&line[..end]).into_owned();
            if self.in_data {
                if text == "." {
                    self.in_data = false;
                    self.send("250 2.0.0 Ok: queued as TLS1\r\n");
                } else {
                    self.body.extend_from_slice(&line);
                }
                continue;
            }
            self.commands.push(text.clone());
            let verb = text.split(' ').next().unwrap_or("").to_ascii_uppercase();
            match verb.as_str() {
                "EHLO" if self.tls.is_none() => self.send("250-mx.example.com\r\n250-PIPELINING\r\n250 STARTTLS\r\n"),
                "EHLO" => self.send("250-mx.example.com\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN\r\n"),
                "STARTTLS" => {
                    let mut reply = "220 2.0.0 Ready to start TLS\r\n".to_string();
                    reply.push_str(self.inject_after_220.unwrap_or(""));
                    self.send(&reply);
                    self.tls = Some(ServerConnection::new(self.config.clone()).unwrap());
                }
                "AUTH" => self.send("235 2.7.0 Authentication successful\r\n"),
                "DATA" => {
                    self.in_data = true;
                    self.send("354 End data with <CR><LF>.<CR><LF>\r\n");
                }
                "QUIT" => self.send("221 2.0.0 Bye\r\n"),
                _ => self.send("250 2.1.0 Ok\r\n"),
            }
        }
    }
}

struct Run {
    client: SecureConnection,
    server: Server,
    now: Instant,
    events: Vec<Event>,
    client_raw: Vec<u8>,
}

impl Run {
    fn new(config: Config, options: TlsOptions, server: Server) -> Run {
        let now = Instant::from_millis(1_000);
        let client = SecureConnection::new(config, options, now).unwrap();
        let mut run = Run {
            client,
            server,
            now,
            events: Vec::new(),
            client_raw: Vec::new(),
        };
        run.server.start();
        run.client.connected(now);
        run.exchange();
        run
    }

    /// Moves bytes both ways until both sides are quiet.
    fn exchange(&mut self) {
        for _ in 0..1000 {
            let mut moved = false;
            while let Some(bytes) = self.client.poll_transmit() {
                self.client_raw.extend_from_slice(&bytes);
                self.server.receive(&bytes);
                moved = true;
            }
            let from_server = std::mem::take(&mut self.server.out);
            if !from_server.is_empty() {
                self.client.receive(&from_server, self.now);
                moved = true;
            }
            while let Some(event) = self.client.poll_event() {
                self.events.push(event);
                moved = true;
            }
            if !moved {
                return;
            }
        }
        panic!("the exchange never settled");
    }

    fn send(&mut self, body: &[u8]) -> Result<Delivery, SmtpError> {
        let id = self
            .client
            .submit(Envelope::new("ann@example.com", ["bob@example.org"]), self.now)
            .unwrap();
        self.exchange();
        let taken = self.client.write_body(id, body, self.now).unwrap_or(0);
        assert!(taken == body.len() || self.closed().is_some());
        let _ = self.client.end_body(id, self.now);
        self.exchange();
        self.events
            .iter()
            .find_map(|e| match e {
                Event::Delivered(i, d) if *i == id => Some(Ok(d.clone())),
                Event::Failed(i, err) if *i == id => Some(Err(err.clone())),
                _ => None,
            })
            .expect("an outcome")
    }

    fn ready(&self) -> Option<&SessionInfo> {
        self.events
            .iter()
            .find_map(|e| if let Event::Ready(info) = e { Some(info) } else { None })
    }

    fn closed(&self) -> Option<Option<&SmtpError>> {
        self.events.iter().find_map(|e| {
            if let Event::Closed(err) = e {
                Some(err.as_ref())
            } else {
                None
            }
        })
    }

    fn close_error(&self) -> &SmtpError {
        self.closed().flatten().expect("the connection failed")
    }
}

fn options(ca: Option<&str>) -> TlsOptions {
    TlsOptions {
        ca_pem: ca.map(|c| vec![c.to_string()]).unwrap_or_default(),
        unix_time_ms: now_unix_ms(),
        ..TlsOptions::default()
    }
}

fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

fn starttls_config() -> Config {
    Config::new(HOST, 587)
        .security(Security::StartTls)
        .client_name("client.example.com")
        .credentials(Credentials::Password {
            user: "ann".into(),
            pass: "s3cret".into(),
        })
}

const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

#[test]
fn starttls_with_a_private_ca_delivers_the_exact_bytes() {
    let pki = pki_for(HOST, |_| {});
    let mut run = Run::new(
        starttls_config(),
        options(Some(&pki.ca_pem)),
        Server::new(server_config(&pki, TLS13), false),
    );
    let info = run.ready().expect("ready").clone();
    assert_eq!(info.tls.as_ref().unwrap().version, "TLSv1.3");
    assert_eq!(info.auth_method, Some(Mechanism::Plain));
    assert!(info.capabilities.offers_auth("LOGIN"), "post-TLS capabilities");
    let delivery = run.send(b"Subject: over TLS\r\n\r\n.dot\r\nbody\r\n").unwrap();
    assert_eq!(delivery.queue_id.as_deref(), Some("TLS1"));
    assert_eq!(run.server.body, b"Subject: over TLS\r\n\r\n..dot\r\nbody\r\n");
    // Nothing but the greeting, EHLO and STARTTLS ever crossed in clear.
    let clear = String::from_utf8_lossy(&run.client_raw);
    assert!(!clear.contains("AUTH") && !clear.contains("MAIL FROM") && !clear.contains("over TLS"));
    run.client.close(run.now);
    run.exchange();
    assert_eq!(run.closed(), Some(None));
}

#[test]
fn tls_1_2_servers_work_too() {
    let pki = pki_for(HOST, |_| {});
    let run = Run::new(
        starttls_config(),
        options(Some(&pki.ca_pem)),
        Server::new(server_config(&pki, &[&rustls::version::TLS12]), false),
    );
    assert_eq!(run.ready().expect("ready").tls.as_ref().unwrap().version, "TLSv1.2");
}

#[test]
fn implicit_tls_with_a_pinned_self_signed_certificate() {
    let pki = self_signed(HOST);
    let pin = hex_fingerprint(&fingerprint(&pki.cert));
    let options = TlsOptions {
        pins_sha256: vec![parse_fingerprint(&pin).unwrap()],
        no_public_roots: true,
        unix_time_ms: now_unix_ms(),
        ..TlsOptions::default()
    };
    let config = Config::new(HOST, 465)
        .security(Security::Tls)
        .client_name("client.example.com");
    let mut run = Run::new(config, options, Server::new(server_config(&pki, TLS13), true));
    assert!(run.ready().is_some(), "{:?}", run.closed());
    assert!(run.send(b"pinned\r\n").is_ok());
    assert_eq!(run.server.body, b"pinned\r\n");
}

#[test]
fn a_wrong_pin_is_refused_before_anything_is_sent() {
    let pki = self_signed(HOST);
    let options = TlsOptions {
        pins_sha256: vec![[7u8; 32]],
        unix_time_ms: now_unix_ms(),
        ..TlsOptions::default()
    };
    let run = Run::new(
        starttls_config(),
        options,
        Server::new(server_config(&pki, TLS13), false),
    );
    let err = run.close_error();
    assert_eq!((err.code, err.phase), (ErrorCode::Cert, Phase::StartTls));
    assert!(err.message.contains("pinned"), "{err}");
    assert!(err.message.contains(&hex_fingerprint(&fingerprint(&pki.cert))), "{err}");
    assert!(!run.server.got_credentials_or_mail());
}

#[test]
fn certificate_failures_name_their_cause() {
    let cases: Vec<(&str, Pki, Option<bool>)> = vec![
        ("self-signed", self_signed(HOST), None),
        ("issued by a CA that is not trusted", pki_for(HOST, |_| {}), None),
        (
            "expired",
            pki_for(HOST, |p| {
                p.not_before = rcgen::date_time_ymd(2001, 1, 1);
                p.not_after = rcgen::date_time_ymd(2002, 1, 1);
            }),
            Some(true),
        ),
        (
            "not valid for the name",
            pki_for("other.example.com", |_| {}),
            Some(true),
        ),
    ];
    for (needle, pki, trust_ca) in cases {
        let ca = trust_ca.map(|_| pki.ca_pem.clone());
        let run = Run::new(
            starttls_config(),
            options(ca.as_deref()),
            Server::new(server_config(&pki, TLS13), false),
        );
        let err = run.close_error();
        assert_eq!(err.code, ErrorCode::Cert, "{needle}: {err}");
        assert!(err.message.contains(needle), "{needle}: {err}");
        if needle == "self-signed" {
            assert!(err.message.contains(&hex_fingerprint(&fingerprint(&pki.cert))), "{err}");
            assert!(
                err.hint.as_deref().unwrap().starts_with("pass the server's CA"),
                "{err}"
            );
        }
        assert!(!run.server.commands.iter().any(|c| c.starts_with("AUTH")));
    }
}

#[test]
fn a_self_signed_ca_certificate_is_named_and_the_fix_is_a_pin() {
    // Untrusted, and trusted through tls.ca: webpki refuses a CA as the end
    // entity either way; the error says self-signed and points at the pin.
    for trust in [false, true] {
        let pki = self_signed_ca(HOST);
        let ca = trust.then(|| pki.ca_pem.clone());
        let run = Run::new(
            starttls_config(),
            options(ca.as_deref()),
            Server::new(server_config(&pki, TLS13), false),
        );
        let err = run.close_error();
        assert_eq!(err.code, ErrorCode::Cert, "{err}");
        assert!(
            err.message.contains("self-signed") && err.message.contains("tls.pin"),
            "{err}"
        );
        assert!(err.message.contains(&hex_fingerprint(&fingerprint(&pki.cert))), "{err}");
    }
}

#[test]
fn implicit_tls_to_a_plaintext_port_is_a_port_mismatch() {
    let pki = pki_for(HOST, |_| {});
    let config = Config::new(HOST, 587)
        .security(Security::Tls)
        .client_name("client.example.com");
    let run = Run::new(
        config,
        options(Some(&pki.ca_pem)),
        Server::new(server_config(&pki, TLS13), false),
    );
    let err = run.close_error();
    assert_eq!(err.code, ErrorCode::TlsPortMismatch, "{err}");
    assert!(err.hint.as_deref().unwrap().contains("starttls"));
}

#[test]
fn replies_injected_after_the_starttls_220_are_refused() {
    let pki = pki_for(HOST, |_| {});
    let mut server = Server::new(server_config(&pki, TLS13), false);
    server.inject_after_220 = Some("250-mx\r\n250 AUTH PLAIN\r\n");
    let run = Run::new(starttls_config(), options(Some(&pki.ca_pem)), server);
    assert_eq!(run.close_error().code, ErrorCode::Protocol);
    assert!(!run.server.commands.iter().any(|c| c.starts_with("AUTH")));
}

/// Found by fuzzing: bytes that arrive after the session ended must not
/// reach rustls (a second alert after `Closed`, a debug assertion inside it).
#[test]
fn bytes_after_the_close_are_ignored() {
    let secure = || {
        let config = Config::new(HOST, 465).security(Security::Tls);
        let options = TlsOptions {
            pins_sha256: vec![[0x11; 32]],
            no_public_roots: true,
            unix_time_ms: now_unix_ms(),
            ..TlsOptions::default()
        };
        let now = Instant::from_millis(0);
        let mut conn = SecureConnection::new(config, options, now).unwrap();
        conn.connected(now);
        while conn.poll_transmit().is_some() {}
        (conn, now)
    };
    let (mut conn, now) = secure();
    let later = now + Duration::from_secs(31);
    conn.handle_timeout(later);
    assert!(conn.smtp().is_closed());
    while conn.poll_transmit().is_some() {}
    conn.receive(&[0x00], later);
    assert!(conn.poll_transmit().is_none(), "nothing is written after Closed");

    let (mut conn, now) = secure();
    conn.abort(now);
    while conn.poll_transmit().is_some() {}
    conn.receive(&[0x00], now);
    assert!(conn.poll_transmit().is_none());
}

/// A client certificate signed by its own CA, as PEM (chain, key).
fn client_certificate() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "client CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, "ann@example.com");
    let cert = params.signed_by(&key, &ca).unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// A server that requires a client certificate issued by `client_ca_pem`.
fn server_requiring_client_cert(pki: &Pki, client_ca_pem: &str) -> Arc<ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(client_ca_pem.as_bytes()).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.key.clone()));
    Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(TLS13)
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![pki.cert.clone()], key)
            .unwrap(),
    )
}

#[test]
fn a_client_certificate_is_presented_when_the_server_requires_one() {
    let pki = pki_for(HOST, |_| {});
    let (client_ca, cert, key) = client_certificate();
    let mut with_cert = options(Some(&pki.ca_pem));
    with_cert.client_cert_pem = Some((cert, key));
    let mut run = Run::new(
        starttls_config(),
        with_cert,
        Server::new(server_requiring_client_cert(&pki, &client_ca), false),
    );
    assert!(run.ready().is_some(), "ready with a client certificate");
    run.send(b"Subject: client cert\r\n\r\nbody\r\n").unwrap();

    // Without one the server ends the handshake: nothing after STARTTLS is sent.
    let run = Run::new(
        starttls_config(),
        options(Some(&pki.ca_pem)),
        Server::new(server_requiring_client_cert(&pki, &client_ca), false),
    );
    assert!(run.ready().is_none());
    assert!(!run.server.got_credentials_or_mail());
}

#[test]
fn an_unreadable_or_encrypted_client_key_is_an_input_error() {
    let pki = pki_for(HOST, |_| {});
    let (_, cert, key) = client_certificate();
    let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n";
    for (cert, key, needle) in [
        (cert.clone(), "not a key".to_string(), "tls.key"),
        (cert.clone(), encrypted.to_string(), "encrypted"),
        ("no certificate".to_string(), key, "tls.cert"),
    ] {
        let mut opts = options(Some(&pki.ca_pem));
        opts.client_cert_pem = Some((cert, key));
        let err = SecureConnection::new(starttls_config(), opts, Instant::from_millis(0))
            .err()
            .expect("refused");
        assert_eq!((err.code, err.phase), (ErrorCode::Input, Phase::Tls), "{err}");
        assert!(err.message.contains(needle), "{needle}: {err}");
    }
}

#[test]
fn tls13_only_refuses_a_tls_1_2_server_in_the_handshake() {
    let pki = pki_for(HOST, |_| {});
    let run = Run::new(
        starttls_config().min_tls_version(wasmtp::tls::MinTlsVersion::Tls13),
        options(Some(&pki.ca_pem)),
        Server::new(server_config(&pki, &[&rustls::version::TLS12]), false),
    );
    assert!(run.ready().is_none());
    assert_eq!(run.close_error().code, ErrorCode::Tls, "{}", run.close_error());
    assert!(!run.server.commands.iter().any(|c| c.starts_with("AUTH")));
}
