//! What `Connection` and `SecureConnection` share in JS: the host's reports,
//! the user's verbs, the drains and the queries, forwarded one to one to
//! the engine connection in `self.inner` ([`crate::Connection`] or
//! [`crate::tls_engine::SecureConnection`], which have the same methods).
//!
//! wasm-bindgen wants every method of a JS class in one `impl` block, so
//! the shared methods are written once here, in a macro that emits the
//! whole block with the class's own methods (constructor, TLS reports,
//! `abort`) first.

use crate::connection::State;

/// `connection_class!(RustType as JsName { own methods })`: the
/// `#[wasm_bindgen]` impl block of a connection class.
macro_rules! connection_class {
    ($rust:ident as $js:ident { $($own:tt)* }) => {
        #[wasm_bindgen(js_class = $js)]
        impl $rust {
            $($own)*

            // ----- What the host reports

            /// The socket is open.
            pub fn connected(&mut self, now: f64) {
                self.inner.connected(instant(now));
            }

            /// The socket could not be opened; `detail` is the runtime's error text.
            #[wasm_bindgen(js_name = connectFailed)]
            pub fn connect_failed(&mut self, detail: &str, now: f64) {
                self.inner.connect_failed(detail, instant(now));
            }

            /// Bytes read from the socket (for `SecureConnection`: raw TLS
            /// records once TLS has started).
            pub fn receive(&mut self, data: &[u8], now: f64) {
                self.inner.receive(data, instant(now));
            }

            /// The server closed its side.
            #[wasm_bindgen(js_name = receiveEof)]
            pub fn receive_eof(&mut self, now: f64) {
                self.inner.receive_eof(instant(now));
            }

            /// The deadline from `pollTimeout` has passed.
            #[wasm_bindgen(js_name = handleTimeout)]
            pub fn handle_timeout(&mut self, now: f64) {
                self.inner.handle_timeout(instant(now));
            }

            /// The first bytes the `port-probe` connection received (empty: none).
            #[wasm_bindgen(js_name = portProbeResult)]
            pub fn port_probe_result(&mut self, first_bytes: &[u8], now: f64) {
                self.inner.port_probe_result(first_bytes, instant(now));
            }

            /// A read or write failed; `writeStalled`: a write had not gone out.
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

            /// How many body bytes `writeBody` would take now.
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

            /// The body is complete: the end of data goes out.
            #[wasm_bindgen(js_name = endBody)]
            pub fn end_body(&mut self, id: f64, now: f64) -> Result<(), EngineError> {
                Ok(self.inner.end_body(message_id(id), instant(now))?)
            }

            /// Sends a NOOP (keep-alive) when idle.
            pub fn noop(&mut self, now: f64) {
                self.inner.noop(instant(now));
            }

            /// Graceful end: queued messages still go, then QUIT.
            pub fn close(&mut self, now: f64) {
                self.inner.close(instant(now));
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

            /// The next event, or `undefined`.
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
                super::forward::state_name(self.inner.state())
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
    };
}

pub(super) use connection_class;

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
