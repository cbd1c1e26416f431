//! Whole-message tests: every message built here is parsed back by a small
//! MIME reader and each part decoded and compared with what went in.

use super::headers::testing::{decode_words, param};
use super::quoted_printable::testing::{decode_qp, normalize_line_ends};
use super::*;
use crate::envelope::BodyType;
use crate::error::ErrorCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use proptest::prelude::*;

const RANDOM: [u8; 32] = [
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, //
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
];
/// Tue, 14 Nov 2023 22:13:20 +0000
const NOW: i64 = 1_700_000_000_000;

// ---- a small MIME reader -------------------------------------------------

/// One parsed entity: unfolded headers, raw body, and sub-parts for a multipart.
#[derive(Debug)]
struct Entity {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    parts: Vec<Entity>,
}

impl Entity {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn headers_named(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }

    /// `type/subtype` in lower case (text/plain when absent, as RFC 2045 says).
    fn mime_type(&self) -> String {
        let value = self.header("Content-Type").unwrap_or("text/plain");
        value.split(';').next().unwrap().trim().to_ascii_lowercase()
    }

    /// The body with its Content-Transfer-Encoding undone.
    fn decoded(&self) -> Vec<u8> {
        match self.header("Content-Transfer-Encoding").unwrap_or("7bit") {
            "base64" => {
                let flat: Vec<u8> = self.body.iter().copied().filter(|b| !b"\r\n".contains(b)).collect();
                BASE64.decode(flat).expect("valid base64")
            }
            "quoted-printable" => decode_qp(&self.body),
            "7bit" | "8bit" => self.body.clone(),
            other => panic!("unexpected transfer encoding {other}"),
        }
    }

    /// The tree as `type[child, child]`, to compare structures at a glance.
    fn shape(&self) -> String {
        if self.parts.is_empty() {
            return self.mime_type();
        }
        let children: Vec<String> = self.parts.iter().map(Entity::shape).collect();
        format!("{}[{}]", self.mime_type(), children.join(", "))
    }

    fn leaves(&self) -> Vec<&Entity> {
        if self.parts.is_empty() {
            vec![self]
        } else {
            self.parts.iter().flat_map(Entity::leaves).collect()
        }
    }
}

fn parse(bytes: &[u8]) -> Entity {
    let split = memchr::memmem::find(bytes, b"\r\n\r\n").expect("a blank line after the headers");
    let head = std::str::from_utf8(&bytes[..split]).unwrap();
    let body = bytes[split + 4..].to_vec();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            headers
                .last_mut()
                .expect("a continuation after a header")
                .1
                .push_str(line);
        } else {
            let (name, value) = line.split_once(':').expect("a header line");
            headers.push((name.to_string(), value.to_string()));
        }
    }
    for (_, value) in &mut headers {
        *value = value.strip_prefix(' ').unwrap_or(value).to_string();
    }
    let mut entity = Entity {
        headers,
        body,
        parts: Vec::new(),
    };
    if entity.mime_type().starts_with("multipart/") {
        let boundary = param(entity.header("Content-Type").unwrap(), "boundary").unwrap();
        entity.parts = split_multipart(&entity.body, &boundary)
            .iter()
            .map(|part| parse(part))
            .collect();
    }
    entity
}

/// The parts between `--boundary` lines. The CRLF before each delimiter
/// belongs to the delimiter; after the closing one only CRLF may follow.
fn split_multipart(body: &[u8], boundary: &str) -> Vec<Vec<u8>> {
    let mut data = b"\r\n".to_vec();
    data.extend_from_slice(body);
    let delimiter = format!("\r\n--{boundary}");
    let mut pieces: Vec<&[u8]> = Vec::new();
    let mut rest = &data[..];
    while let Some(at) = memchr::memmem::find(rest, delimiter.as_bytes()) {
        pieces.push(&rest[..at]);
        rest = &rest[at + delimiter.len()..];
    }
    assert!(
        rest == b"--" || rest == b"--\r\n",
        "missing or bad closing delimiter: {:?}",
        String::from_utf8_lossy(rest)
    );
    assert!(pieces[0].is_empty(), "unexpected preamble");
    pieces[1..]
        .iter()
        .map(|p| p.strip_prefix(b"\r\n").expect("CRLF after a delimiter").to_vec())
        .collect()
}

/// Wire rules every message must follow: CRLF only, lines of at most 998
/// octets, header lines (of the message and of every part) of at most
/// `max_header_line`, and nothing but ASCII unless allowed.
fn check_wire_format(message: &[u8], ascii: bool, max_header_line: usize) {
    if ascii {
        assert!(message.is_ascii(), "8-bit byte in the message");
    }
    let lines: Vec<&[u8]> = message.split(|&b| b == b'\n').collect();
    let mut in_headers = true;
    for (number, &line) in lines.iter().enumerate() {
        let is_last = number == lines.len() - 1;
        let line = if is_last {
            line
        } else {
            line.strip_suffix(b"\r").expect("LF without CR")
        };
        assert!(!line.contains(&b'\r'), "bare CR on line {number}");
        assert!(line.len() <= 998, "line {number} is {} octets", line.len());
        if line.is_empty() {
            in_headers = false;
        } else if in_headers {
            let shown = String::from_utf8_lossy(line);
            assert!(
                line.len() <= max_header_line,
                "header line {number} is {} long: {shown:?}",
                line.len()
            );
        }
        if line.starts_with(b"--=_wasmtp_") && !line.ends_with(b"--") {
            in_headers = true; // a part's headers follow its delimiter
        }
    }
}

fn spec() -> MessageSpec {
    MessageSpec {
        from: "Ann <ann@example.com>".into(),
        to: vec!["bob@example.org".into()],
        subject: Some("Hi".into()),
        ..MessageSpec::default()
    }
}

fn build(spec: MessageSpec) -> Vec<u8> {
    let builder = MessageBuilder::new(spec, RANDOM, NOW).unwrap();
    let announced_size = builder.envelope().size;
    let message = builder.into_vec().unwrap();
    assert_eq!(announced_size, Some(message.len() as u64), "envelope size is exact");
    check_wire_format(&message, true, 78);
    message
}

