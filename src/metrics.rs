//! Prometheus metrics: what the service does, served as text at `GET /metrics`.
//!
//! Each application has its own registry (tests run many in one process, and each must see its own
//! counts). Counters move where the event happens: a request when it is answered, an activity or a group
//! commit when its transaction committed, a background task when its step ended. Gauges that describe the
//! database (unsealed transfers, pending holds, the last block's age) and the pool are sampled when
//! scraped, so an idle instance costs nothing between scrapes.
//!
//! Label values are bounded: `route` is the matched path template (or [`UNMATCHED`], never a raw path),
//! `method` one of the standard methods (or `other`), `status` the numeric code the service answered.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use prometheus::{
    exponential_buckets, Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::db::schema::{ledger_blocks, pending_holds, unsealed_transfers};
use crate::db::AnyConnection;
use crate::error::ApiError;
use crate::state::AppState;

/// The `route` of a request no route matched (a probe, a typo): one label value for all of them.
pub const UNMATCHED: &str = "unmatched";

/// Redis commands that failed (connection lost, timeout, refused), for the whole process: the Redis client
/// counts where it maps its errors, before any application exists to hold a registry; every registry
/// reports this one counter.
pub static REDIS_ERRORS: LazyLock<IntCounter> = LazyLock::new(|| {
    IntCounter::new("tanhui_redis_errors_total", "Redis commands that failed").expect("valid metric")
});

/// One group-commit queue's batches: how many items each transaction held and how long it took to write
/// and commit.
#[derive(Clone)]
pub struct BatchMetrics {
    size: Histogram,
    seconds: Histogram,
}

impl BatchMetrics {
    pub fn observe(&self, items: usize, took: Duration) {
        self.size.observe(items as f64);
        self.seconds.observe(took.as_secs_f64());
    }

    /// Histograms registered nowhere, for a queue outside an application (unit tests).
    pub fn detached() -> BatchMetrics {
        let (size, seconds) = batch_histograms();
        BatchMetrics {
            size: size.with_label_values(&["detached"]),
            seconds: seconds.with_label_values(&["detached"]),
        }
    }
}

fn batch_histograms() -> (HistogramVec, HistogramVec) {
    let size = HistogramVec::new(
        HistogramOpts::new(
            "tanhui_group_commit_items",
            "Items written in one group-commit transaction",
        )
        .buckets(vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]),
        &["queue"],
    )
    .expect("valid metric");
    let seconds = HistogramVec::new(
        HistogramOpts::new(
            "tanhui_group_commit_seconds",
            "Time to write and commit one group-commit transaction",
        )
        // 0.5 ms to about 2 s: a fast SQLite commit to a stalled disk.
        .buckets(exponential_buckets(0.0005, 2.0, 13).expect("valid buckets")),
        &["queue"],
    )
    .expect("valid metric");
    (size, seconds)
}

pub struct Metrics {
    registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    activities: IntCounterVec,
    points_issued: IntCounter,
    background_runs: IntCounterVec,
    blocks_sealed: IntCounter,
    pub ingest: BatchMetrics,
    pub transfers: BatchMetrics,
    pub market_orders: BatchMetrics,
    unsealed_transfers: IntGauge,
    pending_holds: IntGauge,
    last_block_age: Gauge,
    pool_connections: IntGaugeVec,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests answered"),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let http_duration = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time from a request's arrival to its response",
            ),
            &["route", "method", "status"],
        )
        .expect("valid metric");
        let activities = IntCounterVec::new(
            Opts::new(
                "tanhui_activities_total",
                "Activities recorded, by what became of them",
            ),
            &["status"],
        )
        .expect("valid metric");
        let points_issued = IntCounter::new(
            "tanhui_points_issued_total",
            "Points issued to accounts as their activities were recorded (not counting later approvals of flagged ones)",
        )
        .expect("valid metric");
        let background_runs = IntCounterVec::new(
            Opts::new("tanhui_background_runs_total", "Steps of the background tasks"),
            &["task", "outcome"],
        )
        .expect("valid metric");
        let blocks_sealed =
            IntCounter::new("tanhui_blocks_sealed_total", "Ledger blocks this instance sealed")
                .expect("valid metric");
        let (batch_size, batch_seconds) = batch_histograms();
        let unsealed_transfers = IntGauge::new(
            "tanhui_unsealed_transfers",
            "Transfers waiting to be sealed into a block",
        )
        .expect("valid metric");
        let pending_holds = IntGauge::new(
            "tanhui_holds_pending",
            "Holds neither captured, released nor expired",
        )
        .expect("valid metric");
        let last_block_age = Gauge::new(
            "tanhui_last_block_age_seconds",
            "Seconds since the latest block was sealed (0 before the first)",
        )
        .expect("valid metric");
        let pool_connections = IntGaugeVec::new(
            Opts::new("tanhui_db_pool_connections", "Pooled database connections"),
            &["state"],
        )
        .expect("valid metric");
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(http_requests.clone()),
            Box::new(http_duration.clone()),
            Box::new(activities.clone()),
            Box::new(points_issued.clone()),
            Box::new(background_runs.clone()),
            Box::new(blocks_sealed.clone()),
            Box::new(batch_size.clone()),
            Box::new(batch_seconds.clone()),
            Box::new(unsealed_transfers.clone()),
            Box::new(pending_holds.clone()),
            Box::new(last_block_age.clone()),
            Box::new(pool_connections.clone()),
            Box::new(REDIS_ERRORS.clone()),
        ];
        for collector in collectors {
            registry.register(collector).expect("metric names are unique");
        }
        let queue = |name: &str| BatchMetrics {
            size: batch_size.with_label_values(&[name]),
            seconds: batch_seconds.with_label_values(&[name]),
        };
        Metrics {
            ingest: queue("ingest"),
            transfers: queue("transfers"),
            market_orders: queue("market_orders"),
            registry,
            http_requests,
            http_duration,
            activities,
            points_issued,
            background_runs,
            blocks_sealed,
            unsealed_transfers,
            pending_holds,
            last_block_age,
            pool_connections,
        }
    }

    pub fn observe_request(&self, route: &str, method: &Method, status: StatusCode, took: Duration) {
        let labels = [route, method_label(method), status.as_str()];
        self.http_requests.with_label_values(&labels).inc();
        self.http_duration
            .with_label_values(&labels)
            .observe(took.as_secs_f64());
    }

    /// An activity written (not a replay): its status, and the points it issued.
    pub fn activity_recorded(&self, status: &str, points: i64) {
        self.activities.with_label_values(&[status]).inc();
        self.points_issued.inc_by(u64::try_from(points).unwrap_or(0));
    }

    pub fn background_run(&self, task: &'static str, ok: bool) {
        let outcome = if ok { "ok" } else { "failed" };
        self.background_runs.with_label_values(&[task, outcome]).inc();
    }

    pub fn block_sealed(&self) {
        self.blocks_sealed.inc();
    }

    /// The text exposition, after sampling the gauges.
    fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into memory");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Middleware: counts and times every request under its route template.
