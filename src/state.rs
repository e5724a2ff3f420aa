//! What every handler can reach.

use std::sync::Arc;

use crate::activities::writer::IngestQueue;
use crate::auth::password::PasswordHasher;
use crate::auth::sessions::SessionRevocations;
use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::TokenIssuer;
use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::Db;
use crate::ledger::signing::PlatformKey;
use crate::ledger::transfer_writer::TransferQueue;
use crate::methodology::cache::CatalogCache;
use crate::metrics::Metrics;
use crate::secrets::SecretBox;

pub struct AppState {
    /// The time every request and background task reads.
    pub clock: Clock,
    pub settings: Arc<Settings>,
    pub db: Db,
    pub cache: Cache,
    pub tokens: TokenIssuer,
    pub passwords: PasswordHasher,
    pub login_throttle: LoginThrottle,
    /// Sessions ended before their access tokens expired.
    pub sessions: SessionRevocations,
    pub catalog: Arc<CatalogCache>,
    pub platform_key: PlatformKey,
    pub ingest: IngestQueue,
    /// Batch requests worked on at once (`activities.batches_in_flight`).
    pub batch_gate: crate::activities::gate::BatchGate,
    pub transfers: TransferQueue,
    pub market_orders: crate::market::writer::OrderQueue,
    pub secrets: SecretBox,
    pub metrics: Arc<Metrics>,
}
