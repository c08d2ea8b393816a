use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    match jobs_server::run_cli(jobs_server::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("jobs-server: {err:#}");
            ExitCode::FAILURE
        }
    }
}
