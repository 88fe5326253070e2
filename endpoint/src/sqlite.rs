//! The `sqlite3` backend: transactions straight on a SQLite file (WAL, synchronous=FULL).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::Context;
use rusqlite::Connection;

use crate::registers::{self, RegisterMop};
use crate::txn::{self, Mop, TABLE, TxnError};

/// A SQLite database with a pool of connections, one per concurrent transaction.
pub struct SqliteBackend {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl SqliteBackend {
    /// Opens (creating if needed) the database at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let conn = Self::connect(path)?;
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {TABLE} (id TEXT PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL)"
        ))
        .context("creating the list-append table")?;
        conn.execute_batch(registers::CREATE_TABLE)
            .context("creating the register table")?;
        Ok(SqliteBackend {
            path: path.to_owned(),
            idle: Mutex::new(vec![conn]),
        })
    }

    fn connect(path: &Path) -> anyhow::Result<Connection> {
        let conn = Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Ok(conn)
    }

    /// Runs one list-append transaction.
    pub fn run(&self, mops: &[Mop]) -> Result<Vec<Mop>, TxnError> {
        self.with_connection(|conn| txn::apply(conn, mops))
    }

    /// Runs one max-write-wins register transaction.
    pub fn run_registers(&self, mops: &[RegisterMop]) -> Result<Vec<RegisterMop>, TxnError> {
        self.with_connection(|conn| registers::apply(conn, mops))
    }

    /// Runs `f` on an idle connection (opening one if all are busy).
    fn with_connection<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, TxnError>,
    ) -> Result<T, TxnError> {
        let idle = self.idle.lock().expect("pool lock").pop();
        let mut conn = match idle {
            Some(conn) => conn,
            None => Self::connect(&self.path).map_err(|e| TxnError::Aborted(format!("{e:#}")))?,
        };
        let result = f(&mut conn);
        self.idle.lock().expect("pool lock").push(conn);
        result
    }
}
