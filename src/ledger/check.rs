//! The ledger's part of `tanhui verify` (`crate::verify`): re-derives every balance from the transfers
//! and every block from its members, checks which accounts each kind of transfer may move points
//! between, and lists each mismatch. It reads inside the caller's snapshot, so the other domains'
//! checks see the same ledger.
//!
//! Every transfer is read once, in keyset chunks, in the order the chain holds it: the blocks' members
//! by (height, leaf index), joined to their rows, then the sealing queue, then (only when the counts say
//! some exist) the transfers that are in neither. Memory therefore holds one chunk, one block's leaves,
//! the open holds and one entry per account, whatever the number of transfers. A hold is always read
//! before what resolves it: a post, void or expire is written after its hold committed, so it is queued
//! (and sealed) after it, with a higher id.

use std::collections::{HashMap, HashSet, VecDeque};

use diesel::dsl::{exists, not, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool};
use sha2::{Digest, Sha256};

use super::kinds::{AccountKind, Asset, TransferKind};
use super::merkle;
use super::seal::{leaf, GENESIS_PREV_HASH};
use super::signing;
use super::store::{block_header, AccountRow, BlockRow, TransferRow};
use crate::db::schema::{
    accounts, block_transfers, ledger_blocks, pending_holds, transfers, unsealed_transfers,
};
use crate::db::AnyConnection;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Balances {
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub debits_pending: i64,
    pub credits_pending: i64,
    /// The part of `credits_posted` that came by `issue` transfers: a wallet's row keeps it for the
    /// wallet's read, so it is checked like the other totals.
    pub issued_posted: i64,
}

/// What the ledger's check found.
#[derive(Debug, Default)]
pub struct LedgerCheck {
    pub accounts: usize,
    pub transfers: usize,
    pub blocks: usize,
    /// Every account's balances as its transfers give them, for the checks of the other domains.
    pub balances: HashMap<i64, Balances>,
    pub mismatches: Vec<String>,
}

/// Rows read per statement: large enough that the round trips do not count, small enough that a
/// ledger of millions is never held in memory at once.
const TRANSFERS_PER_PAGE: i64 = 10_000;

/// Block headers read per statement.
const BLOCKS_PER_PAGE: i64 = 1_000;

/// What is carried from one transfer to the next while they are read: the derived balances, the
/// holds not yet resolved, and what the other checks need of the accounts.
struct Derivation {
    kinds: HashMap<i64, (AccountKind, Asset)>,
    balances: HashMap<i64, WideBalances>,
    open_holds: HashMap<i64, TransferRow>,
    transfers: usize,
    total: usize,
}

impl Derivation {
    /// One transfer, in the chain's order.
    fn take(&mut self, t: &TransferRow, mismatches: &mut Vec<String>) {
        check_kinds(t, &self.kinds, mismatches);
        derive(t, &mut self.balances, &mut self.open_holds, mismatches);
        self.transfers += 1;
    }
}

/// Runs the ledger's checks inside the caller's (snapshot) transaction. `progress(done, total)` is
/// called after each chunk of transfers read.
pub fn check(
    conn: &mut AnyConnection,
    public_key: &[u8; 32],
    mut progress: impl FnMut(usize, usize),
) -> QueryResult<LedgerCheck> {
    let mut report = LedgerCheck::default();
    let rows: Vec<AccountRow> = accounts::table
        .order(accounts::id)
        .select(AccountRow::as_select())
        .load(conn)?;
    report.accounts = rows.len();
    let total: i64 = transfers::table.count().get_result(conn)?;
    let mut chain = Derivation {
        kinds: rows.iter().map(|a| (a.id, (a.kind, a.asset))).collect(),
        balances: HashMap::new(),
        open_holds: HashMap::new(),
        transfers: 0,
        total: usize::try_from(total).unwrap_or(0),
    };
    let mismatches = &mut report.mismatches;
    report.blocks = check_blocks(conn, public_key, &mut chain, mismatches, &mut progress)?;
    check_queue(conn, &mut chain, mismatches, &mut progress)?;
    if chain.transfers < chain.total {
        check_unrecorded(conn, &mut chain, mismatches, &mut progress)?;
    }
    report.transfers = chain.transfers;
    let derived = narrow(chain.balances, mismatches);
    check_stored_integers(conn, mismatches)?;
    check_accounts(&rows, &derived, mismatches);
    check_pending(conn, &chain.open_holds, mismatches)?;
    report.balances = derived;
    Ok(report)
}

