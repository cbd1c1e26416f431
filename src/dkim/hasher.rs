//! The first pass over a message: keeps its header section, hashes its
//! body as it streams past, and counts its size.

use sha2::{Digest, Sha256};

use super::canonicalize::{BodyCanonicalizer, Canonicalization};
use crate::body::{BodyEncoder, Framing};
use crate::error::{Phase, SmtpError};

/// The largest header section a signed message may have. Headers are held
/// (they are hashed after the body, in the order the signature names
/// them); the body never is.
pub const MAX_HEADER_SECTION: usize = 256 * 1024;

/// Reads a message once, as it will be sent, for its signatures.
///
/// Feed it every byte of the message ([`update`](Self::update)), then
/// [`finish`](Self::finish). Line ends are normalised to CRLF first, exactly
/// as the engine does when it sends, so the hash is of what goes out.
#[derive(Debug, Clone)]
pub struct MessageHasher {
    normalizer: BodyEncoder,
    scratch: Vec<u8>,
    header: Vec<u8>,
    in_body: bool,
    simple: Option<(BodyCanonicalizer, Sha256)>,
    relaxed: Option<(BodyCanonicalizer, Sha256)>,
    size: u64,
}

/// A message read by [`MessageHasher`]: its header section and body hashes.
#[derive(Debug, Clone)]
pub struct HashedMessage {
    /// The header section, CRLF line ends, without the empty line after it.
    pub header: Vec<u8>,
    simple: Option<[u8; 32]>,
    relaxed: Option<[u8; 32]>,
    /// The message's size in octets as sent (line ends normalised).
    pub size: u64,
}

impl MessageHasher {
    /// A hasher for the body canonicalizations the signatures use.
    pub fn new(body_canonicalizations: &[Canonicalization]) -> Self {
        let wants = |c| {
            body_canonicalizations
                .contains(&c)
                .then(|| (BodyCanonicalizer::new(c), Sha256::new()))
        };
        MessageHasher {
            normalizer: BodyEncoder::with_line_limit(Framing::Bdat, None),
            scratch: Vec::new(),
            header: Vec::new(),
            in_body: false,
            simple: wants(Canonicalization::Simple),
            relaxed: wants(Canonicalization::Relaxed),
            size: 0,
        }
    }

    /// The next bytes of the message.
    pub fn update(&mut self, data: &[u8]) -> Result<(), SmtpError> {
        let mut normal = std::mem::take(&mut self.scratch);
        normal.clear();
        // Without a line limit the normaliser cannot fail.
        let _ = self.normalizer.encode(data, &mut normal);
        let result = self.take_normalized(&normal);
        self.scratch = normal;
        result
    }

    /// Ends the message and returns what the signatures need.
    pub fn finish(mut self) -> Result<HashedMessage, SmtpError> {
        let mut tail = Vec::new();
        let _ = self.normalizer.finish(&mut tail);
        self.take_normalized(&tail)?;
        if !self.in_body {
            // No empty line: the message is all header section.
            let end = self.header.len();
            self.split_header(end);
        }
        let digest = |hasher: Option<(BodyCanonicalizer, Sha256)>| {
            hasher.map(|(mut canonicalizer, mut sha)| {
                canonicalizer.finish(&mut |bytes| sha.update(bytes));
                sha.finalize().into()
            })
        };
        Ok(HashedMessage {
            header: self.header,
            simple: digest(self.simple),
            relaxed: digest(self.relaxed),
            size: self.size,
        })
    }

    fn take_normalized(&mut self, mut data: &[u8]) -> Result<(), SmtpError> {
        self.size += data.len() as u64;
        if !self.in_body {
            let searched_from = self.header.len().saturating_sub(3);
            self.header.extend_from_slice(data);
            let found = if self.header.starts_with(b"\r\n") {
                Some(0)
            } else {
                memchr::memmem::find(&self.header[searched_from..], b"\r\n\r\n").map(|at| searched_from + at + 2)
            };
            match found {
                Some(end) => {
                    // `end` is where the empty line starts; the body follows it.
                    let body_start = end + 2;
                    let body_in_this_piece = self.header.len() - body_start;
                    data = &data[data.len() - body_in_this_piece..];
                    self.split_header(end);
                }
                None if self.header.len() > MAX_HEADER_SECTION => {
                    return Err(SmtpError::input(
                        Phase::Data,
                        format!(
                            "the message's header section is larger than {MAX_HEADER_SECTION} bytes, too large to sign."
                        ),
                    )
                    .with_hint("check that the message has an empty line between its headers and its body."));
                }
                None => return Ok(()),
            }
        }
        for (canonicalizer, sha) in [&mut self.simple, &mut self.relaxed].into_iter().flatten() {
            canonicalizer.update(data, &mut |bytes| sha.update(bytes));
        }
        Ok(())
    }

    fn split_header(&mut self, end: usize) {
        self.header.truncate(end);
        self.in_body = true;
    }
}

impl HashedMessage {
    /// SHA-256 of the canonical body, when the hasher computed it.
    pub fn body_hash(&self, canonicalization: Canonicalization) -> Option<[u8; 32]> {
        match canonicalization {
            Canonicalization::Simple => self.simple,
            Canonicalization::Relaxed => self.relaxed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(pieces: &[&[u8]]) -> HashedMessage {
        let mut hasher = MessageHasher::new(&[Canonicalization::Simple, Canonicalization::Relaxed]);
        for piece in pieces {
            hasher.update(piece).unwrap();
        }
        hasher.finish().unwrap()
    }

    #[test]
    fn splits_the_header_section_wherever_the_pieces_end() {
        let message: &[u8] = b"From: a@b.example\nSubject: x\n\nbody  line \n\n";
        let whole = hash(&[message]);
        assert_eq!(whole.header, b"From: a@b.example\r\nSubject: x\r\n");
        assert_eq!(whole.size, message.len() as u64 + 5);
        let relaxed: [u8; 32] = Sha256::digest(b"body line\r\n").into();
        let simple: [u8; 32] = Sha256::digest(b"body  line \r\n").into();
        assert_eq!(whole.body_hash(Canonicalization::Relaxed), Some(relaxed));
        assert_eq!(whole.body_hash(Canonicalization::Simple), Some(simple));
        for at in 0..message.len() {
            let split = hash(&[&message[..at], &message[at..]]);
            assert_eq!(split.header, whole.header, "split at {at}");
            assert_eq!(
                split.body_hash(Canonicalization::Relaxed),
                Some(relaxed),
                "split at {at}"
            );
        }
    }

    #[test]
    fn a_message_without_a_body() {
        let message = hash(&[b"From: a@b.example\r\n"]);
        assert_eq!(message.header, b"From: a@b.example\r\n");
        let empty: [u8; 32] = Sha256::digest(b"").into();
        assert_eq!(message.body_hash(Canonicalization::Relaxed), Some(empty));
    }

    #[test]
    fn an_endless_header_section_is_refused() {
        let mut hasher = MessageHasher::new(&[Canonicalization::Relaxed]);
        let line = vec![b'x'; 1000];
        let mut result = Ok(());
        for _ in 0..300 {
            result = result.and_then(|_| hasher.update(&line));
        }
        assert!(result.unwrap_err().message.contains("header section"));
    }
}
