//! The command line: global settings and one subcommand per operation.

use clap::{Args, Parser, Subcommand, ValueEnum};
use jobs_domain::event::EventType;
use jobs_domain::{JobId, JobStatus, JobType};

const EXIT_STATUS: &str = "\
Exit status:
  0  done (watch: the job completed; claim: a job was claimed)
  1  watch: the job failed or expired; claim: nothing to claim
  2  watch: the job was cancelled; or a usage error
  3  the server refused the request (its message is printed) or could not be reached";

/// The command line of the Jobs API.
///
/// Set JOBS_URL and JOBS_TOKEN (or pass --url and --token) and run a command:
/// `jobs create --job-type batch`, `jobs watch ID`, `jobs list --status running`.
#[derive(Debug, Parser)]
#[command(name = "jobs", version, after_help = EXIT_STATUS)]
pub struct Cli {
    /// The server's base URL.
    #[arg(long, env = "JOBS_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub url: String,

    /// The bearer token (a JWT; `jobs-server token` makes one). Prefer the environment
    /// variable: a flag shows in the process list.
    #[arg(long, env = "JOBS_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,

    /// Output: `table` for people, `json` for programs (a list is one JSON array; `events`
    /// writes one JSON object per line).
    #[arg(short = 'o', long, value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns (one job: one field per line).
    Table,
    /// JSON, as the API writes it.
    Json,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List jobs, newest first, following the pages of the list.
    List(ListArgs),
    /// Show one job.
    Get {
        /// The job's id (`job-…`).
        id: JobId,
    },
    /// Create a job (in `created`, or in `pending` with --submit).
    Create(CreateArgs),
    /// Cancel a created, pending or running job (cancelling a cancelled job changes nothing).
    Cancel {
        /// The job's id.
        id: JobId,
    },
    /// Delete a finished job, for good (an active job must be cancelled first).
    Delete {
        /// The job's id.
        id: JobId,
    },
    /// Follow a job until it finishes, with a progress bar from `metadata.progress`.
    ///
    /// The bar shows `metadata.progress` as a fraction from 0 to 1 (0.25 is 25%; values
    /// outside are clamped) and the job's status. It waits with ETags and `Prefer: wait`,
    /// never polling. The exit status tells the outcome: 0 completed, 1 failed or
    /// expired, 2 cancelled.
    Watch {
        /// The job's id.
        id: JobId,
    },
    /// Follow the change stream: every change of the jobs you can see, as it happens.
    ///
    /// Reconnects by itself with Last-Event-ID when the connection breaks. Runs until
    /// interrupted, or until --count events have arrived.
    Events(EventsArgs),
    /// Claim the oldest pending job that matches (workers): it becomes running, yours.
    ///
    /// Prints the claimed job. With nothing to claim, prints nothing (`null` with -o json)
    /// and exits 1.
    Claim(ClaimArgs),
}

/// Filters of `jobs list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only these statuses (repeat it, or separate with commas).
    #[arg(long, value_delimiter = ',')]
    pub status: Vec<JobStatus>,
    /// Only active jobs (created, pending, running).
    #[arg(long)]
    pub active: bool,
    /// Only jobs of this type (job, run, batch).
    #[arg(long)]
    pub job_type: Option<JobType>,
    /// Only jobs of this folder (`source_id`).
    #[arg(long)]
    pub folder_id: Option<String>,
    /// Only jobs of this agent.
    #[arg(long)]
    pub agent_id: Option<String>,
    /// Only jobs of this project (sent as X-Project-Id).
    #[arg(long)]
    pub project: Option<String>,
    /// Oldest first instead of newest first.
    #[arg(long)]
    pub oldest_first: bool,
    /// Show at most this many jobs (1 to 1000).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub limit: u16,
    /// Show every matching job, however many pages that takes.
    #[arg(long, conflicts_with = "limit")]
    pub all: bool,
}

/// What `jobs create` makes.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The kind of work: job (default), run or batch.
    #[arg(long)]
    pub job_type: Option<JobType>,
    /// Initial metadata, a JSON object (`'{"dataset":"orders"}'`).
    #[arg(long)]
    pub metadata: Option<String>,
    /// The job's agent.
    #[arg(long)]
    pub agent_id: Option<String>,
    /// The job's folder (`source_id`).
    #[arg(long, alias = "source-id")]
    pub folder_id: Option<String>,
    /// Where to POST the completion webhook (an absolute http or https URL).
    #[arg(long)]
    pub callback_url: Option<String>,
    /// The most seconds the job may stay running before the server expires it.
    #[arg(long)]
    pub timeout_seconds: Option<i64>,
    /// Mark the job as a background job.
    #[arg(long)]
    pub background: bool,
    /// Create it straight into pending, ready for a worker to claim.
    #[arg(long)]
    pub submit: bool,
    /// File it under this project (sent as X-Project-Id).
    #[arg(long)]
    pub project: Option<String>,
    /// An Idempotency-Key: the same key within 24 hours returns the job made the first
    /// time instead of a second one (default: a fresh key, so retries stay safe).
    #[arg(long)]
    pub idempotency_key: Option<String>,
}

/// What `jobs events` follows.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Only events of these jobs (repeatable).
    #[arg(long)]
    pub job_id: Vec<JobId>,
    /// Only jobs of this type.
    #[arg(long)]
    pub job_type: Option<JobType>,
    /// Only jobs of this agent.
    #[arg(long)]
    pub agent_id: Option<String>,
    /// Only these event types (job.created, job.updated, job.status_changed, job.deleted,
    /// webhook.attempted; repeatable).
    #[arg(long = "type", value_parser = parse_event_type)]
    pub types: Vec<EventType>,
    /// Resume after this event id: replay what followed it, then go on live.
    #[arg(long)]
    pub last_event_id: Option<i64>,
    /// Exit after this many events.
    #[arg(long)]
    pub count: Option<u64>,
}

/// What `jobs claim` takes.
#[derive(Debug, Args)]
pub struct ClaimArgs {
    /// Only jobs of this type.
    #[arg(long)]
    pub job_type: Option<JobType>,
    /// Only jobs of this agent.
    #[arg(long)]
    pub agent_id: Option<String>,
    /// Only jobs of this folder.
    #[arg(long)]
    pub folder_id: Option<String>,
    /// The lease in seconds (1 to 3600; the server's default is 60): renew it with a
    /// heartbeat or an update before it lapses, or the job expires.
    #[arg(long)]
    pub lease_seconds: Option<i64>,
    /// Wait up to this many seconds for a job to become pending (the server caps it).
    #[arg(long)]
    pub wait: Option<u64>,
}

fn parse_event_type(text: &str) -> Result<EventType, String> {
    EventType::parse(text).ok_or_else(|| {
        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        format!("'{text}' is not an event type (expected one of {})", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
