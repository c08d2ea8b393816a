//! The write-back's compare-and-set and the batch's statements, seen from inside: SQLite
//! always; PostgreSQL too when `JOBS_TEST_DATABASE_URL` names a server.

use super::*;
use crate::db::{DatabaseUrl, PoolOptions};
use jobs_domain::{JobId, JobUpdate, NewJob, OffsetClock, Owner, TimeoutSeconds, Visibility};

use crate::store::plan_tests::{captured_sql, plan};
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

/// `n` copies of job `id` under other ids, in SQL: the same deadline, one after another in
/// the table.
fn copies(db: &test_db::TestDatabase, id: JobId, n: usize) {
    let seq = match db.backend() {
        "postgres" => format!("(SELECT generate_series(1, {n}) AS n) AS seq"),
        _ => format!(
            "(WITH RECURSIVE seq(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM seq WHERE n < {n}) \
             SELECT n FROM seq)"
        ),
    };
    let id_of = match db.backend() {
        "postgres" => "'job-' || lpad(to_hex(n), 8, '0') || '-0000-7000-8000-000000000000'",
        _ => "printf('job-%08x-0000-7000-8000-000000000000', n)",
    };
    db.execute(&format!(
        "INSERT INTO jobs SELECT {id_of}, \
         org_id, user_id, project_id, status, job_type, background, agent_id, source_id, \
         metadata, callback_url, callback_sent_at, callback_status_code, callback_error, \
         ttft_ns, total_duration_ns, timeout_seconds, created_at, updated_at, completed_at, \
         started_at, expires_at, version, claimed_by, lease_expires_at, lease_seconds \
         FROM jobs, {seq} WHERE id = '{id}'"
    ));
}

#[test]
fn a_row_written_since_the_batch_read_it_is_not_written_back() {
    let db = test_db::TestDatabase::new();
    let clock = OffsetClock::new();
    let store = open(&db, &clock);
    let (stale, fresh) = (running(&store), running(&store));
    clock.advance(chrono::TimeDelta::seconds(3601));
    let mut conn = store.conn().unwrap();
    let expiries = expiries(&mut conn, &store, 10);
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

/// The due jobs as the sweep would expire them.
fn expiries(conn: &mut DbConnection, store: &JobStore, limit: i64) -> Vec<Expiry> {
    read_due(conn, store.now().naive_utc(), limit, None)
        .unwrap()
        .rows
        .into_iter()
        .map(|(rowid, row)| {
            let before = row.into_job().unwrap();
            let mut after = before.expire(store.now()).unwrap();
            after.version = before.version + 1;
            Expiry { rowid, before, after }
        })
        .collect()
}

#[test]
fn the_write_back_binds_one_value_per_column_on_each_backend() {
    use write_back::{sqlite_sql, COLUMNS, POSTGRES};
    let db = test_db::TestDatabase::new();
    let clock = OffsetClock::new();
    let store = open(&db, &clock);
    let id = running(&store);
    clock.advance(chrono::TimeDelta::seconds(3601));
    let one = expiries(&mut store.conn().unwrap(), &store, 1).pop().unwrap();
    let three = [0, 1, 2].map(|_| Expiry {
        rowid: Some(1),
        before: one.before.clone(),
        after: one.after.clone(),
    });
    let (sqlite, cached) = sqlite_sql(&three);
    assert_eq!(sqlite.matches('?').count(), 3 * (COLUMNS + 1), "{sqlite}");
    assert!(sqlite.contains("AS (VALUES (?, ?,") && sqlite.contains("?), (?"), "{sqlite}");
    assert!(!cached, "a short statement is not kept");
    assert!(
        POSTGRES.contains(&format!("${COLUMNS})"))
            && !POSTGRES.contains(&format!("${}", COLUMNS + 1))
    );
    let names = |sql: &str| {
        let (_, after) = sql.split_once("v (").unwrap();
        after.split(')').next().unwrap().split(',').count()
    };
    assert_eq!((names(&sqlite), names(POSTGRES)), (COLUMNS + 1, COLUMNS), "one name per value");
    assert_eq!(one.after.id, id);
}

#[test]
fn a_full_write_back_statement_is_prepared_once_and_each_batch_binds_its_own_rows_to_it() {
    use crate::sqlite_rows::ROWS;
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use std::sync::{Arc, Mutex};
    use write_back::sqlite_sql;
    let db = test_db::TestDatabase::new();
    if db.backend() != "sqlite" {
        return; // PostgreSQL's write-back is one fixed statement whatever the batch
    }
    let clock = OffsetClock::new();
    let store = open(&db, &clock);
    let id = running(&store);
    // Copies of that running job under other ids: three full statements' worth.
    copies(&db, id, 3 * ROWS - 1);
    clock.advance(chrono::TimeDelta::seconds(3601));
    let mut conn = store.conn().unwrap();
    let mut due = expiries(&mut conn, &store, 3 * ROWS as i64);
    assert_eq!(due.len(), 3 * ROWS);
    let rest = due.split_off(ROWS);
    assert!(sqlite_sql(&due).1, "a statement of ROWS rows is kept");
    let prepared = Arc::new(Mutex::new(0));
    let count = Arc::clone(&prepared);
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::CacheQuery { sql, .. } = event {
            if sql.starts_with("WITH v") {
                *count.lock().unwrap() += 1;
            }
        }
    });
    // One batch of one statement, then one of two, on one connection: each with its rows.
    assert_eq!(write_back(&mut conn, due).unwrap().len(), ROWS);
    assert_eq!(write_back(&mut conn, rest).unwrap().len(), 2 * ROWS);
    conn.set_instrumentation(Option::<Box<dyn Instrumentation>>::None);
    assert_eq!(*prepared.lock().unwrap(), 1, "prepared for the cache once");
    drop(conn);
    let expired = db.count("SELECT id FROM jobs WHERE status = 'expired' AND version = 3");
    assert_eq!(expired, 3 * ROWS as i64);
}

