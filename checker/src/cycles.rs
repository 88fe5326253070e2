//! Searching strongly connected components for cycles of the shapes Adya and Elle name (G0, G1c,
//! G-single-item, G-nonadjacent-item, G2-item, and their -process and -realtime variants),
//! shortest first. Every dependency here is on an item (no predicates), so the single and
//! nonadjacent shapes carry Elle's `-item` names.

use std::collections::VecDeque;
use std::time::Instant;

use crate::graph::{Graph, NOT_MEMBER as NOT_LOCAL, Rels};

/// How many anti-dependency (rw) edges a cycle shape allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RwRule {
    /// No rw edge: G0, G1c.
    Zero,
    /// Exactly one: G-single-item.
    One,
    /// At least two, never two in a row: G-nonadjacent-item.
    NonAdjacent,
    /// At least one: G2-item.
    Any,
}

/// One shape of cycle to look for.
#[derive(Debug, Clone, Copy)]
pub struct CycleSpec {
    data: Rels,
    extra: Rels,
    rule: RwRule,
    /// The anomaly name this spec is meant to find, e.g. `G-single-item-process`.
    pub name: &'static str,
}

/// Every spec, most severe first: data-only cycles, then those needing process edges, then
/// those needing real-time edges.
pub const SPECS: [CycleSpec; 15] = {
    const fn spec(name: &'static str, data: Rels, extra: Rels, rule: RwRule) -> CycleSpec {
        CycleSpec {
            data,
            extra,
            rule,
            name,
        }
    }
    const WW: Rels = Rels::WW;
    const WWR: Rels = Rels(Rels::WW.0 | Rels::WR.0);
    const ALL: Rels = Rels::DATA;
    const NONE: Rels = Rels(0);
    const P: Rels = Rels::PROCESS;
    const R: Rels = Rels::REALTIME;
    [
        spec("G0", WW, NONE, RwRule::Zero),
        spec("G1c", WWR, NONE, RwRule::Zero),
        spec("G-single-item", ALL, NONE, RwRule::One),
        spec("G-nonadjacent-item", ALL, NONE, RwRule::NonAdjacent),
        spec("G2-item", ALL, NONE, RwRule::Any),
        spec("G0-process", WW, P, RwRule::Zero),
        spec("G1c-process", WWR, P, RwRule::Zero),
        spec("G-single-item-process", ALL, P, RwRule::One),
        spec("G-nonadjacent-item-process", ALL, P, RwRule::NonAdjacent),
        spec("G2-item-process", ALL, P, RwRule::Any),
        spec("G0-realtime", WW, R, RwRule::Zero),
        spec("G1c-realtime", WWR, R, RwRule::Zero),
        spec("G-single-item-realtime", ALL, R, RwRule::One),
        spec("G-nonadjacent-item-realtime", ALL, R, RwRule::NonAdjacent),
        spec("G2-item-realtime", ALL, R, RwRule::Any),
    ]
};

impl CycleSpec {
    /// The order relation (process or real-time) this shape needs, if any.
    pub fn order(&self) -> Rels {
        self.extra
    }

    /// The relations a cycle of this shape may use.
    pub fn mask(&self) -> Rels {
        self.data.or(self.extra)
    }

    /// The relation every cycle of this shape must contain, used to anchor the search.
    fn anchor(&self) -> Rels {
        if self.extra != Rels(0) {
            self.extra
        } else if self.rule != RwRule::Zero {
            Rels::RW
        } else if self.data.intersects(Rels::WR) {
            Rels::WR
        } else {
            Rels::WW
        }
    }
}

/// A cycle: `nodes[0] -> nodes[1] -> ... -> nodes[0]`, each step through one relation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle {
    /// The transactions, without repeating the first at the end.
    pub nodes: Vec<usize>,
    /// `rels[i]` is the relation from `nodes[i]` to `nodes[(i + 1) % len]`.
    pub rels: Vec<Rels>,
}

impl Cycle {
    /// The anomaly this cycle exhibits, from the relations it uses.
    pub fn classify(&self) -> String {
        let count = |r: Rels| self.rels.iter().filter(|&&x| x == r).count();
        let rw = count(Rels::RW);
        let n = self.rels.len();
        let adjacent_rw =
            (0..n).any(|i| self.rels[i] == Rels::RW && self.rels[(i + 1) % n] == Rels::RW);
        let base = match rw {
            0 if count(Rels::WR) == 0 => "G0",
            0 => "G1c",
            1 => "G-single-item",
            _ if !adjacent_rw => "G-nonadjacent-item",
            _ => "G2-item",
        };
        let suffix = if count(Rels::REALTIME) > 0 {
            "-realtime"
        } else if count(Rels::PROCESS) > 0 {
            "-process"
        } else {
            ""
        };
        format!("{base}{suffix}")
    }
}

/// The outcome of one search.
#[derive(Debug)]
pub enum Search {
    /// A cycle of the shape.
    Found(Cycle),
    /// There is none in this component.
    None,
    /// The deadline passed first.
    TimedOut,
}

