DROP FUNCTION job_events_append(TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TEXT[], TIMESTAMP[],
                                TEXT[], TEXT[], TEXT[]);
DROP TRIGGER job_events_number ON job_events;
CREATE CONSTRAINT TRIGGER job_events_number AFTER INSERT ON job_events
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION job_events_number();
