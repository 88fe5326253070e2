//! `cargo xtask bench endpoint|checker`: optimised builds, then a benchmark that prints figures
//! and ratios in one run.

use xshell::{Shell, cmd};

use crate::{prereqs, project};

/// What to benchmark.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Target {
    /// The endpoint's sqlite3 and powersync backends against a bare rusqlite loop.
    Endpoint,
    /// The checker on 10k, 100k and 1M transactions, against the adya crate.
    Checker,
}

/// Arguments of `xtask bench`.
#[derive(clap::Args)]
pub struct Args {
    /// The benchmark.
    #[arg(value_enum)]
    target: Target,
    /// The benchmark's flags, e.g. --txns 5000 --concurrency 8.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    flags: Vec<String>,
}

/// Builds and runs the benchmark.
pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<u8> {
    prereqs::ensure(sh, &["build"])?;
    let flags = &args.flags;
    match args.target {
        Target::Endpoint => {
            cmd!(sh, "cargo build --release -p endpoint -p harness").run()?;
            let release = project::root().join("target/release");
            let (harness, endpoint) = (release.join("harness"), release.join("endpoint"));
            project::exit_code(cmd!(
                sh,
                "{harness} bench-endpoint --endpoint-bin {endpoint} {flags...}"
            ))
        }
        Target::Checker => project::exit_code(cmd!(
            sh,
            "cargo run --release -p checker --example bench_checker -- {flags...}"
        )),
    }
}
