//! Encryption of stored API secrets. Signature checks need the secret itself, so a hash will not do;
//! secrets are sealed with XChaCha20-Poly1305 under the server's secrets key (configured, or generated
//! once and kept in the database like the other platform keys).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

/// XChaCha20-Poly1305's key: 256 bits.
const KEY_BYTES: usize = 32;
/// XChaCha20-Poly1305's nonce: 192 bits, long enough to be drawn at random for every seal.
const NONCE_BYTES: usize = 24;

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
}

impl SecretBox {
    pub fn from_hex(key_hex: &str) -> Result<SecretBox, String> {
        let bytes = hex::decode(key_hex.trim()).map_err(|_| "must be 64 hex characters".to_string())?;
        let key: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| "must be 32 bytes".to_string())?;
        Ok(SecretBox {
            cipher: XChaCha20Poly1305::new(&key.into()),
        })
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
}
