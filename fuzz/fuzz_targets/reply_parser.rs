//! The reply parser against arbitrary server bytes.
//!
//! Input layout: `[line_len, lines, reply_len, split seed (4 bytes)] ++ server bytes`.
//! The first three bytes choose the `ReplyLimits` (0xFF: the default for
//! that limit), so small limits are reachable; the seed chooses where the
//! bytes are cut before being fed in.
//!
//! Invariants:
//! - no panic, and every call makes progress;
//! - any split gives the same replies as feeding everything in one call
//!   (and the same error class: a structural error stays structural, a
//!   size error stays a size error, the exact size error may differ
//!   because the checks run on partial lines);
//! - no reply exceeds the limits: line count, line length, reply length;
//! - reply text carries no control character but TAB and no bidi override.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wasmtp::reply::{Reply, ReplyError, ReplyLimits, ReplyParser};

const HEADER: usize = 7;

fuzz_target!(|data: &[u8]| {
    if data.len() < HEADER {
        return;
    }
    let defaults = ReplyLimits::default();
    let limits = ReplyLimits {
        max_line_len: if data[0] == 0xFF { defaults.max_line_len } else { 6 + usize::from(data[0]) * 4 },
        max_lines: if data[1] == 0xFF { defaults.max_lines } else { 1 + usize::from(data[1] % 64) },
        max_reply_len: if data[2] == 0xFF { defaults.max_reply_len } else { 6 + usize::from(data[2]) * 16 },
    };
    let seed = u32::from_le_bytes([data[3], data[4], data[5], data[6]]);
    let input = &data[HEADER..];

    let whole = feed(limits, &[input]);
    check_limits(limits, &whole.replies);

    let chunks = split(input, seed);
    let pieces = feed(limits, &chunks);
    check_limits(limits, &pieces.replies);

    assert_eq!(whole.replies, pieces.replies, "replies differ between whole and split feeding");
    match (&whole.error, &pieces.error) {
        (None, None) => assert_eq!(whole.partial, pieces.partial, "partial state differs"),
        (Some(a), Some(b)) => assert_eq!(
            class(a),
            class(b),
            "error differs between whole and split feeding: {a:?} vs {b:?}"
        ),
        (a, b) => panic!("one feeding failed and the other did not: whole {a:?}, split {b:?}"),
    }
});

struct Outcome {
    replies: Vec<Reply>,
    error: Option<ReplyError>,
    partial: bool,
}

fn feed(limits: ReplyLimits, chunks: &[&[u8]]) -> Outcome {
    let mut parser = ReplyParser::new(limits);
    let mut replies = Vec::new();
    for chunk in chunks {
        let mut rest = *chunk;
        while !rest.is_empty() {
            match parser.parse(rest) {
                Err(error) => return Outcome { replies, error: Some(error), partial: true },
                Ok((consumed, reply)) => {
                    assert!(consumed <= rest.len(), "consumed {consumed} of {} bytes", rest.len());
                    assert!(consumed > 0, "parse made no progress");
                    if reply.is_none() {
                        assert_eq!(consumed, rest.len(), "no reply but bytes left unconsumed");
                    }
                    replies.extend(reply);
                    rest = &rest[consumed..];
                }
            }
        }
    }
    Outcome { replies, error: None, partial: parser.has_partial() }
}

/// 0: structural (detected at a line end), 1: a size limit (detected as bytes arrive).
fn class(error: &ReplyError) -> u8 {
    match error {
        ReplyError::Malformed { .. } | ReplyError::CodeMismatch { .. } | ReplyError::TooManyLines { .. } => 0,
        ReplyError::LineTooLong { .. } | ReplyError::ReplyTooLong { .. } => 1,
    }
}

fn check_limits(limits: ReplyLimits, replies: &[Reply]) {
    for reply in replies {
        assert!((200..=599).contains(&reply.code), "code {} out of range", reply.code);
        assert!(!reply.lines.is_empty(), "a reply without lines");
        assert!(
            reply.lines.len() <= limits.max_lines,
            "{} lines, limit {}",
            reply.lines.len(),
            limits.max_lines
        );
        let mut total = 0;
        for line in &reply.lines {
            // Server text is shown anywhere: no control character but TAB,
            // no bidirectional override (they come escaped as \r, \xNN, \u{N}).
            assert!(
                !line.chars().any(|c| (c.is_control() && c != '\t')
                    || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
                "an unescaped control or bidi character in {line:?}"
            );
            // A lower bound of the line's size on the wire: the code, the
            // separator when there is text, and one byte per character or
            // escape sequence (an invalid byte becomes one U+FFFD). Plus CRLF.
            let wire = 3 + if line.is_empty() { 0 } else { 1 + wire_len_lower_bound(line) };
            assert!(
                wire + 2 <= limits.max_line_len,
                "a line of {wire} bytes + CRLF, limit {}",
                limits.max_line_len
            );
            assert!(!line.contains('\n'), "a line feed inside a reply line");
            total += wire + 2;
        }
        // The last line's line end is not counted by the parser (at most
        // "\r\n" beyond the limit); everything before it is.
        assert!(
            total <= limits.max_reply_len + 2,
            "a reply of {total} bytes, limit {}",
            limits.max_reply_len
        );
    }
}

/// Characters of `text`, counting each escape the parser writes (`\r`,
/// `\xNN`, `\u{N...}`) as one: every one stands for at least one byte on
/// the wire, and a server's own backslashes only make the bound looser.
fn wire_len_lower_bound(text: &str) -> usize {
    let b = text.as_bytes();
    let (mut i, mut n) = (0, 0);
    while i < b.len() {
        n += 1;
        if b[i] == b'\\' {
            match b.get(i + 1) {
                Some(b'r') => {
                    i += 2;
                    continue;
                }
                Some(b'x') if b.len() >= i + 4 && b[i + 2..i + 4].iter().all(u8::is_ascii_hexdigit) => {
                    i += 4;
                    continue;
                }
                Some(b'u') if b.get(i + 2) == Some(&b'{') => {
                    if let Some(end) = b[i..].iter().position(|&c| c == b'}') {
                        i += end + 1;
                        continue;
                    }
                }
                _ => {}
            }
        }
        // One character (UTF-8 continuation bytes skipped).
        i += 1;
        while i < b.len() && (b[i] & 0xC0) == 0x80 {
            i += 1;
        }
    }
    n
}

/// Cuts `input` at points chosen by a small PRNG seeded from the input.
fn split(input: &[u8], seed: u32) -> Vec<&[u8]> {
    let mut state = seed | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let mut chunks = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let r = next();
        let len = match r % 4 {
            0 => 1,
            1 => 1 + (r >> 8) as usize % 8,
            2 => 1 + (r >> 8) as usize % 128,
            _ => 1 + (r >> 8) as usize % 2048,
        }
        .min(rest.len());
        chunks.push(&rest[..len]);
        rest = &rest[len..];
    }
    chunks
}
