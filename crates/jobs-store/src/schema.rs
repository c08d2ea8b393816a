//! The diesel schema, written to match `migrations/`.

diesel::table! {
    jobs (id) {
        id -> Text,
        org_id -> Text,
        user_id -> Text,
        project_id -> Nullable<Text>,
        status -> Text,
        job_type -> Text,
        background -> Bool,
        agent_id -> Nullable<Text>,
        source_id -> Nullable<Text>,
        metadata -> Text,
        callback_url -> Nullable<Text>,
        callback_sent_at -> Nullable<Timestamp>,
        callback_status_code -> Nullable<Integer>,
        callback_error -> Nullable<Text>,
        ttft_ns -> Nullable<BigInt>,
        total_duration_ns -> Nullable<BigInt>,
        timeout_seconds -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        completed_at -> Nullable<Timestamp>,
        started_at -> Nullable<Timestamp>,
        expires_at -> Nullable<Timestamp>,
        version -> BigInt,
        claimed_by -> Nullable<Text>,
        lease_expires_at -> Nullable<Timestamp>,
        lease_seconds -> Nullable<BigInt>,
    }
}

diesel::table! {
    idempotency_keys (org_id, user_id, key) {
        org_id -> Text,
        user_id -> Text,
        key -> Text,
        request_hash -> Text,
        job_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(jobs, idempotency_keys);

diesel::table! {
    webhook_deliveries (id) {
        id -> Text,
        job_id -> Text,
        url -> Text,
        payload -> Text,
        state -> Text,
        attempts -> Integer,
        next_attempt_at -> Timestamp,
        claimed_until -> Nullable<Timestamp>,
        last_status_code -> Nullable<Integer>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(jobs, webhook_deliveries);

diesel::table! {
    /// One row, rewritten by the readiness probe.
    readiness (id) {
        id -> Integer,
        checked_at -> Timestamp,
    }
}

diesel::table! {
    /// The history of every job (one row per change).
    job_events (id) {
        id -> BigInt,
        job_id -> Text,
        org_id -> Text,
        user_id -> Text,
        job_type -> Text,
        agent_id -> Nullable<Text>,
        event_type -> Text,
        at -> Timestamp,
        actor -> Text,
        request_id -> Nullable<Text>,
        data -> Text,
    }
}

diesel::table! {
    /// One row: the highest event id purged from under resuming readers.
    event_horizon (id) {
        id -> Integer,
        purged_through -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(jobs, job_events);