/// A row of `block_transfers` with the transfer it names (`None` if that transfer is missing).
type MemberRow = (i64, i64, i64, Option<TransferRow>);

/// The blocks' members in (height, leaf index) order, read a chunk at a time.
struct Members {
    after: (i64, i64),
    chunk: VecDeque<MemberRow>,
    exhausted: bool,
}

impl Members {
    fn peek(&mut self, conn: &mut AnyConnection) -> QueryResult<Option<&MemberRow>> {
        if self.chunk.is_empty() && !self.exhausted {
            let (height, index) = self.after;
            // A row-value comparison: both backends walk the (block_height, leaf_index) index from it.
            // The rows are then fetched by id, not joined: joined, PostgreSQL hashes the whole transfers
            // table for a chunk whenever it estimates few members are left.
            let keys: Vec<(i64, i64, i64)> = block_transfers::table
                .filter(
                    sql::<Bool>("(block_transfers.block_height, block_transfers.leaf_index) > (")
                        .bind::<BigInt, _>(height)
                        .sql(", ")
                        .bind::<BigInt, _>(index)
                        .sql(")"),
                )
                .order((block_transfers::block_height, block_transfers::leaf_index))
                .limit(TRANSFERS_PER_PAGE)
                .select((
                    block_transfers::transfer_id,
                    block_transfers::block_height,
                    block_transfers::leaf_index,
                ))
                .load(conn)?;
            let mut rows: HashMap<i64, TransferRow> = transfers::table
                .filter(transfers::id.eq_any(keys.iter().map(|k| k.0).collect::<Vec<_>>()))
                .select(TransferRow::as_select())
                .load(conn)?
                .into_iter()
                .map(|t| (t.id, t))
                .collect();
            let page: Vec<MemberRow> = keys
                .into_iter()
                .map(|(id, height, index)| (id, height, index, rows.remove(&id)))
                .collect();
            self.exhausted = (page.len() as i64) < TRANSFERS_PER_PAGE;
            if let Some(last) = page.last() {
                self.after = (last.1, last.2);
            }
            self.chunk = page.into();
        }
        Ok(self.chunk.front())
    }
}

/// Every block in height order with its members: their leaf indexes, their rows, their count, their
/// Merkle root, the block's hash, signature and link to the previous block. Each member's transfer is
/// derived as it is read.
fn check_blocks(
    conn: &mut AnyConnection,
    public_key: &[u8; 32],
    chain: &mut Derivation,
    mismatches: &mut Vec<String>,
    progress: &mut impl FnMut(usize, usize),
) -> QueryResult<usize> {
    let mut members = Members {
        after: (i64::MIN, i64::MIN),
        chunk: VecDeque::new(),
        exhausted: false,
    };
    let mut prev_hash = GENESIS_PREV_HASH.to_string();
    let mut expected = 1i64;
    let (mut reported, mut count) = (0usize, 0usize);
    loop {
        let blocks: Vec<BlockRow> = ledger_blocks::table
            .filter(ledger_blocks::height.ge(expected))
            .order(ledger_blocks::height)
            .limit(BLOCKS_PER_PAGE)
            .select(BlockRow::as_select())
            .load(conn)?;
        if blocks.is_empty() {
            break;
        }
        count += blocks.len();
        for block in &blocks {
            let h = block.height;
            if h != expected {
                mismatches.push(format!("block heights skip: expected {expected}, found {h}"));
            }
            if block.prev_hash != prev_hash {
                mismatches.push(format!(
                    "block {h}: previous hash does not chain to block {}",
                    h - 1
                ));
            }
            let mut leaves = Vec::new();
            while let Some(&(_, height, _, _)) = members.peek(conn)? {
                if height > h {
                    break;
                }
                let (id, height, index, row) = members.chunk.pop_front().expect("peeked");
                if height < h {
                    stray_member(id, height, row, chain, mismatches);
                    continue;
                }
                let position = leaves.len();
                // The root is computed over the members in index order, so renumbered indexes that keep
                // the order would pass it; but proofs address leaves by index, and would then point past
                // the tree.
                if index != position as i64 {
                    mismatches.push(format!(
                        "block {h}: transfer {id} is recorded at leaf {index}, but is leaf {position}"
                    ));
                }
                match row {
                    Some(t) => {
                        leaves.push(leaf(&t));
                        chain.take(&t, mismatches);
                    }
                    None => {
                        // Still a position in the tree: the root then differs, as it must.
                        leaves.push([0; 32]);
                        mismatches.push(format!("block {h}: transfer {id} is missing"));
                    }
                }
            }
            check_members(block, &leaves, mismatches);
            check_seal(block, public_key, mismatches);
            prev_hash = block.hash.clone();
            expected = h + 1;
            if chain.transfers >= reported + TRANSFERS_PER_PAGE as usize {
                reported = chain.transfers;
                progress(chain.transfers, chain.total.max(chain.transfers));
            }
        }
    }
    // Members of blocks that do not exist.
    while members.peek(conn)?.is_some() {
        let (id, height, _, row) = members.chunk.pop_front().expect("peeked");
        stray_member(id, height, row, chain, mismatches);
    }
    progress(chain.transfers, chain.total.max(chain.transfers));
    Ok(count)
}

