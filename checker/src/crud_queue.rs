//! The PowerSync upload queue (`ps_crud`) against the history: every committed transaction that
//! appended must be queued exactly once, whole, as one CRUD transaction, in an order consistent
//! with real time; and replaying the queue must give the final read.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde_json::Value;

use crate::edn::{Edn, ints, kw_map};
use crate::history::{Mop, OpType, Txn};
use crate::verdict::Verdict;

/// One queued change to a row of the list-append table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrudEntry {
    /// `PUT`, `PATCH` or `DELETE`.
    pub op: String,
    /// The key (the row's id).
    pub key: i64,
    /// The list after the change, when the entry carries `v`.
    pub list: Option<Vec<i64>>,
}

/// The entries one local transaction queued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrudTxn {
    /// The SDK's transaction id.
    pub tx_id: i64,
    /// Its entries, in order.
    pub entries: Vec<CrudEntry>,
}

/// Parses the endpoint's `/db-api/crud` dump: `[{"id", "tx_id", "data": {"op", "id", "data"}}]`.
pub fn parse(dump: &Value) -> Result<Vec<CrudTxn>, String> {
    let rows = dump
        .as_array()
        .ok_or("the CRUD dump must be a JSON array")?;
    let mut txns: Vec<CrudTxn> = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let bad = |what: &str| format!("CRUD row {i}: {what}: {row}");
        let tx_id = row
            .get("tx_id")
            .and_then(Value::as_i64)
            .ok_or_else(|| bad("no tx_id"))?;
        let data = row.get("data").ok_or_else(|| bad("no data"))?;
        let op = data
            .get("op")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no op"))?;
        let key = data
            .get("id")
            .and_then(Value::as_str)
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| bad("id is not an integer key"))?;
        let list = match data.get("data").and_then(|d| d.get("v")) {
            None | Some(Value::Null) => None,
            Some(Value::String(v)) if v.is_empty() => Some(Vec::new()),
            Some(Value::String(v)) => Some(
                v.split(',')
                    .map(|e| e.parse().map_err(|_| bad("v is not a list of integers")))
                    .collect::<Result<_, _>>()?,
            ),
            Some(_) => return Err(bad("v is not a string")),
        };
        let entry = CrudEntry {
            op: op.to_owned(),
            key,
            list,
        };
        match txns.last_mut() {
            Some(last) if last.tx_id == tx_id => last.entries.push(entry),
            _ => txns.push(CrudTxn {
                tx_id,
                entries: vec![entry],
            }),
        }
    }
    Ok(txns)
}

