//! The backend connector of a synced node: an [`Authenticator`] that mints short-lived HS256 JWTs
//! from the key in the service's config, and a [`MutationUploader`] that applies each CRUD
//! transaction in one PostgreSQL transaction, retrying transient errors, never twice.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use powersync::error::PowerSyncError;
use powersync::{Authenticator, MutationUploader, PowerSyncDatabase, UpdateType};
use serde::Serialize;
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, IsolationLevel, Transaction};

use crate::registers::REGISTERS;
use crate::txn::TABLE;

/// How a node reaches the PowerSync service and PostgreSQL.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// The service's base URL, e.g. `http://127.0.0.1:8080/`.
    pub service_url: String,
    /// PostgreSQL, for uploads.
    pub postgres_url: String,
    /// The HS256 key, base64url without padding, as in the service's JWKS.
    pub jwt_secret: String,
    /// The key's id.
    pub jwt_kid: String,
    /// The audience the service accepts.
    pub jwt_audience: String,
    /// The token's subject (the node's name).
    pub subject: String,
}

/// Mints a fresh token for every request for credentials.
pub struct TokenAuthenticator {
    key: EncodingKey,
    header: Header,
    audience: String,
    subject: String,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

/// Token lifetime: short, so expiry and renewal are exercised.
const TOKEN_LIFETIME: Duration = Duration::from_secs(300);

impl TokenAuthenticator {
    /// Builds the authenticator; fails if the secret is not base64url.
    pub fn new(config: &SyncConfig) -> anyhow::Result<Self> {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(config.jwt_kid.clone());
        Ok(TokenAuthenticator {
            key: EncodingKey::from_base64_secret(&base64url_to_standard(&config.jwt_secret))?,
            header,
            audience: config.jwt_audience.clone(),
            subject: config.subject.clone(),
        })
    }

    /// A token valid from now for [`TOKEN_LIFETIME`].
    pub fn token(&self) -> Result<String, jsonwebtoken::errors::Error> {
        let iat = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            sub: &self.subject,
            aud: &self.audience,
            iat,
            exp: iat + TOKEN_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(&self.header, &claims, &self.key)
    }
}

/// The service stores the key as base64url without padding; `jsonwebtoken` reads standard
/// base64.
fn base64url_to_standard(key: &str) -> String {
    let mut standard: String = key
        .chars()
        .map(|c| match c {
            '-' => '+',
            '_' => '/',
            other => other,
        })
        .collect();
    while !standard.len().is_multiple_of(4) {
        standard.push('=');
    }
    standard
}

#[async_trait]
impl Authenticator for TokenAuthenticator {
    async fn resolve_credentials(&self) -> Result<Arc<String>, PowerSyncError> {
        self.token()
            .map(Arc::new)
            .map_err(PowerSyncError::upload_error)
    }
}

/// The kind of a queued change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeOp {
    /// Insert or replace the row.
    Put,
    /// Update the columns given.
    Patch,
    /// Delete the row.
    Delete,
}

impl From<&UpdateType> for ChangeOp {
    fn from(op: &UpdateType) -> Self {
        match op {
            UpdateType::Put => ChangeOp::Put,
            UpdateType::Patch => ChangeOp::Patch,
            UpdateType::Delete => ChangeOp::Delete,
        }
    }
}

/// One queued change, copied out of the SDK's entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// PUT, PATCH or DELETE.
    pub op: ChangeOp,
    /// The table.
    pub table: String,
    /// The row id.
    pub id: String,
    /// The columns written.
    pub data: Map<String, Value>,
    /// The row's columns before the change (PATCH), when tracked.
    pub previous: Option<Map<String, Value>>,
}

impl Change {
    /// A register change's key (from the row id) and value; an error names what is wrong.
    pub fn register(&self) -> Result<(i64, i64), String> {
        let k = self
            .id
            .parse()
            .map_err(|_| format!("register row id {:?} is not an integer key", self.id))?;
        let v = self.data.get("v").and_then(Value::as_i64).ok_or_else(|| {
            format!(
                "register change of {} carries no integer v: {:?}",
                self.id, self.data
            )
        })?;
        Ok((k, v))
    }
}

