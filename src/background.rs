//! Periodic work each instance runs beside the HTTP server: sealing blocks, expiring holds
//! (redemptions' and the rest) and deleting what is past its retention.
//! Every instance runs them all; the database decides who does what (the sealer lock, the hold claim;
//! two sweeps deleting the same rows simply find them gone).

use std::sync::Arc;
use std::time::Duration;

use chrono::{Duration as Span, NaiveDateTime};
use diesel::QueryResult;

use crate::activities;
use crate::auth::refresh;
use crate::bindings;
use crate::config::Settings;
use crate::db::{self, AnyConnection, Tx};
use crate::error::ApiError;
use crate::idempotency;
use crate::ledger::{expiry, seal, service};
use crate::redemptions;
use crate::state::AppState;

/// Redemptions (and, separately, other holds) expired per sweep: each is a transaction of its own, so
/// a sweep after an outage works through a backlog in steps of this size, one step per sweep interval,
/// rather than holding the connection until every due hold is done.
const EXPIRY_SWEEP_BATCH: i64 = 500;

/// Rows one retention statement deletes: a short transaction, so writers (SQLite's one writer above all)
/// wait at most a few milliseconds for it.
pub const RETENTION_SWEEP_BATCH: i64 = 500;

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
            let result = state.db.run(move |conn| step(conn, &task_state)).await;
            state.metrics.background_run(name, result.is_ok());
            if let Err(e) = result {
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
                state.metrics.block_sealed();
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
        "hold_expiry",
        state,
        |conn, state| {
            let now = state.clock.now_naive();
            // Redemption holds first: their expiry also gives the offer's stock back.
            let redemptions = redemptions::service::expire_due(conn, now, EXPIRY_SWEEP_BATCH)?;
            let others = service::expire_due(conn, now, EXPIRY_SWEEP_BATCH, &[redemptions::REF_TYPE])?;
            // Then points past their lots' expiry, one transfer per wallet.
            let wallets = expiry::expire_due(conn, now, EXPIRY_SWEEP_BATCH)?;
            if redemptions + others.len() + wallets.len() > 0 {
                tracing::info!(
                    redemptions,
                    others = others.len(),
                    wallets = wallets.len(),
                    "expired"
                );
            }
            Ok(())
        },
    );
}

/// What one retention sweep deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub idempotency_keys: usize,
    pub refresh_tokens: usize,
    pub binding_codes: usize,
    /// Activities whose raw data was reduced to what reproduces their figure.
    pub activity_data: usize,
}

/// Deletes, at `now`, the idempotency records older than `retention.idempotency_days`, the refresh
/// tokens nothing can use (expired, or revoked longer ago than the access-token lifetime) and expired
/// binding codes, and reduces raw activity data older than `retention.activity_data_days`
/// (`activities::retention`), in transactions of at most [`RETENTION_SWEEP_BATCH`] rows each, until none is left.
pub fn sweep_retention(
    conn: &mut AnyConnection,
    now: NaiveDateTime,
    settings: &Settings,
) -> QueryResult<Swept> {
    let kept_since = now - Span::days(i64::from(settings.retention.idempotency_days));
    let access_lifetime = Span::seconds(settings.auth.access_token_ttl_secs as i64);
    let data_kept_since = now - Span::days(i64::from(settings.retention.activity_data_days));
    Ok(Swept {
        idempotency_keys: in_batches(conn, |conn| {
            idempotency::delete_stored_before(conn, kept_since, RETENTION_SWEEP_BATCH)
        })?,
        refresh_tokens: in_batches(conn, |conn| {
            refresh::delete_spent(conn, now, now - access_lifetime, RETENTION_SWEEP_BATCH)
        })?,
        binding_codes: in_batches(conn, |conn| {
            bindings::store::delete_expired_codes(conn, now, RETENTION_SWEEP_BATCH)
        })?,
        activity_data: in_batches(conn, |conn| {
            activities::retention::reduce_batch(conn, data_kept_since, RETENTION_SWEEP_BATCH)
        })?,
    })
}

/// Runs `delete` (a batch of deletions) in a write transaction of its own until it deletes nothing;
/// answers the rows deleted.
fn in_batches(
    conn: &mut AnyConnection,
    delete: impl Fn(&mut AnyConnection) -> QueryResult<usize>,
) -> QueryResult<usize> {
    let mut total = 0;
    loop {
        let deleted = db::transaction(conn, Tx::Write, &delete)?;
        if deleted == 0 {
            return Ok(total);
        }
        total += deleted;
    }
}

/// Sweeps what is past its retention every `retention.sweep_interval_secs`.
pub fn spawn_retention_sweep(state: Arc<AppState>) {
    let interval = Duration::from_secs(state.settings.retention.sweep_interval_secs);
    every(interval, "retention_sweep", state, |conn, state| {
        let swept = sweep_retention(conn, state.clock.now_naive(), &state.settings)?;
        if swept != Swept::default() {
            tracing::info!(
                idempotency_keys = swept.idempotency_keys,
                refresh_tokens = swept.refresh_tokens,
                binding_codes = swept.binding_codes,
                activity_data = swept.activity_data,
                "past retention: deleted"
            );
        }
        Ok(())
    });
}
