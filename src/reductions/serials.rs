//! How an issued batch's grams become whole tonnes and serial numbers. Pure.

use chrono::{Datelike, NaiveDateTime};

use crate::domain::catalog::china;

/// Grams in one tonne of CO₂e.
pub const TONNE_G: i64 = 1_000_000;

/// Whole tonnes in `reduction_g` and the grams left over (never issued; see docs/registry.md).
pub fn whole_tonnes(reduction_g: i64) -> (i64, i64) {
    (reduction_g.div_euclid(TONNE_G), reduction_g.rem_euclid(TONNE_G))
}

/// The year serials issued at `at` (UTC) are numbered in: the Asia/Shanghai calendar year.
pub fn serial_year(at: NaiveDateTime) -> i32 {
    at.and_utc().with_timezone(&china()).year()
}

/// Serial `n` of a region and year: `CN-{region_code}-{year}-{n:06}` (wider past 999,999).
pub fn serial(region_code: &str, year: i32, n: i64) -> String {
    format!("CN-{region_code}-{year}-{n:06}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tonnes_are_whole_and_the_remainder_is_kept_apart() {
        assert_eq!(whole_tonnes(0), (0, 0));
        assert_eq!(whole_tonnes(999_999), (0, 999_999));
        assert_eq!(whole_tonnes(1_000_000), (1, 0));
        assert_eq!(whole_tonnes(2_500_001), (2, 500_001));
        assert_eq!(whole_tonnes(i64::MAX), (9_223_372_036_854, 775_807));
    }

    #[test]
    fn serials_are_numbered_in_the_local_year() {
        let new_year_in_shanghai = chrono::NaiveDate::from_ymd_opt(2026, 12, 31)
            .unwrap()
            .and_hms_opt(16, 0, 0)
            .unwrap();
        assert_eq!(serial_year(new_year_in_shanghai), 2027);
        assert_eq!(
            serial_year(new_year_in_shanghai - chrono::Duration::seconds(1)),
            2026
        );
        assert_eq!(serial("440300", 2027, 7), "CN-440300-2027-000007");
        assert_eq!(serial("CN", 2027, 1_234_567), "CN-CN-2027-1234567");
    }
}
