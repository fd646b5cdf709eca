//! Spans of time on the command line: `30s`, `30m`, `12h`, `7d`, `2w`.

use chrono::{DateTime, TimeDelta, Utc};

use crate::exit::{Failure, Outcome};

/// Reads `text` as a number followed by `s`, `m`, `h`, `d` or `w`.
pub(crate) fn parse(text: &str) -> Outcome<TimeDelta> {
    let invalid = || Failure::usage(format!("`{text}` is not a duration like 30m, 12h or 7d"));
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(invalid)?;
    let (number, unit) = text.split_at(split);
    let number: i64 = number.parse().map_err(|_| invalid())?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(invalid()),
    };
    number.checked_mul(seconds).and_then(TimeDelta::try_seconds).ok_or_else(invalid)
}

/// Reads `text` as a time: a duration back from now, or an RFC 3339 time.
pub(crate) fn since(text: &str, now: DateTime<Utc>) -> Outcome<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    Ok(now - parse(text)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_operators_write_them() {
        assert_eq!(parse("7d").ok(), TimeDelta::try_days(7));
        assert_eq!(parse("90s").ok(), TimeDelta::try_seconds(90));
        for bad in ["", "7", "d", "7y", "-1d", "99999999999999999w"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let now = Utc::now();
        assert_eq!(since("1h", now).ok(), Some(now - TimeDelta::hours(1)));
        assert!(since("2026-01-01T00:00:00Z", now).is_ok());
    }
}
