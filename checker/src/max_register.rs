//! Max-write-wins registers: each write raises a register to its value if greater, values are
//! unique and increase over the run, so every participant must converge on the greatest write,
//! and what a session has seen can only grow.
//!
//! [`check_sessions`] computes each committed transaction's causal past (what its process had
//! read and written before it, and, transitively, the past of every transaction whose write it
//! read) as a lower bound per key, and checks every read against it:
//! - `read-your-writes`: a read below the process's own earlier write;
//! - `monotonic-reads`: a read below the process's own earlier read;
//! - `monotonic-writes`: a read of a value whose writer's process had written more on another
//!   key before it, below that;
//! - `writes-follow-reads`: below anything else in the causal past;
//! - `internal`: a read inside a transaction that disagrees with what the transaction itself
//!   read or wrote before;
//! - `garbage-read` (nobody wrote it), `G1a` (a failed transaction wrote it), `future-read`
//!   (written by a transaction invoked after the reader completed), `cyclic-causality` (two
//!   transactions each causally before the other);
//! - with `realtime` (one client: strict serializability), `stale-read`: a read below a write
//!   that completed before the reader was invoked.
//!
//! [`check_convergence`] checks the final reads: everyone agrees, nothing foreign, and no key
//! below its greatest acknowledged write (`lost-write`).

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;

use crate::convergence::FinalState;
use crate::edn::{Edn, kw_map};
use crate::history::{Mop, OpType, Txn};
use crate::verdict::{Findings, Verdict};

/// A lower bound on a register, with the transaction that established it.
#[derive(Debug, Clone, Copy)]
struct Bound {
    value: i64,
    source: usize,
}

/// A transaction's causal past: per key, the greatest value it must see.
type Past = FxHashMap<i64, Bound>;

fn raise(past: &mut Past, key: i64, value: i64, source: usize) {
    let entry = past.entry(key).or_insert(Bound { value, source });
    if value > entry.value {
        *entry = Bound { value, source };
    }
}

fn join(into: &mut Past, other: &Past) {
    for (&key, bound) in other {
        raise(into, key, bound.value, bound.source);
    }
}

/// The register reads of a transaction: completed reads, with their position.
fn reads(txn: &Txn) -> impl Iterator<Item = (usize, i64, Option<i64>)> + '_ {
    txn.mops
        .iter()
        .enumerate()
        .filter_map(|(i, mop)| match *mop {
            Mop::ReadRegister { key, value } => Some((i, key, value)),
            _ => None,
        })
}

fn writes(txn: &Txn) -> impl Iterator<Item = (i64, i64)> + '_ {
    txn.mops.iter().filter_map(|mop| match *mop {
        Mop::Write { key, value } => Some((key, value)),
        _ => None,
    })
}

/// The reads that see the state before the transaction: those before its own first write to
/// the key.
fn external_reads(txn: &Txn) -> impl Iterator<Item = (i64, Option<i64>)> + '_ {
    reads(txn).filter_map(|(i, key, value)| {
        let written_before = txn.mops[..i]
            .iter()
            .any(|m| matches!(*m, Mop::Write { key: k, .. } if k == key));
        (!written_before).then_some((key, value))
    })
}

fn case(txn: &Txn, key: i64, read: Option<i64>, extra: Vec<(&str, Edn)>) -> Edn {
    let mut entries = vec![
        ("op", txn.to_edn()),
        ("key", Edn::Int(key)),
        ("read", read.map_or(Edn::Nil, Edn::Int)),
    ];
    entries.extend(extra);
    kw_map(entries)
}

