//! TLS inside the engine: a [`SecureConnection`] runs rustls (ring provider)
//! between the socket and the SMTP [`Connection`], so a host that can only
//! move raw bytes (a Workers socket with `secureTransport: 'off'`, a
//! WebSocket bridge) still gets verified TLS, a custom CA and pinning.
//!
//! It is an [`Engine`] like `Connection`: raw bytes in, raw bytes out,
//! events, deadlines. The native driver runs it over a raw socket
//! (`Client::connect_tls`), the npm package over a JS one. The `StartTls` event never reaches the host: the
//! handshake happens here, and the host only ever sees ciphertext. Time for
//! certificate validity comes from the host (wasm has no clock).

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring as ring_provider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::certificate::is_self_issued;
use crate::config::Config;
use crate::connection::{Connection, State};
use crate::engine::Engine;
use crate::envelope::Envelope;
use crate::error::{Fix, Phase, SmtpError};
use crate::event::{Event, MessageId};
use crate::time::Instant;
use crate::tls::{self, TlsFailure, TlsFailureKind, TlsInfo};

/// How the in-engine TLS decides whom to trust.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Extra trusted CAs in PEM (`tls.ca`): a private CA, or a self-signed
    /// server certificate itself.
    pub ca_pem: Vec<String>,
    /// SHA-256 fingerprints of accepted server certificates. When any are
    /// given, the server's certificate must be one of them (and then needs
    /// no CA): the way to trust one self-signed server and nothing else.
    pub pins_sha256: Vec<[u8; 32]>,
    /// Leave out the public web PKI roots (webpki-roots): trust only `ca_pem`.
    pub no_public_roots: bool,
    /// The wall-clock time, in milliseconds since 1970, at the `now` the
    /// connection is created with. Certificate validity is checked against it.
    /// The native driver (`Client::connect_tls`) reads the system clock when
    /// this is 0.
    pub unix_time_ms: u64,
    /// For the connection doctor only: complete the handshake whatever the
    /// certificate, so that its facts can be reported. The session then
    /// reports `authorized: false` with the reason, and the engine never
    /// sends credentials over it (`EAUTH_INSECURE`, unless
    /// `allow_insecure_auth`, which the doctor never sets).
    pub accept_unverified: bool,
    /// A client certificate chain and its unencrypted private key, both PEM
    /// (`tls.cert`, `tls.key`), presented when the server asks for one.
    pub client_cert_pem: Option<(String, String)>,
}

/// Wall-clock time derived from the host's `now`: rustls asks for it during
/// the handshake, long after the value was passed in.
#[derive(Debug)]
struct HostClock {
    unix_ms_at_start: u64,
    start_ms: u64,
    latest_ms: AtomicU64,
}

impl HostClock {
    fn advance_to(&self, now: Instant) {
        self.latest_ms.fetch_max(now.as_millis(), Ordering::Relaxed);
    }
}

impl rustls::time_provider::TimeProvider for HostClock {
    fn current_time(&self) -> Option<UnixTime> {
        let elapsed = self.latest_ms.load(Ordering::Relaxed).saturating_sub(self.start_ms);
        Some(UnixTime::since_unix_epoch(core::time::Duration::from_millis(
            self.unix_ms_at_start + elapsed,
        )))
    }
}

/// Why the verifier refused a certificate, beyond what rustls names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum CertProblem {
    SelfSigned,
    /// Self-signed and marked CA:TRUE (what `openssl req -x509` makes):
    /// webpki refuses a CA as the end entity even when it is trusted, so
    /// only a pin can accept it.
    SelfSignedCa,
    PinMismatch,
}

/// Verifies with webpki (or pins), and remembers the leaf's fingerprint and
/// the precise problem, so the error can say "self-signed, SHA-256 AB:CD:…".
#[derive(Debug)]
struct Verifier {
    webpki: Option<Arc<WebPkiServerVerifier>>,
    pins: Vec<[u8; 32]>,
    provider: Arc<CryptoProvider>,
    seen: Mutex<Option<([u8; 32], Option<CertProblem>)>>,
    /// The server's certificate (DER), whether or not it was accepted.
    leaf: Mutex<Option<Vec<u8>>>,
    accept_unverified: bool,
    /// With `accept_unverified`: why the certificate would have been refused.
    unverified: Mutex<Option<String>>,
}

