//! Query-plan tests: each list a caller can ask for is one index seek that starts with the
//! caller's visibility and then the filter (a filter costs in proportion to the
//! caller's own matching jobs, never to other users' jobs). SQLite always; PostgreSQL too
//! when `JOBS_TEST_DATABASE_URL` names a server.

use std::sync::{Arc, Mutex};

use super::list::list_on;
use super::*;
use diesel::connection::{Instrumentation, InstrumentationEvent, SimpleConnection};
use diesel::sql_types::Text;
use jobs_domain::{ListDefaults, ListQuery, NewJob, Owner};

mod postgres;

use crate::test_db;

#[derive(QueryableByName)]
struct PlanLine {
    #[diesel(sql_type = Text)]
    detail: String,
}

/// The values the filters ask for.
struct Values {
    status: &'static str,
    statuses: &'static str,
    job_type: &'static str,
    folder: &'static str,
    agent: &'static str,
    project: &'static str,
}

/// What bob, the other user of the PostgreSQL test, has thousands of.
const BOBS: Values = Values {
    status: "running",
    statuses: "running,failed",
    job_type: "batch",
    folder: "src-1",
    agent: "agent-1",
    project: "p",
};

/// A list's query parameters, and the column its index must seek right after the
/// visibility columns (`None`: no filter, the visibility columns alone).
type Filter = (Vec<(&'static str, &'static str)>, Option<&'static str>);

/// The list filters.
fn filters(v: &Values) -> [Filter; 8] {
    [
        (vec![], None),
        (vec![("order", "asc")], None),
        (vec![("status", v.status)], Some("status")),
        (vec![("status", v.statuses)], Some("status")),
        (vec![("active", "true")], Some("status")),
        (vec![("job_type", v.job_type)], Some("job_type")),
        (vec![("folder_id", v.folder)], Some("source_id")),
        (vec![("agent_id", v.agent)], Some("agent_id")),
    ]
}

/// One list request whose plan is checked.
struct Case {
    what: String,
    vis: Visibility,
    q: ListQuery,
    /// The filter columns (with `project_id` for `X-Project-Id`): the seek must continue
    /// with one of them right after the visibility columns.
    columns: Vec<&'static str>,
    /// Several statuses: an index on status cannot return them in (created_at, id) order,
    /// so the planner may walk the caller's own jobs in order instead of sorting.
    multi_status: bool,
    /// Both `before` and `after`.
    range: bool,
}

/// Every filter, with and without `X-Project-Id`, with no cursor, `before`, `after` and
/// both (`older` before `newer`), for `vis`.
fn cases(vis: &Visibility, v: &Values, older: &str, newer: &str) -> Vec<Case> {
    let cursors = [
        vec![],
        vec![("before", newer)],
        vec![("after", older)],
        vec![("after", older), ("before", newer)],
    ];
    let mut cases = Vec::new();
    for (filter, column) in filters(v) {
        for cursor in &cursors {
            for project in [None, Some(v.project)] {
                let pairs =
                    filter.iter().chain(cursor).map(|(k, v)| (k.to_string(), v.to_string()));
                let mut q = ListQuery::from_pairs(pairs, ListDefaults::LIST).unwrap();
                q.project_id = project.map(str::to_owned);
                let mut columns: Vec<&'static str> = column.into_iter().collect();
                columns.extend(project.map(|_| "project_id"));
                cases.push(Case {
                    what: format!("{vis:?} {filter:?} {cursor:?} project {project:?}"),
                    vis: vis.clone(),
                    multi_status: q.statuses.as_ref().is_some_and(|s| s.len() > 1),
                    range: cursor.len() == 2,
                    q,
                    columns,
                });
            }
        }
    }
    cases
}

fn store() -> (tempfile::TempDir, JobStore) {
    let dir = tempfile::tempdir().unwrap();
    let url = DatabaseUrl::Sqlite(dir.path().join("jobs.db"));
    let store = JobStore::open(&url, &PoolOptions::default()).unwrap();
    (dir, store)
}

/// Runs `f` on a connection and returns the SQL it sent, as diesel sent it: the statement,
/// then ` -- binds: [...]`.
fn captured_queries(conn: &mut DbConnection, f: impl FnOnce(&mut DbConnection)) -> Vec<String> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
        if let InstrumentationEvent::StartQuery { query, .. } = event {
            sink.lock().unwrap().push(query.to_string());
        }
    });
    f(conn);
    conn.set_instrumentation(Option::<Box<dyn Instrumentation>>::None);
    let sql = seen.lock().unwrap().clone();
    sql
}

/// The statements `f` sent, without their binds.
pub(crate) fn captured_sql(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection),
) -> Vec<String> {
    captured_queries(conn, f)
        .iter()
        .map(|q| q.split("-- binds").next().unwrap_or("").to_owned())
        .collect()
}

pub(crate) fn plan(conn: &mut DbConnection, sql: &str) -> Vec<String> {
    diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
        .load::<PlanLine>(conn)
        .unwrap()
        .into_iter()
        .map(|l| l.detail)
        .collect()
}

fn assert_indexed(lines: &[String], what: &str) {
    assert!(!lines.is_empty(), "{what}: no plan");
    for line in lines.iter().filter(|l| l.contains("jobs")) {
        assert!(
            line.starts_with("SEARCH") && line.contains("INDEX"),
            "{what} does not use an index: {lines:?}"
        );
    }
}

