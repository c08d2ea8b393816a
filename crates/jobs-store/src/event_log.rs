//! Reading the event log: a job's history, and the tail that change streams follow.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use jobs_domain::event::{Event, EventType};
use jobs_domain::{Job, JobId, JobType, Visibility};

use crate::rows::JobRow;
use crate::schema::{event_horizon, job_events, jobs};
use crate::store::{find, JobStore};
use crate::{StoreError, StoreResult};

/// How long a `job.deleted` event outlives its job, so that a resuming stream learns of
/// the deletion.
pub const DELETED_EVENTS_KEPT: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// `job.deleted` events older than this are purged (now minus [`DELETED_EVENTS_KEPT`]), by
/// the system clock; the sweeper uses its store's clock.
pub fn deleted_events_cutoff() -> DateTime<Utc> {
    jobs_domain::now() - DELETED_EVENTS_KEPT
}

/// Which events a stream wants, besides the caller's visibility.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EventFilter {
    /// Only these jobs (any when empty).
    pub job_ids: Vec<JobId>,
    /// Only jobs of this type.
    pub job_type: Option<JobType>,
    /// Only jobs of this agent.
    pub agent_id: Option<String>,
    /// Only these event types (any when empty).
    pub types: Vec<EventType>,
}

impl EventFilter {
    /// Whether `vis` may see this event and the filter wants it: the rule of
    /// [`JobStore::events_after`]'s query, for events already in memory (a process reads the
    /// log once and hands each event to the streams that want it).
    pub fn matches(&self, vis: &Visibility, item: &EventWithJob) -> bool {
        let (event, subject) = (&item.event, &item.subject);
        vis.can_see_user(&subject.org_id, &subject.user_id)
            && (self.job_ids.is_empty() || self.job_ids.contains(&event.job_id))
            && self.job_type.is_none_or(|t| t.as_str() == subject.job_type)
            && self.agent_id.as_ref().is_none_or(|a| subject.agent_id.as_ref() == Some(a))
            && (self.types.is_empty() || self.types.contains(&event.event_type))
    }
}

/// An event and its job as it is now (`None` once deleted).
#[derive(Clone, Debug, PartialEq)]
pub struct EventWithJob {
    /// The event.
    pub event: Event,
    /// Whose job it is about, as recorded with the event (it outlives the job).
    pub subject: EventSubject,
    /// The job, if it still exists.
    pub job: Option<Job>,
}

/// The owner, type and agent of the job an event is about, as recorded with the event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventSubject {
    /// The job's organization.
    pub org_id: String,
    /// The job's owner.
    pub user_id: String,
    /// The job's type (as stored).
    pub job_type: String,
    /// The job's agent.
    pub agent_id: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = job_events)]
struct SubjectRow {
    org_id: String,
    user_id: String,
    job_type: String,
    agent_id: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = job_events)]
struct EventRow {
    id: i64,
    job_id: String,
    event_type: String,
    at: chrono::NaiveDateTime,
    actor: String,
    request_id: Option<String>,
    data: String,
}

impl EventRow {
    fn into_event(self) -> StoreResult<Event> {
        let corrupt = |what: &str| {
            StoreError::Internal(
                format!("stored event {} has an unreadable {what}", self.id).into(),
            )
        };
        Ok(Event {
            id: self.id,
            event_type: EventType::parse(&self.event_type).ok_or_else(|| corrupt("type"))?,
            job_id: JobId::parse(&self.job_id).map_err(|_| corrupt("job id"))?,
            at: DateTime::<Utc>::from_naive_utc_and_offset(self.at, Utc),
            data: serde_json::from_str(&self.data).map_err(|_| corrupt("data"))?,
            actor: self.actor,
            request_id: self.request_id,
        })
    }
}

impl JobStore {
    /// A visible job's events after `after` (an event id), oldest first: up to `limit`, and
    /// whether more follow.
    pub fn job_events(
        &self,
        vis: &Visibility,
        id: JobId,
        after: Option<i64>,
        limit: u16,
    ) -> StoreResult<(Vec<Event>, bool)> {
        let mut conn = self.conn()?;
        find(&mut conn, vis, id)?.ok_or(StoreError::NotFound)?;
        let rows: Vec<EventRow> = job_events::table
            .filter(job_events::job_id.eq(id.to_string()))
            .filter(job_events::id.gt(after.unwrap_or(0)))
            .order(job_events::id.asc())
            .limit(i64::from(limit) + 1)
            .select(EventRow::as_select())
            .load(&mut conn)?;
        let more = rows.len() > usize::from(limit);
        let events = rows
            .into_iter()
            .take(usize::from(limit))
            .map(EventRow::into_event)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((events, more))
    }

