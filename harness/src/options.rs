//! The test's options, with Jepsen's flag names.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use anyhow::bail;
use serde_json::{Value, json};

use crate::nemesis::{Fault, NemesisSpec};
use crate::workload::{TxnModel, Workload};

/// How many workers: a number, or `Nn` for N per node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Exactly this many.
    Fixed(usize),
    /// This many per node.
    PerNode(usize),
}

impl Concurrency {
    /// The number of workers for `nodes` nodes.
    pub fn resolve(self, nodes: usize) -> usize {
        match self {
            Concurrency::Fixed(n) => n,
            Concurrency::PerNode(n) => n * nodes,
        }
    }
}

impl FromStr for Concurrency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (digits, per_node) = match s.strip_suffix('n') {
            Some(d) => (d, true),
            None => (s, false),
        };
        let n: usize = digits
            .parse()
            .map_err(|_| format!("{s:?} is not a worker count like 5 or 2n"))?;
        if n == 0 {
            return Err("concurrency must be at least 1".into());
        }
        Ok(if per_node {
            Concurrency::PerNode(n)
        } else {
            Concurrency::Fixed(n)
        })
    }
}

/// Options of `harness test`.
#[derive(Debug, Clone, clap::Args)]
pub struct TestOptions {
    /// The workload.
    #[arg(value_enum)]
    pub workload: Workload,
    /// The transactions: list-append, or max-write-wins registers.
    #[arg(long, value_enum, default_value = "list-append")]
    pub txn: TxnModel,
    /// Comma-separated node names (PowerSync or SQLite clients).
    #[arg(long, value_delimiter = ',', default_value = "n1")]
    pub nodes: Vec<String>,
    /// Comma-separated names of PostgreSQL clients, for the ps-*-pg-* workloads.
    #[arg(long, value_delimiter = ',')]
    pub postgres_nodes: Vec<String>,
    /// Workers: a number, or `2n` for two per node.
    #[arg(long, default_value = "1n")]
    pub concurrency: Concurrency,
    /// Transactions per second, over all workers.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of workload.
    #[arg(long, default_value_t = 60.0)]
    pub time_limit: f64,
    /// How many times to run the test.
    #[arg(long, default_value_t = 1)]
    pub test_count: usize,
    /// Comma-separated consistency models to check (the workload's own by default).
    #[arg(long, value_delimiter = ',')]
    pub consistency_models: Vec<String>,
    /// The store directory.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// The endpoint program (default: `endpoint` beside this program).
    #[arg(long)]
    pub endpoint_bin: Option<PathBuf>,
    /// Keys active at once (list-append); all the keys (max-write-wins).
    #[arg(long, default_value_t = 8)]
    pub key_count: usize,
    /// Appends per key before it is retired.
    #[arg(long, default_value_t = 256)]
    pub max_writes_per_key: usize,
    /// Micro-ops per transaction, at most (list-append); writes per transaction, at most
    /// (max-write-wins).
    #[arg(long, default_value_t = 4)]
    pub max_txn_length: usize,
    /// Seconds a worker waits for a reply before completing as indeterminate.
    #[arg(long, default_value_t = 5.0)]
    pub op_timeout: f64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Faults: kill, pause, stop-start, disconnect-orderly, disconnect-random, upload-queue
    /// (an observer), all, none.
    #[arg(long, default_value = "none")]
    pub nemesis: NemesisSpec,
    /// Seconds between the start and the end of a fault, and between faults (jittered).
    #[arg(long, default_value_t = 10.0)]
    pub nemesis_interval: f64,
    /// Synced workloads: reconnect a client whose sync is stuck (unconnected for 30 s with no
    /// fault on it) at once, record it, and go on; the stuck client is still reported.
    #[arg(long)]
    pub unstick: bool,
    /// Synced workloads: how to reach the service and PostgreSQL.
    #[command(flatten)]
    pub sync: SyncFlags,
}

