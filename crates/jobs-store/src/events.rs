//! The event log: one row per change, written in the transaction of the change.
//!
//! **Commit order.** A reader that has seen event N and asks for what follows must never
//! miss an event committed later with a smaller id. On SQLite that holds by construction
//! (one writer; AUTOINCREMENT never reuses an id). On PostgreSQL a sequence hands out ids
//! before commit, so a transaction holding id 41 could commit after one holding 42. Ids are
//! therefore drawn *at commit* (migration `event_ids_at_commit`): an event is inserted with
//! a provisional negative id, and a deferred trigger, run by PostgreSQL inside COMMIT,
//! takes one transaction-level advisory lock (the sequencer) and gives the transaction's
//! events their real ids. Event-writing transactions draw ids and commit one at a time, so
//! id order is commit order; what runs one at a time is only the numbering and the commit
//! (no round trip to this process while the lock is held), and a transaction holding the
//! sequencer has finished its statements, so it never waits for a row lock. A transaction
//! that knows its events before it commits (a change, a batch of creates) does better and
//! writes each row once: see [`at_commit`].

use chrono::NaiveDateTime;
use diesel::prelude::*;
use jobs_domain::event::{self, ChangeReason, DeleteReason, EventType, SYSTEM_ACTOR};
use jobs_domain::Job;

use crate::db::DbConnection;
use crate::outbox::{Attempt, Delivery, NextStep};
use crate::rows::JobRow;
use crate::schema::{job_events, jobs};
use crate::sqlite_rows::{Rows, Values};
use crate::stamp::Stamp;
use crate::store::JobStore;

mod at_commit;
pub(crate) use at_commit::{commit_with, transaction_with_events};

/// Who causes the changes a store makes: the token's `sub` (or `system`) and the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventContext {
    /// Recorded as the events' `actor`.
    pub actor: String,
    /// Recorded as the events' `request_id`.
    pub request_id: Option<String>,
}

impl EventContext {
    /// A caller's context.
    pub fn new(actor: impl Into<String>, request_id: Option<String>) -> EventContext {
        EventContext { actor: actor.into(), request_id }
    }

    /// The server's own changes (the sweeper, the dispatcher).
    pub fn system() -> EventContext {
        EventContext { actor: SYSTEM_ACTOR.to_owned(), request_id: None }
    }
}

impl Default for EventContext {
    fn default() -> Self {
        EventContext::system()
    }
}

/// Why a change is made, for its event.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cause<'a> {
    pub cx: &'a EventContext,
    pub reason: ChangeReason,
}

impl JobStore {
    /// The same store, recording `cx` as the actor and request of the events it writes.
    pub fn acting(&self, cx: EventContext) -> JobStore {
        let mut store = self.clone();
        store.context = cx;
        store
    }
}

/// An event row about to be written. `None` is written as NULL, never as `DEFAULT`, so that
/// many rows go in one multi-row INSERT on both backends.
#[derive(Insertable)]
#[diesel(table_name = job_events, treat_none_as_default_value = false)]
pub(crate) struct NewEvent<'a> {
    job_id: String,
    org_id: &'a str,
    user_id: &'a str,
    job_type: &'a str,
    agent_id: Option<&'a str>,
    event_type: &'static str,
    at: Stamp,
    actor: &'a str,
    request_id: Option<&'a str>,
    data: String,
}

impl<'a> NewEvent<'a> {
    fn new(
        cx: &'a EventContext,
        job: &'a Job,
        at: NaiveDateTime,
        (ty, data): (EventType, serde_json::Value),
    ) -> NewEvent<'a> {
        NewEvent {
            job_id: job.id.to_string(),
            org_id: &job.owner.org_id,
            user_id: &job.owner.user_id,
            job_type: job.job_type.as_str(),
            agent_id: job.agent_id.as_deref(),
            event_type: ty.as_str(),
            at: Stamp(at),
            actor: &cx.actor,
            request_id: cx.request_id.as_deref(),
            data: data.to_string(),
        }
    }
}

/// Many events in one statement on PostgreSQL: one array per column, `unnest`ed, inserted
/// in their order (their ids, drawn at commit, follow it).
const INSERT_POSTGRES: &str = "INSERT INTO job_events (job_id, org_id, user_id, job_type, \
    agent_id, event_type, at, actor, request_id, data) \
    SELECT job_id, org_id, user_id, job_type, agent_id, event_type, at, actor, request_id, data \
    FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) WITH ORDINALITY \
    AS e (job_id, org_id, user_id, job_type, agent_id, event_type, at, actor, request_id, data, n) \
    ORDER BY n";

/// Many events in one statement on SQLite, a `VALUES` list ([`crate::sqlite_rows`]).
const INSERT_SQLITE: &str = "INSERT INTO job_events (job_id, org_id, user_id, job_type, \
    agent_id, event_type, at, actor, request_id, data) VALUES ";

