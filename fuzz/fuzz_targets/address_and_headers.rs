//! User input that ends up in SMTP commands or message headers.
//!
//! Input layout: `flags ++ field0 FF field1 FF field2 ...` (0xFF never
//! occurs in UTF-8, so it cannot be part of a field; fields are read as
//! lossy UTF-8).
//!
//! - field 0 goes to every validator in `wasmtp::address`;
//! - fields 1.. fill a `MessageSpec`: from, to, cc, reply-to, subject, text,
//!   html, one extra header (name, value), an attachment (file name,
//!   content type, cid, content), a Message-ID; `flags` says which are set.
//!
//! Invariants: no panic; whatever is accepted carries no CR, LF or NUL into
//! a command line or header; MIME output is CRLF-only, lines ≤ 998 octets,
//! 7-bit unless SMTPUTF8 is needed, and the header section holds only the
//! fields the builder writes plus the extra header (no injected field).

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmtp::address::{
    AddressKind, format_path, parse_mailbox, parse_mailbox_list, validate_address, validate_dsn_value,
    validate_ehlo_name, xtext_encode,
};
use wasmtp::mime::{Attachment, Disposition, MessageBuilder, MessageSpec, Segment};
use wasmtp::{Envelope, Phase};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else { return };
    let fields: Vec<String> = rest
        .split(|&b| b == 0xFF)
        .map(|f| String::from_utf8_lossy(f).into_owned())
        .collect();
    let field = |i: usize| fields.get(i).cloned().unwrap_or_default();

    check_validators(&field(0));
    check_builder(flags, &field);
});

fn clean(s: &str) -> bool {
    !s.contains(['\r', '\n', '\0'])
}

fn check_validators(input: &str) {
    if let Ok(kind) = validate_address(input, Phase::Mail) {
        assert!(clean(input), "address accepted with CR/LF/NUL: {input:?}");
        assert!(!input.is_empty());
        assert_eq!(kind == AddressKind::Ascii, input.is_ascii());
        let line = format!("MAIL FROM:{}\r\n", format_path(input));
        assert_eq!(line.matches("\r\n").count(), 1);
        // An accepted address makes a valid envelope on its own.
        let envelope = Envelope::new(input, [input]);
        assert!(envelope.validate().is_ok(), "validate_address and Envelope::validate disagree on {input:?}");
    }
    if let Ok(mailbox) = parse_mailbox(input, Phase::Rcpt) {
        assert!(clean(&mailbox.address) && mailbox.name.as_deref().is_none_or(clean));
        assert!(
            validate_address(&mailbox.address, Phase::Rcpt).is_ok(),
            "parse_mailbox returned an address validate_address refuses: {:?}",
            mailbox.address
        );
    }
    if let Ok(list) = parse_mailbox_list(input, Phase::Rcpt) {
        assert!(!list.is_empty());
        for mailbox in &list {
            assert!(clean(&mailbox.address) && mailbox.name.as_deref().is_none_or(clean));
            assert!(validate_address(&mailbox.address, Phase::Rcpt).is_ok());
        }
    }
    if validate_ehlo_name(input).is_ok() {
        assert!(clean(input) && !input.contains(' ') && input.is_ascii() && !input.is_empty());
    }
    let encoded = xtext_encode(input);
    assert!(
        encoded.bytes().all(|b| matches!(b, b'!'..=b'~')),
        "xtext output not printable ASCII: {encoded:?}"
    );
    assert!(!encoded.contains('='));
    if validate_dsn_value(input, "ENVID", 100).is_ok() {
        assert!(clean(input) && encoded.len() <= 100);
    }
}

