//! Synthetic list-append histories for benchmarks and property tests. Transactions run one at a
//! time against an in-memory store, each taking effect between its invocation and completion,
//! so a history is strict serializable by construction. [`inject`] then plants a known anomaly.

use rustc_hash::FxHashMap;

use crate::history::{Mop, Op, OpType, OpValue, Process, pair_txns};

/// The shape of a synthetic history.
#[derive(Debug, Clone)]
pub struct Params {
    /// Transactions to invoke.
    pub txns: usize,
    /// Concurrent processes (up to this many transactions in flight).
    pub processes: usize,
    /// Keys in use at once: few keys make hot keys.
    pub active_keys: usize,
    /// Appends to a key before it is replaced by a fresh one.
    pub max_writes_per_key: usize,
    /// Micro-ops per transaction, at most.
    pub max_txn_length: usize,
    /// Percent of transactions that fail (and take no effect).
    pub fail_percent: u64,
    /// Percent that complete as indeterminate (and take effect).
    pub info_percent: u64,
    /// The seed.
    pub seed: u64,
    /// Registers (writes and reads of single values, rw-register) instead of lists.
    pub registers: bool,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            txns: 1000,
            processes: 10,
            active_keys: 10,
            max_writes_per_key: 64,
            max_txn_length: 4,
            fail_percent: 2,
            info_percent: 1,
            seed: 0,
            registers: false,
        }
    }
}

/// A small, fast, seeded generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) % n.max(1)
    }
}

/// Generates a strict-serializable history.
pub fn serial_history(p: &Params) -> Vec<Op> {
    let mut rng = Rng::new(p.seed);
    let processes = p.processes.max(1);
    let mut state: FxHashMap<i64, Vec<i64>> = FxHashMap::default();
    let mut registers: FxHashMap<i64, i64> = FxHashMap::default();
    let mut active: Vec<(i64, usize)> = (0..p.active_keys.max(1) as i64).map(|k| (k, 0)).collect();
    let mut next_key = active.len() as i64;
    let mut next_value = 0i64;
    let mut ids: Vec<i64> = (0..processes as i64).collect();
    let mut pending: Vec<Option<Vec<Mop>>> = vec![None; processes];
    let mut in_flight = 0usize;
    let mut started = 0usize;
    let mut ops: Vec<Op> = Vec::with_capacity(p.txns * 2);
    let push = |ops: &mut Vec<Op>, process: i64, kind: OpType, mops: Vec<Mop>| {
        let op = txn_op(ops.len(), process, kind, mops);
        ops.push(op);
    };
    while started < p.txns || in_flight > 0 {
        let slot = rng.below(processes as u64) as usize;
        match pending[slot].take() {
            None if started < p.txns => {
                let length = 1 + rng.below(p.max_txn_length.max(1) as u64) as usize;
                let mops: Vec<Mop> = (0..length)
                    .map(|_| {
                        let a = rng.below(active.len() as u64) as usize;
                        let key = active[a].0;
                        if rng.below(2) == 0 {
                            return Mop::Read { key, value: None };
                        }
                        next_value += 1;
                        active[a].1 += 1;
                        if active[a].1 >= p.max_writes_per_key.max(1) {
                            active[a] = (next_key, 0);
                            next_key += 1;
                        }
                        if p.registers {
                            Mop::Write {
                                key,
                                value: next_value,
                            }
                        } else {
                            Mop::Append {
                                key,
                                value: next_value,
                            }
                        }
                    })
                    .collect();
                push(&mut ops, ids[slot], OpType::Invoke, mops.clone());
                pending[slot] = Some(mops);
                in_flight += 1;
                started += 1;
            }
            None => {}
            Some(mops) => {
                in_flight -= 1;
                let roll = rng.below(100);
                if roll < p.fail_percent {
                    push(&mut ops, ids[slot], OpType::Fail, mops);
                    continue;
                }
                let done: Vec<Mop> = mops
                    .iter()
                    .map(|mop| match *mop {
                        Mop::Append { key, value } => {
                            state.entry(key).or_default().push(value);
                            mop.clone()
                        }
                        Mop::Write { key, value } => {
                            registers.insert(key, value);
                            mop.clone()
                        }
                        Mop::Read { key, .. } | Mop::ReadRegister { key, .. } if p.registers => {
                            Mop::ReadRegister {
                                key,
                                value: registers.get(&key).copied(),
                            }
                        }
                        Mop::Read { key, .. } | Mop::ReadRegister { key, .. } => Mop::Read {
                            key,
                            value: Some(state.get(&key).cloned().unwrap_or_default()),
                        },
                    })
                    .collect();
                if roll < p.fail_percent + p.info_percent {
                    push(&mut ops, ids[slot], OpType::Info, mops);
                    ids[slot] += processes as i64;
                } else {
                    push(&mut ops, ids[slot], OpType::Ok, done);
                }
            }
        }
    }
    ops
}

