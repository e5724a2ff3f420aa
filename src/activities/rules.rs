//! Pure rules: time windows, travel intervals, speeds, overlaps, and which of two records of one trip
//! (the app's, the operator's) stands, and (in `allowance`) what the caps let a credit have. Nothing here
//! reads the database or the clock.

pub mod allowance;

use chrono::{Duration, NaiveDateTime};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;

use super::model::{Event, Neighbour, Reason, Status};
use crate::domain::catalog::{china, ActivityTypeInfo, AmountOverflow, Catalog};
use crate::domain::data_schema::DataValues;

/// What the rules read of an activity type: properties administrators govern in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TypeRules {
    /// Travel types are the ones a person can only do one of at a time.
    pub travel: bool,
    /// The type's speed bound, if it has one.
    pub max_speed_kmh: Option<u32>,
}

impl From<&ActivityTypeInfo> for TypeRules {
    fn from(kind: &ActivityTypeInfo) -> TypeRules {
        TypeRules {
            travel: kind.travel,
            max_speed_kmh: kind.max_speed_kmh,
        }
    }
}

impl TypeRules {
    /// The rules of `activity_type` in `catalog` (an unknown type has none).
    pub fn of(catalog: &Catalog, activity_type: &str) -> TypeRules {
        catalog
            .activity_type(activity_type)
            .map(TypeRules::from)
            .unwrap_or_default()
    }
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

/// km/h per m/s: speeds are worked out as m × 3.6 / s, multiplying first so exact results stay exact.
const KMH_PER_METRE_PER_SECOND: Decimal = Decimal::from_parts(36, 0, 0, false, 1);

/// The shortest interval an activity occupies: an instant still collides with an interval containing it.
pub fn shortest() -> Duration {
    Duration::seconds(1)
}

/// The least time one ride of a counted trip (`count` rides, no distance) takes: boarding, one stop,
/// alighting. Only travel counts rides: the `count` of another type is a quantity (bags of sorted waste,
/// phones recycled), which takes no time of its own.
pub const LEAST_SECONDS_PER_RIDE: i64 = 120;

/// The time an activity occupies, and the request field that set its end (a too-long activity is
/// refused naming that field, which the request always has).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occupied {
    /// [start, end).
    pub span: (NaiveDateTime, NaiveDateTime),
    pub end_set_by: &'static str,
}

/// The interval an activity occupies: from `occurred_at` to `ended_at`, else to `occurred_at + duration_s`,
/// else, for a travel type, to the least time the trip can have taken (its distance under the type's speed
/// bound, and [`LEAST_SECONDS_PER_RIDE`] for each ride it counts); at least one second long, so an instant
/// still collides with an interval containing it. Without the least time, an untimed trip would occupy one
/// second, and one account could claim a trip every second. An absurd duration saturates instead of
/// overflowing (validation then refuses it as too long).
pub fn interval(
    occurred_at: NaiveDateTime,
    ended_at: Option<NaiveDateTime>,
    data: &DataValues,
    kind: TypeRules,
) -> Occupied {
    let after = |seconds: Decimal| {
        seconds
            .ceil()
            .to_i64()
            .and_then(Duration::try_seconds)
            .and_then(|d| occurred_at.checked_add_signed(d))
            .unwrap_or(NaiveDateTime::MAX)
    };
    let stated = match (ended_at, data.get("duration_s")) {
        (Some(end), _) => Some((end, "ended_at")),
        (None, Some(d)) => Some((after(d.trunc()), "data.duration_s")),
        (None, None) => None,
    };
    let least = || {
        kind.travel
            .then(|| least_time(data, kind.max_speed_kmh))
            .flatten()
            .map(|(seconds, field)| (after(seconds), field))
    };
    let (end, end_set_by) = stated.or_else(least).unwrap_or((occurred_at, "occurred_at"));
    Occupied {
        span: (occurred_at, end.max(occurred_at + shortest())),
        end_set_by,
    }
}