/// Checks the session guarantees (and, with `realtime`, real-time order) of max-write-wins
/// register transactions.
pub fn check_sessions(txns: &[Txn], realtime: bool) -> Verdict {
    let mut found = Findings::default();
    let mut writer: FxHashMap<i64, usize> = FxHashMap::default();
    for txn in txns {
        for (key, value) in writes(txn) {
            if writer.insert(value, txn.id).is_some() {
                found.add(
                    "duplicate-writes",
                    kw_map([("key", Edn::Int(key)), ("value", Edn::Int(value))]),
                );
            }
        }
    }
    let by_id: FxHashMap<usize, &Txn> = txns.iter().map(|t| (t.id, t)).collect();
    check_internal(txns, &mut found);

    // The causal graph: process order (failed transactions took no part) and write-read.
    let live: Vec<&Txn> = txns.iter().filter(|t| t.kind != OpType::Fail).collect();
    let mut successors: FxHashMap<usize, Vec<usize>> = FxHashMap::default();
    let mut indegree: FxHashMap<usize, usize> = live.iter().map(|t| (t.id, 0)).collect();
    let mut previous_of: FxHashMap<usize, usize> = FxHashMap::default();
    let mut last_in_process: FxHashMap<i64, usize> = FxHashMap::default();
    let mut sorted = live.clone();
    sorted.sort_by_key(|t| t.invoke_index);
    for txn in &sorted {
        let mut edge = |from: usize| {
            successors.entry(from).or_default().push(txn.id);
            *indegree.get_mut(&txn.id).expect("live") += 1;
        };
        if let Some(previous) = last_in_process.insert(txn.process, txn.id) {
            previous_of.insert(txn.id, previous);
            edge(previous);
        }
        if txn.kind != OpType::Ok {
            continue;
        }
        for (key, value) in external_reads(txn) {
            let Some(value) = value else { continue };
            match writer.get(&value).and_then(|w| by_id.get(w)) {
                None => found.add("garbage-read", case(txn, key, Some(value), vec![])),
                Some(w) if w.kind == OpType::Fail => found.add(
                    "G1a",
                    case(txn, key, Some(value), vec![("writer", w.to_edn())]),
                ),
                Some(w) if w.id == txn.id => {}
                Some(w) => {
                    if txn.complete_time.is_some_and(|t| w.invoke_time > t) {
                        found.add(
                            "future-read",
                            case(txn, key, Some(value), vec![("writer", w.to_edn())]),
                        );
                    }
                    edge(w.id);
                }
            }
        }
    }

    // Pasts in topological order (Kahn); what is left over lies on a cycle.
    let mut pasts: FxHashMap<usize, Past> = FxHashMap::default();
    let mut sessions: FxHashMap<i64, Past> = FxHashMap::default();
    let mut ready: Vec<usize> = sorted
        .iter()
        .filter(|t| indegree[&t.id] == 0)
        .map(|t| t.id)
        .collect();
    while let Some(id) = ready.pop() {
        let txn = by_id[&id];
        let session = sessions.entry(txn.process).or_default();
        let past = judge(
            txn,
            session,
            &pasts,
            &previous_of,
            &writer,
            &by_id,
            &mut found,
        );
        pasts.insert(id, past);
        for &next in successors.get(&id).into_iter().flatten() {
            let d = indegree.get_mut(&next).expect("live");
            *d -= 1;
            if *d == 0 {
                ready.push(next);
            }
        }
    }
    let cyclic: Vec<Edn> = sorted
        .iter()
        .filter(|t| !pasts.contains_key(&t.id))
        .take(16)
        .map(|t| t.to_edn())
        .collect();
    if !cyclic.is_empty() {
        found.add(
            "cyclic-causality",
            kw_map([
                ("count", Edn::Int((sorted.len() - pasts.len()) as i64)),
                ("ops", Edn::Vector(cyclic)),
            ]),
        );
    }
    if realtime {
        check_realtime(txns, &mut found);
    }
    Verdict::of_findings(found.0)
}

/// Checks `txn`'s external reads against its causal past and its session's own reads and
/// writes (`session`, updated), and returns its causal past.
fn judge(
    txn: &Txn,
    session: &mut Past,
    pasts: &FxHashMap<usize, Past>,
    previous_of: &FxHashMap<usize, usize>,
    writer: &FxHashMap<i64, usize>,
    by_id: &FxHashMap<usize, &Txn>,
    found: &mut Findings,
) -> Past {
    let mut past = previous_of
        .get(&txn.id)
        .and_then(|p| pasts.get(p))
        .cloned()
        .unwrap_or_default();
    if txn.kind == OpType::Ok {
        // The session's own bounds come first: they name the stronger guarantee.
        let mut causal = past.clone();
        let mut read_writers = Vec::new();
        for (_, value) in external_reads(txn) {
            if let Some(w) = value.and_then(|v| writer.get(&v)).filter(|&&w| w != txn.id)
                && let Some(p) = pasts.get(w)
            {
                join(&mut causal, p);
                read_writers.push(*w);
            }
        }
        for (key, value) in external_reads(txn) {
            let read = value.unwrap_or(i64::MIN);
            let below = |bound: Option<&Bound>| bound.filter(|b| read < b.value).copied();
            let kind = if let Some(b) = below(session.get(&key)) {
                let own_write = writes(by_id[&b.source]).any(|(k, v)| k == key && v == b.value);
                Some((
                    if own_write {
                        "read-your-writes"
                    } else {
                        "monotonic-reads"
                    },
                    b,
                ))
            } else if let Some(b) = below(causal.get(&key)) {
                let source = by_id[&b.source];
                let wrote_it = writes(source).any(|(k, v)| k == key && v == b.value);
                // The writer of what this transaction read came after the bound's source in
                // one process: it wrote both (monotonic writes) or saw one, then wrote.
                let same_session = read_writers
                    .iter()
                    .any(|w| by_id[w].process == source.process);
                Some((
                    if wrote_it && same_session {
                        "monotonic-writes"
                    } else {
                        "writes-follow-reads"
                    },
                    b,
                ))
            } else {
                None
            };
            if let Some((kind, bound)) = kind {
                found.add(
                    kind,
                    case(
                        txn,
                        key,
                        value,
                        vec![
                            ("expected-at-least", Edn::Int(bound.value)),
                            ("because-of", by_id[&bound.source].to_edn()),
                        ],
                    ),
                );
            }
        }
        past = causal;
        for (_, key, value) in reads(txn) {
            if let Some(value) = value {
                raise(&mut past, key, value, txn.id);
                raise(session, key, value, txn.id);
            }
        }
    }
    for (key, value) in writes(txn) {
        raise(&mut past, key, value, txn.id);
        raise(session, key, value, txn.id);
    }
    past
}

