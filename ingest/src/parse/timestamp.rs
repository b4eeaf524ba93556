//! Hand-written timestamp parsing: RFC 3339 (strict for RFC 5424, lenient inside RFC 3164
//! lines), BSD `Mmm dd [yyyy] hh:mm:ss[.frac]`, year inference and civil → UTC conversion.
//!
//! jiff is only used to resolve a civil time in a non-fixed time zone; UTC and fixed offsets are
//! converted with integer arithmetic.

use jiff::tz::TimeZone;

use crate::event::Timestamp;

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// A wall-clock date and time without a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub nanos: u32,
}

/// An RFC 3339 timestamp as written: civil time plus the offset in seconds (`None` when the text
/// had no offset and the default zone applies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedRfc3339 {
    pub civil: Civil,
    pub offset_seconds: Option<i32>,
}

/// A BSD timestamp as written (year optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ParsedBsd {
    pub month: u8,
    pub day: u8,
    pub year: Option<i32>,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    pub nanos: u32,
}

fn digit(bytes: &[u8], index: usize) -> Option<u32> {
    let byte = *bytes.get(index)?;
    byte.is_ascii_digit().then(|| u32::from(byte - b'0'))
}

fn two_digits(bytes: &[u8], index: usize) -> Option<u8> {
    let value = digit(bytes, index)? * 10 + digit(bytes, index + 1)?;
    u8::try_from(value).ok()
}

fn four_digits(bytes: &[u8], index: usize) -> Option<i32> {
    let value = digit(bytes, index)? * 1000
        + digit(bytes, index + 1)? * 100
        + digit(bytes, index + 2)? * 10
        + digit(bytes, index + 3)?;
    i32::try_from(value).ok()
}