/// A known anomaly to plant in a history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Injection {
    /// A committed read misses the last append, made before the read began: a G-single with a
    /// real-time (or process) edge.
    StaleRead,
    /// A read returns one element twice.
    DuplicateElement,
    /// A final transaction reads a failed transaction's append: G1a.
    AbortedRead,
}

impl Injection {
    /// Every injection.
    pub const ALL: [Injection; 3] = [
        Injection::StaleRead,
        Injection::DuplicateElement,
        Injection::AbortedRead,
    ];

    /// The model the planted anomaly rules out, which a verdict must name in `:not` or
    /// `:also-not`: a stale read is not strong snapshot isolation (a G-single-item-realtime, or
    /// worse when the missed append also closes a data cycle), a duplicate element not read
    /// uncommitted, a read of a failed append not read committed (G1a).
    pub fn rules_out(self) -> &'static str {
        match self {
            Injection::StaleRead => "strong-snapshot-isolation",
            Injection::DuplicateElement => "read-uncommitted",
            Injection::AbortedRead => "read-committed",
        }
    }
}

/// Plants `injection` in `ops`, starting the search for a place at a position chosen by
/// `seed`. Returns false when the history offers no place for it.
pub fn inject(ops: &mut Vec<Op>, injection: Injection, seed: u64) -> bool {
    let Ok(txns) = pair_txns(ops.iter().cloned()) else {
        return false;
    };
    if txns.is_empty() {
        return false;
    }
    let start = Rng::new(seed).below(txns.len() as u64) as usize;
    let order = (start..txns.len()).chain(0..start);
    match injection {
        Injection::StaleRead => {
            let mut writer_done: FxHashMap<(i64, i64), usize> = FxHashMap::default();
            // How many committed reads saw each value: the dropped value must stay visible in
            // another read, or its place in the version order (and so the anomaly) is unknowable.
            let mut seen: FxHashMap<(i64, i64), usize> = FxHashMap::default();
            for t in txns.iter().filter(|t| t.kind == OpType::Ok) {
                for mop in &t.mops {
                    match mop {
                        Mop::Append { key, value } => {
                            writer_done
                                .insert((*key, *value), t.complete_index.expect("ok completes"));
                        }
                        Mop::Read {
                            key,
                            value: Some(list),
                        } => {
                            for v in list {
                                *seen.entry((*key, *v)).or_default() += 1;
                            }
                        }
                        _ => {}
                    }
                }
            }
            for i in order {
                let t = &txns[i];
                if t.kind != OpType::Ok {
                    continue;
                }
                for (m, key, list) in t.external_list_reads() {
                    // Only the transaction's one access to the key: a later read or append of it
                    // would make the planted read an internal anomaly too.
                    let appends_key = t.mops.iter().filter(|x| x.key() == key).count() > 1;
                    let Some(&last) = list.last() else { continue };
                    let settled = writer_done
                        .get(&(key, last))
                        .is_some_and(|&done| done < t.invoke_index);
                    let seen_elsewhere = seen.get(&(key, last)).is_some_and(|&n| n >= 2);
                    if !appends_key && settled && seen_elsewhere {
                        let stale = list[..list.len() - 1].to_vec();
                        return set_read(ops, t.complete_index.expect("ok completes"), m, stale);
                    }
                }
            }
            false
        }
        Injection::DuplicateElement => {
            for i in order {
                let t = &txns[i];
                if t.kind != OpType::Ok {
                    continue;
                }
                for (m, mop) in t.mops.iter().enumerate() {
                    if let Mop::Read {
                        value: Some(list), ..
                    } = mop
                        && let Some(&first) = list.first()
                    {
                        let mut doubled = vec![first];
                        doubled.extend_from_slice(list);
                        return set_read(ops, t.complete_index.expect("ok completes"), m, doubled);
                    }
                }
            }
            false
        }
        Injection::AbortedRead => {
            for i in order {
                let t = &txns[i];
                let failed_append = t.mops.iter().find_map(|m| match m {
                    Mop::Append { key, value } if t.kind == OpType::Fail => Some((*key, *value)),
                    _ => None,
                });
                let Some((key, value)) = failed_append else {
                    continue;
                };
                let mut longest: Vec<i64> = txns
                    .iter()
                    .filter(|x| x.kind == OpType::Ok)
                    .flat_map(|x| x.mops.iter())
                    .filter_map(|m| match m {
                        Mop::Read {
                            key: k,
                            value: Some(list),
                        } if *k == key => Some(list),
                        _ => None,
                    })
                    .max_by_key(|l| l.len())
                    .cloned()
                    .unwrap_or_default();
                longest.push(value);
                let process = txns.iter().map(|x| x.process).max().unwrap_or(0) + 1;
                for (kind, list) in [(OpType::Invoke, None), (OpType::Ok, Some(longest))] {
                    let read = vec![Mop::Read { key, value: list }];
                    ops.push(txn_op(ops.len(), process, kind, read));
                }
                return true;
            }
            false
        }
    }
}

