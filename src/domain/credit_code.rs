//! China's Unified Social Credit Code (统一社会信用代码), GB 32100-2015.
//!
//! An 18-character identifier: 17 data characters followed by one check
//! character. Only the character set and the check character are verified
//! here; the meaning of positions 1-2 (registration authority / entity type)
//! and 3-8 (administrative division) is deliberately *not* checked, because
//! those code tables change over time and a stale table would reject real
//! organisations. The checksum alone already catches every single-character
//! typo (see the property tests).

/// The 31-character alphabet of GB 32100-2015. `I`, `O`, `S`, `V` and `Z`
/// are excluded because they are easily confused with `1`, `0`, `5`, `U` and
/// `2`. A character's numeric value is its index in this string.
const ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

/// Position weights 1..17: 3^(i-1) mod 31, as tabulated in the standard.
const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

/// Total length of a code, check character included.
const CODE_LEN: usize = 18;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CreditCodeError {
    #[error("must be 18 characters")]
    Length,
    /// `position` is 1-based, matching how the standard numbers positions.
    #[error("character {position} (`{found}`) is not allowed")]
    Character { position: usize, found: char },
    #[error("check character should be `{expected}`")]
    Checksum { expected: char },
}

/// Value of `c` in the alphabet after ASCII upper-casing, or `None`.
fn value_of(c: char) -> Option<u32> {
    let upper = c.to_ascii_uppercase();
    // Non-ASCII chars can never be in the alphabet; checking first also keeps
    // the `as u8` below lossless.
    if !upper.is_ascii() {
        return None;
    }
    let byte = upper as u8;
    ALPHABET
        .iter()
        .position(|&a| a == byte)
        .and_then(|i| u32::try_from(i).ok())
}

/// Check character for 17 alphabet values.
fn check_for(values: &[u32; 17]) -> char {
    let sum: u32 = values.iter().zip(WEIGHTS).map(|(v, w)| v * w).sum();
    // `(31 - sum % 31) % 31` is always in 0..31, so indexing cannot fail.
    char::from(ALPHABET[((31 - sum % 31) % 31) as usize])
}

/// Validates a code and returns it upper-cased.
///
/// Callers are expected to trim surrounding whitespace; any whitespace that
/// reaches here is reported as a disallowed character. ASCII lower-case
/// letters are accepted and normalised, since people often type codes that
/// way and the standard has no lower-case/upper-case distinction.
///
/// Errors are reported in a fixed order: length first (counted in
/// characters, not bytes), then the first disallowed character (the check
/// character included), then the checksum.
pub fn validate(code: &str) -> Result<String, CreditCodeError> {
    // `take` bounds the work on very long inputs.
    if code.chars().take(CODE_LEN + 1).count() != CODE_LEN {
        return Err(CreditCodeError::Length);
    }
    let mut values = [0u32; 17];
    for (i, c) in code.chars().enumerate() {
        let v = value_of(c).ok_or(CreditCodeError::Character {
            position: i + 1,
            found: c,
        })?;
        // The 18th char has no slot: it only has to be in the alphabet here,
        // and is compared against the computed check char below.
        if let Some(slot) = values.get_mut(i) {
            *slot = v;
        }
    }
    let expected = check_for(&values);
    let normalized = code.to_ascii_uppercase();
    if !normalized.ends_with(expected) {
        return Err(CreditCodeError::Checksum { expected });
    }
    Ok(normalized)
}

