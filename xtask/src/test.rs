//! `cargo xtask test WORKLOAD [flags]`: builds the endpoint and harness, runs the workload, and
//! exits with the verdict: 0 valid, 1 invalid, 2 unknown (or a run that could not start clean).

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::test_env::TestEnv;
use crate::{prereqs, project, synced};

/// Workloads whose nodes sync through the PowerSync service and PostgreSQL.
pub const SYNCED: &[&str] = &[
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
    /// ps-ro-pg-rw, ps-rw-pg-ro or convergence; also taken as `--workload NAME`, as in Jepsen.
    #[arg(allow_hyphen_values = true)]
    workload: Option<String>,
    /// The harness's flags: --nodes, --concurrency, --rate, --time-limit, --test-count,
    /// --consistency-models, --store ... (see `cargo xtask test WORKLOAD --help`); for synced
    /// workloads also --reuse-service and --leave-db-running.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    flags: Vec<String>,
}

/// Runs the workload and returns the harness's exit code. A synced workload gets a service and
/// PostgreSQL with no past (see [`synced`]).
pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<u8> {
    let mut flags = args.flags.clone();
    // The first word is the workload, unless it is a flag (`--workload NAME` among them).
    if let Some(first) = args.workload.as_ref().filter(|w| w.starts_with("--")) {
        flags.insert(0, first.clone());
    }
    let workload = match args.workload.as_ref().filter(|w| !w.starts_with("--")) {
        Some(w) => w.clone(),
        None => take_value(&mut flags, "--workload").context(
            "name a workload: cargo xtask test WORKLOAD [flags], or --workload WORKLOAD",
        )?,
    };
    let synced = SYNCED.contains(&workload.as_str());
    let needs: &[&str] = if synced {
        &["build", "plots", "postgres"]
    } else {
        &["build", "plots"]
    };
    prereqs::ensure(sh, needs)?;
    let profile = if args.release { "release" } else { "debug" };
    let release = args.release.then_some("--release");
    cmd!(sh, "cargo build {release...} -p endpoint -p harness").run()?;
    let harness = project::root().join("target").join(profile).join("harness");
    if !synced {
        return project::exit_code(cmd!(sh, "{harness} test {workload} {flags...}"));
    }
    let lifecycle = synced::Lifecycle::from_flags(&mut flags);
    let env = TestEnv::load()?;
    let started = synced::set_up(sh, &env, lifecycle)?;
    flags.extend(sync_flags(&env)?);
    let code = project::exit_code(cmd!(sh, "{harness} test {workload} {flags...}"));
    started.finish(sh)?;
    code
}

/// Removes `--name VALUE` (or `--name=VALUE`) from `flags` and returns the value.
fn take_value(flags: &mut Vec<String>, name: &str) -> Option<String> {
    let prefix = format!("{name}=");
    if let Some(i) = flags.iter().position(|f| f.starts_with(&prefix)) {
        return Some(flags.remove(i)[prefix.len()..].to_owned());
    }
    let i = flags.iter().position(|f| f == name)?;
    flags.remove(i);
    (i < flags.len()).then(|| flags.remove(i))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_a_flag_and_its_value() {
        let mut flags: Vec<String> = [
            "--rate",
            "5",
            "--workload",
            "powersync-single",
            "--nodes",
            "n1",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            take_value(&mut flags, "--workload").as_deref(),
            Some("powersync-single")
        );
        assert_eq!(flags, ["--rate", "5", "--nodes", "n1"]);
        let mut flags = vec!["--workload=sqlite3-local".to_owned()];
        assert_eq!(
            take_value(&mut flags, "--workload").as_deref(),
            Some("sqlite3-local")
        );
        assert!(flags.is_empty());
        assert_eq!(
            take_value(&mut vec!["--workload".to_owned()], "--workload"),
            None
        );
    }

    #[test]
    fn lifecycle_flags_stay_out_of_the_harness() {
        let mut flags: Vec<String> = ["--reuse-service", "--rate", "5", "--leave-db-running"]
            .map(String::from)
            .to_vec();
        let lifecycle = synced::Lifecycle::from_flags(&mut flags);
        assert!(lifecycle.reuse_service && lifecycle.leave_db_running);
        assert_eq!(flags, ["--rate", "5"]);
    }
}
