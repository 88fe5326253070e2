//! `cargo xtask ci`: everything that can run on this machine: formatting, lints, the loadable
//! library, all tests (the connector's against a real PostgreSQL), short real workloads through
//! the endpoint (list-append and max-write-wins, with and without faults), the results browser in
//! headless Chromium, and powersync-single where the PowerSync service can run. It leaves nothing
//! running.

use xshell::{Shell, cmd};

use crate::test_env::TestEnv;
use crate::{build_lib, pg, prereqs, project, service, synced, test};

/// The steps, in order.
const STEPS: &[&str] = &[
    "format",
    "clippy",
    "postgres",
    "tests",
    "sqlite3-local",
    "powersync-local",
    "faults",
    "max-write-wins",
    "browser",
    "powersync-single",
];

/// The variable naming the file where tests append why they were skipped
/// (`endpoint::prerequisite::SKIPPED_LOG`; xtask does not depend on the endpoint crate).
const SKIPPED_LOG: &str = "PSJ_SKIPPED_LOG";

/// How a step ended.
enum Outcome {
    Passed,
    /// It needs something this machine does not have; says what.
    Skipped(String),
}

/// Runs every step; stops at the first failure. PostgreSQL and a service started here are
/// stopped at the end whatever happened.
pub fn run(sh: &Shell) -> anyhow::Result<u8> {
    // What every step needs; the browser and partitions are installed where we can (root).
    prereqs::ensure(sh, &["build", "postgres", "plots"])?;
    let skipped_log = project::root().join("target/ci-skipped-tests.log");
    let _ = std::fs::remove_file(&skipped_log);
    let _log = sh.push_env(SKIPPED_LOG, &skipped_log);
    let (mut passed, mut skipped) = (0, 0);
    let mut failed = None;
    for name in STEPS {
        eprintln!("\n== ci: {name}");
        match step(sh, name) {
            Ok(Outcome::Passed) => passed += 1,
            Ok(Outcome::Skipped(why)) => {
                println!("ci: {name} SKIPPED: {why}");
                skipped += 1;
            }
            Err(e) => {
                eprintln!("ci: {name} failed: {e:#}");
                failed = Some(name);
                break;
            }
        }
    }
    if let Err(e) = service::run(sh, service::Action::Down) {
        eprintln!("ci: stopping the service: {e:#}");
    }
    if let Err(e) = pg::run(sh, pg::Action::Down) {
        eprintln!("ci: stopping PostgreSQL: {e:#}");
    }
    let not_run = STEPS.len() - passed - skipped - usize::from(failed.is_some());
    println!(
        "ci: {passed} passed, {} failed, {skipped} skipped, {not_run} not run",
        usize::from(failed.is_some())
    );
    let skipped_tests = std::fs::read_to_string(&skipped_log).unwrap_or_default();
    let reasons: std::collections::BTreeSet<&str> = skipped_tests.lines().collect();
    if reasons.is_empty() {
        println!("ci: no test was skipped");
    } else {
        println!(
            "ci: {} test(s) skipped for want of: {}",
            skipped_tests.lines().count(),
            reasons.into_iter().collect::<Vec<_>>().join("; ")
        );
    }
    Ok(if failed.is_some() { 1 } else { 0 })
}