pub(crate) fn is_leap_year(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

pub(crate) fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap_year(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The UTC calendar year of a timestamp.
pub(crate) fn utc_year(ts: Timestamp) -> i32 {
    let days = ts.0.div_euclid(NANOS_PER_SECOND * SECONDS_PER_DAY);
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let year = year_of_era + era * 400 + i64::from(month_index >= 10);
    i32::try_from(year).unwrap_or(1970)
}

impl Civil {
    fn is_valid(&self) -> bool {
        (1..=12).contains(&self.month)
            && self.day >= 1
            && self.day <= days_in_month(self.year, self.month)
            && self.hour < 24
            && self.minute < 60
            && self.second < 61
            && self.nanos < 1_000_000_000
    }

    /// Nanoseconds since the epoch when this civil time is read at `offset_seconds` east of UTC.
    /// `None` if the result does not fit in an `i64`.
    pub fn to_timestamp_at_offset(self, offset_seconds: i32) -> Option<Timestamp> {
        let days = days_from_civil(self.year, self.month, self.day);
        let seconds = days * SECONDS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second.min(59))
            - i64::from(offset_seconds);
        let nanos = seconds
            .checked_mul(NANOS_PER_SECOND)?
            .checked_add(i64::from(self.nanos))?;
        Some(Timestamp(nanos))
    }

    /// Resolves this civil time in `tz` (earlier instant on a fold, later on a gap, as jiff's
    /// "compatible" strategy does).
    pub fn to_timestamp_in(self, tz: &TimeZone) -> Option<Timestamp> {
        if !self.is_valid() {
            return None;
        }
        if let Ok(offset) = tz.to_fixed_offset() {
            return self.to_timestamp_at_offset(offset.seconds());
        }
        let datetime = jiff::civil::DateTime::new(
            i16::try_from(self.year).ok()?,
            i8::try_from(self.month).ok()?,
            i8::try_from(self.day).ok()?,
            i8::try_from(self.hour).ok()?,
            i8::try_from(self.minute).ok()?,
            i8::try_from(self.second.min(59)).ok()?,
            i32::try_from(self.nanos).ok()?,
        )
        .ok()?;
        let instant = tz.to_ambiguous_timestamp(datetime).compatible().ok()?;
        Some(Timestamp::from_jiff(instant))
    }
}

/// Reads 1 to `max_digits` fraction digits at `index` (after the dot); returns nanoseconds and
/// the index after the digits.
fn fraction(bytes: &[u8], mut index: usize, max_digits: usize) -> Option<(u32, usize)> {
    let start = index;
    let mut nanos: u32 = 0;
    while let Some(value) = digit(bytes, index) {
        if index - start >= max_digits {
            return None;
        }
        nanos = nanos * 10 + value;
        index += 1;
    }
    let count = index - start;
    if count == 0 {
        return None;
    }
    for _ in count..9 {
        nanos *= 10;
    }
    Some((nanos, index))
}

/// Parses an RFC 3339 timestamp at the start of `bytes`; returns it and the bytes consumed.
///
/// `strict` (RFC 5424 `TIMESTAMP`): uppercase `T`/`Z`, 1 to 6 fraction digits, offset required,
/// seconds 00–59. Lenient (inside RFC 3164 lines): `T`, `t` or space, up to 9 fraction digits,
/// optional offset (`Z`, `±hh:mm`, `±hhmm`, `±hh`).
pub(crate) fn parse_rfc3339(bytes: &[u8], strict: bool) -> Option<(ParsedRfc3339, usize)> {
    let year = four_digits(bytes, 0)?;
    if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
        return None;
    }
    let month = two_digits(bytes, 5)?;
    let day = two_digits(bytes, 8)?;
    match bytes.get(10) {
        Some(b'T') => {}
        Some(b't' | b' ') if !strict => {}
        _ => return None,
    }
    let hour = two_digits(bytes, 11)?;
    if bytes.get(13) != Some(&b':') || bytes.get(16) != Some(&b':') {
        return None;
    }
    let minute = two_digits(bytes, 14)?;
    let second = two_digits(bytes, 17)?;
    let mut index = 19;
    let mut nanos = 0;
    if bytes.get(index) == Some(&b'.') {
        let (value, next) = fraction(bytes, index + 1, if strict { 6 } else { 9 })?;
        nanos = value;
        index = next;
    }
    let offset_seconds = match bytes.get(index) {
        Some(b'Z') => {
            index += 1;
            Some(0)
        }
        Some(b'z') if !strict => {
            index += 1;
            Some(0)
        }
        Some(sign @ (b'+' | b'-')) => {
            let negative = *sign == b'-';
            let hours = two_digits(bytes, index + 1)?;
            let (minutes, next) = if bytes.get(index + 3) == Some(&b':') {
                (two_digits(bytes, index + 4)?, index + 6)
            } else if strict {
                return None;
            } else if let Some(minutes) = two_digits(bytes, index + 3) {
                (minutes, index + 5)
            } else {
                (0, index + 3)
            };
            if hours > 23 || minutes > 59 {
                return None;
            }
            index = next;
            let seconds = i32::from(hours) * 3600 + i32::from(minutes) * 60;
            Some(if negative { -seconds } else { seconds })
        }
        _ if strict => return None,
        _ => None,
    };
    let civil = Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        nanos,
    };
    if !civil.is_valid() || (strict && second > 59) {
        return None;
    }
    Some((
        ParsedRfc3339 {
            civil,
            offset_seconds,
        },
        index,
    ))
}

impl ParsedRfc3339 {
    /// The instant, reading an offset-less time in `tz`.
    pub fn to_timestamp(self, tz: &TimeZone) -> Option<Timestamp> {
        match self.offset_seconds {
            Some(offset) => self.civil.to_timestamp_at_offset(offset),
            None => self.civil.to_timestamp_in(tz),
        }
    }
}

fn month_from_name(bytes: &[u8]) -> Option<u8> {
    let name = [
        bytes.first()?.to_ascii_lowercase(),
        bytes.get(1)?.to_ascii_lowercase(),
        bytes.get(2)?.to_ascii_lowercase(),
    ];
    let month = match &name {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    };
    Some(month)
}

/// Parses `hh:mm:ss[.frac]` at `index`; returns (h, m, s, nanos, next index).
fn clock(bytes: &[u8], index: usize) -> Option<(u8, u8, u8, u32, usize)> {
    let hour = two_digits(bytes, index)?;
    if bytes.get(index + 2) != Some(&b':') || bytes.get(index + 5) != Some(&b':') {
        return None;
    }
    let minute = two_digits(bytes, index + 3)?;
    let second = two_digits(bytes, index + 6)?;
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut next = index + 8;
    let mut nanos = 0;
    if bytes.get(next) == Some(&b'.')
        && let Some((value, after)) = fraction(bytes, next + 1, 9)
    {
        nanos = value;
        next = after;
    }
    Some((hour, minute, second, nanos, next))
}

