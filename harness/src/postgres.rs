//! PostgreSQL as a participant of synced workloads: emptied before a run, read at the end.

use std::collections::BTreeMap;

use anyhow::Context;
use checker::history::Mop;
use postgres::{Client, IsolationLevel, NoTls};

/// Empties the test tables and the record of applied uploads, so a run starts clean.
pub fn reset(url: &str) -> anyhow::Result<()> {
    let mut client = Client::connect(url, NoTls).context("connecting to PostgreSQL")?;
    client
        .batch_execute("TRUNCATE lists, registers, ps_applied_txns")
        .context("emptying the test tables")?;
    Ok(())
}

/// Runs the final read `reads` (list reads, or register reads) in one REPEATABLE READ
/// transaction and returns it completed: an absent list is empty, an absent register nil.
pub fn final_read(url: &str, reads: &[Mop]) -> anyhow::Result<Vec<Mop>> {
    let mut client = Client::connect(url, NoTls).context("connecting to PostgreSQL")?;
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let keys: Vec<i64> = reads.iter().map(Mop::key).collect();
    let lists: BTreeMap<i64, String> = tx
        .query("SELECT k, v FROM lists WHERE k = ANY($1)", &[&keys])?
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let registers: BTreeMap<i64, i64> = tx
        .query("SELECT k, v FROM registers WHERE k = ANY($1)", &[&keys])?
        .into_iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    tx.commit()?;
    reads
        .iter()
        .map(|mop| {
            Ok(match *mop {
                Mop::ReadRegister { key, .. } => Mop::ReadRegister {
                    key,
                    value: registers.get(&key).copied(),
                },
                _ => {
                    let key = mop.key();
                    let text = lists.get(&key).map_or("", String::as_str);
                    Mop::Read {
                        key,
                        value: Some(endpoint::txn::decode_list(text).map_err(anyhow::Error::msg)?),
                    }
                }
            })
        })
        .collect()
}
