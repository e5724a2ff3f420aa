//! `tanhui verify`: every domain's check, in one consistent snapshot, listing each mismatch.
//!
//! The ledger re-derives balances and blocks from its transfers (`ledger::check`); redemptions are
//! reconciled with their holds and the partners' settlement balances (`redemptions::reconcile`), and
//! activities with their issue transfers ([`activities`]). Each check only reads; this module composes
//! them, so no domain calls up into another.

pub mod activities;

use diesel::QueryResult;

use crate::db::{self, AnyConnection, Tx};

#[derive(Debug, Default)]
pub struct Report {
    pub accounts: usize,
    pub transfers: usize,
    pub blocks: usize,
    pub mismatches: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Runs every check. `progress(done, total)` is called as the ledger's transfers are read.
pub fn verify(
    conn: &mut AnyConnection,
    public_key: &[u8; 32],
    progress: impl FnMut(usize, usize),
) -> QueryResult<Report> {
    db::transaction(conn, Tx::Snapshot, |conn| {
        let ledger = crate::ledger::check::check(conn, public_key, progress)?;
        let mut mismatches = ledger.mismatches;
        // Checked in the same snapshot, settlement balances equal what partners captured.
        mismatches.extend(crate::redemptions::reconcile::check(conn, &ledger.balances)?);
        mismatches.extend(activities::check(conn)?);
        Ok(Report {
            accounts: ledger.accounts,
            transfers: ledger.transfers,
            blocks: ledger.blocks,
            mismatches,
        })
    })
}