/// A membership naming a block that is not there: reported, and its transfer still counted.
fn stray_member(
    id: i64,
    height: i64,
    row: Option<TransferRow>,
    chain: &mut Derivation,
    mismatches: &mut Vec<String>,
) {
    mismatches.push(format!(
        "transfer {id} is recorded in block {height}, which does not exist"
    ));
    if let Some(t) = row {
        chain.take(&t, mismatches);
    }
}

/// A block's member count and Merkle root against its header.
fn check_members(block: &BlockRow, leaves: &[merkle::Hash], mismatches: &mut Vec<String>) {
    let h = block.height;
    if leaves.len() as i64 != block.transfer_count {
        mismatches.push(format!(
            "block {h}: {} members, header says {}",
            leaves.len(),
            block.transfer_count
        ));
    }
    let root = hex::encode(merkle::root(leaves));
    if root != block.merkle_root {
        mismatches.push(format!(
            "block {h}: Merkle root does not match its transfers (an edited or deleted transfer)"
        ));
    }
}

/// The transfers queued for sealing, in id order: each must exist and be in no block yet.
fn check_queue(
    conn: &mut AnyConnection,
    chain: &mut Derivation,
    mismatches: &mut Vec<String>,
    progress: &mut impl FnMut(usize, usize),
) -> QueryResult<()> {
    let mut after = i64::MIN;
    loop {
        let page: Vec<(i64, Option<i64>, Option<TransferRow>)> = unsealed_transfers::table
            .left_join(transfers::table.on(transfers::id.eq(unsealed_transfers::transfer_id)))
            .left_join(
                block_transfers::table.on(block_transfers::transfer_id.eq(unsealed_transfers::transfer_id)),
            )
            .filter(unsealed_transfers::transfer_id.gt(after))
            .order(unsealed_transfers::transfer_id)
            .limit(TRANSFERS_PER_PAGE)
            .select((
                unsealed_transfers::transfer_id,
                block_transfers::block_height.nullable(),
                Option::<TransferRow>::as_select(),
            ))
            .load(conn)?;
        let Some(&(last, _, _)) = page.last() else { break };
        after = last;
        for (id, sealed_in, row) in page {
            match (sealed_in, row) {
                (_, None) => {
                    mismatches.push(format!("transfer {id} is queued for sealing but does not exist"))
                }
                // Already derived as a member of its block.
                (Some(h), Some(_)) => mismatches.push(format!(
                    "transfer {id} is queued for sealing but already sealed in block {h}"
                )),
                (None, Some(t)) => chain.take(&t, mismatches),
            }
        }
        progress(chain.transfers, chain.total.max(chain.transfers));
    }
    Ok(())
}

/// Transfers neither sealed nor queued: read only when the counts show that some exist, in id order.
fn check_unrecorded(
    conn: &mut AnyConnection,
    chain: &mut Derivation,
    mismatches: &mut Vec<String>,
    progress: &mut impl FnMut(usize, usize),
) -> QueryResult<()> {
    let mut after = i64::MIN;
    loop {
        let sealed = block_transfers::table.filter(block_transfers::transfer_id.eq(transfers::id));
        let queued = unsealed_transfers::table.filter(unsealed_transfers::transfer_id.eq(transfers::id));
        let page: Vec<TransferRow> = transfers::table
            .filter(transfers::id.gt(after))
            .filter(not(exists(sealed)))
            .filter(not(exists(queued)))
            .order(transfers::id)
            .limit(TRANSFERS_PER_PAGE)
            .select(TransferRow::as_select())
            .load(conn)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for t in &page {
            mismatches.push(format!(
                "transfer {} is neither sealed nor queued for sealing",
                t.id
            ));
            chain.take(t, mismatches);
        }
        progress(chain.transfers, chain.total.max(chain.transfers));
    }
    Ok(())
}

