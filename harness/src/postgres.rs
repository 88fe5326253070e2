//! PostgreSQL as a participant of synced workloads: emptied before a run, read at the end.

use std::collections::BTreeMap;

use anyhow::Context;
use postgres::{Client, IsolationLevel, NoTls};

/// Empties the list-append table and the record of applied uploads, so a run starts clean.
pub fn reset(url: &str) -> anyhow::Result<()> {
    let mut client = Client::connect(url, NoTls).context("connecting to PostgreSQL")?;
    client
        .batch_execute("TRUNCATE lists, ps_applied_txns")
        .context("emptying the test tables")?;
    Ok(())
}

/// Reads `keys` in one REPEATABLE READ transaction: key to list (empty when absent).
pub fn final_read(url: &str, keys: &[i64]) -> anyhow::Result<BTreeMap<i64, Vec<i64>>> {
    let mut client = Client::connect(url, NoTls).context("connecting to PostgreSQL")?;
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()?;
    let rows = tx.query("SELECT k, v FROM lists WHERE k = ANY($1)", &[&keys])?;
    tx.commit()?;
    let mut state: BTreeMap<i64, Vec<i64>> = keys.iter().map(|&k| (k, Vec::new())).collect();
    for row in rows {
        let (k, v): (i64, String) = (row.get(0), row.get(1));
        let list = endpoint::txn::decode_list(&v).map_err(anyhow::Error::msg)?;
        state.insert(k, list);
    }
    Ok(state)
}
