DROP TRIGGER job_events_number ON job_events;
DROP FUNCTION job_events_number();
ALTER TABLE job_events ALTER COLUMN id SET DEFAULT nextval('job_events_id_seq');
DROP SEQUENCE job_events_provisional_seq;
