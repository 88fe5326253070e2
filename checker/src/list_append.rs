//! Elle's list-append analysis: version orders from reads, ww / wr / rw dependencies, process and
//! real-time order, non-cyclic anomalies, and cycles classified and explained.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::edn::{Edn, ints, kw, kw_map};
use crate::graph::{Graph, GraphBuilder, Rels};
use crate::history::{Mop, Op, OpType, Txn, pair_txns};
use crate::txn_graph::{self, Evidence};
use crate::verdict::{Findings, Verdict};

/// How to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The consistency models the history must satisfy.
    pub models: Vec<&'static str>,
    /// Total time allowed for cycle search before reporting `:cycle-search-timeout`.
    pub cycle_search_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            models: vec!["strict-serializable"],
            cycle_search_timeout: Duration::from_secs(10),
        }
    }
}

/// Checks a list-append history.
pub fn check(ops: &[Op], options: &Options) -> Verdict {
    check_paired(pair_txns(ops.iter().cloned()), options)
}

/// Checks a list-append history it may consume, which saves copying a large one.
pub fn check_history(ops: Vec<Op>, options: &Options) -> Verdict {
    check_paired(pair_txns(ops), options)
}

fn check_paired(txns: Result<Vec<Txn>, String>, options: &Options) -> Verdict {
    match txns {
        Ok(txns) => check_txns(&txns, options),
        Err(message) => Verdict::judge(
            options.models.clone(),
            BTreeMap::from([(
                "malformed-history".to_owned(),
                vec![kw_map([("message", Edn::Str(message))])],
            )]),
        ),
    }
}

/// Checks already-paired transactions.
pub fn check_txns(txns: &[Txn], options: &Options) -> Verdict {
    let mut found = Findings::default();
    let register = txns
        .iter()
        .flat_map(|t| &t.mops)
        .find(|m| matches!(m, Mop::Write { .. } | Mop::ReadRegister { .. }));
    if let Some(mop) = register {
        found.add(
            "malformed-history",
            kw_map([(
                "message",
                Edn::Str(format!(
                    "{} is a register micro-op, not list-append: check it with the rw-register model",
                    mop.to_edn()
                )),
            )]),
        );
        return Verdict::judge(options.models.clone(), found.0);
    }
    let analysis = Analysis::new(txns, &mut found);
    if let Some(analysis) = analysis {
        // The non-cyclic checks and the graph only read the analysis: build them side by side.
        let (non_cyclic, graph) = std::thread::scope(|scope| {
            let checks = scope.spawn(|| {
                let mut found = Findings::default();
                analysis.non_cyclic(&mut found);
                found
            });
            let graph = analysis.graph();
            (
                checks.join().expect("the non-cyclic checks panicked"),
                graph,
            )
        });
        found.merge(non_cyclic);
        if txns.iter().all(|t| t.kind != OpType::Ok) {
            found.add(
                "empty-transaction-graph",
                kw_map([("ok-count", Edn::Int(0))]),
            );
        }
        let deadline = Instant::now() + options.cycle_search_timeout;
        txn_graph::search_cycles(
            txns,
            &graph,
            &options.models,
            deadline,
            &analysis,
            &mut found,
        );
    }
    Verdict::judge(options.models.clone(), found.0)
}

/// Who appended a value: the transaction and the micro-op's position in it.
#[derive(Clone, Copy)]
struct Writer {
    txn: usize,
    mop: usize,
    /// Whether this is the transaction's last append to the key.
    last: bool,
}

struct Analysis<'a> {
    txns: &'a [Txn],
    writers: FxHashMap<(i64, i64), Writer>,
    /// Per key, the longest committed read: (txn, mop) whose list is the version order.
    longest: FxHashMap<i64, (usize, usize)>,
}

fn read_list(mop: &Mop) -> Option<&[i64]> {
    match mop {
        Mop::Read {
            value: Some(list), ..
        } => Some(list),
        _ => None,
    }
}

fn first_duplicate(list: &[i64]) -> Option<i64> {
    let mut seen = FxHashSet::default();
    list.iter().find(|v| !seen.insert(**v)).copied()
}

