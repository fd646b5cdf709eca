//! The read path's clock: Unix nanoseconds, read once per read and compared as plain numbers; a
//! calendar time is made from them only when one is needed (an event, a policy decision).

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// Nanoseconds since the Unix epoch now (zero before it).
pub(crate) fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
}

/// `at` in nanoseconds since the Unix epoch (saturating far in the future).
pub(crate) fn nanos(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(if at.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

/// The calendar time `nanos` after the Unix epoch.
pub(crate) fn at(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_convert_both_ways_and_far_times_saturate() {
        let now = now_nanos();
        assert_eq!(nanos(at(now)), now);
        assert_eq!(nanos(DateTime::<Utc>::MAX_UTC), i64::MAX);
        assert_eq!(nanos(DateTime::<Utc>::MIN_UTC), i64::MIN);
        assert!((nanos(Utc::now()) - now).abs() < 60_000_000_000);
    }
}
