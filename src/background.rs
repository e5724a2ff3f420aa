//! Periodic work each instance runs beside the HTTP server: sealing blocks and expiring holds
//! (redemptions' and the rest).
//! Every instance runs both; the database decides who does what (the sealer lock, the hold claim).

use std::sync::Arc;
use std::time::Duration;

use crate::error::ApiError;
use crate::ledger::{seal, service};
use crate::redemptions;
use crate::state::AppState;

/// Redemptions (and, separately, other holds) expired per sweep: each is a transaction of its own, so
/// a sweep after an outage works through a backlog in steps of this size, one step per sweep interval,
/// rather than holding the connection until every due hold is done.
const EXPIRY_SWEEP_BATCH: i64 = 500;

/// Runs `step` every `interval` for the life of the server, logging failures and carrying on.
fn every<F>(interval: Duration, name: &'static str, state: Arc<AppState>, step: F)
where
    F: Fn(&mut crate::db::AnyConnection, &AppState) -> Result<(), ApiError> + Send + Sync + Copy + 'static,
{
    actix_web::rt::spawn(async move {
        let mut ticker = actix_web::rt::time::interval(interval);
        loop {
            ticker.tick().await;
            let task_state = state.clone();
            if let Err(e) = state.db.run(move |conn| step(conn, &task_state)).await {
                tracing::warn!(
                    task = name,
                    error = e.log_message(),
                    "background step failed; will retry"
                );
            }
        }
    });
}

pub fn spawn_ledger_tasks(state: Arc<AppState>) {
    let ledger = state.settings.ledger.clone();
    every(
        Duration::from_millis(ledger.seal_interval_ms),
        "sealer",
        state.clone(),
        |conn, state| {
            // Drain the queue in blocks of at most seal_max_transfers.
            while let Some(block) = seal::seal_once(
                conn,
                &state.platform_key,
                state.settings.ledger.seal_max_transfers,
                &state.clock,
            )? {
                tracing::debug!(
                    height = block.height,
                    transfers = block.transfer_count,
                    "block sealed"
                );
                if block.transfer_count < state.settings.ledger.seal_max_transfers {
                    break;
                }
            }
            Ok(())
        },
    );
    every(
        Duration::from_millis(ledger.expiry_sweep_interval_ms),
        "hold expiry",
        state,
        |conn, state| {
            let now = state.clock.now_naive();
            // Redemption holds first: their expiry also gives the offer's stock back.
            let redemptions = redemptions::service::expire_due(conn, now, EXPIRY_SWEEP_BATCH)?;
            let others = service::expire_due(conn, now, EXPIRY_SWEEP_BATCH, &[redemptions::REF_TYPE])?;
            if redemptions + others.len() > 0 {
                tracing::info!(redemptions, others = others.len(), "holds expired");
            }
            Ok(())
        },
    );
}
