//! Replication lag, measured from the history: for each write acknowledged during the workload,
//! the time until another participant first saw it. Participants are the client nodes, each on
//! its own, and PostgreSQL: a PostgreSQL client's read, or the harness's watcher, which looks at
//! PostgreSQL every 100 ms and records what appeared (`:postgres-sightings`). A read "sees" a list
//! element it contains; a max-write-wins register write is seen once a read returns a value at
//! least as great (which subsumes it). The time of sight is the read's completion, or the
//! watcher's look, so lag is an upper bound.

use rustc_hash::FxHashMap;

use checker::edn::{Edn, kw, kw_map};
use checker::history::{Mop, Op, OpType, OpValue, Process, Txn};

use super::series::quantile;

/// Who ran the workload, to tell which node each process used.
pub struct Topology<'a> {
    /// The client nodes.
    pub nodes: &'a [String],
    /// The PostgreSQL clients.
    pub postgres_nodes: &'a [String],
    /// The number of workers; process `p` is worker `p % concurrency`.
    pub concurrency: usize,
    /// Seconds of workload; later operations belong to the final phase.
    pub time_limit: f64,
}

impl Topology<'_> {
    /// The observers: each client node by name, then `postgres`.
    pub fn observers(&self) -> Vec<String> {
        let mut names = self.nodes.to_vec();
        names.push("postgres".to_owned());
        names
    }

    /// The observer a process belongs to: workers use the nodes round-robin, clients first.
    fn observer_of(&self, process: i64) -> usize {
        let participants = self.nodes.len() + self.postgres_nodes.len();
        let node = (process as usize % self.concurrency.max(1)) % participants.max(1);
        node.min(self.nodes.len())
    }
}

/// One write seen by one other observer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sighting {
    /// Index into the observers.
    pub observer: usize,
    /// Seconds from the start of the test to the write's acknowledgement.
    pub acked: f64,
    /// Milliseconds from acknowledgement to first sight (0 when seen before the writer heard).
    pub lag_ms: f64,
}

/// The lag of every write on every other observer.
pub struct Lag {
    /// The observers' names.
    pub observers: Vec<String>,
    /// Every sighting.
    pub sightings: Vec<Sighting>,
    /// Per observer, the writes by others it never read during the workload.
    pub unobserved: Vec<usize>,
}

/// What each observer saw: when it first read each list element, and each register read.
#[derive(Default)]
struct Views {
    /// (observer, element) to the time of its first sight.
    elements: FxHashMap<(usize, i64), i64>,
    /// (observer, key) to its register reads (time, value), in time order once finished, each
    /// value raised to the greatest read so far.
    registers: FxHashMap<(usize, i64), Vec<(i64, i64)>>,
}

impl Views {
    fn element(&mut self, observer: usize, value: i64, time: i64) {
        let seen = self.elements.entry((observer, value)).or_insert(time);
        *seen = (*seen).min(time);
    }

    fn register(&mut self, observer: usize, key: i64, value: i64, time: i64) {
        self.registers
            .entry((observer, key))
            .or_default()
            .push((time, value));
    }

    /// Sorts register reads by time and makes their values a running maximum.
    fn finish(&mut self) {
        for reads in self.registers.values_mut() {
            reads.sort_unstable();
            let mut high = i64::MIN;
            for read in reads.iter_mut() {
                high = high.max(read.1);
                read.1 = high;
            }
        }
    }

    /// When `observer` first saw the write of `value` to `key`: the element itself in a list;
    /// in a max-write-wins register, a value at least as great (which subsumes it).
    fn first_sight(&self, observer: usize, key: i64, value: i64, register: bool) -> Option<i64> {
        if !register {
            return self.elements.get(&(observer, value)).copied();
        }
        let reads = self.registers.get(&(observer, key))?;
        let at = reads.partition_point(|&(_, high)| high < value);
        reads.get(at).map(|&(time, _)| time)
    }
}

