//! The webhook outbox: completion events recorded with the status change that caused them,
//! then claimed by one dispatcher at a time, delivered, and recorded.

use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Text, Timestamp};
use jobs_domain::Job;

use crate::db::DbConnection;
use crate::schema::{jobs, webhook_deliveries};
use crate::sqlite_rows::{Rows, Values};
use crate::stamp::Stamp;
use crate::store::JobStore;
use crate::StoreResult;

/// The state of a delivery, stored as text in `webhook_deliveries.state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DeliveryState {
    /// Not yet delivered; attempted when due.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Given up on.
    Failed,
}

impl DeliveryState {
    /// The stored name.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// A delivery about to be recorded: the completion event of one status change.
#[derive(Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub(crate) struct NewDelivery<'a> {
    id: String,
    job_id: String,
    url: &'a str,
    payload: String,
    state: &'static str,
    attempts: i32,
    next_attempt_at: Stamp,
    created_at: Stamp,
    updated_at: Stamp,
}

impl<'a> NewDelivery<'a> {
    /// The delivery a change from `before` to `after` schedules: the completion event of a
    /// job that changed status and has a callback URL. `None` for any other change.
    pub(crate) fn of_change(before: &Job, after: &'a Job) -> Option<NewDelivery<'a>> {
        if after.status == before.status {
            return None;
        }
        let url = after.callback_url.as_deref()?;
        let event = jobs_domain::callback::completion_event(after)?;
        let at = Stamp(after.updated_at.naive_utc());
        Some(NewDelivery {
            id: format!("msg_{}", uuid::Uuid::now_v7().simple()),
            job_id: after.id.to_string(),
            url,
            payload: event.to_string(),
            state: DeliveryState::Pending.as_str(),
            attempts: 0,
            next_attempt_at: at,
            created_at: at,
            updated_at: at,
        })
    }
}

/// Many deliveries in one statement on PostgreSQL: one array per column, `unnest`ed.
const ENQUEUE_POSTGRES: &str = "INSERT INTO webhook_deliveries (id, job_id, url, payload, \
    state, attempts, next_attempt_at, created_at, updated_at) \
    SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Many deliveries in one statement on SQLite, a `VALUES` list ([`crate::sqlite_rows`]).
const ENQUEUE_SQLITE: &str = "INSERT INTO webhook_deliveries (id, job_id, url, payload, \
    state, attempts, next_attempt_at, created_at, updated_at) VALUES ";

fn bind_delivery<'b>(d: &'b NewDelivery<'_>, values: &mut Values<'_, '_, 'b>) -> QueryResult<()> {
    values
        .bind::<Text, _>(&d.id)?
        .bind::<Text, _>(&d.job_id)?
        .bind::<Text, _>(d.url)?
        .bind::<Text, _>(&d.payload)?
        .bind::<Text, _>(d.state)?
        .bind::<Integer, _>(&d.attempts)?
        .bind::<Timestamp, _>(&d.next_attempt_at)?
        .bind::<Timestamp, _>(&d.created_at)?
        .bind::<Timestamp, _>(&d.updated_at)?;
    Ok(())
}

/// Records completion events; called inside the transaction of the status changes: one as
/// a plain INSERT, many in multi-row statements.
pub(crate) fn enqueue(
    conn: &mut DbConnection,
    deliveries: &[NewDelivery<'_>],
) -> Result<(), diesel::result::Error> {
    use crate::db::column;
    use diesel::sql_types::Array;
    match (conn, deliveries) {
        (_, []) => {}
        (conn, [one]) => {
            diesel::insert_into(webhook_deliveries::table).values(one).execute(conn)?;
        }
        (DbConnection::Postgres(c), many) => {
            diesel::sql_query(ENQUEUE_POSTGRES)
                .bind::<Array<Text>, _>(column(many, |d| d.id.as_str()))
                .bind::<Array<Text>, _>(column(many, |d| d.job_id.as_str()))
                .bind::<Array<Text>, _>(column(many, |d| d.url))
                .bind::<Array<Text>, _>(column(many, |d| d.payload.as_str()))
                .bind::<Array<Text>, _>(column(many, |d| d.state))
                .bind::<Array<Integer>, _>(column(many, |d| d.attempts))
                .bind::<Array<Timestamp>, _>(column(many, |d| d.next_attempt_at))
                .bind::<Array<Timestamp>, _>(column(many, |d| d.created_at))
                .bind::<Array<Timestamp>, _>(column(many, |d| d.updated_at))
                .execute(c)?;
        }
        (DbConnection::Sqlite(c), many) => {
            for statement in Rows::chunks(ENQUEUE_SQLITE, many, bind_delivery, "") {
                statement.execute(c)?;
            }
        }
    }
    Ok(())
}

/// A delivery a dispatcher has claimed.
#[derive(QueryableByName, Clone, Debug, PartialEq)]
pub struct Delivery {
    /// `webhook-id`: the same for every attempt of this delivery.
    #[diesel(sql_type = Text)]
    pub id: String,
    /// The job that finished.
    #[diesel(sql_type = Text)]
    pub job_id: String,
    /// Where to POST.
    #[diesel(sql_type = Text)]
    pub url: String,
    /// The exact JSON body.
    #[diesel(sql_type = Text)]
    pub payload: String,
    /// Attempts made before this one.
    #[diesel(sql_type = Integer)]
    pub attempts: i32,
}

/// What one attempt found.
#[derive(Clone, Debug, PartialEq)]
pub struct Attempt {
    /// When it was made.
    pub at: DateTime<Utc>,
    /// The receiver's HTTP status, if it answered.
    pub status_code: Option<i32>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: Option<i64>,
}

/// What happens to a delivery after an attempt.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NextStep {
    /// Done: the receiver answered 2xx.
    Delivered,
    /// Try again at this time.
    RetryAt(DateTime<Utc>),
    /// Give up (attempts exhausted, or a permanent failure).
    GiveUp,
}