impl<'a> Analysis<'a> {
    /// Indexes writers and version orders; `None` if appended values are not unique per key,
    /// which the analysis depends on.
    fn new(txns: &'a [Txn], found: &mut Findings) -> Option<Self> {
        let mut writers: FxHashMap<(i64, i64), Writer> = FxHashMap::default();
        let mut duplicated = false;
        for txn in txns {
            for (i, mop) in txn.mops.iter().enumerate() {
                if let Mop::Append { key, value } = *mop {
                    // Transactions are short: a scan beats a map here.
                    let appends_later = txn.mops[i + 1..]
                        .iter()
                        .any(|m| matches!(m, Mop::Append { key: k, .. } if *k == key));
                    let writer = Writer {
                        txn: txn.id,
                        mop: i,
                        last: !appends_later,
                    };
                    if let Some(previous) = writers.insert((key, value), writer) {
                        duplicated = true;
                        found.add(
                            "duplicate-appends",
                            kw_map([
                                ("key", Edn::Int(key)),
                                ("value", Edn::Int(value)),
                                (
                                    "ops",
                                    Edn::Vector(vec![txns[previous.txn].to_edn(), txn.to_edn()]),
                                ),
                            ]),
                        );
                    }
                }
            }
        }
        if duplicated {
            return None;
        }
        // The version order of a key is its longest committed read. A read with a duplicate
        // element (itself an anomaly) cannot be an order: where the longest has one, the
        // longest read without one is used (a rare second pass).
        let longest_read = |clean_only: &FxHashSet<i64>| {
            let mut longest: FxHashMap<i64, (usize, usize)> = FxHashMap::default();
            for txn in txns.iter().filter(|t| t.kind == OpType::Ok) {
                for (i, mop) in txn.mops.iter().enumerate() {
                    let Some(list) = read_list(mop) else { continue };
                    if clean_only.contains(&mop.key()) && first_duplicate(list).is_some() {
                        continue;
                    }
                    let entry = longest.entry(mop.key()).or_insert((txn.id, i));
                    let current = read_list(&txns[entry.0].mops[entry.1]).map_or(0, <[i64]>::len);
                    if list.len() > current {
                        *entry = (txn.id, i);
                    }
                }
            }
            longest
        };
        let mut longest = longest_read(&FxHashSet::default());
        let unclean: FxHashSet<i64> = longest
            .iter()
            .filter(|(_, (t, m))| {
                read_list(&txns[*t].mops[*m])
                    .and_then(first_duplicate)
                    .is_some()
            })
            .map(|(k, _)| *k)
            .collect();
        if !unclean.is_empty() {
            let clean = longest_read(&unclean);
            for key in unclean {
                match clean.get(&key) {
                    Some(&read) => longest.insert(key, read),
                    None => longest.remove(&key),
                };
            }
        }
        Some(Analysis {
            txns,
            writers,
            longest,
        })
    }

    fn version_order(&self, key: i64) -> &[i64] {
        self.longest
            .get(&key)
            .and_then(|&(t, m)| read_list(&self.txns[t].mops[m]))
            .unwrap_or(&[])
    }

    fn writer(&self, key: i64, value: i64) -> Option<Writer> {
        self.writers.get(&(key, value)).copied()
    }

    /// The writer of a value, if that transaction may have committed.
    fn committed_writer(&self, key: i64, value: i64) -> Option<usize> {
        self.writer(key, value)
            .filter(|w| self.txns[w.txn].kind != OpType::Fail)
            .map(|w| w.txn)
    }

