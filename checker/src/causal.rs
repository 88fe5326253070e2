//! Causal consistency for many clients, as session guarantees over list-append histories
//! (Terry et al.; Bailis et al., "Highly Available Transactions"). Each process is a session;
//! only committed (`:ok`) transactions count, and an indeterminate one ends its process.
//!
//! Per key, for every process:
//! - read-your-writes: a read contains every value the process appended before;
//! - monotonic-reads: a read contains the process's previous read as a subsequence;
//! - monotonic-writes and writes-follow-reads: wherever any process reads a value the process
//!   appended, everything the process had seen or appended on that key before it (its session's
//!   view) precedes it, in order;
//! - and no read returns a value nobody wrote (`garbage-read`) or a failed write (`G1a`).
//!
//! Across keys: when a process appends to one key after seeing (or appending) a value on
//! another, a transaction that reads the append and reads the other key must see that value:
//! writes-follow-reads when another process wrote it, monotonic-writes when this one did.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::edn::{Edn, ints, kw_map};
use crate::history::{Mop, OpType, Txn};
use crate::verdict::{Findings, Verdict};

/// Checks the session guarantees of list-append transactions.
pub fn check(txns: &[Txn]) -> Verdict {
    let mut found = Findings::default();
    let mut writers: FxHashMap<(i64, i64), usize> = FxHashMap::default();
    for txn in txns {
        for mop in &txn.mops {
            if let Mop::Append { key, value } = *mop {
                writers.insert((key, value), txn.id);
            }
        }
    }
    // What each append's session had seen or appended on its key before it: the values that
    // must precede it in any read.
    // And the latest value the session knew on every other key: any transaction that reads the
    // append and reads such a key must see that value too (causality across keys).
    let mut across: FxHashMap<(i64, i64), Vec<(i64, i64)>> = FxHashMap::default();
    // With each, its place in its session's order of appends.
    let mut precedes: FxHashMap<(i64, i64), (usize, Vec<i64>)> = FxHashMap::default();
    let mut by_process: BTreeMap<i64, Vec<&Txn>> = BTreeMap::new();
    for txn in txns.iter().filter(|t| t.kind == OpType::Ok) {
        by_process.entry(txn.process).or_default().push(txn);
    }
    for session in by_process.values() {
        // What the session has seen or appended, per key; and what it last read.
        let mut view: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
        let mut last_read: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
        let mut appended: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
        for txn in session {
            for (i, mop) in txn.mops.iter().enumerate() {
                let first_touch = !txn.mops[..i].iter().any(|m| m.key() == mop.key());
                match mop {
                    Mop::Read {
                        key,
                        value: Some(list),
                    } if first_touch => {
                        let case = |missing: &[i64]| {
                            kw_map([
                                ("op", txn.to_edn()),
                                ("key", Edn::Int(*key)),
                                ("missing", ints(missing)),
                            ])
                        };
                        let own = appended.get(key).map_or(&[][..], Vec::as_slice);
                        let missing: Vec<i64> =
                            own.iter().copied().filter(|v| !list.contains(v)).collect();
                        if !missing.is_empty() {
                            found.add("read-your-writes", case(&missing));
                        }
                        let earlier = last_read.get(key).map_or(&[][..], Vec::as_slice);
                        if !is_subsequence(earlier, list) {
                            let missing: Vec<i64> = earlier
                                .iter()
                                .copied()
                                .filter(|v| !list.contains(v))
                                .collect();
                            found.add(
                                "monotonic-reads",
                                kw_map([
                                    ("op", txn.to_edn()),
                                    ("key", Edn::Int(*key)),
                                    ("earlier", ints(earlier)),
                                    ("now", ints(list)),
                                    ("missing", ints(&missing)),
                                ]),
                            );
                        }
                        view.insert(*key, list.clone());
                        last_read.insert(*key, list.clone());
                    }
                    Mop::Append { key, value } => {
                        let others: Vec<(i64, i64)> = view
                            .iter()
                            .filter(|(k, _)| *k != key)
                            .filter_map(|(k, list)| Some((*k, *list.last()?)))
                            .collect();
                        across.insert((*key, *value), others);
                        let seen = view.entry(*key).or_default();
                        precedes.insert((*key, *value), (precedes.len(), seen.clone()));
                        seen.push(*value);
                        appended.entry(*key).or_default().push(*value);
                    }
                    _ => {}
                }
            }
        }
    }
    for txn in txns.iter().filter(|t| t.kind == OpType::Ok) {
        let external: Vec<(i64, &[i64])> = txn
            .external_list_reads()
            .map(|(_, key, list)| (key, list))
            .collect();
        for mop in &txn.mops {
            let Mop::Read {
                key,
                value: Some(list),
            } = mop
            else {
                continue;
            };
            // Per writing process, its latest append in this read: the session's views grow,
            // so checking that one covers its earlier ones.
            let mut latest: FxHashMap<i64, (usize, usize)> = FxHashMap::default();
            for (pos, &v) in list.iter().enumerate() {
                match writers.get(&(*key, v)) {
                    None => found.add("garbage-read", element(txn, *key, v)),
                    Some(&w) if txns[w].kind == OpType::Fail => {
                        found.add("G1a", element(txn, *key, v))
                    }
                    Some(&w) => {
                        let seq = precedes.get(&(*key, v)).map_or(0, |(seq, _)| *seq);
                        let entry = latest.entry(txns[w].process).or_insert((seq, pos));
                        if seq >= entry.0 {
                            *entry = (seq, pos);
                        }
                    }
                }
            }
            for (&process, &(_, pos)) in &latest {
                let v = list[pos];
                // The writing transaction itself may have read the other key before appending:
                // its own reads are the internal check's business.
                let own_txn = writers.get(&(*key, v)) == Some(&txn.id);
                let needs = if own_txn {
                    None
                } else {
                    across.get(&(*key, v))
                };
                for &(other, needed) in needs.map_or(&[][..], Vec::as_slice) {
                    let Some((_, seen)) = external.iter().find(|(k, _)| *k == other) else {
                        continue;
                    };
                    if seen.contains(&needed) {
                        continue;
                    }
                    let own = writers
                        .get(&(other, needed))
                        .is_some_and(|&w| txns[w].process == process);
                    let kind = if own {
                        "monotonic-writes"
                    } else {
                        "writes-follow-reads"
                    };
                    found.add(
                        kind,
                        kw_map([
                            ("op", txn.to_edn()),
                            ("key", Edn::Int(*key)),
                            ("value", Edn::Int(v)),
                            ("depends-on-key", Edn::Int(other)),
                            ("depends-on-value", Edn::Int(needed)),
                            ("read", ints(seen)),
                        ]),
                    );
                }
                let Some((_, before)) = precedes.get(&(*key, v)) else {
                    continue;
                };
                if is_subsequence(before, &list[..pos]) {
                    continue;
                }
                let missing: Vec<i64> = before
                    .iter()
                    .copied()
                    .filter(|m| !list[..pos].contains(m))
                    .collect();
                let own = missing.iter().all(|m| {
                    writers
                        .get(&(*key, *m))
                        .is_some_and(|&w| txns[w].process == process)
                });
                let kind = if own {
                    "monotonic-writes"
                } else {
                    "writes-follow-reads"
                };
                found.add(
                    kind,
                    kw_map([
                        ("op", txn.to_edn()),
                        ("key", Edn::Int(*key)),
                        ("value", Edn::Int(v)),
                        ("expected-before", ints(before)),
                        ("read", ints(list)),
                    ]),
                );
            }
        }
    }
    Verdict::of_findings(found.0)
}

