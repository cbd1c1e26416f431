#![cfg(feature = "driver")]
//! The driver's hook for other TLS stacks: `Client::connect` drives a plain
//! `Connection` and hands the STARTTLS upgrade to a `TlsUpgrader`, whose
//! result (TLS facts or a failure) reaches the engine. The "TLS" here is a
//! stand-in that keeps the stream as it is, so a scripted loopback server
//! can check what the client sends before and after the upgrade.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::thread;

use wasmtp::driver::{BoxIo, Client, TlsUpgrader, UpgradeFuture};
use wasmtp::{Config, ErrorCode, Phase, Security, TlsFailure, TlsFailureKind, TlsInfo};

/// An upgrader that reports the handshake's outcome without encrypting.
struct StandInTls {
    fail: bool,
}

impl TlsUpgrader for StandInTls {
    fn upgrade(&self, io: BoxIo, server_name: &str) -> UpgradeFuture {
        let fail = self.fail;
        let server_name = server_name.to_string();
        Box::pin(async move {
            assert_eq!(server_name, "mx.example.com", "the engine names the configured host");
            if fail {
                return Err(TlsFailure::new(
                    TlsFailureKind::UnknownIssuer,
                    "stand-in: unknown issuer",
                ));
            }
            let info = TlsInfo {
                version: "TLSv1.3".into(),
                cipher: Some("STAND_IN".into()),
                authorized: true,
                authorization_error: None,
            };
            Ok((io, info))
        })
    }
}

/// A server that offers STARTTLS, accepts it, and then answers EHLO and
/// QUIT if the client goes on; returns every line the client sent.
fn scripted_server() -> (u16, thread::JoinHandle<Vec<String>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
    let port = listener.local_addr().unwrap().port();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().expect("the client connects");
        let mut writer = stream.try_clone().unwrap();
        let mut lines = Vec::new();
        let mut reader = BufReader::new(stream);
        writer.write_all(b"220 mx.example.com ESMTP\r\n").unwrap();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return lines;
            }
            let line = line.trim_end().to_string();
            let reply: &[u8] = match line.as_str() {
                l if l.starts_with("EHLO") && !lines.contains(&"STARTTLS".to_string()) => {
                    b"250-mx.example.com\r\n250 STARTTLS\r\n"
                }
                l if l.starts_with("EHLO") => b"250 mx.example.com\r\n",
                "STARTTLS" => b"220 2.0.0 go ahead\r\n",
                "QUIT" => b"221 bye\r\n",
                _ => b"500 unexpected\r\n",
            };
            lines.push(line);
            let _ = writer.write_all(reply);
        }
    });
    (port, server)
}

fn config() -> Config {
    Config::new("mx.example.com", 587)
        .security(Security::StartTls)
        .client_name("client.example.com")
}

#[test]
fn the_upgraders_tls_facts_reach_the_session() {
    let (port, server) = scripted_server();
    smol::block_on(async {
        let tcp = smol::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let client = Client::connect(tcp, config(), StandInTls { fail: false })
            .await
            .expect("the set-up completes over the upgraded stream");
        let tls = client.session().tls.clone().expect("the session reports TLS");
        assert_eq!(
            (tls.version.as_str(), tls.cipher.as_deref()),
            ("TLSv1.3", Some("STAND_IN"))
        );
        client.quit().await.unwrap();
    });
    let lines = server.join().unwrap();
    assert_eq!(
        lines,
        ["EHLO client.example.com", "STARTTLS", "EHLO client.example.com", "QUIT"]
    );
}

#[test]
fn the_upgraders_failure_is_the_engines_certificate_error() {
    let (port, server) = scripted_server();
    let err = smol::block_on(async {
        let tcp = smol::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        Client::connect(tcp, config(), StandInTls { fail: true }).await.err()
    })
    .expect("a failed handshake fails the set-up");
    assert_eq!((err.code, err.phase), (ErrorCode::Cert, Phase::StartTls), "{err}");
    assert!(err.message.contains("stand-in: unknown issuer"), "{err}");
    // Nothing after STARTTLS: no EHLO, let alone credentials, without TLS.
    assert_eq!(server.join().unwrap(), ["EHLO client.example.com", "STARTTLS"]);
}