/// Balances summed from the transfers, in 128 bits: however many transfers an account has, their sum
/// cannot wrap, so one beyond the 64-bit range is reported (by [`narrow`]) instead of stopping the check.
#[derive(Debug, Default, Clone, Copy)]
struct WideBalances {
    debits_posted: i128,
    credits_posted: i128,
    debits_pending: i128,
    credits_pending: i128,
    issued_posted: i128,
}

/// The derived balances in the ledger's own 64-bit range. A sum outside it is a mismatch (no account
/// may hold it: the columns are BIGINT), and is kept at the nearest bound.
fn narrow(wide: HashMap<i64, WideBalances>, mismatches: &mut Vec<String>) -> HashMap<i64, Balances> {
    let mut fit = |id: i64, name: &str, sum: i128| {
        i64::try_from(sum).unwrap_or_else(|_| {
            mismatches.push(format!(
                "account {id}: its transfers sum to {sum} {name}, beyond the 64-bit range"
            ));
            if sum < 0 {
                i64::MIN
            } else {
                i64::MAX
            }
        })
    };
    wide.into_iter()
        .map(|(id, w)| {
            let balances = Balances {
                debits_posted: fit(id, "posted debits", w.debits_posted),
                credits_posted: fit(id, "posted credits", w.credits_posted),
                debits_pending: fit(id, "pending debits", w.debits_pending),
                credits_pending: fit(id, "pending credits", w.credits_pending),
                issued_posted: fit(id, "issued credits", w.issued_posted),
            };
            (id, balances)
        })
        .collect()
}

/// On SQLite an integer column takes any value: an addition that overflowed was stored as a float,
/// which reads back as a clamped integer. Every balance column and amount must be stored as an integer.
fn check_stored_integers(conn: &mut AnyConnection, mismatches: &mut Vec<String>) -> QueryResult<()> {
    if !matches!(conn, AnyConnection::Sqlite(_)) {
        return Ok(());
    }
    #[derive(QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        id: i64,
    }
    let accounts: Vec<Id> = diesel::sql_query(
        "SELECT id FROM accounts WHERE typeof(debits_posted) <> 'integer' \
         OR typeof(credits_posted) <> 'integer' OR typeof(debits_pending) <> 'integer' \
         OR typeof(credits_pending) <> 'integer' OR typeof(issued_posted) <> 'integer' ORDER BY id",
    )
    .load(conn)?;
    for a in accounts {
        mismatches.push(format!(
            "account {} holds a balance that is not an integer (an overflow stored as a float)",
            a.id
        ));
    }
    let transfers: Vec<Id> =
        diesel::sql_query("SELECT id FROM transfers WHERE typeof(amount) <> 'integer' ORDER BY id")
            .load(conn)?;
    for t in transfers {
        mismatches.push(format!("transfer {} has an amount that is not an integer", t.id));
    }
    Ok(())
}

/// One transfer's effect on the balances of its accounts. `holds` are the holds not yet resolved: a
/// resolution takes its hold out, so a second one finds none.
fn derive(
    t: &TransferRow,
    balances: &mut HashMap<i64, WideBalances>,
    holds: &mut HashMap<i64, TransferRow>,
    mismatches: &mut Vec<String>,
) {
    let a = i128::from(t.amount);
    let (d, c) = (t.debit_account_id, t.credit_account_id);
    let mut change = |account: i64, f: &dyn Fn(&mut WideBalances)| f(balances.entry(account).or_default());
    match t.kind {
        TransferKind::Hold => {
            change(d, &|b| b.debits_pending += a);
            change(c, &|b| b.credits_pending += a);
            holds.insert(t.id, t.clone());
        }
        kind if kind.resolves_hold(t.pending_id) => {
            match t.pending_id.and_then(|h| holds.remove(&h)) {
                Some(h) if h.debit_account_id == d && h.credit_account_id == c && h.amount == t.amount => {}
                Some(_) => mismatches.push(format!(
                    "transfer {} ({}) does not match its hold {:?}",
                    t.id, t.kind, t.pending_id
                )),
                None => mismatches.push(format!(
                    "transfer {} ({}) resolves {:?}, which is no open hold (missing, or resolved more than once)",
                    t.id, t.kind, t.pending_id
                )),
            }
            change(d, &|b| b.debits_pending -= a);
            change(c, &|b| b.credits_pending -= a);
            if t.kind == TransferKind::Post {
                change(d, &|b| b.debits_posted += a);
                change(c, &|b| b.credits_posted += a);
            }
        }
        kind => {
            change(d, &|b| b.debits_posted += a);
            change(c, &|b| b.credits_posted += a);
            if kind == TransferKind::Issue {
                change(c, &|b| b.issued_posted += a);
            }
        }
    }
}

