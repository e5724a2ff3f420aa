//! Retries that today's rules refuse. An event stored while its rules let it in (a methodology version
//! since retired, a data schema since tightened, a region since removed) is answered as stored when its
//! client retries it, as every replay is, and not with today's refusal: a client that lost the answer
//! must be able to learn what became of its event.

use super::ingest::{self, Outcome};
use super::store;
use crate::db::prepared::Planning;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

type RetryOf = ((i64, i64, String), String);

/// An event refused before it reached the writer, with what would recognise it as a retry.
pub struct Refused {
    error: ApiError,
    /// (account, poster, `client_event_id`) and the request's digest, once the request was read (boxed:
    /// the refusal travels in every `Result` of the batch loop).
    retry_of: Option<Box<RetryOf>>,
}

impl Refused {
    /// `retry_of`: the poster's account and provider, the `client_event_id` and the request's digest.
    pub fn new(error: ApiError, retry_of: (i64, Option<i64>, String, String)) -> Refused {
        let (account_id, provider_id, client_event_id, digest) = retry_of;
        let key = (account_id, store::poster_of(provider_id), client_event_id);
        Refused {
            error,
            retry_of: Some(Box::new((key, digest))),
        }
    }

    /// The event's answer, once stored events were looked up.
    fn answer(self, stored: &store::StoredAnswers) -> ApiResult<Outcome> {
        match self.retry_of.map(|retry| *retry) {
            Some((key, digest)) => match stored.get(&key) {
                Some(found) => ingest::replay(found.clone(), &digest),
                None => Err(self.error),
            },
            None => Err(self.error),
        }
    }

    fn looked_up(&self) -> Option<&(i64, i64, String)> {
        self.retry_of.as_deref().map(|(key, _)| key)
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
                let keys: Vec<store::EventKey<'_>> =
                    keys.iter().map(|(a, p, id)| (*a, *p, id.as_str())).collect();
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