/// The order in which a model's evidence explains a pair of transactions related in several
/// ways, as Elle's combined explainers try them: the first relation that explains the pair is
/// the step, and the cycle's type follows from those steps. So an edge that is both an
/// anti-dependency and real-time order is an anti-dependency. Cycles are searched for in a
/// graph whose every edge carries only the relation that explains it (see [`explained`]).
pub type Priority = [Rels; 5];

/// The one relation of `rels` that explains an edge, by `priority`.
pub fn explained(rels: Rels, priority: Priority) -> Rels {
    priority
        .into_iter()
        .find(|r| rels.intersects(*r))
        .unwrap_or(Rels(0))
}

/// Elle's list-append explains ww, then wr, then rw, then order.
pub const LIST_APPEND: Priority = [Rels::WW, Rels::WR, Rels::RW, Rels::PROCESS, Rels::REALTIME];

/// Elle's rw-register explains wr, then ww, then rw, then order.
pub const RW_REGISTER: Priority = [Rels::WR, Rels::WW, Rels::RW, Rels::PROCESS, Rels::REALTIME];

/// Reusable buffers for searches over one graph, whose edges each carry one relation.
pub struct Searcher<'g> {
    graph: &'g Graph,
    local: Vec<u32>,
}

/// States per node: rw edges used so far (0, 1, 2 or more) times whether the last edge was rw.
const STATES: usize = 6;

impl<'g> Searcher<'g> {
    /// A searcher over `graph`, whose edges each carry the one relation that explains them.
    pub fn new(graph: &'g Graph) -> Self {
        Searcher {
            graph,
            local: vec![NOT_LOCAL; graph.len()],
        }
    }

    /// Looks for a cycle of shape `spec` among the nodes of `component`, giving up at
    /// `deadline`. The cycle is the shortest of its shape through the edge the search starts
    /// from.
    pub fn find(&mut self, component: &[usize], spec: &CycleSpec, deadline: Instant) -> Search {
        self.map(component);
        let parts = self.graph.sccs_among(component, &self.local, spec.mask());
        self.unmap(component);
        let mut result = Search::None;
        for part in parts {
            self.map(&part);
            result = self.search(&part, spec, deadline);
            self.unmap(&part);
            if !matches!(result, Search::None) {
                break;
            }
        }
        result
    }

    fn map(&mut self, nodes: &[usize]) {
        for (i, &node) in nodes.iter().enumerate() {
            self.local[node] = i as u32;
        }
    }

    fn unmap(&mut self, nodes: &[usize]) {
        for &node in nodes {
            self.local[node] = NOT_LOCAL;
        }
    }

    fn search(&self, component: &[usize], spec: &CycleSpec, deadline: Instant) -> Search {
        let anchor_rel = spec.anchor();
        let mask = spec.mask();
        let size = component.len() * STATES;
        let mut parent: Vec<(u32, Rels)> = vec![(u32::MAX, Rels(0)); size];
        let mut seen: Vec<u32> = vec![u32::MAX; size];
        let mut queue = VecDeque::new();
        let mut attempt = 0u32;
        for &from in component {
            for (to, rels) in self.graph.out(from) {
                if self.local[to] == NOT_LOCAL || rels != anchor_rel {
                    continue;
                }
                if Instant::now() > deadline {
                    return Search::TimedOut;
                }
                let anchor_is_rw = anchor_rel == Rels::RW;
                let start = state(self.local[to], 0, anchor_is_rw);
                let goal = self.local[from];
                queue.clear();
                queue.push_back(start);
                seen[start] = attempt;
                parent[start] = (u32::MAX, anchor_rel);
                while let Some(current) = queue.pop_front() {
                    let (node, rw_count, last_rw) = unpack(current);
                    if node == goal {
                        if accepts(spec.rule, rw_count, last_rw, anchor_is_rw) {
                            return Search::Found(
                                self.rebuild(component, &parent, current, from, anchor_rel),
                            );
                        }
                        continue;
                    }
                    for (next, rels) in self.graph.out(component[node as usize]) {
                        let local = self.local[next];
                        if local == NOT_LOCAL || !rels.intersects(mask) {
                            continue;
                        }
                        let mut step = |next_state: usize, rel: Rels| {
                            if seen[next_state] != attempt {
                                seen[next_state] = attempt;
                                parent[next_state] = (current as u32, rel);
                                queue.push_back(next_state);
                            }
                        };
                        if rels != Rels::RW {
                            step(state(local, rw_count, false), rels);
                        } else {
                            let total = rw_count + u8::from(anchor_is_rw);
                            let allowed = match spec.rule {
                                RwRule::Zero => false,
                                RwRule::One => total == 0,
                                RwRule::NonAdjacent => !last_rw,
                                RwRule::Any => true,
                            };
                            if allowed {
                                step(state(local, (rw_count + 1).min(2), true), Rels::RW);
                            }
                        }
                    }
                }
                attempt += 1;
                if matches!(spec.rule, RwRule::Zero | RwRule::Any) {
                    // In a strongly connected component every anchor closes a cycle of these
                    // shapes, so failing here means the component holds none.
                    return Search::None;
                }
            }
        }
        Search::None
    }

