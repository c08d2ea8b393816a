//! Configuration: every setting from an environment variable or the matching flag.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};

use crate::logging::LogFormat;

/// The Jobs API server.
#[derive(Parser, Debug)]
#[command(
    name = "jobs-server",
    version,
    about = "The Jobs API: track and control asynchronous background jobs."
)]
pub struct Cli {
    /// Settings shared by every command.
    #[command(flatten)]
    pub config: Config,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Subcommand, Debug, Clone)]
pub enum Command {
    /// Apply migrations, then serve the API (the default).
    Serve,
    /// Apply migrations and exit (for fleets that migrate before rolling out).
    Migrate,
    /// Mint a token signed with the configured JOBS_JWT_SECRET.
    Token(TokenArgs),
}

/// What `jobs-server token` puts in the token.
#[derive(Args, Debug, Clone)]
pub struct TokenArgs {
    /// The user (`sub`).
    #[arg(long)]
    pub sub: String,
    /// The organization (`org`).
    #[arg(long)]
    pub org: Option<String>,
    /// Space-separated scopes.
    #[arg(long, default_value = "jobs:read jobs:write")]
    pub scope: String,
    /// Lifetime: a number with s, m, h or d (1h, 30m, 7d).
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: chrono::TimeDelta,
}

/// Parses `90s`, `30m`, `1h`, `7d`.
pub fn parse_ttl(text: &str) -> Result<chrono::TimeDelta, String> {
    let err = || format!("'{text}' is not a duration like 90s, 30m, 1h or 7d");
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits.parse().map_err(|_| err())?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => None,
    };
    secs.filter(|s| *s > 0).and_then(chrono::TimeDelta::try_seconds).ok_or_else(err)
}

