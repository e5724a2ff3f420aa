//! Stable query plans for SQLite, so cached prepared statements stay prepared.
//!
//! Unless the query planner stability guarantee (QPSG) is on, SQLite lets a plan depend on the values bound
//! to some parameters and marks such a statement expired whenever those parameters are bound again. Every
//! `LIMIT ?` is one of them (diesel's `.first()` binds `LIMIT 1`), so each execution of a cached statement
//! went back through the SQL parser: a sixth of the ingest writer's time. This schema has no ANALYZE data
//! for value-dependent plans to use, so QPSG costs nothing. Diesel does not expose the raw handle; an
//! auto-extension runs for every connection opened in this process, before diesel sees it.

use std::os::raw::{c_char, c_int};
use std::sync::Once;

use libsqlite3_sys as ffi;

unsafe extern "C" fn enable_qpsg(
    db: *mut ffi::sqlite3,
    _error: *mut *mut c_char,
    _api: *const ffi::sqlite3_api_routines,
) -> c_int {
    // SAFETY: SQLite calls this with the handle of a connection it is opening; QPSG takes an int and an
    // optional out-pointer, which may be null.
    unsafe {
        ffi::sqlite3_db_config(
            db,
            ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as c_int,
            std::ptr::null_mut::<c_int>(),
        )
    };
    ffi::SQLITE_OK
}

/// Registers the QPSG setting for every SQLite connection opened from now on (once per process).
pub fn stabilize_query_plans() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // SAFETY: registering a function with the signature SQLite expects for an extension entry point.
        let rc = unsafe { ffi::sqlite3_auto_extension(Some(enable_qpsg)) };
        if rc != ffi::SQLITE_OK {
            tracing::warn!(rc, "could not enable stable SQLite query plans");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_opened_after_registration_have_stable_plans() {
        stabilize_query_plans();
        let mut db: *mut ffi::sqlite3 = std::ptr::null_mut();
        let mut qpsg: c_int = -1;
        // SAFETY: a private in-memory connection, read and closed here.
        unsafe {
            assert_eq!(ffi::sqlite3_open(c":memory:".as_ptr(), &mut db), ffi::SQLITE_OK);
            // -1 leaves the setting as it is and reports it.
            ffi::sqlite3_db_config(
                db,
                ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
                -1 as c_int,
                &mut qpsg as *mut c_int,
            );
            ffi::sqlite3_close(db);
        }
        assert_eq!(qpsg, 1);
    }
}
