//! The in-process catalog: parsed formulas and the version lookup, shared by every request of an instance.
//!
//! Every change to what quantification sees bumps `catalog_epoch` in the same transaction. The instance
//! that made the change reloads at once; every other instance polls the epoch (a one-row read) and reloads
//! when it moved, so a change is in force everywhere within one poll interval.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use diesel::QueryResult;

use crate::db::{self, AnyConnection, Db, Tx};
use crate::domain::catalog::Catalog;
use crate::error::ApiError;

use super::store;

/// How often an instance reads the catalog epoch: a change is in force everywhere within this, for one
/// one-row read per interval.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);

pub struct CatalogCache {
    current: RwLock<(i64, Arc<Catalog>)>,
}

impl CatalogCache {
    pub fn load(conn: &mut AnyConnection) -> QueryResult<CatalogCache> {
        let (epoch, catalog) = read(conn)?;
        Ok(CatalogCache {
            current: RwLock::new((epoch, Arc::new(catalog))),
        })
    }

    pub fn get(&self) -> Arc<Catalog> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).1.clone()
    }

    fn epoch(&self) -> i64 {
        self.current.read().unwrap_or_else(|p| p.into_inner()).0
    }

    /// Reloads from the database now (after this instance committed a change).
    pub fn reload(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        let (epoch, catalog) = read(conn)?;
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        // Two reloads may race; keep whichever saw the later epoch.
        if epoch >= current.0 {
            *current = (epoch, Arc::new(catalog));
        }
        Ok(())
    }

    /// Runs a change to what quantification sees (`change` commits its own transaction, bumping the epoch),
    /// then reloads this instance's catalog at once; the others see it within one poll.
    pub async fn apply<T, F>(self: &Arc<Self>, db: &Db, change: F) -> Result<T, ApiError>
    where
        F: FnOnce(&mut AnyConnection) -> Result<T, ApiError> + Send + 'static,
        T: Send + 'static,
    {
        let cache = self.clone();
        db.run(move |conn| {
            let changed = change(conn)?;
            cache.reload(conn)?;
            Ok(changed)
        })
        .await
    }

    /// Polls the epoch for the life of the server and reloads when another instance changed the catalog.
    pub fn spawn_refresher(self: Arc<Self>, db: Db) {
        actix_web::rt::spawn(async move {
            let mut ticker = actix_web::rt::time::interval(POLL_INTERVAL);
            loop {
                ticker.tick().await;
                let known = self.epoch();
                let cache = self.clone();
                let result = db
                    .run(move |conn| {
                        if store::epoch(conn)? != known {
                            cache.reload(conn)?;
                        }
                        Ok(())
                    })
                    .await;
                if let Err(e) = result {
                    tracing::warn!(error = %e, "catalog refresh failed; will retry");
                }
            }
        });
    }
}

/// The epoch and the catalog it describes, from one snapshot.
fn read(conn: &mut AnyConnection) -> QueryResult<(i64, Catalog)> {
    db::transaction(conn, Tx::Snapshot, |conn| {
        let epoch = store::epoch(conn)?;
        Ok((epoch, store::load_catalog(conn)?))
    })
}
