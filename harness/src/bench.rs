//! `harness bench-endpoint`: the same list-append transactions through a bare rusqlite loop, the
//! `sqlite3` endpoint and the `powersync` endpoint, with throughput, latency quantiles and ratios.

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use checker::history::Mop;
use endpoint::txn;
use rusqlite::Connection;

use crate::client::{Client, Completion};
use crate::generator::ListAppendGenerator;
use crate::nodes::{Node, Placement};

/// Options of `harness bench-endpoint`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchOptions {
    /// Transactions per backend.
    #[arg(long, default_value_t = 3000)]
    pub txns: usize,
    /// Concurrent clients of each endpoint.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// The endpoint program (default: `endpoint` beside this program).
    #[arg(long)]
    pub endpoint_bin: Option<std::path::PathBuf>,
    /// Seed of the generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// Latencies of one backend's run.
struct Sample {
    name: &'static str,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Sample {
    fn throughput(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn quantile(&self, q: f64) -> f64 {
        let i = ((self.latencies.len() - 1) as f64 * q).round() as usize;
        self.latencies[i].as_secs_f64() * 1000.0
    }
}

/// Runs the benchmark and prints the table.
pub fn run(options: &BenchOptions, endpoint_bin: &Path) -> anyhow::Result<()> {
    let mut generator = ListAppendGenerator::new(options.seed, 8, 256, 4);
    let txns: Vec<Vec<Mop>> = (0..options.txns)
        .map(|_| generator.next_txn(false))
        .collect();
    let dir = tempfile::tempdir()?;
    let mut samples = vec![bare_loop(&dir.path().join("bare.db"), &txns)?];
    for backend in ["sqlite3", "powersync"] {
        let name = if backend == "sqlite3" {
            "sqlite3 endpoint"
        } else {
            "powersync endpoint"
        };
        let mut node = Node::start(
            endpoint_bin,
            backend,
            backend,
            dir.path(),
            &[],
            &Placement::default(),
        )?;
        let sample = through_endpoint(name, &node.address, &txns, options.concurrency);
        node.stop()?;
        samples.push(sample?);
    }
    print_table(&samples, options);
    Ok(())
}

fn bare_loop(path: &Path, txns: &[Vec<Mop>]) -> anyhow::Result<Sample> {
    let mut conn = Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(&format!(
        "CREATE TABLE {} (id TEXT PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL)",
        txn::TABLE
    ))?;
    let mut latencies = Vec::with_capacity(txns.len());
    let start = Instant::now();
    for mops in txns {
        let mops: Vec<txn::Mop> = mops.iter().map(to_endpoint_mop).collect();
        let t = Instant::now();
        txn::apply(&mut conn, &mops).map_err(|e| anyhow::anyhow!("bare loop: {e}"))?;
        latencies.push(t.elapsed());
    }
    Ok(sample("bare rusqlite loop", start.elapsed(), latencies))
}

fn to_endpoint_mop(mop: &Mop) -> txn::Mop {
    match *mop {
        Mop::Append { key, value } => txn::Mop::Append { k: key, v: value },
        Mop::Read { key, .. } => txn::Mop::Read { k: key, v: None },
        Mop::Write { .. } | Mop::ReadRegister { .. } => {
            unreachable!("the list-append generator makes no register micro-ops")
        }
    }
}

fn through_endpoint(
    name: &'static str,
    address: &str,
    txns: &[Vec<Mop>],
    concurrency: usize,
) -> anyhow::Result<Sample> {
    let next = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(txns.len()));
    let start = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..concurrency.max(1))
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    let client = Client::new(address, Duration::from_secs(30));
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(mops) = txns.get(i) else {
                            return Ok(());
                        };
                        let t = Instant::now();
                        match client.txn(mops) {
                            Completion::Ok(_) => {
                                latencies.lock().expect("latency lock").push(t.elapsed())
                            }
                            other => {
                                anyhow::bail!("{name}: transaction {i} did not commit: {other:?}")
                            }
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .try_for_each(|w| w.join().expect("bench worker panicked"))
    })
    .with_context(|| format!("benchmarking {name}"))?;
    Ok(sample(
        name,
        start.elapsed(),
        latencies.into_inner().expect("latency lock"),
    ))
}

fn sample(name: &'static str, elapsed: Duration, mut latencies: Vec<Duration>) -> Sample {
    latencies.sort_unstable();
    Sample {
        name,
        elapsed,
        latencies,
    }
}

fn print_table(samples: &[Sample], options: &BenchOptions) {
    println!(
        "{} list-append transactions each; endpoints driven by {} concurrent clients over HTTP on loopback",
        options.txns, options.concurrency
    );
    println!(
        "{:<20} {:>10} {:>9} {:>9} {:>9} {:>9} {:>12}",
        "backend", "txn/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "txn/s ratio"
    );
    let bare = samples[0].throughput();
    for s in samples {
        println!(
            "{:<20} {:>10.0} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>12.3}",
            s.name,
            s.throughput(),
            s.quantile(0.5),
            s.quantile(0.9),
            s.quantile(0.99),
            s.quantile(1.0),
            s.throughput() / bare
        );
    }
    if let [_, sqlite, powersync] = samples {
        println!(
            "powersync endpoint / sqlite3 endpoint: {:.3} of the throughput, {:.2}x the median latency",
            powersync.throughput() / sqlite.throughput(),
            powersync.quantile(0.5) / sqlite.quantile(0.5)
        );
    }
}
