//! Elle's rw-register analysis: transactions of `[:w k v]` and `[:r k v]` over registers with
//! unique writes. Unlike lists, a read shows one version, so the version order of each key is
//! inferred, as a graph, from the sources Elle uses: the initial state (nil precedes every
//! version), and optionally writes-follow-reads within a transaction, process order
//! (sequential keys) and real-time order (linearizable keys). A cycle in a version graph is
//! `:cyclic-versions`; otherwise ww / wr / rw dependencies follow from it and cycles are searched
//! as for lists.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::cycles;
use crate::edn::{Edn, kw, kw_map};
use crate::graph::{GraphBuilder, Rels};
use crate::history::{Mop, Op, OpType, Txn, pair_txns};
use crate::txn_graph::{self, Evidence};
use crate::verdict::{Findings, Verdict};

/// How to check.
#[derive(Debug, Clone)]
pub struct Options {
    /// The consistency models the history must satisfy.
    pub models: Vec<&'static str>,
    /// Anomalies that are failures whatever the models (Elle's `:anomalies`), such as
    /// `garbage-read`, which Elle does not look for.
    pub anomalies: Vec<&'static str>,
    /// Total time allowed for cycle search.
    pub cycle_search_timeout: Duration,
    /// Assume that within a transaction a write follows its read: `r k v1` then `w k v2` gives
    /// `v1 < v2`.
    pub wfr_keys: bool,
    /// Assume each key is sequentially consistent: process order orders versions.
    pub sequential_keys: bool,
    /// Assume each key is linearizable: real-time order orders versions.
    pub linearizable_keys: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            models: vec!["strict-serializable"],
            anomalies: Vec::new(),
            cycle_search_timeout: Duration::from_secs(10),
            wfr_keys: false,
            sequential_keys: false,
            linearizable_keys: false,
        }
    }
}

/// A version of a register: `None` is the initial nil.
type Version = Option<i64>;

/// Checks an rw-register history.
pub fn check(ops: &[Op], options: &Options) -> Verdict {
    check_paired(pair_txns(ops.iter().cloned()), options)
}

/// Checks an rw-register history it may consume.
pub fn check_history(ops: Vec<Op>, options: &Options) -> Verdict {
    check_paired(pair_txns(ops), options)
}

fn check_paired(txns: Result<Vec<Txn>, String>, options: &Options) -> Verdict {
    let mut found = Findings::default();
    match txns {
        Ok(txns) => analyse(&txns, options, &mut found),
        Err(message) => found.add(
            "malformed-history",
            kw_map([("message", Edn::Str(message))]),
        ),
    }
    Verdict::judge(options.models.clone(), &options.anomalies, found.0)
}

/// A transaction's external reads (the first access to a key, when it is a read) and external
/// writes (the last write to a key).
#[derive(Default)]
struct External {
    reads: Vec<(i64, Version)>,
    writes: Vec<(i64, i64)>,
}

impl External {
    fn of(txn: &Txn) -> External {
        let mut ext = External::default();
        for (i, mop) in txn.mops.iter().enumerate() {
            let first = !txn.mops[..i].iter().any(|m| m.key() == mop.key());
            match *mop {
                Mop::ReadRegister { key, value } if first && txn.kind == OpType::Ok => {
                    ext.reads.push((key, value))
                }
                Mop::Write { key, value } => {
                    let last = !txn.mops[i + 1..]
                        .iter()
                        .any(|m| matches!(m, Mop::Write { key: k, .. } if *k == key));
                    if last {
                        ext.writes.push((key, value));
                    }
                }
                _ => {}
            }
        }
        ext
    }

