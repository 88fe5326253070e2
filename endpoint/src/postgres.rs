//! The `postgres` backend: the same transactions straight on PostgreSQL (SERIALIZABLE), for
//! clients that write to the database PowerSync replicates from.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, IsolationLevel, NoTls};

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

    /// Runs one transaction on an idle connection (opening one if all are busy).
    pub async fn run(&self, mops: &[Mop]) -> Result<Vec<Mop>, TxnError> {
        let idle = self.idle.lock().await.pop();
        let mut client = match idle {
            Some(client) if !client.is_closed() => client,
            _ => self
                .connect()
                .await
                .map_err(|e| TxnError::Aborted(format!("connecting to PostgreSQL: {e}")))?,
        };
        let result = apply(&mut client, mops).await;
        if !client.is_closed() {
            self.idle.lock().await.push(client);
        }
        result
    }
}

async fn apply(client: &mut Client, mops: &[Mop]) -> Result<Vec<Mop>, TxnError> {
    let aborted = |e: tokio_postgres::Error| TxnError::Aborted(e.to_string());
    let tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::Serializable)
        .start()
        .await
        .map_err(aborted)?;
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
    match tx.commit().await {
        Ok(()) => Ok(done),
        // PostgreSQL reports a serialization failure at commit only when it rolled back.
        Err(e) if e.code() == Some(&SqlState::T_R_SERIALIZATION_FAILURE) => Err(aborted(e)),
        Err(e) => Err(TxnError::Indeterminate(format!("commit failed: {e}"))),
    }
}