/// The least seconds an untimed trip can have taken, and the data field that makes it that long: its
/// distance at the speed bound, or its rides, whichever is longer.
fn least_time(data: &DataValues, max_speed_kmh: Option<u32>) -> Option<(Decimal, &'static str)> {
    let at_speed = || {
        let (distance_m, limit) = (data.get("distance_m")?, max_speed_kmh.filter(|&l| l > 0)?);
        // s = m × 3.6 / (km/h)
        let seconds = distance_m
            .checked_mul(KMH_PER_METRE_PER_SECOND)
            .unwrap_or(Decimal::MAX)
            / Decimal::from(limit);
        Some((seconds, "data.distance_m"))
    };
    let rides = || {
        let count = data.get("count")?;
        let seconds = count
            .checked_mul(Decimal::from(LEAST_SECONDS_PER_RIDE))
            .unwrap_or(Decimal::MAX);
        Some((seconds, "data.count"))
    };
    match (at_speed(), rides()) {
        (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
        (a, b) => a.or(b),
    }
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
    // km/h = m × 3.6 / s; multiplying first keeps exact results exact. A speed beyond the decimals' range
    // (a type without a maximum on `distance_m`) is the fastest there is, not "no speed to check".
    Some(
        distance_m
            .checked_mul(KMH_PER_METRE_PER_SECOND)
            .and_then(|m| m.checked_div(seconds))
            .unwrap_or(Decimal::MAX),
    )
}

/// Whether an event is older than its type's claim window.
pub fn is_late(occurred_at: NaiveDateTime, now: NaiveDateTime, claim_window_days: i64) -> bool {
    occurred_at < now - Duration::days(claim_window_days)
}

/// How an event is to be settled, before any grant is taken.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Rejected(Reason),
    Flagged(Vec<Reason>),
    Credit {
        reasons: Vec<Reason>,
        /// (grams, points) the app's records of this trip were granted already.
        already: (i64, i64),
    },
}

/// What is plausible for one event of a type.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// The event's type: whether it is travel, and its speed bound.
    pub kind: TypeRules,
    /// The most grams one event may reduce before an administrator looks at it
    /// (`activities.max_reduction_g_per_event`).
    pub max_reduction_g: i64,
}

/// Judges an event against its type's bounds and the other activities of its account that overlap it;
/// `is_travel` says which of their types are travel.
pub fn judge(
    event: &Event,
    bounds: Bounds,
    overlapping: &[&Neighbour],
    is_travel: &dyn Fn(&str) -> bool,
) -> Verdict {
    let mut flags = Vec::new();
    let reduction_g = event.quantified.as_ref().map_or(0, |q| q.quantity.reduction_g);
    if reduction_g > bounds.max_reduction_g {
        flags.push(Reason::ImplausibleAmount);
    }
    if too_fast(event, bounds.kind.max_speed_kmh) {
        flags.push(Reason::Speed);
    }
    let mut app_records = Vec::new();
    if bounds.kind.travel {
        let this_is_operator = event.poster.provider_id.is_some();
        for &other in overlapping.iter().filter(|other| is_travel(&other.activity_type)) {
            match (
                same_trip(&event.activity_type, this_is_operator, other),
                this_is_operator,
            ) {
                // The app reports a trip the operator already reported: the operator's record wins.
                (true, false) => return Verdict::Rejected(Reason::Duplicate),
                // The operator reports a trip the app already claimed (perhaps in several legs): top up,
                // never reverse. An app record held for review was granted nothing, so there is nothing to
                // top up; it cannot be approved any more (`approval_terms`), and the trusted record stands.
                (true, true) => {
                    if other.status != Status::Flagged {
                        app_records.push(other);
                    }
                }
                _ => {
                    if !flags.contains(&Reason::Overlap) {
                        flags.push(Reason::Overlap);
                    }
                }
            }
        }
    }
    let already = granted_to(&app_records);
    if already.is_err() && !flags.contains(&Reason::ImplausibleAmount) {
        flags.push(Reason::ImplausibleAmount);
    }
    match already {
        Ok(already) if flags.is_empty() => Verdict::Credit {
            reasons: superseding(&app_records),
            already,
        },
        _ => Verdict::Flagged(flags),
    }
}

/// Whether the event's stated distance and time make it faster than its type's bound.
fn too_fast(event: &Event, max_speed_kmh: Option<u32>) -> bool {
    match (
        speed_kmh(&event.values, event.occurred_at, event.ended_at),
        max_speed_kmh,
    ) {
        (Some(speed), Some(limit)) => speed > Decimal::from(limit),
        _ => false,
    }
}

/// Whether `other` is the other side's record of the same trip: the operator's and the app's records of
/// one ride have the same type and overlap (the caller has checked the overlap).
fn same_trip(activity_type: &str, this_is_operator: bool, other: &Neighbour) -> bool {
    other.activity_type == activity_type && other.provider_id.is_some() != this_is_operator
}

/// What the app's records of a trip were granted, in (grams, points): an operator's record tops them up.
/// Checked: records approved for enormous amounts may sum beyond an `i64`.
fn granted_to(app_records: &[&Neighbour]) -> Result<(i64, i64), AmountOverflow> {
    app_records.iter().try_fold((0i64, 0i64), |(g, p), r| {
        g.checked_add(r.granted_g)
            .zip(p.checked_add(r.points))
            .ok_or_else(|| AmountOverflow::new("what the app records of this trip were granted"))
    })
}