fn bind_event<'b>(e: &'b NewEvent<'_>, values: &mut Values<'_, '_, 'b>) -> QueryResult<()> {
    use diesel::sql_types::{Nullable, Text, Timestamp};
    values
        .bind::<Text, _>(&e.job_id)?
        .bind::<Text, _>(e.org_id)?
        .bind::<Text, _>(e.user_id)?
        .bind::<Text, _>(e.job_type)?
        .bind::<Nullable<Text>, _>(&e.agent_id)?
        .bind::<Text, _>(e.event_type)?
        .bind::<Timestamp, _>(&e.at)?
        .bind::<Text, _>(e.actor)?
        .bind::<Nullable<Text>, _>(&e.request_id)?
        .bind::<Text, _>(&e.data)?;
    Ok(())
}

/// Writes events (inside the caller's transaction), in order: one as a plain INSERT, many
/// in multi-row statements.
pub(crate) fn insert(
    conn: &mut DbConnection,
    events: &[NewEvent<'_>],
) -> Result<(), diesel::result::Error> {
    // On PostgreSQL each row's real id is drawn at commit, under the sequencer (see the
    // module documentation), however many rows one INSERT writes; the same transaction's
    // change notices tell other replicas.
    use crate::db::column;
    use diesel::sql_types::{Array, Nullable, Text, Timestamp};
    match (conn, events) {
        (_, []) => {}
        (conn, [one]) => {
            diesel::insert_into(job_events::table).values(one).execute(conn)?;
        }
        (DbConnection::Postgres(c), many) => {
            diesel::sql_query(INSERT_POSTGRES)
                .bind::<Array<Text>, _>(column(many, |e| e.job_id.as_str()))
                .bind::<Array<Text>, _>(column(many, |e| e.org_id))
                .bind::<Array<Text>, _>(column(many, |e| e.user_id))
                .bind::<Array<Text>, _>(column(many, |e| e.job_type))
                .bind::<Array<Nullable<Text>>, _>(column(many, |e| e.agent_id))
                .bind::<Array<Text>, _>(column(many, |e| e.event_type))
                .bind::<Array<Timestamp>, _>(column(many, |e| e.at))
                .bind::<Array<Text>, _>(column(many, |e| e.actor))
                .bind::<Array<Nullable<Text>>, _>(column(many, |e| e.request_id))
                .bind::<Array<Text>, _>(column(many, |e| e.data.as_str()))
                .execute(c)?;
        }
        (DbConnection::Sqlite(c), many) => {
            for statement in Rows::chunks(INSERT_SQLITE, many, bind_event, "") {
                statement.execute(c)?;
            }
        }
    }
    Ok(())
}

/// Writes one event about `job` (inside the caller's transaction).
fn record(
    conn: &mut DbConnection,
    cx: &EventContext,
    job: &Job,
    at: NaiveDateTime,
    what: (EventType, serde_json::Value),
) -> Result<(), diesel::result::Error> {
    insert(conn, &[NewEvent::new(cx, job, at, what)])
}

/// The `job.created` events of a batch of new jobs, in order.
pub(crate) fn created_all<'a>(jobs: &[(&'a Job, &'a EventContext)]) -> Vec<NewEvent<'a>> {
    jobs.iter()
        .map(|(job, cx)| NewEvent::new(cx, job, job.created_at.naive_utc(), event::created(job)))
        .collect()
}

/// The `job.status_changed` or `job.updated` event of a change from `before` to `after`;
/// `None` when nothing the history shows changed (a lease renewal).
pub(crate) fn change_event<'a>(
    cause: Cause<'a>,
    before: &Job,
    after: &'a Job,
) -> Option<NewEvent<'a>> {
    let what = event::changed(before, after, cause.reason);
    if what.0 == EventType::JobUpdated && what.1["fields"].as_array().is_some_and(Vec::is_empty) {
        return None;
    }
    Some(NewEvent::new(cause.cx, after, after.updated_at.naive_utc(), what))
}

/// The events of many changes of one cause, `(before, after)`, in multi-row INSERTs: the
/// same rows, in the same order, as [`change_event`] gives for each change.
pub(crate) fn changed_all<'a>(
    conn: &mut DbConnection,
    cause: Cause<'a>,
    changes: impl IntoIterator<Item = (&'a Job, &'a Job)>,
) -> Result<(), diesel::result::Error> {
    let events: Vec<NewEvent<'a>> = changes
        .into_iter()
        .filter_map(|(before, after)| change_event(cause, before, after))
        .collect();
    insert(conn, &events)
}

/// `job.deleted`: the job's other events go with it.
pub(crate) fn deleted(
    conn: &mut DbConnection,
    cx: &EventContext,
    job: &Job,
    at: chrono::DateTime<chrono::Utc>,
    reason: DeleteReason,
) -> Result<(), diesel::result::Error> {
    diesel::delete(job_events::table.filter(job_events::job_id.eq(job.id.to_string())))
        .execute(conn)?;
    record(conn, cx, job, at.naive_utc(), event::deleted(reason))
}

