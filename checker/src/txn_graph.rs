//! What every transactional model shares once it knows its data dependencies: process order,
//! real-time order, the search for cycles in strongly connected components, and their
//! explanation.
//!
//! Real-time order is dense (with c transactions in flight, each invocation follows up to c
//! completions), so the whole-history graph encodes it as a chain of event nodes in history
//! order: a transaction points to its completion event, events point to the next, and an
//! invocation event points to its transaction. That is O(n) edges with exactly the reachability
//! of real-time order. Explicit real-time edges are built only among the members of each
//! strongly connected component, where cycles are searched for and explained.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::time::Instant;

use rustc_hash::FxHashMap;

use crate::cycles::{self, Cycle, Priority, SPECS, Search, Searcher};
use crate::edn::{Edn, kw, kw_map};
use crate::graph::{Graph, GraphBuilder, Rels};
use crate::history::{OpType, Txn};
use crate::models;
use crate::verdict::Findings;

/// A model's evidence for its data dependencies, used to explain cycles.
pub trait Evidence {
    /// Why `a` precedes `b` through the data relation `rel` (ww, wr or rw): a map for the
    /// `:steps` and a sentence, naming the transactions `T{na}` and `T{nb}`.
    fn data_step(
        &self,
        a: usize,
        b: usize,
        rel: Rels,
        na: usize,
        nb: usize,
    ) -> Option<(Edn, String)>;
}

/// Which order a check adds to the data dependencies, as Elle's `additional-graphs` chooses:
/// real-time order when the models (or the `extra` anomalies asked for) forbid a real-time anomaly (it subsumes process order),
/// else process order when they forbid a process anomaly, else none.
pub fn order_for(models: &[&'static str], extra: &[&'static str]) -> Rels {
    let forbidden = models::prohibited(models, extra);
    let forbids = |order: Rels| {
        SPECS
            .iter()
            .any(|s| s.order() == order && forbidden.contains(s.name))
    };
    if forbids(Rels::REALTIME) {
        Rels::REALTIME
    } else if forbids(Rels::PROCESS) {
        Rels::PROCESS
    } else {
        Rels(0)
    }
}

/// Elle's `:empty-transaction-graph`: no dependency at all between transactions, neither a
/// data dependency (none in `builder`) nor one of `order`, so the history says nothing about
/// isolation. Real-time order reaches failed transactions too, as in Elle.
pub fn report_if_empty(txns: &[Txn], builder: &GraphBuilder, order: Rels, found: &mut Findings) {
    let ordered = match order {
        Rels::PROCESS => {
            let mut seen = rustc_hash::FxHashSet::default();
            txns.iter()
                .filter(|t| t.kind == OpType::Ok)
                .any(|t| !seen.insert(t.process))
        }
        Rels::REALTIME => {
            let last_invocation = txns
                .iter()
                .filter(|t| t.complete_index != Some(t.invoke_index))
                .map(|t| t.invoke_index)
                .max();
            txns.iter().any(|t| {
                t.kind == OpType::Ok
                    && t.complete_index
                        .zip(last_invocation)
                        .is_some_and(|(c, i)| c < i)
            })
        }
        _ => false,
    };
    if builder.is_empty() && !ordered {
        found.add(
            "empty-transaction-graph",
            kw_map([("transactions", Edn::Int(txns.len() as i64))]),
        );
    }
}

/// Adds `order` (see [`order_for`]) to `builder`, and builds the graph. Process order relates
/// each process's committed transactions; real-time order is a chain of events, so nodes
/// `0..txns.len()` are transactions and the rest are events. A completion with no invocation of
/// its own follows nothing in real time, as in Elle.
pub fn build(txns: &[Txn], mut builder: GraphBuilder, order: Rels) -> Graph {
    if order == Rels::PROCESS {
        let mut last_of_process: FxHashMap<i64, usize> = FxHashMap::default();
        for txn in txns.iter().filter(|t| t.kind == OpType::Ok) {
            if let Some(prev) = last_of_process.insert(txn.process, txn.id) {
                builder.add(prev, txn.id, Rels::PROCESS);
            }
        }
    }
    if order != Rels::REALTIME {
        return builder.build(txns.len());
    }
    let events = realtime_events(txns, txns.iter().map(|t| t.id));
    let base = txns.len();
    for (i, &(_, id, completion)) in events.iter().enumerate() {
        let event = base + i;
        if i + 1 < events.len() {
            builder.add(event, event + 1, Rels::REALTIME);
        }
        if completion {
            builder.add(id, event, Rels::REALTIME);
        } else {
            builder.add(event, id, Rels::REALTIME);
        }
    }
    builder.build(base + events.len())
}

