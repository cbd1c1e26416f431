//! Telling a TLS port from a slow SMTP server, on evidence rather than a guess.
//!
//! A client that connects without TLS to a port that expects TLS from the
//! first byte (465, but also 2465, 8465 and the like) hears nothing: the
//! server waits for a ClientHello. A server that pauses before its greeting
//! on purpose (postscreen's `greet_wait`, Exim's banner delay) is silent too,
//! and must not be sent a byte before it greets. So after a short silence the
//! engine asks the host for a second connection to the same port that starts
//! a TLS handshake (`Event::PortProbe`). A TLS record in reply proves the
//! mix-up; a greeting, silence or a close leaves the session connection
//! waiting for its greeting as before. The session connection itself is
//! never sent a byte early.

use crate::time::{Duration, Instant};

/// Where the probe of a silent connection stands. When the probe goes out,
/// and when port 465's silence alone names the mix-up, are the connection's
/// `PortProbe` and `PortGuess` timers (see [`schedule`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PortProbe {
    /// Nothing to probe: TLS from the first byte, a greeting came, or the
    /// probe has answered without TLS.
    Off,
    /// The connection is open and silent: a probe is asked for when the
    /// `PortProbe` timer fires.
    Armed,
    /// The host was asked; its answer comes to `port_probe_result`.
    Asked,
}

/// When a plaintext connection opens: the probe goes out after two thirds
/// of `silence`, so its answer is in by `silence` (the time after which the
/// mix-up is named). Port 465 is TLS by convention, so there a silence of
/// `silence` alone is taken as the mix-up when no probe answers (the second
/// instant, `None` on other ports).
pub(crate) fn schedule(now: Instant, silence: Duration, port: u16) -> (Instant, Option<Instant>) {
    let probe_at = now + silence * 2 / 3;
    let guess_at = (port == 465).then(|| now + silence);
    (probe_at, guess_at)
}

/// What the first bytes on the probe connection say about the port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeAnswer {
    /// A TLS record (a ServerHello or an alert): the port speaks TLS first.
    Tls,
    /// Anything else (a greeting, an error line), or nothing at all.
    NotTls,
}

/// Reads the first bytes the probe connection received (empty: none came).
pub(crate) fn judge(first: &[u8]) -> ProbeAnswer {
    // A TLS record header: content type handshake (22) or alert (21), then
    // a legacy version 3.x. No SMTP reply starts with either byte.
    match first {
        [22 | 21, 3, minor, ..] if *minor <= 4 => ProbeAnswer::Tls,
        [22 | 21, 3] | [22 | 21] => ProbeAnswer::Tls,
        _ => ProbeAnswer::NotTls,
    }
}

