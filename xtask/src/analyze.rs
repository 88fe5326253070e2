//! `cargo xtask analyze [-t INDEX_OR_PATH] [--consistency-models ...]`: checks a stored run again
//! without running anything, rewrites its results, and exits 0 valid, 1 invalid, 2 unknown.

use xshell::{Shell, cmd};

use crate::project;

/// Arguments of `xtask analyze`.
#[derive(clap::Args)]
pub struct Args {
    /// The harness's flags: -t INDEX_OR_PATH (0 = the latest run), --store, --consistency-models.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    flags: Vec<String>,
}

/// Builds the harness and re-analyses.
pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<u8> {
    cmd!(sh, "cargo build -p harness").run()?;
    let harness = project::root().join("target/debug/harness");
    let flags = &args.flags;
    project::exit_code(cmd!(sh, "{harness} analyze {flags...}"))
}
