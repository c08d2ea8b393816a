//! Change notices across processes (PostgreSQL): every write sends `NOTIFY jobs_changes`
//! with the job id inside its transaction, and each process listens on one connection of
//! its own, so that requests held on one replica wake when another replica changes a job.
//! On SQLite (one process) there is nothing to send or hear.

use diesel::prelude::*;
use diesel::sql_types::Text;
use jobs_domain::{Job, JobId, JobStatus};

use crate::db::{DatabaseUrl, DbConnection};
use crate::store::JobStore;
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
        let mut payload = job.id.to_string();
        if job.status == JobStatus::Pending {
            payload.push_str(" pending");
        }
        diesel::sql_query("SELECT pg_notify('jobs_changes', $1)")
            .bind::<Text, _>(payload)
            .execute(c)?;
    }
    Ok(())
}

fn parse(payload: &str) -> Option<ChangeNotice> {
    let (id, pending) = match payload.split_once(' ') {
        Some((id, "pending")) => (id, true),
        Some(_) => return None,
        None => (payload, false),
    };
    Some(ChangeNotice { job_id: JobId::parse(id).ok()?, pending })
}

/// One process's listening connection (PostgreSQL only).
pub struct ChangeListener {
    conn: diesel::pg::PgConnection,
}

impl std::fmt::Debug for ChangeListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangeListener")
    }
}

impl ChangeListener {
    /// Opens a connection of its own (not one of the pool's) and listens; `None` on SQLite.
    pub fn open(store: &JobStore) -> StoreResult<Option<ChangeListener>> {
        let DatabaseUrl::Postgres(url) = &store.url else { return Ok(None) };
        let mut conn = diesel::pg::PgConnection::establish(url).map_err(|e| {
            StoreError::Unavailable(format!("cannot connect to PostgreSQL: {e}").into())
        })?;
        diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(&mut conn)?;
        Ok(Some(ChangeListener { conn }))
    }

    /// The notices received since the last call (never blocks). An error means the
    /// connection is lost: open a new listener.
    pub fn poll(&mut self) -> StoreResult<Vec<ChangeNotice>> {
        let mut notices = Vec::new();
        for notice in self.conn.notifications_iter() {
            notices.extend(parse(&notice?.payload));
        }
        Ok(notices)
    }
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
