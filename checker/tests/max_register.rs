//! Properties of the max-write-wins register checker over generated histories: a serial
//! execution (each transaction applied atomically at its completion, writes keeping the greater
//! value) is valid, with real time and after a round trip through the history's text; lowering
//! one read below what its process had already seen is always caught.

use std::collections::BTreeMap;

use checker::history::{Mop, Op, OpType, OpValue, Process, pair_txns, read_history};
use checker::max_register::{check_convergence, check_sessions};
use checker::synth;
use checker::verdict::Validity;
use proptest::prelude::*;

/// A small deterministic generator, so a seed names a history.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

/// A serial history of `txns` register transactions by `processes` processes over `keys`
/// keys; some fail, some end indeterminate. Returns it with the final state.
fn serial(txns: usize, processes: usize, keys: i64, seed: u64) -> (Vec<Op>, BTreeMap<i64, i64>) {
    let mut rng = Rng(seed);
    let mut state: BTreeMap<i64, i64> = BTreeMap::new();
    let mut pending: Vec<Option<Vec<Mop>>> = vec![None; processes];
    let mut ids: Vec<i64> = (0..processes as i64).collect();
    let (mut ops, mut next, mut started) = (Vec::new(), 0i64, 0);
    let push = |ops: &mut Vec<Op>, process: i64, kind, mops| {
        ops.push(synth::txn_op(ops.len(), process, kind, mops));
    };
    while started < txns || pending.iter().any(Option::is_some) {
        let slot = rng.below(processes as u64) as usize;
        match pending[slot].take() {
            None if started < txns => {
                let mut mops: Vec<Mop> = (0..keys)
                    .map(|key| Mop::ReadRegister { key, value: None })
                    .collect();
                for _ in 0..1 + rng.below(3) {
                    next += 1;
                    let at = rng.below(mops.len() as u64 + 1) as usize;
                    let key = rng.below(keys as u64) as i64;
                    mops.insert(at, Mop::Write { key, value: next });
                }
                push(&mut ops, ids[slot], OpType::Invoke, mops.clone());
                pending[slot] = Some(mops);
                started += 1;
            }
            None => {}
            Some(mops) => match rng.below(20) {
                0 => push(&mut ops, ids[slot], OpType::Fail, mops),
                roll => {
                    let done: Vec<Mop> = mops
                        .iter()
                        .map(|mop| match *mop {
                            Mop::Write { key, value } => {
                                let v = state.entry(key).or_insert(value);
                                *v = (*v).max(value);
                                mop.clone()
                            }
                            Mop::ReadRegister { key, .. } => Mop::ReadRegister {
                                key,
                                value: state.get(&key).copied(),
                            },
                            _ => unreachable!("register transactions only"),
                        })
                        .collect();
                    if roll == 1 {
                        push(&mut ops, ids[slot], OpType::Info, mops);
                        ids[slot] += processes as i64;
                    } else {
                        push(&mut ops, ids[slot], OpType::Ok, done);
                    }
                }
            },
        }
    }
    (ops, state)
}

fn text(ops: &[Op]) -> String {
    ops.iter().map(|op| format!("{}\n", op.to_edn())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn serial_register_histories_are_valid(txns in 1usize..300, processes in 1usize..8, keys in 1i64..6, seed in any::<u64>()) {
        let (ops, state) = serial(txns, processes, keys, seed);
        let ops = read_history(text(&ops).as_bytes()).unwrap();
        let txns = pair_txns(ops).unwrap();
        let sessions = check_sessions(&txns, true);
        prop_assert_eq!(sessions.valid, Validity::Valid, "{:?}", sessions.anomalies);
        let finals: BTreeMap<i64, Vec<i64>> = state.iter().map(|(k, v)| (*k, vec![*v])).collect();
        let finals = vec![("n1".to_owned(), Some(finals.clone())), ("postgres".to_owned(), Some(finals))];
        let convergence = check_convergence(&txns, &finals, vec![]);
        prop_assert_eq!(convergence.valid, Validity::Valid, "{:?}", convergence.anomalies);
    }

    #[test]
    fn a_read_going_back_is_caught(txns in 20usize..300, processes in 1usize..8, keys in 1i64..6, seed in any::<u64>(), pick in any::<prop::sample::Index>()) {
        let (mut ops, _) = serial(txns, processes, keys, seed);
        // A committed read of a value, by a process that had already seen that value: make it
        // see nothing.
        let mut seen: BTreeMap<(Process, i64), i64> = BTreeMap::new();
        let mut candidates = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            let OpValue::Txn(mops) = &op.value else { continue };
            if op.kind != OpType::Ok {
                continue;
            }
            for (m, mop) in mops.iter().enumerate() {
                if let Mop::ReadRegister { key, value: Some(v) } = *mop {
                    let first = !mops[..m].iter().any(|w| w.key() == key);
                    if first && seen.contains_key(&(op.process.clone(), key)) {
                        candidates.push((i, m));
                    }
                    seen.insert((op.process.clone(), key), v);
                }
            }
        }
        prop_assume!(!candidates.is_empty());
        let (i, m) = candidates[pick.index(candidates.len())];
        if let OpValue::Txn(mops) = &mut ops[i].value {
            let key = mops[m].key();
            mops[m] = Mop::ReadRegister { key, value: None };
        }
        let txns = pair_txns(ops).unwrap();
        let verdict = check_sessions(&txns, false);
        prop_assert_eq!(verdict.valid, Validity::Invalid);
        let types: Vec<&str> = verdict.anomaly_types().collect();
        prop_assert!(types.iter().any(|t| ["read-your-writes", "monotonic-reads"].contains(t)), "{:?}", types);
    }
}