// The claim is one statement: it picks due, unleased deliveries and leases them. On
// PostgreSQL, SKIP LOCKED lets replicas claim different rows at once; SQLite has one
// writer, so the statement alone is exclusive.
const CLAIM_POSTGRES: &str = "UPDATE webhook_deliveries SET claimed_until = $1, updated_at = $2 \
     WHERE id IN (SELECT id FROM webhook_deliveries \
                  WHERE state = 'pending' AND next_attempt_at <= $2 \
                    AND (claimed_until IS NULL OR claimed_until <= $2) \
                  ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
     RETURNING id, job_id, url, payload, attempts";
const CLAIM_SQLITE: &str = "UPDATE webhook_deliveries SET claimed_until = ?1, updated_at = ?2 \
     WHERE id IN (SELECT id FROM webhook_deliveries \
                  WHERE state = 'pending' AND next_attempt_at <= ?2 \
                    AND (claimed_until IS NULL OR claimed_until <= ?2) \
                  ORDER BY next_attempt_at LIMIT ?3) \
     RETURNING id, job_id, url, payload, attempts";

impl JobStore {
    /// Claims up to `limit` due deliveries for `lease`: no other dispatcher takes them until
    /// the lease runs out (so a crashed dispatcher's deliveries are resumed after it).
    pub fn claim_deliveries(&self, limit: i64, lease: TimeDelta) -> StoreResult<Vec<Delivery>> {
        let mut conn = self.conn()?;
        let at = self.now();
        let sql = match &*conn {
            DbConnection::Postgres(_) => CLAIM_POSTGRES,
            DbConnection::Sqlite(_) => CLAIM_SQLITE,
        };
        Ok(diesel::sql_query(sql)
            .bind::<Timestamp, _>((at + lease).naive_utc())
            .bind::<Timestamp, _>(at.naive_utc())
            .bind::<BigInt, _>(limit)
            .load(&mut conn)?)
    }

    /// Records an attempt on the delivery and on its job (`callback_sent_at`,
    /// `callback_status_code`, `callback_error`), and releases the lease.
    pub fn record_attempt(
        &self,
        delivery: &Delivery,
        attempt: &Attempt,
        next: NextStep,
    ) -> StoreResult<()> {
        let mut conn = self.conn()?;
        let at = attempt.at.naive_utc();
        let (state, next_at) = match next {
            NextStep::Delivered => (DeliveryState::Delivered, at),
            NextStep::RetryAt(when) => (DeliveryState::Pending, when.naive_utc()),
            NextStep::GiveUp => (DeliveryState::Failed, at),
        };
        conn.transaction(|conn| {
            diesel::update(webhook_deliveries::table.find(&delivery.id))
                .set((
                    webhook_deliveries::state.eq(state.as_str()),
                    webhook_deliveries::attempts.eq(webhook_deliveries::attempts + 1),
                    webhook_deliveries::next_attempt_at.eq(next_at),
                    webhook_deliveries::claimed_until.eq(None::<NaiveDateTime>),
                    webhook_deliveries::last_status_code.eq(attempt.status_code),
                    webhook_deliveries::last_error.eq(&attempt.error),
                    webhook_deliveries::updated_at.eq(at),
                ))
                .execute(conn)?;
            diesel::update(jobs::table.find(&delivery.job_id))
                .set((
                    jobs::callback_sent_at.eq(Some(at)),
                    jobs::callback_status_code.eq(attempt.status_code),
                    jobs::callback_error.eq(&attempt.error),
                    jobs::updated_at.eq(at),
                    jobs::version.eq(jobs::version + 1),
                ))
                .execute(conn)?;
            crate::events::webhook_attempted(conn, delivery, attempt, next)
        })
    }

    /// Deliveries not yet delivered or given up (for metrics and tests).
    pub fn pending_deliveries(&self) -> StoreResult<i64> {
        let mut conn = self.conn()?;
        Ok(webhook_deliveries::table
            .filter(webhook_deliveries::state.eq(DeliveryState::Pending.as_str()))
            .count()
            .get_result(&mut conn)?)
    }
}
