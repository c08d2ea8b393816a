//! `jobs`: the command line of the Jobs API, built on `jobs-client`.

mod args;
mod commands;
mod output;
mod watch;

use std::process::ExitCode;

use clap::Parser;

use crate::args::Cli;

/// How a command ends: its exit status.
#[derive(Debug)]
pub enum Outcome {
    /// 0: done (a watched job completed; a claim took a job).
    Done,
    /// 1: a watched job failed or expired; a claim found nothing to take.
    Unsuccessful,
    /// 2: a watched job was cancelled.
    Cancelled,
}

/// Why a command failed.
#[derive(Debug)]
pub enum Failure {
    /// Exit 2: the command line names something unusable (the domain's checks refused it).
    Usage(String),
    /// Exit 3: the server refused, or could not be reached.
    Client(jobs_client::Error),
    /// Exit 0: stdout was closed (`jobs events | head`).
    ClosedOutput,
}

impl From<jobs_client::Error> for Failure {
    fn from(err: jobs_client::Error) -> Self {
        match err {
            // A bad --url or --token: the command line's fault, not the server's.
            jobs_client::Error::Config(message) => Failure::Usage(message),
            other => Failure::Client(other),
        }
    }
}

impl From<jobs_domain::ValidationError> for Failure {
    fn from(err: jobs_domain::ValidationError) -> Self {
        Failure::Usage(err.to_string())
    }
}

impl From<std::io::Error> for Failure {
    fn from(_: std::io::Error) -> Self {
        Failure::ClosedOutput
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match commands::run(cli).await {
        Ok(Outcome::Done) | Err(Failure::ClosedOutput) => ExitCode::SUCCESS,
        Ok(Outcome::Unsuccessful) => ExitCode::from(1),
        Ok(Outcome::Cancelled) => ExitCode::from(2),
        Err(Failure::Usage(message)) => {
            eprintln!("jobs: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Client(err)) => {
            eprintln!("jobs: {err}");
            ExitCode::from(3)
        }
    }
}
