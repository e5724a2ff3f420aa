//! The redemptions' part of `tanhui verify` (`crate::verify`): every redemption agrees with the ledger, and every partner's settlement
//! account holds exactly the points of its captured redemptions (and has pending exactly those held).

use std::collections::HashMap;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::store::RedemptionStatus;
use crate::db::AnyConnection;
use crate::ledger::check::Balances;
use crate::ledger::kinds::TransferKind;

#[derive(QueryableByName)]
struct Resolution {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    status: RedemptionStatus,
    #[diesel(sql_type = BigInt)]
    points: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    hold_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    kind: Option<TransferKind>,
    #[diesel(sql_type = Nullable<BigInt>)]
    pending_id: Option<i64>,
    #[diesel(sql_type = Nullable<BigInt>)]
    amount: Option<i64>,
}

#[derive(QueryableByName)]
struct Settlement {
    #[diesel(sql_type = BigInt)]
    account_id: i64,
    #[diesel(sql_type = BigInt)]
    captured: i64,
    #[diesel(sql_type = BigInt)]
    held: i64,
}

/// The transfer kind that ends a redemption in `status`; None while it is held.
fn resolving_kind(status: RedemptionStatus) -> Option<TransferKind> {
    match status {
        RedemptionStatus::Captured => Some(TransferKind::Post),
        RedemptionStatus::Voided => Some(TransferKind::Void),
        RedemptionStatus::Expired => Some(TransferKind::Expire),
        RedemptionStatus::Held => None,
    }
}

/// Mismatches between redemptions and the ledger, given the balances derived from the transfers.
pub fn check(conn: &mut AnyConnection, derived: &HashMap<i64, Balances>) -> QueryResult<Vec<String>> {
    let mut mismatches = Vec::new();
    let rows: Vec<Resolution> = diesel::sql_query(
        "SELECT r.id AS id, r.status AS status, r.points AS points, r.hold_id AS hold_id, \
         t.kind AS kind, t.pending_id AS pending_id, t.amount AS amount \
         FROM redemptions r LEFT JOIN transfers t ON t.id = r.resolution_id ORDER BY r.id",
    )
    .load(conn)?;
    for r in rows {
        let expected = resolving_kind(r.status);
        let agrees = r.hold_id.is_some()
            && r.kind == expected
            && (expected.is_none() || (r.pending_id == r.hold_id && r.amount == Some(r.points)));
        if !agrees {
            mismatches.push(format!(
                "redemption {} is {} but its ledger record is {:?} of hold {:?} for {:?}",
                r.id,
                r.status,
                r.kind.map(TransferKind::as_str),
                r.pending_id,
                r.amount
            ));
        }
    }
    let settlements: Vec<Settlement> = diesel::sql_query(
        "SELECT p.account_id AS account_id, \
         CAST(COALESCE(SUM(CASE WHEN r.status = 'captured' THEN r.points ELSE 0 END), 0) AS BIGINT) AS captured, \
         CAST(COALESCE(SUM(CASE WHEN r.status = 'held' THEN r.points ELSE 0 END), 0) AS BIGINT) AS held \
         FROM partners p LEFT JOIN redemptions r ON r.partner_id = p.id GROUP BY p.account_id",
    )
    .load(conn)?;
    for s in settlements {
        let b = derived.get(&s.account_id).copied().unwrap_or_default();
        // In 128 bits: a balance derived out of range (reported by the ledger's check) must not wrap here.
        let balance = i128::from(b.credits_posted) - i128::from(b.debits_posted);
        if balance != i128::from(s.captured) || b.credits_pending != s.held {
            mismatches.push(format!(
                "settlement account {}: balance {balance} and pending {} but its redemptions captured {} and hold {}",
                s.account_id, b.credits_pending, s.captured, s.held
            ));
        }
    }
    Ok(mismatches)
}
