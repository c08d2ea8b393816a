//! The same plan checks on PostgreSQL, with table statistics from a realistic skew. They
//! run when `JOBS_TEST_DATABASE_URL` names a server (CI's PostgreSQL pass) and do nothing on
//! a SQLite run.

use super::*;

#[derive(QueryableByName)]
struct PgPlanLine {
    #[diesel(sql_type = Text, column_name = "QUERY PLAN")]
    line: String,
}

/// What carol has a few of: rare in the organisation, for the organisation-wide lists.
const CAROLS: Values = Values {
    status: "failed",
    statuses: "failed,cancelled",
    job_type: "run",
    folder: "src-2",
    agent: "agent-2",
    project: "p2",
};

/// In organisation `acme`: ann, the caller, owns 30 000 jobs with no agent, folder or
/// project; bob owns 30 000 running batch jobs of agent-1 in src-1 and project p (all of
/// [`BOBS`]); carol owns 30 failed run jobs of agent-2 in src-2 and project p2. Then ANALYZE,
/// so the planner chooses with real statistics.
const SKEW: &str = "
    INSERT INTO jobs (id, org_id, user_id, project_id, status, job_type, background, agent_id,
                      source_id, metadata, created_at, updated_at, version)
    SELECT 'job-' || gen_random_uuid(), 'acme', u.owner, u.project, u.status, u.job_type,
           false, u.agent, u.folder, '{}',
           TIMESTAMP '2026-01-01' + n * INTERVAL '1 millisecond',
           TIMESTAMP '2026-01-01' + n * INTERVAL '1 millisecond', 1
    FROM (VALUES ('ann', NULL, 'completed', 'job', NULL, NULL, 30000),
                 ('bob', 'p', 'running', 'batch', 'agent-1', 'src-1', 30000),
                 ('carol', 'p2', 'failed', 'run', 'agent-2', 'src-2', 30))
         AS u (owner, project, status, job_type, agent, folder, jobs),
         generate_series(1, u.jobs) AS n;
    ANALYZE jobs;";

/// `EXPLAIN` of a statement as diesel sent it (`SQL -- binds: [...]`): prepared as it is,
/// executed with its own values, so the plan is the custom plan the store gets (it sends
/// every list as an unnamed statement, planned with its values).
fn pg_plan(conn: &mut DbConnection, sent: &str) -> Vec<String> {
    let (sql, binds) = sent.split_once(" -- binds: ").unwrap();
    conn.batch_execute(&format!("PREPARE plan_check AS {sql}")).unwrap();
    let explain = format!("EXPLAIN EXECUTE plan_check({})", sql_literals(binds).join(", "));
    let lines = diesel::sql_query(explain).load::<PgPlanLine>(conn).unwrap();
    conn.batch_execute("DEALLOCATE plan_check").unwrap();
    lines.into_iter().map(|l| l.line).collect()
}

/// The values of diesel's debug bind list (`["acme", ["a", "b"], 2026-01-01T00:00:00, 101]`)
/// as SQL literals of unknown type, which PostgreSQL reads as the parameter's type.
fn sql_literals(binds: &str) -> Vec<String> {
    let inner = binds.trim().strip_prefix('[').and_then(|b| b.strip_suffix(']')).unwrap();
    assert!(!inner.contains(['\\', '\'']), "bind values too odd to quote: {binds}");
    let mut literals = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let end = match rest.as_bytes()[0] {
            b'[' => rest.find(']').unwrap() + 1,
            b'"' => rest[1..].find('"').unwrap() + 2,
            _ => rest.find(", ").unwrap_or(rest.len()),
        };
        let value = &rest[..end];
        literals.push(match value.strip_prefix('[') {
            Some(list) => format!("'{{{}}}'", list.trim_end_matches(']').replace(['"', ' '], "")),
            None => format!("'{}'", value.trim_matches('"')),
        });
        rest = rest[end..].trim_start_matches(", ").trim();
    }
    literals
}

