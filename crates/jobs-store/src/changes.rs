//! Change notices across processes (PostgreSQL): every write sends `NOTIFY jobs_changes`
//! with the job id inside its transaction, and each process listens on one connection of
//! its own, so that requests held on one replica, and its change streams, wake when
//! another replica changes a job (or writes an event). On SQLite (one process) there is
//! nothing to send or hear.

use diesel::prelude::*;
use diesel::sql_types::Text;
use jobs_domain::{Job, JobId, JobStatus};

use crate::db::{DatabaseUrl, DbConnection};
use crate::{StoreError, StoreResult};

/// The channel the notices go on.
pub const CHANNEL: &str = "jobs_changes";

/// What one notice says: this job changed, and whether it is pending now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeNotice {
    /// The job.
    pub job_id: JobId,
    /// Whether it became (or is) pending: claimers should look.
    pub pending: bool,
}

/// Sends the notice of a change of `job` (or its deletion) on `conn`, in the caller's
/// transaction when there is one: PostgreSQL delivers it when that commits.
pub(crate) fn notify(conn: &mut DbConnection, job: &Job) -> QueryResult<()> {
    if let DbConnection::Postgres(c) = conn {
        diesel::sql_query("SELECT pg_notify('jobs_changes', $1)")
            .bind::<Text, _>(payload(job))
            .execute(c)?;
    }
    Ok(())
}

/// [`notify`] for each of these jobs, in one statement: the same notices, one per job (a
/// listener wakes the requests held on each job it names).
pub(crate) fn notify_all<'a>(
    conn: &mut DbConnection,
    jobs: impl IntoIterator<Item = &'a Job>,
) -> QueryResult<()> {
    if let DbConnection::Postgres(c) = conn {
        let payloads: Vec<String> = jobs.into_iter().map(payload).collect();
        if !payloads.is_empty() {
            diesel::sql_query("SELECT pg_notify('jobs_changes', p) FROM unnest($1) AS p")
                .bind::<diesel::sql_types::Array<Text>, _>(payloads)
                .execute(c)?;
        }
    }
    Ok(())
}

/// What a notice about `job` says (see [`parse`]).
fn payload(job: &Job) -> String {
    let mut payload = job.id.to_string();
    if job.status == JobStatus::Pending {
        payload.push_str(" pending");
    }
    payload
}

fn parse(payload: &str) -> Option<ChangeNotice> {
    let (id, pending) = match payload.split_once(' ') {
        Some((id, "pending")) => (id, true),
        Some(_) => return None,
        None => (payload, false),
    };
    Some(ChangeNotice { job_id: JobId::parse(id).ok()?, pending })
}

/// How often the listener looks for notices that arrived (diesel offers no wait on its
/// socket; a look is one non-blocking read).
const LISTEN_POLL: std::time::Duration = std::time::Duration::from_millis(20);
/// How often the listener proves its connection still works.
const LISTEN_PING: std::time::Duration = std::time::Duration::from_secs(5);

/// PostgreSQL: listens on a connection of its own (not one of the pool's) for the notices
/// of every replica and hands each batch to `on_notices`, until the connection fails (an
/// error: listen again) or `stop` returns true. Blocks: run it on a thread of its own. On
/// SQLite there is nothing to listen to: returns at once.
///
/// Notices sent while nobody listened are lost: `on_notices` is first called with an empty
/// batch once the connection listens, so that the caller looks at the table again.
pub fn listen(
    url: &DatabaseUrl,
    on_notices: &dyn Fn(&[ChangeNotice]),
    stop: &dyn Fn() -> bool,
) -> StoreResult<()> {
    use diesel::connection::SimpleConnection;
    let DatabaseUrl::Postgres(raw) = url else { return Ok(()) };
    let mut conn = diesel::pg::PgConnection::establish(raw).map_err(|e| {
        StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}").into())
    })?;
    conn.batch_execute(&format!("LISTEN {CHANNEL}"))?;
    on_notices(&[]);
    let mut pinged = std::time::Instant::now();
    while !stop() {
        let mut notices = Vec::new();
        for notice in conn.notifications_iter() {
            notices.extend(parse(&notice?.payload));
        }
        if !notices.is_empty() {
            on_notices(&notices);
        }
        if pinged.elapsed() >= LISTEN_PING {
            conn.batch_execute("SELECT 1")?;
            pinged = std::time::Instant::now();
        }
        std::thread::sleep(LISTEN_POLL);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_names_the_job_and_whether_it_is_pending() {
        let id = JobId::generate();
        assert_eq!(parse(&id.to_string()), Some(ChangeNotice { job_id: id, pending: false }));
        assert_eq!(
            parse(&format!("{id} pending")),
            Some(ChangeNotice { job_id: id, pending: true })
        );
        assert_eq!(parse("nonsense"), None);
        assert_eq!(parse(&format!("{id} other")), None);
    }
}
