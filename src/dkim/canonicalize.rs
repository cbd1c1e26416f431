//! DKIM canonicalization (RFC 6376 §3.4): the "simple" and "relaxed"
//! forms of header fields and of the body.
//!
//! The body canonicalizer streams: it is fed the body (line ends already
//! CRLF) in chunks of any size and hands the canonical bytes to a sink, so a
//! 100 MB attachment is hashed without being held. Empty lines at the end of
//! the body are only known to be trailing at the end, so it keeps a count of
//! them instead of the lines themselves.

use memchr::memchr;

/// `simple` keeps the bytes as they are; `relaxed` tolerates the whitespace
/// and case changes that mail systems commonly make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Canonicalization {
    Simple,
    Relaxed,
}

impl Canonicalization {
    pub fn as_str(self) -> &'static str {
        match self {
            Canonicalization::Simple => "simple",
            Canonicalization::Relaxed => "relaxed",
        }
    }
}

fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// One header field in canonical form, CRLF included.
///
/// `field` is the whole field as it appears in the message: name, colon,
/// value and continuation lines, with its final CRLF.
pub fn header_field(canonicalization: Canonicalization, field: &[u8], out: &mut Vec<u8>) {
    match canonicalization {
        Canonicalization::Simple => out.extend_from_slice(field),
        Canonicalization::Relaxed => {
            relaxed_header(field, out);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Relaxed header canonicalization without the final CRLF: the name in
/// lower case with the whitespace before the colon removed, the value
/// unfolded, every run of whitespace made one space, none at either end.
pub fn relaxed_header(field: &[u8], out: &mut Vec<u8>) {
    let colon = field.iter().position(|&b| b == b':').unwrap_or(field.len());
    let name = &field[..colon];
    let name_end = name.iter().rposition(|&b| !is_wsp(b)).map_or(0, |i| i + 1);
    out.extend(name[..name_end].iter().map(u8::to_ascii_lowercase));
    out.push(b':');
    let value = field.get(colon + 1..).unwrap_or_default();
    let mut space = false;
    let mut started = false;
    for &b in value {
        match b {
            b'\r' | b'\n' => {}
            b' ' | b'\t' => space = started,
            _ => {
                if space {
                    out.push(b' ');
                }
                space = false;
                started = true;
                out.push(b);
            }
        }
    }
}

/// Canonicalizes a body fed in pieces; see the module documentation.
#[derive(Debug, Clone)]
pub struct BodyCanonicalizer {
    canonicalization: Canonicalization,
    /// Line ends seen but not written: they may end the body.
    pending_line_ends: u64,
    /// Relaxed: whitespace seen in the current line and not written.
    pending_space: bool,
    /// Some content byte was written.
    wrote_content: bool,
    /// The previous piece ended in CR (its LF comes next).
    after_cr: bool,
}

impl BodyCanonicalizer {
    pub fn new(canonicalization: Canonicalization) -> Self {
        BodyCanonicalizer {
            canonicalization,
            pending_line_ends: 0,
            pending_space: false,
            wrote_content: false,
            after_cr: false,
        }
    }

    /// Feeds body bytes whose line ends are CRLF.
    pub fn update(&mut self, mut data: &[u8], sink: &mut impl FnMut(&[u8])) {
        if data.is_empty() {
            return;
        }
        if self.after_cr && data.first() == Some(&b'\n') {
            data = &data[1..];
        }
        self.after_cr = false;
        while !data.is_empty() {
            let (line, ended) = match memchr(b'\r', data) {
                Some(cr) => {
                    let line = &data[..cr];
                    match data.get(cr + 1) {
                        Some(&b'\n') => data = &data[cr + 2..],
                        // A bare CR cannot occur after normalization; a
                        // CR ending this piece waits for its LF.
                        Some(_) => data = &data[cr + 1..],
                        None => {
                            self.after_cr = true;
                            data = &[];
                        }
                    }
                    (line, true)
                }
                None => (std::mem::take(&mut data), false),
            };
            self.line_content(line, sink);
            if ended {
                self.pending_space = false;
                self.pending_line_ends += 1;
            }
        }
    }

    /// Ends the body: what the canonical form ends with.
    pub fn finish(&mut self, sink: &mut impl FnMut(&[u8])) {
        match self.canonicalization {
            // Simple: trailing empty lines go, and the body ends in one CRLF
            // (an empty body is a single CRLF).
            Canonicalization::Simple => sink(b"\r\n"),
            // Relaxed: the same, but an empty body stays empty.
            Canonicalization::Relaxed if self.wrote_content => sink(b"\r\n"),
            Canonicalization::Relaxed => {}
        }
    }

    /// Some bytes of one line (no CR or LF in them).
    fn line_content(&mut self, line: &[u8], sink: &mut impl FnMut(&[u8])) {
        if line.is_empty() {
            return;
        }
        match self.canonicalization {
            Canonicalization::Simple => {
                self.flush_line_ends(sink);
                sink(line);
            }
            Canonicalization::Relaxed => {
                let mut rest = line;
                while let Some(start) = rest.iter().position(|&b| !is_wsp(b)) {
                    if start > 0 {
                        self.pending_space = true;
                    }
                    rest = &rest[start..];
                    let end = rest.iter().position(|&b| is_wsp(b)).unwrap_or(rest.len());
                    self.flush_line_ends(sink);
                    if self.pending_space {
                        sink(b" ");
                        self.pending_space = false;
                    }
                    sink(&rest[..end]);
                    rest = &rest[end..];
                }
                if !rest.is_empty() {
                    self.pending_space = true;
                }
            }
        }
    }

    fn flush_line_ends(&mut self, sink: &mut impl FnMut(&[u8])) {
        for _ in 0..self.pending_line_ends {
            sink(b"\r\n");
        }
        self.pending_line_ends = 0;
        self.wrote_content = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(canonicalization: Canonicalization, pieces: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut c = BodyCanonicalizer::new(canonicalization);
        let mut sink = |b: &[u8]| out.extend_from_slice(b);
        for piece in pieces {
            c.update(piece, &mut sink);
        }
        c.finish(&mut sink);
        out
    }

    #[test]
    fn rfc_6376_section_3_4_6_example() {
        let text: &[u8] = b" C \r\nD \t E\r\n\r\n\r\n";
        assert_eq!(body(Canonicalization::Relaxed, &[text]), b" C\r\nD E\r\n");
        assert_eq!(body(Canonicalization::Simple, &[text]), b" C \r\nD \t E\r\n");
        let mut header = Vec::new();
        header_field(Canonicalization::Relaxed, b"A: X\r\n", &mut header);
        header_field(Canonicalization::Relaxed, b"B : Y\t\r\n\tZ  \r\n", &mut header);
        assert_eq!(header, b"a:X\r\nb:Y Z\r\n");
    }

    #[test]
    fn empty_bodies() {
        assert_eq!(body(Canonicalization::Simple, &[]), b"\r\n");
        assert_eq!(body(Canonicalization::Simple, &[b"\r\n\r\n"]), b"\r\n");
        assert_eq!(body(Canonicalization::Relaxed, &[]), b"");
        assert_eq!(body(Canonicalization::Relaxed, &[b" \r\n\t\r\n"]), b"");
    }

    #[test]
    fn any_split_gives_the_same_output() {
        let text: &[u8] = b"a  b \t\r\n\r\n  c\r\n\r\nd\te \r\n \r\n\r\n";
        for canonicalization in [Canonicalization::Simple, Canonicalization::Relaxed] {
            let whole = body(canonicalization, &[text]);
            for at in 0..text.len() {
                for at2 in at..text.len() {
                    let split = body(canonicalization, &[&text[..at], &text[at..at2], &text[at2..]]);
                    assert_eq!(split, whole, "{canonicalization:?} split at {at},{at2}");
                }
            }
        }
        assert_eq!(
            body(Canonicalization::Relaxed, &[text]),
            b"a b\r\n\r\n c\r\n\r\nd e\r\n"
        );
    }
}
