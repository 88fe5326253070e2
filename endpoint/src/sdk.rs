//! The `powersync` backend: transactions through the PowerSync Rust SDK's writer connection, so
//! each is queued in `ps_crud` for upload, and reads see the transaction's own writes.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use powersync::env::PowerSyncEnvironment;
use powersync::schema::{Column, Schema, Table, TrackPreviousValues};
use powersync::{
    CheckpointMode, ConnectionPool, PowerSyncDatabase, RequestsCheckpointMode, SyncOptions,
};
use serde_json::{Value, json};

use crate::connector::{PostgresApplier, SyncConfig, TokenAuthenticator, Uploader};
use crate::registers::{self, REGISTERS, RegisterMop};
use crate::txn::{self, Mop, TABLE, TxnError};

/// A PowerSync-managed database, synced when given a [`SyncConfig`].
pub struct SdkBackend {
    db: PowerSyncDatabase,
    sync: Option<(SyncConfig, Arc<PostgresApplier>)>,
}

/// The client-side schema: the list-append and register tables (the SDK adds `id`).
pub fn schema() -> Schema {
    let mut schema = Schema::default();
    // Previous values let the uploader apply what a transaction appended, not overwrite
    // what other clients appended meanwhile.
    schema.tables.push(Table::create(
        TABLE,
        vec![Column::integer("k"), Column::text("v")],
        |table| table.options.track_previous_values = Some(TrackPreviousValues::all()),
    ));
    // A register's upload needs no previous value: PostgreSQL keeps the greater.
    schema.tables.push(Table::create(
        REGISTERS,
        vec![Column::integer("k"), Column::integer("v")],
        |_| {},
    ));
    schema
}

impl SdkBackend {
    /// Opens the database at `path` with the SDK's statically linked core extension; with
    /// `sync`, it is synced through the service and uploads go to PostgreSQL.
    pub fn open(path: &Path, sync: Option<SyncConfig>) -> anyhow::Result<Self> {
        PowerSyncEnvironment::powersync_auto_extension()
            .context("registering the PowerSync core extension")?;
        let pool = ConnectionPool::open(path)
            .with_context(|| format!("opening {} through PowerSync", path.display()))?;
        let env = PowerSyncEnvironment::custom(
            reqwest::Client::new(),
            pool,
            PowerSyncEnvironment::tokio(),
        );
        let sync = sync.map(|config| {
            let applier = Arc::new(PostgresApplier::new(&config.postgres_url));
            (config, applier)
        });
        Ok(SdkBackend {
            db: PowerSyncDatabase::new(env, schema()),
            sync,
        })
    }

    fn sync_config(&self) -> anyhow::Result<&(SyncConfig, Arc<PostgresApplier>)> {
        self.sync
            .as_ref()
            .context("this node runs local only: start it with --sync-url to sync")
    }

    /// Connects to the service (again): downloads and uploads run in the background.
    pub async fn connect(&self) -> anyhow::Result<()> {
        let (config, applier) = self.sync_config()?;
        let mut options = SyncOptions::new(
            &config.service_url,
            TokenAuthenticator::new(config)?,
            Uploader::new(self.db.clone(), applier.clone()),
        );
        options.with_checkpoint_mode(CheckpointMode::Requests(RequestsCheckpointMode::default()));
        options.with_retry_delay(Duration::from_secs(1));
        self.db.connect(options).await;
        Ok(())
    }

    /// Disconnects from the service; local transactions go on.
    pub async fn disconnect(&self) -> anyhow::Result<()> {
        self.sync_config()?;
        self.db.disconnect().await;
        Ok(())
    }

    /// Waits until the SDK reports a complete sync, or fails after `timeout`.
    pub async fn wait_first_sync(&self, timeout: Duration) -> anyhow::Result<()> {
        self.poll(timeout, "the first full sync", || async {
            let status = self.db.status();
            Ok(status.has_synced().then_some(()))
        })
        .await
    }

    /// Waits until the upload queue is empty.
    pub async fn wait_upload_queue_empty(&self, timeout: Duration) -> anyhow::Result<Value> {
        self.poll(timeout, "an empty upload queue", || async {
            let queue = self.upload_queue().await?;
            Ok((queue["count"] == 0).then_some(queue))
        })
        .await
    }

    /// Waits until a checkpoint requested now has been applied locally (so everything in
    /// PostgreSQL before this call is in the local database) and nothing is downloading.
    pub async fn wait_downloaded(&self, timeout: Duration) -> anyhow::Result<Value> {
        self.sync_config()?;
        let started = Instant::now();
        let request = tokio::time::timeout(timeout, self.db.request_checkpoint())
            .await
            .context("timed out requesting a checkpoint")?
            .map_err(|e| anyhow::anyhow!("requesting a checkpoint: {e}"))?;
        tokio::time::timeout(
            timeout.saturating_sub(started.elapsed()),
            request.wait_for_sync(),
        )
        .await
        .context("timed out waiting for the requested checkpoint")?
        .map_err(|e| anyhow::anyhow!("waiting for the requested checkpoint: {e}"))?;
        let left = timeout.saturating_sub(started.elapsed());
        self.poll(left, "downloading to stop", || async {
            Ok((!self.db.status().is_downloading()).then_some(()))
        })
        .await?;
        Ok(json!({ "waited_ms": started.elapsed().as_millis() as u64 }))
    }

    async fn poll<T, F, Fut>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: F,
    ) -> anyhow::Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<Option<T>>>,
    {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(done) = check().await? {
                return Ok(done);
            }
            if Instant::now() >= deadline {
                bail!("waited {timeout:?} for {what}; status: {}", self.status());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs one list-append transaction on the writer connection.
    pub async fn run(&self, mops: &[Mop]) -> Result<Vec<Mop>, TxnError> {
        self.with_writer(|conn| txn::apply(conn, mops)).await
    }

    /// Runs one max-write-wins register transaction on the writer connection.
    pub async fn run_registers(&self, mops: &[RegisterMop]) -> Result<Vec<RegisterMop>, TxnError> {
        self.with_writer(|conn| registers::apply(conn, mops)).await
    }

    /// Runs `f` on the writer connection. The lease is held only while `f` runs, never across
    /// an `.await`.
    async fn with_writer<T>(
        &self,
        f: impl FnOnce(&mut rusqlite::Connection) -> Result<T, TxnError>,
    ) -> Result<T, TxnError> {
        let mut writer = self
            .db
            .writer()
            .await
            .map_err(|e| TxnError::Aborted(format!("no writer connection: {e}")))?;
        tokio::task::block_in_place(|| f(&mut writer))
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

    /// The keys the node's synced tables hold, with their values as stored:
    /// `{"lists": {"k": "v"}, "registers": {"k": v}}`. A run starts only when both are empty.
    pub async fn contents(&self) -> anyhow::Result<Value> {
        let reader = self.db.reader().await?;
        let mut lists = serde_json::Map::new();
        let mut stmt = reader.prepare(&format!("SELECT k, v FROM {TABLE} ORDER BY k"))?;
        for row in stmt.query_map([], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, String>(1)?))
        })? {
            let (k, v) = row?;
            lists.insert(k.to_string(), Value::String(v));
        }
        let mut registers = serde_json::Map::new();
        let mut stmt = reader.prepare(&format!("SELECT k, v FROM {REGISTERS} ORDER BY k"))?;
        for row in stmt.query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?)))? {
            let (k, v) = row?;
            registers.insert(k.to_string(), Value::from(v));
        }
        Ok(json!({ "lists": lists, "registers": registers }))
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
