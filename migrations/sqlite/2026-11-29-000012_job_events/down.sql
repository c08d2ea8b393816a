DROP TABLE event_horizon;
DROP TABLE job_events;
