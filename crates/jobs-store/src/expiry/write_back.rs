//! The batch's write-back: one UPDATE … FROM that gives each row the new values the domain
//! computed, matched on its id and on the version it was read with (the compare-and-set of
//! every change), and returns the ids of the rows it changed.
//!
//! The rows' values come in as a relation `v` of the same columns on both backends: on
//! PostgreSQL one array per column, `unnest`ed (one fixed statement, planned in
//! microseconds, whatever the batch's size); on SQLite, which has no arrays, a `VALUES`
//! list of bound parameters, [`crate::sqlite_rows::ROWS`] rows per statement, kept prepared
//! ([`crate::sqlite_rows`]). On SQLite `v` leads with each row's rowid, which the statement
//! seeks by (the id is still compared, on the row found): a tenth of the write-back's time
//! went into finding 40-character ids in the primary key's index.

use std::collections::HashSet;

use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Nullable, Text, Timestamp};

use super::Expiry;
use crate::db::DbConnection;
use crate::rows::JobChanges;
use crate::sqlite_rows::{Rows, Values};
use crate::StoreResult;

/// The columns of `v`: the row's id and the version it was read with, then what is written.
macro_rules! values {
    () => {
        "job_id, read_version, status, metadata, ttft_ns, total_duration_ns, updated_at, \
         completed_at, started_at, expires_at, version, claimed_by, lease_expires_at, \
         lease_seconds"
    };
}

/// Every field a change may touch (as [`crate::store::change_on`] writes them), from `v`.
macro_rules! set_from_v {
    () => {
        "UPDATE jobs SET status = v.status, metadata = v.metadata, ttft_ns = v.ttft_ns, \
         total_duration_ns = v.total_duration_ns, updated_at = v.updated_at, \
         completed_at = v.completed_at, started_at = v.started_at, expires_at = v.expires_at, \
         version = v.version, claimed_by = v.claimed_by, \
         lease_expires_at = v.lease_expires_at, lease_seconds = v.lease_seconds"
    };
}

/// The compare-and-set, and what tells which rows it changed.
macro_rules! matched {
    () => {
        "jobs.id = v.job_id AND jobs.version = v.read_version RETURNING jobs.id"
    };
}

/// Values per row of the write-back (on SQLite, one more: the rowid).
#[cfg(test)]
pub(super) const COLUMNS: usize = 14;

pub(super) const POSTGRES: &str = concat!(
    set_from_v!(),
    " FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) AS v (",
    values!(),
    ") WHERE ",
    matched!()
);

const SQLITE_HEAD: &str = concat!("WITH v (rid, ", values!(), ") AS (VALUES ");
const SQLITE_TAIL: &str =
    concat!(") ", set_from_v!(), " FROM v WHERE jobs.rowid = v.rid AND ", matched!());

#[derive(QueryableByName)]
struct WrittenId {
    #[diesel(sql_type = Text)]
    id: String,
}

/// Writes each expiry's job back where its row still has the version it was read with;
/// returns the expiries written.
pub(super) fn write_back(
    conn: &mut DbConnection,
    expiries: Vec<Expiry>,
) -> StoreResult<Vec<Expiry>> {
    let mut written = HashSet::with_capacity(expiries.len());
    match conn {
        DbConnection::Postgres(c) => written.extend(postgres(c, &expiries)?),
        DbConnection::Sqlite(c) => written.extend(sqlite(c, &expiries)?),
    }
    Ok(expiries.into_iter().filter(|e| written.contains(&e.after.id.to_string())).collect())
}