#[test]
fn the_sqlite_write_back_finds_each_row_by_its_rowid() {
    // PostgreSQL's rows have no rowid; its write-back seeks by the primary key.
    let Some((_db, store)) = sqlite_due(0) else { return };
    let mut conn = store.conn().unwrap();
    let due = expiries(&mut conn, &store, 1);
    assert!(due[0].rowid.is_some(), "read with its rowid");
    let (sql, _) = write_back::sqlite_sql(&due);
    let plan = plan(&mut conn, &sql);
    assert!(
        plan.iter().any(|l| l.starts_with("SEARCH jobs USING INTEGER PRIMARY KEY (rowid=?)")),
        "{plan:?}"
    );
}

/// SQLite only (PostgreSQL's sweep reads each batch inside its own transaction): a store
/// with `n + 1` running jobs of one deadline, past it.
fn sqlite_due(n: usize) -> Option<(test_db::TestDatabase, JobStore)> {
    let db = test_db::TestDatabase::new();
    if db.backend() != "sqlite" {
        return None;
    }
    let clock = OffsetClock::new();
    let store = open(&db, &clock);
    copies(&db, running(&store), n);
    clock.advance(chrono::TimeDelta::seconds(3601));
    Some((db, store))
}

#[test]
fn a_read_past_a_position_starts_after_the_last_row_read_even_among_equal_deadlines() {
    let Some((_db, store)) = sqlite_due(9) else { return };
    let mut conn = store.conn().unwrap();
    let at = store.now().naive_utc();
    // Nothing is written between the reads: each sees the rows the one before read as due.
    let mut seen = Vec::new();
    let mut after = None;
    for (size, full) in [(4, true), (4, true), (2, false)] {
        let due = read_due(&mut conn, at, 4, after.as_ref()).unwrap();
        assert_eq!((due.rows.len(), due.full), (size, full));
        seen.extend(due.rows.into_iter().map(|(_, row)| row.id));
        after = due.next;
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 10, "every due job read once");
}

#[test]
fn a_whole_sweep_expires_every_due_job_once_in_batches_counted_as_they_commit() {
    let db = test_db::TestDatabase::new();
    let clock = OffsetClock::new();
    let store = open(&db, &clock);
    copies(&db, running(&store), 24);
    clock.advance(chrono::TimeDelta::seconds(3601));
    let mut counted = Vec::new();
    assert_eq!(store.expire_all_due(10, |n| counted.push(n)).unwrap(), 25);
    assert_eq!(counted, [10, 10, 5]);
    let expired = db.count("SELECT id FROM jobs WHERE status = 'expired' AND version = 3");
    let events = db.count(
        "SELECT id FROM job_events WHERE event_type = 'job.status_changed' \
         AND data LIKE '%\"to\":\"expired\"%'",
    );
    assert_eq!((expired, events), (25, 25));
    assert_eq!(store.expire_all_due(10, |n| counted.push(n)).unwrap(), 0, "nothing left");
}

#[test]
fn a_whole_sweep_on_a_pool_of_one_connection_reads_each_batch_after_the_one_before() {
    let db = test_db::TestDatabase::new();
    let clock = OffsetClock::new();
    let one = PoolOptions { max_size: 1, ..PoolOptions::default() };
    let store = JobStore::open(&DatabaseUrl::parse(db.url()).unwrap(), &one)
        .unwrap()
        .with_clock(clock.clock());
    copies(&db, running(&store), 24);
    clock.advance(chrono::TimeDelta::seconds(3601));
    let started = std::time::Instant::now();
    let mut counted = Vec::new();
    assert_eq!(store.expire_all_due(10, |n| counted.push(n)).unwrap(), 25);
    assert_eq!(counted, [10, 10, 5]);
    // Not a read that waited out the pool's checkout timeout (5 s) for the writer's connection.
    assert!(started.elapsed() < std::time::Duration::from_secs(4), "{:?}", started.elapsed());
}

#[test]
fn a_resumed_read_seeks_past_its_position_in_the_deadline_index() {
    let Some((_db, store)) = sqlite_due(3) else { return };
    let mut conn = store.conn().unwrap();
    let at = store.now().naive_utc();
    let first = read_due(&mut conn, at, 2, None).unwrap();
    let statements = captured_sql(&mut conn, |conn| {
        assert_eq!(read_due(conn, at, 2, first.next.as_ref()).unwrap().rows.len(), 2);
    });
    let statements: Vec<String> =
        statements.into_iter().filter(|sql| sql.starts_with("SELECT")).collect();
    assert_eq!(statements.len(), 1, "the ties alone filled the batch: {statements:?}");
    let sql = &statements[0];
    assert_eq!(
        plan(&mut conn, sql),
        ["SEARCH jobs USING INDEX jobs_expires (expires_at=? AND rowid>?)"]
    );
}