/// The page's SQLite plan seeks the visibility columns, then one of the filter columns: for a
/// user `(org_id=? AND user_id=? AND agent_id=? …)`, organisation-wide
/// `(org_id=? AND agent_id=? …)`.
///
/// Two cases may seek the visibility columns alone and walk the caller's jobs in
/// (created_at, id) order instead, still never reading another user's jobs: several
/// statuses (the status index would need a sort), and a range between two cursors (without
/// ANALYZE statistics SQLite estimates any two-sided range at a handful of rows, so it
/// takes the narrowest index that has one).
fn assert_seeks_visibility_then_filter(lines: &[String], case: &Case) {
    let prefix = match case.vis.user_id {
        Some(_) => "(org_id=? AND user_id=?",
        None => "(org_id=?",
    };
    let strict = !case.multi_status && !case.range;
    let seeks = |line: &String| {
        line.starts_with("SEARCH jobs USING")
            && if case.columns.is_empty() || !strict {
                line.contains(prefix)
            } else {
                case.columns.iter().any(|c| line.contains(&format!("{prefix} AND {c}=?")))
            }
    };
    assert!(
        lines.iter().any(seeks),
        "{}: the seek does not start with {prefix} and one of {:?}: {lines:?}",
        case.what,
        case.columns
    );
}

#[test]
fn the_list_queries_seek_an_index_instead_of_scanning_the_table() {
    let (_dir, store) = store();
    let owner = Owner::new("org", "ann", Some("p".into()));
    let a = store.create(owner.clone(), NewJob::default(), None).unwrap().job.id.to_string();
    let b = store.create(owner, NewJob::default(), None).unwrap().job.id.to_string();
    let mut conn = store.conn().unwrap();
    let mut checked = 0;
    for vis in [Visibility::user("org", "ann"), Visibility::organization("org")] {
        for case in cases(&vis, &BOBS, &a, &b) {
            let sql = captured_sql(&mut conn, |c| {
                list_on(c, &case.vis, &case.q).unwrap();
            });
            for statement in &sql {
                let lines = plan(&mut conn, statement);
                assert_indexed(&lines, &case.what);
                // The page itself (not a cursor's lookup by id) seeks the caller's
                // visibility, then the filter.
                if statement.contains("ORDER BY") {
                    assert_seeks_visibility_then_filter(&lines, &case);
                }
                // With a cursor and no multi-status filter, the seek itself is on the
                // (created_at, id) row value: no walk over ties.
                if statement.contains("(jobs.created_at, jobs.id)") && !case.multi_status {
                    assert!(
                        lines.iter().any(|l| l.contains("(created_at,id)")),
                        "{}: the cursor is not part of the index seek: {lines:?}",
                        case.what
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 128, "only {checked} statements checked");
}

#[test]
fn getting_one_job_seeks_the_primary_key() {
    let (_dir, store) = store();
    let id = store.create(Owner::new("org", "ann", None), NewJob::default(), None).unwrap().job.id;
    let mut conn = store.conn().unwrap();
    for vis in [Visibility::user("org", "ann"), Visibility::organization("org")] {
        let sql = captured_sql(&mut conn, |c| {
            find(c, &vis, id).unwrap().unwrap();
        });
        assert_eq!(sql.len(), 1);
        assert_indexed(&plan(&mut conn, &sql[0]), "get");
    }
}

#[test]
fn a_repeated_page_or_job_read_is_prepared_once_and_then_served_from_the_statement_cache() {
    let (_dir, store) = store();
    let owner = Owner::new("org", "ann", None);
    let ids: Vec<JobId> = (0..3)
        .map(|_| store.create(owner.clone(), NewJob::default(), None).unwrap().job.id)
        .collect();
    let vis = Visibility::user("org", "ann");
    let newest = ids[2].to_string();
    let queries: Vec<ListQuery> = [vec![], vec![("before", newest.as_str())], vec![("limit", "2")]]
        .into_iter()
        .map(|pairs| {
            let pairs = pairs.into_iter().map(|(k, v)| (k.to_string(), v.to_string()));
            ListQuery::from_pairs(pairs, ListDefaults::LIST).unwrap()
        })
        .collect();
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    let mut conn = store.conn().unwrap();
    conn.set_instrumentation(move |event: InstrumentationEvent<'_>| match event {
        InstrumentationEvent::StartQuery { query, .. } => {
            let sql = query.to_string();
            sink.lock().unwrap().push(("start", sql.split("-- binds").next().unwrap().to_owned()));
        }
        InstrumentationEvent::CacheQuery { sql, .. } => {
            sink.lock().unwrap().push(("cache", sql.to_owned()));
        }
        _ => {}
    });
    for _ in 0..3 {
        for q in &queries {
            list_on(&mut conn, &vis, q).unwrap();
        }
        find(&mut conn, &vis, ids[0]).unwrap().unwrap();
    }
    conn.set_instrumentation(Option::<Box<dyn Instrumentation>>::None);
    let events = events.lock().unwrap().clone();
    let started: std::collections::BTreeSet<&str> =
        events.iter().filter(|(kind, _)| *kind == "start").map(|(_, sql)| sql.trim()).collect();
    let cached: Vec<&str> =
        events.iter().filter(|(kind, _)| *kind == "cache").map(|(_, sql)| sql.trim()).collect();
    // Three list shapes, two page sizes among them, and the read by id.
    assert_eq!(started.len(), 4, "{started:#?}");
    for sql in &started {
        assert_eq!(cached.iter().filter(|c| c == &sql).count(), 1, "not cached once: {sql}");
        // A bound LIMIT makes SQLite plan the statement again whenever it is rebound.
        assert!(!sql.contains("LIMIT ?") && !sql.contains("LIMIT $"), "{sql}");
    }
}
