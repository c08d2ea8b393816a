-- Every list filter gets an index that starts with the caller's visibility: a
-- filter costs in proportion to the caller's own matching jobs, never to other users'.
-- A user's list seeks (org_id, user_id, <filter>); an organisation-wide list (admin without
-- user_id) seeks (org_id, <filter>); both then read (created_at, id) in order.
-- status and job_type for users, and status for the organisation, already had theirs.
--
-- agent_id, source_id and project_id are nullable and a filter on them is always `= ?`,
-- which no NULL matches: their indexes are partial, so a job without an agent, folder or
-- project costs no entry in them on insert or on any update.

CREATE INDEX jobs_user_agent_created ON jobs (org_id, user_id, agent_id, created_at, id)
    WHERE agent_id IS NOT NULL;
CREATE INDEX jobs_user_source_created ON jobs (org_id, user_id, source_id, created_at, id)
    WHERE source_id IS NOT NULL;
CREATE INDEX jobs_user_project_created ON jobs (org_id, user_id, project_id, created_at, id)
    WHERE project_id IS NOT NULL;
CREATE INDEX jobs_org_type_created ON jobs (org_id, job_type, created_at, id);

-- The organisation-wide ones, made partial like the users' (the full ones they replace
-- are dropped).
CREATE INDEX jobs_org_agent_created ON jobs (org_id, agent_id, created_at, id)
    WHERE agent_id IS NOT NULL;
CREATE INDEX jobs_org_source_created ON jobs (org_id, source_id, created_at, id)
    WHERE source_id IS NOT NULL;
CREATE INDEX jobs_org_project_created ON jobs (org_id, project_id, created_at, id)
    WHERE project_id IS NOT NULL;
DROP INDEX jobs_agent_created;
DROP INDEX jobs_source_created;
DROP INDEX jobs_project_created;