/// The real-time events of `members`, in history order: each invocation (but of failed
/// transactions, and of completions that had none) and each ok completion, as
/// `(index, transaction, is_completion)`.
fn realtime_events(
    txns: &[Txn],
    members: impl Iterator<Item = usize>,
) -> Vec<(usize, usize, bool)> {
    let mut events: Vec<(usize, usize, bool)> = Vec::new();
    for m in members {
        let txn = &txns[m];
        if txn.kind == OpType::Fail {
            continue;
        }
        if txn.complete_index != Some(txn.invoke_index) {
            events.push((txn.invoke_index, m, false));
        }
        if let (OpType::Ok, Some(done)) = (txn.kind, txn.complete_index) {
            events.push((done, m, true));
        }
    }
    events.sort_unstable();
    events
}

/// Explicit real-time edges among `members` (a transitive reduction): each invocation follows
/// the completed members no other completed member followed.
fn realtime_among(
    txns: &[Txn],
    members: &[usize],
    builder: &mut GraphBuilder,
    local: &FxHashMap<usize, usize>,
) {
    let mut frontier: Vec<usize> = Vec::new();
    let mut predecessors: FxHashMap<usize, Vec<usize>> = FxHashMap::default();
    for (_, id, completion) in realtime_events(txns, members.iter().copied()) {
        if completion {
            let preds = predecessors.remove(&id).unwrap_or_default();
            frontier.retain(|f| !preds.contains(f));
            frontier.push(id);
        } else {
            for &f in &frontier {
                builder.add(local[&f], local[&id], Rels::REALTIME);
            }
            predecessors.insert(id, frontier.clone());
        }
    }
}

/// The subgraph among a component's transactions, with explicit real-time edges; returns it
/// and the global id of each local node.
fn component_graph(
    txns: &[Txn],
    graph: &Graph,
    component: &[usize],
    order: Rels,
) -> (Graph, Vec<usize>) {
    let members: Vec<usize> = component
        .iter()
        .copied()
        .filter(|&n| n < txns.len())
        .collect();
    let local: FxHashMap<usize, usize> = members.iter().enumerate().map(|(i, &g)| (g, i)).collect();
    let mut builder = GraphBuilder::default();
    for &a in &members {
        for (b, rels) in graph.out(a) {
            let kept = Rels(rels.0 & !Rels::REALTIME.0);
            if kept.0 != 0
                && let Some(&lb) = local.get(&b)
            {
                builder.add(local[&a], lb, kept);
            }
        }
    }
    if order == Rels::REALTIME {
        realtime_among(txns, &members, &mut builder, &local);
    }
    (builder.build(members.len()), members)
}

