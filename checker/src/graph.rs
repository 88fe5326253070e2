//! The transaction dependency graph: a compact adjacency structure whose edges carry a set of
//! relations, and strongly connected components over any subset of those relations.

/// A set of dependency relations, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Rels(pub u8);

impl Rels {
    /// Write-write: the target overwrote (appended after) the source's write.
    pub const WW: Rels = Rels(1);
    /// Write-read: the target read the source's write.
    pub const WR: Rels = Rels(2);
    /// Read-write (anti-dependency): the source read a state the target then overwrote.
    pub const RW: Rels = Rels(4);
    /// Process order: the same process ran the source, then the target.
    pub const PROCESS: Rels = Rels(8);
    /// Real-time order: the source completed before the target was invoked.
    pub const REALTIME: Rels = Rels(16);
    /// The data dependencies.
    pub const DATA: Rels = Rels(1 | 2 | 4);

    /// Union.
    pub const fn or(self, other: Rels) -> Rels {
        Rels(self.0 | other.0)
    }

    /// Whether any relation is shared.
    pub const fn intersects(self, other: Rels) -> bool {
        self.0 & other.0 != 0
    }

    /// Short names: `ww`, `wr`, `rw`, `process`, `realtime`.
    pub fn name(self) -> &'static str {
        match self {
            Rels::WW => "ww",
            Rels::WR => "wr",
            Rels::RW => "rw",
            Rels::PROCESS => "process",
            Rels::REALTIME => "realtime",
            _ => "mixed",
        }
    }
}

/// Marks a node outside the members of [`Graph::sccs_among`].
pub const NOT_MEMBER: u32 = u32::MAX;

/// A directed graph over nodes `0..n` in compressed sparse row form.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    offsets: Vec<u32>,
    targets: Vec<u32>,
    rels: Vec<Rels>,
}

/// Collects edges, then freezes them into a [`Graph`].
#[derive(Debug, Default)]
pub struct GraphBuilder {
    edges: Vec<(u32, u32, Rels)>,
}

impl GraphBuilder {
    /// Adds an edge; self-loops are ignored (a transaction never depends on itself here).
    pub fn add(&mut self, from: usize, to: usize, rel: Rels) {
        if from != to {
            self.edges.push((from as u32, to as u32, rel));
        }
    }

    /// Whether no edge has been added.
    pub fn is_empty(&self) -> bool {
        self.edges.is_empty()
    }

    /// Builds the graph over `nodes` nodes, merging parallel edges' relations.
    pub fn build(mut self, nodes: usize) -> Graph {
        self.edges.sort_unstable_by_key(|&(a, b, _)| (a, b));
        let mut offsets = vec![0u32; nodes + 1];
        let mut targets = Vec::with_capacity(self.edges.len());
        let mut rels: Vec<Rels> = Vec::with_capacity(self.edges.len());
        let mut last: Option<(u32, u32)> = None;
        for (a, b, r) in self.edges {
            if last == Some((a, b)) {
                let merged = rels.last_mut().expect("an edge was pushed");
                *merged = merged.or(r);
            } else {
                targets.push(b);
                rels.push(r);
                offsets[a as usize + 1] += 1;
                last = Some((a, b));
            }
        }
        for i in 0..nodes {
            offsets[i + 1] += offsets[i];
        }
        Graph {
            offsets,
            targets,
            rels,
        }
    }
}

impl Graph {
    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether the graph has no nodes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of distinct (source, target) pairs.
    pub fn edge_count(&self) -> usize {
        self.targets.len()
    }

