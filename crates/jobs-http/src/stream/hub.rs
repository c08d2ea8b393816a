//! The process's one reader of the event log, shared by all of its change streams.
//!
//! The table is the truth. One tailer per process learns of new events (woken after each
//! non-GET request of this process, by PostgreSQL notifications from any replica, and by a
//! poll every second, which also covers the sweeper's and the dispatcher's events on SQLite
//! and any wake-up that is missed), reads them once for every organization, writes
//! each one's SSE message once, and keeps the newest few thousand in memory. Each stream
//! takes what it may see from there; a stream that is further behind than that (resuming,
//! or slow) reads the table itself until it has caught up. An idle stream holds no
//! database connection and no thread.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use actix_web::web::{self, Bytes};
use jobs_domain::event::EventType;
use jobs_domain::{JobId, Visibility};
use jobs_store::{EventFilter, EventWithJob, JobStore};
use tokio::sync::{watch, Notify};

use super::{message, PAGE, POLL};
use crate::error::ApiError;

/// Events kept in memory for the streams (about 1 KiB each).
const RECENT: usize = 4096;

/// What the streams of one process share.
#[derive(Debug)]
pub struct EventHub {
    /// The tailer's cursor: every event up to it has been read (and is in `recent`, unless
    /// it was pushed out).
    pub(super) latest: watch::Sender<i64>,
    recent: Mutex<Recent>,
    wake: Notify,
    pub(super) closing: watch::Sender<bool>,
    open: Mutex<HashMap<(String, String), usize>>,
    max_per_user: usize,
}

/// An event the tailer read, with its message.
#[derive(Debug)]
struct Published {
    item: EventWithJob,
    message: Bytes,
}

/// The newest events: every event with an id above `floor`, up to the tailer's cursor.
#[derive(Debug, Default)]
struct Recent {
    floor: i64,
    items: VecDeque<Published>,
}

/// What a stream gets from the hub: the messages it may see after its cursor, and the id
/// it has now seen everything up to.
pub(super) struct Taken {
    pub messages: Vec<Bytes>,
    pub through: i64,
}

impl EventHub {
    /// A hub allowing `max_per_user` open streams per user.
    pub fn new(max_per_user: usize) -> Arc<EventHub> {
        Arc::new(EventHub {
            latest: watch::channel(0).0,
            recent: Mutex::new(Recent::default()),
            wake: Notify::new(),
            closing: watch::channel(false).0,
            open: Mutex::new(HashMap::new()),
            max_per_user,
        })
    }

    /// Tells the tailer that events may have committed (a write here, or a notification).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Ends every stream (graceful shutdown).
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.open.lock().map(|m| m.values().sum()).unwrap_or(0)
    }

    /// Follows the table: whenever woken (or every second) reads what is new, keeps it for
    /// the streams and publishes the new cursor. Runs until the process ends (restarted by
    /// the supervisor if it fails; a restart starts from the newest event, and streams
    /// behind it read the table).
    pub async fn tail(self: Arc<Self>, store: JobStore) {
        // `None` until the newest id is known.
        let mut cursor = None;
        loop {
            if let Err(err) = self.catch_up(&store, &mut cursor).await {
                log::warn!(target: "jobs::events", "reading the event log: {err}");
            }
            let _ = actix_web::rt::time::timeout(POLL, self.wake.notified()).await;
        }
    }

    /// One round of the tailer. While no stream is open it only notes the newest id and
    /// holds nothing: reading every event with its job and writing messages nobody waits
    /// for would cost every write. A stream that opens meanwhile starts from an id it read
    /// itself, and reads the table if that is older than what the hub holds.
    async fn catch_up(&self, store: &JobStore, cursor: &mut Option<i64>) -> Result<(), String> {
        let after = match *cursor {
            Some(after) if self.open_streams() > 0 => after,
            _ => {
                let s = store.clone();
                let newest = blocking(move || s.last_event_id()).await?;
                if let Ok(mut recent) = self.recent.lock() {
                    *recent = Recent { floor: newest, items: VecDeque::new() };
                }
                *cursor = Some(newest);
                self.publish(newest);
                return Ok(());
            }
        };
        let mut after = after;
        loop {
            let s = store.clone();
            let events = blocking(move || s.all_events_after(after, PAGE)).await?;
            let full = events.len() as i64 >= PAGE;
            if let Some(last) = events.last() {
                after = last.event.id;
                *cursor = Some(after);
                self.keep(events);
                self.publish(after);
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn keep(&self, events: Vec<EventWithJob>) {
        // The messages are written before the lock is taken: streams read under it.
        let deleted: Vec<JobId> = events
            .iter()
            .filter(|e| e.event.event_type == EventType::JobDeleted)
            .map(|e| e.event.job_id)
            .collect();
        let published: Vec<Published> =
            events.into_iter().map(|item| Published { message: message(&item), item }).collect();
        let Ok(mut recent) = self.recent.lock() else { return };
        if !deleted.is_empty() {
            // A job's other events go with it, here as in the table (its `job.deleted` is
            // its last event, so it is not among those removed).
            recent.items.retain(|p| !deleted.contains(&p.item.event.job_id));
        }
        recent.items.extend(published);
        while recent.items.len() > RECENT {
            if let Some(gone) = recent.items.pop_front() {
                recent.floor = gone.item.event.id;
            }
        }
    }

    fn publish(&self, cursor: i64) {
        self.latest.send_if_modified(|latest| {
            let grew = cursor > *latest;
            *latest = (*latest).max(cursor);
            grew
        });
    }

    /// The messages after `after` that `vis` may see and `filter` wants, from memory; `None`
    /// when some events after `after` are no longer held (read the table instead).
    pub(super) fn take_after(
        &self,
        vis: &Visibility,
        filter: &EventFilter,
        after: i64,
    ) -> Option<Taken> {
        let recent = self.recent.lock().ok()?;
        if after < recent.floor {
            return None;
        }
        let start = recent.items.partition_point(|p| p.item.event.id <= after);
        let messages = recent
            .items
            .range(start..)
            .filter(|p| filter.matches(vis, &p.item))
            .map(|p| p.message.clone())
            .collect();
        let last = recent.items.back().map_or(recent.floor, |p| p.item.event.id);
        Some(Taken { messages, through: last.max(after) })
    }

    pub(super) fn acquire(self: &Arc<Self>, key: (String, String)) -> Result<Slot, ApiError> {
        let mut open = self.open.lock().map_err(|e| ApiError::internal(e.to_string()))?;
        let count = open.entry(key.clone()).or_insert(0);
        if *count >= self.max_per_user {
            return Err(ApiError::rate_limited(1).with_details(serde_json::json!({
                "retry_after_seconds": 1, "max_streams_per_user": self.max_per_user})));
        }
        *count += 1;
        Ok(Slot { hub: self.clone(), key })
    }
}

/// Runs a store call on the blocking pool; either failure as text.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, jobs_store::StoreError> + Send + 'static,
) -> Result<T, String> {
    web::block(f).await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())
}