/// The elements a list-append change added: `new` minus the `old` prefix, comma-separated;
/// `None` when `new` does not extend `old` (then the value is written as given).
fn appended_suffix<'a>(old: &str, new: &'a str) -> Option<&'a str> {
    if old.is_empty() {
        return Some(new);
    }
    let rest = new.strip_prefix(old)?;
    if rest.is_empty() {
        Some("")
    } else {
        rest.strip_prefix(',')
    }
}

/// What applying a CRUD transaction did.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// Applied now, at the given attempt (transient errors are retried).
    Now {
        /// 1 when the first attempt committed.
        attempt: u32,
    },
    /// Applied before (recorded in `ps_applied_txns`): not applied again.
    Already,
}

/// Applies CRUD transactions to PostgreSQL.
pub struct PostgresApplier {
    url: String,
    client: Mutex<Option<Client>>,
}

/// SQLSTATEs worth retrying: serialization failure, deadlock, statement cancelled.
fn transient(e: &tokio_postgres::Error) -> bool {
    e.code().is_some_and(|c| {
        [
            SqlState::T_R_SERIALIZATION_FAILURE,
            SqlState::T_R_DEADLOCK_DETECTED,
            SqlState::QUERY_CANCELED,
        ]
        .contains(c)
    })
}

/// Attempts per CRUD transaction before the error goes back to the SDK, which retries later.
const ATTEMPTS: u32 = 8;

impl PostgresApplier {
    /// An applier for the database at `url`; connects on first use.
    pub fn new(url: &str) -> Self {
        PostgresApplier {
            url: url.to_owned(),
            client: Mutex::new(None),
        }
    }

