//! The backends a node can run transactions on.

use crate::postgres::PostgresBackend;
use crate::registers::RegisterMop;
use crate::sdk::SdkBackend;
use crate::sqlite::SqliteBackend;
use crate::txn::{Mop, TxnError};

/// Where a node's transactions run.
pub enum Backend {
    /// Plain SQLite through rusqlite.
    Sqlite(SqliteBackend),
    /// SQLite managed by the PowerSync SDK.
    Sdk(SdkBackend),
    /// PostgreSQL directly.
    Postgres(PostgresBackend),
}

impl Backend {
    /// The name used on the command line.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Sqlite(_) => "sqlite3",
            Backend::Sdk(_) => "powersync",
            Backend::Postgres(_) => "postgres",
        }
    }

    /// Runs one max-write-wins register transaction.
    pub async fn run_registers(&self, mops: &[RegisterMop]) -> Result<Vec<RegisterMop>, TxnError> {
        match self {
            Backend::Sqlite(b) => tokio::task::block_in_place(|| b.run_registers(mops)),
            Backend::Sdk(b) => b.run_registers(mops).await,
            Backend::Postgres(b) => b.run_registers(mops).await,
        }
    }

    /// Runs one list-append transaction.
    pub async fn run(&self, mops: &[Mop]) -> Result<Vec<Mop>, TxnError> {
        match self {
            Backend::Sqlite(b) => tokio::task::block_in_place(|| b.run(mops)),
            Backend::Sdk(b) => b.run(mops).await,
            Backend::Postgres(b) => b.run(mops).await,
        }
    }
}
