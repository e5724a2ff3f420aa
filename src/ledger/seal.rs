//! Sealing: committed transfers are gathered into blocks whose Merkle root (RFC 6962) chains to the
//! previous block and is signed with the platform key.

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use sha2::{Digest, Sha256};

use super::merkle;
use super::service::LedgerError;
use super::signing::PlatformKey;
use super::store::{self, block_header, BlockRow, TransferRow};
use crate::clock::Clock;
use crate::db::prepared::{Dynamic, Value};
use crate::db::schema::{block_transfers, ledger_blocks, transfers, unsealed_transfers};
use crate::db::{self, AnyConnection, Tx};

/// The previous hash of block 1.
pub const GENESIS_PREV_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An arbitrary constant that names "the Tanhui sealer" among PostgreSQL advisory locks.
const SEALER_LOCK_KEY: i64 = 0x7461_6e68_7569_0002;

pub fn leaf(t: &TransferRow) -> merkle::Hash {
    merkle::leaf_hash(&t.canonical())
}

/// Seals up to `max` unsealed transfers into the next block. Returns `None` when there was nothing to
/// seal or another sealer sealed first. The block is read and hashed from a snapshot, holding no lock; only
/// its writes take the write lock, which every ingest and transfer writer waits for (on SQLite, one lock
/// for the whole database). One sealer writes at a time: a transaction-scoped advisory
/// lock on PostgreSQL (it cannot leak into the pool), SQLite's single writer; and a block is written only
/// on top of the head it was hashed against, so two sealers never fork the chain.
pub fn seal_once(
    conn: &mut AnyConnection,
    key: &PlatformKey,
    max: i64,
    clock: &Clock,
) -> Result<Option<BlockRow>, LedgerError> {
    let next = |conn: &mut AnyConnection| next_block(conn, key, max, clock);
    let Some(block) = db::transaction(conn, Tx::Snapshot, next)? else {
        return Ok(None);
    };
    db::transaction(conn, Tx::Write, |conn| {
        if let AnyConnection::Postgresql(_) = conn {
            #[derive(QueryableByName)]
            struct Locked {
                #[diesel(sql_type = diesel::sql_types::Bool)]
                locked: bool,
            }
            let lock: Locked = diesel::sql_query(format!(
                "SELECT pg_try_advisory_xact_lock({SEALER_LOCK_KEY}) AS locked"
            ))
            .get_result(conn)?;
            if !lock.locked {
                return Ok(None);
            }
        }
        let head = store::latest_block(conn)?.map_or(0, |b| b.height);
        if head != block.header.height - 1 {
            return Ok(None);
        }
        write_block(conn, &block)?;
        Ok(Some(block.header))
    })
}

/// A block hashed and signed, not yet written.
struct NewBlock {
    header: BlockRow,
    members: Vec<i64>,
}

/// The next block: the oldest `max` unsealed transfers, on top of the latest block.
fn next_block(
    conn: &mut AnyConnection,
    key: &PlatformKey,
    max: i64,
    clock: &Clock,
) -> Result<Option<NewBlock>, LedgerError> {
    let oldest = unsealed_transfers::table
        .select(unsealed_transfers::transfer_id)
        .order(unsealed_transfers::transfer_id)
        .limit(max);
    let rows: Vec<TransferRow> = transfers::table
        .filter(transfers::id.eq_any(oldest))
        .order(transfers::id)
        .select(TransferRow::as_select())
        .load(conn)?;
    if rows.is_empty() {
        return Ok(None);
    }
    let leaves: Vec<merkle::Hash> = rows.iter().map(leaf).collect();
    let root = hex::encode(merkle::root(&leaves));
    let previous = store::latest_block(conn)?;
    let height = previous.as_ref().map_or(1, |b| b.height + 1);
    let prev_hash = previous.map_or_else(|| GENESIS_PREV_HASH.to_string(), |b| b.hash);
    let sealed_at = clock.now_naive();
    let count = rows.len() as i64;
    let hash = Sha256::digest(block_header(height, &prev_hash, &root, count, sealed_at));
    Ok(Some(NewBlock {
        header: BlockRow {
            height,
            prev_hash,
            merkle_root: root,
            hash: hex::encode(hash),
            transfer_count: count,
            sealed_at,
            signature: hex::encode(key.sign(&hash)),
        },
        members: rows.iter().map(|t| t.id).collect(),
    }))
}