    fn read(&self, key: i64) -> Option<Version> {
        self.reads.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    fn write(&self, key: i64) -> Option<i64> {
        self.writes.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// The first and last versions of `key` this transaction saw or made.
    fn span(&self, key: i64) -> Option<(Version, Version)> {
        match (self.read(key), self.write(key)) {
            (Some(r), Some(w)) => Some((r, Some(w))),
            (Some(r), None) => Some((r, r)),
            (None, Some(w)) => Some((Some(w), Some(w))),
            (None, None) => None,
        }
    }
}

struct Analysis<'a> {
    txns: &'a [Txn],
    /// Who wrote each (key, value), and whether it was that transaction's last write to it.
    writers: FxHashMap<(i64, i64), (usize, bool)>,
    external: Vec<External>,
    /// Per key, the version graph's edges.
    versions: BTreeMap<i64, FxHashSet<(Version, Version)>>,
}

fn analyse(txns: &[Txn], options: &Options, found: &mut Findings) {
    let list_mop = txns
        .iter()
        .flat_map(|t| &t.mops)
        .find(|m| matches!(m, Mop::Append { .. } | Mop::Read { value: Some(_), .. }));
    if let Some(mop) = list_mop {
        let message = format!(
            "{} is a list-append micro-op, not rw-register",
            mop.to_edn()
        );
        found.add(
            "malformed-history",
            kw_map([("message", Edn::Str(message))]),
        );
        return;
    }
    let mut writers = FxHashMap::default();
    for txn in txns {
        for (i, mop) in txn.mops.iter().enumerate() {
            if let Mop::Write { key, value } = *mop {
                let last = !txn.mops[i + 1..]
                    .iter()
                    .any(|m| matches!(m, Mop::Write { key: k, .. } if *k == key));
                if let Some((other, _)) = writers.insert((key, value), (txn.id, last)) {
                    found.add(
                        "duplicate-writes",
                        kw_map([
                            ("key", Edn::Int(key)),
                            ("value", Edn::Int(value)),
                            ("ops", Edn::Vector(vec![txns[other].to_edn(), txn.to_edn()])),
                        ]),
                    );
                    return;
                }
            }
        }
    }
    let mut analysis = Analysis {
        txns,
        writers,
        external: txns.iter().map(External::of).collect(),
        versions: BTreeMap::new(),
    };
    analysis.non_cyclic(found);
    analysis.infer_versions(options);
    analysis.cyclic_versions(found);
    let mut builder = GraphBuilder::default();
    analysis.data_edges(&mut builder);
    let order = txn_graph::order_for(&options.models, &options.anomalies);
    txn_graph::report_if_empty(txns, &builder, order, found);
    let graph = txn_graph::build(txns, builder, order);
    let deadline = Instant::now() + options.cycle_search_timeout;
    txn_graph::search_cycles(
        txns,
        &graph,
        order,
        cycles::RW_REGISTER,
        deadline,
        &analysis,
        found,
    );
}

impl Analysis<'_> {
    /// The writer of a value, if it is a committed (ok) transaction's external (last) write of
    /// the key: as Elle's `ext-index`, dependencies relate only those. An indeterminate write is
    /// in the version order but never at either end of a dependency, and reading an
    /// intermediate write is G1b, not a dependency.
    fn ok_writer(&self, key: i64, value: i64) -> Option<usize> {
        self.writers
            .get(&(key, value))
            .filter(|&&(t, last)| last && self.txns[t].kind == OpType::Ok)
            .map(|&(t, _)| t)
    }

    /// internal, G1a, G1b, garbage reads, lost updates.
    fn non_cyclic(&self, found: &mut Findings) {
        let mut lost: BTreeMap<(i64, Version), Vec<usize>> = BTreeMap::new();
        for txn in self.txns.iter().filter(|t| t.kind == OpType::Ok) {
            let mut state: FxHashMap<i64, Version> = FxHashMap::default();
            for mop in &txn.mops {
                let case = |extra: Vec<(&str, Edn)>| {
                    let mut entries = vec![("op", txn.to_edn()), ("mop", mop.to_edn())];
                    entries.extend(extra);
                    kw_map(entries)
                };
                match *mop {
                    Mop::Write { key, value } => {
                        state.insert(key, Some(value));
                    }
                    Mop::ReadRegister { key, value } => {
                        if let Some(&expected) = state.get(&key)
                            && expected != value
                        {
                            found.add(
                                "internal",
                                case(vec![("expected", expected.map_or(Edn::Nil, Edn::Int))]),
                            );
                        }
                        state.insert(key, value);
                        let Some(v) = value else { continue };
                        match self.writers.get(&(key, v)) {
                            None => found.add("garbage-read", case(vec![])),
                            Some(&(w, _)) if self.txns[w].kind == OpType::Fail => {
                                found.add("G1a", case(vec![("writer", self.txns[w].to_edn())]));
                            }
                            Some(&(w, last)) if w != txn.id && !last => {
                                found.add("G1b", case(vec![("writer", self.txns[w].to_edn())]));
                            }
                            Some(_) => {}
                        }
                    }
                    _ => {}
                }
            }
            let ext = &self.external[txn.id];
            for &(key, read) in &ext.reads {
                if ext.write(key).is_some() {
                    lost.entry((key, read)).or_default().push(txn.id);
                }
            }
        }
        for ((key, read), txns) in lost.into_iter().filter(|(_, t)| t.len() > 1) {
            found.add(
                "lost-update",
                kw_map([
                    ("key", Edn::Int(key)),
                    ("value", read.map_or(Edn::Nil, Edn::Int)),
                    (
                        "txns",
                        Edn::Vector(txns.iter().map(|&t| self.txns[t].to_edn()).collect()),
                    ),
                ]),
            );
        }
    }

