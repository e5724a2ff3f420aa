//! Queries on region-parameter versions.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use rust_decimal::Decimal;

use crate::db::schema::region_parameter_versions as versions;
use crate::db::AnyConnection;
use crate::domain::region_parameters::ParameterVersion;

crate::text_enum! {
    /// Where a region-parameter version is in its life. An active version is never retired: a later one
    /// of its region ends it, so the past stays as it was.
    pub enum ParameterStatus {
        Draft = "draft",
        Active = "active",
    }
}

#[derive(Debug, Clone, Queryable, Selectable, serde::Serialize)]
#[diesel(table_name = versions)]
pub struct ParameterRow {
    pub id: i64,
    pub region_code: String,
    pub status: ParameterStatus,
    pub effective_from: NaiveDateTime,
    /// `{"points_per_gram": "1.5", …}`
    pub parameter_values: String,
    pub citation: String,
    pub drafted_by: Option<i64>,
    pub approved_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub activated_at: Option<NaiveDateTime>,
}

impl ParameterRow {
    /// The values as stored: name → decimal text.
    pub fn values(&self) -> BTreeMap<String, String> {
        serde_json::from_str(&self.parameter_values).unwrap_or_default()
    }

    /// The version ready to resolve, or why it cannot be (validation on save prevents that).
    pub fn to_version(&self) -> Result<ParameterVersion, String> {
        let values = self
            .values()
            .into_iter()
            .map(|(name, text)| {
                Decimal::from_str_exact(&text)
                    .map(|v| (name.clone(), v))
                    .map_err(|_| format!("value `{name}` is not a decimal: {text}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(ParameterVersion {
            id: self.id,
            region_code: self.region_code.clone(),
            effective_from: self.effective_from,
            activated_at: self.activated_at,
            values,
        })
    }
}

/// What a draft holds, checked.
pub struct DraftValues<'a> {
    pub region_code: &'a str,
    pub effective_from: NaiveDateTime,
    /// JSON of name → decimal text.
    pub values_json: String,
    pub citation: &'a str,
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<ParameterRow>> {
    versions::table
        .find(id)
        .select(ParameterRow::as_select())
        .first(conn)
        .optional()
}

/// Which versions a listing shows; every field left out matches all.
#[derive(Debug, Default, Clone)]
pub struct ParameterFilter {
    pub region_code: Option<String>,
    pub status: Option<ParameterStatus>,
}

/// Newest first, below the cursor id.
pub fn list(
    conn: &mut AnyConnection,
    filter: &ParameterFilter,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<ParameterRow>> {
    let mut query = versions::table
        .select(ParameterRow::as_select())
        .order(versions::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(r) = &filter.region_code {
        query = query.filter(versions::region_code.eq(r.clone()));
    }
    if let Some(s) = filter.status {
        query = query.filter(versions::status.eq(s));
    }
    if let Some(before) = before {
        query = query.filter(versions::id.lt(before));
    }
    query.load(conn)
}

/// Every active version, for the catalog. A row that cannot be read is logged and left out rather than
/// taking the whole catalog down.
pub fn active_versions(conn: &mut AnyConnection) -> QueryResult<Vec<ParameterVersion>> {
    Ok(versions::table
        .filter(versions::status.eq(ParameterStatus::Active))
        .select(ParameterRow::as_select())
        .load(conn)?
        .into_iter()
        .filter_map(|row| match row.to_version() {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!(id = row.id, error = %e, "region-parameter version cannot be read");
                None
            }
        })
        .collect())
}

/// Stores a draft; returns its id.
pub fn insert_draft(
    conn: &mut AnyConnection,
    draft: &DraftValues<'_>,
    admin: i64,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    diesel::insert_into(versions::table)
        .values((
            versions::region_code.eq(draft.region_code),
            versions::status.eq(ParameterStatus::Draft),
            versions::effective_from.eq(draft.effective_from),
            versions::parameter_values.eq(&draft.values_json),
            versions::citation.eq(draft.citation),
            versions::drafted_by.eq(Some(admin)),
            versions::created_at.eq(now),
        ))
        .returning(versions::id)
        .get_result(conn)
}

/// Replaces a draft's content (its region stays), making `editor` its drafter; false when it is no
/// longer a draft.
pub fn update_draft(
    conn: &mut AnyConnection,
    id: i64,
    draft: &DraftValues<'_>,
    editor: i64,
) -> QueryResult<bool> {
    let n = diesel::update(
        versions::table
            .find(id)
            .filter(versions::status.eq(ParameterStatus::Draft)),
    )
    .set((
        versions::effective_from.eq(draft.effective_from),
        versions::parameter_values.eq(&draft.values_json),
        versions::citation.eq(draft.citation),
        versions::drafted_by.eq(Some(editor)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Deletes a draft; false when it is no longer a draft.
pub fn delete_draft(conn: &mut AnyConnection, id: i64) -> QueryResult<bool> {
    let n = diesel::delete(
        versions::table
            .find(id)
            .filter(versions::status.eq(ParameterStatus::Draft)),
    )
    .execute(conn)?;
    Ok(n == 1)
}

/// Puts a draft in force, approved by `approver`; false when it is no longer a draft.
pub fn activate(conn: &mut AnyConnection, id: i64, approver: i64, at: NaiveDateTime) -> QueryResult<bool> {
    let n = diesel::update(
        versions::table
            .find(id)
            .filter(versions::status.eq(ParameterStatus::Draft)),
    )
    .set((
        versions::status.eq(ParameterStatus::Active),
        versions::approved_by.eq(Some(approver)),
        versions::activated_at.eq(Some(at)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
