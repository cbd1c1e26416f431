//! Time as the engine sees it: a point and a span, passed in by the host.
//!
//! The engine never reads a clock (`std::time::Instant` panics on
//! `wasm32-unknown-unknown`), so hosts convert whatever clock they have
//! into milliseconds since an epoch of their choosing, as long as it is
//! monotonic for the life of one connection.

use core::ops::{Add, Sub};
pub use core::time::Duration;

/// A point in time, in milliseconds since a host-chosen epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The instant `millis` milliseconds after the host's epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis)
    }

    /// Milliseconds since the host's epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        let millis = u64::try_from(rhs.as_millis()).unwrap_or(u64::MAX);
        Instant(self.0.saturating_add(millis))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

/// A span as a person reads it in an error: `30 s`, `1500 ms`. Integer
/// arithmetic only: float formatting would add kilobytes to the wasm build.
pub fn describe(span: Duration) -> String {
    // u64 rather than as_millis()'s u128: formatting a u128 would pull
    // 128-bit division into the wasm build for no gain.
    let millis = u64::try_from(span.as_millis()).unwrap_or(u64::MAX);
    if millis % 1000 == 0 || millis >= 10_000 {
        format!("{} s", span.as_secs())
    } else {
        format!("{millis} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let t = Instant::from_millis(u64::MAX - 1);
        assert_eq!((t + Duration::from_secs(10)).as_millis(), u64::MAX);
        assert_eq!(Instant::from_millis(5) - Instant::from_millis(9), Duration::ZERO);
        assert_eq!(
            Instant::from_millis(9) - Instant::from_millis(5),
            Duration::from_millis(4)
        );
    }
}
