//! The connection's timers, named, in one small table (as quinn-proto keeps
//! its own): what the connection waits for decides which ones run, and
//! `poll_timeout` is simply the earliest of them.

use crate::time::Instant;

/// Something the connection waits for, against a deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// A silent plaintext connection: time to ask the host for a port probe.
    PortProbe,
    /// Port 465 still silent: the TLS port mix-up is named even without a
    /// probe's answer (for hosts that do not run probes).
    PortGuess,
    /// The host opening the TCP connection.
    Connect,
    /// The host's TLS handshake (implicit TLS, or after STARTTLS).
    Handshake,
    /// The reply at the head of the queue of awaited replies.
    Reply,
    /// The host fetching a fresh OAuth2 token after the server refused one.
    Token,
}

impl Timer {
    /// Every timer, in the order expired ones are handled: the probe's
    /// evidence first (it names the cause of a silence better than a
    /// time-out would), then the waits for the host, then the server.
    pub(super) const ALL: [Timer; 6] = [
        Timer::PortProbe,
        Timer::PortGuess,
        Timer::Connect,
        Timer::Handshake,
        Timer::Reply,
        Timer::Token,
    ];
}

/// When each timer fires; `None` when it is not running.
#[derive(Debug, Default, Clone)]
pub(super) struct Timers([Option<Instant>; Timer::ALL.len()]);

impl Timers {
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    pub(super) fn stop(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }

    pub(super) fn stop_all(&mut self) {
        *self = Timers::default();
    }

    /// The earliest deadline of a running timer.
    pub(super) fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// Stops and returns the first timer (in [`Timer::ALL`] order) whose
    /// deadline has passed at `now`.
    pub(super) fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL
            .into_iter()
            .find(|t| self.0[*t as usize].is_some_and(|at| now >= at))?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expired_timers_come_out_in_order_once() {
        let mut timers = Timers::default();
        assert_eq!(timers.next(), None);
        timers.set(Timer::Reply, Instant::from_millis(10));
        timers.set(Timer::PortGuess, Instant::from_millis(30));
        timers.set(Timer::PortProbe, Instant::from_millis(20));
        assert_eq!(timers.next(), Some(Instant::from_millis(10)));
        assert_eq!(timers.take_expired(Instant::from_millis(5)), None);
        let now = Instant::from_millis(30);
        assert_eq!(timers.take_expired(now), Some(Timer::PortProbe));
        assert_eq!(timers.take_expired(now), Some(Timer::PortGuess));
        assert_eq!(timers.take_expired(now), Some(Timer::Reply));
        assert_eq!(timers.take_expired(now), None);
        assert_eq!(timers.next(), None);
    }
}