    fn non_cyclic(&self, found: &mut Findings) {
        let mut incompatible: BTreeSet<i64> = BTreeSet::new();
        let mut lost: FxHashMap<(i64, usize, Option<i64>), Vec<usize>> = FxHashMap::default();
        for txn in self.txns.iter().filter(|t| t.kind == OpType::Ok) {
            self.internal(txn, found);
            for (i, mop) in txn.mops.iter().enumerate() {
                let Some(list) = read_list(mop) else { continue };
                let key = mop.key();
                let case = |extra: Vec<(&str, Edn)>| {
                    let mut entries = vec![("op", txn.to_edn()), ("mop", mop.to_edn())];
                    entries.extend(extra);
                    kw_map(entries)
                };
                // A prefix of the (duplicate-free) version order has no duplicates.
                let order = self.version_order(key);
                let in_order = order.starts_with(list);
                if !in_order && let Some(dup) = first_duplicate(list) {
                    found.add("duplicate-elements", case(vec![("element", Edn::Int(dup))]));
                }
                for (pos, &v) in list.iter().enumerate() {
                    match self.writer(key, v) {
                        None => found.add("garbage-read", case(vec![("element", Edn::Int(v))])),
                        Some(w) if w.txn == txn.id && w.mop > i => {
                            found.add("future-read", case(vec![("element", Edn::Int(v))]));
                        }
                        Some(w) if self.txns[w.txn].kind == OpType::Fail => found.add(
                            "G1a",
                            case(vec![
                                ("element", Edn::Int(v)),
                                ("writer", self.txns[w.txn].to_edn()),
                            ]),
                        ),
                        Some(w) if pos + 1 == list.len() && w.txn != txn.id && !w.last => found
                            .add(
                                "G1b",
                                case(vec![
                                    ("element", Edn::Int(v)),
                                    ("writer", self.txns[w.txn].to_edn()),
                                ]),
                            ),
                        Some(_) => {}
                    }
                }
                if !in_order && incompatible.insert(key) {
                    found.add(
                        "incompatible-order",
                        kw_map([
                            ("key", Edn::Int(key)),
                            ("values", Edn::Vector(vec![ints(list), ints(order)])),
                        ]),
                    );
                }
            }
            for (i, key, list) in txn.external_list_reads() {
                let writes_later = txn.mops[i + 1..]
                    .iter()
                    .any(|m| matches!(m, Mop::Append { key: k, .. } if *k == key));
                if writes_later {
                    lost.entry((key, list.len(), list.last().copied()))
                        .or_default()
                        .push(txn.id);
                }
            }
        }
        let mut lost: Vec<_> = lost.into_iter().filter(|(_, t)| t.len() > 1).collect();
        lost.sort_unstable_by_key(|((k, n, _), _)| (*k, *n));
        for ((key, _, last), txns) in lost {
            found.add(
                "lost-update",
                kw_map([
                    ("key", Edn::Int(key)),
                    ("value", last.map_or(Edn::Vector(vec![]), |v| ints(&[v]))),
                    (
                        "txns",
                        Edn::Vector(txns.iter().map(|&t| self.txns[t].to_edn()).collect()),
                    ),
                ]),
            );
        }
        let mut keys: Vec<&i64> = self.longest.keys().collect();
        keys.sort_unstable();
        for &key in keys {
            let order = self.version_order(key);
            let failed_at = order.iter().position(|&v| {
                self.writer(key, v)
                    .is_some_and(|w| self.txns[w.txn].kind == OpType::Fail)
            });
            if let Some(pos) = failed_at
                && let Some(later) = order[pos + 1..]
                    .iter()
                    .find_map(|&v| self.committed_writer(key, v))
            {
                let failed = self.writer(key, order[pos]).expect("checked above").txn;
                found.add(
                    "dirty-update",
                    kw_map([
                        ("key", Edn::Int(key)),
                        ("values", ints(order)),
                        ("failed", self.txns[failed].to_edn()),
                        ("later", self.txns[later].to_edn()),
                    ]),
                );
            }
        }
    }

