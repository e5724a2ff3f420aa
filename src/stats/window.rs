//! Pure: how a window `[from, to)` is read. Days are Asia/Shanghai days (UTC+8, China's one time zone),
//! the days of the activities' `local_day`. The whole months inside the window are read from the monthly
//! rollups, the other whole days from the daily ones, and only the parts of the (at most two) days the
//! window cuts are read from the activities themselves. The parts never overlap and cover the window.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};

/// The hours Asia/Shanghai is ahead of UTC.
const CHINA_OFFSET_HOURS: i64 = 8;

/// The longest window answered, in days: three years and a day for the leap year.
pub const MAX_WINDOW_DAYS: i64 = 3 * 365 + 1;

/// A part of one local day, in UTC instants, read from the activities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edge {
    /// The local day (`YYYY-MM-DD`).
    pub day: String,
    pub from: NaiveDateTime,
    pub to: NaiveDateTime,
}

/// Where each part of a window is read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Whole local days `[first, end)` (`YYYY-MM-DD`) read from the daily rollups.
    pub days: Vec<(String, String)>,
    /// Whole months `[first, end)` (`YYYY-MM`) read from the monthly rollups.
    pub months: Option<(String, String)>,
    /// Cut days, read from the activities.
    pub edges: Vec<Edge>,
}

fn local(t: NaiveDateTime) -> NaiveDateTime {
    t + Duration::hours(CHINA_OFFSET_HOURS)
}

/// The UTC instant a local day starts.
fn start_of(day: NaiveDate) -> NaiveDateTime {
    day.and_time(NaiveTime::MIN) - Duration::hours(CHINA_OFFSET_HOURS)
}

fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

