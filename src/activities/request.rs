//! The activity a client posts, and its checks before anything is stored.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{rules, store};
use crate::config::ActivitySettings;
use crate::domain::catalog::{Catalog, Evidence};
use crate::domain::data_schema::DataValues;
use crate::error::{ApiError, FieldError};
use crate::idempotency::request_hash;
use crate::methodology::quantify::{quantify_values, Quantified};

#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivityRequest {
    /// The app's own id for this event (1–128 characters); a retry reuses it.
    pub client_event_id: String,
    pub activity_type: String,
    /// RFC 3339 with offset.
    #[serde(deserialize_with = "crate::http::timestamp::required")]
    pub occurred_at: DateTime<FixedOffset>,
    #[serde(default, deserialize_with = "crate::http::timestamp::optional")]
    pub ended_at: Option<DateTime<FixedOffset>>,
    /// Defaults to the account's region.
    pub region_code: Option<String>,
    /// trace, photo or self_report (default); operator is set for provider calls only.
    pub evidence: Option<Evidence>,
    #[schema(value_type = Object)]
    pub data: serde_json::Map<String, serde_json::Value>,
}

/// Who posts: the account credited, and whether a trusted provider vouches for it.
#[derive(Debug, Clone)]
pub struct Poster {
    pub user_id: i64,
    pub account_id: i64,
    pub home_region: String,
    pub provider_id: Option<i64>,
}

/// An event that passed every check that needs no database, quantified: everything the writer needs
/// that does not depend on what is stored is worked out here, on the request's thread.
#[derive(Debug, Clone)]
pub struct Event {
    pub poster: Poster,
    pub client_event_id: String,
    pub request_hash: String,
    pub activity_type: String,
    pub region_code: String,
    pub occurred_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    pub evidence: Evidence,
    pub values: DataValues,
    /// [start, end) of the activity.
    pub interval: (NaiveDateTime, NaiveDateTime),
    /// Asia/Shanghai date of `occurred_at`: the daily cap's day.
    pub local_day: String,
    /// The quantification under the version in force; `None` when the event came after its claim window.
    pub quantified: Option<Quantified>,
    /// The request's `data` and the quantification's breakdown, as stored.
    pub data_json: String,
    pub breakdown_json: String,
}

impl Event {
    pub fn key(&self) -> store::EventKey<'_> {
        (
            self.poster.account_id,
            store::poster_of(self.poster.provider_id),
            &self.client_event_id,
        )
    }
}

fn field(field: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: field.into(),
        message: message.into(),
    }
}

/// The digest a retry is recognised by: of the request as the client sent it.
pub fn digest(req: &ActivityRequest) -> Result<String, ApiError> {
    Ok(request_hash(
        &serde_json::to_value(req).map_err(ApiError::internal)?,
    ))
}

/// Checks and quantifies the request whose [`digest`] is `hash`.
pub fn validate(
    req: ActivityRequest,
    hash: String,
    poster: Poster,
    catalog: &Catalog,
    now: DateTime<Utc>,
    settings: &ActivitySettings,
) -> Result<Event, ApiError> {
    let mut errors = Vec::new();
    let chars = req.client_event_id.chars().count();
    if !(1..=128).contains(&chars) {
        errors.push(field("client_event_id", "must be 1 to 128 characters"));
    }
    let region = req
        .region_code
        .clone()
        .unwrap_or_else(|| poster.home_region.clone());
    if catalog.region(&region).is_none() {
        errors.push(field("region_code", "unknown region"));
    }
    let evidence = match (req.evidence, poster.provider_id) {
        (_, Some(_)) => Evidence::Operator,
        (Some(Evidence::Operator), None) => {
            errors.push(field(
                "evidence",
                "operator evidence comes only from signed provider calls",
            ));
            Evidence::Operator
        }
        (evidence, None) => evidence.unwrap_or(Evidence::SelfReport),
    };
    let occurred_at = req.occurred_at.naive_utc();
    if req.occurred_at.with_timezone(&Utc) > now + Duration::seconds(settings.future_skew_secs) {
        errors.push(field("occurred_at", "is in the future"));
    }
    let ended_at = req.ended_at.map(|t| t.naive_utc());
    if ended_at.is_some_and(|end| end <= occurred_at) {
        errors.push(field("ended_at", "must be after occurred_at"));
    }
    let checked = match catalog.activity_type(&req.activity_type) {
        None => {
            errors.push(field("activity_type", "unknown activity type"));
            None
        }
        Some(kind) => match kind.schema.validate(&req.data) {
            Ok(values) => Some((kind.claim_window_days, values)),
            Err(data_errors) => {
                errors.extend(data_errors);
                None
            }
        },
    };
    let max_speed_kmh = settings.max_speed_kmh.get(&req.activity_type).copied();
    let interval = checked
        .as_ref()
        .map(|(_, values)| rules::interval(occurred_at, ended_at, values, max_speed_kmh));
    if let (Some((start, end)), Some((_, values))) = (interval, &checked) {
        if end - start > rules::longest() {
            let at = match (ended_at, values.get("duration_s")) {
                (Some(_), _) => "ended_at",
                (None, Some(_)) => "data.duration_s",
                (None, None) => "data.distance_m",
            };
            errors.push(field(
                at,
                "an activity lasts at most 24 hours, at the speeds plausible for its type",
            ));
        }
        if !rules::duration_fits(values, occurred_at, ended_at) {
            errors.push(field(
                "data.duration_s",
                "is longer than the time from occurred_at to ended_at",
            ));
        }
    }
    let (Some((claim_window_days, values)), Some(interval), true) = (checked, interval, errors.is_empty())
    else {
        return Err(crate::methodology::quantify::data_refusal(errors));
    };
    let quantified = if rules::is_late(occurred_at, now.naive_utc(), claim_window_days) {
        None
    } else {
        Some(quantify_values(
            catalog,
            &req.activity_type,
            &region,
            occurred_at,
            values.clone(),
            evidence,
            true,
        )?)
    };
    let breakdown = quantified
        .as_ref()
        .map(|q| q.quantity.breakdown.as_slice())
        .unwrap_or_default();
    Ok(Event {
        poster,
        client_event_id: req.client_event_id,
        request_hash: hash,
        interval,
        local_day: rules::local_day(occurred_at),
        data_json: serde_json::Value::Object(req.data).to_string(),
        breakdown_json: serde_json::to_string(breakdown).map_err(ApiError::internal)?,
        activity_type: req.activity_type,
        region_code: region,
        occurred_at,
        ended_at,
        evidence,
        values,
        quantified,
    })
}