/// Which accounts each kind of transfer may move value between (an issuance or bank account's balance
/// is just the sum of its transfers, so a transfer of the wrong kind out of one would create value the
/// balances cannot show):
///
/// - points enter circulation only by `issue`, from an issuance account to a wallet; people move them
///   only between wallets, and they end in a sink (retired or expired), which they never leave;
/// - money enters only from the bank account to a wallet (a confirmed deposit, which `verify`'s cash check
///   matches to its record), moves between wallets and to the fee account, and leaves by a withdrawal
///   hold posted to the bank;
/// - a market account is only ever the credit side of an order's hold, which a fill or cancel voids;
/// - both sides of every transfer hold the same asset.
fn check_kinds(t: &TransferRow, kinds: &HashMap<i64, (AccountKind, Asset)>, mismatches: &mut Vec<String>) {
    let (debit, credit) = (kinds.get(&t.debit_account_id), kinds.get(&t.credit_account_id));
    let allowed = match (debit, credit) {
        (Some(&(debit, asset)), Some(&(credit, other))) if asset == other => {
            allowed_between(t, asset, debit, credit)
        }
        _ => false,
    };
    if !allowed {
        let name = |side: Option<&(AccountKind, Asset)>| {
            side.map_or("missing".to_string(), |(kind, asset)| format!("{asset} {kind}"))
        };
        let (debit, credit) = (name(debit), name(credit));
        mismatches.push(format!(
            "transfer {} ({}) moves value from a {debit} account to a {credit} account",
            t.id, t.kind
        ));
    }
}

/// Whether a transfer of `t`'s kind may move `asset` from a `debit` account to a `credit` one.
fn allowed_between(t: &TransferRow, asset: Asset, debit: AccountKind, credit: AccountKind) -> bool {
    use AccountKind::{Bank, Fees, Issuance, Market, Sink, Wallet};
    let lot_expiry = t.kind == TransferKind::Expire && t.pending_id.is_none();
    match (asset, t.kind) {
        (Asset::Points, TransferKind::Issue) => debit == Issuance && credit == Wallet,
        (Asset::Points, TransferKind::Transfer) => debit == Wallet && credit == Wallet,
        // Points end in a sink only by retirement or a lot's expiry, and never leave it.
        (Asset::Points, TransferKind::Retire) => debit == Wallet && credit == Sink,
        (Asset::Points, TransferKind::Expire) if lot_expiry => debit == Wallet && credit == Sink,
        // An order's hold is voided, never posted: a fill moves the value between the traders.
        (_, TransferKind::Post) if credit == Market => false,
        (Asset::Points, _) => {
            ![Issuance, Sink, Bank, Fees, Market].contains(&debit) && ![Sink, Bank, Fees].contains(&credit)
        }
        // Money enters from the bank into a wallet (a deposit, a sale's payout) or the fee income (the
        // platform's part of a sale).
        (Asset::Cny, TransferKind::Transfer) => {
            (debit == Bank && [Wallet, Fees].contains(&credit))
                || (debit == Wallet && [Wallet, Fees].contains(&credit))
        }
        (Asset::Cny, kind) if kind == TransferKind::Hold || kind.resolves_hold(t.pending_id) => {
            debit == Wallet && [Bank, Market].contains(&credit)
        }
        (Asset::Cny, _) => false,
    }
}

/// The flags (floored, derived) an account of a kind must carry: a wallet (and the fee income) never goes
/// below zero and keeps its balances in its row; issuance, settlement, sink, bank and market accounts are
/// sums of their transfers, unfloored. The service decides by these flags, so a flag edited in the
/// database would let a wallet overdraw or hide a balance: they are checked, not trusted.
fn expected_flags(kind: AccountKind) -> (bool, bool) {
    match kind {
        AccountKind::Wallet | AccountKind::Fees => (true, false),
        AccountKind::Issuance
        | AccountKind::Settlement
        | AccountKind::Sink
        | AccountKind::Bank
        | AccountKind::Market => (false, true),
    }
}