/// Parses a BSD timestamp at the start of `bytes`: `Mmm dd hh:mm:ss`, `Mmm  d hh:mm:ss`,
/// `Mmm d yyyy hh:mm:ss`, each with optional `.frac` and an optional trailing `:` (Cisco).
/// Month names are case-insensitive. Returns it and the bytes consumed.
pub(crate) fn parse_bsd(bytes: &[u8]) -> Option<(ParsedBsd, usize)> {
    let month = month_from_name(bytes)?;
    let mut index = 3;
    if bytes.get(index) != Some(&b' ') {
        return None;
    }
    while bytes.get(index) == Some(&b' ') {
        index += 1;
    }
    let first = digit(bytes, index)?;
    index += 1;
    let day = match digit(bytes, index) {
        Some(second) => {
            index += 1;
            first * 10 + second
        }
        None => first,
    };
    if !(1..=31).contains(&day) || bytes.get(index) != Some(&b' ') {
        return None;
    }
    index += 1;
    let mut year = None;
    if let Some(value) = four_digits(bytes, index)
        && bytes.get(index + 4) == Some(&b' ')
    {
        year = Some(value);
        index += 5;
    }
    let (hour, minute, second, nanos, mut next) = clock(bytes, index)?;
    if bytes.get(next) == Some(&b':') {
        next += 1;
    }
    let day = u8::try_from(day).ok()?;
    Some((
        ParsedBsd {
            month,
            day,
            year,
            hour,
            minute,
            second,
            nanos,
        },
        next,
    ))
}

impl ParsedBsd {
    fn civil(self, year: i32) -> Civil {
        Civil {
            year,
            month: self.month,
            day: self.day,
            hour: self.hour,
            minute: self.minute,
            second: self.second,
            nanos: self.nanos,
        }
    }

