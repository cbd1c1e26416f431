//! The JS class of an engine: one `#[wasm_bindgen]` impl block for any
//! [`Engine`](crate::engine::Engine) held in `self.inner` (`Connection`,
//! `SecureConnection`). Every shared method calls the trait, so the two
//! classes cannot drift apart; only conversions to JS values happen here.
//!
//! wasm-bindgen exports no generic or trait impls, and wants every method
//! of a class in one `impl` block, so the block is a macro that emits the
//! class's own methods (constructor, host TLS reports) first, then the
//! engine's.

use crate::connection::State;

/// `engine_class!(RustType as JsName { own methods })`: the
/// `#[wasm_bindgen]` impl block of an engine's class.
macro_rules! engine_class {
    ($rust:ident as $js:ident { $($own:tt)* }) => {
        #[wasm_bindgen(js_class = $js)]
        impl $rust {
            $($own)*

            // ----- What the host reports

            /// The socket is open.
            pub fn connected(&mut self, now: f64) {
                Engine::connected(&mut self.inner, instant(now));
            }

            /// The socket could not be opened; `detail` is the runtime's error text.
            #[wasm_bindgen(js_name = connectFailed)]
            pub fn connect_failed(&mut self, detail: &str, now: f64) {
                Engine::connect_failed(&mut self.inner, detail, instant(now));
            }

            /// Bytes read from the socket (for `SecureConnection`: raw TLS
            /// records once TLS has started).
            pub fn receive(&mut self, data: &[u8], now: f64) {
                Engine::receive(&mut self.inner, data, instant(now));
            }

            /// The server closed its side.
            #[wasm_bindgen(js_name = receiveEof)]
            pub fn receive_eof(&mut self, now: f64) {
                Engine::receive_eof(&mut self.inner, instant(now));
            }

            /// The deadline from `pollTimeout` has passed.
            #[wasm_bindgen(js_name = handleTimeout)]
            pub fn handle_timeout(&mut self, now: f64) {
                Engine::handle_timeout(&mut self.inner, instant(now));
            }

            /// The first bytes the `port-probe` connection received (empty: none).
            #[wasm_bindgen(js_name = portProbeResult)]
            pub fn port_probe_result(&mut self, first_bytes: &[u8], now: f64) {
                Engine::port_probe_result(&mut self.inner, first_bytes, instant(now));
            }

            /// A read or write failed; `writeStalled`: a write had not gone out.
            #[wasm_bindgen(js_name = socketFailed)]
            pub fn socket_failed(&mut self, detail: &str, write_stalled: bool, now: f64) {
                Engine::socket_failed(&mut self.inner, detail, write_stalled, instant(now));
            }

            /// The fresh OAuth2 token a `token-refused` event asked for.
            #[wasm_bindgen(js_name = supplyAccessToken)]
            pub fn supply_access_token(&mut self, token: &str, now: f64) {
                Engine::supply_access_token(&mut self.inner, token, instant(now));
            }

            /// The token provider failed after a `token-refused` event: the
            /// connection ends with `EAUTH` carrying `detail` and `hint`.
            #[wasm_bindgen(js_name = accessTokenFailed)]
            pub fn access_token_failed(&mut self, detail: &str, hint: Option<String>, retryable: bool, now: f64) {
                Engine::access_token_failed(&mut self.inner, detail, hint.as_deref(), retryable, instant(now));
            }

            // ----- What the user asks for

            /// Queues a message (the envelope is consumed); returns its id. Throws
            /// an `EngineError` on invalid input, and nothing is sent.
            pub fn submit(&mut self, envelope: WasmEnvelope, now: f64) -> Result<f64, EngineError> {
                Ok(Engine::submit(&mut self.inner, envelope.envelope, instant(now))?.0 as f64)
            }

            /// The message whose body the engine wants next, if it has room.
            #[wasm_bindgen(js_name = wantsBody)]
            pub fn wants_body(&self) -> Option<f64> {
                Engine::wants_body(&self.inner).map(|id| id.0 as f64)
            }

            /// How many body bytes `writeBody` would take now.
            #[wasm_bindgen(js_name = bodyCapacity)]
            pub fn body_capacity(&self, id: f64) -> usize {
                Engine::body_capacity(&self.inner, message_id(id))
            }

            /// Pushes body bytes; returns how many were taken (0 when full).
            #[wasm_bindgen(js_name = writeBody)]
            pub fn write_body(&mut self, id: f64, data: &[u8], now: f64) -> Result<usize, EngineError> {
                Ok(Engine::write_body(&mut self.inner, message_id(id), data, instant(now))?)
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
                Ok(builder.feed(|data| Engine::write_body(&mut self.inner, id, data, now))?)
            }

            /// The body is complete: the end of data goes out.
            #[wasm_bindgen(js_name = endBody)]
            pub fn end_body(&mut self, id: f64, now: f64) -> Result<(), EngineError> {
                Ok(Engine::end_body(&mut self.inner, message_id(id), instant(now))?)
            }

            /// Sends a NOOP (keep-alive) when idle.
            pub fn noop(&mut self, now: f64) {
                Engine::noop(&mut self.inner, instant(now));
            }

            /// Graceful end: queued messages still go, then QUIT.
            pub fn close(&mut self, now: f64) {
                Engine::close(&mut self.inner, instant(now));
            }

            /// Drops the connection at once (with TLS inside the engine, a
            /// close_notify still goes out). `now` may be omitted.
            pub fn abort(&mut self, now: Option<f64>) {
                Engine::abort(&mut self.inner, instant(now.unwrap_or(0.0)));
            }

            // ----- What the host drains

            /// Bytes for one socket write, or `undefined`.
            #[wasm_bindgen(js_name = pollTransmit)]
            pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
                Engine::poll_transmit(&mut self.inner)
            }

            /// How many bytes `pollTransmit` would return now (0: none).
            #[wasm_bindgen(getter, js_name = transmitLength)]
            pub fn transmit_length(&self) -> usize {
                Engine::transmit_len(&self.inner)
            }

            /// `pollTransmit` into a buffer the host reuses (no new `ArrayBuffer`
            /// per write): moves up to `buf.length` bytes, returns how many.
            #[wasm_bindgen(js_name = pollTransmitInto)]
            pub fn poll_transmit_into(&mut self, buf: &mut [u8]) -> usize {
                Engine::poll_transmit_into(&mut self.inner, buf)
            }

            /// The next event, or `undefined`.
            #[wasm_bindgen(js_name = pollEvent)]
            pub fn poll_event(&mut self) -> Option<EngineEvent> {
                Engine::poll_event(&mut self.inner).map(|event| EngineEvent { event })
            }

            /// When `handleTimeout` is due (ms, same epoch as `now`), or `undefined`.
            #[wasm_bindgen(js_name = pollTimeout)]
            pub fn poll_timeout(&self) -> Option<f64> {
                Engine::poll_timeout(&self.inner).map(|t| t.as_millis() as f64)
            }

            // ----- Queries

            /// `"connecting"`, `"tls-handshake"`, `"setup"`, `"ready"`, `"quitting"` or `"closed"`.
            #[wasm_bindgen(getter)]
            pub fn state(&self) -> String {
                super::engine_class::state_name(Engine::state(&self.inner))
            }

            /// Ready with nothing queued or awaited.
            #[wasm_bindgen(getter, js_name = isIdle)]
            pub fn is_idle(&self) -> bool {
                Engine::is_idle(&self.inner)
            }

            #[wasm_bindgen(getter, js_name = isClosed)]
            pub fn is_closed(&self) -> bool {
                Engine::is_closed(&self.inner)
            }
        }
    };
}

pub(super) use engine_class;

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
