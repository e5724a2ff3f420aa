//! Compact JWS (RFC 7515) over any serializable payload, signed `EdDSA` (Ed25519, RFC 8037) with the
//! platform key that `/.well-known/jwks.json` serves, and named by its `kid`.

use actix_web::http::header;
use actix_web::HttpResponse;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;

use crate::ledger::signing::PlatformKey;

/// The media type of a compact JWS.
pub const MEDIA_TYPE: &str = "application/jose";

/// How long a published document may be cached: a version's status can still move (active ▸ retired).
const MAX_AGE_SECS: u32 = 60;

#[derive(Serialize)]
struct Header<'a> {
    alg: &'static str,
    kid: String,
    /// What the payload is, e.g. `tanhui-methodology+json`.
    typ: &'a str,
}

/// `header.payload.signature`, each part base64url without padding; the signature is over the first two
/// parts as sent. Ed25519 is deterministic: the same payload always signs the same.
pub fn sign<T: Serialize>(key: &PlatformKey, typ: &str, payload: &T) -> serde_json::Result<String> {
    let header = serde_json::to_vec(&Header {
        alg: "EdDSA",
        kid: key.key_id(),
        typ,
    })?;
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(payload)?)
    );
    let signature = URL_SAFE_NO_PAD.encode(key.sign(signing_input.as_bytes()));
    Ok(format!("{signing_input}.{signature}"))
}

/// The answer of a publication: the JWS of `payload`, as `application/jose`.
pub fn respond<T: Serialize>(key: &PlatformKey, typ: &str, payload: &T) -> serde_json::Result<HttpResponse> {
    Ok(HttpResponse::Ok()
        .content_type(MEDIA_TYPE)
        .insert_header((header::CACHE_CONTROL, format!("public, max-age={MAX_AGE_SECS}")))
        .body(sign(key, typ, payload)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::signing::verify;

    #[test]
    fn a_signed_payload_verifies_with_the_public_key_and_reads_back() {
        let key = PlatformKey::from_hex(&"42".repeat(32)).unwrap();
        let token = sign(&key, "test+json", &serde_json::json!({"formula": "count * k"})).unwrap();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).unwrap();
        let header: serde_json::Value = serde_json::from_slice(&decode(parts[0])).unwrap();
        assert_eq!(
            header,
            serde_json::json!({"alg": "EdDSA", "kid": key.key_id(), "typ": "test+json"})
        );
        let payload: serde_json::Value = serde_json::from_slice(&decode(parts[1])).unwrap();
        assert_eq!(payload["formula"], "count * k");
        let input = format!("{}.{}", parts[0], parts[1]);
        assert!(verify(
            &key.public_key_bytes(),
            input.as_bytes(),
            &decode(parts[2])
        ));
        // Another payload under the same signature does not verify.
        let forged = format!("{}.{}", parts[0], URL_SAFE_NO_PAD.encode(b"{\"formula\":\"k\"}"));
        assert!(!verify(
            &key.public_key_bytes(),
            forged.as_bytes(),
            &decode(parts[2])
        ));
    }
}
