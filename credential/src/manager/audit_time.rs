//! Audit event times as RFC 3339 text, the way `chrono` writes them (`2026-11-30T12:27:54.123Z`:
//! UTC, the fraction in 0, 3, 6 or 9 digits as the time needs), without the formatting machinery:
//! a busy trail writes one or two per line.

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::Serializer;

/// Serializes `time` as `chrono` does.
pub(crate) fn serialize<S: Serializer>(
    time: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match text(time) {
        Some(text) => serializer.serialize_str(&text),
        None => serde::Serialize::serialize(time, serializer),
    }
}

/// As [`serialize`], for an optional time (skipped when absent).
// serde's `serialize_with` hands the field by reference.
#[allow(clippy::ref_option)]
pub(crate) fn serialize_option<S: Serializer>(
    time: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match time {
        Some(time) => serialize(time, serializer),
        None => serializer.serialize_none(),
    }
}

/// The text of `time`, for years 0 to 9999 outside leap seconds (the rest is left to `chrono`).
fn text(time: &DateTime<Utc>) -> Option<String> {
    let year = u32::try_from(time.year()).ok().filter(|year| *year <= 9999)?;
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut text = String::with_capacity(30);
    digits(&mut text, year, 4);
    text.push('-');
    digits(&mut text, time.month(), 2);
    text.push('-');
    digits(&mut text, time.day(), 2);
    text.push('T');
    digits(&mut text, time.hour(), 2);
    text.push(':');
    digits(&mut text, time.minute(), 2);
    text.push(':');
    digits(&mut text, time.second(), 2);
    let (fraction, width) = match nanos {
        0 => (0, 0),
        _ if nanos.is_multiple_of(1_000_000) => (nanos / 1_000_000, 3),
        _ if nanos.is_multiple_of(1_000) => (nanos / 1_000, 6),
        _ => (nanos, 9),
    };
    if width > 0 {
        text.push('.');
        digits(&mut text, fraction, width);
    }
    text.push('Z');
    Some(text)
}

/// Appends the last `width` decimal digits of `value`, zero-padded.
fn digits(text: &mut String, value: u32, width: u32) {
    for place in (0..width).rev() {
        let digit = value / 10_u32.pow(place) % 10;
        text.push(char::from(b'0' + u8::try_from(digit).unwrap_or_default()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn as_chrono_writes(time: DateTime<Utc>) -> String {
        serde_json::to_value(time)
            .ok()
            .and_then(|value| value.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    #[test]
    fn times_read_as_chrono_writes_them() {
        let now = Utc::now();
        let base = DateTime::from_timestamp(1_796_000_000, 0).unwrap_or_default();
        let times = [
            now,
            base,
            base + chrono::Duration::milliseconds(123),
            base + chrono::Duration::microseconds(123_456),
            base + chrono::Duration::nanoseconds(123_456_789),
            base + chrono::Duration::nanoseconds(1),
            DateTime::from_timestamp(0, 0).unwrap_or_default(),
            DateTime::from_timestamp(-62_167_219_200, 0).unwrap_or_default(), // 0000-01-01
            DateTime::<Utc>::MAX_UTC,
            DateTime::<Utc>::MIN_UTC,
        ];
        for time in times {
            let mut ours = Vec::new();
            serialize(&time, &mut serde_json::Serializer::new(&mut ours)).unwrap_or_default();
            let ours = String::from_utf8(ours).unwrap_or_default();
            assert_eq!(ours.trim_matches('"'), as_chrono_writes(time), "{time:?}");
        }
    }
}