/// Retention: `job.deleted` (reason `retention`) for each of these jobs, about to be purged.
pub(crate) fn purged(
    conn: &mut DbConnection,
    ids: &[String],
    at: chrono::DateTime<chrono::Utc>,
) -> crate::StoreResult<()> {
    let rows: Vec<JobRow> =
        jobs::table.filter(jobs::id.eq_any(ids)).select(JobRow::as_select()).load(conn)?;
    let cx = EventContext::system();
    for row in rows {
        let job = row.into_job()?;
        crate::changes::notify(conn, &job)?;
        deleted(conn, &cx, &job, at, DeleteReason::Retention)?;
    }
    Ok(())
}

/// `webhook.attempted`, by the dispatcher.
pub(crate) fn webhook_attempted(
    conn: &mut DbConnection,
    delivery: &Delivery,
    attempt: &Attempt,
    next: NextStep,
) -> crate::StoreResult<()> {
    let row: Option<JobRow> =
        jobs::table.find(&delivery.job_id).select(JobRow::as_select()).first(conn).optional()?;
    let Some(row) = row else { return Ok(()) };
    let next_attempt_at = match next {
        NextStep::RetryAt(at) => Some(at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
        NextStep::Delivered | NextStep::GiveUp => None,
    };
    let data = serde_json::json!({
        "attempt": delivery.attempts + 1,
        "status_code": attempt.status_code,
        "error": attempt.error,
        "duration_ms": attempt.duration_ms,
        "next_attempt_at": next_attempt_at,
    });
    let (at, job) = (attempt.at.naive_utc(), row.into_job()?);
    // The job's callback fields (and its ETag) changed.
    crate::changes::notify(conn, &job)?;
    record(conn, &EventContext::system(), &job, at, (EventType::WebhookAttempted, data))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobs_domain::{JobId, NewJob, Owner};

    #[test]
    fn many_events_are_written_column_for_column_by_the_multi_row_insert() {
        use jobs_domain::{JobType, Label};
        let db = crate::test_db::TestDatabase::new();
        let url = crate::DatabaseUrl::parse(db.url()).unwrap();
        let store = JobStore::open(&url, &crate::PoolOptions::default()).unwrap();
        let at = jobs_domain::now();
        let new = NewJob::default()
            .with_job_type(JobType::Batch)
            .with_agent_id(Label::parse("agent_id", "agent-1").unwrap());
        let job = Job::create(JobId::generate(), Owner::new("org-1", "user-1", None), new, at);
        let plain = Job::create(
            JobId::generate(),
            Owner::new("org-2", "user-2", None),
            NewJob::default(),
            at,
        );
        let cx = EventContext::new("actor-1", Some("request-1".into()));
        let system = EventContext::system();
        let events = vec![
            NewEvent::new(&cx, &job, at.naive_utc(), event::created(&job)),
            NewEvent::new(&system, &plain, at.naive_utc(), event::created(&plain)),
            NewEvent::new(&cx, &job, at.naive_utc(), event::created(&job)),
        ];
        let mut conn = store.conn().unwrap();
        insert(&mut conn, &events).unwrap();
        type Read =
            (String, String, String, String, Option<String>, String, String, Option<String>);
        let rows: Vec<Read> = job_events::table
            .order_by(job_events::id)
            .select((
                job_events::job_id,
                job_events::org_id,
                job_events::user_id,
                job_events::job_type,
                job_events::agent_id,
                job_events::event_type,
                job_events::actor,
                job_events::request_id,
            ))
            .load(&mut *conn)
            .unwrap();
        let (id, other) = (job.id.to_string(), plain.id.to_string());
        let first = (id, "org-1", "user-1", "batch", Some("agent-1"), "job.created", "actor-1");
        let second = (other, "org-2", "user-2", "job", None, "job.created", SYSTEM_ACTOR);
        fn read(r: &Read) -> (String, &str, &str, &str, Option<&str>, &str, &str) {
            let (a, b, c, d, e, f, g, _) = r;
            (a.clone(), b.as_str(), c.as_str(), d.as_str(), e.as_deref(), f.as_str(), g.as_str())
        }
        assert_eq!(rows.iter().map(read).collect::<Vec<_>>(), [first.clone(), second, first]);
        let requests: Vec<Option<&str>> = rows.iter().map(|r| r.7.as_deref()).collect();
        assert_eq!(requests, [Some("request-1"), None, Some("request-1")]);
        let data: Vec<String> = job_events::table
            .order_by(job_events::id)
            .select(job_events::data)
            .load(&mut *conn)
            .unwrap();
        let written: Vec<String> = events.iter().map(|e| e.data.clone()).collect();
        assert_eq!(data, written);
    }
}
