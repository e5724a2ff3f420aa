//! Encryption of stored API secrets. Signature checks need the secret itself, so a hash will not do;
//! secrets are sealed with XChaCha20-Poly1305 under the server's secrets key (configured, or generated
//! once and kept in the database like the other platform keys).
//!
//! The same key also seals personal data (phone numbers), which must be found again by value: a sealed
//! value cannot be searched, so each is stored beside a keyed hash, HMAC-SHA256 under a look-up key
//! derived from the secrets key. A plain SHA-256 would not do: eleven-digit phones are few enough to hash
//! them all, so a stolen database would give its phones back.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// XChaCha20-Poly1305's key: 256 bits.
const KEY_BYTES: usize = 32;
/// XChaCha20-Poly1305's nonce: 192 bits, long enough to be drawn at random for every seal.
const NONCE_BYTES: usize = 24;

/// What the look-up key is derived for: a new purpose gets a new label, never this key.
const LOOKUP_LABEL: &[u8] = b"tanhui/lookup-hash/v1";
/// What the key of accounts' pseudonyms in exported evidence is derived for.
const ACCOUNT_PSEUDONYM_LABEL: &[u8] = b"tanhui/account-pseudonym/v1";

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// HMAC-SHA256(secrets key, [`LOOKUP_LABEL`]): the key of [`SecretBox::lookup_hash`].
    lookup_key: [u8; 32],
    /// HMAC-SHA256(secrets key, [`ACCOUNT_PSEUDONYM_LABEL`]): the key of
    /// [`SecretBox::account_pseudonym`].
    pseudonym_key: [u8; 32],
}

impl SecretBox {
    pub fn from_hex(key_hex: &str) -> Result<SecretBox, String> {
        let bytes = hex::decode(key_hex.trim()).map_err(|_| "must be 64 hex characters".to_string())?;
        let key: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| "must be 32 bytes".to_string())?;
        Ok(SecretBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
            lookup_key: hmac_sha256(&key, LOOKUP_LABEL),
            pseudonym_key: hmac_sha256(&key, ACCOUNT_PSEUDONYM_LABEL),
        })
    }

    /// The keyed hash that finds a sealed value again: the same value gives the same hash (so it can be
    /// a unique key), and without the secrets key nobody can compute it. 64 hex characters.
    pub fn lookup_hash(&self, value: &str) -> String {
        hex::encode(hmac_sha256(&self.lookup_key, value.as_bytes()))
    }

    /// An account as exported evidence names it: the same account always gives the same pseudonym (so a
    /// verifier can check one person's activities against the caps), and without the secrets key nobody
    /// can tell which account it is, though account ids are small consecutive numbers. A key of its own,
    /// so a pseudonym is never a look-up hash of anything. 64 hex characters.
    pub fn account_pseudonym(&self, account_id: i64) -> String {
        hex::encode(hmac_sha256(
            &self.pseudonym_key,
            account_id.to_string().as_bytes(),
        ))
    }

    /// `base64(nonce ‖ ciphertext)`, with a fresh random 192-bit nonce.
    pub fn seal(&self, plaintext: &str) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(&XNonce::from(nonce), plaintext.as_bytes())
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend(sealed);
        STANDARD.encode(out)
    }

    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = STANDARD.decode(sealed).ok()?;
        if bytes.len() < NONCE_BYTES {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().ok()?;
        let plain = self.cipher.decrypt(&XNonce::from(nonce), ciphertext).ok()?;
        String::from_utf8(plain).ok()
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper() {
        let b = SecretBox::from_hex(&"ab".repeat(32)).unwrap();
        let sealed = b.seal("s3cret");
        assert_ne!(sealed, b.seal("s3cret"), "nonces differ");
        assert_eq!(b.open(&sealed).as_deref(), Some("s3cret"));
        let other = SecretBox::from_hex(&"cd".repeat(32)).unwrap();
        assert_eq!(other.open(&sealed), None);
        assert_eq!(b.open("AAAA"), None);
    }

    #[test]
    fn lookup_hashes_are_stable_keyed_and_hide_the_value() {
        let b = SecretBox::from_hex(&"ab".repeat(32)).unwrap();
        let other = SecretBox::from_hex(&"cd".repeat(32)).unwrap();
        let hash = b.lookup_hash("13800138000");
        assert_eq!(hash, b.lookup_hash("13800138000"));
        assert_ne!(hash, b.lookup_hash("13800138001"));
        assert_ne!(hash, other.lookup_hash("13800138000"));
        assert_eq!(hash.len(), 64);
        assert!(!hash.contains("13800138000"));
    }

    #[test]
    fn account_pseudonyms_are_stable_keyed_and_apart_from_lookup_hashes() {
        let b = SecretBox::from_hex(&"ab".repeat(32)).unwrap();
        let other = SecretBox::from_hex(&"cd".repeat(32)).unwrap();
        assert_eq!(b.account_pseudonym(7), b.account_pseudonym(7));
        assert_ne!(b.account_pseudonym(7), b.account_pseudonym(8));
        assert_ne!(b.account_pseudonym(7), other.account_pseudonym(7));
        assert_ne!(b.account_pseudonym(7), b.lookup_hash("7"));
        assert_eq!(b.account_pseudonym(7).len(), 64);
    }
}
