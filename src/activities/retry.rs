//! Retries that today's rules refuse. An event stored while its rules let it in (a methodology version
//! since retired, a data schema since tightened, a region since removed) is answered as stored when its
//! client retries it, as every replay is, and not with today's refusal: a client that lost the answer
//! must be able to learn what became of its event.

use super::ingest;
use super::model::{self, EventKey, Outcome, Poster};
use super::request::{self, ActivityRequest};
use super::store;
use crate::db::prepared::Planning;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// What recognises a request as a retry of a stored event: its key and its digest.
pub struct RetryOf {
    key: (i64, i64, String),
    digest: String,
}

impl RetryOf {
    pub fn of(req: &ActivityRequest, poster: &Poster) -> ApiResult<RetryOf> {
        Ok(RetryOf {
            key: (
                poster.account_id,
                model::poster_of(poster.provider_id),
                req.client_event_id.clone(),
            ),
            digest: request::digest(req)?,
        })
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }
}

/// An event refused before it reached the writer, with what would recognise it as a retry.
pub struct Refused {
    error: ApiError,
    /// Once the request was read (boxed: the refusal travels in every `Result` of the batch loop).
    retry_of: Option<Box<RetryOf>>,
}

impl Refused {
    pub fn new(error: ApiError, retry_of: RetryOf) -> Refused {
        Refused {
            error,
            retry_of: Some(Box::new(retry_of)),
        }
    }

    /// The event's answer, once stored events were looked up.
    fn answer(self, stored: &store::StoredAnswers) -> ApiResult<Outcome> {
        match self
            .retry_of
            .as_deref()
            .and_then(|r| Some((stored.get(&r.key)?, &r.digest)))
        {
            Some((found, digest)) => Ok(ingest::replay(found.clone(), digest)?),
            None => Err(self.error),
        }
    }

    fn looked_up(&self) -> Option<&(i64, i64, String)> {
        self.retry_of.as_deref().map(|r| &r.key)
    }
}

impl From<ApiError> for Refused {
    /// A request that could not even be read: it is no retry of anything stored.
    fn from(error: ApiError) -> Refused {
        Refused {
            error,
            retry_of: None,
        }
    }
}

/// Each refused event's answer, in order: its stored answer where one is stored under its key (a replay,
/// or a conflict when the body differs), else its refusal. The database is asked once, and only when a
/// rule refused a readable event. A failed lookup leaves the refusals as they are: it must not turn a
/// client's mistake into a 5xx, nor fail a batch whose other events are already stored.
pub async fn answer(state: &AppState, refused: Vec<Refused>) -> Vec<ApiResult<Outcome>> {
    let keys: Vec<(i64, i64, String)> = refused.iter().filter_map(Refused::looked_up).cloned().collect();
    let stored = if keys.is_empty() {
        store::StoredAnswers::new()
    } else {
        let lookup = state
            .db
            .run(move |conn| {
                let keys: Vec<EventKey<'_>> = keys.iter().map(|(a, p, id)| (*a, *p, id.as_str())).collect();
                Ok(store::stored_answers(conn, &keys, Planning::EachTime)?)
            })
            .await;
        lookup.unwrap_or_else(|e| {
            tracing::warn!(error = %e.detail, "stored events of refused ones not looked up");
            store::StoredAnswers::new()
        })
    };
    refused.into_iter().map(|r| r.answer(&stored)).collect()
}

/// [`answer`] for one event.
pub async fn answer_one(state: &AppState, refused: Refused) -> ApiResult<Outcome> {
    answer(state, vec![refused])
        .await
        .pop()
        .unwrap_or_else(|| Err(ApiError::unavailable("no answer for this event")))
}
