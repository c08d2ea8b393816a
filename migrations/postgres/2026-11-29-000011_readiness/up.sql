-- One row that the readiness probe (GET /readyz) rewrites in a small write transaction: a
-- commit proves the database takes writes, which a SELECT does not (a full disk still
-- answers reads).
CREATE TABLE readiness (
    id         INTEGER PRIMARY KEY NOT NULL,
    checked_at TIMESTAMP NOT NULL
);
INSERT INTO readiness (id, checked_at) VALUES (1, CURRENT_TIMESTAMP);
