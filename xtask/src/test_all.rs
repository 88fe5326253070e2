//! `cargo xtask test-all`: a matrix of workloads and fault combinations, each a real run, then
//! a table of verdicts. Synced workloads run where the PowerSync service can; elsewhere the
//! table says they were skipped and why. Exits 0 only if every run that ran was valid.

use xshell::{Shell, cmd};

use crate::test_env::TestEnv;
use crate::{prereqs, project, service, synced, test};

/// Arguments of `xtask test-all`.
#[derive(clap::Args)]
pub struct Args {
    /// Seconds per run.
    #[arg(long, default_value_t = 30)]
    time_limit: u64,
    /// Transactions per second per run.
    #[arg(long, default_value_t = 100)]
    rate: u64,
    /// Seconds between faults.
    #[arg(long, default_value_t = 3)]
    nemesis_interval: u64,
    /// The transaction models to run the matrix with.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "list-append,max-write-wins"
    )]
    txn: Vec<String>,
}

/// Local workloads and the faults that apply to them.
const LOCAL: &[(&str, &[&str])] = &[
    (
        "sqlite3-local",
        &[
            "none",
            "kill",
            "pause",
            "stop-start",
            "kill,pause,stop-start",
        ],
    ),
    (
        "powersync-local",
        &[
            "none",
            "kill",
            "pause",
            "stop-start",
            "kill,pause,stop-start,upload-queue",
        ],
    ),
];

/// Synced workloads, their extra flags, and their faults.
const SYNCED: &[(&str, &[&str], &[&str])] = &[
    (
        "powersync-single",
        &[],
        &[
            "none",
            "kill",
            "pause",
            "disconnect-orderly",
            "disconnect-random",
            "all",
        ],
    ),
    (
        "ps-rw-pg-rw",
        &["--nodes", "n1,n2", "--postgres-nodes", "pg1"],
        &["none", "kill", "disconnect-random", "all"],
    ),
    (
        "ps-ro-pg-rw",
        &["--nodes", "n1,n2", "--postgres-nodes", "pg1"],
        &["none", "all"],
    ),
    (
        "ps-rw-pg-ro",
        &["--nodes", "n1,n2", "--postgres-nodes", "pg1"],
        &["none", "all"],
    ),
    (
        "convergence",
        &["--nodes", "n1,n2", "--postgres-nodes", "pg1"],
        &["none", "all"],
    ),
];

/// Runs the matrix and prints the table.
pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<u8> {
    prereqs::ensure(sh, &["build", "plots"])?;
    cmd!(sh, "cargo build -p endpoint -p harness").run()?;
    let harness = project::root().join("target/debug/harness");
    let store = project::root().join("store");
    let (time, rate, interval) = (
        args.time_limit.to_string(),
        args.rate.to_string(),
        args.nemesis_interval.to_string(),
    );
    let mut rows: Vec<(String, String, String, String)> = Vec::new();
    let mut run_one = |workload: &str,
                       txn: &str,
                       extra: &[String],
                       nemesis: &str|
     -> anyhow::Result<()> {
        let code = project::exit_code(cmd!(
            sh,
            "{harness} test {workload} --txn {txn} --time-limit {time} --rate {rate} --nemesis {nemesis} --nemesis-interval {interval} --store {store} {extra...}"
        ))?;
        let verdict = match code {
            0 => "valid",
            1 => "INVALID",
            _ => "unknown",
        };
        rows.push((
            workload.to_owned(),
            txn.to_owned(),
            nemesis.to_owned(),
            verdict.to_owned(),
        ));
        Ok(())
    };
    for txn in &args.txn {
        for (workload, faults) in LOCAL {
            for nemesis in *faults {
                run_one(workload, txn, &[], nemesis)?;
            }
        }
    }
    match service::Runner::find(sh) {
        Ok(_) => {
            prereqs::ensure(sh, &["postgres"])?;
            let env = TestEnv::load()?;
            let sync = test::sync_flags(&env)?;
            for txn in &args.txn {
                for (workload, flags, faults) in SYNCED {
                    let extra: Vec<String> = flags
                        .iter()
                        .map(|f| f.to_string())
                        .chain(sync.iter().cloned())
                        .collect();
                    for nemesis in *faults {
                        // Each synced run gets a service and PostgreSQL with no past.
                        let started = synced::set_up(sh, &env, synced::Lifecycle::default())?;
                        let result = run_one(workload, txn, &extra, nemesis);
                        started.finish(sh)?;
                        result?;
                    }
                }
            }
        }
        Err(why) => {
            for (workload, _, _) in SYNCED {
                rows.push((
                    workload.to_string(),
                    "-".into(),
                    "-".into(),
                    format!("skipped: {why}"),
                ));
            }
        }
    }
    println!(
        "\n{:<18} {:<15} {:<36} verdict",
        "workload", "txn", "nemesis"
    );
    for (workload, txn, nemesis, verdict) in &rows {
        println!("{workload:<18} {txn:<15} {nemesis:<36} {verdict}");
    }
    let bad = rows
        .iter()
        .filter(|(_, _, _, v)| v == "INVALID" || v == "unknown")
        .count();
    println!(
        "{} runs, {bad} not valid",
        rows.iter().filter(|(_, _, n, _)| n != "-").count()
    );
    Ok(u8::from(bad > 0))
}
