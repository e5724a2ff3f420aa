//! Offer rows and their regions.

use std::collections::HashMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::stock;
use super::terms::Terms;
use crate::db::plan::ListQuery;
use crate::db::schema::{offer_regions, offers, partners};
use crate::db::AnyConnection;
use crate::partners::PartnerKind;

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = offers)]
pub struct OfferRow {
    pub id: i64,
    pub partner_id: i64,
    pub title: String,
    pub description: String,
    pub points_cost: i64,
    pub value_fen: Option<i64>,
    pub per_user_limit: i64,
    pub valid_from: NaiveDateTime,
    pub valid_to: NaiveDateTime,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub residents_only: bool,
}

impl OfferRow {
    /// Open for redemption at `now`: not withdrawn and inside its validity window (half-open).
    pub fn open_at(&self, now: NaiveDateTime) -> bool {
        self.active && self.valid_from <= now && now < self.valid_to
    }

    pub fn terms(&self, region_codes: Vec<String>, stock: i64) -> Terms {
        Terms {
            title: self.title.clone(),
            description: self.description.clone(),
            points_cost: self.points_cost,
            value_fen: self.value_fen,
            stock,
            per_user_limit: self.per_user_limit,
            valid_from: self.valid_from,
            valid_to: self.valid_to,
            region_codes,
            residents_only: self.residents_only,
        }
    }
}

/// An offer with what a listing shows of its partner.
pub type Listed = (OfferRow, String, PartnerKind);

/// The columns of an offer its terms set, for inserts and updates alike.
#[derive(Insertable, AsChangeset)]
#[diesel(table_name = offers)]
struct TermColumns<'a> {
    title: &'a str,
    description: &'a str,
    points_cost: i64,
    // Always written, so a patch can clear it.
    #[diesel(treat_none_as_null = true)]
    value_fen: Option<i64>,
    per_user_limit: i64,
    valid_from: NaiveDateTime,
    valid_to: NaiveDateTime,
    active: bool,
    updated_at: NaiveDateTime,
    residents_only: bool,
}

impl<'a> TermColumns<'a> {
    fn of(terms: &'a Terms, active: bool, now: NaiveDateTime) -> TermColumns<'a> {
        TermColumns {
            title: &terms.title,
            description: &terms.description,
            points_cost: terms.points_cost,
            value_fen: terms.value_fen,
            per_user_limit: terms.per_user_limit,
            valid_from: terms.valid_from,
            valid_to: terms.valid_to,
            active,
            updated_at: now,
            residents_only: terms.residents_only,
        }
    }
}

pub fn insert(
    conn: &mut AnyConnection,
    partner_id: i64,
    terms: &Terms,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    let id = diesel::insert_into(offers::table)
        .values((
            offers::partner_id.eq(partner_id),
            TermColumns::of(terms, true, now),
            offers::created_at.eq(now),
        ))
        .returning(offers::id)
        .get_result(conn)?;
    set_regions(conn, id, &terms.region_codes)?;
    stock::set(conn, id, terms.stock)?;
    Ok(id)
}

/// Updates an offer's terms; its stock only when `stock_changed` (a patch that leaves the stock alone
/// must not overwrite units taken meanwhile).
pub fn update(
    conn: &mut AnyConnection,
    id: i64,
    terms: &Terms,
    stock_changed: bool,
    active: bool,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(offers::table.find(id))
        .set(TermColumns::of(terms, active, now))
        .execute(conn)?;
    if stock_changed {
        stock::set(conn, id, terms.stock)?;
    }
    Ok(())
}

pub fn set_regions(conn: &mut AnyConnection, id: i64, codes: &[String]) -> QueryResult<()> {
    diesel::delete(offer_regions::table.filter(offer_regions::offer_id.eq(id))).execute(conn)?;
    let mut unique: Vec<&String> = codes.iter().collect();
    unique.sort();
    unique.dedup();
    // One row at a time: the connection type that spans both backends has no multi-row insert.
    for code in unique {
        diesel::insert_into(offer_regions::table)
            .values((
                offer_regions::offer_id.eq(id),
                offer_regions::region_code.eq(code),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn find(conn: &mut AnyConnection, id: i64) -> QueryResult<Option<OfferRow>> {
    offers::table
        .find(id)
        .select(OfferRow::as_select())
        .first(conn)
        .optional()
}

/// The regions of each offer, in code order.
pub fn regions_of(conn: &mut AnyConnection, ids: &[i64]) -> QueryResult<HashMap<i64, Vec<String>>> {
    let rows: Vec<(i64, String)> = offer_regions::table
        .filter(offer_regions::offer_id.eq_any(ids))
        .order((offer_regions::offer_id, offer_regions::region_code))
        .load(conn)?;
    let mut by_offer: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, code) in rows {
        by_offer.entry(id).or_default().push(code);
    }
    Ok(by_offer)
}

/// What a public listing asks for.
pub struct Filter {
    pub kind: Option<PartnerKind>,
    /// Offers redeemable in any of these regions (a region and its ancestors).
    pub regions: Option<Vec<String>>,
    /// Only one partner's offers (its own listing), including withdrawn and past ones.
    pub partner_id: Option<i64>,
}

/// Offers newest first, below the cursor. Without a partner, only those open at `now`.
pub fn list(
    conn: &mut AnyConnection,
    filter: &Filter,
    now: NaiveDateTime,
    before: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<Listed>> {
    list_query(filter, now, before, limit).load(conn)
}

/// The query [`list`] runs (its plan is tested for a partner's own listing, which walks
/// `offers_partner (partner_id, id)`; the public listing reads the few offers open now).
pub fn list_query(
    filter: &Filter,
    now: NaiveDateTime,
    before: Option<i64>,
    limit: i64,
) -> impl ListQuery<Listed> {
    let mut query = offers::table
        .inner_join(partners::table)
        .select((OfferRow::as_select(), partners::name, partners::kind))
        .order(offers::id.desc())
        .limit(limit)
        .into_boxed();
    match filter.partner_id {
        Some(partner) => query = query.filter(offers::partner_id.eq(partner)),
        None => {
            query = query
                .filter(offers::active.eq(true))
                .filter(offers::valid_from.le(now))
                .filter(offers::valid_to.gt(now))
        }
    }
    if let Some(kind) = filter.kind {
        query = query.filter(partners::kind.eq(kind));
    }
    if let Some(regions) = &filter.regions {
        let offered_there = offer_regions::table
            .filter(offer_regions::region_code.eq_any(regions.clone()))
            .select(offer_regions::offer_id);
        query = query.filter(offers::id.eq_any(offered_there));
    }
    if let Some(before) = before {
        query = query.filter(offers::id.lt(before));
    }
    query
}
