//! The workloads: which backends the nodes run, who writes, and which properties the history
//! must have.

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
    /// PowerSync clients and PostgreSQL clients, all reading and writing: causal consistency
    /// (session guarantees) and strong convergence.
    PsRwPgRw,
    /// PowerSync clients only read; PostgreSQL clients write.
    PsRoPgRw,
    /// PowerSync clients write; PostgreSQL clients only read.
    PsRwPgRo,
    /// Everyone writes; only strong convergence is checked.
    Convergence,
}

/// The transactions a run issues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum TxnModel {
    /// Elle's list-append: appends of unique values to lists, and reads of whole lists.
    #[default]
    ListAppend,
    /// Max-write-wins registers: each transaction reads every key and writes a few with values
    /// unique and increasing over the run; every participant keeps the greater value.
    MaxWriteWins,
}

impl TxnModel {
    /// The name on the command line and in `test.json`.
    pub fn name(self) -> &'static str {
        match self {
            TxnModel::ListAppend => "list-append",
            TxnModel::MaxWriteWins => "max-write-wins",
        }
    }
}

/// Which checks a workload's history gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checks {
    /// Elle's list-append analysis against consistency models.
    pub list_append: bool,
    /// Session guarantees per process.
    pub causal: bool,
    /// Every client and PostgreSQL end with the same state, holding every acknowledged append.
    pub convergence: bool,
    /// Each node's upload queue against the history (local PowerSync, list-append: the queue
    /// is read as appends).
    pub crud_queue: bool,
    /// The max-write-wins register checks instead of the list-append ones: session guarantees
    /// (with real time for one client) and, where `convergence`, convergence of registers.
    pub registers: bool,
}

impl Workload {
    /// The workload's name, also the test's name in the store.
    pub fn name(self) -> &'static str {
        match self {
            Workload::Sqlite3Local => "sqlite3-local",
            Workload::PowersyncLocal => "powersync-local",
            Workload::PowersyncSingle => "powersync-single",
            Workload::PsRwPgRw => "ps-rw-pg-rw",
            Workload::PsRoPgRw => "ps-ro-pg-rw",
            Workload::PsRwPgRo => "ps-rw-pg-ro",
            Workload::Convergence => "convergence",
        }
    }

    /// The endpoint backend of its (non-PostgreSQL) nodes.
    pub fn backend(self) -> &'static str {
        match self {
            Workload::Sqlite3Local => "sqlite3",
            _ => "powersync",
        }
    }

    /// The consistency models checked unless `--consistency-models` says otherwise.
    pub fn default_models(self) -> &'static [&'static str] {
        &["strict-serializable"]
    }

    /// The checks of its `txn` transactions, by default. With many clients a history is not
    /// serializable by design (clients commit locally and sync later), so Elle's analysis runs
    /// only when asked for.
    pub fn checks(self, txn: TxnModel) -> Checks {
        let many = matches!(
            self,
            Workload::PsRwPgRw | Workload::PsRoPgRw | Workload::PsRwPgRo | Workload::Convergence
        );
        let lists = txn == TxnModel::ListAppend;
        Checks {
            list_append: lists && !many,
            causal: lists && many && self != Workload::Convergence,
            convergence: self.synced(),
            crud_queue: lists && self == Workload::PowersyncLocal,
            registers: !lists,
        }
    }

    /// Whether nodes sync through the PowerSync service and PostgreSQL.
    pub fn synced(self) -> bool {
        !matches!(self, Workload::Sqlite3Local | Workload::PowersyncLocal)
    }

    /// Whether its PowerSync nodes, and its PostgreSQL nodes, only read.
    pub fn read_only(self) -> (bool, bool) {
        match self {
            Workload::PsRoPgRw => (true, false),
            Workload::PsRwPgRo => (false, true),
            _ => (false, false),
        }
    }

    /// Whether it takes PostgreSQL nodes (`--postgres-nodes`), and whether it needs one.
    pub fn postgres_nodes(self) -> (bool, bool) {
        match self {
            Workload::PsRwPgRw | Workload::PsRwPgRo | Workload::Convergence => (true, false),
            Workload::PsRoPgRw => (true, true),
            _ => (false, false),
        }
    }

    /// Local workloads have no replication: several nodes would be several independent
    /// databases, whose combined history is not serializable by design. The single-client
    /// workload is, by definition, one client.
    pub fn max_nodes(self) -> usize {
        match self {
            Workload::Sqlite3Local | Workload::PowersyncLocal | Workload::PowersyncSingle => 1,
            _ => usize::MAX,
        }
    }
}
