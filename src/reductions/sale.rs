//! Selling an issued batch and settling the sale (docs/registry.md, "Sale and settlement"). One
//! administrator records the buyer, the price per tonne and the bank reference the payment will arrive
//! under; another confirms that it arrived. Only then does money enter the cash ledger: the proceeds go
//! from the bank account, less the platform's share, to the people whose activities the batch holds, pro
//! rata to their grams, in one transaction with the batch's move to `settled` — so exactly once.

use super::payouts::{self, NewIncentive};
use super::service::{finish, on_batch, Actor, BatchError, BatchResult};
use super::shares::{platform_part, pro_rata};
use super::store::{self, BatchRow, BatchStatus, StepChanges};
use crate::audit::AuditAction;
use crate::cash::{accounts as cash_accounts, deposits};
use crate::db::AnyConnection;
use crate::governance::require_second_admin;
use crate::ledger::batch::{self as ledger_batch, Order};
use crate::ledger::service::{Cause, Kind};

/// What the transfers of a settlement name as their cause (with the batch id).
pub const SALE_REF: &str = "reduction_sale";

/// The highest price per tonne a sale may record: 10 million yuan, far above any carbon price, and low
/// enough that a batch's proceeds stay countable.
pub const MOST_PRICE_FEN_PER_TONNE: i64 = 1_000_000_000;

/// A sale as recorded: who buys, at what price, and the bank reference the payment arrives under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sale {
    pub buyer: String,
    pub price_fen_per_tonne: i64,
    pub bank_reference: String,
}

/// Records the sale of issued batch `id` (any administrator in scope): its proceeds are its whole tonnes
/// at the price. The same sale again answers the batch as it is; another sale of a batch sold already,
/// or of one not issued: `InvalidState`. A bank reference a deposit or another sale has: `ReferenceTaken`.
pub fn sell(conn: &mut AnyConnection, actor: Actor<'_>, id: i64, sale: &Sale) -> BatchResult<BatchRow> {
    on_batch(conn, actor, id, |conn, before| {
        let sold_as_asked = before.buyer.as_deref() == Some(sale.buyer.as_str())
            && before.price_fen_per_tonne == Some(sale.price_fen_per_tonne)
            && before.bank_reference.as_deref() == Some(sale.bank_reference.as_str());
        if matches!(before.status, BatchStatus::Sold | BatchStatus::Settled) && sold_as_asked {
            return Ok(before);
        }
        if before.status != BatchStatus::Issued {
            return Err(BatchError::InvalidState {
                actual: before.status,
                needed: BatchStatus::Issued,
            });
        }
        let proceeds = before
            .tonnes
            .unwrap_or(0)
            .checked_mul(sale.price_fen_per_tonne)
            .ok_or(BatchError::OutOfRange)?;
        if deposits::reference_used(conn, &sale.bank_reference)? {
            return Err(BatchError::ReferenceTaken(sale.bank_reference.clone()));
        }
        let changes = StepChanges {
            buyer: Some(sale.buyer.clone()),
            price_fen_per_tonne: Some(sale.price_fen_per_tonne),
            proceeds_fen: Some(proceeds),
            bank_reference: Some(sale.bank_reference.clone()),
            sold_by: Some(actor.admin),
            sold_at: Some(actor.now),
            ..StepChanges::default()
        };
        let advanced = store::advance(conn, id, BatchStatus::Issued, BatchStatus::Sold, &changes)
            // Two sales under one reference at once (PostgreSQL): the unique index decides.
            .map_err(|e| match e {
                diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                ) => BatchError::ReferenceTaken(sale.bank_reference.clone()),
                e => e.into(),
            })?;
        finish(
            conn,
            actor,
            id,
            advanced,
            AuditAction::ReductionBatchSell,
            &before,
        )
    })
}

