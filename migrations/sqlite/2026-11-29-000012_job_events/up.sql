-- The history of every job: one row per change, written in the transaction of the change.
-- Ids follow commit order: SQLite has one writer, and AUTOINCREMENT never reuses an id,
-- even after the newest events are deleted with their job.
-- The owner, type and agent are copied from the job so that visibility and stream filters
-- still apply after the job is gone (a `job.deleted` event outlives its job for 24 hours).
CREATE TABLE job_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id     TEXT NOT NULL,
    org_id     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    job_type   TEXT NOT NULL,
    agent_id   TEXT,
    event_type TEXT NOT NULL,
    at         TIMESTAMP NOT NULL,
    actor      TEXT NOT NULL,
    request_id TEXT,
    data       TEXT NOT NULL
);
CREATE INDEX job_events_by_job ON job_events (job_id, id);
CREATE INDEX job_events_deleted ON job_events (at) WHERE event_type = 'job.deleted';

-- The highest event id ever purged from under a resuming reader (expired `job.deleted`
-- events): a reader resuming from below it may have missed something, and is told so.
CREATE TABLE event_horizon (
    id             INTEGER PRIMARY KEY NOT NULL,
    purged_through BIGINT NOT NULL
);
INSERT INTO event_horizon (id, purged_through) VALUES (1, 0);