/// Finds cycles in each strongly connected component as Elle does. First, for each model, whether
/// its dependency subgraph is cyclic within the component (`<model>-cycle-exists`, the weakest
/// such models only); the shapes no remaining model forbids cannot be there. Then every other
/// shape the graph's `order` allows, most severe first, each edge taken as `priority` explains
/// it, skipping shapes implied by those already found, one cycle of each, explained with
/// `evidence`. A `cycle-exists` case stays only where no cycle found rules its model out. When
/// `deadline` passes, reports `:cycle-search-timeout` with what was found so far.
pub fn search_cycles(
    txns: &[Txn],
    graph: &Graph,
    order: Rels,
    priority: Priority,
    deadline: Instant,
    evidence: &dyn Evidence,
    found: &mut Findings,
) {
    let specs: Vec<_> = SPECS
        .iter()
        .filter(|s| s.order() == Rels(0) || s.order() == order)
        .collect();
    let mask = specs.iter().fold(Rels(0), |m, s| m.or(s.mask()));
    let n = txns.len();
    let keep = |node: usize| node >= n || txns[node].kind != OpType::Fail;
    for component in graph.sccs(mask, keep) {
        let (merged, members) = component_graph(txns, graph, &component, order);
        if members.len() < 2 {
            continue;
        }
        let sub = explained_graph(&merged, priority);
        let exists = cycle_exists(&merged, &members, txns, order);
        let ruled_out: BTreeSet<&'static str> = exists
            .iter()
            .flat_map(|(_, model, _)| models::at_least_as_strong(model))
            .collect();
        let possible: Vec<&'static str> = models::CYCLE_EXISTS
            .iter()
            .map(|(_, model, _, _)| *model)
            .filter(|m| !ruled_out.contains(m))
            .collect();
        let mut skip = models::anomalies_prohibited_by(&possible);
        let all: Vec<usize> = (0..members.len()).collect();
        let mut searcher = Searcher::new(&sub);
        let mut kinds: BTreeSet<&'static str> = BTreeSet::new();
        let mut timed_out = None;
        for spec in &specs {
            if skip.contains(spec.name) {
                continue;
            }
            match searcher.find(&all, spec, deadline) {
                Search::Found(mut cycle) => {
                    if cycle.classify() != spec.name {
                        continue;
                    }
                    for node in &mut cycle.nodes {
                        *node = members[*node];
                    }
                    kinds.insert(spec.name);
                    skip.extend(models::implied_anomalies([spec.name]));
                    found.add(spec.name, explain(txns, &cycle, spec.name, evidence));
                }
                Search::None => {}
                Search::TimedOut => {
                    timed_out = Some(spec.name);
                    break;
                }
            }
        }
        let proven = models::impossible_models(kinds.iter().copied());
        for (name, model, case) in exists {
            if !proven.contains(model) {
                found.add(name, case);
            }
        }
        if let Some(spec) = timed_out {
            found.add(
                "cycle-search-timeout",
                kw_map([
                    ("anomaly-spec-type", kw(spec)),
                    ("scc-size", Edn::Int(members.len() as i64)),
                    (
                        "does-not-contain",
                        Edn::Vector(kinds.iter().map(|k| kw(k)).collect()),
                    ),
                ]),
            );
            return;
        }
    }
}

/// `merged` with each edge carrying only the relation that explains it by `priority`.
fn explained_graph(merged: &Graph, priority: Priority) -> Graph {
    let mut explained = GraphBuilder::default();
    for a in 0..merged.len() {
        for (b, rels) in merged.out(a) {
            explained.add(a, b, cycles::explained(rels, priority));
        }
    }
    explained.build(merged.len())
}

/// Elle's `cycle-exists` cases for one component: for each model in turn whose subgraph is
/// cyclic there, the smallest strongly connected set of it, as `(anomaly, model, case)`. An edge
/// belongs to a subgraph when it has any of its relations; the snapshot isolation subgraphs are
/// Elle's sequential extensions, which add a step through an anti-dependency. Once a model is
/// ruled out, so is every stronger one, and only the weakest are given.
fn cycle_exists(
    merged: &Graph,
    members: &[usize],
    txns: &[Txn],
    order: Rels,
) -> Vec<(&'static str, &'static str, Edn)> {
    let orders = Rels(Rels::PROCESS.0 | Rels::REALTIME.0);
    let mut ruled_out: BTreeSet<&'static str> = BTreeSet::new();
    let mut cases = Vec::new();
    for &(name, model, rels, extended) in models::CYCLE_EXISTS {
        if ruled_out.contains(model) || (rels.intersects(orders) && !rels.intersects(order)) {
            continue;
        }
        let smallest = if extended {
            smallest_extension_scc(merged, rels)
        } else {
            merged
                .sccs(rels, |_| true)
                .into_iter()
                .filter(|c| c.len() > 1)
                .min_by_key(Vec::len)
        };
        let Some(scc) = smallest else { continue };
        ruled_out.extend(models::at_least_as_strong(model));
        let indices: BTreeSet<i64> = scc
            .iter()
            .map(|&l| {
                let t = &txns[members[l]];
                t.complete_index.unwrap_or(t.invoke_index) as i64
            })
            .collect();
        cases.push((
            name,
            model,
            kw_map([
                ("type", kw(name)),
                ("not", kw(model)),
                ("scc-size", Edn::Int(scc.len() as i64)),
                ("scc", Edn::Set(indices.into_iter().map(Edn::Int).collect())),
            ]),
        ));
    }
    cases
}

