//! What the market answers about orders and fills.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use super::store::{OrderRow, TradeRow};
use super::{OrderStatus, Side, TimeInForce};

#[derive(Debug, Serialize, ToSchema)]
pub struct FillView {
    pub trade_id: String,
    pub points: i64,
    pub price_fen_per_1000: i64,
    pub at: DateTime<Utc>,
}

impl From<&TradeRow> for FillView {
    fn from(t: &TradeRow) -> FillView {
        FillView {
            trade_id: t.id.to_string(),
            points: t.points,
            price_fen_per_1000: t.price_fen_per_1000,
            at: t.at.and_utc(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderView {
    pub order_id: String,
    pub side: Side,
    pub status: OrderStatus,
    pub points: i64,
    pub filled_points: i64,
    pub price_fen_per_1000: i64,
    pub time_in_force: TimeInForce,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The order's fills, oldest first (on placement: those it made at once; lists leave them out).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fills: Option<Vec<FillView>>,
}

pub fn view_of(o: OrderRow, fills: Option<&[TradeRow]>) -> OrderView {
    OrderView {
        order_id: o.id.to_string(),
        side: o.side,
        status: o.status,
        points: o.points,
        filled_points: o.filled_points,
        price_fen_per_1000: o.price_fen_per_1000,
        time_in_force: o.time_in_force,
        created_at: o.created_at.and_utc(),
        updated_at: o.updated_at.and_utc(),
        fills: fills.map(|f| f.iter().map(FillView::from).collect()),
    }
}