/// Runs the builder, answering each NeedAttachment from `streams` in chunks
/// of the given sizes (cycled). Checks that the builder never holds more
/// than one encoded chunk plus a little.
fn build_streaming(spec: MessageSpec, streams: &[(usize, &[u8])], chunk_sizes: &[usize]) -> Vec<u8> {
    let mut builder = MessageBuilder::new(spec, RANDOM, NOW).unwrap();
    let mut positions = vec![0usize; streams.len()];
    let mut sizes = chunk_sizes.iter().copied().cycle();
    let mut message = Vec::new();
    loop {
        match builder.poll_output() {
            Segment::Bytes(bytes) => {
                let largest_chunk = chunk_sizes.iter().max().copied().unwrap_or(0);
                assert!(bytes.len() <= 16 * 1024 + 4096 + largest_chunk * 2, "{}", bytes.len());
                message.extend_from_slice(&bytes);
            }
            Segment::NeedAttachment(index) => {
                let slot = streams
                    .iter()
                    .position(|(i, _)| *i == index)
                    .expect("asked for a known stream");
                let data = streams[slot].1;
                let at = positions[slot];
                if at == data.len() {
                    builder.end_attachment(index).unwrap();
                } else {
                    let end = (at + sizes.next().unwrap().max(1)).min(data.len());
                    builder.push_attachment(index, &data[at..end]).unwrap();
                    positions[slot] = end;
                }
            }
            Segment::Done => break,
        }
    }
    assert_eq!(builder.poll_output(), Segment::Done);
    assert!(builder.is_done());
    message
}

fn sample_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
}

// ---- structure -----------------------------------------------------------

#[test]
fn text_only_is_a_single_7bit_part() {
    let message = build(MessageSpec {
        text: Some("Hello Bob,\nsee you.\n".into()),
        ..spec()
    });
    let entity = parse(&message);
    assert_eq!(entity.shape(), "text/plain");
    assert_eq!(entity.header("Content-Type"), Some("text/plain; charset=utf-8"));
    assert_eq!(entity.header("Content-Transfer-Encoding"), Some("7bit"));
    assert_eq!(entity.header("MIME-Version"), Some("1.0"));
    assert_eq!(entity.header("Date"), Some("Tue, 14 Nov 2023 22:13:20 +0000"));
    assert_eq!(entity.header("From"), Some("Ann <ann@example.com>"));
    assert_eq!(entity.header("To"), Some("bob@example.org"));
    assert_eq!(
        entity.header("Message-ID"),
        Some("<00112233445566778899aabbccddeeff@example.com>")
    );
    assert_eq!(entity.decoded(), b"Hello Bob,\r\nsee you.\r\n");
}

#[test]
fn text_and_html_make_multipart_alternative() {
    let message = build(MessageSpec {
        text: Some("plain".into()),
        html: Some("<p>html</p>".into()),
        ..spec()
    });
    let entity = parse(&message);
    assert_eq!(entity.shape(), "multipart/alternative[text/plain, text/html]");
    assert_eq!(entity.parts[0].decoded(), b"plain");
    assert_eq!(entity.parts[1].decoded(), b"<p>html</p>");
    assert_eq!(entity.parts[1].header("Content-Type"), Some("text/html; charset=utf-8"));
}

#[test]
fn html_only_is_a_single_part() {
    let entity = parse(&build(MessageSpec {
        html: Some("<b>hi</b>".into()),
        ..spec()
    }));
    assert_eq!(entity.shape(), "text/html");
}

#[test]
fn no_body_at_all_is_an_empty_text_part() {
    let entity = parse(&build(spec()));
    assert_eq!(entity.shape(), "text/plain");
    assert!(entity.decoded().is_empty());
}

#[test]
fn attachments_alone_make_multipart_mixed() {
    let spec = MessageSpec {
        attachments: vec![Attachment::from_bytes("a.bin", vec![0u8, 1, 2])],
        ..spec()
    };
    let entity = parse(&build(spec));
    assert_eq!(entity.shape(), "multipart/mixed[application/octet-stream]");
    assert_eq!(entity.parts[0].decoded(), [0, 1, 2]);
}

#[test]
fn html_with_inline_image_and_attachment_nests_related_in_alternative_in_mixed() {
    let image = sample_bytes(3000);
    let pdf = sample_bytes(10_000);
    let spec = MessageSpec {
        text: Some("see the logo".into()),
        html: Some("<img src=\"cid:logo@example.com\">".into()),
        attachments: vec![
            Attachment::from_bytes("report.pdf", pdf.clone()),
            Attachment::from_bytes("logo.png", image.clone()).with_cid("logo@example.com"),
        ],
        ..spec()
    };
    let entity = parse(&build(spec));
    assert_eq!(
        entity.shape(),
        "multipart/mixed[multipart/alternative[text/plain, multipart/related[text/html, image/png]], application/pdf]"
    );
    let related = &entity.parts[0].parts[1];
    let logo = &related.parts[1];
    assert_eq!(logo.header("Content-ID"), Some("<logo@example.com>"));
    assert_eq!(
        logo.header("Content-Disposition"),
        Some("inline; filename=\"logo.png\"")
    );
    assert_eq!(logo.decoded(), image);
    let report = &entity.parts[1];
    assert_eq!(
        report.header("Content-Disposition"),
        Some("attachment; filename=\"report.pdf\"")
    );
    assert_eq!(report.decoded(), pdf);
    for line in report.body.split(|&b| b == b'\n') {
        assert!(line.len() <= 77, "base64 line longer than 76");
    }
    // Boundaries differ per level, and none is a prefix of another.
    let boundaries: Vec<String> = [&entity, &entity.parts[0], related]
        .iter()
        .map(|e| param(e.header("Content-Type").unwrap(), "boundary").unwrap())
        .collect();
    for (i, a) in boundaries.iter().enumerate() {
        for (j, b) in boundaries.iter().enumerate() {
            assert!(i == j || !b.starts_with(a.as_str()), "{a} / {b}");
        }
    }
}

