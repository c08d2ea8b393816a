DROP INDEX jobs_lease_expires;
DROP INDEX jobs_claim_source;
DROP INDEX jobs_claim_agent;
DROP INDEX jobs_claim_type;
DROP INDEX jobs_claim_user;
DROP INDEX jobs_claim_org;
ALTER TABLE jobs DROP COLUMN lease_seconds;
ALTER TABLE jobs DROP COLUMN lease_expires_at;
ALTER TABLE jobs DROP COLUMN claimed_by;
