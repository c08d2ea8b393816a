//! [`Stamp`]: a job row's timestamp, read quickly from SQLite.
//!
//! SQLite keeps timestamps as text (`2026-11-29 10:00:00.123456`), and diesel reads each
//! one by trying a list of chrono format descriptions in turn: with five timestamps a job,
//! that was an eighth of the CPU of a page of 100 jobs. A stamp reads the form diesel itself
//! writes directly, digit by digit, and leaves anything else to diesel. It is written, and
//! read from PostgreSQL, exactly as a `NaiveDateTime`. On SQLite it is also written digit by
//! digit, the text diesel writes (`%F %T%.f`): chrono interprets that format string for
//! every value, 4% of the expiry sweep's CPU, where each expired job binds five stamps.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::expression::AsExpression;
use diesel::pg::Pg;
use diesel::serialize::{self, IsNull, Output, ToSql};
use diesel::sql_types::Timestamp;
use diesel::sqlite::Sqlite;
use jobs_domain::timestamp;

use crate::db::MultiBackend;

/// A timestamp column of a job row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, FromSqlRow, AsExpression)]
#[diesel(sql_type = Timestamp)]
pub(crate) struct Stamp(pub NaiveDateTime);

/// `YYYY-MM-DD HH:MM:SS` with an optional fraction of 1 to 9 digits (`T` also separates).
fn parse(text: &str) -> Option<NaiveDateTime> {
    let b = text.as_bytes();
    let fixed = b.len() >= 19
        && b[4] == b'-'
        && b[7] == b'-'
        && (b[10] == b' ' || b[10] == b'T')
        && b[13] == b':'
        && b[16] == b':';
    if !fixed {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<u32> {
        b[from..to]
            .iter()
            .try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0')))
    };
    let date =
        NaiveDate::from_ymd_opt(i32::try_from(number(0, 4)?).ok()?, number(5, 7)?, number(8, 10)?)?;
    let nanos = match b.len() {
        19 => 0,
        21..=29 if b[19] == b'.' => number(20, b.len())? * 10u32.pow(29 - b.len() as u32),
        _ => return None,
    };
    let time =
        NaiveTime::from_hms_nano_opt(number(11, 13)?, number(14, 16)?, number(17, 19)?, nanos)?;
    Some(NaiveDateTime::new(date, time))
}

impl FromSql<Timestamp, Sqlite> for Stamp {
    fn from_sql(
        mut value: <Sqlite as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        if let Some(at) = parse(value.read_text()) {
            return Ok(Stamp(at));
        }
        <NaiveDateTime as FromSql<Timestamp, Sqlite>>::from_sql(value).map(Stamp)
    }
}

impl FromSql<Timestamp, Pg> for Stamp {
    fn from_sql(
        value: <Pg as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        <NaiveDateTime as FromSql<Timestamp, Pg>>::from_sql(value).map(Stamp)
    }
}

impl FromSql<Timestamp, MultiBackend> for Stamp {
    fn from_sql(
        value: <MultiBackend as diesel::backend::Backend>::RawValue<'_>,
    ) -> deserialize::Result<Self> {
        value.from_sql::<Stamp, Timestamp>()
    }
}

/// What diesel writes for `at` on SQLite (`%F %T%.f`: the fraction has 0, 3, 6 or 9 digits,
/// as few as hold it), for years 0 to 9999; `None` for others and for leap seconds.
fn format(at: &NaiveDateTime) -> Option<String> {
    let (bytes, len) = timestamp::naive_digits(*at, b' ', timestamp::Fraction::Shortest)?;
    Some(bytes[..len].iter().map(|&b| char::from(b)).collect())
}

impl ToSql<Timestamp, Sqlite> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Sqlite>) -> serialize::Result {
        match format(&self.0) {
            Some(text) => {
                out.set_value(text);
                Ok(IsNull::No)
            }
            None => <NaiveDateTime as ToSql<Timestamp, Sqlite>>::to_sql(&self.0, out),
        }
    }
}

impl ToSql<Timestamp, MultiBackend> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, MultiBackend>) -> serialize::Result {
        out.set_value((Timestamp, self));
        Ok(IsNull::No)
    }
}

impl ToSql<Timestamp, Pg> for Stamp {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        <NaiveDateTime as ToSql<Timestamp, Pg>>::to_sql(&self.0, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_written_as_diesel_writes_them() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 9).unwrap();
        let mut checked = 0;
        for (h, m, s) in [(0, 0, 0), (9, 5, 7), (23, 59, 59)] {
            for nanos in [0, 1, 5_000, 120_000, 999_999_999, 100_000_000, 123_000_000, 123_456_000]
            {
                let at = day.and_hms_nano_opt(h, m, s, nanos).unwrap();
                assert_eq!(format(&at).unwrap(), at.format("%F %T%.f").to_string());
                checked += 1;
            }
        }
        assert_eq!(checked, 24);
        for year in [0, 7, 1969, 9999] {
            let at = NaiveDate::from_ymd_opt(year, 12, 31).unwrap().and_hms_opt(1, 2, 3).unwrap();
            assert_eq!(format(&at).unwrap(), at.format("%F %T%.f").to_string());
        }
        // Left to chrono: years it writes with a sign, and leap seconds.
        let far = NaiveDate::from_ymd_opt(10000, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        let before = NaiveDate::from_ymd_opt(-1, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        let leap = day.and_hms_nano_opt(23, 59, 59, 1_500_000_000).unwrap();
        assert_eq!([format(&far), format(&before), format(&leap)], [None, None, None]);
    }

    #[test]
    fn stored_timestamps_read_the_same_as_diesel_reads_them() {
        let base = NaiveDate::from_ymd_opt(2026, 11, 29).unwrap().and_hms_opt(23, 59, 58).unwrap();
        for nanos in [0, 100_000_000, 123_000_000, 123_456_000, 123_456_789, 5_000] {
            let at = base + chrono::TimeDelta::nanoseconds(nanos);
            // The form diesel writes (`%F %T%.f`), and the RFC 3339 separator.
            let written = at.format("%F %T%.f").to_string();
            assert_eq!(parse(&written), Some(at), "{written}");
            assert_eq!(parse(&written.replacen(' ', "T", 1)), Some(at), "{written}");
        }
        for odd in [
            "2026-11-29",
            "2026-13-01 00:00:00",
            "2026-11-29 24:00:00",
            "2026-11-29 10:00:00.",
            "2026-11-29 10:00:00Z",
            "x026-11-29 10:00:00",
            "2026-11-29 10:00:00.1234567890",
        ] {
            assert_eq!(parse(odd), None, "{odd}");
        }
    }
}