    /// The out-edges of `node`, with their relations.
    pub fn out(&self, node: usize) -> impl Iterator<Item = (usize, Rels)> + '_ {
        let range = self.offsets[node] as usize..self.offsets[node + 1] as usize;
        self.targets[range.clone()]
            .iter()
            .zip(&self.rels[range])
            .map(|(&t, &r)| (t as usize, r))
    }

    /// The relations on the edge `from -> to`, if there is one.
    pub fn rels_between(&self, from: usize, to: usize) -> Option<Rels> {
        self.out(from).find(|&(t, _)| t == to).map(|(_, r)| r)
    }

    /// Strongly connected components with more than one node, using only edges with a relation
    /// in `mask` and only nodes for which `keep` holds. Iterative Tarjan, linear time.
    pub fn sccs(&self, mask: Rels, keep: impl Fn(usize) -> bool) -> Vec<Vec<usize>> {
        let nodes: Vec<usize> = (0..self.len()).filter(|&n| keep(n)).collect();
        let mut local = vec![NOT_MEMBER; self.len()];
        for (i, &n) in nodes.iter().enumerate() {
            local[n] = i as u32;
        }
        self.sccs_among(&nodes, &local, mask)
    }

    /// Like [`Graph::sccs`], restricted to `members`, where `local[n]` is the position of node
    /// `n` in `members` or [`NOT_MEMBER`]. Costs time in the size of the members and their edges
    /// only, so it can be called once per component.
    pub fn sccs_among(&self, members: &[usize], local: &[u32], mask: Rels) -> Vec<Vec<usize>> {
        const UNVISITED: u32 = u32::MAX;
        let n = members.len();
        let mut index = vec![UNVISITED; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<usize> = Vec::new();
        let mut call: Vec<(usize, usize)> = Vec::new();
        let mut next_index = 0u32;
        let mut components = Vec::new();
        for root in 0..n {
            if index[root] != UNVISITED {
                continue;
            }
            call.push((root, self.offsets[members[root]] as usize));
            index[root] = next_index;
            low[root] = next_index;
            next_index += 1;
            stack.push(root);
            on_stack[root] = true;
            while let Some(&mut (node, ref mut edge)) = call.last_mut() {
                let end = self.offsets[members[node] + 1] as usize;
                let mut descended = false;
                while *edge < end {
                    let target = local[self.targets[*edge] as usize];
                    let rel = self.rels[*edge];
                    *edge += 1;
                    if target == NOT_MEMBER || !rel.intersects(mask) {
                        continue;
                    }
                    let target = target as usize;
                    if index[target] == UNVISITED {
                        index[target] = next_index;
                        low[target] = next_index;
                        next_index += 1;
                        stack.push(target);
                        on_stack[target] = true;
                        call.push((target, self.offsets[members[target]] as usize));
                        descended = true;
                        break;
                    } else if on_stack[target] {
                        low[node] = low[node].min(index[target]);
                    }
                }
                if descended {
                    continue;
                }
                call.pop();
                if let Some(&(parent, _)) = call.last() {
                    low[parent] = low[parent].min(low[node]);
                }
                if low[node] == index[node] {
                    let mut component = Vec::new();
                    loop {
                        let member = stack.pop().expect("tarjan stack holds the component");
                        on_stack[member] = false;
                        component.push(members[member]);
                        if member == node {
                            break;
                        }
                    }
                    if component.len() > 1 {
                        component.sort_unstable();
                        components.push(component);
                    }
                }
            }
        }
        components
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(usize, usize, Rels)], n: usize) -> Graph {
        let mut b = GraphBuilder::default();
        for &(x, y, r) in edges {
            b.add(x, y, r);
        }
        b.build(n)
    }

    #[test]
    fn merges_parallel_edges() {
        let g = graph(&[(0, 1, Rels::WW), (0, 1, Rels::RW), (1, 0, Rels::WR)], 2);
        assert_eq!(g.edge_count(), 2);
        assert_eq!(g.rels_between(0, 1), Some(Rels::WW.or(Rels::RW)));
        assert_eq!(g.rels_between(1, 0), Some(Rels::WR));
    }

    #[test]
    fn finds_components_under_a_mask() {
        let g = graph(
            &[
                (0, 1, Rels::WW),
                (1, 2, Rels::WW),
                (2, 0, Rels::RW),
                (3, 4, Rels::WR),
                (4, 3, Rels::WR),
                (5, 5, Rels::WW),
            ],
            6,
        );
        let all = g.sccs(Rels::DATA, |_| true);
        assert_eq!(all, vec![vec![0, 1, 2], vec![3, 4]]);
        let ww = g.sccs(Rels::WW, |_| true);
        assert!(ww.is_empty());
        let without_4 = g.sccs(Rels::DATA, |n| n != 4);
        assert_eq!(without_4, vec![vec![0, 1, 2]]);
    }

    #[test]
    fn handles_a_long_chain_without_recursion() {
        let n = 200_000;
        let mut edges: Vec<(usize, usize, Rels)> =
            (0..n - 1).map(|i| (i, i + 1, Rels::WW)).collect();
        edges.push((n - 1, 0, Rels::WR));
        let g = graph(&edges, n);
        let sccs = g.sccs(Rels::DATA, |_| true);
        assert_eq!(sccs.len(), 1);
        assert_eq!(sccs[0].len(), n);
    }
}
