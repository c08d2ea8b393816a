DROP INDEX idempotency_keys_job;
DROP INDEX jobs_completed;
DROP TABLE webhook_deliveries;
