//! The workloads: which backend the nodes run and which properties the history must have.

use clap::ValueEnum;

/// A named workload, as given to `xtask test`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// List-append transactions on plain SQLite, one node, no replication.
    Sqlite3Local,
    /// List-append transactions through the PowerSync SDK, local only (no sync service); the
    /// CRUD upload queue is checked against the history.
    PowersyncLocal,
    /// One client synced through the real PowerSync service with PostgreSQL: strict
    /// serializability, and strong convergence with PostgreSQL after quiescence.
    PowersyncSingle,
}

impl Workload {
    /// The workload's name, also the test's name in the store.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Sqlite3Local => "sqlite3-local",
            Workload::PowersyncLocal => "powersync-local",
            Workload::PowersyncSingle => "powersync-single",
        }
    }

    /// The endpoint backend its nodes run.
    pub fn backend(self) -> &'static str {
        match self {
            Workload::Sqlite3Local => "sqlite3",
            Workload::PowersyncLocal | Workload::PowersyncSingle => "powersync",
        }
    }

    /// The consistency models checked unless `--consistency-models` says otherwise.
    pub fn default_models(self) -> &'static [&'static str] {
        &["strict-serializable"]
    }

    /// Whether each node's PowerSync upload queue is checked against the history.
    pub fn checks_crud_queue(self) -> bool {
        self == Workload::PowersyncLocal
    }

    /// Whether nodes sync through the PowerSync service and PostgreSQL.
    pub fn synced(self) -> bool {
        self == Workload::PowersyncSingle
    }

    /// Local workloads have no replication: several nodes would be several independent
    /// databases, whose combined history is not serializable by design. The single-client
    /// workload is, by definition, one client.
    pub fn max_nodes(self) -> usize {
        1
    }
}
