//! The write-back's compare-and-set and the batch's statements, seen from inside: SQLite
//! always; PostgreSQL too when `JOBS_TEST_DATABASE_URL` names a server.

use super::*;
use crate::db::{DatabaseUrl, PoolOptions};
use jobs_domain::{JobId, JobUpdate, NewJob, OffsetClock, Owner, TimeoutSeconds, Visibility};

use crate::test_db;

fn open(db: &test_db::TestDatabase, clock: &OffsetClock) -> JobStore {
    JobStore::open(&DatabaseUrl::parse(db.url()).unwrap(), &PoolOptions::default())
        .unwrap()
        .with_clock(clock.clock())
}

/// A running job with a timeout of an hour.
fn running(store: &JobStore) -> JobId {
    let new = NewJob::default().with_timeout_seconds(TimeoutSeconds::new(3600).unwrap());
    let id = store.create(Owner::new("org", "ann", None), new, None).unwrap().job.id;
    for status in [JobStatus::Pending, JobStatus::Running] {
        let update = JobUpdate::new(Some(status), None, None, None).unwrap();
        store.update(&Visibility::organization("org"), id, &update).unwrap();
    }
    id
}

#[test]
fn a_row_written_since_the_batch_read_it_is_not_written_back() {
    let db = test_db::TestDatabase::new();
    let clock = OffsetClock::new();
    let store = open(&db, &clock);
    let (stale, fresh) = (running(&store), running(&store));
    clock.advance(chrono::TimeDelta::seconds(3601));
    let mut conn = store.conn().unwrap();
    let expiries: Vec<Expiry> = read_due(&mut conn, store.now().naive_utc(), 10)
        .unwrap()
        .into_iter()
        .map(|row| {
            let before = row.into_job().unwrap();
            let mut after = before.expire(store.now()).unwrap();
            after.version = before.version + 1;
            Expiry { before, after }
        })
        .collect();
    assert_eq!(expiries.len(), 2);
    // Another writer changes one of them after the read.
    db.execute(&format!("UPDATE jobs SET version = version + 1 WHERE id = '{stale}'"));
    let written = write_back(&mut conn, expiries).unwrap();
    let written: Vec<JobId> = written.iter().map(|e| e.after.id).collect();
    assert_eq!(written, [fresh], "only the row still at the version read");
    drop(conn);
    let vis = Visibility::organization("org");
    assert_eq!(store.get(&vis, stale).unwrap().status, JobStatus::Running);
    assert_eq!(store.get(&vis, fresh).unwrap().status, JobStatus::Expired);
    // The next batch reads it again, and expires it.
    assert_eq!(store.expire_due(10).unwrap(), 1);
    assert_eq!(store.get(&vis, stale).unwrap().status, JobStatus::Expired);
}

#[test]
fn the_write_back_binds_one_value_per_column_on_each_backend() {
    use write_back::{sqlite_sql, COLUMNS, POSTGRES};
    let sqlite = sqlite_sql(3);
    assert_eq!(sqlite.matches('?').count(), 3 * COLUMNS, "{sqlite}");
    assert!(sqlite.contains("AS (VALUES (?, ?,") && sqlite.contains("?), (?"), "{sqlite}");
    assert!(
        POSTGRES.contains(&format!("${COLUMNS})"))
            && !POSTGRES.contains(&format!("${}", COLUMNS + 1))
    );
    let names = |sql: &str| {
        let (_, after) = sql.split_once("v (").unwrap();
        after.split(')').next().unwrap().split(',').count()
    };
    assert_eq!((names(&sqlite), names(POSTGRES)), (COLUMNS, COLUMNS), "one name per value");
}
