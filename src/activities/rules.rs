//! Pure plausibility rules: time windows, travel intervals, speeds.

use chrono::{Duration, NaiveDateTime};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use crate::domain::catalog::china;
use crate::domain::data_schema::DataValues;

/// Travel types are the ones a person can only do one of at a time.
pub fn is_travel(activity_type: &str) -> bool {
    activity_type == "walking"
        || activity_type.starts_with("cycling.")
        || activity_type.starts_with("transit.")
}

/// The Asia/Shanghai calendar date of a UTC instant, `YYYY-MM-DD`: the day a daily cap counts.
pub fn local_day(t: NaiveDateTime) -> String {
    t.and_utc().with_timezone(&china()).format("%Y-%m-%d").to_string()
}

pub fn local_year(t: NaiveDateTime) -> i32 {
    use chrono::Datelike;
    t.and_utc().with_timezone(&china()).year()
}

/// No single activity lasts longer than a day: longer claims are refused, and the overlap search reads
/// only activities that started at most this long before a new one.
pub fn longest() -> Duration {
    Duration::hours(24)
}

/// The most clock skew the configuration may allow an `occurred_at` (`activities.future_skew_secs`): so no
/// activity is stored more than this long before it occurred, which the simulation's search by time of
/// arrival relies on (`store::in_window`).
pub const MOST_FUTURE_SKEW_SECS: i64 = 86_400;

/// The least time one ride of a counted trip (`count` rides, no distance) takes: boarding, one stop,
/// alighting.
pub const LEAST_SECONDS_PER_RIDE: i64 = 120;

/// The interval an activity occupies: from `occurred_at` to `ended_at`, else to `occurred_at + duration_s`,
/// else to the least time the trip can have taken (its distance under the type's speed bound, and
/// [`LEAST_SECONDS_PER_RIDE`] for each ride it counts); at least one second long, so an instant still
/// collides with an interval containing it. Without the least time, an untimed trip would occupy one
/// second, and one account could claim a trip every second. An absurd duration saturates instead of
/// overflowing (validation then refuses it as too long).
pub fn interval(
    occurred_at: NaiveDateTime,
    ended_at: Option<NaiveDateTime>,
    data: &DataValues,
    max_speed_kmh: Option<u32>,
) -> (NaiveDateTime, NaiveDateTime) {
    let after = |seconds: Decimal| {
        seconds
            .ceil()
            .to_i64()
            .and_then(Duration::try_seconds)
            .and_then(|d| occurred_at.checked_add_signed(d))
            .unwrap_or(NaiveDateTime::MAX)
    };
    let at_speed = || {
        let (distance_m, limit) = (data.get("distance_m")?, max_speed_kmh.filter(|&l| l > 0)?);
        // s = m × 3.6 / (km/h)
        Some(
            distance_m
                .checked_mul(Decimal::new(36, 1))
                .unwrap_or(Decimal::MAX)
                / Decimal::from(limit),
        )
    };
    let rides = || {
        let count = data.get("count")?;
        Some(
            count
                .checked_mul(Decimal::from(LEAST_SECONDS_PER_RIDE))
                .unwrap_or(Decimal::MAX),
        )
    };
    let least_time = || match (at_speed(), rides()) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    let end = ended_at
        .or_else(|| data.get("duration_s").map(|d| after(d.trunc())))
        .or_else(|| least_time().map(after))
        .unwrap_or(occurred_at);
    (occurred_at, end.max(occurred_at + Duration::seconds(1)))
}

/// Whether a stated `duration_s` fits between `occurred_at` and `ended_at` (the time moving may be
/// shorter than the trip, never longer).
pub fn duration_fits(data: &DataValues, occurred_at: NaiveDateTime, ended_at: Option<NaiveDateTime>) -> bool {
    match (data.get("duration_s"), ended_at) {
        // Checked: a type without a maximum on `duration_s` admits any decimal; beyond range it cannot fit.
        (Some(&duration), Some(end)) => duration
            .checked_mul(Decimal::ONE_THOUSAND)
            .is_some_and(|ms| ms <= Decimal::from((end - occurred_at).num_milliseconds())),
        _ => true,
    }
}

/// Average speed in km/h when both a distance and a duration are known (exact decimal arithmetic). The
/// time between `occurred_at` and `ended_at` counts to the microsecond: in whole seconds, half a second
/// would be none, and a trip with no time at all would have no speed to check. A distance covered in no
/// time is the fastest there is.
pub fn speed_kmh(
    data: &DataValues,
    occurred_at: NaiveDateTime,
    ended_at: Option<NaiveDateTime>,
) -> Option<Decimal> {
    let distance_m = *data.get("distance_m")?;
    let seconds = match data.get("duration_s") {
        Some(d) => *d,
        None => Decimal::new((ended_at? - occurred_at).num_microseconds()?, 6),
    };
    if seconds <= Decimal::ZERO {
        return Some(if distance_m > Decimal::ZERO {
            Decimal::MAX
        } else {
            Decimal::ZERO
        });
    }
    // km/h = m × 3.6 / s; multiplying first keeps exact results exact.
    distance_m.checked_mul(Decimal::new(36, 1))?.checked_div(seconds)
}