/// Server settings. `Cli::parse()` in main (flags, then the environment, then these
/// defaults); `Config::default()` in tests, which reads no environment variable.
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Server settings")]
pub struct Config {
    /// Where the jobs live: sqlite://PATH or postgres://…
    #[arg(
        long,
        env = "JOBS_DATABASE_URL",
        hide_env_values = true,
        default_value = DEFAULT_DATABASE_URL,
        global = true
    )]
    pub database_url: String,
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, env = "JOBS_BIND", default_value = DEFAULT_BIND, global = true)]
    pub bind: String,
    /// HS256 shared secret for Bearer tokens.
    #[arg(long, env = "JOBS_JWT_SECRET", hide_env_values = true, global = true)]
    pub jwt_secret: Option<String>,
    /// Path to a PEM public key (RS256 or ES256), instead of the secret.
    #[arg(long, env = "JOBS_JWT_PUBLIC_KEY", global = true)]
    pub jwt_public_key: Option<PathBuf>,
    /// Required `iss` claim.
    #[arg(long, env = "JOBS_JWT_ISSUER", global = true)]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long, env = "JOBS_JWT_AUDIENCE", global = true)]
    pub jwt_audience: Option<String>,
    /// Secret that signs webhooks (whsec_… base64, or raw bytes).
    #[arg(long, env = "JOBS_WEBHOOK_SECRET", hide_env_values = true, global = true)]
    pub webhook_secret: Option<String>,
    /// Allow webhooks to loopback, private and link-local addresses.
    #[arg(long, env = "JOBS_WEBHOOK_ALLOW_PRIVATE", value_parser = BoolishValueParser::new(),
        default_value = "false", num_args = 0..=1, require_equals = true,
        default_missing_value = "true", global = true)]
    pub webhook_allow_private: bool,
    /// Webhook request timeout, in milliseconds.
    #[arg(long, env = "JOBS_WEBHOOK_TIMEOUT_MS", default_value_t = DEFAULT_WEBHOOK_TIMEOUT_MS, global = true)]
    pub webhook_timeout_ms: u64,
    /// Webhook delivery attempts at most.
    #[arg(long, env = "JOBS_WEBHOOK_MAX_ATTEMPTS", default_value_t = DEFAULT_WEBHOOK_MAX_ATTEMPTS, global = true)]
    pub webhook_max_attempts: u32,
    /// First webhook retry delay, in milliseconds (then ×4 each time).
    #[arg(long, env = "JOBS_WEBHOOK_RETRY_BASE_MS", default_value_t = DEFAULT_WEBHOOK_RETRY_BASE_MS, global = true)]
    pub webhook_retry_base_ms: u64,
    /// Purge terminal jobs older than this many days, 0 to 36500 (unset: keep forever).
    #[arg(long, env = "JOBS_RETENTION_DAYS", global = true,
        value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_RETENTION_DAYS)))]
    pub retention_days: Option<u32>,
    /// Largest metadata of a job, serialized after a merge patch, in bytes.
    #[arg(long, env = "JOBS_MAX_METADATA_BYTES",
        default_value_t = jobs_domain::DEFAULT_MAX_METADATA_BYTES, global = true)]
    pub max_metadata_bytes: usize,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "JOBS_MAX_BODY_BYTES", default_value_t = jobs_http::DEFAULT_MAX_BODY_BYTES, global = true)]
    pub max_body_bytes: usize,
    /// Longest `Prefer: wait` honoured, in seconds (0 switches waiting off).
    #[arg(long, env = "JOBS_MAX_WAIT_SECONDS",
        default_value_t = jobs_http::wait::DEFAULT_MAX_WAIT_SECONDS, global = true)]
    pub max_wait_seconds: u64,
    /// Requests per user (token org + sub) per process: N/s or N/min, with a burst of N
    /// (unset: no limit).
    #[arg(long, env = "JOBS_RATE_LIMIT", value_name = "N/s|N/min", global = true)]
    pub rate_limit: Option<String>,
    /// Open event streams (GET /api/events) per user at most; one more is 429.
    #[arg(long, env = "JOBS_MAX_STREAMS_PER_USER", default_value_t = jobs_http::stream::DEFAULT_MAX_STREAMS_PER_USER, global = true)]
    pub max_streams_per_user: usize,
    /// Database connections per process at most.
    #[arg(long, env = "JOBS_POOL_SIZE", default_value_t = DEFAULT_POOL_SIZE, global = true)]
    pub pool_size: u32,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "JOBS_WORKERS", global = true)]
    pub workers: Option<usize>,
    /// Log filter (env_logger syntax).
    #[arg(
        long = "log",
        alias = "rust-log",
        env = "RUST_LOG",
        default_value = DEFAULT_LOG,
        global = true
    )]
    pub log: String,
    /// Log line format: text (logfmt) or json (one object per line).
    #[arg(long, env = "JOBS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    /// How webhook host names are looked up: the system resolver (not a flag; tests plug
    /// in their own).
    #[arg(skip)]
    pub name_lookup: jobs_http::resolve::Lookup,
    /// Where the store, the sweeper and the dispatcher read the time: the system clock (not
    /// a flag; tests plug in one they move forward).
    #[arg(skip)]
    pub clock: jobs_domain::Clock,
}

/// The longest retention accepted: 100 years keeps every cutoff computation in range.
pub const MAX_RETENTION_DAYS: u32 = 36_500;

const DEFAULT_DATABASE_URL: &str = "sqlite://./data/jobs.db";
const DEFAULT_BIND: &str = "127.0.0.1:8080";
const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 5000;
const DEFAULT_WEBHOOK_MAX_ATTEMPTS: u32 = 8;
const DEFAULT_WEBHOOK_RETRY_BASE_MS: u64 = 1000;
const DEFAULT_POOL_SIZE: u32 = 8;
const DEFAULT_LOG: &str = "info";