/// Where the PowerSync service and PostgreSQL are, for synced workloads. `cargo xtask test`
/// fills these in from powersync/powersync.env.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SyncFlags {
    /// The PowerSync service's base URL.
    #[arg(long)]
    pub sync_url: Option<String>,
    /// PostgreSQL: where uploads go and the final read comes from.
    #[arg(long)]
    pub postgres_url: Option<String>,
    /// The HS256 key of the service's JWKS, base64url.
    #[arg(long)]
    pub jwt_secret: Option<String>,
    /// The key's id.
    #[arg(long)]
    pub jwt_kid: Option<String>,
    /// The audience the service accepts.
    #[arg(long)]
    pub jwt_audience: Option<String>,
    /// Seconds to wait for each node's upload queue to drain and downloads to settle.
    #[arg(long, default_value_t = 60.0)]
    pub quiesce_timeout: f64,
}

impl SyncFlags {
    /// The ports of the service and of PostgreSQL, from their URLs.
    pub fn ports(&self) -> anyhow::Result<(u16, u16)> {
        let port = |url: &Option<String>, what: &str| {
            url.as_deref()
                .and_then(port_of)
                .ok_or_else(|| anyhow::anyhow!("{what} names no port"))
        };
        Ok((
            port(&self.sync_url, "--sync-url")?,
            port(&self.postgres_url, "--postgres-url")?,
        ))
    }

    /// The endpoint's flags for a node that reaches this machine at `host` rather than
    /// 127.0.0.1 (a node in a network namespace).
    pub fn endpoint_args_via(&self, host: &str) -> Result<Vec<String>, String> {
        let mut args = self.endpoint_args()?;
        for pair in args.chunks_mut(2) {
            if pair[0] == "--sync-url" || pair[0] == "--postgres-url" {
                pair[1] = pair[1]
                    .replace("127.0.0.1", host)
                    .replace("localhost", host);
            }
        }
        Ok(args)
    }

    /// The endpoint's flags, or what is missing.
    pub fn endpoint_args(&self) -> Result<Vec<String>, String> {
        let pairs = [
            ("--sync-url", &self.sync_url),
            ("--postgres-url", &self.postgres_url),
            ("--jwt-secret", &self.jwt_secret),
            ("--jwt-kid", &self.jwt_kid),
            ("--jwt-audience", &self.jwt_audience),
        ];
        let missing: Vec<&str> = pairs
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(f, _)| *f)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "missing {} (cargo xtask test passes them from powersync/powersync.env)",
                missing.join(", ")
            ));
        }
        Ok(pairs
            .iter()
            .flat_map(|(flag, value)| {
                [
                    flag.to_string(),
                    value.as_deref().unwrap_or_default().to_owned(),
                ]
            })
            .collect())
    }
}

