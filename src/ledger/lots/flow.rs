//! The lots of a batch's single-phase transfers (`ledger::batch`), moved in sets.
//!
//! Moving each transfer's lots on its own (`lots::follow`) reads the paying wallet's first holdings,
//! deletes or lowers what it took and adds it to the receiver: three or four round trips per transfer, made
//! one after the other by the writer that holds the group's locks. On PostgreSQL that capped transfers at
//! about 1,600/s where they had run at 5,400–6,200/s before lots (`docs/performance.md`). Here the group's
//! paying wallets' first holdings are read together, every transfer is decided in memory in order (a wallet
//! spends what an earlier transfer of the group brought it, soonest expiry first, exactly as one by one),
//! and what changed is written in four set statements whatever the group's size: a delete of the
//! holdings read that were emptied, an update of those read that changed, an insert-or-add of the
//! holdings nobody read, and the exits of points that left the wallets.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDateTime;
use diesel::sql_types::{BigInt, Timestamp};

use super::{
    changed_under_lock, holdings_after, without_provenance, Exit, Holding, HoldingKey, LedgerError, Piece,
    Result, FREE,
};
use crate::db::prepared::{
    add_rows, insert_rows, is_postgres, matching, upsert_rows, Array, Dynamic, Planning, Value,
};
use crate::db::schema::{lot_exits, lot_holdings};
use crate::db::AnyConnection;
use crate::ledger::kinds::TransferKind as Kind;
use crate::ledger::store::{AccountRow, TransferRow};

/// Holdings read of each paying wallet at first; a wallet that needs more reads twice as many again,
/// up to [`MOST_READ`] a round trip.
const FIRST_READ: i64 = 8;
/// The most holdings one further read of a wallet takes: bounds the memory a spend of many small lots
/// holds per round trip.
const MOST_READ: i64 = 1024;

/// A transfer just written, with its two locked accounts.
pub struct Move<'a> {
    pub transfer: &'a TransferRow,
    pub debit: &'a AccountRow,
    pub credit: &'a AccountRow,
}

/// A holding's place in a wallet's spending order: expiry, then lot.
type Key = (NaiveDateTime, i64);

/// What is known of one paying wallet's free holdings: every stored one up to `frontier` (all of them
/// when `complete`), as stored.
#[derive(Default)]
struct Known {
    stored: BTreeMap<Key, i64>,
    frontier: Option<Key>,
    complete: bool,
    /// How many to read next time the wallet needs more.
    next_read: i64,
}

/// Why deciding stopped: a wallet needs holdings beyond what was read of it.
struct Short(i64);

