//! On PostgreSQL, a transaction's events travel with its COMMIT.
//!
//! The general way to keep event ids in commit order (the deferred trigger of migration
//! `event_ids_at_commit`) writes each event twice: inserted with a provisional id, then
//! renumbered inside COMMIT. A transaction that knows its events before it commits (a
//! PATCH, a cancel, a worker's finish, a batch of creates) does better: it sends them and
//! its COMMIT in one round trip, `SELECT job_events_append(…); COMMIT`, and
//! `job_events_append` takes the sequencer, draws the real ids in order and inserts each
//! row once. Between the lock
//! and the commit there is no round trip to this process, as with the trigger, so ids
//! still follow commit order; the trigger skips rows inserted with their real id.
//!
//! A simple-query string binds no parameters, so the values are written as literals:
//! `E'…'` with `\` and `'` doubled (the escaping of libpq's `PQescapeLiteral`, independent
//! of `standard_conforming_strings`). Events with a value PostgreSQL text cannot hold (NUL)
//! are not rendered, and are written the general way (where PostgreSQL refuses them).

use std::fmt::Write as _;

use diesel::connection::SimpleConnection;
use diesel::Connection;

use super::NewEvent;
use crate::db::{begin_write, end_write, in_transaction, transaction_depth, DbConnection};
use crate::StoreResult;

/// Runs `work` in a write transaction and writes the events it returns with its commit
/// ([`commit_with`]: on PostgreSQL in the COMMIT's round trip, see the module
/// documentation). Inside an enclosing transaction (the group-commit writer's), `work` runs
/// in a savepoint and the events are inserted after it.
pub(crate) fn transaction_with_events<'a, T>(
    conn: &mut DbConnection,
    work: impl FnOnce(&mut DbConnection) -> StoreResult<(T, Vec<NewEvent<'a>>)>,
) -> StoreResult<T> {
    if in_transaction(conn) {
        return conn.transaction(|conn| {
            let (value, events) = work(conn)?;
            super::insert(conn, &events)?;
            Ok(value)
        });
    }
    begin_write(conn)?;
    let outcome =
        work(conn).and_then(|(value, events)| Ok(commit_with(conn, &events).map(|()| value)?));
    if outcome.is_err() && in_transaction(conn) {
        let _ = end_write(conn, false);
    }
    outcome
}

/// Writes `events` in the transaction [`begin_write`] started and commits it: on
/// PostgreSQL in one round trip. On failure the caller rolls back (if the transaction is
/// still open: a failed COMMIT has ended it).
///
/// The combined `COMMIT` is sent only where diesel counts exactly one sound transaction;
/// anything else (a savepoint, a state diesel marked broken) takes diesel's own commit,
/// which checks it. After the combined `COMMIT`, diesel's PostgreSQL connection reads
/// libpq's transaction status (idle) and counts no transaction.
pub(crate) fn commit_with(
    conn: &mut DbConnection,
    events: &[NewEvent<'_>],
) -> diesel::QueryResult<()> {
    let top_level = transaction_depth(conn) == Some(1);
    match conn {
        DbConnection::Postgres(_) if top_level && !events.is_empty() => {
            if let Some(append) = append_sql(events) {
                // The libpq status after this tells diesel the transaction is over.
                return conn.batch_execute(&(append + "; COMMIT"));
            }
        }
        _ => {}
    }
    super::insert(conn, events)?;
    end_write(conn, true)
}

/// `SELECT job_events_append(…)` with `events`' columns as array literals, in order;
/// `None` if a value holds NUL.
fn append_sql(events: &[NewEvent<'_>]) -> Option<String> {
    let size: usize = events.iter().map(|e| e.data.len() + 256).sum();
    let mut sql = String::with_capacity(64 + size);
    sql.push_str("SELECT job_events_append(");
    text_array(&mut sql, events, |e| Some(e.job_id.as_str()))?;
    text_array(&mut sql, events, |e| Some(e.org_id))?;
    text_array(&mut sql, events, |e| Some(e.user_id))?;
    text_array(&mut sql, events, |e| Some(e.job_type))?;
    text_array(&mut sql, events, |e| e.agent_id)?;
    text_array(&mut sql, events, |e| Some(e.event_type))?;
    sql.push_str("ARRAY[");
    for (n, event) in events.iter().enumerate() {
        let comma = if n == 0 { "" } else { "," };
        let _ = write!(sql, "{comma}'{}'", event.at.0.format("%Y-%m-%d %H:%M:%S%.6f"));
    }
    sql.push_str("]::timestamp[], ");
    text_array(&mut sql, events, |e| Some(e.actor))?;
    text_array(&mut sql, events, |e| e.request_id)?;
    text_array(&mut sql, events, |e| Some(e.data.as_str()))?;
    sql.truncate(sql.len() - 2);
    sql.push(')');
    Some(sql)
}

/// Appends `ARRAY[…]::text[], ` of one column.
fn text_array<'e>(
    sql: &mut String,
    events: &'e [NewEvent<'_>],
    column: impl Fn(&'e NewEvent<'_>) -> Option<&'e str>,
) -> Option<()> {
    sql.push_str("ARRAY[");
    for (n, event) in events.iter().enumerate() {
        if n > 0 {
            sql.push(',');
        }
        literal(sql, column(event))?;
    }
    sql.push_str("]::text[], ");
    Some(())
}

/// Appends `value` as a string literal (or `NULL`); `None` if it holds NUL.
fn literal(sql: &mut String, value: Option<&str>) -> Option<()> {
    let Some(value) = value else {
        sql.push_str("NULL");
        return Some(());
    };
    if value.contains('\0') {
        return None;
    }
    sql.push_str("E'");
    for c in value.chars() {
        match c {
            '\'' => sql.push_str("''"),
            '\\' => sql.push_str("\\\\"),
            c => sql.push(c),
        }
    }
    sql.push('\'');
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(value: &str) -> Option<String> {
        let mut sql = String::new();
        literal(&mut sql, Some(value)).map(|()| sql)
    }

    #[test]
    fn quotes_and_backslashes_are_doubled_inside_an_escape_string() {
        assert_eq!(rendered("it's").as_deref(), Some("E'it''s'"));
        assert_eq!(
            rendered(r"a\'); DROP TABLE jobs; --").as_deref(),
            Some(r"E'a\\''); DROP TABLE jobs; --'")
        );
        assert_eq!(rendered("").as_deref(), Some("E''"));
    }

    #[test]
    fn a_value_with_nul_is_not_rendered() {
        assert_eq!(rendered("a\0b"), None);
    }
}
