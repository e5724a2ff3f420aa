//! The activity a client posts, and its checks before anything is stored.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{Event, Poster};
use super::rules;
use crate::config::ActivitySettings;
use crate::domain::catalog::{Catalog, Evidence};
use crate::domain::claim::{ClaimId, OperatorCode, TripRef};
use crate::domain::data_schema::DataValues;
use crate::error::{ApiError, ErrorCode, FieldError};
use crate::idempotency::request_hash;
use crate::methodology::quantify::quantify_values;

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
    /// Signed provider calls only, from a provider with an operator code (else 422 `no_operator_code`):
    /// the operator's own id of the trip, 1 to 128 printable ASCII characters. The trip's claim is
    /// registered as the activity is stored; a trip another platform claimed first is stored `rejected`
    /// with reason `already_claimed`, and one this provider reported before under another
    /// `client_event_id` is refused with 409 `already_claimed` (docs/registry.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trip_ref: Option<String>,
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

/// The longest `client_event_id`, in characters: room for a UUID with a prefix, small enough to index.
pub const CLIENT_EVENT_ID_MAX_CHARS: usize = 128;

/// What the checks that need no quantification make of a request, with the field errors they found.
struct Checked {
    region: String,
    evidence: Evidence,
    occurred_at: NaiveDateTime,
    ended_at: Option<NaiveDateTime>,
    /// The type's claim window and the typed data, when the type and its data are valid.
    typed: Option<(i64, DataValues)>,
    interval: Option<(NaiveDateTime, NaiveDateTime)>,
    errors: Vec<FieldError>,
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
    let claim = claim_of(req.trip_ref.as_deref(), &poster)?;
    let checked = check(&req, &poster, catalog, now, settings);
    let (Some((claim_window_days, values)), Some(interval), true) =
        (checked.typed, checked.interval, checked.errors.is_empty())
    else {
        return Err(crate::methodology::quantify::data_refusal(checked.errors));
    };
    let (region, evidence, occurred_at) = (checked.region, checked.evidence, checked.occurred_at);
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
        ended_at: checked.ended_at,
        evidence,
        values,
        quantified,
        claim,
    })
}

/// The claim of the trip a provider named, computed with its operator code. An app cannot name one (only
/// an operator knows its trips' ids), nor a provider without a code (the claim would not be the one
/// other platforms compute).
fn claim_of(trip_ref: Option<&str>, poster: &Poster) -> Result<Option<ClaimId>, ApiError> {
    let Some(trip_ref) = trip_ref else {
        return Ok(None);
    };
    if poster.provider_id.is_none() {
        return Err(ApiError::field(
            "trip_ref",
            "only signed provider calls name an operator's trip",
        ));
    }
    let code = poster.operator_code.as_deref().ok_or_else(|| {
        ApiError::unprocessable(
            ErrorCode::NoOperatorCode,
            "this provider has no operator code, so its trips have no claim: send no trip_ref, or \
             onboard the operator with a code",
        )
    })?;
    // Checked when the provider was onboarded: a stored code that does not parse is a bug.
    let code = OperatorCode::parse(code)
        .map_err(|e| ApiError::internal(anyhow::anyhow!("stored operator code {code}: {e}")))?;
    let trip = TripRef::parse(trip_ref).map_err(|message| ApiError::field("trip_ref", message))?;
    Ok(Some(ClaimId::of(&code, &trip)))
}

/// Every check that needs no quantification, each rule a step; all their errors are collected.
fn check(
    req: &ActivityRequest,
    poster: &Poster,
    catalog: &Catalog,
    now: DateTime<Utc>,
    settings: &ActivitySettings,
) -> Checked {
    let mut errors = Vec::new();
    check_client_event_id(&req.client_event_id, &mut errors);
    let region = known_region(req, poster, catalog, &mut errors);
    let evidence = evidence_allowed(req.evidence, poster, &mut errors);
    check_not_in_future(req.occurred_at, now, settings.future_skew_secs, &mut errors);
    let occurred_at = req.occurred_at.naive_utc();
    let ended_at = req.ended_at.map(|t| t.naive_utc());
    check_ends_after_start(occurred_at, ended_at, &mut errors);
    let typed = typed_data(catalog, req, &mut errors);
    let kind = rules::TypeRules::of(catalog, &req.activity_type);
    let occupied = typed
        .as_ref()
        .map(|(_, values)| rules::interval(occurred_at, ended_at, values, kind));
    if let (Some(occupied), Some((_, values))) = (occupied, &typed) {
        check_lasts_at_most_a_day(occupied, &mut errors);
        check_duration_fits(values, occurred_at, ended_at, &mut errors);
    }
    Checked {
        region,
        evidence,
        occurred_at,
        ended_at,
        typed,
        interval: occupied.map(|o| o.span),
        errors,
    }
}

