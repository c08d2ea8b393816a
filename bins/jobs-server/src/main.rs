use std::process::ExitCode;

use clap::Parser;

/// jemalloc keeps its bookkeeping apart from the memory it hands out, so buffers that are
/// reserved but never written (actix keeps 16 KiB per connection) cost no resident memory:
/// 10 000 held requests fit in a fraction of what the system allocator needs.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let result = jobs_server::run_cli(jobs_server::Cli::parse());
    // Log lines still buffered go out before the process ends.
    log::logger().flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("jobs-server: {err:#}");
            ExitCode::FAILURE
        }
    }
}
