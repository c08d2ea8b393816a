//! SQLite's WAL checkpoints, off the write path: a commit appends its pages to the WAL and
//! returns; copying them into the database file is this call's work, which the server runs
//! in a loop of its own. (PostgreSQL checkpoints by itself.)

use diesel::prelude::*;
use diesel::sql_types::Integer;

use crate::db::DbConnection;
use crate::store::JobStore;
use crate::StoreResult;

/// What one checkpoint found and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, QueryableByName)]
pub struct Checkpoint {
    /// 1 when another connection's checkpoint was running, so this one did nothing.
    #[diesel(sql_type = Integer)]
    pub busy: i32,
    /// Pages in the WAL.
    #[diesel(sql_type = Integer, column_name = log)]
    pub wal_pages: i32,
    /// Of those, pages now in the database file (those a reader still needs from the WAL
    /// wait for the next checkpoint).
    #[diesel(sql_type = Integer, column_name = checkpointed)]
    pub copied_pages: i32,
}

/// How long a checkpoint waits for a pooled connection before it skips its turn: the pool
/// is the requests' first, and the next checkpoint comes soon.
const CHECKOUT: std::time::Duration = std::time::Duration::from_millis(100);

impl JobStore {
    /// Copies the pages the WAL holds into the database file, without waiting for readers
    /// or writers (a PASSIVE checkpoint), so that commits need not do it themselves. Once
    /// all of it is copied, the next write starts the WAL over. `None` when no connection
    /// was free within 100 ms (the turn is skipped), and on PostgreSQL, which checkpoints
    /// by itself; an error only from the database.
    pub fn checkpoint(&self) -> StoreResult<Option<Checkpoint>> {
        if self.backend() != "sqlite" {
            return Ok(None);
        }
        let Ok(mut conn) = self.checkout(CHECKOUT) else { return Ok(None) };
        match &mut *conn {
            DbConnection::Sqlite(c) => {
                let done: Checkpoint =
                    diesel::sql_query("PRAGMA wal_checkpoint(PASSIVE)").get_result(c)?;
                Ok(Some(done))
            }
            DbConnection::Postgres(_) => Ok(None),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use jobs_domain::{NewJob, Owner};

    use crate::test_db::TestDatabase;
    use crate::{DatabaseUrl, JobStore, PoolOptions};

    #[test]
    fn a_checkpoint_copies_every_page_of_the_wal_into_the_file_when_no_reader_needs_them() {
        let db = TestDatabase::new();
        let url = DatabaseUrl::parse(db.url()).unwrap();
        let store = JobStore::open(&url, &PoolOptions::default()).unwrap();
        store.create(Owner::new("org", "ann", None), NewJob::default(), None).unwrap();
        let Some(done) = store.checkpoint().unwrap() else {
            assert_eq!(db.backend(), "postgres", "only PostgreSQL has nothing to do");
            return;
        };
        assert_eq!(done.busy, 0);
        assert!(done.wal_pages > 0, "the create's commit is in the WAL: {done:?}");
        assert_eq!(done.copied_pages, done.wal_pages, "{done:?}");
    }

    #[test]
    fn a_commit_checkpoints_by_itself_only_past_sixty_four_mebibytes_of_wal() {
        use diesel::sql_types::Integer;
        #[derive(diesel::QueryableByName)]
        struct Pages {
            #[diesel(sql_type = Integer)]
            wal_autocheckpoint: i32,
        }
        let db = TestDatabase::sqlite();
        let url = DatabaseUrl::parse(db.url()).unwrap();
        let store = JobStore::open(&url, &PoolOptions::default()).unwrap();
        let mut conn = store.conn().unwrap();
        let crate::db::DbConnection::Sqlite(c) = &mut *conn else { unreachable!("SQLite") };
        let pages: Pages =
            diesel::RunQueryDsl::get_result(diesel::sql_query("PRAGMA wal_autocheckpoint"), c)
                .unwrap();
        assert_eq!(pages.wal_autocheckpoint, 16384);
    }
}
