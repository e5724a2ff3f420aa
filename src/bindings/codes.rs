//! One-time binding codes: generated, normalised and hashed. Pure.

use rand::Rng;
use sha2::{Digest, Sha256};

/// Crockford's base-32 alphabet: no I, L, O or U, so a code read aloud or typed from a screen is not
/// mistaken.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// 10 characters of 5 bits: 50 bits. With a provider's failures throttled and a code living ten
/// minutes, guessing one is out of reach.
pub const CODE_CHARS: usize = 10;

/// A new random code, `XXXXX-XXXXX` for reading.
pub fn generate() -> String {
    let mut rng = rand::thread_rng();
    let chars: String = (0..CODE_CHARS)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// The code as stored, whatever the case, spaces or hyphens it was typed with: the SHA-256 of its
/// characters in upper case, hex. `None` for a text that cannot be a code.
pub fn hash(typed: &str) -> Option<String> {
    let normal: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let well_formed = normal.len() == CODE_CHARS && normal.bytes().all(|b| ALPHABET.contains(&b));
    well_formed.then(|| hex::encode(Sha256::digest(normal.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_hashes_the_same_however_it_is_typed() {
        let code = generate();
        assert_eq!(code.len(), CODE_CHARS + 1);
        let stored = hash(&code).unwrap();
        assert_eq!(hash(&code.to_lowercase()), Some(stored.clone()));
        assert_eq!(hash(&code.replace('-', " ")), Some(stored.clone()));
        assert_eq!(hash(&code.replace('-', "")), Some(stored));
    }

    #[test]
    fn texts_that_cannot_be_codes_are_refused() {
        for bad in [
            "",
            "ABCDE",
            "ABCDE-FGHIJK",
            "ABCDE-FGHIL",
            "ABCDE-FGHIO",
            "ABCDE-FGHÍ0",
            "'; DROP--",
        ] {
            assert_eq!(hash(bad), None, "{bad}");
        }
    }

    #[test]
    fn codes_differ() {
        let codes: std::collections::HashSet<String> = (0..1000).map(|_| generate()).collect();
        assert_eq!(codes.len(), 1000);
    }
}