impl Verifier {
    /// Accepts a refused certificate when only observing, and remembers why
    /// it would have been refused.
    fn observe(&self, refused: rustls::Error) -> Result<ServerCertVerified, rustls::Error> {
        if !self.accept_unverified {
            return Err(refused);
        }
        let seen = self.seen.lock().expect("not poisoned").clone();
        let why = classify_failure(&refused, seen, &[]).detail;
        *self.unverified.lock().expect("not poisoned") = Some(why);
        Ok(ServerCertVerified::assertion())
    }
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fingerprint = sha256(end_entity);
        *self.leaf.lock().expect("not poisoned") = Some(end_entity.as_ref().to_vec());
        let result = if !self.pins.is_empty() {
            if self.pins.contains(&fingerprint) {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(CertProblem::PinMismatch)
            }
        } else {
            let webpki = self.webpki.as_ref().ok_or(CertProblem::SelfSigned);
            match webpki.map(|v| v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)) {
                Ok(Ok(verified)) => Ok(verified),
                Ok(Err(rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer)))
                    if is_self_issued(end_entity.as_ref()) =>
                {
                    Err(CertProblem::SelfSigned)
                }
                Ok(Err(rustls::Error::InvalidCertificate(CertificateError::Other(other))))
                    if is_self_issued(end_entity.as_ref()) && format!("{other:?}").contains("CaUsedAsEndEntity") =>
                {
                    Err(CertProblem::SelfSignedCa)
                }
                Ok(Err(other)) => {
                    *self.seen.lock().expect("not poisoned") = Some((fingerprint, None));
                    return self.observe(other);
                }
                Err(problem) => Err(problem),
            }
        };
        let problem = result.as_ref().err().cloned();
        *self.seen.lock().expect("not poisoned") = Some((fingerprint, problem));
        result
            .map_err(|_| rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure))
            .or_else(|refused| self.observe(refused))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// An SMTP connection with TLS done inside the engine.
pub struct SecureConnection {
    inner: Connection,
    config: Arc<ClientConfig>,
    verifier: Arc<Verifier>,
    clock: Arc<HostClock>,
    tls: Option<ClientConnection>,
    /// The first bytes the server sent after the handshake began: a
    /// plaintext greeting there means the port does not do implicit TLS.
    first_tls_bytes: Vec<u8>,
    out: Vec<u8>,
    events: VecDeque<Event>,
}