#[test]
fn cid_parts_without_html_are_plain_attachments() {
    let spec = MessageSpec {
        text: Some("t".into()),
        attachments: vec![Attachment::from_bytes("logo.png", vec![1]).with_cid("logo")],
        ..spec()
    };
    assert_eq!(parse(&build(spec)).shape(), "multipart/mixed[text/plain, image/png]");
}

// ---- headers and encodings -----------------------------------------------

#[test]
fn utf8_subject_and_display_names_are_encoded_words() {
    let message = build(MessageSpec {
        from: "José Müller <jose@example.com>".into(),
        to: vec!["Zoë Åström <zoe@example.org>, \"Lee, Bob\" <bob@example.org>".into()],
        cc: vec!["李小龍 <lee@example.net>".into()],
        subject: Some("Grüße – 日本語のメール 🎉".into()),
        text: Some("x".into()),
        ..spec()
    });
    let entity = parse(&message);
    assert_eq!(
        decode_words(entity.header("Subject").unwrap()),
        "Grüße – 日本語のメール 🎉"
    );
    assert_eq!(
        decode_words(entity.header("From").unwrap()),
        "José Müller <jose@example.com>"
    );
    assert_eq!(
        decode_words(entity.header("To").unwrap()),
        "Zoë Åström <zoe@example.org>, \"Lee, Bob\" <bob@example.org>"
    );
    assert_eq!(decode_words(entity.header("Cc").unwrap()), "李小龍 <lee@example.net>");
}

#[test]
fn long_subject_is_folded_under_78_columns() {
    let subject = "Quarterly numbers for the northern region, with the revised forecast and some notes".repeat(3);
    let entity = parse(&build(MessageSpec {
        subject: Some(subject.clone()),
        ..spec()
    }));
    assert_eq!(entity.header("Subject"), Some(subject.as_str()));
}

#[test]
fn non_ascii_filename_uses_rfc2231_with_an_rfc2047_name_fallback() {
    let filename = "Überweisungsbestätigung für das Geschäftsjahr 2024 – endgültig.pdf";
    let spec = MessageSpec {
        attachments: vec![Attachment::from_bytes(filename, vec![7; 10])],
        ..spec()
    };
    let entity = parse(&build(spec));
    let part = &entity.parts[0];
    let disposition = part.header("Content-Disposition").unwrap();
    assert!(
        disposition.starts_with("attachment; filename*0*=utf-8''"),
        "{disposition}"
    );
    assert_eq!(param(disposition, "filename").unwrap(), filename);
    let content_type = part.header("Content-Type").unwrap();
    assert!(
        content_type.starts_with("application/pdf; name=\"=?UTF-8?"),
        "{content_type}"
    );
    assert_eq!(param(content_type, "name").unwrap(), filename);
}

#[test]
fn long_lines_and_utf8_in_text_go_quoted_printable() {
    let text = format!(
        "{}\nCafé crème, naïve façade.\r\nTrailing space \n=_ not a boundary",
        "long ".repeat(100)
    );
    let html = format!("<p>{}</p>", "ü".repeat(500));
    let entity = parse(&build(MessageSpec {
        text: Some(text.clone()),
        html: Some(html.clone()),
        ..spec()
    }));
    for (part, original) in entity.parts.iter().zip([&text, &html]) {
        assert_eq!(part.header("Content-Transfer-Encoding"), Some("quoted-printable"));
        for line in part.body.split(|&b| b == b'\n') {
            assert!(line.len() <= 77);
        }
        assert_eq!(part.decoded(), normalize_line_ends(original));
    }
}

#[test]
fn text_containing_the_boundary_cannot_break_the_structure() {
    let boundary = format!("=_wasmtp_{}_a", "0123456789abcdeffedcba9876543210");
    let text = format!("--{boundary}\r\n--{boundary}--\r\n");
    let entity = parse(&build(MessageSpec {
        text: Some(text.clone()),
        html: Some("h".into()),
        ..spec()
    }));
    assert_eq!(entity.shape(), "multipart/alternative[text/plain, text/html]");
    assert_eq!(entity.parts[0].decoded(), text.as_bytes());
}

#[test]
fn user_headers_are_written_in_order_and_encoded_when_needed() {
    let spec = MessageSpec {
        headers: vec![
            ("X-Tag".into(), "v".into()),
            ("List-Unsubscribe".into(), "<mailto:unsub@example.com>".into()),
            ("X-Note".into(), "naïve".into()),
        ],
        ..spec()
    };
    let entity = parse(&build(spec));
    assert_eq!(entity.header("X-Tag"), Some("v"));
    assert_eq!(entity.header("List-Unsubscribe"), Some("<mailto:unsub@example.com>"));
    assert_eq!(decode_words(entity.header("X-Note").unwrap()), "naïve");
}

#[test]
fn given_message_id_is_used_with_brackets() {
    for given in ["abc.123@example.com", "<abc.123@example.com>"] {
        let builder = MessageBuilder::new(
            MessageSpec {
                message_id: Some(given.into()),
                ..spec()
            },
            RANDOM,
            NOW,
        )
        .unwrap();
        assert_eq!(builder.message_id(), "<abc.123@example.com>");
    }
    for bad in [
        "no-at-sign",
        "a b@example.com",
        "<x@y>\r\nBcc: z@example.com",
        "@example.com",
    ] {
        let err = MessageBuilder::new(
            MessageSpec {
                message_id: Some(bad.into()),
                ..spec()
            },
            RANDOM,
            NOW,
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::Input, "{bad:?}");
    }
}

// ---- envelope ------------------------------------------------------------

