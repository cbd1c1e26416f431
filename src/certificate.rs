//! What a server certificate says, read from its DER with a minimal walk
//! (RFC 5280): subject, issuer, validity, subject alternative names, and
//! whether it issued itself. No signature is checked here — verification
//! is the TLS layer's job; this only describes what the server presented,
//! so that Node's TLS and the engine's own TLS give the same report (the
//! connection doctor's), and the engine's TLS can tell a self-signed
//! certificate from one of an unknown CA.

/// The server certificate, as the host's TLS layer saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CertificateFacts {
    pub subject: String,
    pub alt_names: Vec<String>,
    pub issuer: String,
    pub valid_from: String,
    pub valid_to: String,
    /// The certificate names itself as issuer.
    pub self_signed: bool,
    /// `AB:CD:…`, as `openssl x509 -fingerprint -sha256` prints it.
    pub fingerprint_sha256: String,
    /// The certificate covers the host name that was dialled.
    pub name_matches: bool,
    /// Outside its validity period now.
    pub expired: bool,
}

/// One DER element: tag, contents, and what follows it.
pub(crate) fn tlv(data: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = data.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// The elements of a constructed value, in order.
pub(crate) fn elements(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    core::iter::from_fn(move || {
        let (tag, body, rest) = tlv(data)?;
        data = rest;
        Some((tag, body))
    })
}

const SEQUENCE: u8 = 0x30;
/// subjectAltName, 2.5.29.17.
const OID_SAN: &[u8] = &[0x55, 0x1d, 0x11];

/// The short names of the attributes certificates use, by DER OID.
const ATTRIBUTES: [(&[u8], &str); 9] = [
    (&[0x55, 0x04, 0x03], "CN"),
    (&[0x55, 0x04, 0x06], "C"),
    (&[0x55, 0x04, 0x07], "L"),
    (&[0x55, 0x04, 0x08], "ST"),
    (&[0x55, 0x04, 0x0a], "O"),
    (&[0x55, 0x04, 0x0b], "OU"),
    (&[0x55, 0x04, 0x05], "serialNumber"),
    (&[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01], "emailAddress"),
    (&[0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19], "DC"),
];

/// A Name as `CN=mx.example.com, O=Example` (in certificate order).
fn name(der: &[u8]) -> String {
    let mut parts = Vec::new();
    for (_, rdn) in elements(der) {
        for (_, attribute) in elements(rdn) {
            let mut fields = elements(attribute);
            let (Some((_, oid)), Some((_, value))) = (fields.next(), fields.next()) else {
                continue;
            };
            // Attributes without a short name (rare in server certificates) are left out.
            if let Some((_, key)) = ATTRIBUTES.iter().find(|(o, _)| *o == oid) {
                parts.push(format!("{key}={}", string_value(value)));
            }
        }
    }
    parts.join(", ")
}

/// A directory string as text (UTF-8, printable and IA5 strings; others lossily).
fn string_value(value: &[u8]) -> String {
    // A certificate is server-controlled text: no control characters in reports.
    String::from_utf8_lossy(value)
        .chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// A run of ASCII digits as a number.
fn number(digits: &[u8]) -> Option<i64> {
    digits
        .iter()
        .try_fold(0i64, |n, d| d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0')))
}

/// A UTCTime or GeneralizedTime as (seconds since 1970, `YYYY-MM-DD HH:MM:SS UTC`).
fn time(tag: u8, value: &[u8]) -> Option<(i64, String)> {
    let digits = value.strip_suffix(b"Z")?;
    let (year, rest) = match tag {
        0x17 => {
            let yy = number(digits.get(..2)?)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, digits.get(2..)?)
        }
        0x18 => (number(digits.get(..4)?)?, digits.get(4..)?),
        _ => return None,
    };
    let field = |i: usize| number(rest.get(i..i + 2)?);
    let (month, day, hour, minute) = (field(0)?, field(2)?, field(4)?, field(6)?);
    let second = field(8).unwrap_or(0);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let unix = days * 86_400 + hour * 3600 + minute * 60 + second;
    Some((
        unix,
        format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02} UTC"),
    ))
}

/// The subjectAltName entries: DNS names and IP addresses .
fn alt_names(extensions: &[u8]) -> (Vec<String>, Vec<Vec<u8>>) {
    let (mut names, mut ips) = (Vec::new(), Vec::new());
    let Some((_, list, _)) = tlv(extensions) else {
        return (names, ips);
    };
    for (_, extension) in elements(list) {
        let mut fields = elements(extension);
        if fields.next().map(|(_, oid)| oid) != Some(OID_SAN) {
            continue;
        }
        // critical BOOLEAN is optional; extnValue is the OCTET STRING.
        let Some((_, value)) = fields.find(|(tag, _)| *tag == 0x04) else {
            continue;
        };
        let Some((_, general_names, _)) = tlv(value) else {
            continue;
        };
        for (tag, body) in elements(general_names) {
            match tag {
                0x82 => names.push(string_value(body)),
                0x87 => {
                    ips.push(body.to_vec());
                    names.push(ip_text(body));
                }
                _ => {}
            }
        }
    }
    (names, ips)
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => bytes.iter().map(u8::to_string).collect::<Vec<_>>().join("."),
        16 => bytes
            .chunks(2)
            .map(|pair| format!("{:x}", u16::from_be_bytes([pair[0], pair[1]])))
            .collect::<Vec<_>>()
            .join(":"),
        _ => "(invalid IP address)".to_string(),
    }
}

