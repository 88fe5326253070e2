//! `cargo xtask test WORKLOAD [flags]`: builds the endpoint and harness, runs the workload, and
//! exits with the verdict: 0 valid, 1 invalid, 2 unknown.

use xshell::{Shell, cmd};

use crate::test_env::TestEnv;
use crate::{project, service};

/// Workloads whose nodes sync through the PowerSync service and PostgreSQL.
const SYNCED: &[&str] = &[
    "powersync-single",
    "ps-rw-pg-rw",
    "ps-ro-pg-rw",
    "ps-rw-pg-ro",
    "convergence",
];

/// Arguments of `xtask test`.
#[derive(clap::Args)]
pub struct Args {
    /// Build optimised binaries.
    #[arg(long)]
    release: bool,
    /// The workload: sqlite3-local, powersync-local, powersync-single, ps-rw-pg-rw,
    /// ps-ro-pg-rw, ps-rw-pg-ro or convergence.
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
    let workload = &args.workload;
    let mut flags = args.flags.clone();
    if SYNCED.contains(&workload.as_str()) {
        let env = TestEnv::load()?;
        service::up(sh, &env)?;
        flags.extend(sync_flags(&env)?);
    }
    project::exit_code(cmd!(sh, "{harness} test {workload} {flags...}"))
}

/// The harness's flags that say where the service and PostgreSQL are.
pub fn sync_flags(env: &TestEnv) -> anyhow::Result<Vec<String>> {
    Ok(vec![
        "--sync-url".into(),
        format!("http://127.0.0.1:{}/", env.get("PS_PORT")?),
        "--postgres-url".into(),
        env.get("PS_PG_URI")?.into(),
        "--jwt-secret".into(),
        env.get("PS_JWT_SECRET")?.into(),
        "--jwt-kid".into(),
        env.get("PS_JWT_KID")?.into(),
        "--jwt-audience".into(),
        env.get("PS_JWT_AUDIENCE")?.into(),
    ])
}
