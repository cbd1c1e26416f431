//! Draining the bytes an engine has ready for the socket: whole (one write
//! per flight) or into a buffer the host reuses from write to write.
//! Shared by [`Connection`](crate::Connection) and the in-engine TLS layer.

/// Everything ready, as one write; `None` when there is nothing.
pub(crate) fn take_all(out: &mut Vec<u8>) -> Option<Vec<u8>> {
    if out.is_empty() {
        None
    } else {
        Some(std::mem::take(out))
    }
}

/// Moves up to `buf.len()` ready bytes into `buf`; returns how many.
pub(crate) fn take_into(out: &mut Vec<u8>, buf: &mut [u8]) -> usize {
    let n = buf.len().min(out.len());
    buf[..n].copy_from_slice(&out[..n]);
    out.drain(..n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drains_whole_or_in_pieces() {
        let mut out = b"EHLO x\r\n".to_vec();
        let mut buf = [0u8; 3];
        assert_eq!(take_into(&mut out, &mut buf), 3);
        assert_eq!(&buf, b"EHL");
        assert_eq!(take_all(&mut out).unwrap(), b"O x\r\n");
        assert_eq!(take_all(&mut out), None);
        assert_eq!(take_into(&mut out, &mut buf), 0);
    }
}