#[test]
fn bcc_is_in_the_envelope_but_never_in_the_headers() {
    let builder = MessageBuilder::new(
        MessageSpec {
            to: vec!["bob@example.org".into(), "Carol <carol@example.org>".into()],
            cc: vec!["Bob again <bob@EXAMPLE.org>".into()],
            bcc: vec!["secret@example.net".into(), "carol@example.org".into()],
            text: Some("t".into()),
            ..spec()
        },
        RANDOM,
        NOW,
    )
    .unwrap();
    let envelope = builder.envelope().clone();
    let message = builder.into_vec().unwrap();
    assert_eq!(envelope.from, "ann@example.com");
    let recipients: Vec<&str> = envelope.recipients.iter().map(|r| r.address.as_str()).collect();
    assert_eq!(
        recipients,
        ["bob@example.org", "carol@example.org", "secret@example.net"]
    );
    assert_eq!(envelope.body_type, BodyType::SevenBit);
    assert!(!envelope.smtputf8);
    let entity = parse(&message);
    assert_eq!(entity.headers_named("Bcc"), 0);
    assert!(memchr::memmem::find(&message, b"secret").is_none());
}

#[test]
fn bcc_only_message_has_no_to_header() {
    let spec = MessageSpec {
        to: vec![],
        bcc: vec!["hidden@example.org".into()],
        ..spec()
    };
    let entity = parse(&build(spec));
    assert_eq!(entity.headers_named("To"), 0);
}

#[test]
fn utf8_addresses_need_smtputf8_and_8bit() {
    let builder = MessageBuilder::new(
        MessageSpec {
            to: vec!["José <josé@example.org>".into()],
            ..spec()
        },
        RANDOM,
        NOW,
    )
    .unwrap();
    assert!(builder.needs_smtputf8());
    assert!(builder.envelope().smtputf8);
    assert_eq!(builder.envelope().body_type, BodyType::EightBitMime);
    let message = builder.into_vec().unwrap();
    check_wire_format(&message, false, 78);
    assert!(
        String::from_utf8(message)
            .unwrap()
            .contains("To: =?UTF-8?Q?Jos=C3=A9?= <josé@example.org>\r\n")
    );

    // Bcc only: the envelope needs SMTPUTF8, the headers stay ASCII.
    let builder = MessageBuilder::new(
        MessageSpec {
            bcc: vec!["josé@example.org".into()],
            ..spec()
        },
        RANDOM,
        NOW,
    )
    .unwrap();
    assert!(builder.needs_smtputf8());
    assert_eq!(builder.envelope().body_type, BodyType::SevenBit);
}

#[test]
fn generated_message_id_avoids_a_utf8_domain() {
    let builder = MessageBuilder::new(
        MessageSpec {
            from: "a@exämple.com".into(),
            ..spec()
        },
        RANDOM,
        NOW,
    )
    .unwrap();
    assert_eq!(
        builder.message_id(),
        "<00112233445566778899aabbccddeeff@wasmtp.invalid>"
    );
}

// ---- refused input -------------------------------------------------------

fn refused(spec: MessageSpec) -> crate::error::SmtpError {
    let err = MessageBuilder::new(spec, RANDOM, NOW).unwrap_err();
    assert_eq!(err.code, ErrorCode::Input);
    assert!(err.hint.is_some(), "no hint for {err}");
    assert!(
        !err.to_string().contains(['\r', '\n']),
        "error text carries a line break: {err}"
    );
    err
}

#[test]
fn header_injection_is_refused() {
    refused(MessageSpec {
        headers: vec![("X-Tag".into(), "v\r\nBcc: evil@example.com".into())],
        ..spec()
    });
    refused(MessageSpec {
        headers: vec![("X-Tag\r\nBcc".into(), "v".into())],
        ..spec()
    });
    refused(MessageSpec {
        subject: Some("Hi\r\nBcc: evil@example.com".into()),
        ..spec()
    });
    refused(MessageSpec {
        subject: Some("Hi\nthere".into()),
        ..spec()
    });
    refused(MessageSpec {
        from: "Ann\r\n <ann@example.com>".into(),
        ..spec()
    });
    refused(MessageSpec {
        to: vec!["bob@example.org\r\nBcc: evil@example.com".into()],
        ..spec()
    });
    refused(MessageSpec {
        attachments: vec![Attachment::from_bytes("a.txt\r\nContent-Type: text/html", vec![])],
        ..spec()
    });
}

#[test]
fn structural_headers_cannot_be_overridden() {
    for name in [
        "Content-Type",
        "MIME-Version",
        "content-transfer-encoding",
        "Bcc",
        "Subject",
        "Message-Id",
    ] {
        let err = refused(MessageSpec {
            headers: vec![(name.into(), "x".into())],
            ..spec()
        });
        assert!(err.message.contains(name), "{err}");
    }
}

#[test]
fn missing_recipients_bad_addresses_and_bad_time_are_refused() {
    refused(MessageSpec { to: vec![], ..spec() });
    refused(MessageSpec {
        to: vec!["  ".into()],
        ..spec()
    });
    refused(MessageSpec {
        from: "".into(),
        ..spec()
    });
    refused(MessageSpec {
        from: "a@example.com, b@example.com".into(),
        ..spec()
    });
    refused(MessageSpec {
        cc: vec!["not an address".into()],
        ..spec()
    });
    let err = MessageBuilder::new(spec(), RANDOM, -5).unwrap_err();
    assert_eq!(err.code, ErrorCode::Input);
}

// ---- streaming -----------------------------------------------------------

#[test]
fn streamed_attachment_in_odd_chunks_decodes_back_identical() {
    let data = sample_bytes(50_000);
    for sizes in [&[1][..], &[3], &[57], &[1000], &[1, 3, 57, 1000]] {
        let spec = MessageSpec {
            text: Some("see attached".into()),
            attachments: vec![Attachment::streamed("data.bin")],
            ..spec()
        };
        let message = build_streaming(spec, &[(0, &data)], sizes);
        check_wire_format(&message, true, 78);
        let entity = parse(&message);
        assert_eq!(entity.shape(), "multipart/mixed[text/plain, application/octet-stream]");
        assert_eq!(entity.parts[1].decoded(), data, "chunk sizes {sizes:?}");
    }
}

#[test]
fn streamed_output_matches_bytes_in_hand() {
    let data = sample_bytes(7777);
    let with = |content: AttachmentContent| MessageSpec {
        attachments: vec![
            Attachment {
                content,
                ..Attachment::streamed("a.bin")
            },
            Attachment::from_bytes("b.txt", b"tail".to_vec()),
        ],
        ..spec()
    };
    let in_hand = build(with(AttachmentContent::Bytes(data.clone())));
    let streamed = build_streaming(with(AttachmentContent::Stream), &[(0, &data)], &[13, 4096]);
    assert_eq!(streamed, in_hand);
}