    fn link(&mut self, key: i64, from: Version, to: Version) {
        if from != to {
            self.versions.entry(key).or_default().insert((from, to));
        }
    }

    /// Builds each key's version graph from the sources the options allow.
    fn infer_versions(&mut self, options: &Options) {
        let txns = self.txns;
        // Initial state: nil precedes every version read or written by a transaction that may
        // have committed. Added last, and only where nothing else precedes a version, since it
        // is implied there.
        let mut seen: Vec<(i64, i64)> = Vec::new();
        for txn in txns.iter().filter(|t| t.kind != OpType::Fail) {
            let ext = &self.external[txn.id];
            seen.extend(ext.reads.iter().filter_map(|&(k, v)| Some((k, v?))));
            seen.extend(ext.writes.iter().copied());
            if options.wfr_keys && txn.kind == OpType::Ok {
                let pairs: Vec<(i64, i64, i64)> = ext
                    .reads
                    .iter()
                    .filter_map(|&(k, r)| Some((k, r?, ext.write(k)?)))
                    .collect();
                for (k, r, w) in pairs {
                    self.link(k, Some(r), Some(w));
                }
            }
        }
        if options.sequential_keys {
            let mut last: FxHashMap<(i64, i64), Version> = FxHashMap::default();
            for txn in txns.iter().filter(|t| t.kind != OpType::Fail) {
                for key in keys_of(txn) {
                    let Some((first, end)) = self.external[txn.id].span(key) else {
                        continue;
                    };
                    if let Some(prev) = last.insert((txn.process, key), end) {
                        self.link(key, prev, first);
                    }
                }
            }
        }
        if options.linearizable_keys {
            self.realtime_versions();
        }
        for (key, value) in seen {
            let preceded = self.versions.get(&key).is_some_and(|edges| {
                edges
                    .iter()
                    .any(|&(from, to)| to == Some(value) && from.is_some())
            });
            if !preceded {
                self.link(key, None, Some(value));
            }
        }
    }

    /// Real-time order between transactions touching a key orders the versions they saw: per
    /// key, each invocation follows the completed transactions no other completion followed.
    fn realtime_versions(&mut self) {
        let mut events: Vec<(usize, usize, bool)> = Vec::new();
        for txn in self.txns.iter().filter(|t| t.kind != OpType::Fail) {
            events.push((txn.invoke_index, txn.id, false));
            if let (OpType::Ok, Some(done)) = (txn.kind, txn.complete_index) {
                events.push((done, txn.id, true));
            }
        }
        events.sort_unstable();
        let mut frontier: FxHashMap<i64, Vec<usize>> = FxHashMap::default();
        let mut preds: FxHashMap<(usize, i64), Vec<usize>> = FxHashMap::default();
        let mut links = Vec::new();
        for (_, id, completion) in events {
            for key in keys_of(&self.txns[id]) {
                let Some((first, _)) = self.external[id].span(key) else {
                    continue;
                };
                let front = frontier.entry(key).or_default();
                if completion {
                    let before = preds.remove(&(id, key)).unwrap_or_default();
                    front.retain(|f| !before.contains(f));
                    front.push(id);
                } else {
                    for &f in front.iter() {
                        if let Some((_, prev_end)) = self.external[f].span(key) {
                            links.push((key, prev_end, first));
                        }
                    }
                    preds.insert((id, key), front.clone());
                }
            }
        }
        for (key, from, to) in links {
            self.link(key, from, to);
        }
    }

    /// A cycle in a key's version graph: no order of versions can explain the history.
    fn cyclic_versions(&self, found: &mut Findings) {
        for (&key, edges) in &self.versions {
            let mut nodes: Vec<Version> = edges.iter().flat_map(|&(a, b)| [a, b]).collect();
            nodes.sort_unstable();
            nodes.dedup();
            let index: FxHashMap<Version, usize> =
                nodes.iter().enumerate().map(|(i, v)| (*v, i)).collect();
            let mut builder = GraphBuilder::default();
            for &(a, b) in edges {
                builder.add(index[&a], index[&b], Rels::WW);
            }
            for scc in builder.build(nodes.len()).sccs(Rels::WW, |_| true) {
                let versions = scc
                    .iter()
                    .map(|&i| nodes[i].map_or(Edn::Nil, Edn::Int))
                    .collect();
                found.add(
                    "cyclic-versions",
                    kw_map([("key", Edn::Int(key)), ("scc", Edn::Vector(versions))]),
                );
            }
        }
    }

