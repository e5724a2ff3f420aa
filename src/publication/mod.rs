//! Published rules: each active or retired version as a JWS signed with the platform's Ed25519 key, at a
//! stable public URL, so another platform or an auditor can apply exactly the same rule and prove which
//! version it used, with nothing but `/.well-known/jwks.json`.

pub mod handlers;
pub mod jws;
pub mod methodology;
pub mod region_parameters;
