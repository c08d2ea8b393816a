-- Jobs and the idempotency keys of their creation requests (PostgreSQL).
-- The same tables, columns and indexes as migrations/sqlite: ids and JSON as TEXT,
-- timestamps as UTC TIMESTAMP set by the server. Ids use the "C" collation so that
-- keyset comparisons are plain byte order, as on SQLite.
CREATE TABLE jobs (
    id                   TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    org_id               TEXT NOT NULL,
    user_id              TEXT NOT NULL,
    project_id           TEXT,
    status               TEXT NOT NULL,
    job_type             TEXT NOT NULL,
    background           BOOLEAN NOT NULL,
    agent_id             TEXT,
    source_id            TEXT,
    metadata             TEXT NOT NULL,
    callback_url         TEXT,
    callback_sent_at     TIMESTAMP,
    callback_status_code INTEGER,
    callback_error       TEXT,
    ttft_ns              BIGINT,
    total_duration_ns    BIGINT,
    timeout_seconds      BIGINT,
    created_at           TIMESTAMP NOT NULL,
    updated_at           TIMESTAMP NOT NULL,
    completed_at         TIMESTAMP,
    started_at           TIMESTAMP,
    -- Set while a running job has a timeout: what the expiry sweeper looks for.
    expires_at           TIMESTAMP,
    -- Compare-and-set token: every change bumps it.
    version              BIGINT NOT NULL
);

-- Keyset pagination on (created_at, id), one index for each way a list is scoped.
CREATE INDEX jobs_user_created ON jobs (org_id, user_id, created_at, id);
CREATE INDEX jobs_org_created ON jobs (org_id, created_at, id);
CREATE INDEX jobs_user_status_created ON jobs (org_id, user_id, status, created_at, id);
CREATE INDEX jobs_org_status_created ON jobs (org_id, status, created_at, id);
CREATE INDEX jobs_user_type_created ON jobs (org_id, user_id, job_type, created_at, id);
CREATE INDEX jobs_agent_created ON jobs (org_id, agent_id, created_at, id);
CREATE INDEX jobs_source_created ON jobs (org_id, source_id, created_at, id);
CREATE INDEX jobs_project_created ON jobs (org_id, project_id, created_at, id);
CREATE INDEX jobs_expires ON jobs (expires_at) WHERE expires_at IS NOT NULL;

CREATE TABLE idempotency_keys (
    org_id       TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    key          TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    job_id       TEXT NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    PRIMARY KEY (org_id, user_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
