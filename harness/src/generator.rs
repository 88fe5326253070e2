//! The transactions a run issues: Elle-style list-append (a small pool of active keys, each
//! retired after a bounded number of appends, every appended value unique), or max-write-wins
//! registers (every transaction reads every key and writes a few, with values unique and
//! increasing over the run).

use checker::history::Mop;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::workload::TxnModel;

/// The generator of a run's transactions, by model.
pub enum Generator {
    /// List-append transactions.
    ListAppend(ListAppendGenerator),
    /// Max-write-wins register transactions.
    MaxWriteWins(RegisterGenerator),
}

impl Generator {
    /// A generator of `model` transactions over `key_count` keys (active at once, for
    /// list-append) with at most `max_txn_length` micro-ops (list-append) or writes
    /// (max-write-wins) each.
    pub fn new(
        model: TxnModel,
        seed: u64,
        key_count: usize,
        max_writes_per_key: usize,
        max_txn_length: usize,
    ) -> Self {
        match model {
            TxnModel::ListAppend => Generator::ListAppend(ListAppendGenerator::new(
                seed,
                key_count,
                max_writes_per_key,
                max_txn_length,
            )),
            TxnModel::MaxWriteWins => {
                Generator::MaxWriteWins(RegisterGenerator::new(seed, key_count, max_txn_length))
            }
        }
    }

    /// The next transaction's micro-ops, reads unfilled; only reads when `read_only`.
    pub fn next_txn(&mut self, read_only: bool) -> Vec<Mop> {
        match self {
            Generator::ListAppend(g) => g.next_txn(read_only),
            Generator::MaxWriteWins(g) => g.next_txn(read_only),
        }
    }

    /// Every key that any transaction so far may have touched.
    pub fn keys(&self) -> &[i64] {
        match self {
            Generator::ListAppend(g) => g.keys(),
            Generator::MaxWriteWins(g) => g.keys(),
        }
    }

    /// A transaction reading every key in `keys`, as this model reads.
    pub fn read_all(&self, keys: &[i64]) -> Vec<Mop> {
        keys.iter()
            .map(|&key| match self {
                Generator::ListAppend(_) => Mop::Read { key, value: None },
                Generator::MaxWriteWins(_) => Mop::ReadRegister { key, value: None },
            })
            .collect()
    }
}

/// Generates max-write-wins register transactions.
pub struct RegisterGenerator {
    rng: StdRng,
    keys: Vec<i64>,
    next_value: i64,
    max_writes: usize,
}

impl RegisterGenerator {
    /// `key_count` keys; each transaction reads them all and writes 1 to `max_writes` of them.
    pub fn new(seed: u64, key_count: usize, max_writes: usize) -> Self {
        let keys: Vec<i64> = (0..key_count.max(1) as i64).collect();
        RegisterGenerator {
            rng: StdRng::seed_from_u64(seed),
            max_writes: max_writes.clamp(1, keys.len()),
            keys,
            next_value: 1,
        }
    }

    /// Every key read, in random order, with the writes (of values greater than any before)
    /// placed among them; only the reads when `read_only`.
    pub fn next_txn(&mut self, read_only: bool) -> Vec<Mop> {
        let mut mops: Vec<Mop> = self
            .keys
            .iter()
            .map(|&key| Mop::ReadRegister { key, value: None })
            .collect();
        mops.shuffle(&mut self.rng);
        if read_only {
            return mops;
        }
        let count = self.rng.random_range(1..=self.max_writes);
        let mut written = self.keys.clone();
        written.shuffle(&mut self.rng);
        for &key in &written[..count] {
            let at = self.rng.random_range(0..=mops.len());
            mops.insert(
                at,
                Mop::Write {
                    key,
                    value: self.next_value,
                },
            );
            self.next_value += 1;
        }
        mops
    }

    /// The keys.
    pub fn keys(&self) -> &[i64] {
        &self.keys
    }
}

/// Generates list-append transactions.
pub struct ListAppendGenerator {
    rng: StdRng,
    /// Active keys with the number of appends generated for each.
    active: Vec<(i64, usize)>,
    next_key: i64,
    next_value: i64,
    max_writes_per_key: usize,
    max_txn_length: usize,
    used_keys: Vec<i64>,
}

