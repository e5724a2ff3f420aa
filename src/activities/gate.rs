//! How many batch requests (an app's or a provider's, up to 500 events each) are read and worked on at
//! once. A batch in progress holds its body, its parsed events and its answer, about 2 MB for 500 events.
//! Unbounded, 64 clients posting batches kept 64 of them in memory (the service at 180 MiB resident),
//! while the writer commits only a few batches at a time (`activities.batch_max` events per commit): the
//! rest only waited, in memory. Past the bound a request waits with its body still unread, in arrival
//! order; one that waits too long is answered 503 `retry` with `Retry-After`, nothing read or written.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// How long a batch request waits for its turn before it is answered 503.
const MOST_WAIT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct BatchGate {
    slots: Arc<Semaphore>,
}

impl BatchGate {
    /// A gate letting `in_flight` batch requests in at once.
    pub fn new(in_flight: usize) -> BatchGate {
        BatchGate {
            slots: Arc::new(Semaphore::new(in_flight)),
        }
    }

    /// Waits for a turn; the turn lasts as long as the returned pass is held.
    pub async fn enter(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        match tokio::time::timeout(MOST_WAIT, self.slots.clone().acquire_owned()).await {
            Ok(Ok(pass)) => Ok(pass),
            // Timed out, or the gate closed (it never is): the service is saturated with batches.
            _ => Err(ApiError::retry(
                "too many batches are being posted at once; send it again shortly",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[actix_web::test]
    async fn a_full_gate_lets_the_next_in_when_a_pass_is_dropped() {
        let gate = BatchGate::new(1);
        let first = gate.enter().await.unwrap();
        let waiting = tokio::spawn({
            let gate = gate.clone();
            async move { gate.enter().await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "the second waits for the first");
        drop(first);
        waiting.await.unwrap().unwrap();
    }
}