/// The page's plan reads no table from end to end, and its index condition starts with the
/// visibility columns, then one of the filter columns:
/// `Index Cond: ((org_id = 'acme') AND (user_id = 'ann') AND (agent_id = 'agent-1') …)`.
/// Several statuses may instead walk the caller's own jobs in order (see the SQLite test).
fn assert_pg_seeks_visibility_then_filter(lines: &[String], case: &Case) {
    let what = &case.what;
    assert!(!lines.iter().any(|l| l.contains("Seq Scan")), "{what}: a scan: {lines:#?}");
    // The page's own scans; a cursor's key, read by a subquery of the page's statement, is
    // one primary-key lookup (`jobs_pkey on jobs cursor`), checked on its own.
    let mut conds = Vec::new();
    let mut in_cursor = false;
    for line in lines {
        if line.contains("Scan") {
            in_cursor = line.contains(" on jobs cursor");
            if in_cursor {
                assert!(line.contains("jobs_pkey"), "{what}: the cursor is not found by id");
            }
        } else if let Some(cond) = line.trim().strip_prefix("Index Cond: ") {
            if !in_cursor {
                conds.push(cond);
            }
        }
    }
    assert!(!conds.is_empty(), "{what}: no index condition: {lines:#?}");
    for cond in &conds {
        let leading = cond.trim_start_matches('(').starts_with("org_id = 'acme'::text)");
        assert!(leading, "{what}: the index does not start with org_id: {lines:#?}");
        let mut expected = Vec::new();
        if case.vis.user_id.is_some() {
            expected.push(vec!["user_id"]);
        }
        if !case.columns.is_empty() && !case.multi_status {
            expected.push(case.columns.clone());
        }
        let mut at = 0;
        for columns in expected {
            let next = columns.iter().filter_map(|c| cond[at..].find(&format!("({c} = "))).min();
            let Some(next) = next else {
                panic!("{what}: the index condition has no {columns:?} after {at}: {lines:#?}");
            };
            at += next + 1;
        }
    }
}

#[test]
fn on_postgres_the_list_queries_seek_the_callers_visibility_then_the_filter() {
    let admin = std::env::var(test_db::DATABASE_ENV).unwrap_or_default();
    if admin.is_empty() {
        return; // a SQLite run: the SQLite plans are checked above
    }
    let db = test_db::TestDatabase::postgres(&admin);
    let url = DatabaseUrl::Postgres(db.url().to_owned());
    let store = JobStore::open(&url, &PoolOptions::default()).unwrap();
    let mut conn = store.conn().unwrap();
    conn.batch_execute(SKEW).unwrap();
    // Two of ann's jobs, a third and two thirds of the way through hers, as cursors.
    let cursor = |n: i64| -> String {
        jobs::table
            .filter(jobs::user_id.eq("ann"))
            .order_by((jobs::created_at, jobs::id))
            .offset(n)
            .select(jobs::id)
            .first(&mut *store.conn().unwrap())
            .unwrap()
    };
    let (older, newer) = (cursor(10_000), cursor(20_000));
    let mut checked = 0;
    let user = cases(&Visibility::user("acme", "ann"), &BOBS, &older, &newer);
    let org = cases(&Visibility::organization("acme"), &CAROLS, &older, &newer);
    for case in user.iter().chain(&org) {
        let sent = captured_queries(&mut conn, |c| {
            list_on(c, &case.vis, &case.q).unwrap();
        });
        for statement in &sent {
            let lines = pg_plan(&mut conn, statement);
            if statement.contains("ORDER BY") {
                assert_pg_seeks_visibility_then_filter(&lines, case);
                if statement.contains("(jobs.created_at, jobs.id)") && !case.multi_status {
                    assert!(
                        lines.iter().any(|l| l.contains("Index Cond") && l.contains("ROW(")),
                        "{}: the cursor is not part of the index seek: {lines:#?}",
                        case.what
                    );
                }
            } else {
                assert!(!lines.iter().any(|l| l.contains("Seq Scan")), "{lines:#?}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 128, "only {checked} statements checked");
}
