-- The webhook outbox: one row per completion event, written in the same transaction as the
-- status change that caused it, then claimed and delivered by the dispatcher.
CREATE TABLE webhook_deliveries (
    -- Sent as `webhook-id`: stable across the retries of one delivery.
    id               TEXT PRIMARY KEY NOT NULL,
    job_id           TEXT NOT NULL,
    url              TEXT NOT NULL,
    -- The exact body, fixed when the event happened.
    payload          TEXT NOT NULL,
    -- pending | delivered | failed
    state            TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    next_attempt_at  TIMESTAMP NOT NULL,
    -- A replica's lease on the delivery while it is being sent.
    claimed_until    TIMESTAMP,
    last_status_code INTEGER,
    last_error       TEXT,
    created_at       TIMESTAMP NOT NULL,
    updated_at       TIMESTAMP NOT NULL
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id);

-- Retention finds finished jobs by age.
CREATE INDEX jobs_completed ON jobs (completed_at) WHERE completed_at IS NOT NULL;

-- Retention removes a purged job's idempotency keys.
CREATE INDEX idempotency_keys_job ON idempotency_keys (job_id);