/// Whether a DNS name from the certificate covers `host` (RFC 6125: exact,
/// or a wildcard for exactly the leftmost label).
fn dns_matches(pattern: &str, host: &str) -> bool {
    let pattern = pattern.trim_end_matches('.').to_ascii_lowercase();
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return match host.split_once('.') {
            Some((label, rest)) => !label.is_empty() && rest == suffix && suffix.contains('.'),
            None => false,
        };
    }
    pattern == host
}

/// `host` as the bytes of an IP address, when it is one (IPv4 dotted, or
/// IPv6 with `::` and an optional trailing IPv4 part).
fn host_ip(host: &str) -> Option<Vec<u8>> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let v4 = |text: &str| -> Option<Vec<u8>> {
        let parts: Vec<u8> = text.split('.').map(|p| p.parse().ok()).collect::<Option<_>>()?;
        (parts.len() == 4).then_some(parts)
    };
    if !bare.contains(':') {
        return v4(bare);
    }
    let groups = |text: &str| -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for part in text.split(':').filter(|p| !p.is_empty()) {
            if part.contains('.') {
                out.extend(v4(part)?);
            } else {
                out.extend(u16::from_str_radix(part, 16).ok()?.to_be_bytes());
            }
        }
        Some(out)
    };
    let bytes = match bare.split_once("::") {
        Some((head, tail)) => {
            let (head, tail) = (groups(head)?, groups(tail)?);
            let fill = 16usize.checked_sub(head.len() + tail.len())?;
            [head, vec![0; fill], tail].concat()
        }
        None => groups(bare)?,
    };
    (bytes.len() == 16).then_some(bytes)
}

/// The TBSCertificate fields the doctor reads (raw DER contents).
struct Tbs<'a> {
    issuer: &'a [u8],
    validity: &'a [u8],
    subject: &'a [u8],
    extensions: &'a [u8],
}

fn tbs_fields(der: &[u8]) -> Option<Tbs<'_>> {
    let (SEQUENCE, certificate, _) = tlv(der)? else {
        return None;
    };
    let (SEQUENCE, tbs, _) = tlv(certificate)? else {
        return None;
    };
    let mut fields = elements(tbs).peekable();
    if fields.peek()?.0 == 0xa0 {
        fields.next(); // [0] version
    }
    let _serial = fields.next()?;
    let _algorithm = fields.next()?;
    let (_, issuer) = fields.next()?;
    let (_, validity) = fields.next()?;
    let (_, subject) = fields.next()?;
    let _key = fields.next()?;
    let extensions = fields
        .find(|(tag, _)| *tag == 0xa3)
        .map(|(_, body)| body)
        .unwrap_or(&[]);
    Some(Tbs {
        issuer,
        validity,
        subject,
        extensions,
    })
}

/// True when a certificate names itself as its issuer (the issuer and
/// subject Names are byte-identical); false for anything that is not X.509.
#[cfg(feature = "tls-engine")]
pub(crate) fn is_self_issued(der: &[u8]) -> bool {
    tbs_fields(der).is_some_and(|tbs| tbs.issuer == tbs.subject)
}