impl SecureConnection {
    /// A connection whose TLS (implicit or STARTTLS, per `config.security`)
    /// runs here. Fails with `EINPUT` for an unreadable CA or configuration.
    pub fn new(config: Config, options: TlsOptions, now: Instant) -> Result<SecureConnection, SmtpError> {
        let provider = Arc::new(ring_provider::default_provider());
        let clock = Arc::new(HostClock {
            unix_ms_at_start: options.unix_time_ms,
            start_ms: now.as_millis(),
            latest_ms: AtomicU64::new(now.as_millis()),
        });
        let roots = trust_roots(&options)?;
        let webpki = if roots.is_empty() {
            None
        } else {
            let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| SmtpError::input(Phase::Tls, format!("the trusted certificates cannot be used ({e}).")))?;
            Some(verifier)
        };
        if webpki.is_none() && options.pins_sha256.is_empty() {
            return Err(SmtpError::input(
                Phase::Tls,
                "no certificate would be trusted: no CA and no pin was given.",
            )
            .with_hint("pass tls.ca (the server's CA in PEM) or a certificate pin, or keep the public roots.")
            .with_fix(Fix::TlsCa));
        }
        let verifier = Arc::new(Verifier {
            webpki,
            pins: options.pins_sha256,
            provider: provider.clone(),
            seen: Mutex::new(None),
            leaf: Mutex::new(None),
            accept_unverified: options.accept_unverified,
            unverified: Mutex::new(None),
        });
        // With a TLS 1.3 minimum (`Config::min_tls_version`) the handshake
        // itself refuses an older server; the engine checks the version too.
        let versions: &[&rustls::SupportedProtocolVersion] = if config.min_tls_version == tls::MinTlsVersion::Tls13 {
            &[&rustls::version::TLS13]
        } else {
            rustls::DEFAULT_VERSIONS
        };
        let builder = ClientConfig::builder_with_details(provider, clock.clone())
            .with_protocol_versions(versions)
            .map_err(|e| SmtpError::input(Phase::Tls, format!("TLS cannot be configured ({e}).")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone());
        let tls_config = match &options.client_cert_pem {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let (chain, key) = client_certificate(cert, key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| bad_client_cert(&e.to_string()))?
            }
        };
        Ok(SecureConnection {
            inner: Connection::new(config, now)?,
            config: Arc::new(tls_config),
            verifier,
            clock,
            tls: None,
            first_tls_bytes: Vec::new(),
            out: Vec::new(),
            events: VecDeque::new(),
        })
    }

    /// The server's certificate (DER) and its SHA-256 once the handshake has
    /// seen it, also when it was refused: what the connection doctor reports.
    pub fn peer_certificate(&self) -> Option<(Vec<u8>, [u8; 32])> {
        let der = self.verifier.leaf.lock().expect("not poisoned").clone()?;
        let fingerprint = sha256(&CertificateDer::from(der.as_slice()));
        Some((der, fingerprint))
    }

    // ----- Inside ----------------------------------------------------------------

    /// Moves what the SMTP connection produced: plaintext through TLS (or
    /// straight out before TLS), events to the host, `StartTls` into a handshake.
    fn pump(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(plain) = self.inner.poll_transmit() {
                progressed = true;
                self.send_plain(&plain, now);
            }
            while let Some(event) = self.inner.poll_event() {
                progressed = true;
                match event {
                    Event::StartTls { server_name } => self.start_tls(&server_name, now),
                    Event::Closed(err) => {
                        if let Some(tls) = self.tls.as_mut() {
                            tls.send_close_notify();
                        }
                        self.flush_tls();
                        self.events.push_back(Event::Closed(err));
                    }
                    other => self.events.push_back(other),
                }
            }
            if !progressed {
                return;
            }
        }
    }

    fn send_plain(&mut self, plain: &[u8], now: Instant) {
        let Some(tls) = self.tls.as_mut() else {
            self.out.extend_from_slice(plain);
            return;
        };
        if let Err(e) = tls.writer().write_all(plain) {
            self.inner.socket_failed(&format!("TLS write failed: {e}"), false, now);
        }
        self.flush_tls();
    }

    fn flush_tls(&mut self) {
        if let Some(tls) = self.tls.as_mut() {
            while tls.wants_write() {
                if tls.write_tls(&mut self.out).is_err() {
                    break;
                }
            }
        }
    }

    fn start_tls(&mut self, server_name: &str, now: Instant) {
        let name = match ServerName::try_from(server_name.to_string()) {
            Ok(name) => name,
            Err(e) => {
                let failure = TlsFailure::new(
                    TlsFailureKind::NameMismatch,
                    format!("\"{server_name}\" is not a valid TLS server name ({e})"),
                );
                self.inner.tls_failed(failure, now);
                return;
            }
        };
        match ClientConnection::new(self.config.clone(), name) {
            Ok(mut conn) => {
                // The engine streams bodies with its own back-pressure; rustls
                // must not refuse plaintext it is handed.
                conn.set_buffer_limit(None);
                self.tls = Some(conn);
                self.first_tls_bytes.clear();
                self.flush_tls();
            }
            Err(e) => self
                .inner
                .tls_failed(TlsFailure::new(TlsFailureKind::Handshake, e.to_string()), now),
        }
    }

    fn receive_tls(&mut self, mut data: &[u8], now: Instant) {
        let handshaking = self.tls.as_ref().is_some_and(|t| t.is_handshaking());
        if handshaking && self.first_tls_bytes.len() < 8 {
            let take = (8 - self.first_tls_bytes.len()).min(data.len());
            self.first_tls_bytes.extend_from_slice(&data[..take]);
        }
        let mut plain = [0u8; 16 * 1024];
        while !data.is_empty() {
            let tls = self.tls.as_mut().expect("TLS started");
            if let Err(e) = tls.read_tls(&mut data) {
                self.inner.socket_failed(&format!("TLS read failed: {e}"), false, now);
                return;
            }
            if let Err(e) = tls.process_new_packets() {
                self.flush_tls(); // the alert tells the server why
                self.tls_error(&e, now);
                return;
            }
            let tls = self.tls.as_mut().expect("TLS started");
            if self.inner.state() == State::TlsHandshake && !tls.is_handshaking() {
                let mut info = describe(tls);
                if let Some(why) = self.verifier.unverified.lock().expect("not poisoned").clone() {
                    info.authorized = false;
                    info.authorization_error = Some(why);
                }
                self.inner.tls_established(info, now);
                self.pump(now);
            }
            loop {
                let tls = self.tls.as_mut().expect("TLS started");
                match tls.reader().read(&mut plain) {
                    Ok(0) => {
                        // close_notify: the server ended the TLS session.
                        self.inner.receive_eof(now);
                        break;
                    }
                    Ok(n) => {
                        self.inner.receive(&plain[..n], now);
                        self.pump(now);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        self.inner
                            .socket_failed(&format!("TLS stream ended uncleanly: {e}"), false, now);
                        break;
                    }
                }
                if self.tls.is_none() || self.inner.is_closed() {
                    break;
                }
            }
            self.flush_tls();
            if self.inner.is_closed() {
                return;
            }
        }
    }

    fn tls_error(&mut self, err: &rustls::Error, now: Instant) {
        if self.inner.state() != State::TlsHandshake {
            self.inner.socket_failed(&format!("TLS error: {err}"), false, now);
            return;
        }
        let seen = self.verifier.seen.lock().expect("not poisoned").clone();
        let failure = classify_failure(err, seen, &self.first_tls_bytes);
        self.inner.tls_failed(failure, now);
    }
}