/// Measures the lag in `txns`, with the watcher's sightings of PostgreSQL in `ops`.
pub fn measure(txns: &[Txn], ops: &[Op], topology: &Topology) -> Lag {
    let observers = topology.observers();
    let postgres = observers.len() - 1;
    let limit = (topology.time_limit * 1e9) as i64;
    let mut views = Views::default();
    // (writer's observer, key, value, acknowledged, a register write?)
    let mut writes: Vec<(usize, i64, i64, i64, bool)> = Vec::new();
    for txn in txns
        .iter()
        .filter(|t| t.kind == OpType::Ok && t.invoke_time < limit)
    {
        let (observer, done) = (
            topology.observer_of(txn.process),
            txn.complete_time.unwrap_or(txn.invoke_time),
        );
        for mop in &txn.mops {
            match *mop {
                Mop::Append { key, value } => writes.push((observer, key, value, done, false)),
                Mop::Write { key, value } => writes.push((observer, key, value, done, true)),
                Mop::Read {
                    value: Some(ref list),
                    ..
                } => list.iter().for_each(|&v| views.element(observer, v, done)),
                Mop::ReadRegister {
                    key,
                    value: Some(value),
                } => views.register(observer, key, value, done),
                _ => {}
            }
        }
    }
    let registers = writes.iter().any(|w| w.4);
    let watcher = Process::Named("observer".into());
    for op in ops
        .iter()
        .filter(|o| o.process == watcher && o.f == crate::postgres::SIGHTINGS)
    {
        let OpValue::Other(Edn::Map(entries)) = &op.value else {
            continue;
        };
        for (key, values) in entries {
            let Edn::Int(key) = *key else { continue };
            for value in values.as_seq().into_iter().flatten() {
                match *value {
                    Edn::Int(v) if registers => views.register(postgres, key, v, op.time),
                    Edn::Int(v) => views.element(postgres, v, op.time),
                    _ => {}
                }
            }
        }
    }
    views.finish();
    let mut sightings = Vec::new();
    let mut unobserved = vec![0; observers.len()];
    for (writer, key, value, acked, register) in writes {
        for observer in (0..observers.len()).filter(|&o| o != writer) {
            match views.first_sight(observer, key, value, register) {
                Some(seen) => sightings.push(Sighting {
                    observer,
                    acked: acked as f64 / 1e9,
                    lag_ms: (seen - acked).max(0) as f64 / 1e6,
                }),
                None => unobserved[observer] += 1,
            }
        }
    }
    Lag {
        observers,
        sightings,
        unobserved,
    }
}

impl Lag {
    /// Observer `i`'s lags, in milliseconds, sorted.
    fn lags_of(&self, i: usize) -> Vec<f64> {
        let mut lags: Vec<f64> = self
            .sightings
            .iter()
            .filter(|s| s.observer == i)
            .map(|s| s.lag_ms)
            .collect();
        lags.sort_by(f64::total_cmp);
        lags
    }