    /// Applies `changes`, the CRUD transaction `tx_id` of client `client_id` (each checked
    /// first: one that cannot be applied fails the whole transaction), in one REPEATABLE
    /// READ transaction that also records it, so a second attempt is detected and skipped.
    /// Retries transient errors with bounded exponential backoff.
    pub async fn apply(
        &self,
        client_id: &str,
        tx_id: i64,
        changes: &[Change],
    ) -> anyhow::Result<Applied> {
        let steps = plan(changes)
            .map_err(|e| anyhow::anyhow!("CRUD transaction {tx_id} cannot be applied: {e}"))?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut guard = self.client.lock().await;
            if guard.as_ref().is_none_or(Client::is_closed) {
                *guard = Some(crate::postgres::connect(&self.url).await?);
            }
            let client = guard.as_mut().expect("connected above");
            match apply_once(client, client_id, tx_id, &steps).await {
                Err(e) if transient(&e) && attempt < ATTEMPTS => {
                    drop(guard);
                    let backoff = Duration::from_millis(20 << attempt.min(7));
                    log::info!("CRUD transaction {tx_id}: {e}; retry {attempt} in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                }
                Err(e) => {
                    if client.is_closed() {
                        *guard = None;
                    }
                    return Err(
                        anyhow::Error::new(e).context(format!("applying CRUD transaction {tx_id}"))
                    );
                }
                Ok(true) => return Ok(Applied::Now { attempt }),
                Ok(false) => return Ok(Applied::Already),
            }
        }
    }
}

/// One attempt: `Ok(false)` when the transaction was applied before.
async fn apply_once(
    client: &mut Client,
    client_id: &str,
    tx_id: i64,
    steps: &[Step<'_>],
) -> Result<bool, tokio_postgres::Error> {
    // Registers only rise (one GREATEST upsert each, which re-reads the row under its lock):
    // READ COMMITTED applies them without the serialization failures REPEATABLE READ gives
    // every concurrent writer of a hot register. Lists read what PostgreSQL holds before they
    // add to it, and need REPEATABLE READ.
    let registers_only = steps.iter().all(|s| !matches!(s, Step::List(_)));
    let level = if registers_only {
        IsolationLevel::ReadCommitted
    } else {
        IsolationLevel::RepeatableRead
    };
    let tx = client
        .build_transaction()
        .isolation_level(level)
        .start()
        .await?;
    let recorded = tx
        .execute(
            "INSERT INTO ps_applied_txns (client_id, tx_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&client_id, &tx_id],
        )
        .await?;
    if recorded == 0 {
        tx.rollback().await?;
        return Ok(false);
    }
    // Rows in one order for every client: concurrent register transactions then wait for one
    // another instead of deadlocking.
    let mut ordered: Vec<&Step<'_>> = steps.iter().collect();
    if registers_only {
        ordered.sort_by_key(|s| match s {
            Step::RaiseRegister { id, .. } | Step::DeleteRegister(id) => *id,
            Step::List(_) => "",
        });
    }
    for step in ordered {
        match *step {
            Step::List(change) => apply_list_change(&tx, change).await?,
            Step::RaiseRegister { id, k, v } => raise_register(&tx, id, k, v).await?,
            Step::DeleteRegister(id) => {
                tx.execute(&format!("DELETE FROM {REGISTERS} WHERE id = $1"), &[&id])
                    .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(true)
}

/// A change checked and ready to apply.
enum Step<'a> {
    /// A list change.
    List(&'a Change),
    /// Raise register `k` (row `id`) to `v` if greater.
    RaiseRegister { id: &'a str, k: i64, v: i64 },
    /// Delete a register's row.
    DeleteRegister(&'a str),
}

/// Checks every change before anything is applied: an unknown table, or a register change
/// without an integer key and value, fails the upload (the SDK retries; the queue stalls, which
/// the final phase reports) rather than being skipped.
fn plan(changes: &[Change]) -> Result<Vec<Step<'_>>, String> {
    changes
        .iter()
        .map(|change| match (change.table.as_str(), change.op) {
            (TABLE, _) => Ok(Step::List(change)),
            (REGISTERS, ChangeOp::Delete) => Ok(Step::DeleteRegister(&change.id)),
            (REGISTERS, _) => change.register().map(|(k, v)| Step::RaiseRegister {
                id: &change.id,
                k,
                v,
            }),
            (other, _) => Err(format!("CRUD transaction for unknown table {other:?}")),
        })
        .collect()
}

/// A register change keeps the greater of PostgreSQL's value and the client's: PUT and PATCH
/// alike, since another client may have created or raised the row meanwhile.
async fn raise_register(
    tx: &Transaction<'_>,
    id: &str,
    k: i64,
    v: i64,
) -> Result<(), tokio_postgres::Error> {
    tx.execute(
        &format!(
            "INSERT INTO {REGISTERS} (id, k, v) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET v = GREATEST({REGISTERS}.v, EXCLUDED.v)"
        ),
        &[&id, &k, &v],
    )
    .await?;
    Ok(())
}

/// A list change adds what the client appended to what PostgreSQL holds.
async fn apply_list_change(
    tx: &Transaction<'_>,
    change: &Change,
) -> Result<(), tokio_postgres::Error> {
    let k = change.data.get("k").and_then(Value::as_i64);
    let v = change.data.get("v").and_then(Value::as_str);
    match change.op {
        ChangeOp::Put => {
            // A row new to this client: another client may have created it meanwhile, so
            // append to whatever is there.
            tx.execute(
                &format!(
                    "INSERT INTO {TABLE} (id, k, v) VALUES ($1, $2, $3)
                         ON CONFLICT (id) DO UPDATE SET k = EXCLUDED.k, v = CASE
                           WHEN {TABLE}.v = '' THEN EXCLUDED.v
                           WHEN EXCLUDED.v = '' THEN {TABLE}.v
                           ELSE {TABLE}.v || ',' || EXCLUDED.v END"
                ),
                &[&change.id, &k.unwrap_or_default(), &v.unwrap_or_default()],
            )
            .await?;
        }
        ChangeOp::Patch => {
            let old = change
                .previous
                .as_ref()
                .and_then(|p| p.get("v"))
                .and_then(Value::as_str);
            match (old, v) {
                (Some(old), Some(new)) if appended_suffix(old, new).is_some() => {
                    let suffix = appended_suffix(old, new).unwrap_or_default();
                    if !suffix.is_empty() {
                        tx.execute(
                                &format!(
                                    "UPDATE {TABLE} SET v = CASE WHEN v = '' THEN $2 ELSE v || ',' || $2 END WHERE id = $1"
                                ),
                                &[&change.id, &suffix],
                            )
                            .await?;
                    }
                }
                _ => {
                    if old.is_some() {
                        log::warn!(
                            "PATCH of {} does not extend its previous value; writing it as given",
                            change.id
                        );
                    }
                    tx.execute(
                            &format!("UPDATE {TABLE} SET k = COALESCE($2, k), v = COALESCE($3, v) WHERE id = $1"),
                            &[&change.id, &k, &v],
                        )
                        .await?;
                }
            }
        }
        ChangeOp::Delete => {
            tx.execute(&format!("DELETE FROM {TABLE} WHERE id = $1"), &[&change.id])
                .await?;
        }
    }
    Ok(())
}

/// Uploads the database's queued CRUD transactions, oldest first, until none is left.
pub struct Uploader {
    db: PowerSyncDatabase,
    applier: Arc<PostgresApplier>,
}

impl Uploader {
    /// An uploader for `db` through `applier`.
    pub fn new(db: PowerSyncDatabase, applier: Arc<PostgresApplier>) -> Self {
        Uploader { db, applier }
    }
}

#[async_trait]
impl MutationUploader for Uploader {
    async fn upload(&self) -> Result<(), PowerSyncError> {
        let client_id = {
            let reader = self.db.reader().await?;
            reader.query_row("SELECT powersync_client_id()", [], |row| {
                row.get::<_, String>(0)
            })?
        };
        while let Some(tx) = self.db.next_crud_transaction().await? {
            let changes: Vec<Change> = tx
                .crud
                .iter()
                .map(|e| Change {
                    op: ChangeOp::from(&e.update_type),
                    table: e.table.clone(),
                    id: e.id.clone(),
                    data: e.data.clone().unwrap_or_default(),
                    previous: e.previous_values.clone(),
                })
                .collect();
            let tx_id = tx.id.unwrap_or(tx.last_item_id);
            match self.applier.apply(&client_id, tx_id, &changes).await {
                Ok(Applied::Now { attempt }) if attempt > 1 => {
                    log::info!("CRUD transaction {tx_id} applied at attempt {attempt}");
                }
                Ok(Applied::Now { .. }) => {}
                Ok(Applied::Already) => log::error!(
                    "CRUD transaction {tx_id} of client {client_id} was uploaded before: not applying it twice"
                ),
                Err(e) => {
                    log::warn!("upload failed: {e:#}");
                    return Err(PowerSyncError::upload_error(UploadError(format!("{e:#}"))));
                }
            }
            tx.complete().await?;
        }
        Ok(())
    }
}

/// An upload failure, carried to the SDK.
#[derive(Debug)]
struct UploadError(String);

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UploadError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_was_appended() {
        assert_eq!(appended_suffix("", "1,2"), Some("1,2"));
        assert_eq!(appended_suffix("1", "1,2,3"), Some("2,3"));
        assert_eq!(appended_suffix("1,2", "1,2"), Some(""));
        assert_eq!(appended_suffix("1", "12"), None);
        assert_eq!(appended_suffix("1,2", "1"), None);
    }

    #[test]
    fn converts_base64url_keys() {
        assert_eq!(base64url_to_standard("a-b_c"), "a+b/c===");
        assert_eq!(base64url_to_standard("abcd"), "abcd");
    }

    #[test]
    fn mints_tokens_the_service_accepts() {
        let auth = TokenAuthenticator::new(&SyncConfig {
            service_url: String::new(),
            postgres_url: String::new(),
            jwt_secret: "cG93ZXJzeW5jLWplcHNlbi10ZXN0LWtleS0zMi1ieXQ".into(),
            jwt_kid: "k1".into(),
            jwt_audience: "aud".into(),
            subject: "n1".into(),
        })
        .unwrap();
        let token = auth.token().unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), Some("k1"));
        assert_eq!(header.alg, Algorithm::HS256);
        let key = jsonwebtoken::DecodingKey::from_secret(b"powersync-jepsen-test-key-32-byt");
        let mut validation = jsonwebtoken::Validation::new(Algorithm::HS256);
        validation.set_audience(&["aud"]);
        let data = jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
        assert_eq!(data.claims["sub"], "n1");
        let (iat, exp) = (
            data.claims["iat"].as_u64().unwrap(),
            data.claims["exp"].as_u64().unwrap(),
        );
        assert_eq!(exp - iat, TOKEN_LIFETIME.as_secs());
    }
}