    /// Reads inside a transaction must agree with its own earlier reads and appends.
    fn internal(&self, txn: &Txn, found: &mut Findings) {
        // Only a read of a key the transaction touched before can disagree with it.
        let rereads = txn.mops.iter().enumerate().any(|(i, m)| {
            matches!(m, Mop::Read { .. }) && txn.mops[..i].iter().any(|p| p.key() == m.key())
        });
        if !rereads {
            return;
        }
        let mut state: FxHashMap<i64, (Option<Vec<i64>>, Vec<i64>)> = FxHashMap::default();
        for mop in &txn.mops {
            match mop {
                Mop::Append { key, value } => state.entry(*key).or_default().1.push(*value),
                Mop::Read {
                    key,
                    value: Some(list),
                } => {
                    let (base, appended) = state.entry(*key).or_default();
                    let consistent = match base {
                        Some(base) => {
                            list.len() == base.len() + appended.len()
                                && list.starts_with(base)
                                && list.ends_with(appended)
                        }
                        None => list.ends_with(appended),
                    };
                    if !consistent {
                        let mut expected: Vec<Edn> = Vec::new();
                        match base {
                            Some(base) => expected.extend(base.iter().map(|v| Edn::Int(*v))),
                            None => expected.push(Edn::Symbol("...".into())),
                        }
                        expected.extend(appended.iter().map(|v| Edn::Int(*v)));
                        found.add(
                            "internal",
                            kw_map([
                                ("op", txn.to_edn()),
                                ("mop", mop.to_edn()),
                                ("expected", Edn::Vector(expected)),
                            ]),
                        );
                    }
                    *base = Some(list.clone());
                    appended.clear();
                }
                _ => {}
            }
        }
    }

    fn graph(&self) -> Graph {
        let mut builder = GraphBuilder::default();
        for &key in self.longest.keys() {
            let order = self.version_order(key);
            for pair in order.windows(2) {
                if let (Some(a), Some(b)) = (
                    self.committed_writer(key, pair[0]),
                    self.committed_writer(key, pair[1]),
                ) {
                    builder.add(a, b, Rels::WW);
                }
            }
        }
        for txn in self.txns.iter().filter(|t| t.kind == OpType::Ok) {
            for (_, key, list) in txn.external_list_reads() {
                if let Some(&last) = list.last()
                    && let Some(w) = self.committed_writer(key, last)
                {
                    builder.add(w, txn.id, Rels::WR);
                }
                let order = self.version_order(key);
                if list.len() < order.len()
                    && order.starts_with(list)
                    && let Some(w) = self.committed_writer(key, order[list.len()])
                {
                    builder.add(txn.id, w, Rels::RW);
                }
            }
        }
        txn_graph::build(self.txns, builder)
    }
}

impl Evidence for Analysis<'_> {
    fn data_step(
        &self,
        a: usize,
        b: usize,
        rel: Rels,
        na: usize,
        nb: usize,
    ) -> Option<(Edn, String)> {
        let (ta, tb) = (&self.txns[a], &self.txns[b]);
        let step = |key: i64, value: Edn, value2: Edn| {
            kw_map([
                ("type", kw(rel.name())),
                ("key", Edn::Int(key)),
                ("value", value),
                ("value'", value2),
            ])
        };
        match rel {
            Rels::WW => {
                for mop in &ta.mops {
                    let &Mop::Append { key, value } = mop else {
                        continue;
                    };
                    let order = self.version_order(key);
                    if let Some(pos) = order.iter().position(|&v| v == value)
                        && let Some(&next) = order.get(pos + 1)
                        && self.committed_writer(key, next) == Some(b)
                    {
                        return Some((
                            step(key, Edn::Int(value), Edn::Int(next)),
                            format!("T{nb} appended {next} after T{na} appended {value} to {key}"),
                        ));
                    }
                }
            }
            Rels::WR => {
                for (_, key, list) in tb.external_list_reads() {
                    if let Some(&last) = list.last()
                        && self.committed_writer(key, last) == Some(a)
                    {
                        return Some((
                            step(key, Edn::Int(last), ints(list)),
                            format!("T{nb} observed T{na}'s append of {last} to key {key}"),
                        ));
                    }
                }
            }
            Rels::RW => {
                for (_, key, list) in ta.external_list_reads() {
                    let order = self.version_order(key);
                    if list.len() < order.len()
                        && order.starts_with(list)
                        && self.committed_writer(key, order[list.len()]) == Some(b)
                    {
                        let next = order[list.len()];
                        return Some((
                            step(key, ints(list), Edn::Int(next)),
                            format!(
                                "T{na} read key {key} = {}, and T{nb} appended {next} after that version",
                                ints(list)
                            ),
                        ));
                    }
                }
            }
            _ => {}
        }
        None
    }
}