fn check_builder(flags: u8, field: &dyn Fn(usize) -> String) {
    let opt = |bit: u8, i: usize| (flags & bit != 0).then(|| field(i));
    let mut spec = MessageSpec {
        from: field(1),
        to: vec![field(2)],
        cc: opt(0x01, 3).into_iter().collect(),
        reply_to: opt(0x02, 4).into_iter().collect(),
        subject: Some(field(5)),
        text: Some(field(6)),
        html: opt(0x04, 7),
        message_id: opt(0x08, 15),
        ..MessageSpec::default()
    };
    let header_name = field(8);
    if flags & 0x10 != 0 {
        spec.headers.push((header_name.clone(), field(9)));
    }
    let streamed = flags & 0x40 != 0;
    if flags & 0x20 != 0 {
        let content = field(13).into_bytes();
        let mut attachment = if streamed {
            Attachment::streamed(field(10))
        } else {
            Attachment::from_bytes(field(10), content)
        };
        if !field(11).is_empty() {
            attachment = attachment.with_content_type(field(11));
        }
        if !field(12).is_empty() {
            attachment = attachment.with_cid(field(12));
        }
        if flags & 0x80 != 0 {
            attachment = attachment.with_disposition(Disposition::Inline);
        }
        spec.attachments.push(attachment);
    }

    let Ok(mut builder) = MessageBuilder::new(spec, [0x5A; 32], 1_700_000_000_000) else {
        return;
    };
    let envelope = builder.envelope().clone();
    assert!(clean(&envelope.from));
    for r in &envelope.recipients {
        assert!(clean(&r.address));
    }
    assert!(envelope.validate().is_ok(), "the builder's envelope does not validate: {envelope:?}");
    let message_id = builder.message_id().to_string();
    assert!(clean(&message_id) && message_id.starts_with('<') && message_id.ends_with('>'));

    let predicted = builder.envelope().size;
    let mut out = Vec::new();
    let chunks: Vec<Vec<u8>> = field(13).into_bytes().chunks(7).map(<[u8]>::to_vec).collect();
    let mut next_chunk = 0;
    let mut polls = 0;
    loop {
        polls += 1;
        assert!(polls < 100_000, "the builder does not finish");
        match builder.poll_output() {
            Segment::Bytes(bytes) => {
                assert!(!bytes.is_empty());
                out.extend_from_slice(&bytes);
            }
            Segment::NeedAttachment(index) => {
                assert!(streamed, "asked for attachment {index}, which was given as bytes");
                if let Some(chunk) = chunks.get(next_chunk) {
                    next_chunk += 1;
                    builder.push_attachment(index, chunk).expect("its turn");
                } else {
                    builder.end_attachment(index).expect("its turn");
                }
            }
            Segment::Done => break,
        }
    }
    assert!(builder.is_done());
    if let Some(size) = predicted {
        assert_eq!(size, out.len() as u64, "the announced size is not the real size");
    }

    if std::env::var_os("WASMTP_FUZZ_DEBUG").is_some() {
        eprintln!("{}", String::from_utf8_lossy(&out));
    }
    // CRLF only, lines ≤ 998, no NUL, 7-bit unless SMTPUTF8. (The last
    // line may lack its CRLF: a text body that does not end in a line
    // break; the SMTP layer adds it before the final dot.)
    let mut line_start = 0;
    for (i, &b) in out.iter().enumerate() {
        match b {
            b'\n' => {
                assert!(i > 0 && out[i - 1] == b'\r', "bare LF at {i}");
                assert!(i - 1 - line_start <= 998, "a line of {} octets", i - 1 - line_start);
                line_start = i + 1;
            }
            b'\r' => assert!(out.get(i + 1) == Some(&b'\n'), "bare CR at {i}"),
            0 => panic!("NUL in the message at {i}"),
            _ => {}
        }
    }
    assert!(out.len() - line_start <= 998, "a last line of {} octets", out.len() - line_start);
    if !builder.needs_smtputf8() {
        assert!(out.is_ascii(), "8-bit output without SMTPUTF8");
    }

    // The header section: only the builder's own fields and the extra one.
    let text = String::from_utf8_lossy(&out);
    let header_end = text.find("\r\n\r\n").expect("a header section");
    let allowed = [
        "Date",
        "From",
        "Reply-To",
        "To",
        "Cc",
        "Message-ID",
        "Subject",
        "MIME-Version",
        "Content-Type",
        "Content-Transfer-Encoding",
        "Content-Disposition",
        "Content-ID",
    ];
    for line in text[..header_end].split("\r\n") {
        if line.starts_with([' ', '\t']) {
            assert!(!line.trim().is_empty(), "a whitespace-only folded line");
            continue;
        }
        let (name, _) = line.split_once(':').unwrap_or_else(|| panic!("a header line without a colon: {line:?}"));
        assert!(
            allowed.iter().any(|a| a.eq_ignore_ascii_case(name))
                || (flags & 0x10 != 0 && name.eq_ignore_ascii_case(&header_name)),
            "unexpected header field {name:?}"
        );
    }
}