/// Writes the block and its members, and takes them off the sealing queue.
fn write_block(conn: &mut AnyConnection, block: &NewBlock) -> Result<(), LedgerError> {
    let header = &block.header;
    diesel::insert_into(ledger_blocks::table)
        .values((
            ledger_blocks::height.eq(header.height),
            ledger_blocks::prev_hash.eq(&header.prev_hash),
            ledger_blocks::merkle_root.eq(&header.merkle_root),
            ledger_blocks::hash.eq(&header.hash),
            ledger_blocks::transfer_count.eq(header.transfer_count),
            ledger_blocks::sealed_at.eq(header.sealed_at),
            ledger_blocks::signature.eq(&header.signature),
        ))
        .execute(conn)?;
    // Multi-row VALUES of integers, formatted in: 500 rows per statement, where the prepared shapes of
    // `insert_rows` hold 32 (63 statements for a block of 2,000 measured slower on PostgreSQL, whose CPU
    // the transfer writers share).
    let members: Vec<String> = block
        .members
        .iter()
        .enumerate()
        .map(|(leaf, id)| format!("({id}, {}, {leaf})", header.height))
        .collect();
    for chunk in members.chunks(MEMBERS_PER_INSERT) {
        diesel::sql_query(format!(
            "INSERT INTO block_transfers (transfer_id, block_height, leaf_index) VALUES {}",
            chunk.join(", ")
        ))
        .execute(conn)?;
    }
    let dequeued = Dynamic::<BigInt>::new(
        "DELETE FROM unsealed_transfers WHERE transfer_id IN \
         (SELECT transfer_id FROM block_transfers WHERE block_height = ",
    )
    .bind(Value::BigInt(header.height))
    .sql(")")
    .execute(conn)?;
    // Only a sealer takes transfers off the queue, and this one holds the head it read them under.
    if dequeued != block.members.len() {
        return Err(LedgerError::Inconsistent(format!(
            "block {}: {dequeued} of {} members were still queued",
            header.height,
            block.members.len()
        )));
    }
    Ok(())
}

/// Block members written per statement (see `write_block` for why 500).
const MEMBERS_PER_INSERT: usize = 500;

/// Block members' transfers read per statement: a block of the default 2,000 in two reads, each well
/// under every backend's limit on bound parameters.
const MEMBERS_PER_READ: usize = 1000;

/// One member of a block: the transfer's id, the leaf index recorded for it, and its row (`None` if the
/// transfer was deleted).
pub struct Member {
    pub transfer_id: i64,
    pub leaf_index: i64,
    pub row: Option<TransferRow>,
}

/// The members of a block in leaf order.
pub fn block_members(conn: &mut AnyConnection, height: i64) -> QueryResult<Vec<Member>> {
    let recorded: Vec<(i64, i64)> = block_transfers::table
        .filter(block_transfers::block_height.eq(height))
        .order(block_transfers::leaf_index)
        .select((block_transfers::transfer_id, block_transfers::leaf_index))
        .load(conn)?;
    let mut found = std::collections::HashMap::new();
    for chunk in recorded.chunks(MEMBERS_PER_READ) {
        let ids: Vec<i64> = chunk.iter().map(|&(id, _)| id).collect();
        for row in transfers::table
            .filter(transfers::id.eq_any(ids))
            .select(TransferRow::as_select())
            .load(conn)?
        {
            found.insert(row.id, row);
        }
    }
    Ok(recorded
        .into_iter()
        .map(|(transfer_id, leaf_index)| Member {
            transfer_id,
            leaf_index,
            row: found.remove(&transfer_id),
        })
        .collect())
}

/// Which block holds a transfer.
pub fn block_of(conn: &mut AnyConnection, transfer_id: i64) -> QueryResult<Option<i64>> {
    block_transfers::table
        .find(transfer_id)
        .select(block_transfers::block_height)
        .first(conn)
        .optional()
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;

    use super::*;
    use crate::db::{migrate, ConnectOptions, Manager};

    /// Two transfers, both queued for sealing.
    const QUEUED: &str = "
        INSERT INTO transfers (id, kind, debit_account_id, credit_account_id, amount, created_at)
            VALUES (1, 'issue', (SELECT min(id) FROM accounts), (SELECT max(id) FROM accounts), 5,
                    '2026-11-29 00:00:00'),
                   (2, 'issue', (SELECT min(id) FROM accounts), (SELECT max(id) FROM accounts), 7,
                    '2026-11-29 00:00:01');
        INSERT INTO unsealed_transfers VALUES (1), (2);";

    fn count(conn: &mut AnyConnection, table: &str) -> i64 {
        db::count(conn, &format!("SELECT count(*) AS n FROM {table}"))
    }

    /// A block is written only while every one of its members is still queued. Only a bug could take one
    /// off the queue between the snapshot and the write (the head check keeps racing sealers apart); if it
    /// happens, nothing of the block stays, and the next round seals what is still queued.
    #[test]
    fn a_block_whose_member_left_the_queue_is_not_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let manager = Manager::new(ConnectOptions::sqlite_in(&dir)).expect("manager");
        migrate::run(&manager).expect("migrations");
        let mut conn = manager.connect().expect("connection");
        conn.batch_execute(QUEUED).expect("queued transfers");
        let key = PlatformKey::from_hex(&"11".repeat(32)).expect("key");

        let block = db::transaction(&mut conn, Tx::Snapshot, |conn| {
            next_block(conn, &key, 10, &Clock::system())
        })
        .expect("read")
        .expect("a block of two");
        assert_eq!(block.members, vec![1, 2]);
        conn.batch_execute("DELETE FROM unsealed_transfers WHERE transfer_id = 2")
            .expect("dequeue one");
        let written = db::transaction(&mut conn, Tx::Write, |conn| write_block(conn, &block));
        assert!(
            written.is_err(),
            "a block was written without its member in the queue"
        );
        assert_eq!(count(&mut conn, "ledger_blocks"), 0);
        assert_eq!(count(&mut conn, "block_transfers"), 0);
        assert_eq!(count(&mut conn, "unsealed_transfers"), 1);

        let next = seal_once(&mut conn, &key, 10, &Clock::system())
            .expect("seal")
            .expect("a block of one");
        assert_eq!((next.height, next.transfer_count), (1, 1));
        assert_eq!(count(&mut conn, "unsealed_transfers"), 0);
    }
}
