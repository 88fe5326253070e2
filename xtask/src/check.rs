//! `cargo xtask check FILE [--consistency-models ...] [--json]`: checks a stored history and exits
//! 0 valid, 1 invalid, 2 unknown.

use xshell::{Shell, cmd};

use crate::project;

/// Arguments of `xtask check`.
#[derive(clap::Args)]
pub struct Args {
    /// The history: Jepsen history.edn, or JSON with one op per line.
    file: String,
    /// The checker's flags: --consistency-models, --json, --cycle-search-timeout.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    flags: Vec<String>,
}

/// Runs the checker and returns its exit code.
pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<u8> {
    cmd!(sh, "cargo build --quiet --release -p checker").run()?;
    let checker = project::root().join("target/release/checker");
    let (file, flags) = (&args.file, &args.flags);
    project::exit_code(cmd!(sh, "{checker} {file} {flags...}"))
}