/// The host moves raw bytes; plaintext goes through TLS here, and what the
/// SMTP session produces is pumped out after every call.
impl Engine for SecureConnection {
    fn connected(&mut self, now: Instant) {
        self.clock.advance_to(now);
        self.inner.connected(now);
        self.pump(now);
    }

    fn connect_failed(&mut self, detail: &str, now: Instant) {
        self.inner.connect_failed(detail, now);
        self.pump(now);
    }

    /// Raw bytes from the socket (ciphertext once TLS has started).
    fn receive(&mut self, data: &[u8], now: Instant) {
        self.clock.advance_to(now);
        if self.inner.is_closed() {
            // Bytes still in flight when the session ended: rustls must not
            // see them (it would answer with a second alert after Closed).
            return;
        }
        if self.tls.is_none() {
            self.inner.receive(data, now);
        } else {
            self.receive_tls(data, now);
        }
        self.pump(now);
    }

    fn receive_eof(&mut self, now: Instant) {
        self.inner.receive_eof(now);
        self.pump(now);
    }

    fn socket_failed(&mut self, detail: &str, write_stalled: bool, now: Instant) {
        self.inner.socket_failed(detail, write_stalled, now);
        self.pump(now);
    }

    /// The probe runs on a connection of its own, outside this TLS session.
    fn port_probe_result(&mut self, first_bytes: &[u8], now: Instant) {
        self.inner.port_probe_result(first_bytes, now);
        self.pump(now);
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.clock.advance_to(now);
        self.inner.handle_timeout(now);
        self.pump(now);
    }

    fn supply_access_token(&mut self, token: &str, now: Instant) {
        self.inner.supply_access_token(token, now);
        self.pump(now);
    }

    fn access_token_failed(&mut self, detail: &str, hint: Option<&str>, retryable: bool, now: Instant) {
        self.inner.access_token_failed(detail, hint, retryable, now);
        self.pump(now);
    }

    fn submit(&mut self, envelope: Envelope, now: Instant) -> Result<MessageId, SmtpError> {
        let id = self.inner.submit(envelope, now);
        self.pump(now);
        id
    }

    fn write_body(&mut self, id: MessageId, data: &[u8], now: Instant) -> Result<usize, SmtpError> {
        let taken = self.inner.write_body(id, data, now);
        self.pump(now);
        taken
    }

    fn end_body(&mut self, id: MessageId, now: Instant) -> Result<(), SmtpError> {
        let result = self.inner.end_body(id, now);
        self.pump(now);
        result
    }

    fn noop(&mut self, now: Instant) {
        self.inner.noop(now);
        self.pump(now);
    }

    fn close(&mut self, now: Instant) {
        self.inner.close(now);
        self.pump(now);
    }

    /// Drops the connection at once (a TLS close_notify is still produced).
    fn abort(&mut self, now: Instant) {
        self.inner.abort();
        self.pump(now);
    }

    fn transmit_len(&self) -> usize {
        self.out.len()
    }

    fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        crate::outbuf::take_all(&mut self.out)
    }

    fn poll_transmit_into(&mut self, buf: &mut [u8]) -> usize {
        crate::outbuf::take_into(&mut self.out, buf)
    }

    /// Events; `StartTls` is handled here and never shows up.
    fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn smtp(&self) -> &Connection {
        &self.inner
    }
}

