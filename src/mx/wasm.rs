//! The bindings of MX delivery (feature `mx-wasm`: pkg/wasm/wasmtp_mx_bg.wasm,
//! loaded only by clients with `mx: true`; the doctor artifact has them
//! too): the route of a domain and MTA-STS policies. Kept out of the core
//! artifact, which every client loads and which is near its size budget.
//!
//! Errors are thrown as JS `Error`s carrying the reason as their message.

use wasm_bindgen::prelude::*;

use super::{MxRecord, Route};
use crate::mta_sts::Policy;

/// Where a domain's mail goes: `kind` is "hosts" (try `hosts` in order),
/// "implicit" (no MX: `hosts` is the domain itself, for its A/AAAA) or
/// "null-mx" (the domain accepts no mail; `hosts` is empty).
#[wasm_bindgen(js_name = MxRoute)]
pub struct WasmMxRoute {
    kind: &'static str,
    hosts: Vec<String>,
}

#[wasm_bindgen(js_class = MxRoute)]
impl WasmMxRoute {
    #[wasm_bindgen(getter)]
    pub fn kind(&self) -> String {
        self.kind.to_owned()
    }

    #[wasm_bindgen(getter)]
    pub fn hosts(&self) -> Vec<String> {
        self.hosts.clone()
    }
}

/// The route for `domain` from its MX records (`exchanges[i]` with
/// `preferences[i]`; a null MX's exchange is "" or "."). `seed` is a random
/// number (a JS number; its integer part is used) shuffling equal preferences.
#[wasm_bindgen(js_name = mxRoute)]
pub fn mx_route(
    domain: &str,
    exchanges: Vec<String>,
    preferences: Vec<u16>,
    seed: f64,
) -> Result<WasmMxRoute, JsError> {
    if exchanges.len() != preferences.len() {
        return Err(JsError::new("mxRoute: exchanges and preferences differ in length"));
    }
    let records: Vec<MxRecord> = exchanges
        .into_iter()
        .zip(preferences)
        .map(|(e, p)| MxRecord::new(e, p))
        .collect();
    Ok(match super::route(domain, &records, seed as u64) {
        Route::Hosts(hosts) => WasmMxRoute { kind: "hosts", hosts },
        Route::Implicit(domain) => WasmMxRoute {
            kind: "implicit",
            hosts: vec![domain],
        },
        Route::NullMx => WasmMxRoute {
            kind: "null-mx",
            hosts: Vec::new(),
        },
    })
}

/// The domain of a recipient address (lower-case), or undefined.
#[wasm_bindgen(js_name = recipientDomain)]
pub fn recipient_domain(address: &str) -> Option<String> {
    super::recipient_domain(address)
}

/// The id of the one `v=STSv1` TXT record among `records`, undefined when
/// there is none; throws for a malformed record or several.
#[wasm_bindgen(js_name = mtaStsRecordId)]
pub fn mta_sts_record_id(records: Vec<String>) -> Result<Option<String>, JsError> {
    crate::mta_sts::record_id(&records).map_err(|e| JsError::new(&e.0))
}

/// A parsed MTA-STS policy file.
#[wasm_bindgen(js_name = MtaStsPolicy)]
pub struct WasmMtaStsPolicy(Policy);

#[wasm_bindgen(js_class = MtaStsPolicy)]
impl WasmMtaStsPolicy {
    /// Parses the text of `/.well-known/mta-sts.txt`; throws with the reason.
    pub fn parse(text: &str) -> Result<WasmMtaStsPolicy, JsError> {
        Policy::parse(text)
            .map(WasmMtaStsPolicy)
            .map_err(|e| JsError::new(&e.0))
    }

    /// "enforce", "testing" or "none".
    #[wasm_bindgen(getter)]
    pub fn mode(&self) -> String {
        self.0.mode.as_str().to_owned()
    }

    /// The mx patterns, lower-case ("mail.example", "*.example").
    #[wasm_bindgen(getter)]
    pub fn mx(&self) -> Vec<String> {
        self.0.mx.clone()
    }

    /// Seconds the policy may be cached.
    #[wasm_bindgen(getter, js_name = maxAge)]
    pub fn max_age(&self) -> f64 {
        self.0.max_age as f64
    }

    /// Whether the MX host `host` matches one of the patterns.
    pub fn matches(&self, host: &str) -> bool {
        self.0.matches(host)
    }
}
