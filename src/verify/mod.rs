//! `tanhui verify`: every domain's check, in one consistent snapshot, listing each mismatch.
//!
//! The ledger re-derives balances and blocks from its transfers (`ledger::check`); redemptions are
//! reconciled with their holds and the partners' settlement balances (`redemptions::reconcile`), and
//! activities with their issue transfers and their recorded methodology versions ([`activities`]). Each check only reads; this module composes
//! them, so no domain calls up into another.

pub mod activities;

use diesel::QueryResult;

use crate::db::{self, AnyConnection, Tx};

#[derive(Debug, Default)]
pub struct Report {
    pub accounts: usize,
    pub transfers: usize,
    pub blocks: usize,
    /// Activities quantified again (invariant 5).
    pub activities: usize,
    pub mismatches: Vec<String>,
}

/// What `verify` is reading when it reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The ledger's transfers.
    Transfers,
    /// Activities, quantified again.
    Activities,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Transfers => "reading transfers",
            Stage::Activities => "re-quantifying activities",
        }
    }
}

impl Report {
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Runs every check. `progress(stage, done, total)` is called as the ledger's transfers are read, then
/// as activities are quantified again.
pub fn verify(
    conn: &mut AnyConnection,
    public_key: &[u8; 32],
    mut progress: impl FnMut(Stage, usize, usize),
) -> QueryResult<Report> {
    db::transaction(conn, Tx::Snapshot, |conn| {
        let ledger = crate::ledger::check::check(conn, public_key, |done, total| {
            progress(Stage::Transfers, done, total)
        })?;
        let mut mismatches = ledger.mismatches;
        // The lots against the balances the ledger's check has just proved.
        mismatches.extend(crate::ledger::lots::check::check(conn)?);
        mismatches.extend(crate::cash::check::check(conn)?);
        mismatches.extend(crate::market::check::check(conn)?);
        mismatches.extend(crate::reductions::check::check(conn)?);
        // Checked in the same snapshot, settlement balances equal what partners captured.
        mismatches.extend(crate::redemptions::reconcile::check(conn, &ledger.balances)?);
        mismatches.extend(activities::check(conn)?);
        // The catalog as this snapshot holds it: the versions activities recorded are read from it.
        let catalog = crate::methodology::store::load_catalog(conn)?;
        let reproduced = activities::check_reproducible(conn, &catalog, |done, total| {
            progress(Stage::Activities, done, total)
        })?;
        let activities = reproduced.checked;
        mismatches.extend(reproduced.mismatches());
        Ok(Report {
            accounts: ledger.accounts,
            transfers: ledger.transfers,
            blocks: ledger.blocks,
            activities,
            mismatches,
        })
    })
}
