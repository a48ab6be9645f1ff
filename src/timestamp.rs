//! UTC instants and calendar dates, parsed and printed as RFC 3339.
//!
//! Inside the engine an instant is a plain count of seconds since the Unix
//! epoch, so comparisons and bit-sliced indexes work on integers. Parsing and
//! formatting are delegated to the `time` crate.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

/// Seconds in one day.
pub const DAY: i64 = 86_400;

/// An instant in UTC, with one-second resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A time or date that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} {text:?}: expected {expected}")]
pub struct TimeParseError {
    what: &'static str,
    text: String,
    expected: &'static str,
}

impl Timestamp {
    /// The instant `secs` seconds after 1970-01-01T00:00:00Z.
    pub const fn from_unix(secs: i64) -> Self {
        Timestamp(secs)
    }

    /// The earliest instant taken from outside: 0000-01-01T00:00:00Z.
    pub const MIN: Timestamp = Timestamp(-62_167_219_200);
    /// The latest instant taken from outside: 9999-12-31T23:59:59Z.
    pub const MAX: Timestamp = Timestamp(253_402_300_799);

    /// The instant `secs` seconds after the epoch, if it lies in the years
    /// 0000 to 9999 (what RFC 3339 can write); otherwise an error naming it.
    /// Use this for any time a caller gives as a number.
    pub fn checked_from_unix(secs: i64) -> Result<Self, TimeParseError> {
        if (Self::MIN.0..=Self::MAX.0).contains(&secs) {
            Ok(Timestamp(secs))
        } else {
            Err(TimeParseError {
                what: "time",
                text: secs.to_string(),
                expected: "Unix seconds within the years 0000 to 9999",
            })
        }
    }

    /// Seconds since the Unix epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// The current time, read from the system clock.
    pub fn now() -> Self {
        Timestamp(OffsetDateTime::now_utc().unix_timestamp())
    }

    /// Parses an RFC 3339 time such as `2026-03-01T10:00:00Z` or
    /// `2026-03-01T11:00:00+01:00`; fractions of a second are dropped.
    pub fn parse(text: &str) -> Result<Self, TimeParseError> {
        OffsetDateTime::parse(text.trim(), &Rfc3339)
            .map(|t| Timestamp(t.unix_timestamp()))
            .map_err(|_| TimeParseError {
                what: "time",
                text: text.to_string(),
                expected: "an RFC 3339 time such as 2026-03-01T10:00:00Z",
            })
    }

    /// This instant moved by `secs` seconds, saturating at the ends of `i64`.
    pub const fn add_secs(self, secs: i64) -> Self {
        Timestamp(self.0.saturating_add(secs))
    }

    /// The UTC calendar date of this instant.
    pub fn date(self) -> Date {
        match OffsetDateTime::from_unix_timestamp(self.0) {
            Ok(t) => t.date(),
            Err(_) if self.0 < 0 => Date::MIN,
            Err(_) => Date::MAX,
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match OffsetDateTime::from_unix_timestamp(self.0)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
        {
            Some(s) => f.write_str(&s),
            None => write!(f, "@{}", self.0),
        }
    }
}

impl FromStr for Timestamp {
    type Err = TimeParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Timestamp::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Parses a calendar date in the form `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, TimeParseError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(text.trim(), &fmt).map_err(|_| TimeParseError {
        what: "date",
        text: text.to_string(),
        expected: "a date in the form YYYY-MM-DD",
    })
}

/// Formats a calendar date as `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Whole years of age on `on` for someone born on `birth`; 0 if `on` is
/// before `birth`.
pub fn age_on(birth: Date, on: Date) -> u32 {
    let mut years = on.year() - birth.year();
    if (u8::from(on.month()), on.day()) < (u8::from(birth.month()), birth.day()) {
        years -= 1;
    }
    years.max(0) as u32
}

/// The first instant (UTC midnight) at which someone born on `birth` is
/// `years` old. A 29 February birthday counts from 1 March in common years.
pub fn birthday_instant(birth: Date, years: u32) -> Timestamp {
    let year = birth.year().saturating_add(years as i32);
    let date = Date::from_calendar_date(year, birth.month(), birth.day())
        .or_else(|_| Date::from_calendar_date(year, time::Month::March, 1))
        .unwrap_or(Date::MAX);
    Timestamp(date.midnight().assume_utc().unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_times_outside_years_0000_to_9999_are_refused() {
        assert_eq!(Timestamp::MIN.to_string(), "0000-01-01T00:00:00Z");
        assert_eq!(Timestamp::MAX.to_string(), "9999-12-31T23:59:59Z");
        assert!(Timestamp::checked_from_unix(Timestamp::MIN.unix()).is_ok());
        assert!(Timestamp::checked_from_unix(Timestamp::MAX.unix()).is_ok());
        assert!(Timestamp::checked_from_unix(Timestamp::MIN.unix() - 1).is_err());
        let e = Timestamp::checked_from_unix(i64::MAX)
            .unwrap_err()
            .to_string();
        assert!(e.contains("years 0000 to 9999"), "{e}");
    }

    #[test]
    fn rfc3339_round_trip_and_offsets() {
        let t = Timestamp::parse("2026-03-01T10:00:00Z").unwrap();
        assert_eq!(t.unix(), 1_772_359_200);
        assert_eq!(t.to_string(), "2026-03-01T10:00:00Z");
        let u = Timestamp::parse("2026-03-01T11:00:00+01:00").unwrap();
        assert_eq!(t, u);
        assert!(Timestamp::parse("2026-03-01").is_err());
        assert!(Timestamp::parse("yesterday").is_err());
    }

    #[test]
    fn ages_and_birthdays() {
        let b = parse_date("2010-06-15").unwrap();
        assert_eq!(age_on(b, parse_date("2026-06-14").unwrap()), 15);
        assert_eq!(age_on(b, parse_date("2026-06-15").unwrap()), 16);
        assert_eq!(age_on(b, parse_date("2000-01-01").unwrap()), 0);
        let t = birthday_instant(b, 16);
        assert_eq!(t.to_string(), "2026-06-15T00:00:00Z");
        let leap = parse_date("2008-02-29").unwrap();
        assert_eq!(
            birthday_instant(leap, 1).to_string(),
            "2009-03-01T00:00:00Z"
        );
        assert!(parse_date("2026-02-30").is_err());
    }
}
