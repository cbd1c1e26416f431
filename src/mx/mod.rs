//! Where mail for a domain goes (RFC 5321 §5.1, RFC 7505): the MX hosts in
//! preference order, shuffled within equal preference; the domain itself
//! when it has no MX record (the "implicit MX"); nowhere when its MX is the
//! null MX ("0 ."). The host resolves the records and connects; the rules are
//! here, so that every runtime orders hosts the same way.
//!
//! ```
//! use wasmtp::mx::{MxRecord, Route, route};
//! let records = [MxRecord::new("b.example", 20), MxRecord::new("a.example", 10)];
//! assert_eq!(route("example", &records, 7), Route::Hosts(vec!["a.example".into(), "b.example".into()]));
//! assert_eq!(route("example", &[], 7), Route::Implicit("example".into()));
//! assert_eq!(route("example", &[MxRecord::new(".", 0)], 7), Route::NullMx);
//! ```

#[cfg(any(feature = "mx-wasm", feature = "doctor"))]
mod wasm;

/// One MX record as DNS gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxRecord {
    /// The host name; "" or "." is the null MX's root.
    pub exchange: String,
    pub preference: u16,
}

impl MxRecord {
    pub fn new(exchange: impl Into<String>, preference: u16) -> MxRecord {
        MxRecord {
            exchange: exchange.into(),
            preference,
        }
    }
}

/// Where to deliver a domain's mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// MX hosts to try in this order (lower-case, without a trailing dot).
    Hosts(Vec<String>),
    /// No MX record: the domain's own A/AAAA records (RFC 5321 §5.1).
    Implicit(String),
    /// The domain accepts no mail (RFC 7505): fail its recipients permanently, send nothing.
    NullMx,
}

fn normalize(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The route for `domain` given its MX records. `seed` (any random number
/// from the host) shuffles hosts of equal preference, spreading load as
/// RFC 5321 §5.1 asks; the same seed gives the same order.
///
/// A null MX among other records is ignored (RFC 7505 §3: it must be the
/// only one; a domain that has others still accepts mail there). A host
/// listed twice is tried once, at its best preference.
pub fn route(domain: &str, records: &[MxRecord], seed: u64) -> Route {
    if records.is_empty() {
        return Route::Implicit(normalize(domain));
    }
    let mut hosts: Vec<(u16, String)> = records
        .iter()
        .map(|r| (r.preference, normalize(&r.exchange)))
        .filter(|(_, name)| !name.is_empty())
        .collect();
    if hosts.is_empty() {
        return Route::NullMx;
    }
    hosts.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
    let mut seen = std::collections::HashSet::new();
    hosts.retain(|(_, name)| seen.insert(name.clone()));
    // Fisher-Yates within each run of equal preference.
    let mut random = SplitMix64(seed);
    let mut start = 0;
    while start < hosts.len() {
        let mut end = start + 1;
        while end < hosts.len() && hosts[end].0 == hosts[start].0 {
            end += 1;
        }
        for i in (start + 1..end).rev() {
            let j = start + (random.next() % (i - start + 1) as u64) as usize;
            hosts.swap(i, j);
        }
        start = end;
    }
    Route::Hosts(hosts.into_iter().map(|(_, name)| name).collect())
}

/// The recipient's domain (after the last '@'), lower-case; `None` without one.
pub fn recipient_domain(address: &str) -> Option<String> {
    let (_, domain) = address.rsplit_once('@')?;
    let domain = normalize(domain.trim_end_matches('>'));
    (!domain.is_empty()).then_some(domain)
}

/// A small, seedable generator for the shuffle (not for secrets).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(route: Route) -> Vec<String> {
        match route {
            Route::Hosts(h) => h,
            other => panic!("expected hosts, got {other:?}"),
        }
    }

    #[test]
    fn preference_order_and_normalized_names() {
        let records = [
            MxRecord::new("MX3.Example.", 30),
            MxRecord::new("mx1.example", 10),
            MxRecord::new("mx2.example", 20),
        ];
        assert_eq!(
            hosts(route("example", &records, 1)),
            ["mx1.example", "mx2.example", "mx3.example"]
        );
    }

    #[test]
    fn equal_preferences_are_shuffled_but_stay_in_their_group() {
        let records: Vec<_> = (0..4)
            .map(|i| MxRecord::new(format!("a{i}.example"), 10))
            .chain([MxRecord::new("z.example", 5), MxRecord::new("last.example", 50)])
            .collect();
        let mut firsts = std::collections::HashSet::new();
        for seed in 0..64 {
            let order = hosts(route("example", &records, seed));
            assert_eq!(order.len(), 6);
            assert_eq!(order[0], "z.example");
            assert_eq!(order[5], "last.example");
            firsts.insert(order[1].clone());
        }
        assert_eq!(firsts.len(), 4, "every equal-preference host comes first for some seed");
        assert_eq!(
            route("example", &records, 9),
            route("example", &records, 9),
            "same seed, same order"
        );
    }

    #[test]
    fn no_mx_is_the_domain_itself() {
        assert_eq!(route("Example.ORG.", &[], 0), Route::Implicit("example.org".into()));
    }

    #[test]
    fn null_mx_and_null_mx_among_others() {
        assert_eq!(route("example", &[MxRecord::new("", 0)], 0), Route::NullMx);
        assert_eq!(route("example", &[MxRecord::new(".", 0)], 0), Route::NullMx);
        let mixed = [MxRecord::new(".", 0), MxRecord::new("mx.example", 10)];
        assert_eq!(hosts(route("example", &mixed, 0)), ["mx.example"]);
    }

    #[test]
    fn duplicates_are_tried_once_at_their_best_preference() {
        let records = [
            MxRecord::new("b.example", 5),
            MxRecord::new("a.example", 10),
            MxRecord::new("b.example", 20),
        ];
        assert_eq!(hosts(route("example", &records, 3)), ["b.example", "a.example"]);
    }

    #[test]
    fn recipient_domains() {
        assert_eq!(recipient_domain("Bob@Example.ORG").as_deref(), Some("example.org"));
        assert_eq!(recipient_domain("\"a@b\"@x.example").as_deref(), Some("x.example"));
        assert_eq!(recipient_domain("postmaster"), None);
        assert_eq!(recipient_domain("bob@"), None);
    }
}
