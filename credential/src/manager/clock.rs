//! The read path's clock: Unix nanoseconds, read once per read and compared as plain numbers; a
//! calendar time is made from them only when one is needed (an event, a policy decision).

use std::cell::Cell;
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

const NANOS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

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
    thread_local! {
        /// The last day this thread turned into a date (days since the epoch): the date of a
        /// time on the same day is not worked out again.
        static DAY: Cell<(i64, NaiveDate)> = const { Cell::new((i64::MIN, NaiveDate::MIN)) };
    }
    let seconds = nanos.div_euclid(NANOS_PER_SECOND);
    let (day, second) = (seconds.div_euclid(SECONDS_PER_DAY), seconds.rem_euclid(SECONDS_PER_DAY));
    let subsecond = nanos.rem_euclid(NANOS_PER_SECOND);
    let time = u32::try_from(second).ok().zip(u32::try_from(subsecond).ok()).and_then(
        |(second, subsecond)| NaiveTime::from_num_seconds_from_midnight_opt(second, subsecond),
    );
    let (Some(time), Ok((known, date))) = (time, DAY.try_with(Cell::get)) else {
        return DateTime::from_timestamp_nanos(nanos);
    };
    if known == day {
        return NaiveDateTime::new(date, time).and_utc();
    }
    let at = DateTime::from_timestamp_nanos(nanos);
    let _ = DAY.try_with(|known| known.set((day, at.date_naive())));
    at
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

    #[test]
    fn times_on_a_day_already_seen_are_the_calendar_times_of_their_nanoseconds() {
        let day = SECONDS_PER_DAY * NANOS_PER_SECOND;
        let now = now_nanos();
        for nanos in [
            now,
            now + 1,
            now - now.rem_euclid(day),
            now - now.rem_euclid(day) - 1,
            now - now.rem_euclid(day) + day - 1,
            0,
            -1,
            -day,
            -day - 1,
            i64::MAX,
            i64::MIN,
        ] {
            // Twice: the second finds the day remembered.
            for _ in 0..2 {
                assert_eq!(at(nanos), DateTime::from_timestamp_nanos(nanos), "{nanos}");
            }
        }
    }
}