/// Whether an event is older than its type's claim window.
pub fn is_late(occurred_at: NaiveDateTime, now: NaiveDateTime, claim_window_days: i64) -> bool {
    occurred_at < now - Duration::days(claim_window_days)
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;

    fn t(h: u32, m: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(2025, 3, 1)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
    }

    #[test]
    fn local_day_is_beijing_time() {
        assert_eq!(local_day(t(15, 59)), "2025-03-01");
        assert_eq!(local_day(t(16, 0)), "2025-03-02");
    }

    #[test]
    fn speeds_and_intervals() {
        let data = DataValues::from([
            ("distance_m".into(), Decimal::from(3000)),
            ("duration_s".into(), Decimal::from(1800)),
        ]);
        assert_eq!(speed_kmh(&data, t(1, 0), None), Some(Decimal::from(6)));
        let walk = DataValues::from([("distance_m".into(), Decimal::from(3000))]);
        assert_eq!(speed_kmh(&walk, t(1, 0), Some(t(1, 10))), Some(Decimal::from(18)));
        assert_eq!(speed_kmh(&walk, t(1, 0), None), None);
        // Half a second for 3 km: 21,600 km/h, not "no time, no speed".
        let half_second = t(1, 0) + Duration::milliseconds(500);
        assert_eq!(
            speed_kmh(&walk, t(1, 0), Some(half_second)),
            Some(Decimal::from(21_600))
        );
        let instant = DataValues::from([
            ("distance_m".into(), Decimal::from(3000)),
            ("duration_s".into(), Decimal::ZERO),
        ]);
        assert_eq!(speed_kmh(&instant, t(1, 0), None), Some(Decimal::MAX));
        // Counted rides take their least time each, and a distance its own at the bound: the longer wins.
        let rides = DataValues::from([("count".into(), Decimal::from(3))]);
        assert_eq!(interval(t(1, 0), None, &rides, Some(80)).1, t(1, 6));
        let mut both = rides.clone();
        both.insert("distance_m".into(), Decimal::from(20_000));
        assert_eq!(interval(t(1, 0), None, &both, Some(80)).1, t(1, 15));
        assert_eq!(interval(t(1, 0), None, &data, Some(8)), (t(1, 0), t(1, 30)));
        assert_eq!(
            interval(t(1, 0), None, &walk, None).1,
            t(1, 0) + Duration::seconds(1)
        );
        // Untimed, 3 km at no more than 8 km/h took at least 22.5 minutes (rounded up to the second).
        let least = t(1, 22) + Duration::seconds(30);
        assert_eq!(interval(t(1, 0), None, &walk, Some(8)).1, least);
        assert_eq!(
            interval(t(1, 0), Some(t(1, 5)), &walk, Some(8)).1,
            t(1, 5),
            "a stated end wins"
        );
        let absurd = DataValues::from([("duration_s".into(), Decimal::from(i64::MAX))]);
        assert_eq!(interval(t(1, 0), None, &absurd, None).1, NaiveDateTime::MAX);
        let far = DataValues::from([("distance_m".into(), Decimal::MAX)]);
        assert_eq!(interval(t(1, 0), None, &far, Some(8)).1, NaiveDateTime::MAX);
        assert!(is_travel("transit.metro") && is_travel("walking") && !is_travel("waste.sorting"));
    }

    #[test]
    fn a_stated_duration_fits_the_stated_interval() {
        let ten_minutes = DataValues::from([("duration_s".into(), Decimal::from(600))]);
        assert!(duration_fits(&ten_minutes, t(1, 0), Some(t(1, 10))));
        assert!(
            duration_fits(&ten_minutes, t(1, 0), Some(t(1, 30))),
            "moving less than the trip"
        );
        assert!(!duration_fits(&ten_minutes, t(1, 0), Some(t(1, 9))));
        assert!(duration_fits(&ten_minutes, t(1, 0), None));
        let endless = DataValues::from([("duration_s".into(), Decimal::MAX)]);
        assert!(!duration_fits(&endless, t(1, 0), Some(t(1, 9))));
    }

    #[test]
    fn lateness_uses_the_claim_window() {
        assert!(is_late(t(1, 0) - Duration::days(8), t(1, 0), 7));
        assert!(!is_late(t(1, 0) - Duration::days(6), t(1, 0), 7));
    }
}
