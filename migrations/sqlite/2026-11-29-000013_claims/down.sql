DROP INDEX jobs_claim_source;
DROP INDEX jobs_claim_agent;
DROP INDEX jobs_claim_type;
ALTER TABLE jobs DROP COLUMN lease_seconds;
ALTER TABLE jobs DROP COLUMN lease_expires_at;
ALTER TABLE jobs DROP COLUMN claimed_by;
