//! Timestamps as the API writes them: RFC 3339 in UTC with microseconds,
//! `2026-11-29T10:00:00.123456Z` (and the log lines, with milliseconds).
//!
//! A page of jobs writes hundreds of them, so they are written field by field rather than
//! through chrono's general formatter, which interprets a format description on each call
//! (a visible share of a page's cost in a profile). The result is the same as
//! `to_rfc3339_opts(SecondsFormat::Micros, true)`, which the tests check.

use chrono::{DateTime, Datelike, NaiveDateTime, Timelike, Utc};

/// `at` as `YYYY-MM-DDTHH:MM:SS.ffffffZ` (years outside 0..=9999 fall back to chrono).
pub fn rfc3339_micros(at: DateTime<Utc>) -> String {
    rfc3339(at, Fraction::Micros)
}

/// [`rfc3339_micros`], appended to `out` (no allocation on the common path: a page of
/// jobs writes hundreds of timestamps).
pub fn push_rfc3339_micros(out: &mut Vec<u8>, at: DateTime<Utc>) {
    match digits(at, Fraction::Micros) {
        Some((bytes, len)) => out.extend_from_slice(&bytes[..len]),
        None => out.extend_from_slice(rfc3339_micros(at).as_bytes()),
    }
}

/// `at` as `YYYY-MM-DDTHH:MM:SS.fffZ`, the same as `to_rfc3339_opts(SecondsFormat::Millis,
/// true)`: the log lines' timestamps.
pub fn rfc3339_millis(at: DateTime<Utc>) -> String {
    rfc3339(at, Fraction::Millis)
}

/// How many digits of the second's fraction are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fraction {
    /// Three.
    Millis,
    /// Six.
    Micros,
    /// As few of 0, 3, 6 or 9 as hold it exactly (chrono's `%.f`, no dot for none).
    Shortest,
}

fn rfc3339(at: DateTime<Utc>, fraction: Fraction) -> String {
    match digits(at, fraction) {
        Some((bytes, len)) => String::from_utf8_lossy(&bytes[..len]).into_owned(),
        None => {
            let format = match fraction {
                Fraction::Millis => chrono::SecondsFormat::Millis,
                Fraction::Micros => chrono::SecondsFormat::Micros,
                Fraction::Shortest => chrono::SecondsFormat::AutoSi,
            };
            at.to_rfc3339_opts(format, true)
        }
    }
}

/// The ASCII bytes of `at` in RFC 3339 (UTC, `Z`) and how many of them there are; `None`
/// for what chrono writes itself (years outside 0..=9999, a leap second).
fn digits(at: DateTime<Utc>, fraction: Fraction) -> Option<([u8; 30], usize)> {
    // The fields of the naive UTC value: on a `DateTime<Utc>` each accessor would first
    // compute the local time again.
    let (mut out, end) = naive_digits(at.naive_utc(), b'T', fraction)?;
    out[end] = b'Z';
    Some((out, end + 1))
}

/// `at` as `YYYY-MM-DD<separator>HH:MM:SS` and its fraction, written digit by digit: the
/// ASCII bytes and how many of them there are (one byte more is left free). `None` for
/// years outside 0..=9999 and leap seconds, which chrono writes otherwise.
pub fn naive_digits(
    at: NaiveDateTime,
    separator: u8,
    fraction: Fraction,
) -> Option<([u8; 30], usize)> {
    let year = at.year();
    let nanos = at.nanosecond();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    let (digits, value) = match fraction {
        Fraction::Millis => (3, nanos / 1_000_000),
        Fraction::Micros => (6, nanos / 1_000),
        Fraction::Shortest if nanos == 0 => (0, 0),
        Fraction::Shortest if nanos % 1_000_000 == 0 => (3, nanos / 1_000_000),
        Fraction::Shortest if nanos % 1_000 == 0 => (6, nanos / 1_000),
        Fraction::Shortest => (9, nanos),
    };
    let mut out = [0u8; 30];
    let mut put = |at: usize, value: u32, width: usize| {
        let mut value = value;
        for i in (0..width).rev() {
            out[at + i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, year.unsigned_abs(), 4);
    put(5, at.month(), 2);
    put(8, at.day(), 2);
    put(11, at.hour(), 2);
    put(14, at.minute(), 2);
    put(17, at.second(), 2);
    put(20, value, digits);
    for (i, c) in [(4, b'-'), (7, b'-'), (10, separator), (13, b':'), (16, b':'), (19, b'.')] {
        out[i] = c;
    }
    // No fraction, no dot.
    Some((out, if digits == 0 { 19 } else { 20 + digits }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_read_exactly_as_chrono_writes_them_with_microseconds() {
        let mut at = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
        // A walk over dates and sub-second parts, with odd steps to hit every digit.
        for i in 0..20_000i64 {
            at += chrono::TimeDelta::microseconds(i * 1_234_567_891 + 13);
            assert_eq!(
                rfc3339_micros(at),
                at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                "{at:?}"
            );
        }
        let far = Utc.with_ymd_and_hms(12345, 6, 7, 8, 9, 10).unwrap();
        assert_eq!(rfc3339_micros(far), far.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
        for at in [at, far] {
            let mut pushed = b"x".to_vec();
            push_rfc3339_micros(&mut pushed, at);
            assert_eq!(pushed, format!("x{}", rfc3339_micros(at)).into_bytes());
        }
    }

    #[test]
    fn log_timestamps_read_exactly_as_chrono_writes_them_with_milliseconds() {
        let mut at = Utc.with_ymd_and_hms(1970, 1, 1, 0, 0, 0).unwrap();
        for i in 0..20_000i64 {
            at += chrono::TimeDelta::microseconds(i * 1_234_567_891 + 13);
            let chrono = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            assert_eq!(rfc3339_millis(at), chrono, "{at:?}");
        }
    }
}
