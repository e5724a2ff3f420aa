//! `tanhui backup`: a consistent copy of a live SQLite database.
//!
//! `VACUUM INTO` writes the database as one read transaction sees it, so the copy is a snapshot even while
//! writers go on (WAL lets them: the copy only holds a reader's snapshot open, and the checkpointer waits
//! for it). The copy is compacted and has no `-wal` beside it: it is one self-contained file. Rejected: the
//! online backup API (`sqlite3_backup_step`), which restarts whenever a writer changes a page under it and
//! so may never finish on a busy database; copying the files, which is not consistent while the WAL moves.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::sql_types::Text;
use diesel::{Connection, RunQueryDsl};

use super::{sqlite_url, AnyConnection, Backend, ConnectOptions, Manager};
use crate::config::DatabaseSettings;

/// Copies the SQLite database of `database` into a new file at `target`; answers the copy's size in bytes.
pub fn sqlite_into(database: &DatabaseSettings, target: &Path) -> anyhow::Result<u64> {
    if Backend::from_url(&database.url).map_err(anyhow::Error::msg)? == Backend::Postgres {
        anyhow::bail!(
            "tanhui backup copies SQLite databases; for PostgreSQL use pg_dump (a logical copy) or \
             pg_basebackup (a physical one, for point-in-time recovery): see docs/operations.md"
        );
    }
    let source = sqlite_url::sqlite_path(&database.url).map_err(anyhow::Error::msg)?;
    if !Path::new(&source).is_file() {
        anyhow::bail!("no database at {source}");
    }
    // SQLite refuses a non-empty target too; checking first gives a clear message and never touches it.
    if target.exists() {
        anyhow::bail!(
            "{} exists already; backup writes only a new file",
            target.display()
        );
    }
    let target_text = target
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("the backup path must be valid UTF-8"))?;
    let manager = Manager::new(ConnectOptions {
        url: database.url.clone(),
        busy_timeout_ms: database.sqlite_busy_timeout_ms,
    })?;
    let AnyConnection::Sqlite(mut conn) = manager.connect()? else {
        unreachable!("a sqlite:// URL opens a SQLite connection");
    };
    diesel::sql_query("VACUUM INTO ?")
        .bind::<Text, _>(target_text)
        .execute(&mut conn)
        .map_err(|e| anyhow::anyhow!("backup into {}: {e}", target.display()))?;
    // The copy may carry the source's WAL mode in its header: set it back so it stays one file when opened.
    let mut copy = diesel::SqliteConnection::establish(target_text)?;
    copy.batch_execute("PRAGMA journal_mode = DELETE")?;
    Ok(std::fs::metadata(target)?.len())
}