/// Computes the check character for the first 17 characters of a code.
///
/// Returns `None` unless `first17` is exactly 17 alphabet characters
/// (ASCII lower-case letters are accepted, as in [`validate`]).
pub fn check_char(first17: &str) -> Option<char> {
    let mut values = [0u32; 17];
    let mut chars = first17.chars();
    for slot in &mut values {
        *slot = value_of(chars.next()?)?;
    }
    if chars.next().is_some() {
        return None;
    }
    Some(check_for(&values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Real published codes. Each one was recomputed with an independent
    /// script while writing this module; they are not synthetic.
    const REAL_CODES: &[&str] = &[
        // The worked example used throughout GB 32100-2015 material.
        "91350100M000100Y43",
        // Huawei Technologies Co., Ltd. (华为技术有限公司), as listed on
        // Wikipedia's infobox.
        "914403001922038216",
        // Shenzhen Tencent Computer Systems Co., Ltd. (checks 'X' in the body
        // and a letter check character).
        "9144030071526726XG",
        // Beijing Baidu Netcom Science and Technology Co., Ltd.
        "91110000802100433B",
        // Xiaomi Technology Co., Ltd. (小米科技有限责任公司).
        "91110108551385082Q",
        // Two more codes seen in public material; valid under the algorithm,
        // but their owners are deliberately not named here (unverified).
        "91110000600037341L",
        "91440300708461136T",
    ];

    #[test]
    fn accepts_real_codes() {
        for code in REAL_CODES {
            assert_eq!(validate(code).as_deref(), Ok(*code), "{code}");
            let (body, check) = code.split_at(17);
            assert_eq!(check_char(body).map(String::from).as_deref(), Some(check));
        }
    }

    #[test]
    fn check_digit_zero_case() {
        // A sum that is a multiple of 31 must give '0', not index 31.
        assert_eq!(check_char("00000000000000000"), Some('0'));
        assert_eq!(
            validate("000000000000000000").as_deref(),
            Ok("000000000000000000")
        );
    }

    #[test]
    fn normalises_lower_case() {
        assert_eq!(
            validate("9144030071526726xg").as_deref(),
            Ok("9144030071526726XG")
        );
        assert_eq!(
            validate("91350100m000100y43").as_deref(),
            Ok("91350100M000100Y43")
        );
        assert_eq!(check_char("91350100m000100y4"), Some('3'));
    }

    #[test]
    fn length_errors() {
        assert_eq!(validate(""), Err(CreditCodeError::Length));
        assert_eq!(validate("91350100M000100Y4"), Err(CreditCodeError::Length));
        assert_eq!(validate("91350100M000100Y433"), Err(CreditCodeError::Length));
        // Surrounding whitespace is the caller's job to trim.
        assert_eq!(validate(" 91350100M000100Y43"), Err(CreditCodeError::Length));
        // 18 bytes but 6 chars: length is counted in characters.
        assert_eq!(validate("统一社会信用"), Err(CreditCodeError::Length));
    }

    #[test]
    fn character_errors_report_first_bad_position() {
        assert_eq!(
            validate("I1350100M000100Y43"),
            Err(CreditCodeError::Character {
                position: 1,
                found: 'I'
            })
        );
        assert_eq!(
            validate("91350100O000100Y43"),
            Err(CreditCodeError::Character {
                position: 9,
                found: 'O'
            })
        );
        // Lower-case excluded letters are reported as typed.
        assert_eq!(
            validate("91350100M000100s43"),
            Err(CreditCodeError::Character {
                position: 16,
                found: 's'
            })
        );
        // The check character itself must be in the alphabet.
        assert_eq!(
            validate("91350100M000100Y4Z"),
            Err(CreditCodeError::Character {
                position: 18,
                found: 'Z'
            })
        );
        // Multi-byte characters: position is in characters, not bytes.
        assert_eq!(
            validate("9135010é0M00100Y43"),
            Err(CreditCodeError::Character {
                position: 8,
                found: 'é'
            })
        );
        // The first bad position wins.
        assert_eq!(
            validate("9 350100M00010-Y43"),
            Err(CreditCodeError::Character {
                position: 2,
                found: ' '
            })
        );
    }

    #[test]
    fn checksum_error_names_expected_char() {
        assert_eq!(
            validate("91350100M000100Y44"),
            Err(CreditCodeError::Checksum { expected: '3' })
        );
        assert_eq!(
            validate("9144030071526726XH"),
            Err(CreditCodeError::Checksum { expected: 'G' })
        );
    }

    #[test]
    fn check_char_rejects_bad_input() {
        assert_eq!(check_char(""), None);
        assert_eq!(check_char("91350100M000100Y"), None);
        assert_eq!(check_char("91350100M000100Y43"), None);
        assert_eq!(check_char("91350100M000100V4"), None);
        assert_eq!(check_char("9135010é0M00100Y4"), None);
    }

    #[test]
    fn error_messages() {
        assert_eq!(CreditCodeError::Length.to_string(), "must be 18 characters");
        assert_eq!(
            CreditCodeError::Character {
                position: 3,
                found: 'O'
            }
            .to_string(),
            "character 3 (`O`) is not allowed"
        );
        assert_eq!(
            CreditCodeError::Checksum { expected: 'X' }.to_string(),
            "check character should be `X`"
        );
    }

    fn alphabet_char() -> impl Strategy<Value = char> {
        (0..ALPHABET.len()).prop_map(|i| char::from(ALPHABET[i]))
    }

    proptest! {
        #[test]
        fn validate_never_panics(s in any::<String>()) {
            let _ = validate(&s);
            let _ = check_char(&s);
        }

        #[test]
        fn validate_never_panics_near_18(s in "\\PC{16,20}") {
            // Lengths around 18 reach the per-character loop more often.
            let _ = validate(&s);
        }

        #[test]
        fn check_char_round_trips_and_catches_single_substitutions(
            body in proptest::collection::vec(alphabet_char(), 17),
            pos in 0usize..18,
            // A non-zero offset guarantees the replacement differs, without
            // the rejections `prop_assume!` would cause.
            offset in 1u32..31,
        ) {
            let body: String = body.into_iter().collect();
            let check = check_char(&body).ok_or_else(|| TestCaseError::fail("no check char"))?;
            let code = format!("{body}{check}");
            prop_assert_eq!(validate(&code), Ok(code.clone()));
            prop_assert_eq!(validate(&code.to_ascii_lowercase()), Ok(code.clone()));

            let mut chars: Vec<char> = code.chars().collect();
            let old = value_of(chars[pos]).ok_or_else(|| TestCaseError::fail("not in alphabet"))?;
            chars[pos] = char::from(ALPHABET[((old + offset) % 31) as usize]);
            let mutated: String = chars.into_iter().collect();
            prop_assert!(
                matches!(validate(&mutated), Err(CreditCodeError::Checksum { .. })),
                "{} should fail", mutated
            );
        }
    }
}