fn is_subsequence(needle: &[i64], haystack: &[i64]) -> bool {
    let mut rest = haystack.iter();
    needle.iter().all(|n| rest.any(|h| h == n))
}

fn element(txn: &Txn, key: i64, value: i64) -> Edn {
    kw_map([
        ("op", txn.to_edn()),
        ("key", Edn::Int(key)),
        ("value", Edn::Int(value)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{OpValue, parse_op};
    use crate::verdict::Validity;

    /// Transactions run one after another, each `(process, type, micro-ops)`.
    fn check_text(lines: &[(i64, &str, &str)]) -> Verdict {
        let txns: Vec<Txn> = lines
            .iter()
            .enumerate()
            .map(|(i, (process, kind, value))| {
                let line =
                    format!("{{:type :{kind}, :process {process}, :f :txn, :value {value}}}");
                let op = parse_op(&line, 2 * i + 1).unwrap();
                let OpValue::Txn(mops) = op.value else {
                    unreachable!("a txn")
                };
                Txn {
                    id: i,
                    process: *process,
                    kind: op.kind,
                    invoke_index: 2 * i,
                    complete_index: Some(2 * i + 1),
                    invoke_time: 0,
                    complete_time: Some(0),
                    mops,
                }
            })
            .collect();
        check(&txns)
    }

    fn kinds(v: &Verdict) -> Vec<&str> {
        v.anomaly_types().collect()
    }

    #[test]
    fn a_client_that_sees_its_own_and_others_writes_in_order_is_causal() {
        // Client 0 appends locally before it sees client 1's append: allowed, as long as every
        // session's view grows and its own appends stay in order.
        let v = check_text(&[
            (0, "ok", "[[:append 1 1]]"),
            (1, "ok", "[[:append 1 2]]"),
            (0, "ok", "[[:r 1 [1]]]"),
            (1, "ok", "[[:r 1 [2]]]"),
            (0, "ok", "[[:r 1 [2 1]]]"),
            (1, "ok", "[[:r 1 [2 1]]]"),
        ]);
        assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
    }

    #[test]
    fn finds_each_session_violation() {
        let v = check_text(&[(0, "ok", "[[:append 1 1]]"), (0, "ok", "[[:r 1 []]]")]);
        assert_eq!(kinds(&v), ["read-your-writes"]);

        let v = check_text(&[
            (0, "ok", "[[:append 1 1]]"),
            (1, "ok", "[[:r 1 [1]]]"),
            (1, "ok", "[[:r 1 []]]"),
        ]);
        assert_eq!(kinds(&v), ["monotonic-reads"]);

        let v = check_text(&[
            (0, "ok", "[[:append 1 1]]"),
            (0, "ok", "[[:append 1 2]]"),
            (1, "ok", "[[:r 1 [2 1]]]"),
        ]);
        assert_eq!(kinds(&v), ["monotonic-writes"]);

        let v = check_text(&[
            (0, "ok", "[[:append 1 1]]"),
            (1, "ok", "[[:r 1 [1]] [:append 1 2]]"),
            (2, "ok", "[[:r 1 [2]]]"),
        ]);
        assert_eq!(kinds(&v), ["writes-follow-reads"]);

        // Across keys: process 1 saw 1 on key 1 before appending 2 to key 2.
        let v = check_text(&[
            (0, "ok", "[[:append 1 1]]"),
            (1, "ok", "[[:r 1 [1]]]"),
            (1, "ok", "[[:append 2 2]]"),
            (2, "ok", "[[:r 2 [2]] [:r 1 []]]"),
        ]);
        assert_eq!(kinds(&v), ["writes-follow-reads"]);
        assert!(
            v.anomalies["writes-follow-reads"][0]
                .get("depends-on-key")
                .is_some()
        );

        let v = check_text(&[
            (0, "ok", "[[:append 1 1]]"),
            (0, "ok", "[[:append 2 2]]"),
            (1, "ok", "[[:r 2 [2]] [:r 1 []]]"),
        ]);
        assert_eq!(kinds(&v), ["monotonic-writes"]);

        // A transaction that reads a key, appends to it and to another, then reads the other:
        // its earlier read cannot show its own later append, and that is no violation.
        let v = check_text(&[(
            0,
            "ok",
            "[[:r 1 []] [:append 1 1] [:append 2 2] [:r 2 [2]]]",
        )]);
        assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);

        let v = check_text(&[(0, "fail", "[[:append 1 1]]"), (1, "ok", "[[:r 1 [1 9]]]")]);
        assert_eq!(kinds(&v), ["G1a", "garbage-read"]);
    }
}
