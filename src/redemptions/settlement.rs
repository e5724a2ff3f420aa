//! Settlement statements: what a partner captured, voided and let expire in a period, per offer and in
//! total, as JSON, or the line items as CSV.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use serde::Serialize;
use utoipa::ToSchema;

use super::store::RedemptionStatus;
use crate::db::schema::{offers, redemptions};
use crate::db::{self, AnyConnection, Tx};
use crate::error::ApiError;
use crate::ledger::service::Kind;
use crate::ledger::store as ledger;
use crate::partners::Partner;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counts {
    pub captured: i64,
    pub voided: i64,
    pub expired: i64,
    pub points_captured: i64,
    /// The value of the captured benefits, in fen.
    pub value_fen: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OfferCounts {
    pub offer_id: String,
    pub title: String,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Statement {
    pub partner_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub totals: Counts,
    pub offers: Vec<OfferCounts>,
    pub settlement_account_id: String,
    /// Points captured since the partner was onboarded: its settlement account's balance.
    pub settlement_balance: i64,
}

#[derive(QueryableByName)]
struct Group {
    #[diesel(sql_type = BigInt)]
    offer_id: i64,
    #[diesel(sql_type = Text)]
    title: String,
    #[diesel(sql_type = Text)]
    status: RedemptionStatus,
    #[diesel(sql_type = BigInt)]
    n: i64,
    #[diesel(sql_type = BigInt)]
    points: i64,
    #[diesel(sql_type = BigInt)]
    value_fen: i64,
}

/// The statement of `partner` for redemptions resolved in [from, to).
pub fn statement(
    conn: &mut AnyConnection,
    partner: &Partner,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Statement> {
    db::transaction(conn, Tx::Snapshot, |conn| {
        let groups: Vec<Group> = diesel::sql_query(
            "SELECT r.offer_id AS offer_id, o.title AS title, r.status AS status, COUNT(*) AS n, \
             CAST(COALESCE(SUM(r.points), 0) AS BIGINT) AS points, \
             CAST(COALESCE(SUM(r.value_fen), 0) AS BIGINT) AS value_fen \
             FROM redemptions r JOIN offers o ON o.id = r.offer_id \
             WHERE r.partner_id = $1 AND r.status <> 'held' AND r.resolved_at >= $2 AND r.resolved_at < $3 \
             GROUP BY r.offer_id, o.title, r.status ORDER BY r.offer_id",
        )
        .bind::<BigInt, _>(partner.id)
        .bind::<Timestamp, _>(from)
        .bind::<Timestamp, _>(to)
        .load(conn)?;
        let mut totals = Counts::default();
        let mut per_offer: BTreeMap<i64, OfferCounts> = BTreeMap::new();
        for g in groups {
            let entry = per_offer.entry(g.offer_id).or_insert_with(|| OfferCounts {
                offer_id: g.offer_id.to_string(),
                title: g.title.clone(),
                counts: Counts::default(),
            });
            for counts in [&mut totals, &mut entry.counts] {
                match g.status {
                    RedemptionStatus::Captured => {
                        counts.captured += g.n;
                        counts.points_captured += g.points;
                        counts.value_fen += g.value_fen;
                    }
                    RedemptionStatus::Voided => counts.voided += g.n,
                    _ => counts.expired += g.n,
                }
            }
        }
        Ok(Statement {
            partner_id: partner.id.to_string(),
            from: from.and_utc(),
            to: to.and_utc(),
            totals,
            offers: per_offer.into_values().collect(),
            settlement_account_id: partner.account_id.to_string(),
            settlement_balance: ledger::credited_total(conn, partner.account_id, Kind::Post)?,
        })
    })
}

type LineItem = (
    i64,
    i64,
    String,
    RedemptionStatus,
    i64,
    Option<i64>,
    i64,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<i64>,
);

/// Why a settlement report could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
    #[error("writing CSV: {0}")]
    Csv(String),
}

impl From<csv::Error> for ReportError {
    fn from(e: csv::Error) -> ReportError {
        ReportError::Csv(e.to_string())
    }
}

impl From<ReportError> for ApiError {
    fn from(e: ReportError) -> ApiError {
        match e {
            ReportError::Database(e) => e.into(),
            ReportError::Csv(why) => ApiError::internal(anyhow::anyhow!(why)),
        }
    }
}

/// The line items of the period as CSV, oldest resolution first.
pub fn line_items_csv(
    conn: &mut AnyConnection,
    partner: &Partner,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> Result<String, ReportError> {
    let rows: Vec<LineItem> = redemptions::table
        .inner_join(offers::table)
        .filter(redemptions::partner_id.eq(partner.id))
        .filter(redemptions::status.ne(RedemptionStatus::Held))
        .filter(redemptions::resolved_at.ge(from))
        .filter(redemptions::resolved_at.lt(to))
        .order((redemptions::resolved_at, redemptions::id))
        .select((
            redemptions::id,
            redemptions::offer_id,
            offers::title,
            redemptions::status,
            redemptions::points,
            redemptions::value_fen,
            redemptions::account_id,
            redemptions::created_at,
            redemptions::resolved_at,
            redemptions::resolution_id,
        ))
        .load(conn)?;
    let mut out = csv::Writer::from_writer(Vec::new());
    let write = |out: &mut csv::Writer<Vec<u8>>, record: &[String]| {
        out.write_record(record).map_err(ReportError::from)
    };
    write(
        &mut out,
        &[
            "redemption_id",
            "offer_id",
            "offer_title",
            "status",
            "points",
            "value_fen",
            "account_id",
            "created_at",
            "resolved_at",
            "transfer_id",
        ]
        .map(String::from),
    )?;
    let time = |t: NaiveDateTime| t.and_utc().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    for (id, offer_id, title, status, points, value_fen, account_id, created_at, resolved_at, transfer) in
        rows
    {
        write(
            &mut out,
            &[
                id.to_string(),
                offer_id.to_string(),
                title,
                status.to_string(),
                points.to_string(),
                value_fen.map(|v| v.to_string()).unwrap_or_default(),
                account_id.to_string(),
                time(created_at),
                resolved_at.map(time).unwrap_or_default(),
                transfer.map(|t| t.to_string()).unwrap_or_default(),
            ],
        )?;
    }
    let bytes = out.into_inner().map_err(|e| ReportError::Csv(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| ReportError::Csv(e.to_string()))
}