    /// The instant, reading the time in `tz`. A year-less timestamp gets the year that puts it
    /// closest to `received_at` without being more than ~31 days after it (a December timestamp
    /// received in January is last year's).
    pub fn to_timestamp(self, tz: &TimeZone, received_at: Timestamp) -> Option<Timestamp> {
        if let Some(year) = self.year {
            return self.civil(year).to_timestamp_in(tz);
        }
        const LATEST_AHEAD: i64 = 31 * SECONDS_PER_DAY * NANOS_PER_SECOND;
        let received_year = utc_year(received_at);
        let mut best: Option<(i64, Timestamp)> = None;
        let mut consider = |year: i32| -> bool {
            let Some(candidate) = self.civil(year).to_timestamp_in(tz) else {
                return false;
            };
            let ahead = candidate.0.saturating_sub(received_at.0);
            if ahead <= LATEST_AHEAD {
                let distance = ahead.saturating_abs();
                if best.is_none_or(|(best_distance, _)| distance < best_distance) {
                    best = Some((distance, candidate));
                }
            }
            true
        };
        // The closest year is one of received-1..=received+1 whenever the date exists in
        // received-1: an earlier year's candidate is a whole year further back. Only a 29
        // February missing from received-1 needs the years before it (back to a leap year).
        if !consider(received_year - 1) {
            for year in (received_year - 4)..=(received_year - 2) {
                consider(year);
            }
        }
        consider(received_year);
        consider(received_year + 1);
        best.map(|(_, ts)| ts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> Timestamp {
        Timestamp::from_jiff(
            text.parse::<jiff::Timestamp>()
                .expect("valid test timestamp"),
        )
    }

    #[test]
    fn rfc3339_strict_table() {
        let cases: &[(&str, Option<&str>)] = &[
            ("2003-10-11T22:14:15.003Z", Some("2003-10-11T22:14:15.003Z")),
            (
                "2003-08-24T05:14:15.000003-07:00",
                Some("2003-08-24T12:14:15.000003Z"),
            ),
            (
                "2018-12-31T23:59:59.999999-23:59",
                Some("2019-01-01T23:58:59.999999Z"),
            ),
            ("2016-02-21T04:32:57+00:00", Some("2016-02-21T04:32:57Z")),
            ("2003-10-11T22:14:15.0000003Z", None),
            ("2003-10-11t22:14:15Z", None),
            ("2003-10-11T22:14:15", None),
            ("2003-09-31T22:14:15Z", None),
            ("2018-02-29T22:14:16+01:00", None),
            ("2020-02-29T22:14:16+01:00", Some("2020-02-29T21:14:16Z")),
            ("2003-10-11T24:14:15Z", None),
            ("2003-10-11T22:14:15+0100", None),
        ];
        for (input, expected) in cases {
            let got = parse_rfc3339(input.as_bytes(), true)
                .and_then(|(parsed, _)| parsed.to_timestamp(&TimeZone::UTC));
            assert_eq!(got, expected.map(utc), "input {input}");
        }
    }

    #[test]
    fn rfc3339_lenient_accepts_space_nanos_and_no_offset() {
        let (parsed, used) = parse_rfc3339(b"2010-08-30 23:00:05.123456789 X", false).unwrap();
        assert_eq!(used, 29);
        assert_eq!(parsed.offset_seconds, None);
        assert_eq!(
            parsed.to_timestamp(&TimeZone::UTC),
            Some(utc("2010-08-30T23:00:05.123456789Z"))
        );
        let (parsed, _) = parse_rfc3339(b"2010-08-30T23:00:05+0200", false).unwrap();
        assert_eq!(parsed.offset_seconds, Some(7200));
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn bsd_variants_table() {
        let cases: &[(&str, Option<(u8, u8, Option<i32>, u8, u32, usize)>)] = &[
            ("Mar  7 19:06:53 x", Some((3, 7, None, 19, 0, 15))),
            ("Mar 7 19:06:53 x", Some((3, 7, None, 19, 0, 14))),
            ("AUG 10 22:18:24 x", Some((8, 10, None, 22, 0, 15))),
            (
                "Mar 7 2008 19:06:53: x",
                Some((3, 7, Some(2008), 19, 0, 20)),
            ),
            (
                "May 28 16:09:56.185: x",
                Some((5, 28, None, 16, 185_000_000, 20)),
            ),
            ("Mar 32 19:06:53", None),
            ("Foo  7 19:06:53", None),
            ("Mar  7 19:06", None),
            ("Ma", None),
        ];
        for (input, expected) in cases {
            let got = parse_bsd(input.as_bytes())
                .map(|(ts, used)| (ts.month, ts.day, ts.year, ts.hour, ts.nanos, used));
            assert_eq!(got, *expected, "input {input}");
        }
    }

    #[test]
    fn december_timestamp_received_in_january_is_last_year() {
        let (parsed, _) = parse_bsd(b"Dec 31 23:59:00").unwrap();
        let got = parsed.to_timestamp(&TimeZone::UTC, utc("2025-01-01T00:10:00Z"));
        assert_eq!(got, Some(utc("2024-12-31T23:59:00Z")));
    }

    #[test]
    fn timestamp_slightly_ahead_of_receive_keeps_this_year() {
        let (parsed, _) = parse_bsd(b"Jan  1 00:00:05").unwrap();
        let got = parsed.to_timestamp(&TimeZone::UTC, utc("2024-12-31T23:59:59Z"));
        assert_eq!(got, Some(utc("2025-01-01T00:00:05Z")));
        let (parsed, _) = parse_bsd(b"Jun 15 12:00:00").unwrap();
        let got = parsed.to_timestamp(&TimeZone::UTC, utc("2025-03-01T00:00:00Z"));
        assert_eq!(got, Some(utc("2024-06-15T12:00:00Z")));
    }

    #[test]
    fn feb_29_without_year_picks_a_leap_year() {
        let (parsed, _) = parse_bsd(b"Feb 29 10:00:00").unwrap();
        let got = parsed.to_timestamp(&TimeZone::UTC, utc("2025-03-10T00:00:00Z"));
        assert_eq!(got, Some(utc("2024-02-29T10:00:00Z")));
    }

    #[test]
    fn default_zone_applies_to_offsetless_times() {
        let tz = TimeZone::get("Europe/Berlin").unwrap_or(TimeZone::fixed(jiff::tz::offset(1)));
        let (parsed, _) = parse_bsd(b"Jan 10 12:00:00 2020").unwrap();
        let got = parsed.to_timestamp(&tz, utc("2020-01-10T12:00:00Z"));
        assert_eq!(got, Some(utc("2020-01-10T11:00:00Z")));
    }

    #[test]
    fn utc_year_matches_jiff() {
        for text in [
            "1970-01-01T00:00:00Z",
            "2024-12-31T23:59:59Z",
            "2000-02-29T00:00:00Z",
            "1969-12-31T23:59:59Z",
        ] {
            let ts = utc(text);
            assert_eq!(
                utc_year(ts),
                i32::from(ts.to_jiff().to_zoned(TimeZone::UTC).year()),
                "{text}"
            );
        }
    }
}
