//! The ledger's part of `tanhui verify` (`crate::verify`): re-derives every balance from the transfers
//! and every block from its members, checks which accounts each kind of transfer may move points
//! between, and lists each mismatch. It reads inside the caller's snapshot, so the other domains'
//! checks see the same ledger.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::kinds::{AccountKind, TransferKind};
use super::merkle;
use super::seal::{block_members, leaf, GENESIS_PREV_HASH};
use super::signing;
use super::store::{block_header, AccountRow, BlockRow, TransferRow};
use crate::db::schema::{accounts, ledger_blocks, pending_holds, transfers, unsealed_transfers};
use crate::db::AnyConnection;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Balances {
    pub debits_posted: i64,
    pub credits_posted: i64,
    pub debits_pending: i64,
    pub credits_pending: i64,
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

/// Transfers read per statement: large enough that the round trips do not count, small enough that
/// a ledger of millions is never held in memory at once.
const TRANSFERS_PER_PAGE: i64 = 10_000;

/// Runs the ledger's checks inside the caller's (snapshot) transaction. `progress(done, total)` is
/// called as transfers are read.
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
    let mut derived: HashMap<i64, Balances> = HashMap::new();
    let mut holds: HashMap<i64, TransferRow> = HashMap::new();
    let mut resolved: HashSet<i64> = HashSet::new();
    let mut seen: HashSet<i64> = HashSet::new();
    let kinds: HashMap<i64, AccountKind> = rows.iter().map(|a| (a.id, a.kind)).collect();
    let mut after = 0i64;
    loop {
        let page: Vec<TransferRow> = transfers::table
            .filter(transfers::id.gt(after))
            .order(transfers::id)
            .limit(TRANSFERS_PER_PAGE)
            .select(TransferRow::as_select())
            .load(conn)?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for t in &page {
            seen.insert(t.id);
            check_kinds(t, &kinds, &mut report.mismatches);
            derive(t, &mut derived, &mut holds, &mut resolved, &mut report.mismatches);
        }
        report.transfers += page.len();
        progress(report.transfers, total as usize);
    }
    check_accounts(&rows, &derived, &mut report.mismatches);
    check_pending(conn, &holds, &resolved, &mut report.mismatches)?;
    report.blocks = check_blocks(conn, public_key, &mut seen, &mut report.mismatches)?;
    check_queue(conn, seen, &mut report.mismatches)?;
    report.balances = derived;
    Ok(report)
}

/// Every transfer not in a block is queued for sealing, and only those: `unsealed` holds the transfers
/// no block took.
fn check_queue(
    conn: &mut AnyConnection,
    mut unsealed: HashSet<i64>,
    mismatches: &mut Vec<String>,
) -> QueryResult<()> {
    let queued: Vec<i64> = unsealed_transfers::table
        .select(unsealed_transfers::transfer_id)
        .load(conn)?;
    for id in queued {
        if !unsealed.remove(&id) {
            mismatches.push(format!("transfer {id} is queued for sealing but does not exist"));
        }
    }
    for id in unsealed {
        mismatches.push(format!("transfer {id} is neither sealed nor queued for sealing"));
    }
    Ok(())
}

fn derive(
    t: &TransferRow,
    balances: &mut HashMap<i64, Balances>,
    holds: &mut HashMap<i64, TransferRow>,
    resolved: &mut HashSet<i64>,
    mismatches: &mut Vec<String>,
) {
    let a = t.amount;
    let (d, c) = (t.debit_account_id, t.credit_account_id);
    let mut change = |account: i64, f: &dyn Fn(&mut Balances)| f(balances.entry(account).or_default());
    match t.kind {
        TransferKind::Hold => {
            change(d, &|b| b.debits_pending += a);
            change(c, &|b| b.credits_pending += a);
            holds.insert(t.id, t.clone());
        }
        kind if kind.resolves_hold() => {
            let hold = t.pending_id.and_then(|h| holds.get(&h));
            let matches =
                hold.is_some_and(|h| h.debit_account_id == d && h.credit_account_id == c && h.amount == a);
            if !matches {
                mismatches.push(format!(
                    "transfer {} ({}) does not match its hold {:?}",
                    t.id, t.kind, t.pending_id
                ));
            }
            if let Some(h) = t.pending_id {
                if !resolved.insert(h) {
                    mismatches.push(format!(
                        "hold {h} is resolved more than once (again by transfer {})",
                        t.id
                    ));
                }
            }
            change(d, &|b| b.debits_pending -= a);
            change(c, &|b| b.credits_pending -= a);
            if t.kind == TransferKind::Post {
                change(d, &|b| b.debits_posted += a);
                change(c, &|b| b.credits_posted += a);
            }
        }
        _ => {
            change(d, &|b| b.debits_posted += a);
            change(c, &|b| b.credits_posted += a);
        }
    }
}

