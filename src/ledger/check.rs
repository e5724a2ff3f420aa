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
    let mut derived: HashMap<i64, WideBalances> = HashMap::new();
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
    let derived = narrow(derived, &mut report.mismatches);
    check_stored_integers(conn, &mut report.mismatches)?;
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

fn derive(
    t: &TransferRow,
    balances: &mut HashMap<i64, WideBalances>,
    holds: &mut HashMap<i64, TransferRow>,
    resolved: &mut HashSet<i64>,
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
        kind if kind.resolves_hold() => {
            let hold = t.pending_id.and_then(|h| holds.get(&h));
            let matches = hold
                .is_some_and(|h| h.debit_account_id == d && h.credit_account_id == c && h.amount == t.amount);
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
        kind => {
            change(d, &|b| b.debits_posted += a);
            change(c, &|b| b.credits_posted += a);
            if kind == TransferKind::Issue {
                change(c, &|b| b.issued_posted += a);
            }
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
