//! The one source of the current time. Everything that reads the time takes a [`Clock`], so tests can
//! move time forward (expiry, claim windows, caps across midnight in Asia/Shanghai, quarter boundaries)
//! instead of sleeping.
//!
//! Times are truncated to whole microseconds, as both backends store them: a time read back from the
//! database equals the time that was written.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, SubsecRound, Utc};

/// Reads the current time: the system's, or the system's shifted by a test's [`ClockControl`].
#[derive(Debug, Clone, Default)]
pub struct Clock {
    /// Microseconds added to the system time; `None` in production.
    shift_micros: Option<Arc<AtomicI64>>,
}

/// A test's handle on a shifted clock: time keeps flowing, and `advance` jumps it forward.
#[derive(Debug, Clone)]
pub struct ClockControl {
    shift_micros: Arc<AtomicI64>,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Clock {
        Clock { shift_micros: None }
    }

    /// A clock that starts at the system time and that the returned control can move forward.
    pub fn shiftable() -> (Clock, ClockControl) {
        let shift = Arc::new(AtomicI64::new(0));
        (
            Clock {
                shift_micros: Some(shift.clone()),
            },
            ClockControl { shift_micros: shift },
        )
    }

    /// Now, to the microsecond.
    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now().trunc_subsecs(6);
        match &self.shift_micros {
            None => now,
            Some(shift) => now + Duration::microseconds(shift.load(Ordering::Relaxed)),
        }
    }

    /// Now as stored in the database (UTC without an offset).
    pub fn now_naive(&self) -> NaiveDateTime {
        self.now().naive_utc()
    }

    /// Now as unix seconds (JWT claims, request signatures).
    pub fn unix_seconds(&self) -> i64 {
        self.now().timestamp()
    }
}

impl ClockControl {
    /// Another reader of this clock (a second instance in a test shares the first one's time).
    pub fn clock(&self) -> Clock {
        Clock {
            shift_micros: Some(self.shift_micros.clone()),
        }
    }

    /// Moves the clock forward by `by` (time then keeps flowing from there).
    pub fn advance(&self, by: Duration) {
        assert!(by >= Duration::zero(), "the clock only moves forward");
        let micros = by.num_microseconds().expect("a shift of less than 292,000 years");
        self.shift_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Moves the clock forward to `at` (no effect if `at` has passed).
    pub fn advance_to(&self, at: DateTime<Utc>) {
        let now =
            Utc::now().trunc_subsecs(6) + Duration::microseconds(self.shift_micros.load(Ordering::Relaxed));
        if at > now {
            self.advance(at - now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Timelike;

    #[test]
    fn now_is_whole_microseconds() {
        let now = Clock::system().now();
        assert_eq!(now.nanosecond() % 1_000, 0);
    }

    #[test]
    fn a_shifted_clock_moves_forward_and_keeps_flowing() {
        let (clock, control) = Clock::shiftable();
        let before = clock.now();
        control.advance(Duration::days(1));
        let after = clock.now();
        assert!(after - before >= Duration::days(1));
        assert!(after - before < Duration::days(1) + Duration::seconds(5));
        let target = after + Duration::hours(3);
        control.advance_to(target);
        assert!(clock.now() >= target);
        control.advance_to(before);
        assert!(clock.now() >= target, "advance_to never moves back");
    }
}
