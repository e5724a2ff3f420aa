//! Builds the application: database, migrations, cache, keys, then the HTTP server.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::{from_fn, ErrorHandlers};
use actix_web::{web, App, HttpServer};
use chrono::NaiveDateTime;
use secrecy::ExposeSecret;

use crate::activities::writer;
use crate::auth::password::PasswordHasher;
use crate::auth::sessions::SessionRevocations;
use crate::auth::throttle::LoginThrottle;
use crate::auth::tokens::TokenIssuer;
use crate::cache::Cache;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::group_commit::Batching;
use crate::db::{AnyConnection, ConnectOptions, Db};
use crate::error::ApiError;
use crate::http::json::BodyLimit;
use crate::http::{fallback, nul};
use crate::ledger::signing::PlatformKey;
use crate::ledger::transfer_writer;
use crate::methodology::cache::CatalogCache;
use crate::metrics::Metrics;
use crate::secrets::SecretBox;
use crate::state::AppState;
use crate::{
    accounts, activities, audit, background, bindings, cash, consents, governance, green, health, keys,
    ledger, market, methodology, metrics, offers, openapi, partners, providers, publication, redemptions,
    reductions, region_parameters, registry, retirements, stats, telemetry,
};

/// Connects to the database, applies migrations and seals any phone stored before phones were sealed (that
/// conversion needs the secrets key, so it is Rust's work, not a migration's; see docs/privacy.md).
pub fn open_database(settings: &Settings) -> anyhow::Result<Db> {
    let db = Db::connect(
        ConnectOptions {
            url: settings.database.url.clone(),
            busy_timeout_ms: settings.database.sqlite_busy_timeout_ms,
        },
        settings.database.pool_size,
        Duration::from_secs(settings.database.connect_timeout_secs),
    )?;
    let db = match settings.replica_url() {
        Some(url) => db.with_replica(url, settings.database.pool_size)?,
        None => db,
    };
    let applied = db.migrate()?;
    if !applied.is_empty() {
        tracing::info!(count = applied.len(), "migrations applied");
    }
    let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
    let secrets = load_secrets(&mut conn, settings, chrono::Utc::now().naive_utc(), false)?;
    let sealed = accounts::phones::seal_plain(&mut conn, &secrets)?;
    if sealed > 0 {
        tracing::info!(count = sealed, "stored phone numbers sealed");
    }
    drop(conn);
    Ok(db)
}

/// The secrets key: the configured one, else the one generated on first start and kept in the database.
/// The second is for development: a database backup then holds the key beside what it seals, so sealed
/// phones and secrets in that backup are only as safe as the backup itself. `warn` says so in the log.
pub fn load_secrets(
    conn: &mut AnyConnection,
    settings: &Settings,
    now: NaiveDateTime,
    warn: bool,
) -> anyhow::Result<SecretBox> {
    let key = match &settings.auth.secrets_key {
        Some(key) => key.expose_secret().to_string(),
        None => {
            if warn {
                tracing::warn!(
                    "auth.secrets_key is not configured: the key that seals phone numbers and API secrets \
                     is kept in the database, so a database backup can unseal them; configure it outside \
                     the database in production (docs/privacy.md)"
                );
            }
            keys::get_or_create(conn, now, keys::SECRETS_KEY, keys::random_hex_32)?
        }
    };
    SecretBox::from_hex(&key).map_err(|e| anyhow::anyhow!("auth.secrets_key: {e}"))
}

/// Everything the handlers need, for the server and for CLI commands alike.
pub async fn build_state(settings: Settings, clock: Clock) -> anyhow::Result<AppState> {
    let db = open_database(&settings)?;
    let cache = Cache::connect(&settings.redis, &db).await?;
    let jwt_secret = match &settings.auth.jwt_secret {
        Some(secret) => secret.expose_secret().as_bytes().to_vec(),
        None => {
            let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
            let hex_key = keys::get_or_create(
                &mut conn,
                clock.now_naive(),
                keys::JWT_SECRET,
                keys::random_hex_32,
            )?;
            hex::decode(hex_key)?
        }
    };
    let passwords = PasswordHasher::new(&settings.auth)?;
    let (catalog, platform_key, secrets) = {
        let mut conn = db.get().map_err(|e| anyhow::anyhow!("{e}"))?;
        let catalog =
            CatalogCache::load(&mut conn).map_err(|e| anyhow::anyhow!("loading the catalog: {e}"))?;
        let configured = settings
            .ledger
            .signing_key
            .as_ref()
            .map(|k| k.expose_secret().to_string());
        let platform_key = PlatformKey::load(&mut conn, &clock, configured.as_deref())?;
        let secrets = load_secrets(&mut conn, &settings, clock.now_naive(), true)?;
        (Arc::new(catalog), platform_key, secrets)
    };
    let metrics = Arc::new(Metrics::new());
    let ingest = writer::start(
        db.clone(),
        settings.activities.clone(),
        clock.clone(),
        catalog.clone(),
        metrics.clone(),
    );
    let transfers = transfer_writer::start(
        db.clone(),
        Batching {
            window: Duration::from_millis(settings.ledger.transfer_batch_window_ms),
            max: settings.ledger.transfer_batch_max,
            writers: settings.ledger.transfer_writers,
        },
        clock.clone(),
        metrics.transfers.clone(),
    );
    let market_orders = crate::market::writer::start(
        db.clone(),
        Duration::from_millis(settings.ledger.transfer_batch_window_ms),
        settings.ledger.transfer_batch_max,
        settings.market.fee_bps,
        clock.clone(),
        metrics.market_orders.clone(),
    );
    let sessions = SessionRevocations::new(db.clone(), clock.clone(), settings.auth.access_token_ttl_secs);
    Ok(AppState {
        sessions,
        clock,
        secrets,
        ingest,
        batch_gate: crate::activities::gate::BatchGate::new(settings.activities.batches_in_flight),
        transfers,
        market_orders,
        catalog,
        platform_key,
        tokens: TokenIssuer::new(&jwt_secret, settings.auth.access_token_ttl_secs),
        passwords,
        login_throttle: LoginThrottle::new(cache.clone(), settings.throttle.clone()),
        settings: Arc::new(settings),
        db,
        cache,
        metrics,
    })
}

