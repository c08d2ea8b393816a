-- Event ids are drawn at commit. An event is inserted with a provisional negative id; a
-- deferred trigger, which PostgreSQL runs inside COMMIT after the transaction's own
-- statements, takes the sequencer (a transaction-level advisory lock, "jobsev" in ASCII)
-- and gives each of the transaction's events its real id. Event-writing transactions
-- therefore draw ids and commit one at a time (ids follow commit order, which a reader
-- resuming "after N" relies on), yet the part that runs one at a time is only the
-- numbering and the commit itself: no round trip to the application while the lock is
-- held, and no row lock can be waited for while holding it. Readers only ever see real
-- ids: provisional ones are never committed.
CREATE SEQUENCE job_events_provisional_seq;
ALTER TABLE job_events ALTER COLUMN id SET DEFAULT -nextval('job_events_provisional_seq');

CREATE FUNCTION job_events_number() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(117026625643894);
    UPDATE job_events SET id = nextval('job_events_id_seq') WHERE id = NEW.id;
    RETURN NULL;
END $$;

CREATE CONSTRAINT TRIGGER job_events_number AFTER INSERT ON job_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION job_events_number();
