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
    /// sdk-restart-deadlock: how many restarts to try before calling the bug absent.
    #[arg(long, default_value_t = 100)]
    pub restarts: usize,
    /// sdk-restart-deadlock: instead of killing and restarting the client, ask its SDK to
    /// connect again while it is connected, with its uploads held up in PostgreSQL for 3 s
    /// around that moment (the other path seen to hang).
    #[arg(long)]
    pub reconnect: bool,
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
    /// After a restart, the Rust SDK's download loop waits on its own checkpoint seed for good.
    SdkRestartDeadlock,
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
        Bug::SdkRestartDeadlock => sdk_restart_deadlock(options, endpoint_bin),
    }
}

/// What every reproduction starts from: PostgreSQL's URL, the endpoints' flags, and a new
/// directory for its endpoints, `<dir>/<name>-<milliseconds>`.
fn set_up<'a>(
    options: &'a ReproOptions,
    name: &str,
) -> anyhow::Result<(&'a str, Vec<String>, PathBuf)> {
    let url = options
        .sync
        .postgres_url
        .as_deref()
        .context("--postgres-url is required")?;
    let args = options.sync.endpoint_args().map_err(anyhow::Error::msg)?;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let dir = options.dir.join(format!("{name}-{millis}"));
    std::fs::create_dir_all(&dir)?;
    Ok((url, args, dir))
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
    let (url, args, run_dir) = set_up(options, "truncate-checkpoint")?;
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

/// How long a restarted client may stay short of connected before it counts as stuck.
const STUCK_AFTER: Duration = Duration::from_secs(25);

/// A synced client SIGKILLed and restarted while it and a peer write, until it stays short of
/// connected for [`STUCK_AFTER`] (then the evidence, and the bug is present) or `--restarts`
/// pass (absent). Writes are queued at the moment it comes back, so that its writer is busy
/// when the SDK's checkpoint seed wants it.
fn sdk_restart_deadlock(
    options: &ReproOptions,
    endpoint_bin: &std::path::Path,
) -> anyhow::Result<Outcome> {
    use std::sync::atomic::{AtomicBool, Ordering};

    use checker::history::Mop;
    use rand::Rng;

    let (url, args, run_dir) = set_up(options, "sdk-restart-deadlock")?;
    postgres::reset(url)?;
    let peer = Node::start(
        endpoint_bin,
        "powersync",
        "peer",
        &run_dir,
        &args,
        &Placement::default(),
    )?;
    let mut subject = Node::start(
        endpoint_bin,
        "powersync",
        "subject",
        &run_dir,
        &args,
        &Placement::default(),
    )?;
    let stop = AtomicBool::new(false);
    let next_value = std::sync::atomic::AtomicI64::new(1);
    let fault = if options.reconnect {
        "asked to connect again while connected, its uploads held up in PostgreSQL,"
    } else {
        "SIGKILLed and restarted"
    };
    say(&format!(
        "A synced client (subject) and a peer each write about 15 transactions a second; the subject is {fault} up to {} times.",
        options.restarts
    ));
    let outcome = std::thread::scope(|scope| -> anyhow::Result<Outcome> {
        for address in [peer.address.clone(), subject.address.clone()] {
            let (stop, next_value) = (&stop, &next_value);
            scope.spawn(move || {
                let client = Client::new(&address, Duration::from_secs(5));
                let mut rng = rand::rng();
                while !stop.load(Ordering::SeqCst) {
                    let value = next_value.fetch_add(1, Ordering::SeqCst);
                    let key = rng.random_range(0..4);
                    let _ =
                        client.txn(&[Mop::Append { key, value }, Mop::Read { key, value: None }]);
                    std::thread::sleep(Duration::from_millis(66));
                }
            });
        }
        let mut rng = rand::rng();
        let result = (|| -> anyhow::Result<Outcome> {
            for restart in 1..=options.restarts {
                if options.reconnect {
                    // As in the run where it was seen: uploads in flight and a queue behind
                    // them. PostgreSQL holds every upload for 3 s; the connect comes in the
                    // middle.
                    let mut blocker = Pg::connect(url, NoTls)?;
                    let mut tx = blocker.transaction()?;
                    tx.batch_execute("LOCK TABLE ps_applied_txns IN EXCLUSIVE MODE")?;
                    std::thread::sleep(Duration::from_millis(1500));
                    Client::new(&subject.address, Duration::from_secs(30))
                        .post_json("/db-api/connect")?;
                    std::thread::sleep(Duration::from_millis(1500));
                    tx.commit()?;
                } else {
                    subject.kill()?;
                    subject.restart()?;
                }
                // Until the next kill (1.5 to 8 s), the client must be connected at the end;
                // one that is not gets STUCK_AFTER more to connect.
                let client = Client::new(&subject.address, Duration::from_secs(5));
                std::thread::sleep(Duration::from_millis(rng.random_range(1500..8000)));
                let started = std::time::Instant::now();
                let (connected, status) = loop {
                    let status = client.get_json("/db-api/status").unwrap_or(Value::Null);
                    if status["connected"] == Value::Bool(true) {
                        break (true, status);
                    }
                    if started.elapsed() > STUCK_AFTER {
                        break (false, status);
                    }
                    std::thread::sleep(Duration::from_millis(200));
                };
                if connected {
                    say(&format!("restart {restart}: connected"));
                    continue;
                }
                say(&format!(
                    "restart {restart}: NOT connected, {STUCK_AFTER:?} past the time of the next kill; status {status}"
                ));
                evidence(&subject);
                return Ok(Outcome::Present);
            }
            Ok(Outcome::Absent)
        })();
        stop.store(true, Ordering::SeqCst);
        result
    })?;
    match outcome {
        Outcome::Present => say(
            "BUG PRESENT: the restarted client stays connecting, its sync stream never established.",
        ),
        Outcome::Absent => say(&format!("bug absent in {} restarts.", options.restarts)),
    }
    say(&format!(
        "endpoints' logs and databases: {}",
        run_dir.display()
    ));
    Ok(outcome)
}

/// What a stuck client shows: its threads' states, its sockets' queues, its last log lines.
fn evidence(node: &Node) {
    let pid = node.pid();
    let threads: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| {
            let stat = std::fs::read_to_string(t.path().join("stat")).ok()?;
            let (name, rest) = stat.split_once(") ")?;
            Some(format!(
                "{}:{}",
                name.rsplit('(').next()?,
                rest.chars().next()?
            ))
        })
        .collect();
    say(&format!("   threads (name:state): {}", threads.join(" ")));
    if let Ok(out) = std::process::Command::new("ss")
        .args(["-tnp", "state", "established"])
        .output()
    {
        let needle = format!("pid={pid},");
        for line in String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains(&needle))
        {
            say(&format!("   socket (Recv-Q Send-Q local peer): {line}"));
        }
    }
    let log = std::fs::read_to_string(node.dir.join("endpoint.log")).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    for line in &lines[lines.len().saturating_sub(12)..] {
        say(&format!("   log: {line}"));
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
