//! What an activity is at each step: the poster and the validated event, the states an activity is stored
//! in, the reasons it was flagged or refused, and the answer its client is given. Every other module of
//! `activities` builds on these; this one depends on none of them.

use chrono::NaiveDateTime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::catalog::Evidence;
use crate::domain::claim::ClaimId;
use crate::domain::data_schema::DataValues;
use crate::domain::formula::Step;
use crate::error::ApiError;
use crate::methodology::quantify::Quantified;
use crate::methodology::views::MethodologyRef;

crate::text_enum! {
    /// What became of an activity: credited (points issued, perhaps fewer under a cap), capped (the caps
    /// left it nothing), flagged (held for review) or rejected.
    pub enum Status {
        Credited = "credited",
        Capped = "capped",
        Flagged = "flagged",
        Rejected = "rejected",
    }
}

impl Status {
    /// Whether the statistics count it: what was granted (credited, or capped to nothing).
    pub fn is_counted(self) -> bool {
        matches!(self, Status::Credited | Status::Capped)
    }
}

crate::text_enum! {
    /// Why an activity was granted less than it claimed, flagged or rejected, or what it superseded.
    pub enum Reason {
        /// The daily cap of its type left it less than it claimed.
        CapReached = "cap_reached",
        /// It came after its type's claim window.
        Late = "late",
        /// Faster than its type allows.
        Speed = "speed",
        /// It overlaps another trip of the account.
        Overlap = "overlap",
        /// The app's record of a trip its operator reported.
        Duplicate = "duplicate",
        /// The operator's record of a trip the app had claimed: it tops up what the app's records got.
        SupersedesAppRecord = "supersedes_app_record",
        /// The annual points cap left it fewer points than it earned.
        AnnualCapReached = "annual_cap_reached",
        /// Its reduction is above `activities.max_reduction_g_per_event`: held for review, nothing issued.
        ImplausibleAmount = "implausible_amount",
        /// Another platform registered the claim of its trip first (docs/registry.md): nothing issued.
        AlreadyClaimed = "already_claimed",
    }
}

/// What the client is told (and what a replay returns).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ActivityResult {
    pub activity_id: String,
    pub status: Status,
    /// What the methodology gives, in grams CO2e.
    pub reduction_g: i64,
    /// What the daily cap let through.
    pub granted_g: i64,
    pub points: i64,
    pub methodology: Option<MethodologyRef>,
    pub reasons: Vec<Reason>,
    #[schema(value_type = Vec<Object>)]
    pub breakdown: Vec<Step>,
}

/// The columns an answer is rebuilt from. The answer is not stored as such: every figure of it is in the
/// activity's row already (and a review keeps them current), so storing it again would double the row, and
/// the rows written per second are what bounds ingestion.
#[derive(Debug, Clone)]
pub struct StoredAnswer {
    pub id: i64,
    pub status: Status,
    pub reduction_g: i64,
    pub granted_g: i64,
    pub points: i64,
    /// JSON array of strings, as stored.
    pub reasons: String,
    /// JSON array of steps, as stored.
    pub breakdown: Option<String>,
    pub methodology: Option<MethodologyRef>,
}

/// A stored answer whose reasons or breakdown no longer parse.
#[derive(Debug, thiserror::Error)]
#[error("activity {id}: {source}")]
pub struct BrokenAnswer {
    pub id: i64,
    pub source: serde_json::Error,
}

impl From<BrokenAnswer> for ApiError {
    fn from(e: BrokenAnswer) -> ApiError {
        ApiError::internal(anyhow::anyhow!(e.to_string()))
    }
}

impl StoredAnswer {
    pub fn into_result(self) -> Result<ActivityResult, BrokenAnswer> {
        let parse = |source: serde_json::Error| BrokenAnswer { id: self.id, source };
        Ok(ActivityResult {
            activity_id: self.id.to_string(),
            reasons: serde_json::from_str(&self.reasons).map_err(parse)?,
            breakdown: match &self.breakdown {
                Some(steps) => serde_json::from_str(steps).map_err(parse)?,
                None => Vec::new(),
            },
            status: self.status,
            reduction_g: self.reduction_g,
            granted_g: self.granted_g,
            points: self.points,
            methodology: self.methodology,
        })
    }
}

pub enum Outcome {
    Created(ActivityResult),
    /// The same event posted again: its answer, rebuilt from its row (see [`StoredAnswer`]).
    Replayed(ActivityResult),
}

/// The answer one event gets from the writer.
pub type Answer = Result<Outcome, ApiError>;

/// Who posts: the account credited, and whether a trusted provider vouches for it.
#[derive(Debug, Clone)]
pub struct Poster {
    pub user_id: i64,
    pub account_id: i64,
    pub home_region: String,
    pub provider_id: Option<i64>,
    /// The vouching provider's operator code, if it has one: its trips' claims are computed with it.
    pub operator_code: Option<String>,
}

/// An event's idempotency key: (account, poster, `client_event_id`), the poster being the data provider
/// that posted it, or 0 for the account's own app. Unique in the database (`activities_event`).
pub type EventKey<'a> = (i64, i64, &'a str);

/// The poster part of an [`EventKey`].
pub fn poster_of(provider_id: Option<i64>) -> i64 {
    provider_id.unwrap_or(0)
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
    /// The claim of the operator's trip, when its provider named the trip (`trip_ref`): registered for
    /// Tanhui as the activity is stored, unless another platform holds it (docs/registry.md).
    pub claim: Option<ClaimId>,
}

impl Event {
    pub fn key(&self) -> EventKey<'_> {
        (
            self.poster.account_id,
            poster_of(self.poster.provider_id),
            &self.client_event_id,
        )
    }
}

/// What the overlap rules need to know of another activity.
#[derive(Debug, Clone, diesel::Queryable)]
pub struct Neighbour {
    pub account_id: i64,
    pub occurred_at: NaiveDateTime,
    pub ended_at: Option<NaiveDateTime>,
    pub activity_type: String,
    pub provider_id: Option<i64>,
    pub status: Status,
    pub granted_g: i64,
    pub points: i64,
}

impl Neighbour {
    /// Whether this is a live activity of `account_id` that overlaps [start, end).
    pub fn overlaps(&self, account_id: i64, (start, end): (NaiveDateTime, NaiveDateTime)) -> bool {
        self.account_id == account_id
            && self.status != Status::Rejected
            && self.occurred_at < end
            && self.ended_at.is_some_and(|e| e > start)
    }
}
