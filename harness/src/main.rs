//! `harness`: Jepsen-style test runs against endpoint nodes.
//! `harness test WORKLOAD [flags]` exits 0 when valid, 1 when invalid, 2 when unknown or broken.

mod analysis;
mod bench;
mod client;
mod generator;
mod interrupt;
mod log;
mod nemesis;
mod netns;
mod nodes;
mod options;
mod perf;
mod postgres;
mod progress;
mod recorder;
mod report;
mod repro;
mod runner;
mod serve;
mod store;
mod stuck;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use checker::verdict::Validity;
use clap::{Parser, Subcommand};

/// Runs consistency tests of SQLite and PowerSync endpoints.
#[derive(Parser)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs a workload and checks its history.
    Test(Box<options::TestOptions>),
    /// Checks a stored run again, without running anything.
    Analyze(analysis::AnalyzeOptions),
    /// Serves a web page listing the stored runs, with their files.
    Serve(serve::ServeOptions),
    /// Benchmarks the endpoint's backends against a bare rusqlite loop.
    BenchEndpoint(bench::BenchOptions),
    /// Reproduces a PowerSync bug this suite found (exit 1 present, 0 absent, 2 cannot tell).
    Repro(repro::ReproOptions),
}

fn main() -> ExitCode {
    interrupt::install();
    let result = match Cli::parse().command {
        Command::Test(options) => test(&options).map(|valid| valid.exit_code() as u8),
        Command::Analyze(options) => {
            analysis::analyze(&options).map(|valid| valid.exit_code() as u8)
        }
        Command::Serve(options) => serve::serve(&options).map(|()| 0),
        Command::Repro(options) => options
            .endpoint_bin
            .clone()
            .map_or_else(|| sibling("endpoint"), Ok)
            .and_then(|bin| repro::run(&options, &bin))
            .map(|outcome| match outcome {
                repro::Outcome::Present => 1,
                repro::Outcome::Absent => 0,
            }),
        Command::BenchEndpoint(options) => options
            .endpoint_bin
            .clone()
            .map_or_else(|| sibling("endpoint"), Ok)
            .and_then(|bin| bench::run(&options, &bin))
            .map(|()| 0),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("harness: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn test(options: &options::TestOptions) -> anyhow::Result<Validity> {
    options.validate()?;
    let endpoint_bin = match &options.endpoint_bin {
        Some(path) => path.clone(),
        None => sibling("endpoint")?,
    };
    let mut overall = Validity::Valid;
    for i in 0..options.test_count {
        if options.test_count > 1 {
            eprintln!("test {} of {}", i + 1, options.test_count);
        }
        overall = overall.and(runner::run(options, &endpoint_bin)?);
        if interrupt::interrupted() {
            break;
        }
    }
    Ok(overall)
}

/// A program installed beside this one.
fn sibling(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe().context("locating the harness program")?;
    let path = me.with_file_name(name);
    anyhow::ensure!(
        path.exists(),
        "{} not found; build it (cargo build -p endpoint) or pass --endpoint-bin",
        path.display()
    );
    Ok(path)
}
