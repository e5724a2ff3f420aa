//! How a sale's proceeds are split: the platform's share in basis points, and the rest pro rata to each
//! holder's grams, the fen that rounding leaves going one each to the largest remainders. Pure
//! arithmetic, in 128 bits, so that every fen of the proceeds is paid to someone and none twice.

/// Basis points in the whole.
const WHOLE_BPS: i128 = 10_000;

/// The platform's part of `proceeds` at `bps` basis points (at most the whole), rounded down: the
/// people get the fen.
pub fn platform_part(proceeds: i64, bps: u32) -> i64 {
    let bps = i128::from(bps).min(WHOLE_BPS);
    // At most `proceeds`, so it fits back.
    (i128::from(proceeds) * bps / WHOLE_BPS) as i64
}

/// Splits `amount` (≥ 0) among holders pro rata to their `grams` (each > 0): each gets
/// `floor(amount × g / total)`, then the fen left over go one each to the holders with the largest
/// remainders, ties to the earlier holder. The shares sum to `amount` exactly.
pub fn pro_rata(amount: i64, grams: &[i64]) -> Vec<i64> {
    let total: i128 = grams.iter().map(|&g| i128::from(g)).sum();
    if total <= 0 || amount <= 0 {
        return vec![0; grams.len()];
    }
    let mut shares = Vec::with_capacity(grams.len());
    let mut remainders = Vec::with_capacity(grams.len());
    for (i, &g) in grams.iter().enumerate() {
        // Below 2^126: both factors are below 2^63.
        let exact = i128::from(amount) * i128::from(g);
        // At most `amount`: g ≤ total.
        shares.push((exact / total) as i64);
        remainders.push((exact % total, i));
    }
    // Each share lost less than one fen to rounding: fewer than `grams.len()` are left.
    let left = amount - shares.iter().sum::<i64>();
    remainders.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in remainders.iter().take(left as usize) {
        shares[i] += 1;
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_follow_the_grams_and_sum_to_the_amount() {
        assert_eq!(pro_rata(100, &[1, 1, 2]), [25, 25, 50]);
        assert_eq!(pro_rata(0, &[5, 7]), [0, 0]);
        assert_eq!(pro_rata(7, &[1_000_000]), [7]);
    }

    #[test]
    fn leftover_fen_go_to_the_largest_remainders_then_the_earlier_holder() {
        // 10 × 1/3 each: 3 each and one fen left, to the first of three equal remainders.
        assert_eq!(pro_rata(10, &[1, 1, 1]), [4, 3, 3]);
        // 10 × (2, 3, 5)/10 split exactly; 11 × the same: 2.2, 3.3, 5.5 → the 0.5 takes the fen.
        assert_eq!(pro_rata(10, &[2, 3, 5]), [2, 3, 5]);
        assert_eq!(pro_rata(11, &[2, 3, 5]), [2, 3, 6]);
    }

    #[test]
    fn extreme_amounts_and_grams_neither_overflow_nor_lose_a_fen() {
        let grams = [i64::MAX / 3, i64::MAX / 3, 1];
        let shares = pro_rata(i64::MAX, &grams);
        assert_eq!(
            shares.iter().map(|&s| i128::from(s)).sum::<i128>(),
            i128::from(i64::MAX)
        );
        assert!(shares[2] <= 1);
        let many: Vec<i64> = (1..=1000).collect();
        assert_eq!(pro_rata(999_999, &many).iter().sum::<i64>(), 999_999);
    }

    #[test]
    fn the_platform_part_rounds_down_and_is_at_most_everything() {
        assert_eq!(platform_part(10_001, 1_000), 1_000);
        assert_eq!(platform_part(i64::MAX, 10_000), i64::MAX);
        assert_eq!(platform_part(i64::MAX, 20_000), i64::MAX);
        assert_eq!(platform_part(99, 0), 0);
    }
}
