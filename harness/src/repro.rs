//! Reproductions of the PowerSync bugs this suite found, each independent of the harness's
//! checkers: real endpoints, the real service, PostgreSQL, and a plain comparison of what a
//! fresh client reads with what PostgreSQL holds. Exit 1 when the bug shows, 0 when it does
//! not, 2 when the reproduction could not tell.

use std::path::PathBuf;
use std::time::Duration;

use ::postgres::{Client as Pg, NoTls};
use anyhow::Context;
use serde_json::Value;

use crate::client::Client;
use crate::nodes::{Node, Placement};
use crate::options::SyncFlags;
use crate::postgres;

/// Options of `harness repro`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReproOptions {
    /// The reproduction.
    #[arg(value_enum)]
    pub bug: Bug,
    /// The service's bucket storage database (its `powersync` schema holds the checkpoints).
    #[arg(long)]
    pub storage_url: String,
    /// truncate-checkpoint: the statement that empties the tables. The bug needs a non-empty
    /// table before an empty last one; `TRUNCATE registers, lists` is the control.
    #[arg(long, default_value = "TRUNCATE lists, registers")]
    pub truncate: String,
    /// Where the endpoints' databases and logs go.
    #[arg(long, default_value = "target/repro")]
    pub dir: PathBuf,
    /// The endpoint program; by default the one beside the harness.
    #[arg(long)]
    pub endpoint_bin: Option<PathBuf>,
    /// Where the service and PostgreSQL are.
    #[command(flatten)]
    pub sync: SyncFlags,
}

/// The bugs there are reproductions for.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Bug {
    /// A multi-table TRUNCATE whose last table is empty is acknowledged in an old checkpoint.
    TruncateCheckpoint,
}

/// How a reproduction ended.
pub enum Outcome {
    /// The bug showed.
    Present,
    /// It did not.
    Absent,
}

/// Runs the reproduction.
pub fn run(options: &ReproOptions, endpoint_bin: &std::path::Path) -> anyhow::Result<Outcome> {
    match options.bug {
        Bug::TruncateCheckpoint => truncate_checkpoint(options, endpoint_bin),
    }
}

/// How long a client may take to sync or to apply a requested checkpoint.
const WAIT: Duration = Duration::from_secs(60);

