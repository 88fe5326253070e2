//! `cargo xtask`: the suite's one entry point.

mod analyze;
mod bench;
mod build_lib;
mod check;
mod ci;
mod inspect;
mod pg;
mod prereqs;
mod project;
mod repro;
mod serve;
mod service;
mod synced;
mod test;
mod test_all;
mod test_env;
mod toolchain;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Consistency tests for PowerSync: build, run workloads, check histories.
#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Runs a workload and gates on its verdict (exit 0 valid, 1 invalid, 2 unknown).
    Test(test::Args),
    /// Runs a matrix of workloads and faults and prints a table of verdicts.
    TestAll(test_all::Args),
    /// Checks a stored run again without running anything (exit 0 valid, 1 invalid, 2 unknown).
    Analyze(analyze::Args),
    /// Checks a history file (exit 0 valid, 1 invalid, 2 unknown).
    Check(check::Args),
    /// Formatting, lints, tests and short real workloads: what CI runs.
    Ci,
    /// Builds the PowerSync SQLite extension, target/powersync/libpowersync.so.
    BuildLib,
    /// Runs SQL on a node's database with the PowerSync extension loaded.
    Inspect(inspect::Args),
    /// PostgreSQL for the synced workloads: up, down or status.
    Pg {
        /// What to do.
        #[arg(value_enum)]
        action: pg::Action,
    },
    /// The PowerSync service (Docker Compose or POWERSYNC_SERVICE_CMD): up, down or status.
    Service {
        /// What to do.
        #[arg(value_enum)]
        action: service::Action,
    },
    /// Serves a web page listing every stored run, linking to its files.
    Serve(serve::Args),
    /// Benchmarks, printed as figures and ratios.
    Bench(bench::Args),
    /// Reproduces a PowerSync bug this suite found (exit 1 present, 0 absent, 2 cannot tell).
    Repro(repro::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = project::shell().and_then(|sh| match &cli.task {
        Task::Test(args) => test::run(&sh, args),
        Task::TestAll(args) => test_all::run(&sh, args),
        Task::Analyze(args) => analyze::run(&sh, args),
        Task::Check(args) => check::run(&sh, args),
        Task::Ci => ci::run(&sh),
        Task::BuildLib => build_lib::run(&sh).map(|_| 0),
        Task::Inspect(args) => inspect::run(&sh, args),
        Task::Pg { action } => pg::run(&sh, *action),
        Task::Service { action } => service::run(&sh, *action),
        Task::Serve(args) => serve::run(&sh, args),
        Task::Bench(args) => bench::run(&sh, args),
        Task::Repro(args) => repro::run(&sh, args),
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::from(2)
        }
    }
}