/// Points enter circulation only by `issue`, from an issuance account to a wallet, and people move them
/// only between wallets: a transfer of another kind out of an issuance account would create points the
/// balances cannot show (an issuance account's balance is just the sum of its transfers).
fn check_kinds(t: &TransferRow, kinds: &HashMap<i64, AccountKind>, mismatches: &mut Vec<String>) {
    use AccountKind::{Issuance, Wallet};
    let kind_of = |id: i64| kinds.get(&id).copied();
    let (debit, credit) = (kind_of(t.debit_account_id), kind_of(t.credit_account_id));
    let allowed = match t.kind {
        TransferKind::Issue => debit == Some(Issuance) && credit == Some(Wallet),
        TransferKind::Transfer => debit == Some(Wallet) && credit == Some(Wallet),
        _ => debit != Some(Issuance),
    };
    if !allowed {
        let name = |kind: Option<AccountKind>| kind.map_or("missing", AccountKind::as_str);
        let (debit, credit) = (name(debit), name(credit));
        mismatches.push(format!(
            "transfer {} ({}) moves points from a {debit} account to a {credit} account",
            t.id, t.kind
        ));
    }
}

/// The flags (floored, derived) an account of a kind must carry: a wallet never goes below zero and
/// keeps its balances in its row; issuance and settlement accounts are sums of their transfers, unfloored.
/// The service decides by these flags, so a flag edited in the database would let a wallet overdraw
/// or hide a balance: they are checked, not trusted.
fn expected_flags(kind: AccountKind) -> (bool, bool) {
    match kind {
        AccountKind::Wallet => (true, false),
        AccountKind::Issuance | AccountKind::Settlement => (false, true),
    }
}

fn check_accounts(rows: &[AccountRow], derived: &HashMap<i64, Balances>, mismatches: &mut Vec<String>) {
    let (mut posted, mut pending) = (0i128, 0i128);
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
        if row.floored && stored.debits_posted + stored.debits_pending > stored.credits_posted {
            mismatches.push(format!(
                "account {} ({}) is below its floor: {:?}",
                row.id, row.code, stored
            ));
        }
        posted += i128::from(stored.credits_posted) - i128::from(stored.debits_posted);
        pending += i128::from(stored.credits_pending) - i128::from(stored.debits_pending);
    }
    if posted != 0 || pending != 0 {
        mismatches.push(format!(
            "balances do not sum to zero: posted {posted}, pending {pending}"
        ));
    }
}

fn check_pending(
    conn: &mut AnyConnection,
    holds: &HashMap<i64, TransferRow>,
    resolved: &HashSet<i64>,
    mismatches: &mut Vec<String>,
) -> QueryResult<()> {
    let open: HashSet<i64> = holds.keys().filter(|h| !resolved.contains(h)).copied().collect();
    let listed: HashSet<i64> = pending_holds::table
        .select(pending_holds::hold_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    for h in open.difference(&listed) {
        mismatches.push(format!("hold {h} is unresolved but not listed as pending"));
    }
    for h in listed.difference(&open) {
        mismatches.push(format!(
            "hold {h} is listed as pending but is resolved or missing"
        ));
    }
    Ok(())
}

fn check_blocks(
    conn: &mut AnyConnection,
    public_key: &[u8; 32],
    unsealed: &mut HashSet<i64>,
    mismatches: &mut Vec<String>,
) -> QueryResult<usize> {
    let blocks: Vec<BlockRow> = ledger_blocks::table
        .order(ledger_blocks::height)
        .select(BlockRow::as_select())
        .load(conn)?;
    let mut prev_hash = GENESIS_PREV_HASH.to_string();
    for (i, block) in blocks.iter().enumerate() {
        let h = block.height;
        if h != i as i64 + 1 {
            mismatches.push(format!("block heights skip: expected {}, found {h}", i + 1));
        }
        if block.prev_hash != prev_hash {
            mismatches.push(format!(
                "block {h}: previous hash does not chain to block {}",
                h - 1
            ));
        }
        check_members(conn, block, unsealed, mismatches)?;
        check_seal(block, public_key, mismatches);
        prev_hash = block.hash.clone();
    }
    Ok(blocks.len())
}

/// A block's members: their leaf indexes, their rows, their count and their Merkle root. Each member
/// is taken out of `unsealed`.
fn check_members(
    conn: &mut AnyConnection,
    block: &BlockRow,
    unsealed: &mut HashSet<i64>,
    mismatches: &mut Vec<String>,
) -> QueryResult<()> {
    let h = block.height;
    let members = block_members(conn, h)?;
    let mut leaves = Vec::with_capacity(members.len());
    for (position, member) in members.iter().enumerate() {
        let id = member.transfer_id;
        unsealed.remove(&id);
        // The root is computed over the members in index order, so renumbered indexes that keep the
        // order would pass it; but proofs address leaves by index, and would then point past the tree.
        if member.leaf_index != position as i64 {
            mismatches.push(format!(
                "block {h}: transfer {id} is recorded at leaf {}, but is leaf {position}",
                member.leaf_index
            ));
        }
        match &member.row {
            Some(t) => leaves.push(leaf(t)),
            None => mismatches.push(format!("block {h}: transfer {id} is missing")),
        }
    }
    if members.len() as i64 != block.transfer_count {
        mismatches.push(format!(
            "block {h}: {} members, header says {}",
            members.len(),
            block.transfer_count
        ));
    }
    let root = hex::encode(merkle::root(&leaves));
    if root != block.merkle_root {
        mismatches.push(format!(
            "block {h}: Merkle root does not match its transfers (an edited or deleted transfer)"
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