    /// ww, wr and rw edges from the version graphs.
    fn data_edges(&self, builder: &mut GraphBuilder) {
        let mut readers: FxHashMap<(i64, Version), Vec<usize>> = FxHashMap::default();
        for txn in self.txns.iter().filter(|t| t.kind == OpType::Ok) {
            for &(key, value) in &self.external[txn.id].reads {
                readers.entry((key, value)).or_default().push(txn.id);
                if let Some(v) = value
                    && let Some(w) = self.ok_writer(key, v)
                {
                    builder.add(w, txn.id, Rels::WR);
                }
            }
        }
        for (&key, edges) in &self.versions {
            for &(from, to) in edges {
                let Some(to_writer) = to.and_then(|v| self.ok_writer(key, v)) else {
                    continue;
                };
                if let Some(from_writer) = from.and_then(|v| self.ok_writer(key, v)) {
                    builder.add(from_writer, to_writer, Rels::WW);
                }
                for &reader in readers.get(&(key, from)).map_or(&[][..], Vec::as_slice) {
                    builder.add(reader, to_writer, Rels::RW);
                }
            }
        }
    }

    fn version_edge(&self, key: i64, from: Version, to: Version) -> bool {
        self.versions
            .get(&key)
            .is_some_and(|e| e.contains(&(from, to)))
    }
}

/// The keys a transaction touches, each once.
fn keys_of(txn: &Txn) -> Vec<i64> {
    let mut keys: Vec<i64> = txn.mops.iter().map(Mop::key).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn show(v: Version) -> String {
    v.map_or_else(|| "nil".to_owned(), |v| v.to_string())
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
        let (ea, eb) = (&self.external[a], &self.external[b]);
        let step = |key: i64, value: Version, value2: Version| {
            kw_map([
                ("type", kw(rel.name())),
                ("key", Edn::Int(key)),
                ("value", value.map_or(Edn::Nil, Edn::Int)),
                ("value'", value2.map_or(Edn::Nil, Edn::Int)),
            ])
        };
        match rel {
            Rels::WW => ea.writes.iter().find_map(|&(key, v1)| {
                let v2 = eb.write(key)?;
                self.version_edge(key, Some(v1), Some(v2)).then(|| {
                    (
                        step(key, Some(v1), Some(v2)),
                        format!(
                            "T{na} set key {key} to {v1}, and T{nb} set it to {v2}, a later version"
                        ),
                    )
                })
            }),
            Rels::WR => eb.reads.iter().find_map(|&(key, v)| {
                (v.is_some() && ea.write(key) == v).then(|| {
                    (
                        step(key, v, v),
                        format!("T{nb} observed T{na}'s write of {} to key {key}", show(v)),
                    )
                })
            }),
            Rels::RW => ea.reads.iter().find_map(|&(key, v1)| {
                let v2 = eb.write(key)?;
                self.version_edge(key, v1, Some(v2)).then(|| {
                    (
                        step(key, v1, Some(v2)),
                        format!(
                            "T{na} read key {key} = {}, and T{nb} wrote {v2}, a later version",
                            show(v1)
                        ),
                    )
                })
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_reads_and_writes() {
        let txn = Txn {
            id: 0,
            process: 0,
            kind: OpType::Ok,
            invoke_index: 0,
            complete_index: Some(1),
            invoke_time: 0,
            complete_time: Some(1),
            mops: vec![
                Mop::ReadRegister {
                    key: 1,
                    value: None,
                },
                Mop::Write { key: 1, value: 5 },
                Mop::Write { key: 1, value: 6 },
                Mop::Write { key: 2, value: 7 },
                Mop::ReadRegister {
                    key: 2,
                    value: Some(7),
                },
            ],
        };
        let ext = External::of(&txn);
        assert_eq!(ext.reads, vec![(1, None)]);
        assert_eq!(ext.writes, vec![(1, 6), (2, 7)]);
        assert_eq!(ext.span(1), Some((None, Some(6))));
        assert_eq!(ext.span(2), Some((Some(7), Some(7))));
    }
}