impl TestOptions {
    /// Rejects option values that cannot make a meaningful test.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.rate > 0.0 && self.rate.is_finite()) {
            bail!("--rate must be a positive number of transactions per second");
        }
        if !(self.time_limit > 0.0 && self.time_limit.is_finite()) {
            bail!("--time-limit must be a positive number of seconds");
        }
        if !(self.op_timeout > 0.0 && self.op_timeout.is_finite()) {
            bail!("--op-timeout must be a positive number of seconds");
        }
        if self.nodes.is_empty() || self.nodes.iter().any(String::is_empty) {
            bail!("--nodes needs at least one node name");
        }
        if self.nodes.len() > self.workload.max_nodes() {
            bail!(
                "{} runs on at most {} node(s): its nodes do not replicate, so several would be \
                 independent databases whose joint history is not serializable by design",
                self.workload.name(),
                self.workload.max_nodes()
            );
        }
        let (takes_postgres, needs_postgres) = self.workload.postgres_nodes();
        if !takes_postgres && !self.postgres_nodes.is_empty() {
            bail!(
                "{} has no PostgreSQL clients; drop --postgres-nodes",
                self.workload.name()
            );
        }
        if needs_postgres && self.postgres_nodes.is_empty() {
            bail!(
                "{} needs PostgreSQL clients to write: give --postgres-nodes pg1",
                self.workload.name()
            );
        }
        let mut names: Vec<&String> = self.nodes.iter().chain(&self.postgres_nodes).collect();
        names.sort();
        if names.windows(2).any(|w| w[0] == w[1]) {
            bail!("node names must be distinct");
        }
        if self.workload.synced() {
            self.sync
                .endpoint_args()
                .map_err(|m| anyhow::anyhow!("{} syncs: {m}", self.workload.name()))?;
        }
        if !(self.nemesis_interval > 0.0 && self.nemesis_interval.is_finite()) {
            bail!("--nemesis-interval must be a positive number of seconds");
        }
        self.nemesis()
            .map_err(|e| anyhow::anyhow!("--nemesis: {e}"))?;
        self.models()?;
        if self.txn == TxnModel::MaxWriteWins && !self.consistency_models.is_empty() {
            bail!(
                "--consistency-models chooses Elle's list-append models; max-write-wins registers \
                 are checked for session guarantees (and real-time order with one client)"
            );
        }
        Ok(())
    }

    /// The faults to inject, and whether to observe upload queues.
    pub fn nemesis(&self) -> Result<(Vec<Fault>, bool), String> {
        let powersync = self.workload.backend() == "powersync";
        self.nemesis.resolve(self.workload.synced(), powersync)
    }

    /// Whether Elle's list-append analysis runs: by default for one client, and whenever
    /// `--consistency-models` asks for it.
    pub fn checks_list_append(&self) -> bool {
        self.workload.checks(self.txn).list_append
            || (self.txn == TxnModel::ListAppend && !self.consistency_models.is_empty())
    }

    /// The consistency models to check.
    pub fn models(&self) -> anyhow::Result<Vec<&'static str>> {
        if self.consistency_models.is_empty() {
            return Ok(self.workload.default_models().to_vec());
        }
        self.consistency_models
            .iter()
            .map(|m| {
                checker::models::canonical_model(m)
                    .ok_or_else(|| anyhow::anyhow!("unknown consistency model {m:?}"))
            })
            .collect()
    }

    /// The per-operation timeout.
    pub fn op_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.op_timeout)
    }

    /// The options as JSON, saved with the run.
    pub fn describe(&self) -> Value {
        json!({
            "workload": self.workload.name(),
            "txn": self.txn.name(),
            "nodes": self.nodes,
            "postgres-nodes": self.postgres_nodes,
            "concurrency": self.concurrency.resolve(self.nodes.len() + self.postgres_nodes.len()),
            "rate": self.rate,
            "time-limit": self.time_limit,
            "consistency-models": self.models().unwrap_or_default(),
            "key-count": self.key_count,
            "max-writes-per-key": self.max_writes_per_key,
            "max-txn-length": self.max_txn_length,
            "op-timeout": self.op_timeout,
            "seed": self.seed,
            "nemesis": self.nemesis().map(|(faults, observe)| {
                let mut names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
                if observe {
                    names.push("upload-queue");
                }
                names
            }).unwrap_or_default(),
            "nemesis-named": if self.nemesis.all {
                Vec::new()
            } else {
                self.nemesis.faults.iter().map(|f| f.name()).collect()
            },
            "nemesis-interval": self.nemesis_interval,
            "list-append-check": self.checks_list_append(),
        })
    }
}

/// The port of a URL such as `http://127.0.0.1:8080/` or `postgresql://u:p@127.0.0.1:54329/db`.
fn port_of(url: &str) -> Option<u16> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port.rsplit_once(':')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_ports_in_urls() {
        assert_eq!(port_of("http://127.0.0.1:8080/"), Some(8080));
        assert_eq!(port_of("postgresql://u:p@127.0.0.1:54329/db"), Some(54329));
        assert_eq!(port_of("postgresql://127.0.0.1/db"), None);
    }

    #[test]
    fn parses_concurrency_like_jepsen() {
        assert_eq!("5".parse(), Ok(Concurrency::Fixed(5)));
        assert_eq!("2n".parse::<Concurrency>().unwrap().resolve(3), 6);
        assert!("n".parse::<Concurrency>().is_err());
        assert!("0".parse::<Concurrency>().is_err());
        assert!("x2".parse::<Concurrency>().is_err());
    }
}