impl ListAppendGenerator {
    /// `key_count` keys are active at once; each gets at most `max_writes_per_key` appends;
    /// transactions have 1 to `max_txn_length` micro-ops.
    pub fn new(
        seed: u64,
        key_count: usize,
        max_writes_per_key: usize,
        max_txn_length: usize,
    ) -> Self {
        let key_count = key_count.max(1);
        ListAppendGenerator {
            rng: StdRng::seed_from_u64(seed),
            active: (0..key_count as i64).map(|k| (k, 0)).collect(),
            next_key: key_count as i64,
            next_value: 1,
            max_writes_per_key: max_writes_per_key.max(1),
            max_txn_length: max_txn_length.max(1),
            used_keys: (0..key_count as i64).collect(),
        }
    }

    /// The next transaction's micro-ops, reads unfilled; only reads when `read_only`.
    pub fn next_txn(&mut self, read_only: bool) -> Vec<Mop> {
        let length = self.rng.random_range(1..=self.max_txn_length);
        (0..length)
            .map(|_| {
                let slot = self.rng.random_range(0..self.active.len());
                let key = self.active[slot].0;
                if read_only || self.rng.random_bool(0.5) {
                    Mop::Read { key, value: None }
                } else {
                    let value = self.next_value;
                    self.next_value += 1;
                    self.active[slot].1 += 1;
                    if self.active[slot].1 >= self.max_writes_per_key {
                        self.active[slot] = (self.next_key, 0);
                        self.used_keys.push(self.next_key);
                        self.next_key += 1;
                    }
                    Mop::Append { key, value }
                }
            })
            .collect()
    }

    /// Every key that any transaction so far may have touched, in order of first use.
    pub fn keys(&self) -> &[i64] {
        &self.used_keys
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{HashMap, HashSet};

    #[test]
    fn values_are_unique_and_keys_bounded() {
        let mut g = ListAppendGenerator::new(7, 4, 10, 4);
        let mut values = HashSet::new();
        let mut per_key: HashMap<i64, usize> = HashMap::new();
        for _ in 0..5_000 {
            let txn = g.next_txn(false);
            assert!((1..=4).contains(&txn.len()));
            for mop in txn {
                if let Mop::Append { key, value } = mop {
                    assert!(values.insert(value), "value {value} repeated");
                    *per_key.entry(key).or_default() += 1;
                }
            }
        }
        assert!(per_key.values().all(|&n| n <= 10));
        assert!(per_key.len() > 100, "keys rotate: {}", per_key.len());
        assert!(per_key.keys().all(|k| g.keys().contains(k)));
        assert!((0..100).all(|_| {
            g.next_txn(true)
                .iter()
                .all(|m| matches!(m, Mop::Read { .. }))
        }));
    }

    #[test]
    fn register_transactions_read_every_key_and_write_increasing_values() {
        let mut g = RegisterGenerator::new(3, 5, 3);
        let mut last = 0;
        for _ in 0..1_000 {
            let txn = g.next_txn(false);
            let mut read: Vec<i64> = txn
                .iter()
                .filter_map(|m| match m {
                    Mop::ReadRegister { key, value: None } => Some(*key),
                    _ => None,
                })
                .collect();
            read.sort();
            assert_eq!(read, [0, 1, 2, 3, 4]);
            let writes: Vec<(i64, i64)> = txn
                .iter()
                .filter_map(|m| match m {
                    Mop::Write { key, value } => Some((*key, *value)),
                    _ => None,
                })
                .collect();
            assert!((1..=3).contains(&writes.len()));
            let mut keys: Vec<i64> = writes.iter().map(|w| w.0).collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), writes.len(), "one write per key");
            let values: Vec<i64> = writes.iter().map(|w| w.1).collect();
            let (low, high) = (values.iter().min().unwrap(), values.iter().max().unwrap());
            assert!(
                *low > last,
                "values increase from one transaction to the next"
            );
            last = *high;
        }
        assert_eq!(g.next_txn(true).len(), 5);
    }

    #[test]
    fn is_deterministic_for_a_seed() {
        let mut a = ListAppendGenerator::new(1, 8, 100, 4);
        let mut b = ListAppendGenerator::new(1, 8, 100, 4);
        for _ in 0..100 {
            assert_eq!(a.next_txn(false), b.next_txn(false));
        }
    }
}