fn check_client_event_id(client_event_id: &str, errors: &mut Vec<FieldError>) {
    let chars = client_event_id.chars().count();
    if !(1..=CLIENT_EVENT_ID_MAX_CHARS).contains(&chars) {
        errors.push(field(
            "client_event_id",
            format!("must be 1 to {CLIENT_EVENT_ID_MAX_CHARS} characters"),
        ));
    }
}

/// The event's region (default: the poster's), which the catalog must know.
fn known_region(
    req: &ActivityRequest,
    poster: &Poster,
    catalog: &Catalog,
    errors: &mut Vec<FieldError>,
) -> String {
    let region = req
        .region_code
        .clone()
        .unwrap_or_else(|| poster.home_region.clone());
    if catalog.region(&region).is_none() {
        errors.push(field("region_code", "unknown region"));
    }
    region
}

/// A provider's call is operator evidence, whatever it says; the app may not claim operator evidence.
fn evidence_allowed(stated: Option<Evidence>, poster: &Poster, errors: &mut Vec<FieldError>) -> Evidence {
    match (stated, poster.provider_id) {
        (_, Some(_)) => Evidence::Operator,
        (Some(Evidence::Operator), None) => {
            errors.push(field(
                "evidence",
                "operator evidence comes only from signed provider calls",
            ));
            Evidence::Operator
        }
        (evidence, None) => evidence.unwrap_or(Evidence::SelfReport),
    }
}

fn check_not_in_future(
    occurred_at: DateTime<FixedOffset>,
    now: DateTime<Utc>,
    future_skew_secs: i64,
    errors: &mut Vec<FieldError>,
) {
    if occurred_at.with_timezone(&Utc) > now + Duration::seconds(future_skew_secs) {
        errors.push(field("occurred_at", "is in the future"));
    }
}

fn check_ends_after_start(
    occurred_at: NaiveDateTime,
    ended_at: Option<NaiveDateTime>,
    errors: &mut Vec<FieldError>,
) {
    if ended_at.is_some_and(|end| end <= occurred_at) {
        errors.push(field("ended_at", "must be after occurred_at"));
    }
}

/// The type's claim window and the request's data typed by the type's schema.
fn typed_data(
    catalog: &Catalog,
    req: &ActivityRequest,
    errors: &mut Vec<FieldError>,
) -> Option<(i64, DataValues)> {
    let Some(kind) = catalog.activity_type(&req.activity_type) else {
        errors.push(field("activity_type", "unknown activity type"));
        return None;
    };
    match kind.schema.validate(&req.data) {
        Ok(values) => Some((kind.claim_window_days, values)),
        Err(data_errors) => {
            errors.extend(data_errors);
            None
        }
    }
}

/// No activity lasts longer than [`rules::longest`], at the speeds plausible for its type; the error
/// names the field that made it that long.
fn check_lasts_at_most_a_day(occupied: rules::Occupied, errors: &mut Vec<FieldError>) {
    let (start, end) = occupied.span;
    if end - start > rules::longest() {
        errors.push(field(
            occupied.end_set_by,
            "an activity lasts at most 24 hours, at the speeds plausible for its type",
        ));
    }
}

fn check_duration_fits(
    values: &DataValues,
    occurred_at: NaiveDateTime,
    ended_at: Option<NaiveDateTime>,
    errors: &mut Vec<FieldError>,
) {
    if !rules::duration_fits(values, occurred_at, ended_at) {
        errors.push(field(
            "data.duration_s",
            "is longer than the time from occurred_at to ended_at",
        ));
    }
}