/// The trusted roots: webpki-roots unless left out, plus every `ca_pem`.
fn trust_roots(options: &TlsOptions) -> Result<RootCertStore, SmtpError> {
    let mut roots = RootCertStore::empty();
    if !options.no_public_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for pem in &options.ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let cert = cert.map_err(|e| bad_ca(&e.to_string()))?;
            roots.add(cert).map_err(|e| bad_ca(&e.to_string()))?;
            added += 1;
        }
        if added == 0 {
            return Err(bad_ca("no certificate found in the PEM text"));
        }
    }
    Ok(roots)
}

/// The client certificate chain and key from PEM (`tls.cert`, `tls.key`).
fn client_certificate(
    cert: &str,
    key: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), SmtpError> {
    let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_client_cert(&format!("tls.cert: {e}")))?;
    if chain.is_empty() {
        return Err(bad_client_cert("no certificate found in tls.cert"));
    }
    if key.contains("ENCRYPTED") {
        return Err(bad_client_cert(
            "tls.key is encrypted, which TLS inside the engine cannot read",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key.as_bytes()).map_err(|e| bad_client_cert(&format!("tls.key: {e}")))?;
    Ok((chain, key))
}

fn bad_client_cert(detail: &str) -> SmtpError {
    SmtpError::input(
        Phase::Tls,
        format!("the client certificate could not be used ({detail})."),
    )
    .with_hint("pass tls.cert (the certificate chain) and tls.key (its unencrypted private key: PKCS#8, PKCS#1 or SEC1) as PEM text.")
}

fn bad_ca(detail: &str) -> SmtpError {
    SmtpError::input(
        Phase::Tls,
        format!("the certificate given as tls.ca could not be read ({detail})."),
    )
    .with_hint("pass the PEM text of the CA certificate (-----BEGIN CERTIFICATE----- ...).")
    .with_fix(Fix::TlsCa)
}

fn describe(tls: &ClientConnection) -> TlsInfo {
    let version = match tls.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_string(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_string(),
        other => format!("{other:?}"),
    };
    let cipher = tls.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite()));
    TlsInfo {
        version,
        cipher,
        authorized: true,
        authorization_error: None,
    }
}

/// Turns a failed handshake into a failure the engine explains.
fn classify_failure(
    err: &rustls::Error,
    seen: Option<([u8; 32], Option<CertProblem>)>,
    first_bytes: &[u8],
) -> TlsFailure {
    let fingerprint = seen
        .as_ref()
        .map(|(fp, _)| format!(", SHA-256 fingerprint {}", hex_fingerprint(fp)))
        .unwrap_or_default();
    match (err, seen.and_then(|(_, p)| p)) {
        (_, Some(CertProblem::SelfSigned)) => TlsFailure::new(
            TlsFailureKind::SelfSigned,
            format!("self-signed certificate{fingerprint}"),
        ),
        (_, Some(CertProblem::SelfSignedCa)) => TlsFailure::new(
            TlsFailureKind::SelfSigned,
            format!(
                "self-signed certificate marked as a CA (CA:TRUE), which cannot be accepted as the server's own certificate even when given as tls.ca; pin it with tls.pin{fingerprint}"
            ),
        ),
        (_, Some(CertProblem::PinMismatch)) => TlsFailure::new(
            TlsFailureKind::Certificate,
            format!("the certificate matches none of the pinned fingerprints{fingerprint}"),
        ),
        (rustls::Error::InvalidCertificate(cert), None) => {
            let kind = match cert {
                CertificateError::UnknownIssuer => TlsFailureKind::UnknownIssuer,
                CertificateError::Expired
                | CertificateError::ExpiredContext { .. }
                | CertificateError::NotValidYet
                | CertificateError::NotValidYetContext { .. } => TlsFailureKind::Expired,
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                    TlsFailureKind::NameMismatch
                }
                _ => TlsFailureKind::Certificate,
            };
            TlsFailure::new(kind, format!("{err}{fingerprint}"))
        }
        _ if tls::looks_like_plaintext_greeting(first_bytes) => TlsFailure::new(
            TlsFailureKind::PlaintextReply,
            format!("plaintext SMTP greeting instead of TLS ({err})"),
        ),
        _ => TlsFailure::new(TlsFailureKind::Handshake, err.to_string()),
    }
}

