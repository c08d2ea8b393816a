-- Claims and leases (workers): who claimed a job, when its lease lapses, and the lease
-- length renewals reuse. A lapsing lease shows in `expires_at` too (the earlier of the
-- timeout and the lease), so the expiry sweep and its index (jobs_expires) cover it.
ALTER TABLE jobs ADD COLUMN claimed_by TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at TIMESTAMP;
ALTER TABLE jobs ADD COLUMN lease_seconds BIGINT;

-- A claim reads the oldest pending job of an organisation (or of one user), optionally of
-- one type, agent or folder. Without a filter, the (org_id[, user_id], status, created_at,
-- id) indexes of the lists already seek the pending jobs in order. With one, these partial
-- indexes hold pending jobs only, so a claim costs the same however many jobs are not
-- claimable. The status is written as a literal in the claim query, so both planners can
-- match it against their WHERE.
CREATE INDEX jobs_claim_type ON jobs (org_id, job_type, created_at, id) WHERE status = 'pending';
CREATE INDEX jobs_claim_agent ON jobs (org_id, agent_id, created_at, id)
    WHERE status = 'pending' AND agent_id IS NOT NULL;
CREATE INDEX jobs_claim_source ON jobs (org_id, source_id, created_at, id)
    WHERE status = 'pending' AND source_id IS NOT NULL;
