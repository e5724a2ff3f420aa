//! Where a read of public data goes: the replica for an anonymous caller, the primary for one who
//! presents credentials (a bearer token or a signing key), whose own writes may have gone through any
//! instance and must be visible to them at once (docs/scaling.md, "Read replica").

use std::future::{ready, Ready};

use actix_web::{dev::Payload, FromRequest, HttpRequest};

use crate::db::{AnyConnection, Db};
use crate::error::ApiError;

/// Whether the request carries credentials. Only their presence counts: a forged token reads the
/// primary, which is never wrong, only less offloaded.
#[derive(Debug, Clone, Copy)]
pub struct Reader {
    anonymous: bool,
}

impl FromRequest for Reader {
    type Error = actix_web::Error;
    type Future = Ready<Result<Reader, actix_web::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let headers = req.headers();
        ready(Ok(Reader {
            anonymous: !headers.contains_key("authorization") && !headers.contains_key("x-key-id"),
        }))
    }
}

impl Reader {
    /// A caller known by other means (a verified signature).
    pub fn signed_in() -> Reader {
        Reader { anonymous: false }
    }

    /// Runs read-only `f` on the replica for an anonymous caller (see [`Db::read`]), else on the primary.
    pub async fn run<T, F>(self, db: &Db, f: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        if self.anonymous {
            db.read(f).await
        } else {
            db.run(f).await
        }
    }
}
