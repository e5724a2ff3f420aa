//! Cash: CNY in fen, a second asset on the same ledger as points (docs/market.md, "Cash").
//!
//! Money enters only by a bank deposit that one administrator records and another confirms (a bank
//! reference is accepted once), and leaves only by a withdrawal that is held and then completed or
//! rejected. In between it moves by market fills and their fees. `verify` proves every movement out of the
//! bank account is a confirmed deposit, and that every withdrawal's state is its hold's.

pub mod accounts;
pub mod check;
pub mod deposits;
pub mod handlers;
pub mod withdrawals;

crate::text_enum! {
    /// A deposit: recorded by one administrator, posted when another confirms it.
    pub enum DepositStatus {
        Pending = "pending",
        Posted = "posted",
    }
}

crate::text_enum! {
    /// A withdrawal: its money held until an administrator completes (pays out) or rejects it.
    pub enum WithdrawalStatus {
        Held = "held",
        Completed = "completed",
        Rejected = "rejected",
    }
}

/// What a transfer made for a deposit names as its cause.
pub const DEPOSIT_REF: &str = "cash_deposit";

/// What a withdrawal's hold and its resolution name as their cause.
pub const WITHDRAWAL_REF: &str = "cash_withdrawal";