fn postgres(conn: &mut diesel::PgConnection, rows: &[Expiry]) -> QueryResult<Vec<String>> {
    let changes: Vec<JobChanges> =
        rows.iter().map(|e| JobChanges::from_job(&e.after, e.after.version)).collect();
    /// One column's values, as an array.
    use crate::db::column;
    let written: Vec<WrittenId> = diesel::sql_query(POSTGRES)
        .bind::<Array<Text>, _>(column(rows, |e| e.after.id.to_string()))
        .bind::<Array<BigInt>, _>(column(rows, |e| e.before.version))
        .bind::<Array<Text>, _>(column(&changes, |c| c.status))
        .bind::<Array<Text>, _>(column(&changes, |c| c.metadata.as_str()))
        .bind::<Array<Nullable<BigInt>>, _>(column(&changes, |c| c.ttft_ns))
        .bind::<Array<Nullable<BigInt>>, _>(column(&changes, |c| c.total_duration_ns))
        .bind::<Array<Timestamp>, _>(column(&changes, |c| c.updated_at))
        .bind::<Array<Nullable<Timestamp>>, _>(column(&changes, |c| c.completed_at))
        .bind::<Array<Nullable<Timestamp>>, _>(column(&changes, |c| c.started_at))
        .bind::<Array<Nullable<Timestamp>>, _>(column(&changes, |c| c.expires_at))
        .bind::<Array<BigInt>, _>(column(&changes, |c| c.version))
        .bind::<Array<Nullable<Text>>, _>(column(&changes, |c| c.claimed_by.as_deref()))
        .bind::<Array<Nullable<Timestamp>>, _>(column(&changes, |c| c.lease_expires_at))
        .bind::<Array<Nullable<BigInt>>, _>(column(&changes, |c| c.lease_seconds))
        .load(conn)?;
    Ok(written.into_iter().map(|w| w.id).collect())
}

/// One row of the SQLite write-back: the rowid, the id, the version read, and what is
/// written.
type Row = (i64, String, i64, JobChanges);

fn bind_row<'b>(row: &'b Row, values: &mut Values<'_, '_, 'b>) -> QueryResult<()> {
    let (rowid, id, read_version, c) = row;
    values
        .bind::<BigInt, _>(rowid)?
        .bind::<Text, _>(id)?
        .bind::<BigInt, _>(read_version)?
        .bind::<Text, _>(&c.status)?
        .bind::<Text, _>(&c.metadata)?
        .bind::<Nullable<BigInt>, _>(&c.ttft_ns)?
        .bind::<Nullable<BigInt>, _>(&c.total_duration_ns)?
        .bind::<Timestamp, _>(&c.updated_at)?
        .bind::<Nullable<Timestamp>, _>(&c.completed_at)?
        .bind::<Nullable<Timestamp>, _>(&c.started_at)?
        .bind::<Nullable<Timestamp>, _>(&c.expires_at)?
        .bind::<BigInt, _>(&c.version)?
        .bind::<Nullable<Text>, _>(&c.claimed_by)?
        .bind::<Nullable<Timestamp>, _>(&c.lease_expires_at)?
        .bind::<Nullable<BigInt>, _>(&c.lease_seconds)?;
    Ok(())
}

fn sqlite_rows(expiries: &[Expiry]) -> Vec<Row> {
    expiries
        .iter()
        .map(|Expiry { rowid, before, after }| {
            let changes = JobChanges::from_job(after, after.version);
            // Always read on SQLite; a row without one would match nothing.
            (rowid.unwrap_or(0), after.id.to_string(), before.version, changes)
        })
        .collect()
}

/// The SQLite write-back of `expiries` (at most [`crate::sqlite_rows::ROWS`]), and whether the statement is
/// kept once prepared.
#[cfg(test)]
pub(super) fn sqlite_sql(expiries: &[Expiry]) -> (String, bool) {
    let rows = sqlite_rows(expiries);
    let mut statements = Rows::chunks(SQLITE_HEAD, &rows, bind_row, SQLITE_TAIL);
    crate::sqlite_rows::sql(&statements.next().expect("one statement"))
}

fn sqlite(conn: &mut diesel::SqliteConnection, expiries: &[Expiry]) -> QueryResult<Vec<String>> {
    let rows = sqlite_rows(expiries);
    let mut written = Vec::with_capacity(rows.len());
    for statement in Rows::chunks(SQLITE_HEAD, &rows, bind_row, SQLITE_TAIL) {
        let ids: Vec<WrittenId> = statement.load(conn)?;
        written.extend(ids.into_iter().map(|w| w.id));
    }
    Ok(written)
}
