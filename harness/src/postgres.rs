//! PostgreSQL as a participant of synced workloads: emptied before a run, watched during it (for
//! replication lag), read at the end.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use checker::edn::{Edn, ints};
use checker::history::{Mop, OpType, OpValue, Process};
use postgres::{Client, IsolationLevel, NoTls};
use rustc_hash::FxHashSet;

use crate::log::Log;
use crate::recorder::Recorder;

/// The tables a run empties first: the synced ones and the record of applied uploads.
pub const TABLES: [&str; 3] = ["lists", "registers", "ps_applied_txns"];

/// Empties the test tables and the record of applied uploads, so a run starts clean: one
/// `TRUNCATE` (one transaction) per table, then a row written and deleted. A single `TRUNCATE`
/// of several tables whose last is empty is acknowledged by the service in a checkpoint from
/// before it (docs/findings/truncate-checkpoint.md), and so is any later `TRUNCATE` of an
/// empty table; the write makes the next checkpoint cover every removal even on a service
/// that already lost one.
pub fn reset(url: &str) -> anyhow::Result<()> {
    let mut client = Client::connect(url, NoTls).context("connecting to PostgreSQL")?;
    for table in TABLES {
        client
            .batch_execute(&format!("TRUNCATE {table}"))
            .with_context(|| format!("emptying {table}"))?;
    }
    client
        .batch_execute(
            "INSERT INTO lists (id, k, v) VALUES ('reset-checkpoint', -1, ''); \
             DELETE FROM lists WHERE id = 'reset-checkpoint'",
        )
        .context("advancing the service's checkpoint past the reset")?;
    Ok(())
}

/// The keys PostgreSQL's lists and registers hold: `(lists, registers)`.
pub fn keys(url: &str) -> anyhow::Result<(Vec<i64>, Vec<i64>)> {
    let mut client = Client::connect(url, NoTls).context("connecting to PostgreSQL")?;
    let state = snapshot(&mut client, None)?;
    Ok((
        state.lists.into_keys().collect(),
        state.registers.into_keys().collect(),
    ))
}

/// PostgreSQL's lists (decoded) and registers, read in one snapshot.
struct Snapshot {
    lists: BTreeMap<i64, Vec<i64>>,
    registers: BTreeMap<i64, i64>,
}

/// Reads the lists and registers of `keys` (all of them when `None`) in one REPEATABLE READ,
/// read-only transaction.
fn snapshot(client: &mut Client, keys: Option<&[i64]>) -> anyhow::Result<Snapshot> {
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let keys: Option<Vec<i64>> = keys.map(<[i64]>::to_vec);
    let filter = "WHERE $1::bigint[] IS NULL OR k = ANY($1)";
    let mut lists = BTreeMap::new();
    for row in tx.query(&format!("SELECT k, v FROM lists {filter}"), &[&keys])? {
        let (k, v): (i64, String) = (row.get(0), row.get(1));
        let list = endpoint::txn::decode_list(&v).map_err(anyhow::Error::msg)?;
        lists.insert(k, list);
    }
    let registers = tx
        .query(&format!("SELECT k, v FROM registers {filter}"), &[&keys])?
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    tx.commit()?;
    Ok(Snapshot { lists, registers })
}

/// Runs the final read `reads` (list reads, or register reads) in one REPEATABLE READ
/// transaction and returns it completed: an absent list is empty, an absent register nil.
pub fn final_read(url: &str, reads: &[Mop]) -> anyhow::Result<Vec<Mop>> {
    let mut client = Client::connect(url, NoTls).context("connecting to PostgreSQL")?;
    let keys: Vec<i64> = reads.iter().map(Mop::key).collect();
    let state = snapshot(&mut client, Some(&keys))?;
    Ok(reads
        .iter()
        .map(|mop| match *mop {
            Mop::ReadRegister { key, .. } => Mop::ReadRegister {
                key,
                value: state.registers.get(&key).copied(),
            },
            _ => Mop::Read {
                key: mop.key(),
                value: Some(state.lists.get(&mop.key()).cloned().unwrap_or_default()),
            },
        })
        .collect())
}

/// The history's `:f` of a PostgreSQL sighting: the values that appeared in PostgreSQL since the
/// previous look, recorded by the `:observer` process.
pub const SIGHTINGS: &str = "postgres-sightings";

/// How often [`watch`] looks.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// Until `stop`, reads every list and register in PostgreSQL every [`WATCH_INTERVAL`] and
/// records the values that appeared since the previous look (`{key [values]}`), so replication
/// lag into PostgreSQL is measured whether or not a PostgreSQL client reads. A failed look is
/// logged and retried.
pub fn watch(url: &str, recorder: &Recorder, stop: &AtomicBool, log: &Log) -> anyhow::Result<()> {
    let mut seen: FxHashSet<i64> = FxHashSet::default();
    let mut client: Option<Client> = None;
    while !stop.load(Ordering::SeqCst) {
        let look = (|| -> anyhow::Result<BTreeMap<i64, Vec<i64>>> {
            let client = match &mut client {
                Some(client) if !client.is_closed() => client,
                slot => slot.insert(Client::connect(url, NoTls)?),
            };
            let Snapshot {
                lists: mut new,
                registers,
            } = snapshot(client, None)?;
            for (k, v) in registers {
                new.entry(k).or_default().push(v);
            }
            for values in new.values_mut() {
                values.retain(|v| seen.insert(*v));
            }
            new.retain(|_, values| !values.is_empty());
            Ok(new)
        })();
        match look {
            Ok(new) if !new.is_empty() => {
                let value = Edn::Map(new.iter().map(|(k, vs)| (Edn::Int(*k), ints(vs))).collect());
                recorder.record(
                    Process::Named("observer".into()),
                    OpType::Info,
                    SIGHTINGS,
                    OpValue::Other(value),
                    None,
                )?;
            }
            Ok(_) => {}
            Err(e) => {
                client = None;
                log.info(format!("watching PostgreSQL: {e:#}"));
            }
        }
        std::thread::sleep(WATCH_INTERVAL);
    }
    Ok(())
}
