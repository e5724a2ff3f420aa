//! SQLite WAL checkpoints, off the writers' path.
//!
//! By default SQLite checkpoints inside the commit that takes the WAL past 1,000 pages: that writer copies
//! the pages into the database file and syncs it while every request of its group waits. Every connection
//! here turns that off (`wal_autocheckpoint = 0`) and one thread per open database checkpoints instead, on
//! another core: a PASSIVE checkpoint every [`EVERY`] copies what was committed without blocking anyone.
//!
//! A passive checkpoint never lets the WAL start over while writes keep coming (a writer restarts the
//! file only when everything was copied before its transaction began), so once the WAL holds more than
//! [`RESTART_FRAMES`] the thread takes the process's write lock and runs a RESTART checkpoint: it copies
//! the little the passive ones left and waits for readers to leave the WAL, after which the next writer
//! starts the file over. Writers queue on the lock for that moment instead of polling SQLite's.
//!
//! A reader that stays in the WAL (a `verify` over the whole ledger, a long report) would hold that moment
//! for as long as SQLite's busy timeout while every writer waits, and again at every attempt. So a RESTART
//! waits for readers only [`RESTART_WAIT_MS`], and one that they kept from finishing is tried again later
//! and later ([`Pacing`]); the WAL grows meanwhile, as it must while a reader needs its frames.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;

use diesel::sql_types::Integer;
use diesel::{QueryResult, QueryableByName, RunQueryDsl};

use super::{sqlite_writer_lock, AnyConnection, Manager};

/// How often committed pages are copied into the database file.
const EVERY: Duration = Duration::from_millis(50);

/// WAL frames (pages) past which the file is started over: 64 MiB at the default 4 KiB page size.
const RESTART_FRAMES: i32 = 16_384;

/// How long a RESTART waits for readers to leave the WAL, with the writers held: about one group commit.
const RESTART_WAIT_MS: u32 = 20;

/// After a RESTART that readers kept from finishing, the next waits this long, doubling up to
/// [`RESTART_RETRY_MAX`]: writers then lose at most [`RESTART_WAIT_MS`] per retry to a reader that stays.
const RESTART_RETRY_FIRST: Duration = Duration::from_millis(200);
const RESTART_RETRY_MAX: Duration = Duration::from_secs(5);

/// Stops its thread when dropped (the last handle of the database is gone).
pub struct Checkpointer {
    _stop: Sender<()>,
}

/// The row `PRAGMA wal_checkpoint` answers.
#[derive(QueryableByName)]
struct Checkpoint {
    /// 1 when a RESTART could not finish (readers stayed in the WAL).
    #[diesel(sql_type = Integer)]
    busy: i32,
    /// Frames in the WAL.
    #[diesel(sql_type = Integer)]
    log: i32,
}

/// What one round of checkpointing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Committed pages copied; the WAL was not (or not yet) to be started over.
    Copied,
    /// The WAL will start over with the next write.
    Restarted,
    /// Readers stayed in the WAL past [`RESTART_WAIT_MS`]: the RESTART gave up.
    ReadersStayed,
}

/// When a RESTART may be tried again.
struct Pacing {
    next: Instant,
    delay: Duration,
}

impl Pacing {
    fn new(now: Instant) -> Pacing {
        Pacing {
            next: now,
            delay: RESTART_RETRY_FIRST,
        }
    }

    fn may_restart(&self, now: Instant) -> bool {
        now >= self.next
    }

    fn record(&mut self, outcome: Outcome, now: Instant) {
        match outcome {
            Outcome::Copied => {}
            Outcome::Restarted => *self = Pacing::new(now),
            Outcome::ReadersStayed => {
                self.next = now + self.delay;
                self.delay = (self.delay * 2).min(RESTART_RETRY_MAX);
            }
        }
    }
}

impl Checkpointer {
    pub fn start(manager: Manager) -> anyhow::Result<Checkpointer> {
        let mut conn = connect(&manager)?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("sqlite-checkpointer".into())
            .spawn(move || {
                let mut failing = false;
                let mut pacing = Pacing::new(Instant::now());
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                    let may_restart = pacing.may_restart(Instant::now());
                    match checkpoint(&mut conn, RESTART_FRAMES, may_restart) {
                        Ok(outcome) => {
                            failing = false;
                            pacing.record(outcome, Instant::now());
                        }
                        // Logged once per spell of failures: the writers report their own errors.
                        Err(e) if !failing => {
                            failing = true;
                            tracing::warn!(error = %e, "WAL checkpoint failed");
                        }
                        Err(_) => {}
                    }
                }
            })?;
        Ok(Checkpointer { _stop: stop })
    }
}

/// The checkpointer's connection: its busy timeout is how long a RESTART waits for readers.
fn connect(manager: &Manager) -> anyhow::Result<AnyConnection> {
    let mut conn = manager.connect()?;
    conn.batch_execute(&format!("PRAGMA busy_timeout = {RESTART_WAIT_MS}"))?;
    Ok(conn)
}

/// Copies what was committed; once the WAL holds more than `restart_frames`, and `may_restart`, starts it
/// over.
fn checkpoint(conn: &mut AnyConnection, restart_frames: i32, may_restart: bool) -> QueryResult<Outcome> {
    if passive(conn)? <= restart_frames || !may_restart {
        return Ok(Outcome::Copied);
    }
    let _writer = sqlite_writer_lock(conn)?;
    let done: Checkpoint = diesel::sql_query("PRAGMA wal_checkpoint(RESTART)").get_result(conn)?;
    Ok(if done.busy == 0 {
        Outcome::Restarted
    } else {
        Outcome::ReadersStayed
    })
}

