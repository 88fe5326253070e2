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

use crate::cycles::{Cycle, SPECS, Search, Searcher};
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

/// Adds process-order edges and the real-time event chain to `builder`, and builds the graph.
/// Nodes `0..txns.len()` are transactions; the rest are chain events.
pub fn build(txns: &[Txn], mut builder: GraphBuilder) -> Graph {
    let mut last_of_process: FxHashMap<i64, usize> = FxHashMap::default();
    let mut events: Vec<(usize, usize, bool)> = Vec::with_capacity(txns.len() * 2);
    for txn in txns.iter().filter(|t| t.kind != OpType::Fail) {
        if let Some(prev) = last_of_process.insert(txn.process, txn.id) {
            builder.add(prev, txn.id, Rels::PROCESS);
        }
        events.push((txn.invoke_index, txn.id, false));
        if let (OpType::Ok, Some(done)) = (txn.kind, txn.complete_index) {
            events.push((done, txn.id, true));
        }
    }
    events.sort_unstable();
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

/// Explicit real-time edges among `members` (a transitive reduction): each invocation follows
/// the completed members no other completed member followed.
fn realtime_among(
    txns: &[Txn],
    members: &[usize],
    builder: &mut GraphBuilder,
    local: &FxHashMap<usize, usize>,
) {
    let mut events: Vec<(usize, usize, bool)> = Vec::with_capacity(members.len() * 2);
    for &m in members {
        let txn = &txns[m];
        events.push((txn.invoke_index, m, false));
        if let (OpType::Ok, Some(done)) = (txn.kind, txn.complete_index) {
            events.push((done, m, true));
        }
    }
    events.sort_unstable();
    let mut frontier: Vec<usize> = Vec::new();
    let mut predecessors: FxHashMap<usize, Vec<usize>> = FxHashMap::default();
    for (_, id, completion) in events {
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
fn component_graph(txns: &[Txn], graph: &Graph, component: &[usize]) -> (Graph, Vec<usize>) {
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
    realtime_among(txns, &members, &mut builder, &local);
    (builder.build(members.len()), members)
}

/// Finds the cycles the `models` forbid, one of each kind per strongly connected component,
/// explained with `evidence`; reports `:cycle-search-timeout` if `deadline` passes first.
pub fn search_cycles(
    txns: &[Txn],
    graph: &Graph,
    models: &[&'static str],
    deadline: Instant,
    evidence: &dyn Evidence,
    found: &mut Findings,
) {
    let forbidden = models::anomalies_prohibited_by(models);
    let specs: Vec<_> = SPECS
        .iter()
        .filter(|s| forbidden.contains(s.name))
        .collect();
    let mask = specs.iter().fold(Rels(0), |m, s| m.or(s.mask()));
    let n = txns.len();
    let keep = |node: usize| node >= n || txns[node].kind != OpType::Fail;
    for component in graph.sccs(mask, keep) {
        let (sub, members) = component_graph(txns, graph, &component);
        if members.len() < 2 {
            continue;
        }
        let all: Vec<usize> = (0..members.len()).collect();
        let mut searcher = Searcher::new(&sub);
        let mut kinds: BTreeSet<String> = BTreeSet::new();
        for spec in &specs {
            match searcher.find(&all, spec, deadline) {
                Search::Found(mut cycle) => {
                    for node in &mut cycle.nodes {
                        *node = members[*node];
                    }
                    let kind = cycle.classify();
                    if kinds.insert(kind.clone()) {
                        found.add(&kind, explain(txns, &cycle, &kind, evidence));
                    }
                }
                Search::None => {}
                Search::TimedOut => {
                    found.add(
                        "cycle-search-timeout",
                        kw_map([
                            ("anomaly-spec-type", kw(spec.name)),
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
    }
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