/// One open stream of a user; released when the stream ends.
pub(super) struct Slot {
    hub: Arc<EventHub>,
    key: (String, String),
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.hub.open.lock() {
            if let Some(count) = open.get_mut(&self.key) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    open.remove(&self.key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use jobs_domain::event::Event;
    use jobs_domain::JobId;
    use jobs_store::EventSubject;

    use super::*;

    fn event(id: i64, job: JobId, user: &str, ty: EventType) -> EventWithJob {
        EventWithJob {
            event: Event {
                id,
                event_type: ty,
                job_id: job,
                at: jobs_domain::now(),
                actor: user.to_owned(),
                request_id: None,
                data: serde_json::json!({}),
            },
            subject: EventSubject {
                org_id: "acme".to_owned(),
                user_id: user.to_owned(),
                job_type: "job".to_owned(),
                agent_id: None,
            },
            job: None,
        }
    }

    fn ids(taken: &Taken) -> Vec<i64> {
        taken
            .messages
            .iter()
            .map(|m| {
                let text = std::str::from_utf8(m).unwrap();
                text.lines().next().unwrap().trim_start_matches("id: ").parse().unwrap()
            })
            .collect()
    }

    #[test]
    fn a_stream_gets_from_memory_only_what_it_may_see_after_its_cursor() {
        let hub = EventHub::new(1);
        let (a, b) = (JobId::generate(), JobId::generate());
        hub.keep(vec![
            event(1, a, "ann", EventType::JobCreated),
            event(2, b, "bob", EventType::JobCreated),
            event(3, a, "ann", EventType::JobUpdated),
        ]);
        let ann = Visibility::user("acme", "ann");
        let all = EventFilter::default();
        let taken = hub.take_after(&ann, &all, 0).unwrap();
        assert_eq!((ids(&taken), taken.through), (vec![1, 3], 3));
        assert_eq!(ids(&hub.take_after(&ann, &all, 1).unwrap()), vec![3]);
        let org = Visibility::organization("acme");
        let updates = EventFilter { types: vec![EventType::JobUpdated], ..EventFilter::default() };
        assert_eq!(ids(&hub.take_after(&org, &updates, 0).unwrap()), vec![3]);
        let other_org = Visibility::organization("other");
        let nothing = hub.take_after(&other_org, &all, 0).unwrap();
        assert_eq!((ids(&nothing), nothing.through), (vec![], 3));
    }

    #[test]
    fn a_stream_behind_the_oldest_event_held_is_told_to_read_the_table() {
        let hub = EventHub::new(1);
        let job = JobId::generate();
        let many = (1..=RECENT as i64 + 10).map(|id| event(id, job, "ann", EventType::JobUpdated));
        hub.keep(many.collect());
        let ann = Visibility::user("acme", "ann");
        assert!(hub.take_after(&ann, &EventFilter::default(), 9).is_none());
        let caught_up = hub.take_after(&ann, &EventFilter::default(), 10).unwrap();
        assert_eq!(caught_up.messages.len(), RECENT);
    }

    #[test]
    fn a_deleted_jobs_earlier_events_leave_memory_with_it() {
        let hub = EventHub::new(1);
        let (a, b) = (JobId::generate(), JobId::generate());
        hub.keep(vec![
            event(1, a, "ann", EventType::JobCreated),
            event(2, b, "ann", EventType::JobCreated),
        ]);
        hub.keep(vec![event(3, a, "ann", EventType::JobDeleted)]);
        let ann = Visibility::user("acme", "ann");
        assert_eq!(ids(&hub.take_after(&ann, &EventFilter::default(), 0).unwrap()), vec![2, 3]);
    }
}
