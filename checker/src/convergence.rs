//! Strong convergence: after healing and quiescence, every participant (each client and
//! PostgreSQL) holds the same state, with every acknowledged append, and nothing never written.

use std::collections::{BTreeMap, BTreeSet};

use rustc_hash::FxHashMap;

use crate::edn::{Edn, ints, kw_map};
use crate::history::{Mop, OpType, Txn};
use crate::verdict::Verdict;

/// A participant's final state: key to list. `None` when its final read did not complete.
pub type FinalState = Option<BTreeMap<i64, Vec<i64>>>;

/// Checks the final reads (participant name, state) against the history's appends. `stalls`
/// are waits for quiescence that ran out, already described by the runner.
pub fn check(txns: &[Txn], finals: &[(String, FinalState)], stalls: Vec<Edn>) -> Verdict {
    let mut found: BTreeMap<String, Vec<Edn>> = BTreeMap::new();
    let mut add = |kind: &str, case: Edn| found.entry(kind.to_owned()).or_default().push(case);
    for stall in stalls {
        add("stall", stall);
    }
    let mut writers: FxHashMap<(i64, i64), &Txn> = FxHashMap::default();
    for txn in txns {
        for mop in &txn.mops {
            if let Mop::Append { key, value } = mop {
                writers.insert((*key, *value), txn);
            }
        }
    }
    let present: Vec<(&String, &BTreeMap<i64, Vec<i64>>)> = finals
        .iter()
        .filter_map(|(name, state)| match state {
            Some(state) => Some((name, state)),
            None => {
                add(
                    "missing-final-read",
                    kw_map([("node", Edn::Str(name.clone()))]),
                );
                None
            }
        })
        .collect();
    let mut keys: BTreeSet<i64> = present
        .iter()
        .flat_map(|(_, s)| s.keys().copied())
        .collect();
    keys.extend(writers.keys().map(|(k, _)| *k));
    for &key in &keys {
        let lists: Vec<(&String, &[i64])> = present
            .iter()
            .map(|(name, state)| (*name, state.get(&key).map_or(&[][..], Vec::as_slice)))
            .collect();
        if lists.windows(2).any(|w| w[0].1 != w[1].1) {
            add(
                "divergent-final-reads",
                kw_map([
                    ("key", Edn::Int(key)),
                    (
                        "values",
                        Edn::Map(
                            lists
                                .iter()
                                .map(|(n, l)| (Edn::Str((*n).clone()), ints(l)))
                                .collect(),
                        ),
                    ),
                ]),
            );
        }
        for (name, list) in &lists {
            for &value in *list {
                match writers.get(&(key, value)) {
                    None => add("garbage-final-read", element(name, key, value, None)),
                    Some(txn) if txn.kind == OpType::Fail => {
                        add(
                            "failed-append-visible",
                            element(name, key, value, Some(txn)),
                        );
                    }
                    Some(_) => {}
                }
            }
        }
    }
    for txn in txns.iter().filter(|t| t.kind == OpType::Ok) {
        for mop in &txn.mops {
            let Mop::Append { key, value } = *mop else {
                continue;
            };
            for (name, state) in &present {
                if !state.get(&key).is_some_and(|l| l.contains(&value)) {
                    add("lost-append", element(name, key, value, Some(txn)));
                }
            }
        }
    }
    Verdict::of_findings(found)
}

fn element(node: &str, key: i64, value: i64, txn: Option<&Txn>) -> Edn {
    let mut entries = vec![
        ("node", Edn::Str(node.to_owned())),
        ("key", Edn::Int(key)),
        ("value", Edn::Int(value)),
    ];
    if let Some(txn) = txn {
        entries.push(("op", txn.to_edn()));
    }
    kw_map(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{pair_txns, read_history};
    use crate::verdict::Validity;

    fn txns() -> Vec<Txn> {
        let text = "\
{:index 0, :type :invoke, :process 0, :f :txn, :value [[:append 1 1]]}
{:index 1, :type :ok, :process 0, :f :txn, :value [[:append 1 1]]}
{:index 2, :type :invoke, :process 0, :f :txn, :value [[:append 1 2]]}
{:index 3, :type :info, :process 0, :f :txn, :value [[:append 1 2]]}
{:index 4, :type :invoke, :process 1, :f :txn, :value [[:append 2 3]]}
{:index 5, :type :fail, :process 1, :f :txn, :value [[:append 2 3]]}";
        pair_txns(read_history(text.as_bytes()).unwrap()).unwrap()
    }

    fn state(entries: &[(i64, &[i64])]) -> FinalState {
        Some(entries.iter().map(|(k, l)| (*k, l.to_vec())).collect())
    }

    fn kinds(v: &Verdict) -> Vec<&str> {
        v.anomaly_types().collect()
    }

    #[test]
    fn identical_complete_states_converge() {
        // The indeterminate append may or may not be there, as long as everyone agrees.
        for list in [&[1][..], &[1, 2][..]] {
            let finals = vec![
                ("n1".into(), state(&[(1, list)])),
                ("postgres".into(), state(&[(1, list)])),
            ];
            let v = check(&txns(), &finals, vec![]);
            assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
        }
    }

    #[test]
    fn finds_divergence_loss_and_foreign_values() {
        let finals = vec![
            ("n1".into(), state(&[(1, &[1, 2])])),
            ("postgres".into(), state(&[(1, &[2]), (2, &[3, 7])])),
        ];
        let v = check(&txns(), &finals, vec![]);
        assert_eq!(v.valid, Validity::Invalid);
        assert_eq!(
            kinds(&v),
            [
                "divergent-final-reads",
                "failed-append-visible",
                "garbage-final-read",
                "lost-append"
            ]
        );
        assert_eq!(
            v.anomalies["lost-append"].len(),
            1,
            "only postgres lost the ok append"
        );
    }

    #[test]
    fn a_missing_final_read_is_unknown_and_a_stall_invalid() {
        let finals = vec![
            ("n1".into(), None),
            ("postgres".into(), state(&[(1, &[1])])),
        ];
        let v = check(&txns(), &finals, vec![]);
        assert_eq!(v.valid, Validity::Unknown, "{:?}", v.anomalies);
        let stall = kw_map([("node", Edn::Str("n1".into()))]);
        assert_eq!(
            check(&txns(), &finals, vec![stall]).valid,
            Validity::Invalid
        );
    }
}
