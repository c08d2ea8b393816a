//! One page of a caller's jobs, keyset-paginated on (`created_at`, `id`).
//!
//! A dashboard asks for the same few pages over and over, so the query is built so that
//! each backend's statement cache keeps it prepared: it runs on the concrete connection
//! (through the multi-backend wrapper diesel prepares every statement anew), the keyset
//! bound is a cacheable expression rather than an SQL literal, and the `LIMIT` is written
//! into the SQL rather than bound. SQLite plans with a bound `LIMIT`'s value, so rebinding
//! it expires the statement and every page would parse and plan the query again (seen in
//! perf as `sqlite3Reprepare`). Page sizes are few, so each gets its own cached statement.

use chrono::NaiveDateTime;
use diesel::backend::Backend;
use diesel::connection::DefaultLoadingMode;
use diesel::expression::{is_aggregate, AppearsOnTable, Expression, ValidGrouping};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::serialize::ToSql;
use diesel::sql_types::{Bool, Text, Timestamp};

use jobs_domain::{JobId, ListQuery, Order, Visibility};

use super::{find, Page};
use crate::db::DbConnection;
use crate::rows::JobRow;
use crate::schema::jobs;
use crate::{StoreError, StoreResult};

/// A position in the list: a job's (`created_at`, `id`).
pub(crate) type Key = (NaiveDateTime, String);

/// `(jobs.created_at, jobs.id) <op> (?, ?)`: a row-value comparison, which SQLite (3.15+)
/// and PostgreSQL both turn into one index range, so a page costs the same however deep it
/// starts, even when many jobs share a timestamp (an `a < x OR (a = x AND b < y)` form
/// would seek on `created_at` alone and walk every tie).
#[derive(Debug, Clone)]
pub(crate) struct KeysetBound {
    /// `<` (before) or `>` (after).
    op: &'static str,
    at: Position,
}

/// The key a page starts from.
#[derive(Debug, Clone)]
enum Position {
    /// Read beforehand.
    Key(Key),
    /// A cursor job's, read by a scalar subquery of the page's own statement (PostgreSQL:
    /// one round trip instead of two, and an index range all the same, the subquery
    /// being run once, before the scan). The subquery sees only the jobs the list may
    /// show, so a job the caller cannot see gives NULL, and NULL no rows.
    Cursor { id: String, org_id: String, user_id: Option<String> },
}

impl Expression for KeysetBound {
    type SqlType = Bool;
}

impl ValidGrouping<()> for KeysetBound {
    type IsAggregate = is_aggregate::Never;
}

impl AppearsOnTable<jobs::table> for KeysetBound {}

impl QueryId for KeysetBound {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB> QueryFragment<DB> for KeysetBound
where
    DB: Backend,
    NaiveDateTime: ToSql<Timestamp, DB>,
    String: ToSql<Text, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql("(jobs.created_at, jobs.id) ");
        out.push_sql(self.op);
        out.push_sql(" (");
        let id = match &self.at {
            Position::Key((at, id)) => {
                out.push_bind_param::<Timestamp, _>(at)?;
                id
            }
            Position::Cursor { id, org_id, user_id } => {
                // Found by its primary key alone, the visibility being a CASE on the row:
                // with the owner's columns in the WHERE, a planner without statistics (a
                // fresh table) walked one of the (org_id, user_id, …, id) indexes instead,
                // and the page cost twice the two-statement one.
                out.push_sql("(SELECT CASE WHEN cursor.org_id = ");
                out.push_bind_param::<Text, _>(org_id)?;
                if let Some(user_id) = user_id {
                    out.push_sql(" AND cursor.user_id = ");
                    out.push_bind_param::<Text, _>(user_id)?;
                }
                out.push_sql(" THEN cursor.created_at END FROM jobs AS cursor WHERE cursor.id = ");
                out.push_bind_param::<Text, _>(id)?;
                out.push_sql(")");
                id
            }
        };
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(id)?;
        out.push_sql(")");
        Ok(())
    }
}

/// A query with `LIMIT n` written into its SQL.
#[derive(Debug, Clone)]
pub(crate) struct Limited<Q> {
    query: Q,
    limit: u32,
}

impl<Q: Query> Query for Limited<Q> {
    type SqlType = Q::SqlType;
}

impl<Q> QueryId for Limited<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: QueryFragment<DB>, DB: Backend> QueryFragment<DB> for Limited<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_sql(&format!(" LIMIT {}", self.limit));
        Ok(())
    }
}

impl<Q, C> RunQueryDsl<C> for Limited<Q> {}

