//! Elle's list-append analysis: version orders from reads, ww / wr / rw dependencies, process and
//! real-time order, non-cyclic anomalies, and cycles classified and explained.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};

use crate::cycles;
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
    /// Anomalies that are failures whatever the models (Elle's `:anomalies`), such as
    /// `garbage-read`, which Elle does not look for.
    pub anomalies: Vec<&'static str>,
    /// Total time allowed for cycle search before reporting `:cycle-search-timeout`.
    pub cycle_search_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            models: vec!["strict-serializable"],
            anomalies: Vec::new(),
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
            &options.anomalies,
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
    let register = txns.iter().flat_map(|t| &t.mops).find(|m| {
        matches!(
            m,
            Mop::Write { .. } | Mop::ReadRegister { value: Some(_), .. }
        )
    });
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
        return Verdict::judge(options.models.clone(), &options.anomalies, found.0);
    }
    // A completed read of nil is a read of the empty list, as in Elle.
    let normalized: Option<Vec<Txn>> = txns
        .iter()
        .any(|t| t.mops.iter().any(|m| matches!(m, Mop::ReadRegister { .. })))
        .then(|| txns.iter().map(empty_list_reads).collect());
    let txns = normalized.as_deref().unwrap_or(txns);
    let analysis = Analysis::new(txns, &mut found);
    if let Some(analysis) = analysis {
        let order = txn_graph::order_for(&options.models, &options.anomalies);
        // The non-cyclic checks and the graph only read the analysis: build them side by side.
        let (non_cyclic, graph) = std::thread::scope(|scope| {
            let checks = scope.spawn(|| {
                let mut found = Findings::default();
                analysis.non_cyclic(&mut found);
                found
            });
            let graph = analysis.graph(order, &mut found);
            (
                checks.join().expect("the non-cyclic checks panicked"),
                graph,
            )
        });
        found.merge(non_cyclic);
        let deadline = Instant::now() + options.cycle_search_timeout;
        txn_graph::search_cycles(
            txns,
            &graph,
            order,
            cycles::LIST_APPEND,
            deadline,
            &analysis,
            &mut found,
        );
    }
    Verdict::judge(options.models.clone(), &options.anomalies, found.0)
}

/// `txn` with its completed reads of nil written as reads of the empty list.
fn empty_list_reads(txn: &Txn) -> Txn {
    let mut txn = txn.clone();
    for mop in &mut txn.mops {
        if let Mop::ReadRegister { key, value: None } = *mop {
            *mop = Mop::Read {
                key,
                value: Some(Vec::new()),
            };
        }
    }
    txn
}

/// Who appended a value: the transaction and the micro-op's position in it.
#[derive(Clone, Copy)]
struct Writer {
    txn: usize,
    mop: usize,
    /// Whether this is the transaction's last append to the key.
    last: bool,
    /// Whether the value is in its key's version order (some read observed it).
    observed: bool,
}

/// What Elle infers from a list-append history: who appended what, and each key's version
/// order, from which every dependency follows.
struct Analysis<'a> {
    txns: &'a [Txn],
    writers: FxHashMap<(i64, i64), Writer>,
    /// Per key, the longest committed read as read (duplicates and all): every other read
    /// must be a prefix of it.
    longest: FxHashMap<i64, &'a [i64]>,
    /// Per key, how many leading elements of the longest read have a writer that did not fail.
    clean_prefix: FxHashMap<i64, usize>,
    /// The keys whose longest read has a duplicate element.
    duplicated: FxHashSet<i64>,
    /// Per key, the version order: the distinct elements of the longest read, or the only
    /// element ever appended when a key has a single append and no longer read.
    orders: FxHashMap<i64, Cow<'a, [i64]>>,
    /// Per key, the transactions (not failed) whose appends no read observed: each came after
    /// the last element of the version order (Elle's `previously-appended-element`).
    unobserved: FxHashMap<i64, Vec<usize>>,
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

