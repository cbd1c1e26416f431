//! Scripted-server tests of the connection live in tests/; this keeps unit-level checks.

use super::Connection;
use crate::config::Config;
use crate::time::Instant;

#[test]
fn poll_transmit_into_moves_the_same_bytes_in_pieces() {
    let mut conn = Connection::new(Config::new("mx.example.com", 25), Instant::from_millis(0)).expect("valid config");
    conn.connected(Instant::from_millis(0));
    conn.receive(b"220 mx.example.com ESMTP\r\n", Instant::from_millis(1));
    let expected = conn.out.clone();
    assert!(!expected.is_empty(), "EHLO is due");
    assert_eq!(conn.transmit_len(), expected.len());
    let mut buf = [0u8; 4];
    let mut moved = Vec::new();
    loop {
        let n = conn.poll_transmit_into(&mut buf);
        if n == 0 {
            break;
        }
        moved.extend_from_slice(&buf[..n]);
    }
    assert_eq!(moved, expected);
    assert_eq!(conn.transmit_len(), 0);
    assert_eq!(conn.poll_transmit(), None);
}