/// A TLS ClientHello that any TLS 1.2 or 1.3 server answers with a
/// ServerHello (or an alert): cipher suites, groups and signature schemes
/// every current stack has, a key share, and SNI when `server_name` is a
/// DNS name. The handshake is never completed, so the random value and the
/// key share need not be secret: they are fixed, and the message is a
/// template with the SNI extension put in front of the others.
pub fn client_hello(server_name: &str) -> Vec<u8> {
    // Letters, digits, '-' and '.', and not all digits and dots (an IPv4
    // address); an IPv6 address has ':' and so is not a DNS name either.
    let name = server_name.as_bytes();
    let is_dns_name = !name.is_empty()
        && name.len() <= 253
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && !name.iter().all(|&b| b.is_ascii_digit() || b == b'.');
    let sni_len = if is_dns_name { name.len() + 9 } else { 0 };
    let extensions_len = HELLO_EXTENSIONS.len() + sni_len;
    let hello_len = HELLO_HEAD.len() + 2 + extensions_len;

    let mut out = Vec::with_capacity(9 + hello_len);
    out.extend_from_slice(&[22, 3, 1]); // handshake record, legacy version TLS 1.0
    out.extend_from_slice(&((hello_len + 4) as u16).to_be_bytes());
    out.push(1); // client_hello
    out.extend_from_slice(&(hello_len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(HELLO_HEAD);
    out.extend_from_slice(&(extensions_len as u16).to_be_bytes());
    if is_dns_name {
        out.extend_from_slice(&[0, 0]); // server_name
        out.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
        out.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
        out.push(0); // host_name
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
    }
    out.extend_from_slice(HELLO_EXTENSIONS);
    out
}

/// The ClientHello from its version to its compression methods.
const HELLO_HEAD: &[u8] = &[
    3, 3, // legacy_version TLS 1.2
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, // random
    0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a,
    0, // legacy_session_id: empty
    0, 18, // cipher suites: TLS 1.3 AES-128/256-GCM, ChaCha20; ECDHE ECDSA/RSA AES-GCM, ChaCha20
    0x13, 0x01, 0x13, 0x02, 0x13, 0x03, 0xc0, 0x2b, 0xc0, 0x2f, 0xc0, 0x2c, 0xc0, 0x30, 0xcc, 0xa9, 0xcc, 0xa8, 1,
    0, // compression: null
];

/// Every extension but SNI.
const HELLO_EXTENSIONS: &[u8] = &[
    0x00, 0x0a, 0, 8, 0, 6, 0x00, 0x1d, 0x00, 0x17, 0x00, 0x18, // supported_groups: x25519, P-256, P-384
    0x00, 0x0b, 0, 2, 1, 0, // ec_point_formats: uncompressed (TLS 1.2 ECDHE)
    0x00, 0x0d, 0, 20, 0, 18, // signature_algorithms: ECDSA, RSA-PSS, RSA PKCS#1, Ed25519
    0x04, 0x03, 0x08, 0x04, 0x08, 0x05, 0x08, 0x06, 0x04, 0x01, 0x05, 0x01, 0x06, 0x01, 0x05, 0x03, 0x08, 0x07, 0x00,
    0x2b, 0, 5, 4, 0x03, 0x04, 0x03, 0x03, // supported_versions: TLS 1.3, TLS 1.2
    0x00, 0x33, 0, 38, 0, 36, 0x00, 0x1d, 0, 32, // key_share: one x25519 share (a fixed point)
    9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_records_are_told_from_smtp_lines() {
        assert_eq!(judge(&[22, 3, 3, 0, 90, 2]), ProbeAnswer::Tls); // ServerHello
        assert_eq!(judge(&[21, 3, 3, 0, 2, 2, 40]), ProbeAnswer::Tls); // handshake_failure alert
        assert_eq!(judge(&[22]), ProbeAnswer::Tls);
        assert_eq!(judge(b"220 mx.example.com ESMTP\r\n"), ProbeAnswer::NotTls);
        assert_eq!(judge(b"500 5.5.2 Error: bad syntax\r\n"), ProbeAnswer::NotTls);
        assert_eq!(judge(b""), ProbeAnswer::NotTls);
        assert_eq!(judge(&[22, 9, 9]), ProbeAnswer::NotTls);
    }

    #[test]
    fn the_client_hello_is_well_formed() {
        let hello = client_hello("mx.example.com");
        assert_eq!(&hello[..3], &[22, 3, 1]);
        let record_len = u16::from_be_bytes([hello[3], hello[4]]) as usize;
        assert_eq!(record_len, hello.len() - 5);
        assert_eq!(hello[5], 1, "handshake type client_hello");
        let body_len = u32::from_be_bytes([0, hello[6], hello[7], hello[8]]) as usize;
        assert_eq!(body_len, hello.len() - 9);
        let sni = b"mx.example.com";
        assert!(hello.windows(sni.len()).any(|w| w == sni));
        // No SNI for an address (RFC 6066 forbids it).
        let by_address = client_hello("127.0.0.1");
        assert!(!by_address.windows(9).any(|w| w == b"127.0.0.1"));
    }

    #[test]
    fn port_465_keeps_its_guess_other_ports_wait_for_evidence() {
        let t0 = Instant::from_millis(0);
        let silence = Duration::from_secs(3);
        assert_eq!(
            schedule(t0, silence, 465),
            (t0 + Duration::from_secs(2), Some(t0 + silence))
        );
        assert_eq!(schedule(t0, silence, 2465), (t0 + Duration::from_secs(2), None));
    }
}
