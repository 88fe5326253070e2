//! `cargo xtask test WORKLOAD [flags]`: builds the endpoint and harness, runs the workload, and
//! exits with the verdict: 0 valid, 1 invalid, 2 unknown.

use xshell::{Shell, cmd};

use crate::project;

/// Arguments of `xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Build optimised binaries.
    #[arg(long)]
    release: bool,
    /// The workload: sqlite3-local or powersync-local.
    workload: String,
    /// The harness's flags: --nodes, --concurrency, --rate, --time-limit, --test-count,
    /// --consistency-models, --store ... (see `cargo xtask test WORKLOAD --help`).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    flags: Vec<String>,
}

/// Runs the workload and returns the harness's exit code.
pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<u8> {
    let profile = if args.release { "release" } else { "debug" };
    let release = args.release.then_some("--release");
    cmd!(sh, "cargo build {release...} -p endpoint -p harness").run()?;
    let harness = project::root().join("target").join(profile).join("harness");
    let (workload, flags) = (&args.workload, &args.flags);
    project::exit_code(cmd!(sh, "{harness} test {workload} {flags...}"))
}