/// The smallest cyclic strongly connected set of `rels` extended by one anti-dependency step:
/// the edges of `rels`, and `a -> c` wherever `a -> b` is one of them and `b -> c` is an
/// anti-dependency (Elle's `sequential-extension`). A node that returns to itself so is a
/// cycle of one.
fn smallest_extension_scc(merged: &Graph, rels: Rels) -> Option<Vec<usize>> {
    let mut builder = GraphBuilder::default();
    let mut self_loop = None;
    for a in 0..merged.len() {
        for (b, r) in merged.out(a) {
            if !r.intersects(rels) {
                continue;
            }
            builder.add(a, b, Rels::WW);
            for (c, r2) in merged.out(b) {
                if r2.intersects(Rels::RW) {
                    if c == a {
                        self_loop.get_or_insert(a);
                    }
                    builder.add(a, c, Rels::WW);
                }
            }
        }
    }
    if let Some(node) = self_loop {
        return Some(vec![node]);
    }
    builder
        .build(merged.len())
        .sccs(Rels::WW, |_| true)
        .into_iter()
        .filter(|c| c.len() > 1)
        .min_by_key(Vec::len)
}

/// Explains a cycle as Elle does: the transactions, each step with its evidence, and the
/// contradiction.
fn explain(txns: &[Txn], cycle: &Cycle, kind: &str, evidence: &dyn Evidence) -> Edn {
    let n = cycle.nodes.len();
    let mut steps = Vec::with_capacity(n);
    let mut text = String::from("Let:\n");
    for (i, &t) in cycle.nodes.iter().enumerate() {
        let _ = writeln!(text, "  T{} = {}", i + 1, txns[t].to_edn());
    }
    text.push_str("\nThen:\n");
    for i in 0..n {
        let (a, b, rel) = (cycle.nodes[i], cycle.nodes[(i + 1) % n], cycle.rels[i]);
        let (na, nb) = (i + 1, (i + 1) % n + 1);
        let (step, why) = order_step(txns, a, b, rel, na, nb)
            .or_else(|| evidence.data_step(a, b, rel, na, nb))
            .unwrap_or_else(|| {
                (
                    kw_map([("type", kw(rel.name()))]),
                    format!("of a {} dependency", rel.name()),
                )
            });
        let lead = if i + 1 == n { "However, " } else { "" };
        let end = if i + 1 == n {
            ": a contradiction!"
        } else {
            "."
        };
        let _ = writeln!(text, "  - {lead}T{na} < T{nb}, because {why}{end}");
        steps.push(step);
    }
    kw_map([
        ("type", kw(kind)),
        (
            "cycle",
            Edn::Vector(
                cycle
                    .nodes
                    .iter()
                    .chain(cycle.nodes.first())
                    .map(|&t| txns[t].to_edn())
                    .collect(),
            ),
        ),
        ("steps", Edn::Vector(steps)),
        ("explanation", Edn::Str(text)),
    ])
}

/// Process and real-time steps, which every model explains alike.
fn order_step(
    txns: &[Txn],
    a: usize,
    b: usize,
    rel: Rels,
    na: usize,
    nb: usize,
) -> Option<(Edn, String)> {
    let (ta, tb) = (&txns[a], &txns[b]);
    match rel {
        Rels::PROCESS => Some((
            kw_map([("type", kw("process")), ("process", Edn::Int(ta.process))]),
            format!("process {} executed T{na} before T{nb}", ta.process),
        )),
        Rels::REALTIME => {
            let done = ta.complete_index.unwrap_or(ta.invoke_index);
            Some((
                kw_map([
                    ("type", kw("realtime")),
                    ("a-complete-index", Edn::Int(done as i64)),
                    ("b-invoke-index", Edn::Int(tb.invoke_index as i64)),
                ]),
                format!(
                    "T{na} completed at index {done}, before the invocation of T{nb}, at index {}",
                    tb.invoke_index
                ),
            ))
        }
        _ => None,
    }
}