/// The documented defaults, as if no flag and no environment variable were given; reads
/// nothing from the environment, so a developer's `JOBS_*` variables never leak into tests.
impl Default for Config {
    fn default() -> Config {
        Config {
            database_url: DEFAULT_DATABASE_URL.to_owned(),
            bind: DEFAULT_BIND.to_owned(),
            jwt_secret: None,
            jwt_public_key: None,
            jwt_issuer: None,
            jwt_audience: None,
            webhook_secret: None,
            webhook_allow_private: false,
            webhook_timeout_ms: DEFAULT_WEBHOOK_TIMEOUT_MS,
            webhook_max_attempts: DEFAULT_WEBHOOK_MAX_ATTEMPTS,
            webhook_retry_base_ms: DEFAULT_WEBHOOK_RETRY_BASE_MS,
            retention_days: None,
            max_metadata_bytes: jobs_domain::DEFAULT_MAX_METADATA_BYTES,
            max_body_bytes: jobs_http::DEFAULT_MAX_BODY_BYTES,
            max_wait_seconds: jobs_http::wait::DEFAULT_MAX_WAIT_SECONDS,
            max_streams_per_user: jobs_http::stream::DEFAULT_MAX_STREAMS_PER_USER,
            rate_limit: None,
            pool_size: DEFAULT_POOL_SIZE,
            workers: None,
            log: DEFAULT_LOG.to_owned(),
            log_format: LogFormat::default(),
            name_lookup: jobs_http::resolve::Lookup::default(),
            clock: jobs_domain::system_clock(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Set in the child process of `the_default_config_reads_no_environment_variable`.
    const CHILD: &str = "JOBS_TEST_CONFIG_CHILD";

    #[test]
    fn the_default_config_reads_no_environment_variable() {
        // Environment variables are process-wide: set them in a child run of this test
        // binary, never in this process.
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "config::tests::default_ignores_the_environment_in_a_child"])
            .args(["--include-ignored", "--nocapture"])
            .env(CHILD, "1")
            .env("JOBS_WEBHOOK_ALLOW_PRIVATE", "true")
            .env("JOBS_MAX_BODY_BYTES", "7")
            .env("JOBS_DATABASE_URL", "sqlite://elsewhere.db")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child test did not run: {text}");
    }

    #[test]
    #[ignore = "run by the_default_config_reads_no_environment_variable in a child process"]
    fn default_ignores_the_environment_in_a_child() {
        assert_eq!(std::env::var(CHILD).as_deref(), Ok("1"), "run me through the parent test");
        // The variables are there: clap sees them...
        let parsed = Cli::parse_from(["jobs-server"]).config;
        assert!(parsed.webhook_allow_private);
        assert_eq!(parsed.max_body_bytes, 7);
        // ...and Default does not.
        let config = Config::default();
        assert!(!config.webhook_allow_private);
        assert_eq!(config.max_body_bytes, jobs_http::DEFAULT_MAX_BODY_BYTES);
        assert_eq!(config.database_url, DEFAULT_DATABASE_URL);
    }

    #[test]
    fn the_default_config_matches_the_flags_defaults() {
        // With no environment variable set, clap and Default agree. Only compared when the
        // developer's shell sets none of them.
        if std::env::vars().any(|(k, _)| k.starts_with("JOBS_") || k == "RUST_LOG") {
            return;
        }
        let parsed = format!("{:?}", Cli::parse_from(["jobs-server"]).config);
        assert_eq!(parsed, format!("{:?}", Config::default()));
    }

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_ttl("90s"), Ok(chrono::TimeDelta::seconds(90)));
        assert_eq!(parse_ttl("1h"), Ok(chrono::TimeDelta::hours(1)));
        assert_eq!(parse_ttl("7d"), Ok(chrono::TimeDelta::days(7)));
        assert!(parse_ttl("1").is_err());
        assert!(parse_ttl("h").is_err());
        assert!(parse_ttl("0s").is_err());
        assert!(parse_ttl("99999999999999999d").is_err());
    }

    #[test]
    fn flags_and_defaults_parse() {
        let cli = Cli::parse_from([
            "jobs-server",
            "--bind",
            "127.0.0.1:0",
            "--webhook-allow-private",
            "migrate",
        ]);
        assert_eq!(cli.config.bind, "127.0.0.1:0");
        assert!(cli.config.webhook_allow_private);
        assert!(matches!(cli.command, Some(Command::Migrate)));
        assert_eq!(cli.config.max_body_bytes, 1024 * 1024);
        assert_eq!(cli.config.rate_limit, None);
        let cli = Cli::parse_from(["jobs-server", "--rate-limit", "5/s"]);
        assert_eq!(cli.config.rate_limit.as_deref(), Some("5/s"));
        let cli = Cli::parse_from(["jobs-server", "--rust-log", "debug"]);
        assert_eq!(cli.config.log, "debug");
    }
}