impl CertificateFacts {
    /// Describes the certificate `der` as presented to a client that dialled
    /// `host`, at `unix_now_secs`. `fingerprint_sha256` comes from the host
    /// (`AB:CD:…`): hashing is the TLS layer's. `None` when `der` is not an
    /// X.509 certificate.
    pub fn from_der(
        der: &[u8],
        fingerprint_sha256: String,
        host: &str,
        unix_now_secs: i64,
    ) -> Option<CertificateFacts> {
        let Tbs {
            issuer,
            validity,
            subject,
            extensions,
        } = tbs_fields(der)?;

        let mut times = elements(validity).filter_map(|(tag, value)| time(tag, value));
        let (not_before, valid_from) = times.next()?;
        let (not_after, valid_to) = times.next()?;
        let (alt_names, ips) = alt_names(extensions);
        let name_matches = match host_ip(host) {
            Some(ip) => ips.contains(&ip),
            None => alt_names.iter().any(|n| dns_matches(n, host)),
        };
        Some(CertificateFacts {
            subject: name(subject),
            alt_names,
            issuer: name(issuer),
            valid_from,
            valid_to,
            self_signed: issuer == subject,
            fingerprint_sha256,
            name_matches,
            expired: unix_now_secs < not_before || unix_now_secs > not_after,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A certificate made by rcgen: CA-signed leaf for mx.example.com and 127.0.0.1.
    fn leaf(self_signed: bool, names: &[&str]) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "mx.example.com");
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example Mail");
        params.not_before = rcgen::date_time_ymd(2024, 1, 2);
        params.not_after = rcgen::date_time_ymd(2034, 1, 2);
        let key = rcgen::KeyPair::generate().unwrap();
        if self_signed {
            return params.self_signed(&key).unwrap().der().to_vec();
        }
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.distinguished_name = rcgen::DistinguishedName::new();
        ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Test CA");
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap()).unwrap();
        params.signed_by(&key, &ca).unwrap().der().to_vec()
    }

    const JAN_2025: i64 = 1_735_689_600;

    #[test]
    fn a_ca_signed_certificate_is_described() {
        let der = leaf(false, &["mx.example.com", "*.mail.example.com", "127.0.0.1"]);
        let facts = CertificateFacts::from_der(&der, "AB".into(), "mx.example.com", JAN_2025).unwrap();
        assert_eq!(facts.subject, "CN=mx.example.com, O=Example Mail");
        assert_eq!(facts.issuer, "CN=Test CA");
        assert_eq!(
            facts.alt_names,
            vec!["mx.example.com", "*.mail.example.com", "127.0.0.1"]
        );
        assert_eq!(facts.valid_from, "2024-01-02 00:00:00 UTC");
        assert_eq!(facts.valid_to, "2034-01-02 00:00:00 UTC");
        assert!(!facts.self_signed && facts.name_matches && !facts.expired);
        let at = |host: &str| {
            CertificateFacts::from_der(&der, String::new(), host, JAN_2025)
                .unwrap()
                .name_matches
        };
        assert!(at("smtp.mail.example.com") && at("MX.EXAMPLE.COM.") && at("127.0.0.1"));
        assert!(!at("a.b.mail.example.com") && !at("mail.example.com") && !at("127.0.0.2") && !at("other.example"));
        assert_eq!(host_ip("::1").unwrap(), [vec![0; 15], vec![1]].concat());
        assert_eq!(host_ip("[::ffff:10.0.0.1]").unwrap()[10..], [0xff, 0xff, 10, 0, 0, 1]);
        assert_eq!(host_ip("2001:db8::1").unwrap()[..4], [0x20, 0x01, 0x0d, 0xb8]);
        assert_eq!(ip_text(&host_ip("2001:db8::1").unwrap()), "2001:db8:0:0:0:0:0:1");
        assert_eq!(host_ip("1.2.3"), None);
        assert_eq!(host_ip("mx.example.com"), None);
    }

    #[test]
    fn self_signed_and_expired() {
        let der = leaf(true, &["mx.example.com"]);
        let facts = CertificateFacts::from_der(&der, String::new(), "mx.example.com", 2_000_000_000).unwrap();
        assert!(facts.self_signed);
        assert!(!facts.expired, "2033 is inside the validity");
        let later = CertificateFacts::from_der(&der, String::new(), "mx.example.com", 2_100_000_000).unwrap();
        assert!(later.expired);
        let earlier = CertificateFacts::from_der(&der, String::new(), "mx.example.com", 1_600_000_000).unwrap();
        assert!(earlier.expired, "not yet valid counts as outside the validity");
    }

    #[test]
    fn garbage_is_not_a_certificate() {
        for bad in [
            &b""[..],
            &[0x30, 0x82, 0xff],
            &[0x30; 64],
            b"-----BEGIN CERTIFICATE-----",
        ] {
            assert_eq!(CertificateFacts::from_der(bad, String::new(), "h", 0), None);
        }
        let der = leaf(false, &["mx.example.com"]);
        for cut in [1, der.len() / 3, der.len() - 1] {
            // Truncated input never panics (it may or may not still parse the TBS part).
            let _ = CertificateFacts::from_der(&der[..cut], String::new(), "h", 0);
        }
    }

    #[test]
    fn times_and_oids() {
        assert_eq!(time(0x17, b"491231235959Z").unwrap().1, "2049-12-31 23:59:59 UTC");
        assert_eq!(time(0x17, b"500101000000Z").unwrap().0, -631_152_000);
        assert_eq!(time(0x18, b"20380119031408Z").unwrap().0, 2_147_483_648);
        assert_eq!(time(0x18, b"2038011903Z"), None);
    }
}
