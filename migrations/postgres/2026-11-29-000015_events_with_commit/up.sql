-- A transaction can send its events with its COMMIT, in one round trip:
-- `SELECT job_events_append(...); COMMIT`. The function takes the sequencer (the same
-- advisory lock as the deferred trigger of `event_ids_at_commit`), draws the events' real
-- ids in the order given and inserts each row once; the lock is held until the COMMIT that
-- follows in the same round trip, so ids still follow commit order. The trigger now skips
-- rows inserted with their real id.
DROP TRIGGER job_events_number ON job_events;
CREATE CONSTRAINT TRIGGER job_events_number AFTER INSERT ON job_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW WHEN (NEW.id < 0)
    EXECUTE FUNCTION job_events_number();

CREATE FUNCTION job_events_append(
    p_job_id TEXT[], p_org_id TEXT[], p_user_id TEXT[], p_job_type TEXT[], p_agent_id TEXT[],
    p_event_type TEXT[], p_at TIMESTAMP[], p_actor TEXT[], p_request_id TEXT[], p_data TEXT[]
) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(117026625643894);
    INSERT INTO job_events (id, job_id, org_id, user_id, job_type, agent_id, event_type, at,
                            actor, request_id, data)
    SELECT nextval('job_events_id_seq'), e.job_id, e.org_id, e.user_id, e.job_type,
           e.agent_id, e.event_type, e.at, e.actor, e.request_id, e.data
    FROM unnest(p_job_id, p_org_id, p_user_id, p_job_type, p_agent_id, p_event_type, p_at,
                p_actor, p_request_id, p_data) WITH ORDINALITY
         AS e (job_id, org_id, user_id, job_type, agent_id, event_type, at, actor,
               request_id, data, n)
    ORDER BY e.n;
END $$;
