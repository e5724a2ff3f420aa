//! The market: limit orders for points against cash, matched by price then time, each fill settling both
//! ledgers in one transaction (docs/market.md).

pub mod check;
pub mod data;
pub mod handlers;
pub mod rules;
pub mod service;
pub mod settle;
pub mod store;
pub mod views;
pub mod writer;

crate::text_enum! {
    /// Which way an order trades points.
    pub enum Side {
        Buy = "buy",
        Sell = "sell",
    }
}

crate::text_enum! {
    /// Where an order stands. Open and partially filled orders are on the book; filled and cancelled
    /// ones are done.
    pub enum OrderStatus {
        Open = "open",
        PartiallyFilled = "partially_filled",
        Filled = "filled",
        Cancelled = "cancelled",
    }
}

crate::text_enum! {
    /// Good till cancelled (what does not fill rests on the book) or immediate or cancel (what does not
    /// fill at once is cancelled).
    pub enum TimeInForce {
        Gtc = "gtc",
        Ioc = "ioc",
    }
}

impl OrderStatus {
    /// Whether an order in this status is on the book.
    pub fn is_open(self) -> bool {
        matches!(self, OrderStatus::Open | OrderStatus::PartiallyFilled)
    }
}

/// What an order's hold names as its cause.
pub const ORDER_REF: &str = "market_order";

/// What a fill's transfers name as their cause.
pub const TRADE_REF: &str = "market_trade";