fn step(sh: &Shell, name: &str) -> anyhow::Result<Outcome> {
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
        "postgres" => pg::ensure_up(sh)?,
        "tests" => {
            let lib = build_lib::run(sh)?;
            let env = TestEnv::load()?;
            let _lib = sh.push_env("POWERSYNC_LIB", lib);
            let _pg = sh.push_env("POWERSYNC_TEST_PG_URL", env.get("PS_PG_URI")?);
            // The browser test has a step of its own, which requires the browser.
            cmd!(
                sh,
                "cargo test --workspace --exclude powersync-loadable -- --skip browser_"
            )
            .run()?;
        }
        "sqlite3-local" => workload(sh, name, &["--rate", "200", "--concurrency", "4"])?,
        "powersync-local" => workload(sh, name, &["--rate", "150", "--concurrency", "4"])?,
        "faults" => {
            // Every fault that needs no sync service, on real endpoints: acknowledged commits
            // must survive SIGKILL, and the upload queue must stay exact across crashes. A 1 s
            // interval leaves 10 s room for each fault to be injected (and proven) at least
            // once.
            let faults = [
                "--nemesis",
                "kill,pause,stop-start",
                "--nemesis-interval",
                "1",
            ];
            let rate = ["--rate", "100", "--concurrency", "4"];
            workload(sh, "sqlite3-local", &[&faults[..], &rate[..]].concat())?;
            faults_took_effect("sqlite3-local", &["kill", "pause", "stop-start"])?;
            let observed = [
                "--nemesis",
                "kill,pause,stop-start,upload-queue",
                "--nemesis-interval",
                "1",
            ];
            workload(sh, "powersync-local", &[&observed[..], &rate[..]].concat())?;
            faults_took_effect("powersync-local", &["kill", "pause", "stop-start"])?;
        }
        "max-write-wins" => {
            // Registers through plain SQLite and through the SDK, with crashes and pauses.
            let flags = [
                "--txn",
                "max-write-wins",
                "--nemesis",
                "kill,pause",
                "--nemesis-interval",
                "1",
                "--rate",
                "100",
                "--concurrency",
                "4",
            ];
            for name in ["sqlite3-local", "powersync-local"] {
                workload(sh, name, &flags)?;
                faults_took_effect(name, &["kill", "pause"])?;
            }
        }
        "browser" => {
            let chromium = cmd!(sh, "chromium --version")
                .quiet()
                .ignore_stdout()
                .ignore_stderr()
                .run();
            if chromium.is_err() {
                anyhow::ensure!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "CI=true, and the browser test needs Chromium (Debian's package chromium)"
                );
                return Ok(Outcome::Skipped(
                    "needs Chromium (Debian's package chromium; .ci/run installs it)".into(),
                ));
            }
            let _require = sh.push_env("HARNESS_REQUIRE_BROWSER", "1");
            cmd!(sh, "cargo test -p harness --test browser").run()?;
        }
        "powersync-single" => {
            if let Err(why) = service::Runner::find(sh) {
                return Ok(Outcome::Skipped(format!(
                    "needs the PowerSync service: {why}. It runs for real where either exists."
                )));
            }
            let env = TestEnv::load()?;
            let mut flags = vec![
                "--rate".to_owned(),
                "100".into(),
                "--concurrency".into(),
                "3".into(),
            ];
            flags.extend(test::sync_flags(&env)?);
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            let registers = [&flags[..], &["--txn", "max-write-wins"]].concat();
            for flags in [&flags, &registers] {
                // Each run gets a service and PostgreSQL with no past, as `xtask test` gives.
                let started = synced::set_up(sh, &env, synced::Lifecycle::default())?;
                let result = workload(sh, name, flags);
                started.finish(sh)?;
                result?;
            }
            // A synced run also measures replication lag, in its results and as a plot.
            let run = project::root().join("target/ci-store/powersync-single/latest");
            let results = sh.read_file(run.join("results.edn"))?;
            anyhow::ensure!(
                results.contains(":replication-lag {:n1 {:count"),
                "no replication lag in {}",
                run.display()
            );
            let plot = std::fs::metadata(run.join("replication-lag.png"))?;
            anyhow::ensure!(plot.len() > 1000, "replication-lag.png is empty");
            // The reproduction of the service's TRUNCATE bug: its outcome is reported, and only
            // a reproduction that cannot tell fails the step.
            let started = synced::set_up(sh, &env, synced::Lifecycle::default())?;
            let harness = project::root().join("target/debug/harness");
            let sync = test::sync_flags(&env)?;
            let storage = env.get("PS_STORAGE_URI")?;
            let code = project::exit_code(cmd!(
                sh,
                "{harness} repro truncate-checkpoint {sync...} --storage-url {storage}"
            ));
            started.finish(sh)?;
            match code? {
                0 => println!("ci: repro truncate-checkpoint: bug absent in this service"),
                1 => println!(
                    "ci: repro truncate-checkpoint: BUG PRESENT (docs/findings/truncate-checkpoint.md)"
                ),
                other => anyhow::bail!("repro truncate-checkpoint could not tell (exit {other})"),
            }
        }
        other => unreachable!("unknown ci step {other}"),
    }
    Ok(Outcome::Passed)
}

/// The latest CI run of `name` must show each of `faults` in its `results.edn` (`:nemesis`) as
/// injected and effective at least once: a fault that did nothing proves nothing.
fn faults_took_effect(name: &str, faults: &[&str]) -> anyhow::Result<()> {
    let results = project::root().join(format!("target/ci-store/{name}/latest/results.edn"));
    let text = std::fs::read_to_string(&results)?;
    for fault in faults {
        let effective = text
            .split_once(&format!(":{fault} {{:count "))
            .and_then(|(_, rest)| rest.split_once(":effective ").map(|(_, e)| e))
            .and_then(|e| e.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0);
        anyhow::ensure!(
            effective > 0,
            "{name}: {fault} never took effect (see :nemesis in {})",
            results.display()
        );
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