    /// Up to `limit` events after `after` on jobs `vis` can see that match `filter`, oldest
    /// first, each with its job as it is now.
    pub fn events_after(
        &self,
        vis: &Visibility,
        filter: &EventFilter,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<EventWithJob>> {
        load_events(&mut *self.conn()?, Some(vis), filter, after, limit)
    }

    /// Up to `limit` events after `after` on every job of every organization, oldest first,
    /// each with its job as it is now: what a process's tailer reads once for all of its
    /// streams, which then apply [`EventFilter::matches`] themselves.
    pub fn all_events_after(&self, after: i64, limit: i64) -> StoreResult<Vec<EventWithJob>> {
        load_events(&mut *self.conn()?, None, &EventFilter::default(), after, limit)
    }

    /// The newest event id (0 when there is none).
    pub fn last_event_id(&self) -> StoreResult<i64> {
        let mut conn = self.conn()?;
        let last: Option<i64> =
            job_events::table.select(diesel::dsl::max(job_events::id)).first(&mut conn)?;
        Ok(last.unwrap_or(0))
    }

    /// The highest event id purged from under resuming readers: a reader resuming from
    /// below it may have missed events.
    pub fn event_horizon(&self) -> StoreResult<i64> {
        let mut conn = self.conn()?;
        let horizon: Option<i64> = event_horizon::table
            .find(1)
            .select(event_horizon::purged_through)
            .first(&mut conn)
            .optional()?;
        Ok(horizon.unwrap_or(0))
    }

    /// Deletes up to `limit` `job.deleted` events older than `cutoff` (their jobs are gone;
    /// they were kept for resuming streams) and moves the horizon past them.
    pub fn purge_deleted_events_before(
        &self,
        cutoff: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<usize> {
        let mut conn = self.conn()?;
        let ids: Vec<i64> = job_events::table
            .filter(job_events::event_type.eq(EventType::JobDeleted.as_str()))
            .filter(job_events::at.lt(cutoff.naive_utc()))
            .order(job_events::at.asc())
            .limit(limit)
            .select(job_events::id)
            .load(&mut conn)?;
        let Some(highest) = ids.iter().max().copied() else { return Ok(0) };
        conn.transaction(|conn| {
            diesel::update(event_horizon::table.find(1))
                .filter(event_horizon::purged_through.lt(highest))
                .set(event_horizon::purged_through.eq(highest))
                .execute(conn)?;
            Ok(diesel::delete(job_events::table.filter(job_events::id.eq_any(&ids)))
                .execute(conn)?)
        })
    }
}

fn load_events(
    conn: &mut crate::db::DbConnection,
    vis: Option<&Visibility>,
    filter: &EventFilter,
    after: i64,
    limit: i64,
) -> StoreResult<Vec<EventWithJob>> {
    let mut query = job_events::table.filter(job_events::id.gt(after)).into_boxed();
    if let Some(vis) = vis {
        query = query.filter(job_events::org_id.eq(&vis.org_id));
        if let Some(user) = &vis.user_id {
            query = query.filter(job_events::user_id.eq(user));
        }
    }
    if !filter.job_ids.is_empty() {
        let ids: Vec<String> = filter.job_ids.iter().map(ToString::to_string).collect();
        query = query.filter(job_events::job_id.eq_any(ids));
    }
    if let Some(job_type) = filter.job_type {
        query = query.filter(job_events::job_type.eq(job_type.as_str()));
    }
    if let Some(agent) = &filter.agent_id {
        query = query.filter(job_events::agent_id.eq(agent));
    }
    if !filter.types.is_empty() {
        let types: Vec<&str> = filter.types.iter().map(|t| t.as_str()).collect();
        query = query.filter(job_events::event_type.eq_any(types));
    }
    let rows: Vec<(EventRow, SubjectRow)> = query
        .order(job_events::id.asc())
        .limit(limit)
        .select((EventRow::as_select(), SubjectRow::as_select()))
        .load(conn)?;
    let mut ids: Vec<&str> = rows.iter().map(|(e, _)| e.job_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let found: Vec<JobRow> = if ids.is_empty() {
        Vec::new()
    } else {
        jobs::table.filter(jobs::id.eq_any(&ids)).select(JobRow::as_select()).load(conn)?
    };
    let found = found.into_iter().map(JobRow::into_job).collect::<StoreResult<Vec<_>>>()?;
    rows.into_iter()
        .map(|(event, s)| {
            let event = event.into_event()?;
            let job = found.iter().find(|j| j.id == event.job_id).cloned();
            let subject = EventSubject {
                org_id: s.org_id,
                user_id: s.user_id,
                job_type: s.job_type,
                agent_id: s.agent_id,
            };
            Ok(EventWithJob { event, subject, job })
        })
        .collect()
}