/// A passive checkpoint; returns the frames in the WAL.
fn passive(conn: &mut AnyConnection) -> QueryResult<i32> {
    let done: Checkpoint = diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(conn)?;
    Ok(done.log)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{transaction, ConnectOptions, Db, Tx};

    /// A migrated database in a directory of its own, and connections to it made as the service makes them.
    fn migrated() -> (tempfile::TempDir, Manager) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::connect(ConnectOptions::sqlite_in(&dir), 1, Duration::from_secs(5)).expect("db");
        drop(db);
        let manager = Manager::new(ConnectOptions::sqlite_in(&dir)).expect("manager");
        (dir, manager)
    }

    /// About 1 MiB in 64 rows of 16 KiB.
    const WRITE_A_MEGABYTE: &str = "CREATE TABLE IF NOT EXISTS t (b BLOB); \
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 64) \
         INSERT INTO t SELECT randomblob(16384) FROM n;";

    #[test]
    fn commits_reach_the_database_file_without_a_writer_checkpointing() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::connect(ConnectOptions::sqlite_in(&dir), 1, Duration::from_secs(5)).expect("db");
        let mut conn = db.get().expect("connection");
        conn.batch_execute(WRITE_A_MEGABYTE).expect("write");
        let file = dir.path().join("test.db");
        let size = || std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let started = Instant::now();
        while size() < 1 << 20 {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the committed pages were not copied into the database file"
            );
            std::thread::sleep(EVERY);
        }
    }

    /// While one writer commits without pause a passive checkpoint never lets the WAL start over: the
    /// file would grow for as long as the writes go on.
    #[test]
    fn the_wal_stays_bounded_under_constant_writes() {
        let (dir, manager) = migrated();
        let mut writer = manager.connect().expect("writer");
        writer
            .batch_execute("PRAGMA synchronous = OFF; CREATE TABLE t (b BLOB);")
            .expect("table");
        const COMMITS: usize = 6000;
        let writing = std::thread::spawn(move || {
            for _ in 0..COMMITS {
                transaction(&mut writer, Tx::Write, |conn| {
                    conn.batch_execute("INSERT INTO t VALUES (randomblob(4000))")
                })
                .expect("insert");
            }
        });
        let mut checkpointer = manager.connect().expect("checkpointer");
        // Without syncs a checkpoint's time is the copying alone, not this machine's disk latency, during
        // which the writer would go on filling the WAL.
        checkpointer
            .batch_execute("PRAGMA synchronous = OFF")
            .expect("no syncs");
        while !writing.is_finished() {
            checkpoint(&mut checkpointer, 256, true).expect("checkpoint");
            std::thread::sleep(Duration::from_millis(2));
        }
        writing.join().expect("writer");
        // Each commit writes two pages or more: without a restart the WAL passes 48 MiB (75 MB measured).
        // With it the WAL measured 2.5-4.5 MB in ten runs with both cores busy elsewhere; the bound leaves
        // room for a checkpointer descheduled longer than that on a busier machine.
        let wal = std::fs::metadata(dir.path().join("test.db-wal"))
            .expect("WAL")
            .len();
        assert!(wal < 12 << 20, "{COMMITS} commits left a WAL of {wal} bytes");
    }

    /// A reader that stays in the WAL does not hold the writers for SQLite's busy timeout: the RESTART
    /// gives up while the reader is still there, and succeeds once it has left. (The reader leaves when
    /// told, or by itself after 10 s: a RESTART that waited for it would then finish, and fail the test.)
    #[test]
    fn a_restart_gives_up_on_a_reader_that_stays() {
        let (_dir, manager) = migrated();
        let mut writer = manager.connect().expect("writer");
        writer.batch_execute(WRITE_A_MEGABYTE).expect("write");
        let mut reader = manager.connect().expect("reader");
        reader
            .batch_execute("BEGIN; SELECT count(*) FROM t;")
            .expect("read");
        writer.batch_execute(WRITE_A_MEGABYTE).expect("write more");
        let (leave, told) = mpsc::channel::<()>();
        let leaving = std::thread::spawn(move || {
            let _ = told.recv_timeout(Duration::from_secs(10));
            reader.batch_execute("COMMIT").expect("end the read");
        });
        let mut checkpointer = connect(&manager).expect("checkpointer");
        let outcome = checkpoint(&mut checkpointer, 16, true).expect("checkpoint");
        assert_eq!(outcome, Outcome::ReadersStayed);
        leave.send(()).expect("reader waiting");
        leaving.join().expect("reader");
        let outcome = checkpoint(&mut checkpointer, 16, true).expect("checkpoint");
        assert_eq!(outcome, Outcome::Restarted);
    }

    #[test]
    fn restarts_kept_from_finishing_are_tried_later_and_later() {
        let start = Instant::now();
        let mut pacing = Pacing::new(start);
        assert!(pacing.may_restart(start));
        let mut now = start;
        for expected in [200, 400, 800, 1600, 3200, 5000, 5000] {
            pacing.record(Outcome::ReadersStayed, now);
            let wait = Duration::from_millis(expected);
            assert!(!pacing.may_restart(now + wait - Duration::from_millis(1)));
            assert!(pacing.may_restart(now + wait));
            now += wait;
        }
        pacing.record(Outcome::Copied, now);
        assert!(pacing.may_restart(now));
        pacing.record(Outcome::Restarted, now);
        pacing.record(Outcome::ReadersStayed, now);
        assert!(pacing.may_restart(now + RESTART_RETRY_FIRST));
        assert!(!pacing.may_restart(now + RESTART_RETRY_FIRST / 2));
    }
}