pub async fn record_request(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|state| state.metrics.clone());
    // The resource map knows the template before routing ran; a path no resource matches gets one label.
    let route = req.match_pattern().unwrap_or_else(|| UNMATCHED.to_string());
    let method = req.method().clone();
    let started = Instant::now();
    let result = next.call(req).await;
    if let Some(metrics) = metrics {
        let status = match &result {
            Ok(response) => response.status(),
            Err(e) => e.as_response_error().status_code(),
        };
        metrics.observe_request(&route, &method, status, started.elapsed());
    }
    result
}

/// What the gauges read from the database at a scrape.
struct Sampled {
    unsealed_transfers: i64,
    pending_holds: i64,
    last_sealed_at: Option<NaiveDateTime>,
}

fn sample(conn: &mut AnyConnection) -> QueryResult<Sampled> {
    // Both tables are queues their workers drain (the sealer, the expiry sweep): counting them is cheap.
    Ok(Sampled {
        unsealed_transfers: unsealed_transfers::table.count().get_result(conn)?,
        pending_holds: pending_holds::table.count().get_result(conn)?,
        last_sealed_at: ledger_blocks::table
            .select(ledger_blocks::sealed_at)
            .order(ledger_blocks::height.desc())
            .first(conn)
            .optional()?,
    })
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(metrics)));
}

/// Prometheus text exposition of this instance's metrics. The gauges read from the database are left at
/// their last values when it does not answer (the scrape still succeeds, and `/readyz` tells why).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format (version 0.0.4)", content_type = "text/plain", body = String)))]
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    let pool = state.db.pool_state();
    let m = &state.metrics;
    m.pool_connections
        .with_label_values(&["idle"])
        .set(i64::from(pool.idle_connections));
    m.pool_connections
        .with_label_values(&["in_use"])
        .set(i64::from(pool.connections - pool.idle_connections));
    match state.db.run(|conn| sample(conn).map_err(ApiError::from)).await {
        Ok(sampled) => {
            m.unsealed_transfers.set(sampled.unsealed_transfers);
            m.pending_holds.set(sampled.pending_holds);
            let age = sampled
                .last_sealed_at
                .map(|at| (state.clock.now_naive() - at).num_milliseconds().max(0) as f64 / 1000.0);
            m.last_block_age.set(age.unwrap_or(0.0));
        }
        Err(e) => tracing::warn!(error = e.log_message(), "metrics: database gauges not sampled"),
    }
    HttpResponse::Ok()
        .content_type(TextEncoder::new().format_type())
        .body(m.render())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_counted_under_its_labels() {
        let m = Metrics::new();
        m.observe_request(
            "/api/v1/activities",
            &Method::POST,
            StatusCode::CREATED,
            Duration::from_millis(3),
        );
        m.observe_request(
            "/api/v1/activities",
            &Method::from_bytes(b"BREW").unwrap(),
            StatusCode::NOT_FOUND,
            Duration::ZERO,
        );
        let text = m.render();
        assert!(
            text.contains(r#"http_requests_total{method="POST",route="/api/v1/activities",status="201"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"method="other""#), "{text}");
        assert!(text.contains("http_request_duration_seconds_bucket{"), "{text}");
    }

    #[test]
    fn activities_count_by_status_and_sum_points() {
        let m = Metrics::new();
        m.activity_recorded("credited", 12);
        m.activity_recorded("credited", 3);
        m.activity_recorded("rejected", 0);
        let text = m.render();
        assert!(
            text.contains(r#"tanhui_activities_total{status="credited"} 2"#),
            "{text}"
        );
        assert!(text.contains("tanhui_points_issued_total 15"), "{text}");
    }
}
