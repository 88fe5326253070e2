//! `cargo xtask repro BUG`: builds the endpoint and harness, brings PostgreSQL and the service up
//! as a synced test run does, and runs the harness's reproduction of a PowerSync bug this suite
//! found (docs/findings/). Exit 1 when the bug shows, 0 when it does not, 2 when it cannot tell.

use xshell::{Shell, cmd};

use crate::test_env::TestEnv;
use crate::{prereqs, project, synced, test};

/// Arguments of `xtask repro`.
#[derive(clap::Args)]
pub struct Args {
    /// The bug: truncate-checkpoint.
    bug: String,
    /// The reproduction's own flags, and --reuse-service or --leave-db-running.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    flags: Vec<String>,
}

/// Runs the reproduction and returns its exit code.
pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<u8> {
    prereqs::ensure(sh, &["build", "postgres"])?;
    cmd!(sh, "cargo build -p endpoint -p harness").run()?;
    let harness = project::root().join("target/debug/harness");
    let mut flags = args.flags.clone();
    let lifecycle = synced::Lifecycle::from_flags(&mut flags);
    let env = TestEnv::load()?;
    let started = synced::set_up(sh, &env, lifecycle)?;
    flags.extend(test::sync_flags(&env)?);
    flags.extend([
        "--storage-url".to_owned(),
        env.get("PS_STORAGE_URI")?.to_owned(),
    ]);
    let bug = &args.bug;
    let code = project::exit_code(cmd!(sh, "{harness} repro {bug} {flags...}"));
    started.finish(sh)?;
    code
}
