//! The `Date:` header (RFC 5322 §3.3) from a time the caller passes in.
//!
//! The engine never reads a clock, so the time arrives as Unix milliseconds
//! (what `Date.now()` returns in JavaScript) and is always written in UTC
//! with the `+0000` zone: the receiver converts to local time anyway, and
//! UTC needs no time-zone database.

use crate::error::{Phase, SmtpError};

/// 9999-12-31T23:59:59.999Z: RFC 5322 years have four digits.
const MAX_UNIX_MS: i64 = 253_402_300_799_999;

const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `Thu, 01 Jan 1970 00:00:00 +0000` for `unix_ms` (milliseconds are dropped).
pub fn format_date(unix_ms: i64) -> Result<String, SmtpError> {
    if !(0..=MAX_UNIX_MS).contains(&unix_ms) {
        return Err(SmtpError::input(
            Phase::Data,
            format!("the message time {unix_ms} is outside 1970..9999 and cannot be written as a Date header."),
        )
        .with_hint("pass the current time as milliseconds since 1970-01-01 UTC (Date.now() in JavaScript)."));
    }
    let seconds = unix_ms / 1000;
    let days = seconds / 86_400;
    let second_of_day = seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday, the first entry of WEEKDAYS.
    let weekday = WEEKDAYS[(days % 7) as usize];
    let month_name = MONTHS[(month - 1) as usize];
    Ok(format!(
        "{weekday}, {day:02} {month_name} {year} {:02}:{:02}:{:02} +0000",
        second_of_day / 3600,
        second_of_day / 60 % 60,
        second_of_day % 60
    ))
}

/// (year, month 1..=12, day 1..=31) for a count of days since 1970-01-01,
/// which must not be negative. Howard Hinnant's `civil_from_days`: it counts
/// in 400-year eras starting on March 1st, so the leap day is the last day
/// of its year and needs no special case.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468; // days from 0000-03-01 to 1970-01-01
    let era = shifted / 146_097;
    let day_of_era = shifted - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn formats_the_epoch() {
        assert_eq!(format_date(0).unwrap(), "Thu, 01 Jan 1970 00:00:00 +0000");
    }

    #[test]
    fn formats_known_instants() {
        // Values checked with `date -u -d @SECONDS -R`.
        let cases = [
            (951_782_400_000, "Tue, 29 Feb 2000 00:00:00 +0000"),
            (1_709_251_199_999, "Thu, 29 Feb 2024 23:59:59 +0000"),
            (1_735_689_600_000, "Wed, 01 Jan 2025 00:00:00 +0000"),
            (4_107_542_400_000, "Mon, 01 Mar 2100 00:00:00 +0000"),
            (1_234_567_890_123, "Fri, 13 Feb 2009 23:31:30 +0000"),
            (MAX_UNIX_MS, "Fri, 31 Dec 9999 23:59:59 +0000"),
        ];
        for (ms, expected) in cases {
            assert_eq!(format_date(ms).unwrap(), expected, "{ms}");
        }
    }

    #[test]
    fn refuses_times_it_cannot_write() {
        for ms in [-1, MAX_UNIX_MS + 1, i64::MIN, i64::MAX] {
            let err = format_date(ms).unwrap_err();
            assert_eq!(err.code, ErrorCode::Input);
            assert!(err.hint.unwrap().contains("Date.now()"));
        }
    }
}