/// Reads inside one transaction agree with what it read and wrote before: after a read the
/// register is known exactly, after a write it is at least the value written.
fn check_internal(txns: &[Txn], found: &mut Findings) {
    #[derive(Clone, Copy)]
    enum Known {
        Exactly(i64),
        AtLeast(i64),
    }
    for txn in txns.iter().filter(|t| t.kind == OpType::Ok) {
        let mut known: FxHashMap<i64, Known> = FxHashMap::default();
        for mop in &txn.mops {
            match *mop {
                Mop::ReadRegister { key, value } => {
                    let wrong = match (known.get(&key), value) {
                        (Some(Known::Exactly(v)), read) => read != Some(*v),
                        (Some(Known::AtLeast(v)), read) => read.is_none_or(|r| r < *v),
                        (None, _) => false,
                    };
                    if wrong {
                        let expected = match known[&key] {
                            Known::Exactly(v) => kw_map([("exactly", Edn::Int(v))]),
                            Known::AtLeast(v) => kw_map([("at-least", Edn::Int(v))]),
                        };
                        found.add(
                            "internal",
                            case(txn, key, value, vec![("expected", expected)]),
                        );
                    }
                    if let Some(v) = value {
                        known.insert(key, Known::Exactly(v));
                    }
                }
                Mop::Write { key, value } => {
                    let next = match known.get(&key) {
                        Some(Known::Exactly(v)) => Known::Exactly((*v).max(value)),
                        Some(Known::AtLeast(v)) => Known::AtLeast((*v).max(value)),
                        None => Known::AtLeast(value),
                    };
                    known.insert(key, next);
                }
                _ => {}
            }
        }
    }
}

/// One client's transactions are strictly serializable: a read sees at least every write that
/// completed before the reader was invoked.
fn check_realtime(txns: &[Txn], found: &mut Findings) {
    let mut completed: Vec<&Txn> = txns
        .iter()
        .filter(|t| t.kind == OpType::Ok && t.mops.iter().any(|m| matches!(m, Mop::Write { .. })))
        .collect();
    completed.sort_by_key(|t| t.complete_time);
    let mut invoked: Vec<&Txn> = txns.iter().filter(|t| t.kind == OpType::Ok).collect();
    invoked.sort_by_key(|t| t.invoke_time);
    let mut floor = Past::default();
    let mut next = 0;
    for txn in invoked {
        while next < completed.len()
            && completed[next]
                .complete_time
                .is_some_and(|t| t < txn.invoke_time)
        {
            for (key, value) in writes(completed[next]) {
                raise(&mut floor, key, value, next);
            }
            next += 1;
        }
        for (key, value) in external_reads(txn) {
            if let Some(bound) = floor
                .get(&key)
                .filter(|b| value.is_none_or(|v| v < b.value))
            {
                found.add(
                    "stale-read",
                    case(
                        txn,
                        key,
                        value,
                        vec![
                            ("expected-at-least", Edn::Int(bound.value)),
                            ("completed-before", completed[bound.source].to_edn()),
                        ],
                    ),
                );
            }
        }
    }
}