/// A row in `lists`; a checkpoint holds it (a first client reads it); `TRUNCATE lists,
/// registers` with `registers` empty; a brand-new client requests a checkpoint, waits for it,
/// and reads. It must read nothing, since PostgreSQL holds nothing.
fn truncate_checkpoint(
    options: &ReproOptions,
    endpoint_bin: &std::path::Path,
) -> anyhow::Result<Outcome> {
    let url = options
        .sync
        .postgres_url
        .as_deref()
        .context("--postgres-url is required")?;
    let args = options.sync.endpoint_args().map_err(anyhow::Error::msg)?;
    let run_dir = options.dir.join(format!(
        "truncate-checkpoint-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis()
    ));
    std::fs::create_dir_all(&run_dir)?;
    let mut pg = Pg::connect(url, NoTls).context("connecting to PostgreSQL")?;
    let mut storage =
        Pg::connect(&options.storage_url, NoTls).context("connecting to the bucket storage")?;

    say("1. Start from empty tables, one TRUNCATE per table (which the service handles well).");
    postgres::reset(url)?;
    pg.batch_execute("INSERT INTO lists (id, k, v) VALUES ('repro-row', 1, '1')")?;
    say("2. INSERT INTO lists (id, k, v) VALUES ('repro-row', 1, '1')");
    let mut first = Node::start(
        endpoint_bin,
        "powersync",
        "first",
        &run_dir,
        &args,
        &Placement::default(),
    )?;
    let first_read = checkpoint_and_read(&first)?;
    say(&format!(
        "3. A first client syncs, requests a checkpoint and reads: {first_read}"
    ));
    first.stop()?;
    if first_read["lists"].as_object().is_none_or(|m| m.is_empty()) {
        say("   The first client never saw the row: the service did not sync it; cannot tell.");
        anyhow::bail!("the row inserted was never synced to a client");
    }
    let before = checkpoints(&mut storage)?;
    say(&format!("   powersync.sync_rules: {before}"));

    let registers: i64 = pg.query_one("SELECT count(*) FROM registers", &[])?.get(0);
    anyhow::ensure!(
        registers == 0,
        "registers must be empty for this reproduction"
    );
    pg.batch_execute(&options.truncate)?;
    say(&format!(
        "4. {}   -- lists had a row, registers none",
        options.truncate
    ));
    let lsn: String = pg
        .query_one("SELECT pg_current_wal_lsn()::text", &[])?
        .get(0);
    say(&format!("   PostgreSQL's WAL is now at {lsn}"));
    std::thread::sleep(Duration::from_secs(2));
    let after = checkpoints(&mut storage)?;
    let removes = removes(&mut storage)?;
    say(&format!("   powersync.sync_rules: {after}"));
    say(&format!(
        "   powersync.bucket_data, latest REMOVE ops: {removes}"
    ));

    let mut fresh = Node::start(
        endpoint_bin,
        "powersync",
        "fresh",
        &run_dir,
        &args,
        &Placement::default(),
    )?;
    let fresh_read = checkpoint_and_read(&fresh)?;
    let (pg_lists, pg_registers) = postgres::keys(url)?;
    say(&format!(
        "5. A brand-new client syncs, requests a checkpoint, waits for it and reads: {fresh_read}"
    ));
    say(&format!(
        "   PostgreSQL holds lists {pg_lists:?} and registers {pg_registers:?}"
    ));
    let stale = fresh_read["lists"]
        .as_object()
        .is_some_and(|m| !m.is_empty());

    // Leave the service clean: any write to the source advances the checkpoint past the
    // TRUNCATE's removals.
    pg.batch_execute(
        "INSERT INTO lists (id, k, v) VALUES ('repro-nudge', -1, '0'); DELETE FROM lists WHERE id = 'repro-nudge'",
    )?;
    let healed = checkpoint_and_read(&fresh)?;
    fresh.stop()?;
    say(&format!(
        "6. After a write to the source (insert and delete a row), the same client reads: {healed}"
    ));
    say(&format!(
        "   powersync.sync_rules: {}",
        checkpoints(&mut storage)?
    ));
    say(&format!(
        "   endpoints' logs and databases: {}",
        run_dir.display()
    ));
    if stale {
        say(
            "BUG PRESENT: the fresh client read rows that PostgreSQL no longer holds, after a checkpoint it requested after the TRUNCATE.",
        );
        Ok(Outcome::Present)
    } else {
        say("bug absent: the fresh client read what PostgreSQL holds.");
        Ok(Outcome::Absent)
    }
}

/// Requests a checkpoint on the node, waits until it is applied, and returns what it holds.
fn checkpoint_and_read(node: &Node) -> anyhow::Result<Value> {
    let client = Client::new(&node.address, WAIT + Duration::from_secs(10));
    client
        .post_json(&format!(
            "/db-api/downloading-wait?timeout_ms={}",
            WAIT.as_millis()
        ))
        .with_context(|| format!("{} did not apply a requested checkpoint", node.name))?;
    client.get_json("/db-api/contents")
}

/// The service's checkpoint rows: `id state last_checkpoint last_checkpoint_lsn`.
fn checkpoints(storage: &mut Pg) -> anyhow::Result<String> {
    let rows = storage.query(
        "SELECT id, state, last_checkpoint, last_checkpoint_lsn FROM powersync.sync_rules ORDER BY id",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            format!(
                "[id {} {} last_checkpoint {} last_checkpoint_lsn {}]",
                r.get::<_, i32>(0),
                r.get::<_, String>(1),
                r.get::<_, Option<i64>>(2)
                    .map_or("null".into(), |c| c.to_string()),
                r.get::<_, Option<String>>(3)
                    .unwrap_or_else(|| "null".into())
            )
        })
        .collect::<Vec<_>>()
        .join(" "))
}

/// The newest REMOVE operations in the bucket storage: `op_id row_id`.
fn removes(storage: &mut Pg) -> anyhow::Result<String> {
    let rows = storage.query(
        "SELECT op_id, row_id FROM powersync.bucket_data WHERE op = 'REMOVE' ORDER BY op_id DESC LIMIT 3",
        &[],
    )?;
    Ok(rows
        .iter()
        .map(|r| {
            format!(
                "[op_id {} REMOVE {}]",
                r.get::<_, i64>(0),
                r.get::<_, Option<String>>(1).unwrap_or_default()
            )
        })
        .collect::<Vec<_>>()
        .join(" "))
}

fn say(line: &str) {
    println!("{line}");
}