/// Settles sold batch `id`: another administrator in scope than the seller confirms the payment
/// arrived, and the proceeds are paid out (see the module). A settled batch answers as it is.
pub fn settle(
    conn: &mut AnyConnection,
    actor: Actor<'_>,
    id: i64,
    platform_share_bps: u32,
) -> BatchResult<BatchRow> {
    on_batch(conn, actor, id, |conn, before| {
        if before.status == BatchStatus::Settled {
            return Ok(before);
        }
        if before.status != BatchStatus::Sold {
            return Err(BatchError::InvalidState {
                actual: before.status,
                needed: BatchStatus::Sold,
            });
        }
        require_second_admin(before.sold_by, actor.admin)?;
        let proceeds = before.proceeds_fen.unwrap_or(0);
        let paid = pay_out(conn, actor, id, proceeds, platform_share_bps)?;
        let changes = StepChanges {
            platform_fen: Some(paid.platform_fen),
            distributed_fen: Some(proceeds - paid.platform_fen),
            platform_transfer_id: paid.platform_transfer_id,
            settled_by: Some(actor.admin),
            settled_at: Some(actor.now),
            ..StepChanges::default()
        };
        let advanced = store::advance(conn, id, BatchStatus::Sold, BatchStatus::Settled, &changes)?;
        finish(
            conn,
            actor,
            id,
            advanced,
            AuditAction::ReductionBatchSettle,
            &before,
        )
    })
}

/// What a payout left with the platform, and the transfer that took it there.
struct PaidOut {
    platform_fen: i64,
    platform_transfer_id: Option<i64>,
}

/// Moves the proceeds out of the bank account: each person's share into their cash account (one
/// multi-row posting for all), and the platform's part — its share, and the shares of people erased
/// since — into `cash:fees`. Records each payout.
fn pay_out(
    conn: &mut AnyConnection,
    actor: Actor<'_>,
    id: i64,
    proceeds: i64,
    platform_share_bps: u32,
) -> BatchResult<PaidOut> {
    payouts::open_cash_accounts(conn, id, actor.now)?;
    let holders = payouts::holders(conn, id)?;
    let platform = platform_part(proceeds, platform_share_bps);
    let grams: Vec<i64> = holders.iter().map(|h| h.granted_g).collect();
    let shares = pro_rata(proceeds - platform, &grams);
    let unpaid: i64 = holders
        .iter()
        .zip(&shares)
        .filter(|(h, _)| h.cash_account_id.is_none())
        .map(|(_, share)| share)
        .sum();
    let platform_fen = platform + unpaid;

    let bank = cash_accounts::named(conn, cash_accounts::BANK)?;
    let fees = cash_accounts::named(conn, cash_accounts::FEES)?;
    let cause = Cause::of(SALE_REF, id);
    let order = |credit: i64, amount: i64| Order {
        kind: Kind::Transfer,
        debit: bank.id,
        credit,
        amount,
        cause: &cause,
        lot: None,
    };
    let paid: Vec<(&payouts::Holder, i64, i64)> = holders
        .iter()
        .zip(&shares)
        .filter_map(|(h, &share)| Some((h, h.cash_account_id?, share)))
        .collect();
    let mut orders: Vec<Order<'_>> = paid
        .iter()
        .filter(|(_, _, share)| *share > 0)
        .map(|&(_, cash, share)| order(cash, share))
        .collect();
    if platform_fen > 0 {
        orders.push(order(fees.id, platform_fen));
    }
    let touched: Vec<i64> = orders.iter().flat_map(|o| [o.debit, o.credit]).collect();
    let mut accounts = ledger_batch::lock_accounts(conn, &touched)?;
    let mut transfers = Vec::with_capacity(orders.len());
    for answer in ledger_batch::post(conn, &mut accounts, &orders, actor.now)? {
        transfers.push(answer?.transfer.id);
    }
    let platform_transfer_id = (platform_fen > 0).then(|| transfers.pop()).flatten();
    let mut transfers = transfers.into_iter();
    let rows: Vec<NewIncentive> = paid
        .into_iter()
        .map(|(h, cash, share)| NewIncentive {
            batch_id: id,
            account_id: h.account_id,
            cash_account_id: cash,
            granted_g: h.granted_g,
            amount_fen: share,
            transfer_id: if share > 0 { transfers.next() } else { None },
        })
        .collect();
    payouts::record(conn, &rows)?;
    Ok(PaidOut {
        platform_fen,
        platform_transfer_id,
    })
}
