//! Clock readings as Unix nanoseconds: what the cache's freshness is compared in, since a change
//! feed reports how far it has caught up as a `SystemTime` and atomics hold plain numbers.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// Nanoseconds since the Unix epoch now (zero before it).
pub(crate) fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_nanos()).unwrap_or(i64::MAX))
}

/// `at` in nanoseconds since the Unix epoch (saturating far in the future and the past).
pub(crate) fn nanos(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(if at.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_agree_with_chrono_and_far_times_saturate() {
        let now = now_nanos();
        assert!((nanos(Utc::now()) - now).abs() < 60_000_000_000);
        assert_eq!(nanos(DateTime::from_timestamp_nanos(now)), now);
        assert_eq!(nanos(DateTime::<Utc>::MAX_UTC), i64::MAX);
        assert_eq!(nanos(DateTime::<Utc>::MIN_UTC), i64::MIN);
    }
}
