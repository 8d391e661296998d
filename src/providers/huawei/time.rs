//! The two time formats the APIG API speaks, without a calendar crate: the
//! signer's `X-Sdk-Date` (`20261202T004735Z`) and the RFC 3339 UTC stamps of
//! response bodies (`2026-12-02T00:47:35Z`). Civil-date conversion after
//! Howard Hinnant's `days_from_civil` algorithm (public domain description).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Seconds since the epoch split into a UTC civil date and time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

fn civil_from_unix(secs: i64) -> Civil {
    let days = secs.div_euclid(86_400);
    let rest = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    Civil {
        year,
        month,
        day,
        hour: (rest / 3_600) as u32,
        minute: (rest % 3_600 / 60) as u32,
        second: (rest % 60) as u32,
    }
}

fn unix_from_civil(c: Civil) -> i64 {
    let year = c.year - i64::from(c.month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let month = i64::from(c.month);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(c.day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + i64::from(c.hour) * 3_600 + i64::from(c.minute) * 60 + i64::from(c.second)
}

fn unix_seconds(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64),
    }
}

/// `X-Sdk-Date`: `%Y%m%dT%H%M%SZ` in UTC, as the SDK writes it.
pub fn format_sdk_date(at: SystemTime) -> String {
    let c = civil_from_unix(unix_seconds(at));
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// Reads an `X-Sdk-Date`; `None` unless it is exactly `%Y%m%dT%H%M%SZ`.
pub fn parse_sdk_date(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = text.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let c = Civil {
        year: i64::from(digits(0..4)?),
        month: digits(4..6)?,
        day: digits(6..8)?,
        hour: digits(9..11)?,
        minute: digits(11..13)?,
        second: digits(13..15)?,
    };
    let valid = (1..=12).contains(&c.month)
        && (1..=31).contains(&c.day)
        && c.hour < 24
        && c.minute < 60
        && c.second < 60;
    let secs = unix_from_civil(c);
    (valid && civil_from_unix(secs) == c).then(|| UNIX_EPOCH + Duration::from_secs(secs as u64))
}

/// RFC 3339 in UTC with a `Z`, as APIG's bodies carry times.
pub fn format_rfc3339(at: SystemTime) -> String {
    let c = civil_from_unix(unix_seconds(at));
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_dates_round_trip() {
        let at = UNIX_EPOCH + Duration::from_secs(1_796_172_455);
        assert_eq!(format_sdk_date(at), "20261202T004735Z");
        assert_eq!(parse_sdk_date("20261202T004735Z"), Some(at));
        assert_eq!(format_rfc3339(at), "2026-12-02T00:47:35Z");
        assert_eq!(format_sdk_date(UNIX_EPOCH), "19700101T000000Z");
        assert_eq!(
            parse_sdk_date("20240229T235959Z").map(format_sdk_date),
            Some("20240229T235959Z".into())
        );
    }

    #[test]
    fn malformed_dates_are_refused() {
        for text in [
            "",
            "20261201T004735",
            "2026-12-01T00:47:35Z",
            "20261301T004735Z",
            "20230229T000000Z",
            "20261201T246000Z",
            "2026120aT004735Z",
        ] {
            assert_eq!(parse_sdk_date(text), None, "{text}");
        }
    }
}
