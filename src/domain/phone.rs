//! Mainland China mobile numbers.

/// True when `s` is exactly `^1[3-9]\d{9}$`: 11 ASCII digits, the first `1`,
/// the second `3`-`9`.
///
/// Deliberately strict: no `+86` prefix, separators, surrounding whitespace
/// or trailing newline (unlike some regex engines' `$`), and no non-ASCII
/// digits such as full-width `１`. Callers normalise before validating.
pub fn is_mainland_mobile(s: &str) -> bool {
    // Matching on bytes is enough: multi-byte UTF-8 sequences contain no
    // ASCII bytes, so 11 ASCII-digit bytes are exactly 11 ASCII digits.
    match s.as_bytes() {
        [b'1', b'3'..=b'9', rest @ ..] => rest.len() == 9 && rest.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// Masks a phone number for display/logging: `13812345678` -> `138****5678`.
///
/// Works on characters, never panics, and never reveals more than 7
/// characters: inputs of 11 or more characters keep the first 3 and last 4
/// with a fixed `****` between (so the length is not revealed either);
/// anything shorter becomes plain `****`, because keeping 3 + 4 characters of
/// a short string would expose most or all of it.
pub fn mask_phone(s: &str) -> String {
    const STARS: &str = "****";
    let chars: Vec<char> = s.chars().collect();
    if chars.len() < 11 {
        return STARS.to_string();
    }
    let mut out: String = chars.iter().take(3).collect();
    out.push_str(STARS);
    out.extend(chars.iter().skip(chars.len().saturating_sub(4)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_valid_mobiles() {
        for s in ["13800138000", "13912345678", "19999999999", "16612345678"] {
            assert!(is_mainland_mobile(s), "{s}");
        }
    }

    #[test]
    fn rejects_invalid_mobiles() {
        for s in [
            "",
            "1381234567",   // 10 digits
            "138123456789", // 12 digits
            "12812345678",  // second digit 2
            "10812345678",  // second digit 0
            "23812345678",  // must start with 1
            "1381234567a",
            "+8613812345678",
            " 13812345678",
            "13812345678\n",
            "138-1234-5678",
            "１３８１２３４５６７８", // full-width digits
            "138１2345678",
        ] {
            assert!(!is_mainland_mobile(s), "{s:?}");
        }
    }

    #[test]
    fn masks_mobile() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
    }

    #[test]
    fn masks_other_inputs_without_leaking() {
        assert_eq!(mask_phone(""), "****");
        assert_eq!(mask_phone("12345"), "****");
        assert_eq!(mask_phone("1381234567"), "****");
        assert_eq!(mask_phone("+8613812345678"), "+86****5678");
        assert_eq!(mask_phone("电话号码是一三八一二三四五"), "电话号****二三四五");
    }

    proptest! {
        #[test]
        fn matches_reference_pattern(s in "\\PC{0,14}|1[0-9]{10}|1[3-9][0-9]{9}") {
            let chars: Vec<char> = s.chars().collect();
            let expected = chars.len() == 11
                && chars[0] == '1'
                && ('3'..='9').contains(&chars[1])
                && chars.iter().all(|c| c.is_ascii_digit());
            prop_assert_eq!(is_mainland_mobile(&s), expected);
        }

        #[test]
        fn mask_never_panics_and_hides_middle(s in any::<String>()) {
            let masked = mask_phone(&s);
            prop_assert!(masked.contains("****"));
            prop_assert!(masked.chars().count() <= 11);
        }
    }
}
