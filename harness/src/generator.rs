//! Elle-style list-append transactions: a small pool of active keys, each retired after a bounded
//! number of appends, and every appended value unique.

use checker::history::Mop;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

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
    fn is_deterministic_for_a_seed() {
        let mut a = ListAppendGenerator::new(1, 8, 100, 4);
        let mut b = ListAppendGenerator::new(1, 8, 100, 4);
        for _ in 0..100 {
            assert_eq!(a.next_txn(false), b.next_txn(false));
        }
    }
}
