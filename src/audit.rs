//! The audit trail: who changed what, when, with the state before and after; searched over HTTP in
//! [`handlers`].

pub mod handlers;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::auth::api_keys::Owner;
use crate::db::plan::ListQuery;
use crate::db::schema::audit_log;
use crate::db::AnyConnection;

crate::text_enum! {
    /// What an administrator did (and what people and partners did with personal data).
    pub enum AuditAction {
        ActivityTypeChangeApprove = "activity_type.change_approve",
        ActivityTypeChangeRequest = "activity_type.change_request",
        ActivityTypeCreate = "activity_type.create",
        AccountErase = "account.erase",
        AdminCreate = "admin.create",
        CashDepositConfirm = "cash_deposit.confirm",
        CashDepositRecord = "cash_deposit.record",
        CashWithdrawalComplete = "cash_withdrawal.complete",
        CashWithdrawalReject = "cash_withdrawal.reject",
        ConsentGrant = "consent.grant",
        ConsentRead = "consent.read",
        ConsentRevoke = "consent.revoke",
        GreenTiersPublish = "green_tiers.publish",
        KeyCreate = "key.create",
        KeyRevoke = "key.revoke",
        KeyRotate = "key.rotate",
        MethodologyActivate = "methodology.activate",
        MethodologyDraft = "methodology.draft",
        MethodologyDraftDelete = "methodology.draft_delete",
        MethodologyDraftEdit = "methodology.draft_edit",
        MethodologyRetire = "methodology.retire",
        MethodologyRetireRequest = "methodology.retire_request",
        PartnerCreate = "partner.create",
        PeerCreate = "peer.create",
        ProviderCreate = "provider.create",
        ReductionBatchDelete = "reduction_batch.delete",
        ReductionBatchDraft = "reduction_batch.draft",
        ReductionBatchIssue = "reduction_batch.issue",
        ReductionBatchRetire = "reduction_batch.retire",
        ReductionBatchSell = "reduction_batch.sell",
        ReductionBatchSettle = "reduction_batch.settle",
        ReductionBatchSubmit = "reduction_batch.submit",
        ReductionBatchVerify = "reduction_batch.verify",
        RegionParametersActivate = "region_parameters.activate",
        RegionParametersDelete = "region_parameters.delete",
        RegionParametersDraft = "region_parameters.draft",
        RegionParametersEdit = "region_parameters.edit",
        ReviewApprove = "review.approve",
        ReviewReject = "review.reject",
        RoleGrant = "role.grant",
        RoleRevoke = "role.revoke",
    }
}

crate::text_enum! {
    /// What kind of thing an audited action changed.
    pub enum AuditEntity {
        Activity = "activity",
        ActivityType = "activity_type",
        ActivityTypeChange = "activity_type_change",
        CashDeposit = "cash_deposit",
        CashWithdrawal = "cash_withdrawal",
        Consent = "consent",
        MethodologyVersion = "methodology_version",
        Partner = "partner",
        Peer = "peer",
        Provider = "provider",
        ReductionBatch = "reduction_batch",
        RegionParameterVersion = "region_parameter_version",
        RoleGrant = "role_grant",
        User = "user",
    }
}

impl From<Owner> for AuditEntity {
    /// A key's change is recorded against its owner.
    fn from(owner: Owner) -> AuditEntity {
        match owner {
            Owner::Partner => AuditEntity::Partner,
            Owner::Provider => AuditEntity::Provider,
            Owner::Peer => AuditEntity::Peer,
        }
    }
}

/// One audited change.
pub struct Entry<'a> {
    pub at: NaiveDateTime,
    pub actor_user_id: Option<i64>,
    pub action: AuditAction,
    pub entity: AuditEntity,
    pub entity_id: &'a str,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

pub fn record(conn: &mut AnyConnection, entry: Entry<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::actor_user_id.eq(entry.actor_user_id),
            audit_log::action.eq(entry.action),
            audit_log::entity.eq(entry.entity),
            audit_log::entity_id.eq(entry.entity_id),
            audit_log::before_json.eq(entry.before.map(|v| v.to_string())),
            audit_log::after_json.eq(entry.after.map(|v| v.to_string())),
            audit_log::created_at.eq(entry.at),
        ))
        .execute(conn)
        .map(|_| ())
}

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_log)]
pub struct AuditRow {
    pub id: i64,
    pub actor_user_id: Option<i64>,
    pub action: AuditAction,
    pub entity: AuditEntity,
    pub entity_id: String,
    pub before_json: Option<String>,
    pub after_json: Option<String>,
    pub created_at: chrono::NaiveDateTime,
}

/// Which entries an audit search finds: each condition that is set must hold.
#[derive(Debug, Default)]
pub struct Search {
    pub actor_user_id: Option<i64>,
    pub entity: Option<AuditEntity>,
    pub entity_id: Option<String>,
    /// Recorded at or after.
    pub from: Option<NaiveDateTime>,
    /// Recorded before.
    pub to: Option<NaiveDateTime>,
}

/// The entries `search` finds, newest first, below the cursor id.
pub fn list(
    conn: &mut AnyConnection,
    search: &Search,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<AuditRow>> {
    list_query(search, before, limit).load(conn)
}

/// The query [`list`] runs (its plan is tested for no condition, an actor, and an entity with its id:
/// each walks an index in id order).
pub fn list_query(search: &Search, before: Option<i64>, limit: i64) -> impl ListQuery<AuditRow> {
    let mut query = audit_log::table
        .select(AuditRow::as_select())
        .order(audit_log::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(audit_log::id.lt(before));
    }
    if let Some(actor) = search.actor_user_id {
        query = query.filter(audit_log::actor_user_id.eq(actor));
    }
    if let Some(entity) = search.entity {
        query = query.filter(audit_log::entity.eq(entity));
    }
    if let Some(entity_id) = &search.entity_id {
        query = query.filter(audit_log::entity_id.eq(entity_id.clone()));
    }
    if let Some(from) = search.from {
        query = query.filter(audit_log::created_at.ge(from));
    }
    if let Some(to) = search.to {
        query = query.filter(audit_log::created_at.lt(to));
    }
    query
}
