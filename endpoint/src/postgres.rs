//! The `postgres` backend: the same transactions straight on PostgreSQL (SERIALIZABLE), for
//! clients that write to the database PowerSync replicates from.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, IsolationLevel, NoTls, Transaction};

use crate::registers::{REGISTERS, RegisterMop};
use crate::txn::{Mop, TABLE, TxnError, decode_list};

/// Connects to PostgreSQL with short timeouts, so that a connection whose packets are dropped
/// (a partition) fails within seconds instead of hanging on TCP retransmissions, and is replaced.
pub async fn connect(url: &str) -> Result<Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = url.parse()?;
    config
        .connect_timeout(Duration::from_secs(5))
        .tcp_user_timeout(Duration::from_secs(10))
        .keepalives_idle(Duration::from_secs(5))
        .keepalives_interval(Duration::from_secs(2))
        .keepalives_retries(3);
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            log::warn!("PostgreSQL connection closed: {e}");
        }
    });
    Ok(client)
}

/// A PostgreSQL database with a pool of connections.
pub struct PostgresBackend {
    url: String,
    idle: Mutex<Vec<Client>>,
}

impl PostgresBackend {
    /// Connects once, to fail early if the database is unreachable.
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let backend = PostgresBackend {
            url: url.to_owned(),
            idle: Mutex::new(Vec::new()),
        };
        let client = backend.connect().await?;
        backend.idle.lock().await.push(client);
        Ok(backend)
    }

    async fn connect(&self) -> Result<Client, tokio_postgres::Error> {
        connect(&self.url).await
    }

    /// Runs one list-append transaction.
    pub async fn run(&self, mops: &[Mop]) -> Result<Vec<Mop>, TxnError> {
        self.with_client(async |client| apply(client, mops).await)
            .await
    }

    /// Runs one max-write-wins register transaction.
    pub async fn run_registers(&self, mops: &[RegisterMop]) -> Result<Vec<RegisterMop>, TxnError> {
        self.with_client(async |client| apply_registers(client, mops).await)
            .await
    }

    /// Runs `f` on an idle connection (opening one if all are busy).
    async fn with_client<T>(
        &self,
        f: impl AsyncFnOnce(&mut Client) -> Result<T, TxnError>,
    ) -> Result<T, TxnError> {
        let idle = self.idle.lock().await.pop();
        let mut client = match idle {
            Some(client) if !client.is_closed() => client,
            _ => self
                .connect()
                .await
                .map_err(|e| TxnError::Aborted(format!("connecting to PostgreSQL: {e}")))?,
        };
        let result = f(&mut client).await;
        if !client.is_closed() {
            self.idle.lock().await.push(client);
        }
        result
    }
}

async fn apply(client: &mut Client, mops: &[Mop]) -> Result<Vec<Mop>, TxnError> {
    let aborted = |e: tokio_postgres::Error| TxnError::Aborted(e.to_string());
    let tx = begin(client).await?;
    let mut done = Vec::with_capacity(mops.len());
    for mop in mops {
        match *mop {
            Mop::Read { k, .. } => {
                let row = tx
                    .query_opt(
                        &format!("SELECT v FROM {TABLE} WHERE id = $1"),
                        &[&k.to_string()],
                    )
                    .await
                    .map_err(aborted)?;
                let text: String = row.map(|r| r.get(0)).unwrap_or_default();
                let list = decode_list(&text).map_err(TxnError::Aborted)?;
                done.push(Mop::Read { k, v: Some(list) });
            }
            Mop::Append { k, v } => {
                tx.execute(
                    &format!(
                        "INSERT INTO {TABLE} (id, k, v) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET v = CASE WHEN {TABLE}.v = '' THEN EXCLUDED.v
                                                                 ELSE {TABLE}.v || ',' || EXCLUDED.v END"
                    ),
                    &[&k.to_string(), &k, &v.to_string()],
                )
                .await
                .map_err(aborted)?;
                done.push(mop.clone());
            }
        }
    }
    commit(tx).await.map(|()| done)
}

/// Starts a SERIALIZABLE transaction.
async fn begin(client: &mut Client) -> Result<Transaction<'_>, TxnError> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::Serializable)
        .start()
        .await
        .map_err(|e| TxnError::Aborted(e.to_string()))
}

/// Commits: a serialization failure at commit means it rolled back; any other failure leaves
/// the outcome unknown.
async fn commit(tx: Transaction<'_>) -> Result<(), TxnError> {
    match tx.commit().await {
        Ok(()) => Ok(()),
        Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => {
            Err(TxnError::Aborted(e.to_string()))
        }
        Err(e) => Err(TxnError::Indeterminate(format!("commit failed: {e}"))),
    }
}

/// Runs register micro-ops: a write keeps the greater of the current and the new value.
async fn apply_registers(
    client: &mut Client,
    mops: &[RegisterMop],
) -> Result<Vec<RegisterMop>, TxnError> {
    let aborted = |e: tokio_postgres::Error| TxnError::Aborted(e.to_string());
    let tx = begin(client).await?;
    let mut done = Vec::with_capacity(mops.len());
    for mop in mops {
        match *mop {
            RegisterMop::Read { k, .. } => {
                let row = tx
                    .query_opt(
                        &format!("SELECT v FROM {REGISTERS} WHERE id = $1"),
                        &[&k.to_string()],
                    )
                    .await
                    .map_err(aborted)?;
                done.push(RegisterMop::Read {
                    k,
                    v: row.map(|r| r.get(0)),
                });
            }
            RegisterMop::Write { k, v } => {
                tx.execute(
                    &format!(
                        "INSERT INTO {REGISTERS} (id, k, v) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET v = GREATEST({REGISTERS}.v, EXCLUDED.v)"
                    ),
                    &[&k.to_string(), &k, &v],
                )
                .await
                .map_err(aborted)?;
                done.push(*mop);
            }
        }
    }
    commit(tx).await.map(|()| done)
}