#[test]
fn several_streams_are_asked_for_in_message_order() {
    let (first, second) = (sample_bytes(100), sample_bytes(5));
    let spec = MessageSpec {
        html: Some("<img src=\"cid:pic\">".into()),
        attachments: vec![
            Attachment::streamed("doc.pdf"),
            Attachment::streamed("pic.png").with_cid("pic"),
        ],
        ..spec()
    };
    // The inline picture sits next to the HTML, before the attached pdf.
    let message = build_streaming(spec, &[(1, &second), (0, &first)], &[7]);
    let entity = parse(&message);
    assert_eq!(
        entity.shape(),
        "multipart/mixed[multipart/related[text/html, image/png], application/pdf]"
    );
    assert_eq!(entity.parts[0].parts[1].decoded(), second);
    assert_eq!(entity.parts[1].decoded(), first);
}

#[test]
fn empty_stream_is_an_empty_part() {
    let spec = MessageSpec {
        attachments: vec![Attachment::streamed("empty.txt")],
        ..spec()
    };
    let entity = parse(&build_streaming(spec, &[(0, b"")], &[1]));
    assert!(entity.parts[0].body.is_empty());
}

#[test]
fn pushing_out_of_turn_is_refused() {
    let spec = MessageSpec {
        attachments: vec![
            Attachment::from_bytes("a", vec![1]),
            Attachment::streamed("b"),
            Attachment::streamed("c"),
        ],
        ..spec()
    };
    let mut builder = MessageBuilder::new(spec, RANDOM, NOW).unwrap();
    // Not reached yet.
    assert_eq!(builder.push_attachment(1, b"x").unwrap_err().code, ErrorCode::Input);
    while let Segment::Bytes(_) = builder.poll_output() {}
    assert!(
        builder
            .push_attachment(0, b"x")
            .unwrap_err()
            .message
            .contains("given as bytes")
    );
    assert!(
        builder
            .push_attachment(2, b"x")
            .unwrap_err()
            .message
            .contains("not the one")
    );
    assert!(
        builder
            .push_attachment(9, b"x")
            .unwrap_err()
            .message
            .contains("no attachment 9")
    );
    builder.end_attachment(1).unwrap();
    assert!(builder.end_attachment(1).unwrap_err().message.contains("already ended"));
    builder_next_need(&mut builder, 2);
}

/// Drains bytes until the builder asks for a stream, which must be `expected`.
fn builder_next_need(builder: &mut MessageBuilder, expected: usize) {
    loop {
        match builder.poll_output() {
            Segment::Bytes(_) => continue,
            other => return assert_eq!(other, Segment::NeedAttachment(expected)),
        }
    }
}

#[test]
fn into_vec_refuses_a_message_with_streams() {
    let spec = MessageSpec {
        attachments: vec![Attachment::streamed("s")],
        ..spec()
    };
    let err = MessageBuilder::new(spec, RANDOM, NOW).unwrap().into_vec().unwrap_err();
    assert_eq!(err.code, ErrorCode::Input);
}

#[test]
fn large_in_hand_content_comes_out_in_bounded_segments() {
    let spec = MessageSpec {
        text: Some("é".repeat(100_000)),
        attachments: vec![Attachment::from_bytes("big.bin", sample_bytes(300_000))],
        ..spec()
    };
    let mut builder = MessageBuilder::new(spec, RANDOM, NOW).unwrap();
    let mut segments = 0;
    while let Segment::Bytes(bytes) = builder.poll_output() {
        assert!(bytes.len() <= 16 * 1024 + 128, "{}", bytes.len());
        segments += 1;
    }
    assert!(segments > 30);
}

// ---- golden --------------------------------------------------------------

#[test]
fn golden_output_for_fixed_randomness_and_time() {
    let spec = MessageSpec {
        from: "Ann Example <ann@example.com>".into(),
        to: vec!["Bob <bob@example.org>".into()],
        cc: vec!["carol@example.org".into()],
        bcc: vec!["dave@example.net".into()],
        reply_to: vec!["replies@example.com".into()],
        subject: Some("Grüße".into()),
        text: Some("Hello Bob\n".into()),
        html: Some("<p>Hello <b>Bob</b></p>".into()),
        headers: vec![("X-Tag".into(), "golden".into())],
        attachments: vec![Attachment::from_bytes("hello.txt", b"hello world".to_vec())],
        message_id: None,
        ..MessageSpec::default()
    };
    let message = String::from_utf8(build(spec)).unwrap();
    let expected = "\
Date: Tue, 14 Nov 2023 22:13:20 +0000\r
From: Ann Example <ann@example.com>\r
Reply-To: replies@example.com\r
To: Bob <bob@example.org>\r
Cc: carol@example.org\r
Message-ID: <00112233445566778899aabbccddeeff@example.com>\r
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r
X-Tag: golden\r
MIME-Version: 1.0\r
Content-Type: multipart/mixed;\r
 boundary=\"=_wasmtp_0123456789abcdeffedcba9876543210_m\"\r
\r
--=_wasmtp_0123456789abcdeffedcba9876543210_m\r
Content-Type: multipart/alternative;\r
 boundary=\"=_wasmtp_0123456789abcdeffedcba9876543210_a\"\r
\r
--=_wasmtp_0123456789abcdeffedcba9876543210_a\r
Content-Type: text/plain; charset=utf-8\r
Content-Transfer-Encoding: 7bit\r
\r
Hello Bob\r
\r
--=_wasmtp_0123456789abcdeffedcba9876543210_a\r
Content-Type: text/html; charset=utf-8\r
Content-Transfer-Encoding: 7bit\r
\r
<p>Hello <b>Bob</b></p>\r
--=_wasmtp_0123456789abcdeffedcba9876543210_a--\r
--=_wasmtp_0123456789abcdeffedcba9876543210_m\r
Content-Type: text/plain; name=\"hello.txt\"\r
Content-Transfer-Encoding: base64\r
Content-Disposition: attachment; filename=\"hello.txt\"\r
\r
aGVsbG8gd29ybGQ=\r
--=_wasmtp_0123456789abcdeffedcba9876543210_m--\r
";
    assert_eq!(message, expected);
}

