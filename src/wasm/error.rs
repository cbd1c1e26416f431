//! `SmtpError` as a JS class with getters; the npm package copies its fields
//! into its own `SmtpError extends Error`.

use wasm_bindgen::prelude::*;

use crate::error::SmtpError;

/// An engine error: every field the JS `SmtpError` needs, all decided in Rust.
#[wasm_bindgen]
pub struct EngineError {
    inner: SmtpError,
}

impl From<SmtpError> for EngineError {
    fn from(inner: SmtpError) -> Self {
        EngineError { inner }
    }
}

#[wasm_bindgen]
impl EngineError {
    /// Stable code, e.g. `"EAUTH_INSECURE"`.
    #[wasm_bindgen(getter)]
    pub fn code(&self) -> String {
        self.inner.code.as_str().to_string()
    }

    /// e.g. `"auth"`.
    #[wasm_bindgen(getter)]
    pub fn phase(&self) -> String {
        self.inner.phase.as_str().to_string()
    }

    /// What was tried and what happened.
    #[wasm_bindgen(getter)]
    pub fn message(&self) -> String {
        self.inner.message.clone()
    }

    /// The most likely fix, when one is known.
    #[wasm_bindgen(getter)]
    pub fn hint(&self) -> Option<String> {
        self.inner.hint.clone()
    }

    /// `CODE (phase): message Hint: hint` — the one line for a log.
    #[wasm_bindgen(getter)]
    pub fn display(&self) -> String {
        self.inner.to_string()
    }

    #[wasm_bindgen(getter)]
    pub fn retryable(&self) -> bool {
        self.inner.retryable
    }

    /// Sending the message again cannot duplicate it and may succeed.
    #[wasm_bindgen(getter, js_name = resendSafe)]
    pub fn resend_safe(&self) -> bool {
        self.inner.resend_safe()
    }

    /// The options the hint names, as `option` or `option=value`
    /// (e.g. `"security=tls"`, `"tls.ca"`).
    #[wasm_bindgen(getter)]
    pub fn fix(&self) -> Vec<String> {
        self.inner.fix.iter().map(|fix| fix.to_string()).collect()
    }

    /// `"not-sent"` or `"unknown"`.
    #[wasm_bindgen(getter, js_name = deliveryState)]
    pub fn delivery_state(&self) -> String {
        self.inner.delivery_state.as_str().to_string()
    }

    /// The server reply's code, when a reply caused the error.
    #[wasm_bindgen(getter, js_name = replyCode)]
    pub fn reply_code(&self) -> Option<u16> {
        self.inner.reply.as_ref().map(|r| r.code)
    }

    /// The reply's enhanced status code, e.g. `"5.7.8"`.
    #[wasm_bindgen(getter, js_name = replyEnhancedCode)]
    pub fn reply_enhanced_code(&self) -> Option<String> {
        self.inner
            .reply
            .as_ref()
            .and_then(|r| r.enhanced)
            .map(|e| e.to_string())
    }

    /// The reply's lines (text after the code), empty without a reply.
    #[wasm_bindgen(getter, js_name = replyLines)]
    pub fn reply_lines(&self) -> Vec<String> {
        self.inner.reply.as_ref().map(|r| r.lines.clone()).unwrap_or_default()
    }
}