/// A client's txn operation at `index`, timed a microsecond per index.
pub fn txn_op(index: usize, process: i64, kind: OpType, mops: Vec<Mop>) -> Op {
    Op {
        index,
        time: index as i64 * 1000,
        kind,
        process: Process::Client(process),
        f: "txn".into(),
        value: OpValue::Txn(mops),
        error: None,
    }
}

fn set_read(ops: &mut [Op], index: usize, mop: usize, list: Vec<i64>) -> bool {
    match &mut ops[index].value {
        OpValue::Txn(mops) => {
            let key = mops[mop].key();
            mops[mop] = Mop::Read {
                key,
                value: Some(list),
            };
            true
        }
        OpValue::Other(_) => false,
    }
}

/// How a simulated database isolates transactions (see [`simulate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Each transaction takes effect at once, when it commits: strict serializable.
    StrictSerializable,
    /// As strict serializable, but a read-only transaction may read a state a few commits
    /// old: serializable, not strict.
    StaleSerializable,
    /// Reads from a snapshot taken when the transaction starts; the first committer wins a
    /// write conflict, the other aborts.
    SnapshotIsolation,
    /// Each read sees the latest committed state; writes take effect at commit, unchecked.
    ReadCommitted,
    /// Snapshot reads and no conflict detection at all: a commit writes back what the
    /// transaction read of each key it wrote, plus its own writes, losing concurrent ones.
    NoConflictDetection,
}

impl Isolation {
    /// Every level.
    pub const ALL: [Isolation; 5] = [
        Isolation::StrictSerializable,
        Isolation::StaleSerializable,
        Isolation::SnapshotIsolation,
        Isolation::ReadCommitted,
        Isolation::NoConflictDetection,
    ];
}

/// A transaction in flight in the simulated database.
struct Running {
    mops: Vec<Mop>,
    done: Vec<Mop>,
    /// Micro-ops executed so far.
    pc: usize,
    /// The commit sequence number its snapshot reads from.
    snapshot: u64,
    /// Its own writes, by key: appended elements (lists) or the last value (registers).
    writes: FxHashMap<i64, Vec<i64>>,
}

/// A multiversion store: per key, each committed state with the commit that made it.
#[derive(Default)]
struct Versions {
    keys: FxHashMap<i64, Vec<(u64, Vec<i64>)>>,
    commits: u64,
}

impl Versions {
    fn at(&self, key: i64, commit: u64) -> &[i64] {
        self.keys
            .get(&key)
            .and_then(|vs| vs.iter().rev().find(|(c, _)| *c <= commit))
            .map_or(&[], |(_, s)| s)
    }

    fn last_commit(&self, key: i64) -> u64 {
        self.keys
            .get(&key)
            .and_then(|vs| vs.last())
            .map_or(0, |(c, _)| *c)
    }
}

