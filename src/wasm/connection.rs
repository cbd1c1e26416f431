//! `Connection` for JS: [`crate::Connection`] one to one. The methods every
//! engine has come from `engine_class.rs`; here are its own: the
//! constructor and the host's TLS reports.

use wasm_bindgen::prelude::*;

use super::engine_class::engine_class;
use super::{EngineError, EngineEvent, WasmEnvelope, WasmMessageBuilder, WasmOptions, instant, message_id};
use crate::connection::Connection;
use crate::engine::Engine;
use crate::tls::{TlsFailure, TlsInfo};

#[wasm_bindgen(js_name = Connection)]
pub struct WasmConnection {
    pub(super) inner: Connection,
    /// Dialog lines `pollEvent` passed over, until `takeTranscript`.
    pub(super) transcript: Vec<String>,
}

engine_class!(WasmConnection as Connection {
    /// A connection waiting for the host to open the socket. Throws an
    /// `EngineError` (`EINPUT`) when the options are unusable.
    #[wasm_bindgen(constructor)]
    pub fn new(options: &WasmOptions, now: f64) -> Result<WasmConnection, EngineError> {
        Ok(WasmConnection {
            inner: Connection::new(options.config.clone(), instant(now))?,
            transcript: Vec::new(),
        })
    }

    /// The TLS handshake finished. `handshakePending`: the host cannot tell
    /// yet whether it succeeded (Workers; see
    /// `Connection::tls_established_unconfirmed`).
    #[wasm_bindgen(js_name = tlsEstablished)]
    pub fn tls_established(
        &mut self,
        version: String,
        cipher: Option<String>,
        authorized: bool,
        authorization_error: Option<String>,
        now: f64,
        handshake_pending: Option<bool>,
    ) {
        let info = TlsInfo {
            version,
            cipher,
            authorized,
            authorization_error,
        };
        if handshake_pending == Some(true) {
            self.inner.tls_established_unconfirmed(info, instant(now));
        } else {
            self.inner.tls_established(info, instant(now));
        }
    }

    /// The handshake failed; `message` is the runtime's error text, which
    /// the engine classifies (certificate, port mix-up, handshake).
    #[wasm_bindgen(js_name = tlsFailed)]
    pub fn tls_failed(&mut self, message: &str, now: f64) {
        self.inner.tls_failed(TlsFailure::from_message(message), instant(now));
    }
});

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives a STARTTLS set-up up to the host's "TLS is up" report.
    fn upgraded(pending: bool) -> WasmConnection {
        let options = WasmOptions::new("mx.example.com".into(), 587);
        let mut conn = WasmConnection::new(&options, 0.0).unwrap_or_else(|_| panic!("valid options"));
        conn.connected(0.0);
        conn.receive(b"220 mx.example.com ESMTP\r\n", 1.0);
        conn.receive(b"250-mx.example.com\r\n250 STARTTLS\r\n", 2.0);
        conn.receive(b"220 go ahead\r\n", 3.0);
        while conn.poll_transmit().is_some() {}
        assert_eq!(conn.state(), "tls-handshake");
        conn.tls_established("TLS".into(), None, true, None, 4.0, Some(pending));
        while conn.poll_transmit().is_some() {}
        conn
    }

    fn closing_error(conn: &mut WasmConnection) -> EngineError {
        while let Some(event) = conn.poll_event() {
            if event.kind() == "closed" {
                return event.error().expect("closed with an error");
            }
        }
        panic!("no closed event");
    }

    #[test]
    fn a_builder_streams_into_the_body_inside_wasm_under_back_pressure() {
        use crate::wasm::{WasmMessageBuilder, WasmMessageSpec};
        let mut options = WasmOptions::new("mx.example.com".into(), 25);
        options.set_security("none").unwrap_or_else(|_| panic!("a known mode"));
        let mut conn = WasmConnection::new(&options, 0.0).unwrap_or_else(|_| panic!("valid options"));
        conn.connected(0.0);
        conn.receive(b"220 mx.example.com ESMTP\r\n", 1.0);
        conn.receive(b"250-mx.example.com\r\n250 PIPELINING\r\n", 2.0);
        let mut spec = WasmMessageSpec::new("ann@example.com".into());
        spec.add_to("bob@example.org".into());
        spec.set_text(b"See the attachment.".to_vec())
            .unwrap_or_else(|_| panic!("UTF-8 text"));
        spec.add_attachment_stream(Some("big.bin".into()), None, None, None)
            .unwrap_or_else(|_| panic!("a valid attachment"));
        let mut builder = WasmMessageBuilder::new(spec, &[7; 32], 0.0).unwrap_or_else(|_| panic!("a valid spec"));
        let id = conn
            .submit(builder.envelope(), 3.0)
            .unwrap_or_else(|_| panic!("a valid envelope"));
        let mut sent = Vec::new();
        while let Some(bytes) = conn.poll_transmit() {
            sent.extend(bytes);
        }
        conn.receive(b"250 ok\r\n250 ok\r\n354 go on\r\n", 4.0);
        let chunk = vec![b'x'; 300 * 1024]; // more than the engine buffers
        let (mut pushed, mut blocked, mut buf) = (0, 0, vec![0u8; 1000]);
        loop {
            let status = conn
                .write_body_from_builder(id, &mut builder, 5.0)
                .unwrap_or_else(|_| panic!("the body is wanted"));
            match status {
                super::super::mime::FEED_DONE => break,
                super::super::mime::FEED_BLOCKED => blocked += 1,
                0 if pushed < 2 => {
                    builder
                        .push_attachment(0, &chunk)
                        .unwrap_or_else(|_| panic!("its turn"));
                    pushed += 1;
                }
                0 => builder.end_attachment(0).unwrap_or_else(|_| panic!("its turn")),
                other => panic!("unexpected status {other}"),
            }
            while conn.transmit_length() > 0 {
                let n = conn.poll_transmit_into(&mut buf);
                sent.extend_from_slice(&buf[..n]);
            }
        }
        assert!(blocked > 0, "back-pressure stopped the builder at least once");
        conn.end_body(id, 6.0).unwrap_or_else(|_| panic!("the end is wanted"));
        while let Some(bytes) = conn.poll_transmit() {
            sent.extend(bytes);
        }
        let text = String::from_utf8(sent).expect("ASCII");
        assert!(text.contains("big.bin"), "the attachment part");
        let full_lines = text.lines().filter(|l| l.len() == 76 && l.starts_with("eHh4")).count();
        assert_eq!(
            full_lines,
            2 * 300 * 1024 / 57,
            "every full line of the attachment's base64"
        );
        assert!(text.ends_with("\r\n.\r\n"), "the end of data");
    }

    #[test]
    fn a_failure_right_after_an_unconfirmed_handshake_is_a_certificate_error() {
        let mut conn = upgraded(true);
        conn.socket_failed("internal error; reference = abc", false, 5.0);
        let err = closing_error(&mut conn);
        assert_eq!((err.code().as_str(), err.phase().as_str()), ("ECERT", "starttls"));
        assert!(
            err.message().contains("first read or write after the TLS upgrade"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn named_causes_and_end_of_stream_are_classified_too() {
        let mut conn = upgraded(true);
        conn.socket_failed("TLS peer's certificate has expired", false, 5.0);
        assert!(closing_error(&mut conn).message().contains("expired"));
        let mut conn = upgraded(true);
        conn.receive_eof(5.0);
        assert_eq!(closing_error(&mut conn).code(), "ECERT");
    }

    #[test]
    fn once_the_server_spoke_over_tls_failures_are_ordinary() {
        let mut conn = upgraded(true);
        conn.receive(b"250 mx.example.com\r\n", 5.0);
        conn.socket_failed("internal error; reference = abc", false, 6.0);
        assert_eq!(closing_error(&mut conn).code(), "ECLOSED");
        let mut conn = upgraded(false);
        conn.socket_failed("internal error; reference = abc", false, 5.0);
        assert_eq!(closing_error(&mut conn).code(), "ECLOSED");
    }

    #[test]
    fn bodies_given_as_bytes_must_be_utf8() {
        use crate::wasm::WasmMessageSpec;
        let mut spec = WasmMessageSpec::new("ann@example.com".into());
        assert!(spec.set_text("Grüße 📎".as_bytes().to_vec()).is_ok());
        let err = match spec.set_html(vec![b'<', b'p', 0xC3, b'>']) {
            Err(err) => err,
            Ok(()) => panic!("invalid UTF-8 is refused"),
        };
        assert_eq!((err.code().as_str(), err.phase().as_str()), ("EINPUT", "data"));
        assert!(
            err.message().contains("html body is not valid UTF-8 (at byte 2)"),
            "{}",
            err.message()
        );
    }
}