/// The completed reads of a transaction that counts as having happened (ok): (position, key,
/// list). Elle takes every read, internal ones included.
fn reads(txn: &Txn) -> impl Iterator<Item = (usize, i64, &[i64])> {
    txn.mops
        .iter()
        .enumerate()
        .filter(|_| txn.kind == OpType::Ok)
        .filter_map(|(i, m)| read_list(m).map(|l| (i, m.key(), l)))
}

impl<'a> Analysis<'a> {
    /// Indexes writers and version orders; `None` if appended values are not unique per key,
    /// which the analysis depends on.
    fn new(txns: &'a [Txn], found: &mut Findings) -> Option<Self> {
        let appends = txns
            .iter()
            .flat_map(|t| &t.mops)
            .filter(|m| matches!(m, Mop::Append { .. }))
            .count();
        let mut writers: FxHashMap<(i64, i64), Writer> =
            FxHashMap::with_capacity_and_hasher(appends, Default::default());
        // Per key, the one value appended to it (by a transaction that did not fail), or None
        // once there are several.
        let mut single: FxHashMap<i64, Option<i64>> = FxHashMap::default();
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
                        observed: false,
                    };
                    if txn.kind != OpType::Fail {
                        single
                            .entry(key)
                            .and_modify(|s| *s = None)
                            .or_insert(Some(value));
                    }
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
        let mut longest: FxHashMap<i64, &'a [i64]> = FxHashMap::default();
        for txn in txns {
            for (_, key, list) in reads(txn) {
                let entry = longest.entry(key).or_insert(list);
                if list.len() > entry.len() {
                    *entry = list;
                }
            }
        }
        let duplicated: FxHashSet<i64> = longest
            .iter()
            .filter(|(_, list)| first_duplicate(list).is_some())
            .map(|(k, _)| *k)
            .collect();
        let mut orders: FxHashMap<i64, Cow<'a, [i64]>> = longest
            .iter()
            .filter(|(_, list)| !list.is_empty())
            .map(|(&key, &list)| {
                let order = if duplicated.contains(&key) {
                    let mut seen = FxHashSet::default();
                    Cow::Owned(list.iter().copied().filter(|v| seen.insert(*v)).collect())
                } else {
                    Cow::Borrowed(list)
                };
                (key, order)
            })
            .collect();
        for (key, value) in single {
            if let Some(value) = value {
                orders.insert(key, Cow::Owned(vec![value]));
            }
        }
        for (&key, order) in &orders {
            for &v in order.iter() {
                if let Some(w) = writers.get_mut(&(key, v)) {
                    w.observed = true;
                }
            }
        }
        let mut unobserved: FxHashMap<i64, Vec<usize>> = FxHashMap::default();
        for txn in txns.iter().filter(|t| t.kind != OpType::Fail) {
            for mop in &txn.mops {
                if let Mop::Append { key, value } = *mop
                    && !writers[&(key, value)].observed
                {
                    let list = unobserved.entry(key).or_default();
                    if list.last() != Some(&txn.id) {
                        list.push(txn.id);
                    }
                }
            }
        }
        let clean_prefix: FxHashMap<i64, usize> = longest
            .iter()
            .map(|(&key, list)| {
                let clean = list
                    .iter()
                    .take_while(|&&v| {
                        writers
                            .get(&(key, v))
                            .is_some_and(|w| txns[w.txn].kind != OpType::Fail)
                    })
                    .count();
                (key, clean)
            })
            .collect();
        Some(Analysis {
            txns,
            writers,
            longest,
            clean_prefix,
            duplicated,
            orders,
            unobserved,
        })
    }

    fn version_order(&self, key: i64) -> &[i64] {
        self.orders.get(&key).map_or(&[], |o| o)
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

    /// The version a read observed, as Elle identifies it: the position in the version order
    /// of its last element (`Some(None)` for the initial, empty state), or `None` when that
    /// element is not in the order.
    fn version_of(&self, key: i64, list: &[i64]) -> Option<Option<usize>> {
        let Some(&last) = list.last() else {
            return Some(None);
        };
        let order = self.version_order(key);
        if order.len() >= list.len() && order[list.len() - 1] == last {
            return Some(Some(list.len() - 1));
        }
        order.iter().position(|&v| v == last).map(Some)
    }

    /// The transactions that appended right after a version of `key` (`None`: the initial
    /// state): the next element's writer, and every unobserved append after the last version.
    fn next_writers(&self, key: i64, version: Option<usize>) -> impl Iterator<Item = usize> + '_ {
        let order = self.version_order(key);
        let next = version.map_or(0, |p| p + 1);
        let successor = order.get(next).and_then(|&v| self.committed_writer(key, v));
        let after_last = (next == order.len())
            .then(|| self.unobserved.get(&key))
            .flatten()
            .into_iter()
            .flatten()
            .copied();
        successor.into_iter().chain(after_last)
    }

    fn non_cyclic(&self, found: &mut Findings) {
        let mut incompatible: BTreeSet<i64> = BTreeSet::new();
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
                let longest = self.longest.get(&key).copied().unwrap_or(&[]);
                let prefix = longest.starts_with(list);
                // A prefix of a duplicate-free read has no duplicates: the common case costs
                // no set.
                if (!prefix || self.duplicated.contains(&key))
                    && let Some(dup) = first_duplicate(list)
                {
                    found.add("duplicate-elements", case(vec![("element", Edn::Int(dup))]));
                }
                // Within the prefix of the longest read whose elements all have a writer that
                // did not fail, only the last element (G1b) and the transaction's own later
                // appends (future reads) can be wrong: the common case costs no lookup per
                // element.
                let clean = prefix
                    && list.len() <= self.clean_prefix.get(&key).copied().unwrap_or(0)
                    && !txn.mops[i + 1..]
                        .iter()
                        .any(|m| matches!(m, Mop::Append { key: k, .. } if *k == key));
                let checked = if clean {
                    list.len().saturating_sub(1)
                } else {
                    0
                };
                for (pos, &v) in list.iter().enumerate().skip(checked) {
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
                if !prefix && incompatible.insert(key) {
                    found.add(
                        "incompatible-order",
                        kw_map([
                            ("key", Edn::Int(key)),
                            ("values", Edn::Vector(vec![ints(list), ints(longest)])),
                        ]),
                    );
                }
            }
        }
        self.lost_updates(found);
        self.dirty_updates(found);
    }

    /// Dirty update: in a key's order of appends, a committed append after a failed one. As in
    /// Elle, the order here is the longest read's even where a single committed append would
    /// give the graph its order.
    fn dirty_updates(&self, found: &mut Findings) {
        let mut keys: Vec<&i64> = self.longest.keys().collect();
        keys.sort_unstable();
        for &key in keys {
            let mut seen = FxHashSet::default();
            let order: Vec<i64> = self.longest[&key]
                .iter()
                .copied()
                .filter(|v| seen.insert(*v))
                .collect();
            let failed_at = order.iter().position(|&v| {
                self.writer(key, v)
                    .is_some_and(|w| self.txns[w.txn].kind == OpType::Fail)
            });
            if let Some(pos) = failed_at
                && let Some(later) = order[pos + 1..].iter().find_map(|&v| {
                    self.writer(key, v)
                        .filter(|w| self.txns[w.txn].kind == OpType::Ok)
                        .map(|w| w.txn)
                })
            {
                let failed = self.writer(key, order[pos]).expect("checked above").txn;
                found.add(
                    "dirty-update",
                    kw_map([
                        ("key", Edn::Int(key)),
                        ("values", ints(&order)),
                        ("failed", self.txns[failed].to_edn()),
                        ("later", self.txns[later].to_edn()),
                    ]),
                );
            }
        }
    }

    /// Elle's lost update: two committed transactions that read the same version of a key
    /// (each its first read of the key) and then both appended to it.
    fn lost_updates(&self, found: &mut Findings) {
        let mut by_read: FxHashMap<(i64, &[i64]), Vec<usize>> = FxHashMap::default();
        for txn in self.txns.iter().filter(|t| t.kind == OpType::Ok) {
            let mut first_reads: Vec<(i64, &[i64])> = Vec::new();
            let mut written: Vec<i64> = Vec::new();
            for mop in &txn.mops {
                match mop {
                    Mop::Read {
                        key,
                        value: Some(list),
                    } if !first_reads.iter().any(|(k, _)| k == key) => {
                        first_reads.push((*key, list));
                    }
                    Mop::Append { key, .. } if !written.contains(key) => {
                        if let Some(&(_, list)) = first_reads.iter().find(|(k, _)| k == key) {
                            written.push(*key);
                            by_read.entry((*key, list)).or_default().push(txn.id);
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut lost: Vec<_> = by_read.into_iter().filter(|(_, t)| t.len() > 1).collect();
        lost.sort_unstable_by_key(|((k, list), _)| (*k, list.len()));
        for ((key, list), txns) in lost {
            found.add(
                "lost-update",
                kw_map([
                    ("key", Edn::Int(key)),
                    ("value", ints(list)),
                    (
                        "txns",
                        Edn::Vector(txns.iter().map(|&t| self.txns[t].to_edn()).collect()),
                    ),
                ]),
            );
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

    /// The dependency graph, as Elle infers it: ww between successive versions (and from the
    /// last version to every unobserved append), wr from the writer of a read's last element,
    /// rw from every reader of a version to whoever appended right after it; plus `order`.
    fn graph(&self, order: Rels, found: &mut Findings) -> Graph {
        let mut builder = GraphBuilder::default();
        for (&key, versions) in &self.orders {
            for pair in versions.windows(2) {
                if let (Some(a), Some(b)) = (
                    self.committed_writer(key, pair[0]),
                    self.committed_writer(key, pair[1]),
                ) {
                    builder.add(a, b, Rels::WW);
                }
            }
            if let Some(last) = versions.last().and_then(|&v| self.committed_writer(key, v)) {
                for &later in self.unobserved.get(&key).into_iter().flatten() {
                    builder.add(last, later, Rels::WW);
                }
            }
        }
        for txn in self.txns.iter().filter(|t| t.kind == OpType::Ok) {
            for (_, key, list) in reads(txn) {
                if let Some(&last) = list.last()
                    && let Some(w) = self.committed_writer(key, last)
                {
                    builder.add(w, txn.id, Rels::WR);
                }
                if let Some(version) = self.version_of(key, list) {
                    for next in self.next_writers(key, version) {
                        builder.add(txn.id, next, Rels::RW);
                    }
                }
            }
        }
        txn_graph::report_if_empty(self.txns, &builder, order, found);
        txn_graph::build(self.txns, builder, order)
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
        // The first of b's appends to `key` that follows version `version` of it.
        let next_append = |key: i64, version: Option<usize>| -> Option<i64> {
            let order = self.version_order(key);
            let next = version.map_or(0, |p| p + 1);
            if let Some(&v) = order.get(next) {
                return (self.committed_writer(key, v) == Some(b)).then_some(v);
            }
            tb.mops.iter().find_map(|m| match *m {
                Mop::Append { key: k, value }
                    if k == key && self.unobserved.get(&key).is_some_and(|u| u.contains(&b)) =>
                {
                    (!order.contains(&value)).then_some(value)
                }
                _ => None,
            })
        };
        match rel {
            Rels::WW => {
                for mop in &ta.mops {
                    let &Mop::Append { key, value } = mop else {
                        continue;
                    };
                    let order = self.version_order(key);
                    if let Some(pos) = order.iter().position(|&v| v == value)
                        && let Some(next) = next_append(key, Some(pos))
                    {
                        return Some((
                            step(key, Edn::Int(value), Edn::Int(next)),
                            format!("T{nb} appended {next} after T{na} appended {value} to {key}"),
                        ));
                    }
                }
            }
            Rels::WR => {
                for (_, key, list) in reads(tb) {
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
                for (_, key, list) in reads(ta) {
                    if let Some(version) = self.version_of(key, list)
                        && let Some(next) = next_append(key, version)
                    {
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