/// Checks a node's queue against the transactions that node ran and its final state (key to
/// list, as the final read saw it).
pub fn check(txns: &[Txn], queue: &[CrudTxn], final_state: &BTreeMap<i64, Vec<i64>>) -> Verdict {
    let mut found: BTreeMap<String, Vec<Edn>> = BTreeMap::new();
    let mut add = |kind: &str, case: Edn| found.entry(kind.to_owned()).or_default().push(case);
    let mut writers: FxHashMap<(i64, i64), usize> = FxHashMap::default();
    for txn in txns {
        for mop in &txn.mops {
            if let Mop::Append { key, value } = mop {
                writers.insert((*key, *value), txn.id);
            }
        }
    }
    let mut state: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    let mut queued_as: FxHashMap<usize, i64> = FxHashMap::default();
    let mut latest_invoke: Option<(usize, i64)> = None;
    for crud in queue {
        let mut appended: Vec<(i64, i64)> = Vec::new();
        for entry in &crud.entries {
            let Some(list) = &entry.list else {
                add(
                    "crud-not-append",
                    kw_map([
                        ("tx-id", Edn::Int(crud.tx_id)),
                        ("key", Edn::Int(entry.key)),
                        ("op", Edn::Str(entry.op.clone())),
                    ]),
                );
                continue;
            };
            let before = state.entry(entry.key).or_default();
            if !list.starts_with(before) {
                add(
                    "crud-not-append",
                    kw_map([
                        ("tx-id", Edn::Int(crud.tx_id)),
                        ("key", Edn::Int(entry.key)),
                        ("before", ints(before)),
                        ("after", ints(list)),
                    ]),
                );
            } else {
                appended.extend(list[before.len()..].iter().map(|&v| (entry.key, v)));
            }
            *before = list.clone();
        }
        let mut sources: Vec<usize> = appended
            .iter()
            .filter_map(|kv| writers.get(kv).copied())
            .collect();
        sources.sort_unstable();
        sources.dedup();
        for &(key, value) in &appended {
            match writers.get(&(key, value)) {
                None => add(
                    "crud-unknown-write",
                    kw_map([
                        ("tx-id", Edn::Int(crud.tx_id)),
                        ("key", Edn::Int(key)),
                        ("value", Edn::Int(value)),
                    ]),
                ),
                Some(&w) if txns[w].kind == OpType::Fail => add(
                    "crud-failed-write",
                    kw_map([("tx-id", Edn::Int(crud.tx_id)), ("op", txns[w].to_edn())]),
                ),
                Some(_) => {}
            }
        }
        if sources.len() > 1 {
            add(
                "crud-mixed-txn",
                kw_map([
                    ("tx-id", Edn::Int(crud.tx_id)),
                    (
                        "ops",
                        Edn::Vector(sources.iter().map(|&t| txns[t].to_edn()).collect()),
                    ),
                ]),
            );
        }
        for &source in &sources {
            if let Some(earlier) = queued_as.insert(source, crud.tx_id) {
                add(
                    "crud-split-txn",
                    kw_map([
                        (
                            "tx-ids",
                            Edn::Vector(vec![Edn::Int(earlier), Edn::Int(crud.tx_id)]),
                        ),
                        ("op", txns[source].to_edn()),
                    ]),
                );
            }
            let expected: Vec<(i64, i64)> = txns[source]
                .mops
                .iter()
                .filter_map(|m| match m {
                    Mop::Append { key, value } => Some((*key, *value)),
                    _ => None,
                })
                .collect();
            let mut got: Vec<(i64, i64)> = appended
                .iter()
                .copied()
                .filter(|kv| writers.get(kv) == Some(&source))
                .collect();
            let mut want = expected.clone();
            got.sort_unstable();
            want.sort_unstable();
            if got != want {
                add(
                    "crud-partial-txn",
                    kw_map([
                        ("tx-id", Edn::Int(crud.tx_id)),
                        ("op", txns[source].to_edn()),
                    ]),
                );
            }
            let txn = &txns[source];
            if let Some((invoke, earlier_tx)) = latest_invoke
                && txn.complete_index.is_some_and(|done| done < invoke)
            {
                add(
                    "crud-order",
                    kw_map([
                        ("op", txn.to_edn()),
                        ("queued-after-tx-id", Edn::Int(earlier_tx)),
                        ("which-was-invoked-at-index", Edn::Int(invoke as i64)),
                    ]),
                );
            }
            if latest_invoke.is_none_or(|(i, _)| txn.invoke_index > i) {
                latest_invoke = Some((txn.invoke_index, crud.tx_id));
            }
        }
    }
    for txn in txns.iter().filter(|t| t.kind == OpType::Ok) {
        let appends = txn.mops.iter().any(|m| matches!(m, Mop::Append { .. }));
        if appends && !queued_as.contains_key(&txn.id) {
            add("crud-missing-txn", kw_map([("op", txn.to_edn())]));
        }
    }
    for (key, list) in final_state {
        let replayed = state.get(key).map_or(&[][..], Vec::as_slice);
        if replayed != list.as_slice() {
            add(
                "crud-final-state",
                kw_map([
                    ("key", Edn::Int(*key)),
                    ("final-read", ints(list)),
                    ("queue-replayed", ints(replayed)),
                ]),
            );
        }
    }
    Verdict::of_findings(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{pair_txns, read_history};
    use crate::verdict::Validity;
    use serde_json::json;

    fn history() -> Vec<Txn> {
        let text = "\
{:index 0, :type :invoke, :process 0, :f :txn, :value [[:append 1 1] [:append 2 2]]}
{:index 1, :type :ok, :process 0, :f :txn, :value [[:append 1 1] [:append 2 2]]}
{:index 2, :type :invoke, :process 0, :f :txn, :value [[:r 1 nil] [:append 1 3]]}
{:index 3, :type :ok, :process 0, :f :txn, :value [[:r 1 [1]] [:append 1 3]]}
{:index 4, :type :invoke, :process 0, :f :txn, :value [[:append 1 4]]}
{:index 5, :type :fail, :process 0, :f :txn, :value [[:append 1 4]]}";
        pair_txns(read_history(text.as_bytes()).unwrap()).unwrap()
    }

    fn row(id: i64, tx: i64, op: &str, key: i64, v: &str) -> Value {
        json!({"id": id, "tx_id": tx, "data": {"op": op, "type": "lists", "id": key.to_string(), "data": {"v": v}}})
    }

    fn final_state() -> BTreeMap<i64, Vec<i64>> {
        BTreeMap::from([(1, vec![1, 3]), (2, vec![2])])
    }

    #[test]
    fn a_faithful_queue_is_valid() {
        let dump = json!([
            row(1, 1, "PUT", 1, "1"),
            row(2, 1, "PUT", 2, "2"),
            row(3, 2, "PATCH", 1, "1,3")
        ]);
        let queue = parse(&dump).unwrap();
        assert_eq!(queue.len(), 2);
        let v = check(&history(), &queue, &final_state());
        assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
    }

    #[test]
    fn finds_missing_split_and_foreign_entries() {
        // The first transaction is split in two; the second is missing; a failed write appears.
        let dump = json!([
            row(1, 1, "PUT", 1, "1"),
            row(2, 2, "PUT", 2, "2"),
            row(3, 3, "PATCH", 1, "1,4")
        ]);
        let v = check(&history(), &parse(&dump).unwrap(), &final_state());
        let kinds: Vec<&str> = v.anomaly_types().collect();
        assert_eq!(v.valid, Validity::Invalid);
        for kind in [
            "crud-split-txn",
            "crud-partial-txn",
            "crud-missing-txn",
            "crud-failed-write",
            "crud-final-state",
        ] {
            assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
        }
    }

    #[test]
    fn finds_reordering() {
        let dump = json!([
            row(1, 1, "PATCH", 1, "3"),
            row(2, 2, "PUT", 1, "3,1"),
            row(3, 2, "PUT", 2, "2")
        ]);
        let v = check(&history(), &parse(&dump).unwrap(), &BTreeMap::new());
        assert!(
            v.anomaly_types().any(|k| k == "crud-order"),
            "{:?}",
            v.anomalies
        );
    }

    #[test]
    fn rejects_malformed_dumps() {
        assert!(parse(&json!({})).is_err());
        assert!(
            parse(&json!([{"tx_id": 1, "data": {"op": "PUT", "id": "x"}}]))
                .unwrap_err()
                .contains("row 0")
        );
    }
}
