//! What administrators give to onboard a party that signs its requests (a data provider or a partner).

use actix_web::HttpResponse;
use serde::Deserialize;
use utoipa::ToSchema;

use diesel::QueryResult;

use crate::auth::api_keys::{self, KeyError, KeyInfo, Owner};
use crate::db::AnyConnection;
use crate::domain::catalog::Catalog;
use crate::domain::claim::OperatorCode;
use crate::error::{ApiError, FieldError};
use crate::error::{ApiResult, ErrorCode};
use crate::governance::{OutOfScope, Scope};
use crate::http::pagination::{Page, Paginated};
use crate::state::AppState;

/// The longest partner or provider name: a company's full registered name fits.
pub const NAME_MAX_CHARS: usize = 100;

/// The most regions one party may list: every region there is (the nation, 31 provinces, the pilot
/// cities) with room to spare; a party serving the whole country names `CN`.
pub const REGION_CODES_MAX: usize = 64;

/// Why onboarding a validated party (a partner or a data provider) was not stored.
#[derive(Debug, thiserror::Error)]
pub enum OnboardError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// Another provider has this operator code.
    #[error("operator code {0} is taken by another provider")]
    CodeTaken(String),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error("encoding the region list: {0}")]
    Encoding(#[from] serde_json::Error),
}

impl From<OnboardError> for ApiError {
    fn from(e: OnboardError) -> ApiError {
        match e {
            OnboardError::Invalid { field, message } => ApiError::field(field, message),
            OnboardError::CodeTaken(_) => ApiError::conflict(ErrorCode::OperatorCodeTaken, e.to_string()),
            OnboardError::Key(e) => e.into(),
            OnboardError::Database(e) => e.into(),
            OnboardError::Encoding(e) => ApiError::internal(e),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Onboarding {
    pub name: String,
    /// Partners: transit, scenic or green_credit. Providers: those, or bikeshare, waste, energy or other.
    pub kind: String,
    /// The regions it serves (GB/T 2260 codes).
    #[serde(default)]
    pub region_codes: Vec<String>,
    /// Providers only: the operator's code, a unique lowercase slug such as `shenzhen-metro` (at most 64
    /// characters). With it the provider's activities may name their trips (`trip_ref`), whose claims
    /// are computed from the code (docs/registry.md). A taken code → 409 `operator_code_taken`.
    #[serde(default)]
    pub code: Option<String>,
}

impl Onboarding {
    /// Checks the name, that the kind is one of `kinds`, and that every region exists (and, when
    /// `regions_required`, that there is at least one). Answers 422 naming each bad field.
    pub fn validate(
        &self,
        kinds: &[&str],
        regions_required: bool,
        catalog: &Catalog,
    ) -> Result<(), ApiError> {
        let mut errors = Vec::new();
        let mut error = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.into(),
                message,
            })
        };
        if self.name.trim().is_empty() || self.name.chars().count() > NAME_MAX_CHARS {
            error("name", format!("must be 1 to {NAME_MAX_CHARS} characters"));
        }
        if !kinds.contains(&self.kind.as_str()) {
            error("kind", format!("must be one of {}", kinds.join(", ")));
        }
        if regions_required && self.region_codes.is_empty() {
            error("region_codes", "name at least one region".into());
        }
        if self.region_codes.len() > REGION_CODES_MAX {
            error("region_codes", format!("at most {REGION_CODES_MAX} regions"));
        }
        for code in self.region_codes.iter().take(REGION_CODES_MAX) {
            if catalog.region(code).is_none() {
                error("region_codes", format!("unknown region {code}"));
            }
        }
        if let Some(Err(message)) = self.code.as_deref().map(OperatorCode::parse) {
            error("code", message);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(errors))
        }
    }

    /// Whether `scope` governs every region the party serves; one that names none serves everywhere,
    /// which only a national administrator governs.
    pub fn check_governed(&self, scope: &Scope) -> Result<(), OutOfScope> {
        scope.check_all(self.region_codes.iter().map(String::as_str))
    }
}

/// One page of onboarded parties (newest first), each with its keys' state and never a secret, as the
/// administrators' lists answer it. `load` reads the page's rows (at most `page.limit + 1`, ids below
/// `page.before`), `view` shapes one with its keys.
pub async fn page_with_keys<R, V>(
    state: &AppState,
    page: Page,
    owner: Owner,
    load: fn(&mut AnyConnection, Page) -> QueryResult<Vec<R>>,
    id: fn(&R) -> i64,
    view: impl Fn(R, Vec<KeyInfo>) -> V,
) -> ApiResult<HttpResponse>
where
    R: Send + 'static,
    V: serde::Serialize,
{
    let (rows, mut keys) = state
        .db
        .run(move |conn| {
            let rows = load(conn, page)?;
            let ids: Vec<i64> = rows.iter().map(id).collect();
            let keys = api_keys::list_of_owners(conn, owner, &ids)?;
            Ok((rows, keys))
        })
        .await?;
    Ok(HttpResponse::Ok().json(Paginated::from_rows(rows, page, id, |r| {
        let own = keys.remove(&id(&r)).unwrap_or_default();
        view(r, own)
    })))
}
