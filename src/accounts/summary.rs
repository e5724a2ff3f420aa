//! A person's history in figures: what their activities saved and earned over a period, by activity type,
//! and what they spent and received.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;

use crate::activities::model::Status;
use crate::db::schema::transfers;
use crate::db::{self, AnyConnection, Tx};
use crate::ledger::kinds::TransferKind;

/// One activity type's share of a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema, QueryableByName)]
pub struct TypeSummary {
    #[diesel(sql_type = Text)]
    pub activity_type: String,
    /// Credited activities.
    #[diesel(sql_type = BigInt)]
    pub activities: i64,
    /// The reduction credited (after caps), in grams.
    #[diesel(sql_type = BigInt)]
    pub reduction_g: i64,
    #[diesel(sql_type = BigInt)]
    pub points: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Summary {
    /// The reduction credited for activities that took place in the period, in grams.
    pub reduction_g: i64,
    /// Points issued for those activities.
    pub points_earned: i64,
    /// Points that left the wallet in the period: transfers sent, redemptions captured, retirements.
    pub points_spent: i64,
    /// Points other people sent to the wallet in the period.
    pub points_received: i64,
    pub by_activity_type: Vec<TypeSummary>,
}

/// The summary of `account_id` for activities that occurred, and transfers made, in [from, to): one
/// snapshot, so the figures agree with each other.
pub fn summary(
    conn: &mut AnyConnection,
    account_id: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Summary> {
    db::transaction(conn, Tx::Snapshot, |conn| {
        let by_activity_type: Vec<TypeSummary> = diesel::sql_query(
            "SELECT activity_type, COUNT(*) AS activities, \
             CAST(COALESCE(SUM(granted_g), 0) AS BIGINT) AS reduction_g, \
             CAST(COALESCE(SUM(points), 0) AS BIGINT) AS points \
             FROM activities WHERE account_id = $1 AND occurred_at >= $2 AND occurred_at < $3 \
             AND status = $4 GROUP BY activity_type ORDER BY activity_type",
        )
        .bind::<BigInt, _>(account_id)
        .bind::<Timestamp, _>(from)
        .bind::<Timestamp, _>(to)
        .bind::<Text, _>(Status::Credited)
        .load(conn)?;
        let points_spent = moved(conn, Side::Debit, account_id, (from, to), &SPENT)?;
        let points_received = moved(conn, Side::Credit, account_id, (from, to), &RECEIVED)?;
        let (reduction_g, points_earned) = totals(&by_activity_type)?;
        Ok(Summary {
            reduction_g,
            points_earned,
            points_spent,
            points_received,
            by_activity_type,
        })
    })
}

/// Transfers out of a wallet that spend its points: sent to someone, captured by a partner, retired.
const SPENT: [TransferKind; 3] = [TransferKind::Transfer, TransferKind::Post, TransferKind::Retire];
/// Transfers into a wallet from another person.
const RECEIVED: [TransferKind; 1] = [TransferKind::Transfer];

/// Which side of a transfer the account is on.
#[derive(Clone, Copy)]
enum Side {
    Debit,
    Credit,
}

/// The points of `kinds` of transfer on `side` of the account, made in the window.
fn moved(
    conn: &mut AnyConnection,
    side: Side,
    account_id: i64,
    (from, to): (NaiveDateTime, NaiveDateTime),
    kinds: &[TransferKind],
) -> QueryResult<i64> {
    let mut query = transfers::table
        .filter(transfers::created_at.ge(from))
        .filter(transfers::created_at.lt(to))
        .filter(transfers::kind.eq_any(kinds.to_vec()))
        .select(diesel::dsl::sql::<BigInt>(
            "CAST(COALESCE(SUM(amount), 0) AS BIGINT)",
        ))
        .into_boxed();
    query = match side {
        Side::Debit => query.filter(transfers::debit_account_id.eq(account_id)),
        Side::Credit => query.filter(transfers::credit_account_id.eq(account_id)),
    };
    query.first(conn)
}

/// The grams and points of every type together, in checked arithmetic.
fn totals(types: &[TypeSummary]) -> QueryResult<(i64, i64)> {
    let overflow = || diesel::result::Error::DeserializationError("a summary total beyond an i64".into());
    types.iter().try_fold((0i64, 0i64), |(g, p), t| {
        Ok((
            g.checked_add(t.reduction_g).ok_or_else(overflow)?,
            p.checked_add(t.points).ok_or_else(overflow)?,
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(reduction_g: i64, points: i64) -> TypeSummary {
        TypeSummary {
            activity_type: "walking".into(),
            activities: 1,
            reduction_g,
            points,
        }
    }

    #[test]
    fn totals_add_every_type_and_refuse_to_wrap() {
        assert_eq!(totals(&[]).unwrap(), (0, 0));
        assert_eq!(totals(&[of(86, 86), of(300, 150)]).unwrap(), (386, 236));
        assert!(totals(&[of(i64::MAX, 0), of(1, 0)]).is_err());
    }
}