/// The SQL of a list page, for the connection it runs on (its backend is inferred where
/// the query is loaded). Shared by [`list_on`] and the query-plan tests.
macro_rules! list_query {
    ($vis:expr, $q:expr, $before:expr, $after:expr) => {{
        let (vis, q): (&Visibility, &ListQuery) = ($vis, $q);
        let mut query = jobs::table.filter(jobs::org_id.eq(&vis.org_id)).into_boxed();
        if let Some(user) = &vis.user_id {
            query = query.filter(jobs::user_id.eq(user));
        }
        if let Some(statuses) = &q.statuses {
            let names: Vec<&'static str> = statuses.iter().map(|s| s.as_str()).collect();
            // One status is an equality: PostgreSQL 15 reads `= ANY(array)` off an index in
            // no useful order, so it walked all of the caller's jobs rather than sort the
            // matches.
            query = match names.as_slice() {
                [one] => query.filter(jobs::status.eq(*one)),
                _ => query.filter(jobs::status.eq_any(names)),
            };
        }
        if let Some(job_type) = q.job_type {
            query = query.filter(jobs::job_type.eq(job_type.as_str()));
        }
        if let Some(source) = &q.source_id {
            query = query.filter(jobs::source_id.eq(source));
        }
        if let Some(agent) = &q.agent_id {
            query = query.filter(jobs::agent_id.eq(agent));
        }
        if let Some(project) = &q.project_id {
            query = query.filter(jobs::project_id.eq(project));
        }
        if let Some(at) = $before {
            query = query.filter(KeysetBound { op: "<", at });
        }
        if let Some(at) = $after {
            query = query.filter(KeysetBound { op: ">", at });
        }
        query = match q.order {
            Order::Asc => query.order_by((jobs::created_at.asc(), jobs::id.asc())),
            Order::Desc => query.order_by((jobs::created_at.desc(), jobs::id.desc())),
        };
        // One more than the page, to tell whether another follows.
        Limited { query: query.select(JobRow::as_select()), limit: u32::from(q.limit.get()) + 1 }
    }};
}

/// One page of visible jobs on a given connection (shared by `list` and the plan tests).
pub(crate) fn list_on(
    conn: &mut DbConnection,
    vis: &Visibility,
    q: &ListQuery,
) -> StoreResult<Page> {
    let no_status = q.statuses.as_ref().is_some_and(|s| s.is_empty());
    // PostgreSQL, one cursor: its key is read inside the page's statement. A page with jobs
    // in it proves the cursor visible; an empty one is checked the two-statement way, which
    // tells an unknown cursor from the end of the list.
    let one_cursor = q.before.is_some() != q.after.is_some();
    if matches!(conn, DbConnection::Postgres(_)) && one_cursor && !no_status {
        let cursor = |id: Option<JobId>| {
            id.map(|id| Position::Cursor {
                id: id.to_string(),
                org_id: vis.org_id.clone(),
                user_id: vis.user_id.clone(),
            })
        };
        let page = page_on(conn, vis, q, cursor(q.before), cursor(q.after))?;
        if !page.jobs.is_empty() {
            return Ok(page);
        }
    }
    let mut cursor = |id: Option<JobId>, name: &str| -> StoreResult<Option<Position>> {
        let Some(id) = id else { return Ok(None) };
        let row = find(conn, vis, id)?.ok_or_else(|| {
            StoreError::InvalidCursor(format!("{name}: {id} is not one of your jobs"))
        })?;
        Ok(Some(Position::Key((row.created_at.0, row.id))))
    };
    let before = cursor(q.before, "before")?;
    let after = cursor(q.after, "after")?;
    if let (Some(Position::Key(b)), Some(Position::Key(a))) = (&before, &after) {
        if b <= a {
            return Err(StoreError::InvalidCursor("before must be newer than after".into()));
        }
    }
    if no_status {
        return Ok(Page { jobs: Vec::new(), has_more: false });
    }
    page_on(conn, vis, q, before, after)
}

/// The page that starts at these positions.
fn page_on(
    conn: &mut DbConnection,
    vis: &Visibility,
    q: &ListQuery,
    before: Option<Position>,
    after: Option<Position>,
) -> StoreResult<Page> {
    // Each row becomes a job as it is read, into a vector sized for a usual page: collecting
    // the rows first, then the jobs, moved every row twice more (and the growing vector
    // copied them again), 3% of a page of 100 on SQLite.
    let limit = usize::from(q.limit.get());
    let mut jobs = Vec::with_capacity(limit.min(128));
    let mut has_more = false;
    macro_rules! read {
        ($conn:expr) => {
            for row in
                list_query!(vis, q, before, after).load_iter::<JobRow, DefaultLoadingMode>($conn)?
            {
                if jobs.len() == limit {
                    has_more = true;
                    break;
                }
                jobs.push(row?.into_job()?);
            }
        };
    }
    match conn {
        DbConnection::Sqlite(c) => read!(c),
        DbConnection::Postgres(c) => read!(c),
    }
    Ok(Page { jobs, has_more })
}
