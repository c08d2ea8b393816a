//! Reading a batch of due jobs: on PostgreSQL inside the batch's transaction, locking its
//! rows; on SQLite from a position, so that a whole sweep can read each next batch while
//! the one before commits ([`super::pipeline`]).

use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Text};
use jobs_domain::JobStatus;

use crate::db::DbConnection;
use crate::rows::JobRow;
use crate::schema::jobs;
use crate::StoreResult;

/// Where a SQLite read of due jobs stopped: the last row's `expires_at`, as stored, and
/// rowid (the order of the index `jobs_expires`).
#[derive(Clone, Debug)]
pub(super) struct DueKey {
    expires_at: String,
    rowid: i64,
}

/// The due rows a read found, and (SQLite) the position after the last of them.
pub(super) struct Due {
    pub(super) rows: Vec<(Option<i64>, JobRow)>,
    /// As many rows were read as asked for.
    pub(super) full: bool,
    pub(super) next: Option<DueKey>,
}

/// The rows of up to `limit` running jobs due at `at`, oldest deadline first, each with its
/// rowid on SQLite; on PostgreSQL locked for the rest of the transaction, skipping those
/// another transaction holds (a sweeper on another replica, a request), so that racing
/// sweepers take different jobs and never wait for each other. On SQLite, `after` starts
/// the read past a position of an earlier one (`None` on PostgreSQL). When one row cannot
/// be decoded, the rows are read again one at a time, and those that still cannot be are
/// logged and left out.
pub(super) fn read_due(
    conn: &mut DbConnection,
    at: NaiveDateTime,
    limit: i64,
    after: Option<&DueKey>,
) -> StoreResult<Due> {
    match conn {
        DbConnection::Postgres(c) => read_due_postgres(c, at, limit),
        // Its statements on one snapshot (a savepoint inside a write transaction), so that
        // a row moved between them is not read twice.
        DbConnection::Sqlite(c) => c.transaction(|c| read_due_sqlite(c, at, limit, after)),
    }
}

/// [`read_due`] on SQLite.
fn read_due_sqlite(
    c: &mut diesel::SqliteConnection,
    at: NaiveDateTime,
    limit: i64,
    after: Option<&DueKey>,
) -> StoreResult<Due> {
    use diesel::result::Error::DeserializationError;
    // Past `after`: first the jobs of its deadline with a greater rowid (an index seek on
    // the deadline, then the rowid), then those of later deadlines. (A row-value
    // `(expires_at, rowid) > (…)` seeks on the deadline alone, and walks every job of that
    // deadline the reads before took.) Each is one statement, kept prepared; the second
    // reads `limit` rows whatever the first found, so that its LIMIT stays the same.
    let start = after.cloned().unwrap_or(DueKey { expires_at: String::new(), rowid: i64::MIN });
    let resume = after.is_some();
    macro_rules! due {
        ($select:expr) => {
            (|| {
                let due = || {
                    jobs::table
                        .filter(jobs::expires_at.le(at))
                        .filter(jobs::status.eq(JobStatus::Running.as_str()))
                };
                let mut found = Vec::new();
                if resume {
                    found = due()
                        .filter(
                            sql::<Bool>("jobs.expires_at = ")
                                .bind::<Text, _>(&start.expires_at)
                                .sql(" AND jobs.rowid > ")
                                .bind::<BigInt, _>(start.rowid),
                        )
                        .order(sql::<BigInt>("jobs.rowid").asc())
                        .limit(limit)
                        .select($select)
                        .load(c)?;
                }
                if (found.len() as i64) < limit {
                    let later: Vec<_> = due()
                        .filter(
                            sql::<Bool>("jobs.expires_at > ").bind::<Text, _>(&start.expires_at),
                        )
                        .order((jobs::expires_at.asc(), sql::<BigInt>("jobs.rowid").asc()))
                        .limit(limit)
                        .select($select)
                        .load(c)?;
                    let room = limit as usize - found.len();
                    found.extend(later.into_iter().take(room));
                }
                Ok::<_, diesel::result::Error>(found)
            })()
        };
    }
    let keyed = || (sql::<Text>("jobs.expires_at"), sql::<BigInt>("jobs.rowid"));
    let next = |keys: Option<&(String, i64)>| {
        keys.map(|(expires_at, rowid)| DueKey { expires_at: expires_at.clone(), rowid: *rowid })
    };
    match due!((keyed(), JobRow::as_select())) {
        Ok(rows) => {
            let rows: Vec<((String, i64), JobRow)> = rows;
            return Ok(Due {
                full: rows.len() as i64 == limit,
                next: next(rows.last().map(|(key, _)| key)),
                rows: rows.into_iter().map(|((_, rowid), row)| (Some(rowid), row)).collect(),
            });
        }
        Err(DeserializationError(_)) => {}
        Err(err) => return Err(err.into()),
    }
    // The same jobs, then each on its own.
    let keys: Vec<(String, i64)> = due!(keyed())?;
    let mut rows = Vec::with_capacity(keys.len());
    for (_, rowid) in &keys {
        let one = jobs::table
            .filter(sql::<Bool>("jobs.rowid = ").bind::<BigInt, _>(*rowid))
            .select(JobRow::as_select())
            .load::<JobRow>(c);
        match one {
            Ok(row) => rows.extend(row.into_iter().map(|row| (Some(*rowid), row))),
            Err(DeserializationError(err)) => log::error!("cannot expire row {rowid}: {err}"),
            Err(err) => return Err(err.into()),
        }
    }
    Ok(Due { full: keys.len() as i64 == limit, next: next(keys.last()), rows })
}

/// [`read_due`] on PostgreSQL, rows locked.
fn read_due_postgres(
    c: &mut diesel::PgConnection,
    at: NaiveDateTime,
    limit: i64,
) -> StoreResult<Due> {
    use diesel::result::Error::DeserializationError;
    macro_rules! due {
        ($select:expr) => {
            jobs::table
                .filter(jobs::expires_at.le(at))
                .filter(jobs::status.eq(JobStatus::Running.as_str()))
                .order(jobs::expires_at.asc())
                .limit(limit)
                .select($select)
                .for_update()
                .skip_locked()
                .load(c)
        };
    }
    let found = |rows: Vec<JobRow>, read: usize| Due {
        full: read as i64 == limit,
        next: None,
        rows: rows.into_iter().map(|row| (None, row)).collect(),
    };
    match due!(JobRow::as_select()) {
        Ok(rows) => {
            let read = rows.len();
            return Ok(found(rows, read));
        }
        Err(DeserializationError(_)) => {}
        Err(err) => return Err(err.into()),
    }
    // The same jobs (this transaction holds their locks already), each on its own.
    let ids: Vec<String> = due!(jobs::id)?;
    let mut rows = Vec::with_capacity(ids.len());
    for id in &ids {
        match jobs::table.find(id).select(JobRow::as_select()).load::<JobRow>(c) {
            Ok(row) => rows.extend(row),
            Err(DeserializationError(err)) => log::error!("cannot expire job {id}: {err}"),
            Err(err) => return Err(err.into()),
        }
    }
    Ok(found(rows, ids.len()))
}