    fn rebuild(
        &self,
        component: &[usize],
        parent: &[(u32, Rels)],
        end: usize,
        from: usize,
        anchor_rel: Rels,
    ) -> Cycle {
        let mut nodes = Vec::new();
        let mut rels = Vec::new();
        let mut current = end;
        loop {
            let (prev, rel) = parent[current];
            if prev == u32::MAX {
                nodes.push(component[unpack(current).0 as usize]);
                break;
            }
            nodes.push(component[unpack(current).0 as usize]);
            rels.push(rel);
            current = prev as usize;
        }
        // nodes: [from, ..., to]; rels: the steps between them, both reversed.
        nodes.reverse();
        rels.reverse();
        debug_assert_eq!(nodes.last(), Some(&from));
        nodes.pop();
        let mut cycle_nodes = vec![from];
        cycle_nodes.extend(nodes);
        let mut cycle_rels = vec![anchor_rel];
        cycle_rels.extend(rels);
        Cycle {
            nodes: cycle_nodes,
            rels: cycle_rels,
        }
    }
}

fn accepts(rule: RwRule, rw_count: u8, last_rw: bool, anchor_is_rw: bool) -> bool {
    let total = rw_count + u8::from(anchor_is_rw);
    match rule {
        RwRule::Zero => total == 0,
        RwRule::One => total == 1,
        RwRule::NonAdjacent => total >= 2 && !(last_rw && anchor_is_rw),
        RwRule::Any => total >= 1,
    }
}

fn state(local: u32, rw_count: u8, last_rw: bool) -> usize {
    local as usize * STATES + rw_count.min(2) as usize * 2 + usize::from(last_rw)
}

fn unpack(state: usize) -> (u32, u8, bool) {
    let node = (state / STATES) as u32;
    let rest = state % STATES;
    (node, (rest / 2) as u8, rest % 2 == 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::GraphBuilder;
    use std::time::Duration;

    fn find(edges: &[(usize, usize, Rels)], n: usize, name: &str) -> Option<Cycle> {
        let mut b = GraphBuilder::default();
        for &(x, y, r) in edges {
            b.add(x, y, r);
        }
        let g = b.build(n);
        let spec = SPECS.iter().find(|s| s.name == name).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut searcher = Searcher::new(&g);
        for component in g.sccs(Rels(31), |_| true) {
            if let Search::Found(c) = searcher.find(&component, spec, deadline) {
                return Some(c);
            }
        }
        None
    }

    #[test]
    fn finds_each_shape() {
        let g0 = [(0, 1, Rels::WW), (1, 0, Rels::WW)];
        assert_eq!(find(&g0, 2, "G0").unwrap().classify(), "G0");

        let g1c = [(0, 1, Rels::WW), (1, 0, Rels::WR)];
        assert!(find(&g1c, 2, "G0").is_none());
        assert_eq!(find(&g1c, 2, "G1c").unwrap().classify(), "G1c");

        let single = [(0, 1, Rels::RW), (1, 2, Rels::WR), (2, 0, Rels::WW)];
        let c = find(&single, 3, "G-single-item").unwrap();
        assert_eq!(c.classify(), "G-single-item");
        assert_eq!(c.nodes.len(), 3);

        let nonadjacent = [
            (0, 1, Rels::RW),
            (1, 2, Rels::WR),
            (2, 3, Rels::RW),
            (3, 0, Rels::WR),
        ];
        assert!(find(&nonadjacent, 4, "G-single-item").is_none());
        assert_eq!(
            find(&nonadjacent, 4, "G-nonadjacent-item")
                .unwrap()
                .classify(),
            "G-nonadjacent-item"
        );

        let write_skew = [(0, 1, Rels::RW), (1, 0, Rels::RW)];
        assert!(find(&write_skew, 2, "G-nonadjacent-item").is_none());
        assert_eq!(
            find(&write_skew, 2, "G2-item").unwrap().classify(),
            "G2-item"
        );

        let stale = [(0, 1, Rels::REALTIME), (1, 0, Rels::RW)];
        assert!(find(&stale, 2, "G-single-item").is_none());
        assert_eq!(
            find(&stale, 2, "G-single-item-realtime")
                .unwrap()
                .classify(),
            "G-single-item-realtime"
        );

        let session = [(0, 1, Rels::PROCESS), (1, 0, Rels::WW)];
        assert_eq!(
            find(&session, 2, "G0-process").unwrap().classify(),
            "G0-process"
        );
    }

    #[test]
    fn prefers_the_shortest_cycle_through_its_anchor() {
        // Through the edge 0 -> 1: back to 0 directly from 2, or the long way round via 3 and 4.
        let edges = [
            (0, 1, Rels::WW),
            (1, 3, Rels::WW),
            (3, 4, Rels::WW),
            (4, 0, Rels::WW),
            (1, 2, Rels::WW),
            (2, 0, Rels::WW),
        ];
        let c = find(&edges, 5, "G0").unwrap();
        assert_eq!(c.nodes, vec![0, 1, 2]);
        assert_eq!(c.rels, vec![Rels::WW; 3]);
    }
}