fn check_accounts(rows: &[AccountRow], derived: &HashMap<i64, Balances>, mismatches: &mut Vec<String>) {
    // Per asset: (posted, pending).
    let mut sums: HashMap<Asset, (i128, i128)> = HashMap::new();
    for row in rows {
        let flags = expected_flags(row.kind);
        if flags != (row.floored, row.derived) {
            mismatches.push(format!(
                "account {} ({}): a {} must be floored={}, derived={}, but is floored={}, derived={}",
                row.id, row.code, row.kind, flags.0, flags.1, row.floored, row.derived
            ));
        }
        let columns = Balances {
            debits_posted: row.debits_posted,
            credits_posted: row.credits_posted,
            debits_pending: row.debits_pending,
            credits_pending: row.credits_pending,
            issued_posted: row.issued_posted,
        };
        if row.derived && columns != Balances::default() {
            mismatches.push(format!(
                "account {} ({}) is derived but its row holds balances {:?}",
                row.id, row.code, columns
            ));
        }
        let from_transfers = derived.get(&row.id).copied().unwrap_or_default();
        let stored = if row.derived { from_transfers } else { columns };
        if stored != from_transfers {
            mismatches.push(format!(
                "account {} ({}): stored {:?} but its transfers give {:?}",
                row.id, row.code, stored, from_transfers
            ));
        }
        let debits = i128::from(stored.debits_posted) + i128::from(stored.debits_pending);
        if row.floored && debits > i128::from(stored.credits_posted) {
            mismatches.push(format!(
                "account {} ({}) is below its floor: {:?}",
                row.id, row.code, stored
            ));
        }
        let sum = sums.entry(row.asset).or_default();
        sum.0 += i128::from(stored.credits_posted) - i128::from(stored.debits_posted);
        sum.1 += i128::from(stored.credits_pending) - i128::from(stored.debits_pending);
    }
    for (asset, (posted, pending)) in sums {
        if posted != 0 || pending != 0 {
            mismatches.push(format!(
                "{asset} balances do not sum to zero: posted {posted}, pending {pending}"
            ));
        }
    }
}

/// The holds left open after every transfer is read are exactly those listed in `pending_holds`.
fn check_pending(
    conn: &mut AnyConnection,
    open: &HashMap<i64, TransferRow>,
    mismatches: &mut Vec<String>,
) -> QueryResult<()> {
    let listed: HashSet<i64> = pending_holds::table
        .select(pending_holds::hold_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    for h in open.keys().filter(|h| !listed.contains(h)) {
        mismatches.push(format!("hold {h} is unresolved but not listed as pending"));
    }
    for h in listed.iter().filter(|h| !open.contains_key(h)) {
        mismatches.push(format!(
            "hold {h} is listed as pending but is resolved or missing"
        ));
    }
    Ok(())
}

/// A block's hash over its header, and the platform's signature of that hash.
fn check_seal(block: &BlockRow, public_key: &[u8; 32], mismatches: &mut Vec<String>) {
    let h = block.height;
    let hash = Sha256::digest(block_header(
        h,
        &block.prev_hash,
        &block.merkle_root,
        block.transfer_count,
        block.sealed_at,
    ));
    if hex::encode(hash) != block.hash {
        mismatches.push(format!(
            "block {h}: hash does not match its header (an edited block)"
        ));
    }
    let signature = hex::decode(&block.signature).unwrap_or_default();
    if !signing::verify(public_key, &hash, &signature) {
        mismatches.push(format!(
            "block {h}: signature does not verify with the platform key"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_beyond_the_64_bit_range_are_reported_not_wrapped() {
        let near_full = i128::from(i64::MAX) - 5;
        let wide = HashMap::from([
            (
                1,
                WideBalances {
                    debits_posted: 2 * near_full,
                    ..WideBalances::default()
                },
            ),
            (
                2,
                WideBalances {
                    credits_posted: near_full,
                    debits_pending: 7,
                    ..WideBalances::default()
                },
            ),
        ]);
        let mut mismatches = Vec::new();
        let narrowed = narrow(wide, &mut mismatches);
        assert_eq!(narrowed[&1].debits_posted, i64::MAX);
        assert_eq!(narrowed[&2].credits_posted, i64::MAX - 5);
        assert_eq!(narrowed[&2].debits_pending, 7);
        assert_eq!(mismatches.len(), 1, "{mismatches:?}");
        assert!(mismatches[0].starts_with("account 1: its transfers sum to"));
    }
}