/// Runs `p.txns` transactions on `p.processes` processes against a simulated database at
/// `isolation`, interleaving them one step (invocation, micro-op, commit) at a time, and
/// returns the history. Transactions fail (abort, no effect) and end indeterminate (taking
/// effect or not) at `p.fail_percent` and `p.info_percent`.
pub fn simulate(p: &Params, isolation: Isolation) -> Vec<Op> {
    let mut rng = Rng::new(p.seed);
    let processes = p.processes.max(1);
    let mut store = Versions::default();
    let mut ids: Vec<i64> = (0..processes as i64).collect();
    let mut running: Vec<Option<Running>> = (0..processes).map(|_| None).collect();
    let mut next_value = 0i64;
    let mut started = 0usize;
    let mut ops: Vec<Op> = Vec::with_capacity(p.txns * 2);
    let keys = p.active_keys.max(1) as u64;
    while started < p.txns || running.iter().any(Option::is_some) {
        let slot = rng.below(processes as u64) as usize;
        let Some(txn) = running[slot].as_mut() else {
            if started < p.txns {
                started += 1;
                let length = 1 + rng.below(p.max_txn_length.max(1) as u64) as usize;
                let mops: Vec<Mop> = (0..length)
                    .map(|_| {
                        let key = rng.below(keys) as i64;
                        match (rng.below(2), p.registers) {
                            (0, _) => Mop::Read { key, value: None },
                            (_, false) => {
                                next_value += 1;
                                Mop::Append {
                                    key,
                                    value: next_value,
                                }
                            }
                            (_, true) => {
                                next_value += 1;
                                Mop::Write {
                                    key,
                                    value: next_value,
                                }
                            }
                        }
                    })
                    .collect();
                ops.push(txn_op(ops.len(), ids[slot], OpType::Invoke, mops.clone()));
                running[slot] = Some(Running {
                    mops,
                    done: Vec::new(),
                    pc: 0,
                    snapshot: store.commits,
                    writes: FxHashMap::default(),
                });
            }
            continue;
        };
        let stepwise = matches!(
            isolation,
            Isolation::SnapshotIsolation
                | Isolation::ReadCommitted
                | Isolation::NoConflictDetection
        );
        if txn.pc < txn.mops.len() {
            if stepwise {
                let read_at = match isolation {
                    Isolation::ReadCommitted => store.commits,
                    _ => txn.snapshot,
                };
                let mop = txn.mops[txn.pc].clone();
                let done = execute(&store, txn, &mop, read_at, p.registers);
                txn.done.push(done);
            }
            txn.pc += 1;
            continue;
        }
        let txn = running[slot].take().expect("a running transaction");
        let roll = rng.below(100);
        let outcome = if roll < p.fail_percent {
            OpType::Fail
        } else if roll < p.fail_percent + p.info_percent {
            OpType::Info
        } else {
            OpType::Ok
        };
        let takes_effect = match outcome {
            OpType::Fail => false,
            OpType::Info => rng.below(2) == 0,
            _ => true,
        };
        let (done, committed) = commit(&mut store, txn, isolation, takes_effect, p, &mut rng);
        match (outcome, committed) {
            (OpType::Ok, Some(done)) => ops.push(txn_op(ops.len(), ids[slot], OpType::Ok, done)),
            (OpType::Info, _) => {
                ops.push(txn_op(ops.len(), ids[slot], OpType::Info, done));
                ids[slot] += processes as i64;
            }
            _ => ops.push(txn_op(ops.len(), ids[slot], OpType::Fail, done)),
        }
    }
    ops
}

/// Executes one micro-op of `txn`, reading committed state as of `read_at` under its own
/// writes; returns the completed micro-op.
fn execute(store: &Versions, txn: &mut Running, mop: &Mop, read_at: u64, registers: bool) -> Mop {
    match *mop {
        Mop::Append { key, value } | Mop::Write { key, value } => {
            let own = txn.writes.entry(key).or_default();
            if registers {
                *own = vec![value];
            } else {
                own.push(value);
            }
            mop.clone()
        }
        Mop::Read { key, .. } | Mop::ReadRegister { key, .. } => {
            let base = store.at(key, read_at);
            let own = txn.writes.get(&key).map_or(&[][..], Vec::as_slice);
            if registers {
                let value = own.last().or(base.last()).copied();
                Mop::ReadRegister { key, value }
            } else {
                let mut list = base.to_vec();
                list.extend_from_slice(own);
                Mop::Read {
                    key,
                    value: Some(list),
                }
            }
        }
    }
}

/// Ends `txn`: installs its writes if it `takes_effect` and the level lets it commit. Returns
/// the micro-ops as completed (the invocation's when it did not run to the end) and, if it
/// committed, the same again.
fn commit(
    store: &mut Versions,
    mut txn: Running,
    isolation: Isolation,
    takes_effect: bool,
    p: &Params,
    rng: &mut Rng,
) -> (Vec<Mop>, Option<Vec<Mop>>) {
    let read_only = txn.mops.iter().all(|m| matches!(m, Mop::Read { .. }));
    if matches!(
        isolation,
        Isolation::StrictSerializable | Isolation::StaleSerializable
    ) {
        let lag = if isolation == Isolation::StaleSerializable && read_only {
            rng.below(4)
        } else {
            0
        };
        let read_at = store.commits.saturating_sub(lag);
        txn.done = txn
            .mops
            .clone()
            .iter()
            .map(|m| execute(store, &mut txn, m, read_at, p.registers))
            .collect();
    }
    let conflict = isolation == Isolation::SnapshotIsolation
        && txn
            .writes
            .keys()
            .any(|&k| store.last_commit(k) > txn.snapshot);
    if !takes_effect || conflict {
        return (txn.mops, None);
    }
    if !txn.writes.is_empty() {
        store.commits += 1;
        let commit = store.commits;
        let mut keys: Vec<i64> = txn.writes.keys().copied().collect();
        keys.sort_unstable();
        for key in keys {
            let own = &txn.writes[&key];
            let base = match isolation {
                Isolation::NoConflictDetection => store.at(key, txn.snapshot).to_vec(),
                _ => store.at(key, commit).to_vec(),
            };
            let state = if p.registers {
                own.clone()
            } else {
                let mut state = base;
                state.extend_from_slice(own);
                state
            };
            store.keys.entry(key).or_default().push((commit, state));
        }
    }
    (txn.mops, Some(txn.done))
}
