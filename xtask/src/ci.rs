//! `cargo xtask ci`: everything that can run on this machine: formatting, lints, the loadable
//! library, all tests, and short real workloads through the endpoint.

use xshell::{Shell, cmd};

use crate::{build_lib, project};

/// The steps, in order.
const STEPS: &[&str] = &[
    "format",
    "clippy",
    "tests",
    "sqlite3-local",
    "powersync-local",
];

/// Runs every step; stops at the first failure.
pub fn run(sh: &Shell) -> anyhow::Result<u8> {
    for (passed, name) in STEPS.iter().enumerate() {
        eprintln!("\n== ci: {name}");
        if let Err(e) = step(sh, name) {
            eprintln!("ci: {name} failed: {e:#}");
            println!(
                "ci: {passed} passed, 1 failed, {} not run",
                STEPS.len() - passed - 1
            );
            return Ok(1);
        }
    }
    println!("ci: {} passed, 0 failed", STEPS.len());
    Ok(0)
}

fn step(sh: &Shell, name: &str) -> anyhow::Result<()> {
    match name {
        "format" => cmd!(sh, "cargo fmt --all -- --check").run()?,
        "clippy" => {
            cmd!(
                sh,
                "cargo clippy --workspace --exclude powersync-loadable --all-targets -- -D warnings"
            )
            .run()?;
            cmd!(
                sh,
                "cargo clippy -p powersync-loadable --profile loadable -- -D warnings"
            )
            .run()?;
        }
        "tests" => {
            let lib = build_lib::run(sh)?;
            let _env = sh.push_env("POWERSYNC_LIB", lib);
            cmd!(sh, "cargo test --workspace --exclude powersync-loadable").run()?;
        }
        "sqlite3-local" => workload(sh, name, &["--rate", "200", "--concurrency", "4"])?,
        "powersync-local" => workload(sh, name, &["--rate", "150", "--concurrency", "4"])?,
        other => unreachable!("unknown ci step {other}"),
    }
    Ok(())
}

/// A short real run of a workload through the endpoint; anything but valid fails the step.
fn workload(sh: &Shell, name: &str, flags: &[&str]) -> anyhow::Result<()> {
    let store = project::root().join("target/ci-store");
    let harness = project::root().join("target/debug/harness");
    let code = project::exit_code(cmd!(
        sh,
        "{harness} test {name} --time-limit 10 --store {store} {flags...}"
    ))?;
    anyhow::ensure!(
        code == 0,
        "{name} exited {code} (0 valid, 1 invalid, 2 unknown)"
    );
    Ok(())
}
