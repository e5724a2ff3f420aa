//! Sealing: committed transfers are gathered into blocks whose Merkle root (RFC 6962) chains to the
//! previous block and is signed with the platform key.

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::merkle;
use super::signing::PlatformKey;
use super::store::{self, block_header, BlockRow, TransferRow};
use crate::db::schema::{block_transfers, ledger_blocks, transfers, unsealed_transfers};
use crate::db::{self, AnyConnection, Tx};
use crate::error::ApiError;

/// The previous hash of block 1.
pub const GENESIS_PREV_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An arbitrary constant that names "the Tanhui sealer" among PostgreSQL advisory locks.
const SEALER_LOCK_KEY: i64 = 0x7461_6e68_7569_0002;

pub fn leaf(t: &TransferRow) -> merkle::Hash {
    merkle::leaf_hash(&t.canonical())
}

/// Seals up to `max` unsealed transfers into the next block. Returns `None` when there was nothing to
/// seal or another instance holds the sealer lock. One sealer at a time: a transaction-scoped advisory
/// lock on PostgreSQL (it cannot leak into the pool), and SQLite's single writer.
pub fn seal_once(
    conn: &mut AnyConnection,
    key: &PlatformKey,
    max: i64,
) -> Result<Option<BlockRow>, ApiError> {
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
        let ids: Vec<i64> = unsealed_transfers::table
            .order(unsealed_transfers::transfer_id)
            .select(unsealed_transfers::transfer_id)
            .limit(max)
            .load(conn)?;
        if ids.is_empty() {
            return Ok(None);
        }
        let mut rows: Vec<TransferRow> = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(1000) {
            rows.extend(
                transfers::table
                    .filter(transfers::id.eq_any(chunk))
                    .order(transfers::id)
                    .select(TransferRow::as_select())
                    .load(conn)?,
            );
        }
        let leaves: Vec<merkle::Hash> = rows.iter().map(leaf).collect();
        let root = hex::encode(merkle::root(&leaves));
        let previous = store::latest_block(conn)?;
        let height = previous.as_ref().map_or(1, |b| b.height + 1);
        let prev_hash = previous.map_or_else(|| GENESIS_PREV_HASH.to_string(), |b| b.hash);
        let sealed_at = store::now();
        let count = rows.len() as i64;
        let hash = Sha256::digest(block_header(height, &prev_hash, &root, count, sealed_at));
        let block = BlockRow {
            height,
            prev_hash,
            merkle_root: root,
            hash: hex::encode(hash),
            transfer_count: count,
            sealed_at,
            signature: hex::encode(key.sign(&hash)),
        };
        diesel::insert_into(ledger_blocks::table)
            .values((
                ledger_blocks::height.eq(block.height),
                ledger_blocks::prev_hash.eq(&block.prev_hash),
                ledger_blocks::merkle_root.eq(&block.merkle_root),
                ledger_blocks::hash.eq(&block.hash),
                ledger_blocks::transfer_count.eq(block.transfer_count),
                ledger_blocks::sealed_at.eq(block.sealed_at),
                ledger_blocks::signature.eq(&block.signature),
            ))
            .execute(conn)?;
        // Multi-row VALUES by hand: diesel's batch insert does not compile for the two-backend connection.
        // Every value is an integer, so formatting them in is safe.
        let members: Vec<String> = rows
            .iter()
            .enumerate()
            .map(|(i, t)| format!("({}, {height}, {i})", t.id))
            .collect();
        for chunk in members.chunks(500) {
            diesel::sql_query(format!(
                "INSERT INTO block_transfers (transfer_id, block_height, leaf_index) VALUES {}",
                chunk.join(", ")
            ))
            .execute(conn)?;
        }
        for chunk in ids.chunks(1000) {
            diesel::delete(unsealed_transfers::table.filter(unsealed_transfers::transfer_id.eq_any(chunk)))
                .execute(conn)?;
        }
        Ok(Some(block))
    })
}

/// The members of a block in leaf order, with the transfer rows still present (a deleted one is `None`).
pub fn block_members(conn: &mut AnyConnection, height: i64) -> QueryResult<Vec<(i64, Option<TransferRow>)>> {
    let ids: Vec<i64> = block_transfers::table
        .filter(block_transfers::block_height.eq(height))
        .order(block_transfers::leaf_index)
        .select(block_transfers::transfer_id)
        .load(conn)?;
    let mut found = std::collections::HashMap::new();
    for chunk in ids.chunks(1000) {
        for row in transfers::table
            .filter(transfers::id.eq_any(chunk))
            .select(TransferRow::as_select())
            .load(conn)?
        {
            found.insert(row.id, row);
        }
    }
    Ok(ids.into_iter().map(|id| (id, found.remove(&id))).collect())
}

/// Which block holds a transfer, and at which leaf.
pub fn membership(conn: &mut AnyConnection, transfer_id: i64) -> QueryResult<Option<(i64, i64)>> {
    block_transfers::table
        .find(transfer_id)
        .select((block_transfers::block_height, block_transfers::leaf_index))
        .first(conn)
        .optional()
}