/// Checks the final reads (participant name, state; a register's state is a list of at most
/// one value, empty when never written) against the history's writes. `stalls` are waits for
/// quiescence that ran out.
pub fn check_convergence(
    txns: &[Txn],
    finals: &[(String, FinalState)],
    stalls: Vec<Edn>,
) -> Verdict {
    let mut found = Findings::default();
    for stall in stalls {
        found.add("stall", stall);
    }
    let mut writer: FxHashMap<i64, &Txn> = FxHashMap::default();
    let mut greatest_ok: BTreeMap<i64, (i64, &Txn)> = BTreeMap::new();
    for txn in txns {
        for (key, value) in writes(txn) {
            writer.insert(value, txn);
            if txn.kind == OpType::Ok && greatest_ok.get(&key).is_none_or(|(v, _)| value > *v) {
                greatest_ok.insert(key, (value, txn));
            }
        }
    }
    let mut present = Vec::new();
    for (name, state) in finals {
        match state {
            Some(state) => present.push((name, state)),
            None => found.add(
                "missing-final-read",
                kw_map([("node", Edn::Str(name.clone()))]),
            ),
        }
    }
    let mut keys: Vec<i64> = present
        .iter()
        .flat_map(|(_, s)| s.keys().copied())
        .collect();
    keys.extend(greatest_ok.keys());
    keys.sort_unstable();
    keys.dedup();
    let value_of = |state: &BTreeMap<i64, Vec<i64>>, key: i64| -> Result<Option<i64>, usize> {
        match state.get(&key).map_or(&[][..], Vec::as_slice) {
            [] => Ok(None),
            [v] => Ok(Some(*v)),
            many => Err(many.len()),
        }
    };
    for key in keys {
        let mut values = Vec::new();
        for (name, state) in &present {
            let entry = |extra: Vec<(&str, Edn)>| {
                let mut entries = vec![("node", Edn::Str((*name).clone())), ("key", Edn::Int(key))];
                entries.extend(extra);
                kw_map(entries)
            };
            let value = match value_of(state, key) {
                Ok(value) => value,
                Err(count) => {
                    found.add(
                        "malformed-history",
                        entry(vec![("values", Edn::Int(count as i64))]),
                    );
                    continue;
                }
            };
            values.push((Edn::Str((*name).clone()), value.map_or(Edn::Nil, Edn::Int)));
            if let Some(v) = value {
                match writer.get(&v) {
                    None => found.add("garbage-final-read", entry(vec![("value", Edn::Int(v))])),
                    Some(w) if w.kind == OpType::Fail => found.add(
                        "failed-write-visible",
                        entry(vec![("value", Edn::Int(v)), ("op", w.to_edn())]),
                    ),
                    Some(_) => {}
                }
            }
            if let Some((greatest, txn)) = greatest_ok.get(&key)
                && value.is_none_or(|v| v < *greatest)
            {
                found.add(
                    "lost-write",
                    entry(vec![
                        ("value", value.map_or(Edn::Nil, Edn::Int)),
                        ("expected-at-least", Edn::Int(*greatest)),
                        ("op", txn.to_edn()),
                    ]),
                );
            }
        }
        if values.windows(2).any(|w| w[0].1 != w[1].1) {
            found.add(
                "divergent-final-reads",
                kw_map([("key", Edn::Int(key)), ("values", Edn::Map(values))]),
            );
        }
    }
    Verdict::of_findings(found.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{pair_txns, read_history};
    use crate::verdict::Validity;

    fn txns(text: &str) -> Vec<Txn> {
        pair_txns(read_history(text.as_bytes()).unwrap()).unwrap()
    }

    fn kinds(v: &Verdict) -> Vec<&str> {
        v.anomaly_types().collect()
    }

    /// An ok transaction by `process` at `index` (invocation at `index`, completion after it).
    fn op(index: usize, process: i64, mops: &str) -> String {
        format!(
            "{{:index {index}, :time {t0}, :type :invoke, :process {process}, :f :txn, :value {mops}}}\n\
             {{:index {i1}, :time {t1}, :type :ok, :process {process}, :f :txn, :value {mops}}}\n",
            t0 = index * 10,
            i1 = index + 1,
            t1 = index * 10 + 5,
        )
    }

    #[test]
    fn a_causal_history_is_valid() {
        let h = [
            op(0, 0, "[[:r 1 nil] [:w 1 1]]"),
            op(2, 1, "[[:r 1 1] [:w 2 2]]"),
            op(4, 2, "[[:r 2 2] [:r 1 1] [:w 1 3] [:r 1 3]]"),
            op(6, 0, "[[:r 1 3] [:r 2 2] [:w 2 4] [:w 2 0] [:r 2 4]]"),
        ]
        .concat();
        let v = check_sessions(&txns(&h), true);
        assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
    }

    #[test]
    fn finds_each_session_violation() {
        let cases = [
            (
                vec![op(0, 0, "[[:w 1 5]]"), op(2, 0, "[[:r 1 nil]]")],
                "read-your-writes",
            ),
            (
                vec![
                    op(0, 0, "[[:w 1 5]]"),
                    op(2, 1, "[[:r 1 5]]"),
                    op(4, 1, "[[:r 1 nil]]"),
                ],
                "monotonic-reads",
            ),
            (
                vec![
                    op(0, 0, "[[:w 1 5]]"),
                    op(2, 0, "[[:w 2 6]]"),
                    op(4, 1, "[[:r 2 6] [:r 1 nil]]"),
                ],
                "monotonic-writes",
            ),
            (
                vec![
                    op(0, 0, "[[:w 1 5]]"),
                    op(2, 1, "[[:r 1 5] [:w 2 6]]"),
                    op(4, 2, "[[:r 2 6] [:r 1 nil]]"),
                ],
                "writes-follow-reads",
            ),
            (vec![op(0, 0, "[[:w 1 5] [:r 1 4]]")], "internal"),
            (vec![op(0, 0, "[[:r 1 9]]")], "garbage-read"),
            (
                vec![
                    op(0, 0, "[[:r 1 6] [:w 2 5]]"),
                    op(2, 1, "[[:r 2 5] [:w 1 6]]"),
                ],
                "cyclic-causality",
            ),
        ];
        for (ops, expected) in cases {
            let v = check_sessions(&txns(&ops.concat()), false);
            assert_eq!(v.valid, Validity::Invalid, "{expected}");
            assert!(
                kinds(&v).contains(&expected),
                "{expected}: {:?}",
                v.anomalies
            );
        }
    }

    #[test]
    fn real_time_is_checked_only_when_asked() {
        let h = [op(0, 0, "[[:w 1 5]]"), op(2, 1, "[[:r 1 nil]]")].concat();
        assert_eq!(check_sessions(&txns(&h), false).valid, Validity::Valid);
        let v = check_sessions(&txns(&h), true);
        assert_eq!(kinds(&v), ["stale-read"]);
    }

    #[test]
    fn a_failed_write_read_is_g1a_and_a_later_one_a_future_read() {
        let h = "\
{:index 0, :time 0, :type :invoke, :process 0, :f :txn, :value [[:w 1 5]]}
{:index 1, :time 1, :type :fail, :process 0, :f :txn, :value [[:w 1 5]]}
{:index 2, :time 2, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}
{:index 3, :time 3, :type :ok, :process 1, :f :txn, :value [[:r 1 5]]}
{:index 4, :time 4, :type :invoke, :process 2, :f :txn, :value [[:r 2 nil]]}
{:index 5, :time 5, :type :ok, :process 2, :f :txn, :value [[:r 2 7]]}
{:index 6, :time 6, :type :invoke, :process 0, :f :txn, :value [[:w 2 7]]}
{:index 7, :time 7, :type :ok, :process 0, :f :txn, :value [[:w 2 7]]}";
        assert_eq!(
            kinds(&check_sessions(&txns(h), false)),
            ["G1a", "future-read"]
        );
    }

    fn state(entries: &[(i64, &[i64])]) -> FinalState {
        Some(entries.iter().map(|(k, l)| (*k, l.to_vec())).collect())
    }

    #[test]
    fn final_reads_hold_the_greatest_write() {
        let h = [
            op(0, 0, "[[:w 1 5]]"),
            op(2, 1, "[[:w 1 3]]"),
            "{:index 4, :time 40, :type :invoke, :process 2, :f :txn, :value [[:w 1 9]]}\n".into(),
        ]
        .concat();
        let t = txns(&h);
        // The indeterminate 9 may or may not have happened, as long as everyone agrees.
        for v in [5, 9] {
            let finals = vec![
                ("n1".into(), state(&[(1, &[v])])),
                ("postgres".into(), state(&[(1, &[v])])),
            ];
            assert_eq!(
                check_convergence(&t, &finals, vec![]).valid,
                Validity::Valid
            );
        }
        let finals = vec![
            ("n1".into(), state(&[(1, &[3])])),
            ("postgres".into(), state(&[(1, &[5]), (2, &[4])])),
        ];
        let v = check_convergence(&t, &finals, vec![]);
        assert_eq!(
            kinds(&v),
            ["divergent-final-reads", "garbage-final-read", "lost-write"]
        );
        let missing = vec![
            ("n1".into(), None),
            ("postgres".into(), state(&[(1, &[5])])),
        ];
        assert_eq!(
            check_convergence(&t, &missing, vec![]).valid,
            Validity::Unknown
        );
    }
}