// ---- properties ----------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any text, HTML, subject, filename and attachment bytes, with any
    /// chunking of the stream, come back identical from the parsed message.
    #[test]
    fn every_part_round_trips(
        text in "\\PC{0,300}|[ \r\n=a-z]{0,300}",
        html in "\\PC{0,300}",
        subject in "[^\\p{Cc}]{1,100}",
        filename in "[^\\p{Cc}]{1,80}",
        data in proptest::collection::vec(any::<u8>(), 0..3000),
        sizes in proptest::collection::vec(1usize..500, 1..8),
    ) {
        let spec = MessageSpec {
            subject: Some(subject.clone()),
            text: Some(text.clone()),
            html: Some(html.clone()),
            attachments: vec![Attachment::streamed(filename.clone())],
            ..spec()
        };
        let message = build_streaming(spec, &[(0, &data)], &sizes);
        // A long ASCII file name stays one quoted string, longer than 78.
        check_wire_format(&message, true, 998);
        let entity = parse(&message);
        prop_assert_eq!(decode_words(entity.header("Subject").unwrap()), subject);
        let leaves = entity.leaves();
        let attachment = leaves.last().unwrap();
        prop_assert_eq!(attachment.decoded(), data);
        prop_assert_eq!(param(attachment.header("Content-Disposition").unwrap(), "filename").unwrap(), filename.clone());
        prop_assert_eq!(param(attachment.header("Content-Type").unwrap(), "name").unwrap(), filename);
        let bodies: Vec<Vec<u8>> = leaves[..leaves.len() - 1].iter().map(|e| e.decoded()).collect();
        let mut expected: Vec<Vec<u8>> =
            [&text, &html].into_iter().filter(|t| !t.is_empty()).map(|t| normalize_line_ends(t)).collect();
        if expected.is_empty() {
            expected.push(Vec::new()); // no body at all: one empty text part
        }
        prop_assert_eq!(bodies, expected);
    }
}

#[test]
fn over_long_values_are_refused_not_cut() {
    let refused = |spec: MessageSpec, needle: &str| {
        let err = MessageBuilder::new(spec, RANDOM, NOW).expect_err("refused");
        assert_eq!(err.code, ErrorCode::Input);
        assert!(err.message.contains(needle), "{}", err.message);
    };
    refused(
        MessageSpec {
            from: format!("{} <ann@example.com>", "A".repeat(257)),
            ..spec()
        },
        "display name",
    );
    refused(
        MessageSpec {
            subject: Some("é".repeat(999)),
            ..spec()
        },
        "the subject is 999 characters",
    );
    refused(
        MessageSpec {
            headers: vec![("X-Tag".into(), "v".repeat(8 * 1024 + 1))],
            ..spec()
        },
        "X-Tag",
    );
    let attachment = Attachment::from_bytes(format!("{}.pdf", "f".repeat(252)), b"x".to_vec());
    refused(
        MessageSpec {
            attachments: vec![attachment],
            ..spec()
        },
        "filename",
    );
    // At the limits they are encoded and folded.
    build(MessageSpec {
        from: format!("{}Ann <ann@example.com>", "Ann ".repeat(63)),
        subject: Some("é".repeat(998)),
        headers: vec![("X-Tag".into(), "v".repeat(8 * 1024))],
        ..spec()
    });
}

// ---- fields beyond addresses and bodies -----------------------------------

#[test]
fn sender_threading_and_date_headers() {
    let entity = parse(&build(MessageSpec {
        text: Some("x".into()),
        sender: Some("Robot <robot@example.com>".into()),
        in_reply_to: Some("first@example.com".into()),
        references: vec!["<root@example.com>".into(), "first@example.com".into()],
        date: Some(0),
        ..spec()
    }));
    assert_eq!(entity.header("Sender"), Some("Robot <robot@example.com>"));
    assert_eq!(entity.header("In-Reply-To"), Some("<first@example.com>"));
    assert_eq!(
        entity.header("References"),
        Some("<root@example.com> <first@example.com>")
    );
    assert_eq!(entity.header("Date"), Some("Thu, 01 Jan 1970 00:00:00 +0000"));
    let bad = MessageSpec {
        references: vec!["no id".into()],
        ..spec()
    };
    assert_eq!(
        MessageBuilder::new(bad, RANDOM, NOW).unwrap_err().code,
        ErrorCode::Input
    );
    let reserved = MessageSpec {
        headers: vec![("In-Reply-To".into(), "<a@b.c>".into())],
        ..spec()
    };
    assert_eq!(
        MessageBuilder::new(reserved, RANDOM, NOW).unwrap_err().code,
        ErrorCode::Input
    );
}

