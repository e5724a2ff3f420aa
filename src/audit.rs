//! The audit trail: who changed what, when, with the state before and after.

use chrono::Utc;
use diesel::prelude::*;

use crate::db::schema::audit_log;
use crate::db::AnyConnection;

pub fn record(
    conn: &mut AnyConnection,
    actor_user_id: Option<i64>,
    action: &str,
    entity: &str,
    entity_id: &str,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor_user_id.eq(actor_user_id),
            audit_log::action.eq(action),
            audit_log::entity.eq(entity),
            audit_log::entity_id.eq(entity_id),
            audit_log::before_json.eq(before.map(|v| v.to_string())),
            audit_log::after_json.eq(after.map(|v| v.to_string())),
            audit_log::created_at.eq(Utc::now().naive_utc()),
        ))
        .execute(conn)
        .map(|_| ())
}
