//! The `powersync` backend: transactions through the PowerSync Rust SDK's writer connection, so
//! each is queued in `ps_crud` for upload, and reads see the transaction's own writes.

use std::path::Path;

use anyhow::Context;
use powersync::env::PowerSyncEnvironment;
use powersync::schema::{Column, Schema, Table};
use powersync::{ConnectionPool, PowerSyncDatabase};
use serde_json::{Value, json};

use crate::txn::{self, Mop, TABLE, TxnError};

/// A PowerSync-managed database.
pub struct SdkBackend {
    db: PowerSyncDatabase,
}

/// The client-side schema: the list-append table (the SDK adds `id`).
pub fn schema() -> Schema {
    let mut schema = Schema::default();
    schema.tables.push(Table::create(
        TABLE,
        vec![Column::integer("k"), Column::text("v")],
        |_| {},
    ));
    schema
}

impl SdkBackend {
    /// Opens the database at `path` with the SDK's statically linked core extension.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        PowerSyncEnvironment::powersync_auto_extension()
            .context("registering the PowerSync core extension")?;
        let pool = ConnectionPool::open(path)
            .with_context(|| format!("opening {} through PowerSync", path.display()))?;
        let env = PowerSyncEnvironment::custom(
            reqwest::Client::new(),
            pool,
            PowerSyncEnvironment::tokio(),
        );
        Ok(SdkBackend {
            db: PowerSyncDatabase::new(env, schema()),
        })
    }

    /// Runs one transaction on the writer connection. The lease is held only while the
    /// transaction runs, never across an `.await`.
    pub async fn run(&self, mops: &[Mop]) -> Result<Vec<Mop>, TxnError> {
        let mut writer = self
            .db
            .writer()
            .await
            .map_err(|e| TxnError::Aborted(format!("no writer connection: {e}")))?;
        tokio::task::block_in_place(|| txn::apply(&mut writer, mops))
    }

    /// The upload queue: CRUD entries and distinct transactions waiting in `ps_crud`.
    pub async fn upload_queue(&self) -> anyhow::Result<Value> {
        let reader = self.db.reader().await?;
        let (entries, transactions): (i64, i64) = reader.query_row(
            "SELECT count(*), count(DISTINCT tx_id) FROM ps_crud",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok(json!({ "count": entries, "entries": entries, "transactions": transactions }))
    }

    /// Every queued CRUD entry, in order: `[{"id", "tx_id", "data"}]`.
    pub async fn crud(&self) -> anyhow::Result<Value> {
        let reader = self.db.reader().await?;
        let mut stmt = reader.prepare("SELECT id, tx_id, data FROM ps_crud ORDER BY id")?;
        let rows = stmt
            .query_map([], |row| {
                let data: String = row.get(2)?;
                Ok(json!({
                    "id": row.get::<_, i64>(0)?,
                    "tx_id": row.get::<_, Option<i64>>(1)?,
                    "data": serde_json::from_str::<Value>(&data).unwrap_or(Value::String(data)),
                }))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Value::Array(rows))
    }

    /// The SDK's sync status.
    pub fn status(&self) -> Value {
        let s = self.db.status();
        let error = |e: Option<&powersync::error::PowerSyncError>| e.map(|e| e.to_string());
        json!({
            "connected": s.is_connected(),
            "connecting": s.is_connecting(),
            "downloading": s.is_downloading(),
            "uploading": s.is_uploading(),
            "has_synced": s.has_synced(),
            "last_synced_at": s.last_synced_at().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map(|d| d.as_millis() as u64),
            "download_error": error(s.download_error()),
            "upload_error": error(s.upload_error()),
        })
    }
}