fn superseding(app_records: &[&Neighbour]) -> Vec<Reason> {
    if !app_records.is_empty() {
        vec![Reason::SupersedesAppRecord]
    } else {
        Vec::new()
    }
}

/// An app record of a trip its operator also reported: it can only be rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the operator's record of this trip stands: this app record can only be rejected")]
pub struct OperatorRecordStands;

/// Why a flagged record cannot be approved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unapprovable {
    #[error(transparent)]
    OperatorRecordStands(#[from] OperatorRecordStands),
    #[error(transparent)]
    Overflow(#[from] AmountOverflow),
}

/// What approving a flagged record adds: the reasons, and the (grams, points) already granted for its trip.
#[derive(Debug, PartialEq, Eq)]
pub struct ApprovalTerms {
    pub reasons: Vec<Reason>,
    pub already: (i64, i64),
}

/// Approving a flagged travel record honours the other records of its trip as posting it would have:
/// an app record yields to any live operator record of the trip, and an operator record only tops up what
/// the trip's app records were granted. `overlapping`: the account's live activities overlapping it (the
/// record itself may be among them: it is no other side's record of its trip). `travel`: whether its type
/// is travel.
pub fn approval_terms(
    activity_type: &str,
    travel: bool,
    from_operator: bool,
    overlapping: &[Neighbour],
) -> Result<ApprovalTerms, Unapprovable> {
    if !travel {
        return Ok(ApprovalTerms {
            reasons: Vec::new(),
            already: (0, 0),
        });
    }
    let others: Vec<&Neighbour> = overlapping
        .iter()
        .filter(|other| same_trip(activity_type, from_operator, other))
        .collect();
    if !from_operator && !others.is_empty() {
        return Err(OperatorRecordStands.into());
    }
    Ok(ApprovalTerms {
        reasons: superseding(&others),
        already: granted_to(&others)?,
    })
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
        assert_eq!(
            interval(t(1, 0), None, &rides, kind("transit.bus", Some(80)))
                .span
                .1,
            t(1, 6)
        );
        let mut both = rides.clone();
        both.insert("distance_m".into(), Decimal::from(20_000));
        assert_eq!(
            interval(t(1, 0), None, &both, kind("transit.bus", Some(80)))
                .span
                .1,
            t(1, 15)
        );
        assert_eq!(
            interval(t(1, 0), None, &data, kind("transit.bus", Some(8))).span,
            (t(1, 0), t(1, 30))
        );
        assert_eq!(
            interval(t(1, 0), None, &walk, kind("transit.bus", None)).span.1,
            t(1, 0) + Duration::seconds(1)
        );
        // Untimed, 3 km at no more than 8 km/h took at least 22.5 minutes (rounded up to the second).
        let least = t(1, 22) + Duration::seconds(30);
        assert_eq!(
            interval(t(1, 0), None, &walk, kind("transit.bus", Some(8)))
                .span
                .1,
            least
        );
        assert_eq!(
            interval(t(1, 0), Some(t(1, 5)), &walk, kind("transit.bus", Some(8)))
                .span
                .1,
            t(1, 5),
            "a stated end wins"
        );
        let absurd = DataValues::from([("duration_s".into(), Decimal::from(i64::MAX))]);
        assert_eq!(
            interval(t(1, 0), None, &absurd, kind("transit.bus", None)).span.1,
            NaiveDateTime::MAX
        );
        let far = DataValues::from([("distance_m".into(), Decimal::MAX)]);
        assert_eq!(
            interval(t(1, 0), None, &far, kind("transit.bus", Some(8))).span.1,
            NaiveDateTime::MAX
        );
    }

    #[test]
    fn only_travel_counts_rides_and_the_end_names_the_field_that_set_it() {
        let thousand = DataValues::from([("count".into(), Decimal::from(1000))]);
        // A thousand bags of sorted waste take no time of their own: an instant, not 2,000 minutes.
        let waste = interval(t(1, 0), None, &thousand, kind("waste.bags", Some(8)));
        assert_eq!(waste.span, (t(1, 0), t(1, 0) + shortest()));
        assert_eq!(waste.end_set_by, "occurred_at");
        let rides = interval(t(1, 0), None, &thousand, kind("transit.bus", Some(80)));
        assert_eq!(
            (rides.span.1, rides.end_set_by),
            (t(1, 0) + Duration::minutes(2000), "data.count")
        );
        let mut far = thousand.clone();
        far.insert("distance_m".into(), Decimal::from(1_000_000));
        // 1,000 km at 8 km/h is longer than a thousand rides: the distance set the end.
        assert_eq!(
            interval(t(1, 0), None, &far, kind("walking", Some(8))).end_set_by,
            "data.distance_m"
        );
        let timed = DataValues::from([("duration_s".into(), Decimal::from(60))]);
        assert_eq!(
            interval(t(1, 0), None, &timed, kind("waste.bags", None)).end_set_by,
            "data.duration_s"
        );
        assert_eq!(
            interval(t(1, 0), Some(t(2, 0)), &timed, kind("waste.bags", None)).end_set_by,
            "ended_at"
        );
    }

    #[test]
    fn a_distance_beyond_the_decimals_range_is_the_fastest_speed() {
        let endless = DataValues::from([
            ("distance_m".into(), Decimal::MAX),
            ("duration_s".into(), Decimal::from(3600)),
        ]);
        assert_eq!(speed_kmh(&endless, t(1, 0), None), Some(Decimal::MAX));
        let mut trip = event("cycling.private", None, endless);
        trip.ended_at = Some(t(8, 15));
        assert_eq!(
            judge(&trip, bounds(&trip, Some(30)), &[], &travel),
            Verdict::Flagged(vec![Reason::Speed])
        );
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

    fn record(
        activity_type: &str,
        provider_id: Option<i64>,
        status: Status,
        granted: (i64, i64),
    ) -> Neighbour {
        Neighbour {
            account_id: 1,
            occurred_at: t(8, 0),
            ended_at: Some(t(8, 20)),
            activity_type: activity_type.into(),
            provider_id,
            status,
            granted_g: granted.0,
            points: granted.1,
        }
    }

    fn event(activity_type: &str, provider_id: Option<i64>, values: DataValues) -> Event {
        use super::super::model::Poster;
        use crate::domain::catalog::Evidence;
        Event {
            poster: Poster {
                user_id: 1,
                account_id: 1,
                home_region: "CN-31".into(),
                provider_id,
                operator_code: None,
            },
            client_event_id: "e".into(),
            request_hash: String::new(),
            activity_type: activity_type.into(),
            region_code: "CN-31".into(),
            occurred_at: t(8, 5),
            ended_at: Some(t(8, 15)),
            evidence: Evidence::Trace,
            values,
            interval: (t(8, 5), t(8, 15)),
            local_day: local_day(t(8, 5)),
            quantified: None,
            data_json: "{}".into(),
            breakdown_json: "[]".into(),
            claim: None,
        }
    }

    #[test]
    fn an_approved_operator_record_tops_up_every_app_leg() {
        let legs = [
            record("transit.metro", None, Status::Credited, (187, 93)),
            record("transit.metro", None, Status::Credited, (187, 93)),
            record("transit.bus", None, Status::Credited, (80, 40)),
            record("transit.metro", Some(7), Status::Credited, (467, 467)),
        ];
        let terms = approval_terms("transit.metro", travel("transit.metro"), true, &legs).unwrap();
        assert_eq!(
            terms.already,
            (374, 186),
            "both metro legs of the app, not the bus, not the operator"
        );
        assert_eq!(terms.reasons, [Reason::SupersedesAppRecord]);
        let terms = approval_terms("transit.metro", travel("transit.metro"), true, &legs[2..3]).unwrap();
        assert_eq!((terms.reasons.len(), terms.already), (0, (0, 0)));
    }

    #[test]
    fn an_app_record_yields_to_any_operator_record_of_its_trip() {
        let flagged_operator = [record("transit.metro", Some(7), Status::Flagged, (0, 0))];
        assert_eq!(
            approval_terms("transit.metro", travel("transit.metro"), false, &flagged_operator),
            Err(OperatorRecordStands.into())
        );
        let other_type = [record("transit.bus", Some(7), Status::Credited, (80, 80))];
        assert!(approval_terms("transit.metro", travel("transit.metro"), false, &other_type).is_ok());
        assert!(
            approval_terms("waste.sorting", travel("waste.sorting"), false, &flagged_operator).is_ok(),
            "not travel"
        );
    }

    /// The seeded travel types, as the catalog has them.
    fn travel(code: &str) -> bool {
        matches!(
            code,
            "walking" | "cycling.bikeshare" | "transit.bus" | "transit.metro"
        )
    }

    fn kind(code: &str, max_speed_kmh: Option<u32>) -> TypeRules {
        TypeRules {
            travel: travel(code),
            max_speed_kmh,
        }
    }

    fn bounds(event: &Event, max_speed_kmh: Option<u32>) -> Bounds {
        Bounds {
            kind: kind(&event.activity_type, max_speed_kmh),
            max_reduction_g: 100_000,
        }
    }

    /// `event` quantified at `reduction_g` grams.
    fn weighing(mut event: Event, reduction_g: i64) -> Event {
        let kind = event.activity_type.clone();
        event.quantified = Some(super::super::fixtures::quantified(
            &kind,
            reduction_g,
            Decimal::ONE,
        ));
        event
    }

    #[test]
    fn an_amount_above_the_bound_is_flagged_and_one_at_it_is_not() {
        let none = DataValues::new();
        let at_bound = weighing(event("waste.bags", None, none.clone()), 100_000);
        assert!(matches!(
            judge(&at_bound, bounds(&at_bound, None), &[], &travel),
            Verdict::Credit { .. }
        ));
        for above in [100_001, i64::MAX] {
            let huge = weighing(event("waste.bags", None, none.clone()), above);
            assert_eq!(
                judge(&huge, bounds(&huge, None), &[], &travel),
                Verdict::Flagged(vec![Reason::ImplausibleAmount])
            );
        }
        // Alongside the other flags, once.
        let walk = record("walking", None, Status::Credited, (50, 50));
        let huge_trip = weighing(event("transit.metro", None, none), 100_001);
        assert_eq!(
            judge(&huge_trip, bounds(&huge_trip, None), &[&walk], &travel),
            Verdict::Flagged(vec![Reason::ImplausibleAmount, Reason::Overlap])
        );
    }

    #[test]
    fn what_a_trip_was_granted_is_summed_in_checked_arithmetic() {
        let huge = record("transit.metro", None, Status::Credited, (i64::MAX, 1));
        let more = record("transit.metro", None, Status::Credited, (1, 1));
        assert_eq!(granted_to(&[&huge]), Ok((i64::MAX, 1)));
        assert!(granted_to(&[&huge, &more]).is_err());
        let many_points = record("transit.metro", None, Status::Credited, (1, i64::MAX));
        assert!(granted_to(&[&many_points, &more]).is_err());
        // An operator's record cannot top up such a trip: it is held for review, and its approval refused.
        let operator = weighing(event("transit.metro", Some(7), DataValues::new()), 100);
        assert_eq!(
            judge(&operator, bounds(&operator, None), &[&huge, &more], &travel),
            Verdict::Flagged(vec![Reason::ImplausibleAmount])
        );
        let legs = [huge.clone(), more.clone()];
        assert!(matches!(
            approval_terms("transit.metro", travel("transit.metro"), true, &legs),
            Err(Unapprovable::Overflow(_))
        ));
    }

    #[test]
    fn a_judge_rejects_duplicates_flags_overlaps_and_speed_and_tops_up_app_records() {
        let none = DataValues::new();
        let operator = record("transit.metro", Some(7), Status::Credited, (400, 400));
        let app = record("transit.metro", None, Status::Credited, (187, 93));
        let walk = record("walking", None, Status::Credited, (50, 50));
        let app_event = event("transit.metro", None, none.clone());
        assert_eq!(
            judge(&app_event, bounds(&app_event, None), &[&operator], &travel),
            Verdict::Rejected(Reason::Duplicate)
        );
        assert_eq!(
            judge(&app_event, bounds(&app_event, None), &[&walk, &walk], &travel),
            Verdict::Flagged(vec![Reason::Overlap]),
            "one overlap reason, however many overlaps"
        );
        let operator_event = event("transit.metro", Some(7), none);
        assert_eq!(
            judge(&operator_event, bounds(&operator_event, None), &[&app], &travel),
            Verdict::Credit {
                reasons: vec![Reason::SupersedesAppRecord],
                already: (187, 93)
            }
        );
        let flagged_app = record("transit.metro", None, Status::Flagged, (0, 0));
        assert_eq!(
            judge(
                &operator_event,
                bounds(&operator_event, None),
                &[&flagged_app],
                &travel
            ),
            Verdict::Credit {
                reasons: vec![],
                already: (0, 0)
            },
            "a flagged app record was granted nothing to top up"
        );
        // 3 km in 10 minutes: 18 km/h.
        let fast = event(
            "cycling.bikeshare",
            None,
            DataValues::from([("distance_m".into(), Decimal::from(3000))]),
        );
        assert_eq!(
            judge(&fast, bounds(&fast, Some(15)), &[], &travel),
            Verdict::Flagged(vec![Reason::Speed])
        );
        assert!(matches!(
            judge(&fast, bounds(&fast, Some(20)), &[], &travel),
            Verdict::Credit { .. }
        ));
    }
}