#[test]
fn alternatives_follow_text_and_html_in_one_multipart_alternative() {
    let calendar = Attachment {
        filename: None,
        content_type: Some("text/calendar; charset=utf-8; method=REQUEST".into()),
        cid: None,
        disposition: None,
        content: AttachmentContent::Bytes(b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n".to_vec()),
        headers: Vec::new(),
        encoding: Default::default(),
    };
    let entity = parse(&build(MessageSpec {
        text: Some("plain".into()),
        html: Some("<p>html</p>".into()),
        alternatives: vec![calendar.clone()],
        attachments: vec![Attachment::from_bytes("a.txt", b"a".to_vec())],
        ..spec()
    }));
    assert_eq!(
        entity.shape(),
        "multipart/mixed[multipart/alternative[text/plain, text/html, text/calendar], text/plain]"
    );
    let part = &entity.parts[0].parts[2];
    assert_eq!(
        part.header("Content-Disposition"),
        None,
        "an alternative is not an attachment"
    );
    assert_eq!(part.decoded(), b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n");
    // Alone with the text: just the alternative.
    let entity = parse(&build(MessageSpec {
        text: Some("plain".into()),
        alternatives: vec![calendar],
        ..spec()
    }));
    assert_eq!(entity.shape(), "multipart/alternative[text/plain, text/calendar]");
}

#[test]
fn attachments_carry_their_own_headers_but_not_content_ones() {
    let mut attachment = Attachment::from_bytes("a.txt", b"a".to_vec());
    attachment.headers = vec![("X-Part".into(), "one".into())];
    let entity = parse(&build(MessageSpec {
        text: Some("x".into()),
        attachments: vec![attachment.clone()],
        ..spec()
    }));
    assert_eq!(entity.parts[1].header("X-Part"), Some("one"));
    for (name, value) in [("Content-Type", "text/html"), ("X Y", "z"), ("X-Ok", "a\r\nBcc: b")] {
        attachment.headers = vec![(name.into(), value.into())];
        let spec = MessageSpec {
            attachments: vec![attachment.clone()],
            ..spec()
        };
        assert_eq!(
            MessageBuilder::new(spec, RANDOM, NOW).unwrap_err().code,
            ErrorCode::Input,
            "{name}"
        );
    }
}

#[test]
fn streamed_alternatives_are_numbered_after_the_attachments() {
    let mut streamed = Attachment::streamed("x.ics");
    streamed.content_type = Some("text/calendar".into());
    let message = build_streaming(
        MessageSpec {
            text: Some("plain".into()),
            attachments: vec![Attachment::streamed("a.bin")],
            alternatives: vec![streamed],
            ..spec()
        },
        &[(0, b"attached"), (1, b"calendar")],
        &[3],
    );
    let entity = parse(&message);
    assert_eq!(entity.parts[0].parts[1].decoded(), b"calendar");
    assert_eq!(entity.parts[1].decoded(), b"attached");
}

// ---- transfer encodings chosen per part, raw parts, streamed bodies ------

/// Builds with every streamed part pushed from `streams`, or returns the
/// first error (from `new`, a push or an end).
fn try_build_streaming(
    spec: MessageSpec,
    streams: &[(usize, &[u8])],
    chunk: usize,
) -> Result<Vec<u8>, crate::error::SmtpError> {
    let mut builder = MessageBuilder::new(spec, RANDOM, NOW)?;
    let mut positions = vec![0usize; streams.len()];
    let mut message = Vec::new();
    loop {
        match builder.poll_output() {
            Segment::Bytes(bytes) => message.extend_from_slice(&bytes),
            Segment::NeedAttachment(index) => {
                let slot = streams.iter().position(|(i, _)| *i == index).expect("a known stream");
                let (data, at) = (streams[slot].1, positions[slot]);
                if at == data.len() {
                    builder.end_attachment(index)?;
                } else {
                    let end = (at + chunk).min(data.len());
                    builder.push_attachment(index, &data[at..end])?;
                    positions[slot] = end;
                }
            }
            Segment::Done => return Ok(message),
        }
    }
}

fn one_part(content: AttachmentContent, content_type: &str, encoding: PartEncoding) -> MessageSpec {
    MessageSpec {
        text: Some("see attached".into()),
        attachments: vec![
            Attachment {
                content,
                ..Attachment::streamed("part")
            }
            .with_content_type(content_type)
            .with_encoding(encoding),
        ],
        ..spec()
    }
}

#[test]
fn each_transfer_encoding_round_trips_in_hand_and_streamed_alike() {
    let text = b"caf\xc3\xa9 = 1\r\nline two \r\n\r\nend".to_vec();
    let binary = sample_bytes(3000);
    let cases: [(&[u8], &str, PartEncoding, Vec<u8>); 5] = [
        (
            &binary,
            "application/octet-stream",
            PartEncoding::Base64,
            binary.clone(),
        ),
        (&text, "text/plain", PartEncoding::QuotedPrintable, text.clone()),
        // Outside text/*, CR and LF are data: kept, not made line ends.
        (
            &binary,
            "application/octet-stream",
            PartEncoding::QuotedPrintable,
            binary.clone(),
        ),
        (
            b"plain ascii\nlines",
            "text/plain",
            PartEncoding::SevenBit,
            b"plain ascii\r\nlines".to_vec(),
        ),
        (&text, "text/plain", PartEncoding::EightBit, text.clone()),
    ];
    for (content, content_type, encoding, expected) in cases {
        let in_hand = MessageBuilder::new(
            one_part(AttachmentContent::Bytes(content.to_vec()), content_type, encoding),
            RANDOM,
            NOW,
        )
        .unwrap();
        let eight_bit = in_hand.envelope().body_type == BodyType::EightBitMime;
        assert_eq!(eight_bit, encoding == PartEncoding::EightBit, "{encoding:?}");
        let size = in_hand.envelope().size;
        let message = in_hand.into_vec().unwrap();
        assert_eq!(size, Some(message.len() as u64), "{encoding:?}: exact size");
        check_wire_format(&message, !eight_bit, 78);
        for chunk in [1, 2, 7, 4096] {
            let streamed = try_build_streaming(
                one_part(AttachmentContent::Stream, content_type, encoding),
                &[(0, content)],
                chunk,
            )
            .unwrap();
            assert_eq!(streamed, message, "{encoding:?} in chunks of {chunk}");
        }
        let part = &parse(&message).parts[1];
        assert_eq!(part.header("Content-Transfer-Encoding"), Some(encoding.header_value()));
        assert_eq!(part.decoded(), expected, "{encoding:?}");
    }
}

#[test]
fn seven_and_eight_bit_parts_refuse_what_would_not_survive() {
    let long = vec![b'x'; 999];
    let cases: [(&[u8], PartEncoding, &str); 5] = [
        (b"caf\xc3\xa9", PartEncoding::SevenBit, "above 127"),
        (&long, PartEncoding::SevenBit, "998"),
        (&long, PartEncoding::EightBit, "998"),
        (b"a\0b", PartEncoding::EightBit, "NUL"),
        (
            b"ok\r\n--=_wasmtp_0123456789abcdeffedcba9876543210_m--",
            PartEncoding::SevenBit,
            "boundaries",
        ),
    ];
    for (content, encoding, problem) in cases {
        let error = refused(one_part(
            AttachmentContent::Bytes(content.to_vec()),
            "text/plain",
            encoding,
        ));
        assert!(error.message.contains(problem), "{encoding:?}: {}", error.message);
        let streamed = try_build_streaming(
            one_part(AttachmentContent::Stream, "text/plain", encoding),
            &[(0, content)],
            3,
        );
        let error = streamed.unwrap_err();
        assert_eq!(error.code, ErrorCode::Input);
        assert!(
            error.message.contains(problem),
            "{encoding:?} streamed: {}",
            error.message
        );
    }
    // 998 octets is the limit, not past it; a CR cut from its LF by a chunk end is one line end.
    let edge = [vec![b'y'; 998], b"\r\n".to_vec(), vec![b'z'; 998]].concat();
    let message = try_build_streaming(
        one_part(AttachmentContent::Stream, "text/plain", PartEncoding::SevenBit),
        &[(0, &edge)],
        999,
    )
    .unwrap();
    assert_eq!(parse(&message).parts[1].decoded(), edge);
}

fn raw_spec(content: AttachmentContent) -> MessageSpec {
    MessageSpec {
        text: Some("see attached".into()),
        attachments: vec![
            Attachment {
                content,
                filename: None,
                ..Attachment::streamed("")
            }
            .with_encoding(PartEncoding::Raw),
        ],
        ..spec()
    }
}

#[test]
fn raw_parts_go_in_as_given_with_their_line_ends_made_crlf() {
    let raw = b"Content-Type: text/plain; charset=us-ascii\nContent-Disposition: attachment;\n filename=\"r.txt\"\n\nhello\rraw\n".to_vec();
    let in_hand = build(raw_spec(AttachmentContent::Bytes(raw.clone())));
    for chunk in [1, 5, 4096] {
        let streamed = try_build_streaming(raw_spec(AttachmentContent::Stream), &[(0, &raw)], chunk).unwrap();
        assert_eq!(streamed, in_hand, "chunks of {chunk}");
    }
    let part = &parse(&in_hand).parts[1];
    assert_eq!(
        part.header("Content-Disposition"),
        Some("attachment; filename=\"r.txt\"")
    );
    assert_eq!(part.body, b"hello\r\nraw\r\n");
    // A raw part with 8-bit bytes in hand makes the message 8BITMIME.
    let eight =
        b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\ncaf\xc3\xa9".to_vec();
    let builder = MessageBuilder::new(raw_spec(AttachmentContent::Bytes(eight)), RANDOM, NOW).unwrap();
    assert_eq!(builder.envelope().body_type, BodyType::EightBitMime);
}

#[test]
fn raw_parts_that_break_the_rules_are_refused() {
    let cases: [(&[u8], &str); 5] = [
        (b"Content-Type: text/plain\r\nno blank line", "not 'Name: value'"),
        (b"Content-Type: text/plain", "no empty line"),
        (b" continued first\r\n\r\nbody", "not 'Name: value'"),
        (b"Subject: caf\xc3\xa9\r\n\r\nbody", "above 127"),
        (
            b"X: y\r\n\r\n--=_wasmtp_0123456789abcdeffedcba9876543210_m\r\nX: injected",
            "boundaries",
        ),
    ];
    for (raw, problem) in cases {
        let error = try_build_streaming(raw_spec(AttachmentContent::Stream), &[(0, raw)], 4).unwrap_err();
        assert!(
            error.message.contains(problem),
            "{:?}: {}",
            String::from_utf8_lossy(raw),
            error.message
        );
    }
    // Streamed, its bytes cannot be looked at before MAIL FROM: 8-bit is refused.
    let eight = b"Content-Type: text/plain\r\n\r\ncaf\xc3\xa9";
    let error = try_build_streaming(raw_spec(AttachmentContent::Stream), &[(0, eight)], 64).unwrap_err();
    assert!(error.message.contains("above 127"), "{}", error.message);
    // Fields the raw part would contain are refused rather than dropped.
    let mut described = raw_spec(AttachmentContent::Bytes(b"X: y\r\n\r\n".to_vec()));
    described.attachments[0].filename = Some("r.txt".into());
    assert!(refused(described).message.contains("raw MIME"));
}

#[test]
fn streamed_bodies_go_quoted_printable_and_decode_back() {
    let text = "Grüße, \u{1F600}\n".repeat(500);
    let html = format!("<p>{}</p>", "x".repeat(2000));
    let streamed_spec = || MessageSpec {
        text_streamed: true,
        html_streamed: true,
        ..spec()
    };
    // Odd chunk sizes cut UTF-8 sequences and CRLF pairs.
    for chunk in [1, 3, 1000] {
        let message =
            try_build_streaming(streamed_spec(), &[(0, text.as_bytes()), (1, html.as_bytes())], chunk).unwrap();
        check_wire_format(&message, true, 78);
        let entity = parse(&message);
        assert_eq!(entity.shape(), "multipart/alternative[text/plain, text/html]");
        assert_eq!(
            entity.parts[0].header("Content-Transfer-Encoding"),
            Some("quoted-printable")
        );
        assert_eq!(entity.parts[0].decoded(), normalize_line_ends(&text));
        assert_eq!(entity.parts[1].decoded(), html.as_bytes());
    }
    let error = try_build_streaming(
        MessageSpec {
            text_streamed: true,
            ..spec()
        },
        &[(0, b"ok \xff")],
        2,
    )
    .unwrap_err();
    assert!(
        error.message.contains("not valid UTF-8 (at byte 3)"),
        "{}",
        error.message
    );
    let error = try_build_streaming(
        MessageSpec {
            text_streamed: true,
            ..spec()
        },
        &[(0, b"cut \xc3")],
        2,
    )
    .unwrap_err();
    assert!(error.message.contains("not valid UTF-8"), "{}", error.message);
    let both = MessageSpec {
        text: Some("x".into()),
        text_streamed: true,
        ..spec()
    };
    assert_eq!(refused(both).code, ErrorCode::Input);
}
