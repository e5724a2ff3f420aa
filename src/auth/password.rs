//! argon2id password hashing with configured cost.

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::config::AuthSettings;

#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    /// A hash of a random password, verified against when the phone is unknown so that an unknown phone
    /// and a wrong password take the same time.
    decoy: String,
}

impl PasswordHasher {
    pub fn new(settings: &AuthSettings) -> anyhow::Result<PasswordHasher> {
        let params = Params::new(
            settings.argon2_memory_kib,
            settings.argon2_iterations,
            settings.argon2_parallelism,
            None,
        )
        .map_err(|e| anyhow::anyhow!("auth.argon2_*: {e}"))?;
        let mut hasher = PasswordHasher {
            params,
            decoy: String::new(),
        };
        hasher.decoy = hasher.hash(&uuid::Uuid::new_v4().to_string())?;
        Ok(hasher)
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub fn hash(&self, password: &str) -> anyhow::Result<String> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
    }

    /// Verifies `password` against `stored`, or against the decoy when there is no stored hash.
    /// The cost parameters come from the stored hash, so hashes made under older settings still verify.
    pub fn verify(&self, password: &str, stored: Option<&str>) -> bool {
        let (hash, real) = match stored {
            Some(h) => (h, true),
            None => (self.decoy.as_str(), false),
        };
        let Ok(parsed) = PasswordHash::new(hash) else {
            return false;
        };
        let matches = self
            .argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        matches && real
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cheap() -> AuthSettings {
        let mut s = crate::config::Settings::defaults().auth;
        s.argon2_memory_kib = 64;
        s.argon2_iterations = 1;
        s
    }

    #[test]
    fn hashes_verify_and_are_argon2id() {
        let h = PasswordHasher::new(&cheap()).unwrap();
        let stored = h.hash("correct horse battery").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(h.verify("correct horse battery", Some(&stored)));
        assert!(!h.verify("wrong password!", Some(&stored)));
        assert!(!h.verify("correct horse battery", None));
        assert!(!h.verify("x", Some("not a hash")));
    }
}
