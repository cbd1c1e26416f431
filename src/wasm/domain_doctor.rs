//! The domain doctor for JS (`diagnose({ domain })` in the npm package).
//!
//! JS looks up what `DomainDoctor` asks for (MX, the TXT names it wants,
//! the MTA-STS policy file, one TCP probe of port 25) and hands the answers
//! over; every finding and the verdict are [`crate::diagnose::domain`]'s.
//! Only in the `doctor` artifact.

use wasm_bindgen::prelude::*;

use super::diagnose::WasmFinding;
use crate::diagnose::{self, DomainDiagnosis, DomainFacts, MxRecord, Port25Probe, Reachability};

/// Collects what DNS, HTTPS and a TCP probe said about a domain, then judges it.
#[wasm_bindgen(js_name = DomainDoctor)]
pub struct WasmDomainDoctor {
    facts: DomainFacts,
}

#[wasm_bindgen(js_class = DomainDoctor)]
impl WasmDomainDoctor {
    #[wasm_bindgen(constructor)]
    pub fn new(domain: &str) -> WasmDomainDoctor {
        WasmDomainDoctor {
            facts: DomainFacts::new(domain),
        }
    }

    /// The domain, lower case, without a trailing dot.
    #[wasm_bindgen(getter)]
    pub fn domain(&self) -> String {
        self.facts.domain.clone()
    }

    /// The MX answer: exchanges and their priorities, in the same order (a
    /// null MX is the exchange `""` or `"."`).
    #[wasm_bindgen(js_name = setMx)]
    pub fn set_mx(&mut self, exchanges: Vec<String>, priorities: Vec<u16>) {
        let records = exchanges
            .into_iter()
            .zip(priorities)
            .map(|(exchange, priority)| MxRecord { priority, exchange })
            .collect();
        self.facts.mx = Some(Ok(records));
    }

    /// The MX lookup failed (not "no such name": that is `setMx([], [])`).
    #[wasm_bindgen(js_name = setMxError)]
    pub fn set_mx_error(&mut self, message: String) {
        self.facts.mx = Some(Err(message));
    }

    /// The DKIM selector to check (given, or found in a message).
    #[wasm_bindgen(js_name = setDkimSelector)]
    pub fn set_dkim_selector(&mut self, selector: &str) {
        self.facts.dkim_selector = Some(selector.trim().to_ascii_lowercase());
    }

    /// TXT names to look up next; empty once everything needed is known.
    #[wasm_bindgen(js_name = txtWanted)]
    pub fn txt_wanted(&self) -> Vec<String> {
        self.facts.txt_names_wanted()
    }

    /// The TXT records of `name` (each record's strings joined).
    #[wasm_bindgen(js_name = addTxt)]
    pub fn add_txt(&mut self, name: &str, records: Vec<String>) {
        self.facts.add_txt(name, Ok(records));
    }

    #[wasm_bindgen(js_name = addTxtError)]
    pub fn add_txt_error(&mut self, name: &str, message: String) {
        self.facts.add_txt(name, Err(message));
    }

    /// The `_mta-sts` record announces a policy: fetch
    /// `https://mta-sts.<domain>/.well-known/mta-sts.txt`.
    #[wasm_bindgen(getter, js_name = wantsMtaStsPolicy)]
    pub fn wants_mta_sts_policy(&self) -> bool {
        self.facts.wants_mta_sts_policy()
    }

    #[wasm_bindgen(js_name = setMtaStsPolicy)]
    pub fn set_mta_sts_policy(&mut self, text: String) {
        self.facts.mta_sts_policy = Some(Ok(text));
    }

    /// The policy could not be fetched (HTTP status, TLS or network error).
    #[wasm_bindgen(js_name = setMtaStsPolicyError)]
    pub fn set_mta_sts_policy_error(&mut self, message: String) {
        self.facts.mta_sts_policy = Some(Err(message));
    }

    /// The host to probe on port 25 (call after `setMx`); `undefined` when
    /// there is none (a null MX, or the MX lookup failed).
    #[wasm_bindgen(getter, js_name = port25Target)]
    pub fn port25_target(&self) -> Option<String> {
        self.facts.port25_target()
    }

    /// How the TCP probe of `host:port` went: `reachability` is `"open"`
    /// (then `connectMs`), `"refused"`, `"timeout"`, `"unresolved"` or
    /// `"failed"` (then `detail`, the runtime's text).
    /// The name direct delivery would announce in EHLO (judged by the engine).
    #[wasm_bindgen(js_name = setEhloName)]
    pub fn set_ehlo_name(&mut self, name: String) {
        self.facts.ehlo_name = Some(name);
    }

    #[wasm_bindgen(js_name = setPort25)]
    pub fn set_port25(&mut self, host: String, port: u16, reachability: &str, connect_ms: f64, detail: String) {
        let reachability = match reachability {
            "open" => Reachability::Open {
                connect_ms: connect_ms as u64,
            },
            "refused" => Reachability::Refused,
            "timeout" => Reachability::TimedOut,
            "unresolved" => Reachability::Unresolved,
            _ => Reachability::Failed(detail),
        };
        self.facts.port25 = Some(Port25Probe {
            host,
            port,
            reachability,
        });
    }

    pub fn diagnose(&self) -> WasmDomainDiagnosis {
        WasmDomainDiagnosis {
            diagnosis: diagnose::diagnose_domain(&self.facts),
        }
    }
}

/// The findings and the relay-or-direct verdict.
#[wasm_bindgen(js_name = DomainDiagnosis)]
pub struct WasmDomainDiagnosis {
    diagnosis: DomainDiagnosis,
}

#[wasm_bindgen(js_class = DomainDiagnosis)]
impl WasmDomainDiagnosis {
    #[wasm_bindgen(getter)]
    pub fn findings(&self) -> Vec<WasmFinding> {
        WasmFinding::list(&self.diagnosis.findings)
    }

    /// No finding is an error (the CLI's exit status).
    #[wasm_bindgen(getter)]
    pub fn ok(&self) -> bool {
        self.diagnosis.ok()
    }

    /// `"relay"` or `"direct"`.
    #[wasm_bindgen(getter, js_name = verdict)]
    pub fn verdict(&self) -> String {
        self.diagnosis.verdict.mode.as_str().to_string()
    }

    #[wasm_bindgen(getter, js_name = verdictReason)]
    pub fn verdict_reason(&self) -> String {
        self.diagnosis.verdict.reason.clone()
    }
}

/// The DKIM selector and domain (`[s, d]`) of the first DKIM-Signature in
/// a message, if it has one.
#[wasm_bindgen(js_name = dkimSelectorInMessage)]
pub fn dkim_selector_in_message(message: &str) -> Option<Vec<String>> {
    diagnose::selector_in_message(message).map(|(s, d)| vec![s, d])
}