    /// A line per observer for the run's summary: its lag quantiles and the writes it never
    /// read.
    pub fn summary_lines(&self) -> Vec<String> {
        self.observers
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let lags = self.lags_of(i);
                if lags.is_empty() {
                    return format!("replication lag to {name}: no sightings");
                }
                format!(
                    "replication lag to {name}: p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms ({} sightings, {} writes never read there)",
                    quantile(&lags, 0.5),
                    quantile(&lags, 0.95),
                    quantile(&lags, 0.99),
                    quantile(&lags, 1.0),
                    lags.len(),
                    self.unobserved[i]
                )
            })
            .collect()
    }

    /// Per observer: how many sightings, their lag quantiles in milliseconds, and the writes
    /// never read there.
    pub fn to_edn(&self) -> Edn {
        let per_observer = self.observers.iter().enumerate().map(|(i, name)| {
            let lags = self.lags_of(i);
            let ms = |q: f64| {
                if lags.is_empty() {
                    Edn::Nil
                } else {
                    Edn::Float((quantile(&lags, q) * 1000.0).round() / 1000.0)
                }
            };
            (
                kw(name),
                kw_map([
                    ("count", Edn::Int(lags.len() as i64)),
                    ("p50-ms", ms(0.5)),
                    ("p95-ms", ms(0.95)),
                    ("p99-ms", ms(0.99)),
                    ("max-ms", ms(1.0)),
                    ("unobserved", Edn::Int(self.unobserved[i] as i64)),
                ]),
            )
        });
        Edn::Map(per_observer.collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::{pair_txns, read_history};

    #[test]
    fn measures_from_acknowledgement_to_first_read_elsewhere() {
        // Processes 0 and 1 run on n1 and n2; process 2 on the PostgreSQL client.
        let text = "\
{:index 0, :time 0, :type :invoke, :process 0, :f :txn, :value [[:append 1 7]]}
{:index 1, :time 1000000, :type :ok, :process 0, :f :txn, :value [[:append 1 7]]}
{:index 2, :time 2000000, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}
{:index 3, :time 3000000, :type :ok, :process 1, :f :txn, :value [[:r 1 []]]}
{:index 4, :time 4000000, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}
{:index 5, :time 11000000, :type :ok, :process 1, :f :txn, :value [[:r 1 [7]]]}
{:index 6, :time 12000000, :type :invoke, :process 2, :f :txn, :value [[:r 1 nil]]}
{:index 7, :time 21000000, :type :ok, :process 2, :f :txn, :value [[:r 1 [7]]]}
{:index 8, :time 22000000, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}
{:index 9, :time 23000000, :type :ok, :process 1, :f :txn, :value [[:r 1 [7]]]}
{:index 10, :time 24000000, :type :info, :process :observer, :f :postgres-sightings, :value {1 [7]}}
{:index 11, :time 25000000, :type :invoke, :process 1, :f :txn, :value [[:append 2 8]]}
{:index 12, :time 26000000, :type :ok, :process 1, :f :txn, :value [[:append 2 8]]}
{:index 13, :time 29000000, :type :info, :process :observer, :f :postgres-sightings, :value {2 [8]}}";
        let ops = read_history(text.as_bytes()).unwrap();
        let txns = pair_txns(ops.iter().cloned()).unwrap();
        let (nodes, postgres) = (["n1".to_owned(), "n2".to_owned()], ["pg1".to_owned()]);
        let topology = Topology {
            nodes: &nodes,
            postgres_nodes: &postgres,
            concurrency: 3,
            time_limit: 60.0,
        };
        let lag = measure(&txns, &ops, &topology);
        assert_eq!(lag.observers, ["n1", "n2", "postgres"]);
        assert_eq!(
            lag.sightings,
            [
                Sighting {
                    observer: 1,
                    acked: 0.001,
                    lag_ms: 10.0
                },
                Sighting {
                    observer: 2,
                    acked: 0.001,
                    lag_ms: 20.0
                },
                Sighting {
                    observer: 2,
                    acked: 0.026,
                    lag_ms: 3.0
                },
            ]
        );
        // Nobody but the watcher read key 2: n1 never saw 8.
        assert_eq!(lag.unobserved, [1, 0, 0]);
        let edn = lag.to_edn().to_string();
        assert!(edn.contains(":n2 {:count 1, :p50-ms 10.0"), "{edn}");
    }

    #[test]
    fn a_register_write_is_seen_once_a_read_is_at_least_as_great() {
        let text = "\
{:index 0, :time 0, :type :invoke, :process 0, :f :txn, :value [[:w 1 5]]}
{:index 1, :time 1000000, :type :ok, :process 0, :f :txn, :value [[:w 1 5]]}
{:index 2, :time 2000000, :type :invoke, :process 0, :f :txn, :value [[:w 1 6]]}
{:index 3, :time 3000000, :type :ok, :process 0, :f :txn, :value [[:w 1 6]]}
{:index 4, :time 4000000, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}
{:index 5, :time 5000000, :type :ok, :process 1, :f :txn, :value [[:r 1 nil]]}
{:index 6, :time 6000000, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}
{:index 7, :time 9000000, :type :ok, :process 1, :f :txn, :value [[:r 1 6]]}
{:index 8, :time 11000000, :type :info, :process :observer, :f :postgres-sightings, :value {1 [6]}}";
        let ops = read_history(text.as_bytes()).unwrap();
        let txns = pair_txns(ops.iter().cloned()).unwrap();
        let nodes = ["n1".to_owned(), "n2".to_owned()];
        let topology = Topology {
            nodes: &nodes,
            postgres_nodes: &[],
            concurrency: 2,
            time_limit: 60.0,
        };
        let lag = measure(&txns, &ops, &topology);
        let on = |observer: usize| -> Vec<f64> {
            lag.sightings
                .iter()
                .filter(|s| s.observer == observer)
                .map(|s| s.lag_ms)
                .collect()
        };
        // n2 read 6, which subsumes 5: both writes seen at 9 ms; PostgreSQL at 11 ms.
        assert_eq!(on(1), [8.0, 6.0]);
        assert_eq!(on(2), [10.0, 8.0]);
        assert_eq!(lag.unobserved, [0, 0, 0]);
    }
}
