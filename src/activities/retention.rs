//! Raw activity data past its retention (`retention.activity_data_days`) is reduced to what reproduces
//! the figure: the data fields the formula of the recorded methodology version reads. Re-quantifying the
//! activity (`verify`, `/requantify`) therefore still gives the grams it was credited; anything else the
//! data held is dropped. An activity that recorded no version (rejected before it was quantified) keeps
//! no data at all.
//!
//! The sweep walks activities by id from a mark (`retention_marks`), so each row is read once, and stops
//! at the first one still inside the retention.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::{Map, Value};

use crate::db::schema::{activities, retention_marks};
use crate::db::AnyConnection;
use crate::methodology::store as methodology_store;

/// The mark's name in `retention_marks`.
const MARK: &str = "activity_data";

/// `data` keeping only `fields` (`None`: the activity recorded no version, so nothing is kept).
pub fn reduced(data: &str, fields: Option<&[String]>) -> String {
    let data: Map<String, Value> = serde_json::from_str(data).unwrap_or_default();
    let kept: Map<String, Value> = data
        .into_iter()
        .filter(|(name, _)| fields.is_some_and(|f| f.iter().any(|k| k == name)))
        .collect();
    Value::Object(kept).to_string()
}

/// The data fields a methodology version's formula reads, parsed once per version per sweep; `None` when
/// the version cannot be read (then the data is left whole: reducing must never lose what reproduces a
/// figure).
fn fields_of(
    conn: &mut AnyConnection,
    cache: &mut HashMap<i64, Option<Vec<String>>>,
    version_id: i64,
) -> QueryResult<Option<Vec<String>>> {
    if let Some(fields) = cache.get(&version_id) {
        return Ok(fields.clone());
    }
    let fields = match methodology_store::find_version(conn, version_id)?.map(|row| row.to_version()) {
        Some(Ok(version)) => Some(version.data_fields()),
        _ => None,
    };
    cache.insert(version_id, fields.clone());
    Ok(fields)
}

/// Reduces the data of up to `batch` activities stored before `cutoff`, past the mark; returns how many it
/// read (0: none is left). Runs inside the caller's transaction.
pub fn reduce_batch(conn: &mut AnyConnection, cutoff: NaiveDateTime, batch: i64) -> QueryResult<usize> {
    let mark: i64 = retention_marks::table
        .find(MARK)
        .select(retention_marks::last_id)
        .first(conn)
        .optional()?
        .unwrap_or(0);
    let rows: Vec<(i64, Option<i64>, String, NaiveDateTime)> = activities::table
        .filter(activities::id.gt(mark))
        .order(activities::id)
        .limit(batch)
        .select((
            activities::id,
            activities::methodology_id,
            activities::data,
            activities::created_at,
        ))
        .load(conn)?;
    let mut cache = HashMap::new();
    let mut last = mark;
    let mut read = 0;
    for (id, version_id, data, created_at) in rows {
        if created_at >= cutoff {
            break;
        }
        let new = match version_id {
            Some(v) => fields_of(conn, &mut cache, v)?.map(|fields| reduced(&data, Some(&fields))),
            None => Some(reduced(&data, None)),
        };
        if let Some(new) = new.filter(|new| *new != data) {
            diesel::update(activities::table.find(id))
                .set(activities::data.eq(&new))
                .execute(conn)?;
        }
        (last, read) = (id, read + 1);
    }
    if last > mark {
        diesel::sql_query(
            "INSERT INTO retention_marks (name, last_id) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET last_id = excluded.last_id",
        )
        .bind::<diesel::sql_types::Text, _>(MARK)
        .bind::<diesel::sql_types::BigInt, _>(last)
        .execute(conn)?;
    }
    Ok(read)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduced_data_keeps_only_what_the_formula_reads() {
        let fields = vec!["distance_m".to_string(), "grid_ef".to_string()];
        assert_eq!(
            reduced(r#"{"distance_m":10000,"duration_s":1200}"#, Some(&fields)),
            r#"{"distance_m":10000}"#
        );
        assert_eq!(reduced(r#"{"note":"x"}"#, None), "{}");
        assert_eq!(reduced("not json", Some(&fields)), "{}");
    }
}