/// Moves the lots of `moves` (single-phase transfers, in the order they were made; no issue among them).
pub fn follow_all(conn: &mut AnyConnection, moves: &[Move<'_>]) -> Result<()> {
    let mut payers: Vec<i64> = moves
        .iter()
        .filter(|m| m.debit.holds_lots())
        .map(|m| m.debit.id)
        .collect();
    payers.sort_unstable();
    payers.dedup();
    let mut known = first_holdings(conn, &payers)?;
    let outcome = loop {
        match decide(&known, moves)? {
            Ok(outcome) => break outcome,
            Err(Short(wallet)) => read_more(conn, wallet, known.get_mut(&wallet).expect("a payer"))?,
        }
    };
    write(conn, &known, outcome)
}

/// What the group's transfers leave: each paying wallet's free holdings as known (see [`Known`]), the
/// points added to holdings nobody read, and the points that left the wallets, per transfer.
struct Outcome {
    held: HashMap<i64, BTreeMap<Key, i64>>,
    added: BTreeMap<(i64, Key), i64>,
    exits: Vec<(i64, Piece)>,
}

/// Decides every move in order against what is known; `Short` when a wallet needs to be read further.
fn decide(known: &HashMap<i64, Known>, moves: &[Move<'_>]) -> Result<std::result::Result<Outcome, Short>> {
    let mut outcome = Outcome {
        held: known.iter().map(|(&w, k)| (w, k.stored.clone())).collect(),
        added: BTreeMap::new(),
        exits: Vec::new(),
    };
    for m in moves {
        let t = m.transfer;
        if t.kind == Kind::Issue || t.pending_id.is_some() {
            return Err(LedgerError::Inconsistent(format!(
                "transfer {} is not a single-phase move of points",
                t.id
            )));
        }
        if !m.debit.holds_lots() {
            if m.credit.holds_lots() {
                return Err(without_provenance(t, m.credit));
            }
            continue;
        }
        let wallet = &known[&m.debit.id];
        let held = outcome.held.get_mut(&m.debit.id).expect("a payer");
        let pieces = match take(held, wallet, t.amount) {
            Some(Ok(pieces)) => pieces,
            Some(Err(left)) => {
                return Err(LedgerError::Inconsistent(format!(
                    "account {}'s lots hold {left} points fewer than it spends",
                    m.debit.id
                )))
            }
            None => return Ok(Err(Short(m.debit.id))),
        };
        if !m.credit.holds_lots() {
            outcome.exits.extend(pieces.into_iter().map(|p| (t.id, p)));
        } else if let Some(held) = outcome.held.get_mut(&m.credit.id) {
            for p in pieces {
                *held.entry((p.expires_at, p.lot_id)).or_default() += p.points;
            }
        } else {
            for p in pieces {
                *outcome
                    .added
                    .entry((m.credit.id, (p.expires_at, p.lot_id)))
                    .or_default() += p.points;
            }
        }
    }
    Ok(Ok(outcome))
}

/// Takes `amount` off `held`, soonest first: the pieces; `Err(points missing)` when the wallet, read whole,
/// holds too few; `None` when it needs holdings beyond its frontier (unread ones may come first).
fn take(
    held: &mut BTreeMap<Key, i64>,
    wallet: &Known,
    amount: i64,
) -> Option<std::result::Result<Vec<Piece>, i64>> {
    let mut pieces = Vec::new();
    let mut left = amount;
    for (&key, points) in held.iter_mut() {
        if left == 0 {
            break;
        }
        if !wallet.complete && wallet.frontier.is_none_or(|f| key > f) {
            return None;
        }
        let part = (*points).min(left);
        if part > 0 {
            *points -= part;
            left -= part;
            pieces.push(Piece {
                expires_at: key.0,
                lot_id: key.1,
                points: part,
            });
        }
    }
    if left == 0 {
        Some(Ok(pieces))
    } else if wallet.complete {
        Some(Err(left))
    } else {
        None
    }
}

/// The first [`FIRST_READ`] free holdings of each wallet: on PostgreSQL in one statement (a lateral read
/// of each wallet's key range), on SQLite one read each (statements cost microseconds there).
fn first_holdings(conn: &mut AnyConnection, wallets: &[i64]) -> Result<HashMap<i64, Known>> {
    let mut rows: Vec<(i64, Piece)> = Vec::new();
    if is_postgres(conn) && !wallets.is_empty() {
        let mut statement = Dynamic::<(BigInt, (Timestamp, BigInt, BigInt))>::new(
            "SELECT h.account_id, h.expires_at, h.lot_id, h.points FROM UNNEST(",
        );
        statement.push_array(Array::BigInt(wallets.to_vec()));
        rows = statement
            .sql(
                ") AS w(id) CROSS JOIN LATERAL (SELECT account_id, expires_at, lot_id, points \
                 FROM lot_holdings WHERE account_id = w.id AND hold_id = 0 \
                 ORDER BY expires_at, lot_id LIMIT ",
            )
            .bind(Value::BigInt(FIRST_READ))
            .sql(") h")
            .planned(Planning::EachTime)
            .load_rows(conn)?;
    } else {
        for &wallet in wallets {
            let page = holdings_after(conn, wallet, FREE, None, FIRST_READ)?;
            rows.extend(page.into_iter().map(|p| (wallet, p)));
        }
    }
    let mut known: HashMap<i64, Known> = wallets
        .iter()
        .map(|&w| {
            (
                w,
                Known {
                    next_read: FIRST_READ * 2,
                    ..Known::default()
                },
            )
        })
        .collect();
    let mut read: HashMap<i64, i64> = HashMap::new();
    for (wallet, piece) in rows {
        let k = known.get_mut(&wallet).expect("a wallet asked for");
        k.stored.insert((piece.expires_at, piece.lot_id), piece.points);
        k.frontier = Some((piece.expires_at, piece.lot_id)).max(k.frontier);
        *read.entry(wallet).or_default() += 1;
    }
    for (wallet, k) in known.iter_mut() {
        k.complete = read.get(wallet).copied().unwrap_or(0) < FIRST_READ;
    }
    Ok(known)
}

/// Reads the next holdings of `wallet` after its frontier.
fn read_more(conn: &mut AnyConnection, wallet: i64, known: &mut Known) -> Result<()> {
    let page = holdings_after(conn, wallet, FREE, known.frontier, known.next_read)?;
    known.complete = (page.len() as i64) < known.next_read;
    for piece in page {
        known
            .stored
            .insert((piece.expires_at, piece.lot_id), piece.points);
        known.frontier = Some((piece.expires_at, piece.lot_id));
    }
    known.next_read = (known.next_read * 2).min(MOST_READ);
    Ok(())
}

/// Writes what the group changed: the read holdings it emptied are deleted, those it changed are set to
/// their new points (an update in place: a holding's points are in no index, so PostgreSQL rewrites no
/// index entry, where deleting and inserting it again wrote two), the holdings nobody read are inserted or
/// added to, and the exits are recorded.
fn write(conn: &mut AnyConnection, known: &HashMap<i64, Known>, outcome: Outcome) -> Result<()> {
    let mut gone: Vec<HoldingKey> = Vec::new();
    let mut changed: Vec<Holding> = Vec::new();
    let mut added: BTreeMap<(i64, Key), i64> = outcome.added;
    for (&wallet, held) in &outcome.held {
        let stored = &known[&wallet].stored;
        for (&key, &points) in held {
            match stored.get(&key).copied() {
                Some(before) if before == points => {}
                Some(_) if points == 0 => gone.push((wallet, FREE, key.0, key.1)),
                Some(_) => changed.push(holding(wallet, key, points)),
                None if points > 0 => *added.entry((wallet, key)).or_default() += points,
                None => {}
            }
        }
    }
    gone.sort_unstable();
    // In key order, as `gone`: what the group writes does not follow a hash map's order. (No other writer
    // waits on these rows: their wallets' row locks, held already, keep it off.)
    changed.sort_unstable_by_key(|h| (h.account_id, h.piece.expires_at, h.piece.lot_id));
    let mut deleted = 0;
    for statement in matching::<BigInt, _, HoldingKey>(
        conn,
        lot_holdings::table,
        "DELETE FROM lot_holdings",
        &gone,
        Planning::EachTime,
    ) {
        deleted += statement.execute(conn)?;
    }
    changed_under_lock(gone.first().map_or(0, |k| k.0), deleted, gone.len())?;
    // Each of these was read under the wallet's lock: setting it updates it, never inserts.
    upsert_rows::<HoldingKey, _, _>(conn, lot_holdings::table, &changed)?;
    let holdings: Vec<Holding> = added
        .into_iter()
        .map(|((wallet, key), points)| holding(wallet, key, points))
        .collect();
    add_rows::<HoldingKey, _, _>(conn, lot_holdings::table, &holdings)?;
    let exits: Vec<Exit> = outcome
        .exits
        .into_iter()
        .map(|(transfer_id, piece)| Exit { transfer_id, piece })
        .collect();
    insert_rows(conn, lot_exits::table, &exits)?;
    Ok(())
}

/// `wallet`'s free holding of `points` at `key`.
fn holding(wallet: i64, (expires_at, lot_id): Key, points: i64) -> Holding {
    Holding {
        account_id: wallet,
        hold_id: FREE,
        piece: Piece {
            expires_at,
            lot_id,
            points,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDateTime {
        chrono::NaiveDate::from_ymd_opt(2030, 1, d)
            .and_then(|d| d.and_hms_opt(15, 59, 59))
            .expect("a day")
    }

    fn wallet(id: i64) -> AccountRow {
        AccountRow::wallet_for_tests(id, 0, 0)
    }

    fn transfer(id: i64, debit: i64, credit: i64, amount: i64) -> TransferRow {
        TransferRow {
            id,
            kind: Kind::Transfer,
            debit_account_id: debit,
            credit_account_id: credit,
            amount,
            pending_id: None,
            timeout_at: None,
            ref_type: None,
            ref_id: None,
            memo: None,
            created_at: day(1),
        }
    }

    /// What was read of a wallet: `holdings` (day, lot, points), all of them or not.
    fn known(holdings: &[(u32, i64, i64)], complete: bool) -> Known {
        let stored: BTreeMap<Key, i64> = holdings.iter().map(|&(d, lot, p)| ((day(d), lot), p)).collect();
        Known {
            frontier: stored.keys().next_back().copied(),
            stored,
            complete,
            next_read: FIRST_READ * 2,
        }
    }

    #[test]
    fn a_wallet_spends_what_an_earlier_transfer_of_the_group_brought_when_it_expires_first() {
        let (a, b, c) = (wallet(1), wallet(2), wallet(3));
        let payers = HashMap::from([(1, known(&[(2, 10, 5)], true)), (2, known(&[(9, 20, 3)], true))]);
        let (t1, t2) = (transfer(100, 1, 2, 5), transfer(101, 2, 3, 7));
        let moves = [
            Move {
                transfer: &t1,
                debit: &a,
                credit: &b,
            },
            Move {
                transfer: &t2,
                debit: &b,
                credit: &c,
            },
        ];
        let Ok(Ok(outcome)) = decide(&payers, &moves) else {
            panic!("decided");
        };
        // B spends A's lot 10 (day 2) before its own lot 20 (day 9): 5 of it, then 2 of its own.
        assert_eq!(outcome.held[&1], BTreeMap::from([((day(2), 10), 0)]));
        assert_eq!(
            outcome.held[&2],
            BTreeMap::from([((day(2), 10), 0), ((day(9), 20), 1)])
        );
        assert_eq!(
            outcome.added,
            BTreeMap::from([((3, (day(2), 10)), 5), ((3, (day(9), 20)), 2)])
        );
        assert!(outcome.exits.is_empty());
    }

    #[test]
    fn a_wallet_read_in_part_is_read_further_before_anything_beyond_what_was_read_is_spent() {
        let (a, b) = (wallet(1), wallet(2));
        let t = transfer(100, 1, 2, 4);
        let moves = [Move {
            transfer: &t,
            debit: &a,
            credit: &b,
        }];
        let partial = HashMap::from([(1, known(&[(2, 10, 3)], false))]);
        assert!(matches!(decide(&partial, &moves), Ok(Err(Short(1)))));
        let whole = HashMap::from([(1, known(&[(2, 10, 3)], true))]);
        assert!(matches!(
            decide(&whole, &moves),
            Err(LedgerError::Inconsistent(_))
        ));
        let enough = HashMap::from([(1, known(&[(2, 10, 3), (3, 11, 8)], false))]);
        let Ok(Ok(outcome)) = decide(&enough, &moves) else {
            panic!("decided");
        };
        assert_eq!(
            outcome.held[&1],
            BTreeMap::from([((day(2), 10), 0), ((day(3), 11), 7)])
        );
    }

    #[test]
    fn points_leaving_the_wallets_are_exits_of_their_transfer() {
        let a = wallet(1);
        let mut partner = wallet(9);
        partner.floored = false;
        let t = transfer(100, 1, 9, 6);
        let moves = [Move {
            transfer: &t,
            debit: &a,
            credit: &partner,
        }];
        let payers = HashMap::from([(1, known(&[(2, 10, 4), (5, 11, 4)], true))]);
        let Ok(Ok(outcome)) = decide(&payers, &moves) else {
            panic!("decided");
        };
        let exits: Vec<(i64, i64, i64)> = outcome
            .exits
            .iter()
            .map(|(t, p)| (*t, p.lot_id, p.points))
            .collect();
        assert_eq!(exits, [(100, 10, 4), (100, 11, 2)]);
        assert!(outcome.added.is_empty());
    }
}
