//! The platform's Ed25519 key: it signs ledger blocks (and redemption vouchers).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::clock::Clock;
use crate::db::AnyConnection;
use crate::keys;

const STORED_SEED: &str = "ed25519_signing_seed";

#[derive(Clone)]
pub struct PlatformKey {
    signing: SigningKey,
}

impl std::fmt::Debug for PlatformKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PlatformKey({})", self.key_id())
    }
}

impl PlatformKey {
    /// From a configured hex seed, or the one generated on first start and kept in the database.
    pub fn load(
        conn: &mut AnyConnection,
        clock: &Clock,
        configured_hex_seed: Option<&str>,
    ) -> anyhow::Result<PlatformKey> {
        let seed_hex = match configured_hex_seed {
            Some(seed) => seed.to_string(),
            None => keys::get_or_create(conn, clock.now_naive(), STORED_SEED, || {
                let mut seed = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut seed);
                hex::encode(seed)
            })?,
        };
        PlatformKey::from_hex(&seed_hex).map_err(|e| anyhow::anyhow!("ledger.signing_key: {e}"))
    }

    pub fn from_hex(seed_hex: &str) -> Result<PlatformKey, String> {
        let bytes = hex::decode(seed_hex.trim()).map_err(|_| "must be 64 hex characters".to_string())?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| "must be 32 bytes".to_string())?;
        Ok(PlatformKey {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.signing.sign(message).to_bytes().to_vec()
    }

    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    pub fn public_key_bytes(&self) -> [u8; 32] {
        self.verifying_key().to_bytes()
    }

    /// A short, stable name for the key: the first 16 hex digits of SHA-256(public key).
    pub fn key_id(&self) -> String {
        hex::encode(&Sha256::digest(self.public_key_bytes())[..8])
    }

    /// The key for signing JWTs with `EdDSA` (vouchers); jsonwebtoken takes it as PKCS#8 DER.
    pub fn jwt_encoding_key(&self) -> jsonwebtoken::EncodingKey {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        let der = self
            .signing
            .to_pkcs8_der()
            .expect("an Ed25519 key always encodes as PKCS#8");
        jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes())
    }

    /// The public key as a JSON Web Key (RFC 8037), for `/.well-known/jwks.json`.
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.public_key_base64url(),
            "kid": self.key_id(),
            "alg": "EdDSA",
            "use": "sig",
        })
    }

    pub fn public_key_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.public_key_bytes())
    }
}

/// Checks an Ed25519 signature with only the public key.
pub fn verify(public_key: &[u8; 32], message: &[u8], signature: &[u8]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_with_the_public_key_only() {
        let key = PlatformKey::from_hex(&"11".repeat(32)).unwrap();
        let sig = key.sign(b"block");
        assert!(verify(&key.public_key_bytes(), b"block", &sig));
        assert!(!verify(&key.public_key_bytes(), b"blocK", &sig));
        assert!(PlatformKey::from_hex("zz").is_err());
        assert_eq!(key.key_id().len(), 16);
    }
}