fn month_text(day: NaiveDate) -> String {
    day.format("%Y-%m").to_string()
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn first_of_next_month(day: NaiveDate) -> NaiveDate {
    let first = first_of_month(day);
    first.checked_add_months(chrono::Months::new(1)).unwrap_or(first)
}

/// How `[from, to)` (UTC, `from < to`) is read; whole months from the monthly rollups only if
/// `use_months` (a grouping by day needs days).
pub fn plan(from: NaiveDateTime, to: NaiveDateTime, use_months: bool) -> Plan {
    let (lf, lt) = (local(from), local(to));
    let mut plan = Plan::default();
    let from_aligned = lf.time() == NaiveTime::MIN;
    // The first and the end of the whole days inside the window.
    let first = if from_aligned {
        lf.date()
    } else {
        lf.date() + Duration::days(1)
    };
    let end = lt.date();
    if !from_aligned {
        let day_end = start_of(lf.date() + Duration::days(1));
        plan.edges.push(Edge {
            day: day_text(lf.date()),
            from,
            to: to.min(day_end),
        });
    }
    let to_aligned = lt.time() == NaiveTime::MIN;
    // The day `to` cuts, unless the leading edge already holds it (a window within one day).
    if !to_aligned && (from_aligned || lt.date() > lf.date()) {
        plan.edges.push(Edge {
            day: day_text(lt.date()),
            from: from.max(start_of(lt.date())),
            to,
        });
    }
    if first >= end {
        return plan;
    }
    let month_first = if first.day() == 1 {
        first
    } else {
        first_of_next_month(first)
    };
    let month_end = first_of_month(end);
    if use_months && month_first < month_end {
        plan.months = Some((month_text(month_first), month_text(month_end)));
        for (a, b) in [(first, month_first), (month_end, end)] {
            if a < b {
                plan.days.push((day_text(a), day_text(b)));
            }
        }
    } else {
        plan.days.push((day_text(first), day_text(end)));
    }
    plan
}

/// The local days of `[from, to)` that the window touches, in order (for a grouping by day).
pub fn local_days(from: NaiveDateTime, to: NaiveDateTime) -> Vec<String> {
    let last = local(to - Duration::microseconds(1)).date();
    local(from)
        .date()
        .iter_days()
        .take_while(|d| *d <= last)
        .map(day_text)
        .collect()
}

/// The months of `[from, to)` that the window touches, in order (for a grouping by month).
pub fn local_months(from: NaiveDateTime, to: NaiveDateTime) -> Vec<String> {
    let last = first_of_month(local(to - Duration::microseconds(1)).date());
    let mut month = first_of_month(local(from).date());
    let mut months = Vec::new();
    while month <= last {
        months.push(month_text(month));
        month = first_of_next_month(month);
    }
    months
}

/// The local midnight that ends today, in UTC: the default end of a window.
pub fn end_of_local_day(now: NaiveDateTime) -> NaiveDateTime {
    start_of(local(now).date() + Duration::days(1))
}

/// Digits after the decimal point of a per-capita figure.
pub const PER_CAPITA_DECIMALS: usize = 20;

/// `numerator / denominator` as a decimal string with [`PER_CAPITA_DECIMALS`] digits, the digits of the
/// exact quotient cut there (never rounded up); `None` for a denominator that is not positive.
pub fn quotient(numerator: i64, denominator: i64) -> Option<String> {
    if denominator <= 0 {
        return None;
    }
    let (n, d) = (i128::from(numerator), i128::from(denominator));
    let sign = if n < 0 { "-" } else { "" };
    let n = n.abs();
    let mut rest = n % d;
    let mut digits = String::with_capacity(PER_CAPITA_DECIMALS);
    for _ in 0..PER_CAPITA_DECIMALS {
        rest *= 10;
        digits.push(char::from(b'0' + (rest / d) as u8));
        rest %= d;
    }
    Some(format!("{sign}{}.{digits}", n / d))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> NaiveDateTime {
        chrono::DateTime::parse_from_rfc3339(text).unwrap().naive_utc()
    }

    #[test]
    fn a_month_aligned_window_reads_only_months() {
        let p = plan(
            utc("2026-01-01T00:00:00+08:00"),
            utc("2026-04-01T00:00:00+08:00"),
            true,
        );
        assert_eq!(p.months, Some(("2026-01".into(), "2026-04".into())));
        assert!(p.days.is_empty() && p.edges.is_empty());
    }

    #[test]
    fn a_day_aligned_window_reads_days_around_its_whole_months() {
        let p = plan(
            utc("2026-01-20T00:00:00+08:00"),
            utc("2026-04-03T00:00:00+08:00"),
            true,
        );
        assert_eq!(p.months, Some(("2026-02".into(), "2026-04".into())));
        assert_eq!(
            p.days,
            vec![
                ("2026-01-20".into(), "2026-02-01".into()),
                ("2026-04-01".into(), "2026-04-03".into())
            ]
        );
        let by_day = plan(
            utc("2026-01-20T00:00:00+08:00"),
            utc("2026-04-03T00:00:00+08:00"),
            false,
        );
        assert_eq!(by_day.days, vec![("2026-01-20".into(), "2026-04-03".into())]);
        assert_eq!(by_day.months, None);
    }

    #[test]
    fn cut_days_are_read_from_the_activities() {
        let p = plan(
            utc("2026-01-19T23:00:00Z"),
            utc("2026-01-22T12:00:00+08:00"),
            true,
        );
        // 2026-01-19T23:00Z is 07:00 on the 20th in Shanghai.
        assert_eq!(
            p.edges,
            vec![
                Edge {
                    day: "2026-01-20".into(),
                    from: utc("2026-01-19T23:00:00Z"),
                    to: utc("2026-01-21T00:00:00+08:00"),
                },
                Edge {
                    day: "2026-01-22".into(),
                    from: utc("2026-01-22T00:00:00+08:00"),
                    to: utc("2026-01-22T12:00:00+08:00"),
                },
            ]
        );
        assert_eq!(p.days, vec![("2026-01-21".into(), "2026-01-22".into())]);
    }

    #[test]
    fn a_window_inside_one_day_is_one_edge() {
        let (from, to) = (utc("2026-01-20T08:00:00+08:00"), utc("2026-01-20T09:00:00+08:00"));
        let p = plan(from, to, true);
        assert_eq!(
            p.edges,
            vec![Edge {
                day: "2026-01-20".into(),
                from,
                to
            }]
        );
        assert!(p.days.is_empty() && p.months.is_none());
        let across = plan(
            utc("2026-01-20T23:00:00+08:00"),
            utc("2026-01-21T01:00:00+08:00"),
            true,
        );
        assert_eq!(across.edges.len(), 2);
        assert_eq!(across.edges[0].to, across.edges[1].from);
    }

    #[test]
    fn days_and_months_listed_are_those_the_window_touches() {
        let (from, to) = (utc("2026-01-30T12:00:00+08:00"), utc("2026-03-01T00:00:00+08:00"));
        assert_eq!(local_days(from, to).len(), 30);
        assert_eq!(local_days(from, to).last().unwrap(), "2026-02-28");
        assert_eq!(local_months(from, to), vec!["2026-01", "2026-02"]);
    }

    #[test]
    fn quotients_are_cut_not_rounded() {
        assert_eq!(quotient(2, 3).unwrap(), "0.66666666666666666666");
        assert_eq!(quotient(10, 4).unwrap(), "2.50000000000000000000");
        assert_eq!(
            quotient(i64::MAX, 1).unwrap(),
            format!("{}.{}", i64::MAX, "0".repeat(20))
        );
        assert_eq!(quotient(1, 0), None);
    }
}
