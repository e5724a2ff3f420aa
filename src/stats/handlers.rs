//! `GET /api/v1/public/stats/reductions`: public, read-only statistics of what was granted.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Duration;
use serde::Deserialize;

use super::report::{self, Ask, GroupBy, Reductions};
use super::window::{self, MAX_WINDOW_DAYS};
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::http::query::blank_is_absent;
use crate::http::timestamp;
use crate::state::AppState;

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/public/stats/reductions", web::get().to(reductions));
}

/// The days a window takes when `from` is not given.
const DEFAULT_WINDOW_DAYS: i64 = 30;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct ReductionsQuery {
    /// `macro_region`, `nbs_region`, `province`, `city`, `activity_type`, `day` or `month`.
    #[serde(default, deserialize_with = "blank_is_absent")]
    pub group_by: Option<String>,
    /// Start (inclusive), RFC 3339 with an offset, by `occurred_at`; default: 30 days before `to`.
    #[serde(default, deserialize_with = "blank_is_absent")]
    pub from: Option<String>,
    /// End (exclusive), RFC 3339 with an offset; default: the coming Asia/Shanghai midnight. At most
    /// three years after `from`.
    #[serde(default, deserialize_with = "blank_is_absent")]
    pub to: Option<String>,
    /// Only this region's subtree (default `CN`, the nation).
    #[serde(default, deserialize_with = "blank_is_absent")]
    pub region_code: Option<String>,
}

/// What was granted in a window, grouped: sums, exact distinct active accounts, and per-capita figures
/// (2020 census) for provinces and macro-regions. Days and months are Asia/Shanghai's. With
/// `Accept: text/csv`, the same rows as CSV.
#[utoipa::path(get, path = "/api/v1/public/stats/reductions", tag = "statistics", params(ReductionsQuery),
    responses((status = 200, body = Reductions, description = "or text/csv: the items"),
        (status = 422, body = Problem)))]
pub async fn reductions(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<ReductionsQuery>,
) -> ApiResult<HttpResponse> {
    let now = state.clock.now_naive();
    let ask = ask_of(query.into_inner(), now, &state)?;
    let answer = state
        .db
        .run(move |conn| Ok(report::reductions(conn, &ask, now)?))
        .await?;
    let wants_csv = crate::http::csv::wanted(&req);
    if wants_csv {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .body(csv_of(&answer)?));
    }
    Ok(HttpResponse::Ok().json(answer))
}

/// The question, validated: a known grouping and region, `from < to`, at most three years.
fn ask_of(query: ReductionsQuery, now: chrono::NaiveDateTime, state: &AppState) -> Result<Ask, ApiError> {
    let group_by = match query.group_by {
        None => return Err(ApiError::field("group_by", "is required")),
        Some(text) => text.parse::<GroupBy>().map_err(|_| {
            let known: Vec<&str> = GroupBy::ALL.iter().map(|g| g.as_str()).collect();
            ApiError::field("group_by", format!("must be one of {}", known.join(", ")))
        })?,
    };
    let to = match query.to {
        Some(text) => timestamp::query_bound("to", &text)?,
        None => window::end_of_local_day(now),
    };
    let from = match query.from {
        Some(text) => timestamp::query_bound("from", &text)?,
        None => to - Duration::days(DEFAULT_WINDOW_DAYS),
    };
    if from >= to {
        return Err(ApiError::field("to", "must be after from"));
    }
    if to - from > Duration::days(MAX_WINDOW_DAYS) {
        return Err(ApiError::field(
            "to",
            format!("a window lasts at most {MAX_WINDOW_DAYS} days"),
        ));
    }
    let region_code = query
        .region_code
        .unwrap_or_else(|| crate::domain::catalog::NATION.to_string());
    if state.catalog.get().region(&region_code).is_none() {
        return Err(ApiError::unprocessable(
            ErrorCode::UnknownRegion,
            format!("no region {region_code}"),
        ));
    }
    Ok(Ask {
        group_by,
        from,
        to,
        region_code,
    })
}

/// The items as CSV, one line each, with the JSON's fields as columns.
fn csv_of(answer: &Reductions) -> Result<Vec<u8>, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| ApiError::internal(e);
    out.write_record([
        "key",
        "name",
        "granted_g",
        "reduction_g",
        "points",
        "activities",
        "active_accounts",
        "population",
        "per_capita_g",
    ])
    .map_err(fail)?;
    for item in &answer.items {
        let t = &item.totals;
        out.write_record([
            item.key.clone(),
            item.name.clone(),
            t.granted_g.to_string(),
            t.reduction_g.to_string(),
            t.points.to_string(),
            t.activities.to_string(),
            t.active_accounts.to_string(),
            item.population.map(|p| p.to_string()).unwrap_or_default(),
            item.per_capita_g.clone().unwrap_or_default(),
        ])
        .map_err(fail)?;
    }
    out.into_inner()
        .map_err(|e| ApiError::internal(anyhow::anyhow!("csv: {e}")))
}