/// Registers every route and the cross-cutting middleware on an `App`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PathConfig::default().error_handler(fallback::path_error))
        .app_data(web::QueryConfig::default().error_handler(fallback::query_error))
        .configure(health::routes)
        .configure(redemptions::handlers::well_known)
        .configure(crate::web::routes)
        .service(
            web::scope("/api/v1")
                .configure(accounts::handlers::routes)
                .configure(accounts::me::routes)
                .configure(accounts::privacy::routes)
                .configure(methodology::handlers::routes)
                .configure(methodology::type_handlers::routes)
                .configure(governance::handlers::routes)
                .configure(region_parameters::handlers::routes)
                .configure(audit::handlers::routes)
                .configure(ledger::handlers::routes)
                .configure(retirements::handlers::routes)
                .configure(cash::handlers::routes)
                .configure(market::handlers::routes)
                .configure(activities::handlers::routes)
                .configure(activities::explain::routes)
                .configure(activities::queue::routes)
                .configure(providers::routes)
                .configure(registry::routes)
                .configure(bindings::handlers::routes)
                .configure(green::routes)
                .configure(consents::routes)
                .configure(publication::handlers::routes)
                .configure(stats::handlers::routes)
                .configure(partners::routes)
                .configure(offers::routes)
                .configure(redemptions::routes)
                .configure(reductions::handlers::routes)
                .configure(openapi::routes),
        )
        .default_service(web::to(|| async {
            Err::<actix_web::HttpResponse, _>(ApiError::not_found("no such route"))
        }));
}

pub struct Application {
    port: u16,
    server: Server,
    /// The listener of `/metrics` when `server.metrics_port` is set.
    metrics_server: Option<(u16, Server)>,
    state: web::Data<AppState>,
}

impl Application {
    /// Binds the listener (port 0 picks a free port, which tests use) after migrations ran.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Application::build_with_clock(settings, Clock::system()).await
    }

    /// As [`Application::build`], reading the time from `clock` (tests move it forward).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Application> {
        let address = format!("{}:{}", settings.server.host, settings.server.port);
        let state = web::Data::new(build_state(settings, clock).await?);
        let listener =
            TcpListener::bind(&address).map_err(|e| anyhow::anyhow!("cannot listen on {address}: {e}"))?;
        let port = listener.local_addr()?.port();
        let server_settings = state.settings.server.clone();
        let app_state = state.clone();
        let body_limit = BodyLimit(server_settings.body_limit_bytes);
        let metrics_apart = server_settings.metrics_port.is_some();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(body_limit)
                .configure(|cfg| {
                    if !metrics_apart {
                        metrics::routes(cfg);
                    }
                })
                .configure(configure)
                .wrap(
                    ErrorHandlers::new()
                        .default_handler_client(fallback::to_problem)
                        .default_handler_server(fallback::to_problem),
                )
                .wrap(from_fn(nul::refuse_in_url))
                .wrap(from_fn(telemetry::request_span))
                .wrap(from_fn(metrics::record_request))
        })
        .shutdown_timeout(server_settings.shutdown_timeout_secs)
        .listen(listener)?;
        if server_settings.workers > 0 {
            server = server.workers(server_settings.workers);
        }
        let metrics_server = match server_settings.metrics_port {
            Some(port) => Some(metrics_listener(&server_settings.host, port, state.clone())?),
            None => None,
        };
        state.catalog.clone().spawn_refresher(state.db.clone());
        state.sessions.clone().spawn_feed();
        background::spawn_ledger_tasks(state.clone().into_inner());
        background::spawn_retention_sweep(state.clone().into_inner());
        tracing::info!(%address, port, backend = ?state.db.backend(), redis = state.cache.is_shared(), "listening");
        Ok(Application {
            port,
            server: server.run(),
            metrics_server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on when it has a listener of its own.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_server.as_ref().map(|(port, _)| *port)
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGTERM or SIGINT, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Some((_, metrics_server)) = self.metrics_server else {
            return self.server.await;
        };
        let metrics_handle = metrics_server.handle();
        actix_web::rt::spawn(metrics_server);
        let served = self.server.await;
        metrics_handle.stop(true).await;
        served
    }
}

/// A second listener serving only `/metrics` (one worker: a scrape every few seconds), so that the main
/// port, which may face the internet, need not expose it.
fn metrics_listener(host: &str, port: u16, state: web::Data<AppState>) -> anyhow::Result<(u16, Server)> {
    let address = format!("{host}:{port}");
    let listener = TcpListener::bind(&address)
        .map_err(|e| anyhow::anyhow!("cannot listen on {address} for metrics: {e}"))?;
    let port = listener.local_addr()?.port();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .configure(metrics::routes)
            .default_service(web::to(|| async {
                Err::<actix_web::HttpResponse, _>(ApiError::not_found("only /metrics is served here"))
            }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    tracing::info!(%address, port, "metrics listening");
    Ok((port, server))
}
