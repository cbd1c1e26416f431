//! `Connection` for JS: the host reports, user verbs, drains and queries of
//! [`crate::Connection`], one to one.

use wasm_bindgen::prelude::*;

use super::{EngineError, EngineEvent, WasmEnvelope, WasmMessageBuilder, WasmOptions, instant, message_id};
use crate::connection::{Connection, State};
use crate::tls::{TlsFailure, TlsInfo};

#[wasm_bindgen(js_name = Connection)]
pub struct WasmConnection {
    pub(super) inner: Connection,
}

#[wasm_bindgen(js_class = Connection)]
impl WasmConnection {
    /// A connection waiting for the host to open the socket. Throws an
    /// `EngineError` (`EINPUT`) when the options are unusable.
    #[wasm_bindgen(constructor)]
    pub fn new(options: &WasmOptions, now: f64) -> Result<WasmConnection, EngineError> {
        Ok(WasmConnection {
            inner: Connection::new(options.config.clone(), instant(now))?,
        })
    }

    // ----- What the host reports

    pub fn connected(&mut self, now: f64) {
        self.inner.connected(instant(now));
    }

    #[wasm_bindgen(js_name = connectFailed)]
    pub fn connect_failed(&mut self, detail: &str, now: f64) {
        self.inner.connect_failed(detail, instant(now));
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

    pub fn receive(&mut self, data: &[u8], now: f64) {
        self.inner.receive(data, instant(now));
    }

    #[wasm_bindgen(js_name = receiveEof)]
    pub fn receive_eof(&mut self, now: f64) {
        self.inner.receive_eof(instant(now));
    }

    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now: f64) {
        self.inner.handle_timeout(instant(now));
    }

    #[wasm_bindgen(js_name = socketFailed)]
    pub fn socket_failed(&mut self, detail: &str, write_stalled: bool, now: f64) {
        self.inner.socket_failed(detail, write_stalled, instant(now));
    }

    // ----- What the user asks for

    /// Queues a message (the envelope is consumed); returns its id. Throws
    /// an `EngineError` on invalid input, and nothing is sent.
    pub fn submit(&mut self, envelope: WasmEnvelope, now: f64) -> Result<f64, EngineError> {
        Ok(self.inner.submit(envelope.envelope, instant(now))?.0 as f64)
    }

    /// The message whose body the engine wants next, if it has room.
    #[wasm_bindgen(js_name = wantsBody)]
    pub fn wants_body(&self) -> Option<f64> {
        self.inner.wants_body().map(|id| id.0 as f64)
    }

    #[wasm_bindgen(js_name = bodyCapacity)]
    pub fn body_capacity(&self, id: f64) -> usize {
        self.inner.body_capacity(message_id(id))
    }

    /// Pushes body bytes; returns how many were taken (0 when full).
    #[wasm_bindgen(js_name = writeBody)]
    pub fn write_body(&mut self, id: f64, data: &[u8], now: f64) -> Result<usize, EngineError> {
        Ok(self.inner.write_body(message_id(id), data, instant(now))?)
    }

    /// Moves a structured message's bytes from its MIME builder straight
    /// into the body (inside wasm, under the same back-pressure as
    /// `writeBody`). Returns the index of the streamed attachment the
    /// builder waits for (>= 0: push a chunk or end it, then call again),
    /// -1 when the engine is full (drain `pollTransmit`, call again) or -2
    /// when the builder is done (call `endBody`). Throws like `writeBody`.
    #[wasm_bindgen(js_name = writeBodyFromBuilder)]
    pub fn write_body_from_builder(
        &mut self,
        id: f64,
        builder: &mut WasmMessageBuilder,
        now: f64,
    ) -> Result<i32, EngineError> {
        let (id, now) = (message_id(id), instant(now));
        Ok(builder.feed(|data| self.inner.write_body(id, data, now))?)
    }

    #[wasm_bindgen(js_name = endBody)]
    pub fn end_body(&mut self, id: f64, now: f64) -> Result<(), EngineError> {
        Ok(self.inner.end_body(message_id(id), instant(now))?)
    }

    pub fn noop(&mut self, now: f64) {
        self.inner.noop(instant(now));
    }

    pub fn close(&mut self, now: f64) {
        self.inner.close(instant(now));
    }

    pub fn abort(&mut self) {
        self.inner.abort();
    }

    // ----- What the host drains

    /// Bytes for one socket write, or `undefined`.
    #[wasm_bindgen(js_name = pollTransmit)]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.inner.poll_transmit()
    }

    /// How many bytes `pollTransmit` would return now (0: none).
    #[wasm_bindgen(getter, js_name = transmitLength)]
    pub fn transmit_length(&self) -> usize {
        self.inner.transmit_len()
    }

    /// `pollTransmit` into a buffer the host reuses (no new `ArrayBuffer`
    /// per write): moves up to `buf.length` bytes, returns how many.
    #[wasm_bindgen(js_name = pollTransmitInto)]
    pub fn poll_transmit_into(&mut self, buf: &mut [u8]) -> usize {
        self.inner.poll_transmit_into(buf)
    }

    #[wasm_bindgen(js_name = pollEvent)]
    pub fn poll_event(&mut self) -> Option<EngineEvent> {
        self.inner.poll_event().map(|event| EngineEvent { event })
    }

    /// When `handleTimeout` is due (ms, same epoch as `now`), or `undefined`.
    #[wasm_bindgen(js_name = pollTimeout)]
    pub fn poll_timeout(&self) -> Option<f64> {
        self.inner.poll_timeout().map(|t| t.as_millis() as f64)
    }

    // ----- Queries

    /// `"connecting"`, `"tls-handshake"`, `"setup"`, `"ready"`, `"quitting"` or `"closed"`.
    #[wasm_bindgen(getter)]
    pub fn state(&self) -> String {
        state_name(self.inner.state())
    }

    /// Ready with nothing queued or awaited.
    #[wasm_bindgen(getter, js_name = isIdle)]
    pub fn is_idle(&self) -> bool {
        self.inner.is_idle()
    }

    #[wasm_bindgen(getter, js_name = isClosed)]
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }
}

/// The JS name of a connection state.
pub(super) fn state_name(state: State) -> String {
    match state {
        State::Connecting => "connecting",
        State::TlsHandshake => "tls-handshake",
        State::Setup => "setup",
        State::Ready => "ready",
        State::Quitting => "quitting",
        State::Closed => "closed",
    }
    .to_string()
}

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
