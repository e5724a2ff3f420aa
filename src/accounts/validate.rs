//! Registration input rules, collected so that one answer lists every field that is wrong.

use serde::Deserialize;

pub use crate::domain::account::AccountType;
use crate::domain::FieldError;
use crate::domain::{credit_code, phone};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Mainland mobile number, `1[3-9]` then 9 digits.
    pub phone: String,
    /// 10 to 128 characters.
    pub password: String,
    pub display_name: String,
    pub account_type: AccountType,
    /// GB/T 2260 code of the account's home region, e.g. `440300`.
    pub region_code: String,
    /// 统一社会信用代码; required for businesses.
    pub credit_code: Option<String>,
}

/// A registration whose every field has been checked (except that the region exists: that needs the database).
#[derive(Debug)]
pub struct ValidRegistration {
    pub phone: String,
    pub password: String,
    pub display_name: String,
    pub account_type: AccountType,
    pub region_code: String,
    pub credit_code: Option<String>,
}

/// The shortest password: a passphrase of a few words, not a PIN.
pub const PASSWORD_MIN_CHARS: usize = 10;
/// The longest password: any passphrase fits, and argon2 is never fed megabytes.
pub const PASSWORD_MAX_CHARS: usize = 128;
/// The longest display name: what a profile and a transfer's counterparty show.
const DISPLAY_NAME_MAX_CHARS: usize = 64;
/// Longer than any GB/T 2260 code (six digits) or the nation's `CN`: no region can have it, so the
/// database is not asked.
const REGION_CODE_MAX_LEN: usize = 16;

pub fn password_problem(password: &str) -> Option<String> {
    let chars = password.chars().count();
    (!(PASSWORD_MIN_CHARS..=PASSWORD_MAX_CHARS).contains(&chars))
        .then(|| format!("must be {PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters"))
}

/// Embeddings, overrides and isolates (U+202A–U+202E, U+2066–U+2069): they reorder the text shown
/// around them, so one name can pass for another.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Zero-width space, non-joiner, joiner, word joiner and the byte-order mark: invisible, so two names
/// that look the same can differ.
fn is_zero_width(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}')
}

pub fn display_name_problem(name: &str) -> Option<String> {
    let trimmed = name.trim();
    if trimmed.is_empty() && !name.is_empty() {
        Some("must not be only whitespace".into())
    } else if trimmed.is_empty() || trimmed.chars().count() > DISPLAY_NAME_MAX_CHARS {
        Some(format!("must be 1 to {DISPLAY_NAME_MAX_CHARS} characters"))
    } else if trimmed.chars().any(char::is_control) {
        Some("must not contain control characters".into())
    } else if trimmed.chars().any(is_bidi_control) {
        Some("must not contain bidirectional controls (U+202A–U+202E, U+2066–U+2069)".into())
    } else if trimmed.chars().any(is_zero_width) {
        Some("must not contain zero-width characters (U+200B–U+200D, U+2060, U+FEFF)".into())
    } else {
        None
    }
}

/// The registration checked, or every field that is wrong.
pub fn validate(req: RegisterRequest) -> Result<ValidRegistration, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: String| {
        errors.push(FieldError {
            field: field.into(),
            message,
        })
    };
    if !phone::is_mainland_mobile(&req.phone) {
        fail(
            "phone",
            "must be a mainland mobile number (11 digits starting 13-19)".into(),
        );
    }
    if let Some(problem) = password_problem(&req.password) {
        fail("password", problem);
    }
    if let Some(problem) = display_name_problem(&req.display_name) {
        fail("display_name", problem);
    }
    if req.region_code.is_empty() || req.region_code.len() > REGION_CODE_MAX_LEN {
        fail("region_code", "unknown region".into());
    }
    let credit_code = match (req.account_type, req.credit_code.as_deref().map(str::trim)) {
        (AccountType::Business, None) | (AccountType::Business, Some("")) => {
            fail("credit_code", "required for business accounts".into());
            None
        }
        (AccountType::Business, Some(code)) => match credit_code::validate(code) {
            Ok(normalized) => Some(normalized),
            Err(e) => {
                fail("credit_code", e.to_string());
                None
            }
        },
        // A form's empty field is no credit code: the same as leaving it out.
        (AccountType::Individual, None) | (AccountType::Individual, Some("")) => None,
        (AccountType::Individual, Some(_)) => {
            fail("credit_code", "only business accounts carry a credit code".into());
            None
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(ValidRegistration {
        phone: req.phone,
        password: req.password,
        display_name: req.display_name.trim().to_string(),
        account_type: req.account_type,
        region_code: req.region_code,
        credit_code,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in ["小明", "Zhang Wei", "  李 雷  ", "O'Brien-Smith", "Ada 🌱"] {
            assert_eq!(display_name_problem(name), None, "{name:?}");
        }
    }

    #[test]
    fn names_of_only_whitespace_are_refused() {
        for name in [" ", "   ", "\t\n", "\u{3000}", "\u{00A0}\u{2003}", "\u{2028}"] {
            let problem = display_name_problem(name).unwrap_or_else(|| panic!("{name:?} accepted"));
            assert!(problem.contains("whitespace"), "{name:?}: {problem}");
        }
        assert!(display_name_problem("").is_some());
    }

    #[test]
    fn bidirectional_controls_are_refused() {
        let controls = ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}');
        for c in controls {
            for name in [format!("{c}admin"), format!("ad{c}min"), format!("admin{c}")] {
                let problem = display_name_problem(&name).unwrap_or_else(|| panic!("{name:?} accepted"));
                assert!(problem.contains("bidirectional"), "{name:?}: {problem}");
            }
        }
        // The classic: "txt.exe" shown as "exe.txt".
        assert!(display_name_problem("\u{202E}txt.exe").is_some());
    }

    #[test]
    fn zero_width_characters_are_refused() {
        for c in ['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'] {
            for name in [
                format!("{c}小明"),
                format!("小{c}明"),
                format!("小明{c}"),
                c.to_string(),
            ] {
                let problem = display_name_problem(&name).unwrap_or_else(|| panic!("{name:?} accepted"));
                assert!(problem.contains("zero-width"), "{name:?}: {problem}");
            }
        }
    }

    #[test]
    fn registration_names_the_display_name() {
        let err = validate(RegisterRequest {
            phone: "13800138000".into(),
            password: "correct horse battery".into(),
            display_name: "ad\u{200B}min".into(),
            account_type: AccountType::Individual,
            region_code: "440300".into(),
            credit_code: None,
        })
        .unwrap_err();
        assert_eq!(err.len(), 1, "{err:?}");
        assert_eq!(err[0].field, "display_name");
    }
}