fn sha256(cert: &CertificateDer<'_>) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, cert.as_ref());
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// `AB:CD:…`, the form `openssl x509 -fingerprint -sha256` prints.
pub fn hex_fingerprint(fp: &[u8; 32]) -> String {
    fp.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":")
}

/// Parses `AB:CD:…` or plain hex (any case) into a pin.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip() {
        let fp = [0xabu8; 32];
        let text = hex_fingerprint(&fp);
        assert!(text.starts_with("AB:AB:"));
        assert_eq!(parse_fingerprint(&text), Some(fp));
        assert_eq!(parse_fingerprint(&text.replace(':', "").to_lowercase()), Some(fp));
        assert_eq!(parse_fingerprint("AB:CD"), None);
        assert_eq!(parse_fingerprint(&"zz".repeat(32)), None);
    }

    #[test]
    fn self_issued_detection_survives_garbage() {
        assert!(!is_self_issued(b""));
        assert!(!is_self_issued(&[0x30, 0x82, 0xff]));
        assert!(!is_self_issued(&[0x30; 64]));
    }

    /// A self-signed server over implicit TLS, in memory; the client observes only.
    #[test]
    fn accepting_unverified_reports_the_certificate_and_withholds_credentials() {
        use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mx.example.com".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let server_config = rustls::ServerConfig::builder_with_provider(Arc::new(ring_provider::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let mut server = rustls::ServerConnection::new(Arc::new(server_config)).unwrap();
        let config = Config::new("mx.example.com", 465)
            .security(crate::Security::Tls)
            .credentials(crate::Credentials::Password {
                user: "ann".into(),
                pass: "s3cret-pw".into(),
            });
        let options = TlsOptions {
            unix_time_ms: 1_900_000_000_000,
            accept_unverified: true,
            ..TlsOptions::default()
        };
        let now = Instant::from_millis(0);
        let mut client = SecureConnection::new(config, options, now).unwrap();
        client.connected(now);
        let mut received = Vec::new();
        let mut greeted = false;
        for _ in 0..20 {
            while let Some(bytes) = client.poll_transmit() {
                server.read_tls(&mut bytes.as_slice()).unwrap();
                server.process_new_packets().unwrap();
            }
            if !server.is_handshaking() && !greeted {
                greeted = true;
                server.writer().write_all(b"220 mx ESMTP\r\n").unwrap();
            }
            let mut plain = Vec::new();
            let _ = server.reader().read_to_end(&mut plain);
            received.extend_from_slice(&plain);
            if plain.starts_with(b"EHLO") {
                server
                    .writer()
                    .write_all(b"250-mx\r\n250 AUTH PLAIN LOGIN\r\n")
                    .unwrap();
            }
            let mut out = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut out).unwrap();
            }
            if out.is_empty() && client.state() == State::Closed {
                break;
            }
            client.receive(&out, now);
        }
        let events: Vec<Event> = std::iter::from_fn(|| client.poll_event()).collect();
        let closed = events.iter().find_map(|e| match e {
            Event::Closed(Some(err)) => Some(err.clone()),
            _ => None,
        });
        assert_eq!(closed.map(|e| e.code), Some(crate::ErrorCode::AuthInsecure));
        let info = client.smtp().tls_info().unwrap();
        assert!(!info.authorized);
        assert!(
            info.authorization_error.as_deref().unwrap().contains("self-signed"),
            "{info:?}"
        );
        let (der, fp) = client.peer_certificate().unwrap();
        assert_eq!(der, cert.der().as_ref());
        assert_eq!(fp, sha256(cert.der()));
        // The server got EHLO and never an AUTH command.
        let all = String::from_utf8_lossy(&received).into_owned();
        assert!(all.starts_with("EHLO") && !all.contains("AUTH"), "{all}");
    }

    #[test]
    fn a_bad_ca_is_an_input_error() {
        let options = TlsOptions {
            ca_pem: vec!["not pem".into()],
            ..TlsOptions::default()
        };
        let err = SecureConnection::new(Config::new("mx.example.com", 465), options, Instant::from_millis(0))
            .err()
            .unwrap();
        assert_eq!(err.code, crate::ErrorCode::Input);
        let options = TlsOptions {
            no_public_roots: true,
            ..TlsOptions::default()
        };
        assert!(SecureConnection::new(Config::new("mx.example.com", 465), options, Instant::from_millis(0)).is_err());
    }
}
