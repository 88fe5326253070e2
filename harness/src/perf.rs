//! What a run did, as a Jepsen user reads it at a glance before the verdict: operations by
//! type, the rate achieved against the rate asked, latency quantiles, replication lag, each
//! check's verdict, and the faults injected with how many took effect (each fault's completion
//! in the history says whether it did, and the evidence). The figures go in `results.edn` as
//! `:perf` and `:nemesis`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use checker::edn::{Edn, kw, kw_map};
use checker::history::{Op, OpType, OpValue, Process, Txn};
use checker::verdict::Validity;

use crate::nemesis::Fault;
use crate::report::lag::Lag;
use crate::report::series::quantile;

/// A run's figures.
pub struct Perf {
    ok: usize,
    fail: usize,
    info: usize,
    rate_asked: f64,
    rate_achieved: f64,
    /// p50, p95, p99 and max latency of ok transactions, in milliseconds.
    latency_ms: Option<[f64; 4]>,
    /// Faults injected, by name.
    faults: BTreeMap<String, FaultTally>,
    concurrency: usize,
}

/// What the nemesis did with one fault.
#[derive(Debug, Default, PartialEq)]
pub struct FaultTally {
    /// Times it was started.
    pub count: usize,
    /// Times its start was shown to take effect; `None` for a history that records no evidence
    /// (one recorded before faults proved themselves).
    pub effective: Option<usize>,
    /// Why a start or an end did not take effect, or failed.
    pub errors: Vec<String>,
}

/// Tallies the nemesis's operations by fault, from their completions.
pub fn tally_faults(ops: &[Op]) -> BTreeMap<String, FaultTally> {
    let mut faults: BTreeMap<String, FaultTally> = BTreeMap::new();
    let nemesis = Process::Named("nemesis".into());
    let value = |op: &Op| match &op.value {
        OpValue::Other(value) => Some(value.clone()),
        OpValue::Txn(_) => None,
    };
    // A history from before faults proved themselves records no evidence: count starts alone.
    let evidence = ops
        .iter()
        .any(|o| o.process == nemesis && value(o).is_some_and(|v| v.get("fault").is_some()));
    for op in ops.iter().filter(|o| o.process == nemesis) {
        let Some(value) = value(op) else { continue };
        let starts = Fault::started_by(&op.f).is_some();
        match op.kind {
            OpType::Invoke if starts && !evidence => {
                let name = Fault::started_by(&op.f).map_or("?", Fault::name);
                faults.entry(name.to_owned()).or_default().count += 1;
            }
            OpType::Info => {
                let Some(Edn::Keyword(name)) = value.get("fault") else {
                    continue;
                };
                let tally = faults.entry(name.clone()).or_default();
                let effective = value.get("effective") == Some(&Edn::Bool(true));
                if starts {
                    tally.count += 1;
                    *tally.effective.get_or_insert(0) += usize::from(effective);
                } else {
                    tally.effective.get_or_insert(0);
                }
                if !effective {
                    let node = value.get("node").map(|n| n.to_string()).unwrap_or_default();
                    let why = op.error.as_ref().map(|e| e.to_string()).unwrap_or_default();
                    tally.errors.push(format!(
                        "{} {}: {}",
                        op.f,
                        node.trim_matches('"'),
                        why.trim_matches('"')
                    ));
                }
            }
            _ => {}
        }
    }
    faults
}

/// Quantiles reported, with their names.
const QUANTILES: [(&str, f64); 4] = [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("max", 1.0)];

impl Perf {
    /// Measures the run: `txns` its transactions, `ops` its history, `rate` the rate asked over
    /// `time_limit` seconds by `concurrency` workers.
    pub fn measure(
        txns: &[Txn],
        ops: &[Op],
        rate: f64,
        time_limit: f64,
        concurrency: usize,
    ) -> Perf {
        let count = |kind: OpType| txns.iter().filter(|t| t.kind == kind).count();
        let (ok, fail, info) = (count(OpType::Ok), count(OpType::Fail), count(OpType::Info));
        let mut latencies: Vec<f64> = txns
            .iter()
            .filter(|t| t.kind == OpType::Ok)
            .filter_map(|t| Some((t.complete_time? - t.invoke_time) as f64 / 1e6))
            .collect();
        latencies.sort_by(f64::total_cmp);
        let latency_ms =
            (!latencies.is_empty()).then(|| QUANTILES.map(|(_, q)| quantile(&latencies, q)));
        let faults = tally_faults(ops);
        let completed = ok + fail + info;
        let rate_achieved = if time_limit > 0.0 && time_limit.is_finite() {
            completed as f64 / time_limit
        } else {
            0.0
        };
        Perf {
            ok,
            fail,
            info,
            rate_asked: rate,
            rate_achieved,
            latency_ms,
            faults,
            concurrency,
        }
    }

    /// `:perf` for `results.edn`.
    pub fn to_edn(&self) -> Edn {
        let round = |x: f64| Edn::Float((x * 10.0).round() / 10.0);
        let mut entries = vec![
            ("ok-count", Edn::Int(self.ok as i64)),
            ("fail-count", Edn::Int(self.fail as i64)),
            ("info-count", Edn::Int(self.info as i64)),
            ("rate-asked", round(self.rate_asked)),
            ("rate-achieved", round(self.rate_achieved)),
            ("concurrency", Edn::Int(self.concurrency as i64)),
        ];
        if let Some(latency) = self.latency_ms {
            entries.push((
                "latency-ms",
                kw_map(
                    QUANTILES
                        .iter()
                        .zip(latency)
                        .map(|((name, _), v)| (*name, round(v))),
                ),
            ));
        }
        kw_map(entries)
    }

    /// `:nemesis` for `results.edn`: per fault, `{:count N, :effective M, :errors [...]}`.
    pub fn nemesis_edn(&self) -> Edn {
        Edn::Map(
            self.faults
                .iter()
                .map(|(name, t)| {
                    let effective = t.effective.map_or(Edn::Nil, |n| Edn::Int(n as i64));
                    let errors = Edn::Vector(t.errors.iter().cloned().map(Edn::Str).collect());
                    (
                        kw(name),
                        kw_map([
                            ("count", Edn::Int(t.count as i64)),
                            ("effective", effective),
                            ("errors", errors),
                        ]),
                    )
                })
                .collect(),
        )
    }

    /// Why the run cannot count as valid under faults: each fault injected that never took
    /// effect, and each of `requested` (faults named one by one) never injected.
    pub fn ineffective(&self, requested: &[String]) -> Vec<String> {
        let never = requested
            .iter()
            .filter(|name| !self.faults.contains_key(*name))
            .map(|name| format!("{name} was asked for but never injected"));
        let without_effect = self
            .faults
            .iter()
            .filter(|(_, t)| t.effective == Some(0) && t.count > 0)
            .map(|(name, t)| {
                format!(
                    "{name} was injected {} time(s) and never took effect ({})",
                    t.count,
                    t.errors.join("; ")
                )
            });
        without_effect.chain(never).collect()
    }

    /// The summary printed at the end of a run, before the verdict.
    pub fn summary(&self, lag: Option<&Lag>, checks: &[(&str, Validity)], store: &str) -> String {
        let mut text = String::new();
        let _ = writeln!(
            text,
            "transactions: {} ok, {} failed, {} indeterminate",
            self.ok, self.fail, self.info
        );
        let _ = write!(
            text,
            "rate: {:.1} txn/s achieved of {:.1} asked, {} worker(s)",
            self.rate_achieved, self.rate_asked, self.concurrency
        );
        if self.rate_asked > 0.0 && self.rate_achieved < 0.9 * self.rate_asked {
            let _ = write!(
                text,
                " (under 90%: each worker waits for its transaction; try --concurrency {}n or more)",
                self.concurrency.max(1) * 2
            );
        }
        text.push('\n');
        if let Some([p50, p95, p99, max]) = self.latency_ms {
            let _ = writeln!(
                text,
                "latency of ok transactions: p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
            );
        }
        if let Some(lag) = lag {
            for line in lag.summary_lines() {
                let _ = writeln!(text, "{line}");
            }
        }
        let faults = if self.faults.is_empty() {
            "none".to_owned()
        } else {
            self.faults
                .iter()
                .map(|(f, t)| match t.effective {
                    Some(n) => format!("{f} x{} ({n} effective)", t.count),
                    None => format!("{f} x{}", t.count),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(text, "faults: {faults}");
        for (name, valid) in checks {
            let valid = match valid {
                Validity::Valid => "valid",
                Validity::Invalid => "INVALID",
                Validity::Unknown => "unknown",
            };
            let _ = writeln!(text, "check {name}: {valid}");
        }
        let _ = write!(text, "store: {store}");
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::{Mop, pair_txns};
    use checker::synth::txn_op;

    #[test]
    fn counts_rates_latencies_and_faults() {
        let append = vec![Mop::Append { key: 1, value: 1 }];
        let mut ops = vec![
            txn_op(0, 0, OpType::Invoke, append.clone()),
            txn_op(1, 0, OpType::Ok, append.clone()),
            txn_op(2, 1, OpType::Invoke, append.clone()),
            txn_op(3, 1, OpType::Fail, append),
        ];
        let mut nemesis = txn_op(4, 0, OpType::Invoke, vec![]);
        nemesis.process = Process::Named("nemesis".into());
        nemesis.f = "kill".into();
        nemesis.value = OpValue::Other(Edn::Nil);
        ops.push(nemesis);
        let txns = pair_txns(ops.iter().cloned()).unwrap();
        let perf = Perf::measure(&txns, &ops, 10.0, 1.0, 1);
        assert_eq!((perf.ok, perf.fail, perf.info), (1, 1, 0));
        assert_eq!(perf.rate_achieved, 2.0);
        // Ops are a microsecond apart: the ok one took 1 µs.
        assert_eq!(perf.latency_ms.unwrap()[3], 0.001);
        // A kill recorded without evidence (an older history): counted, not judged.
        assert_eq!(perf.faults["kill"].count, 1);
        assert_eq!(perf.faults["kill"].effective, None);
        assert!(perf.ineffective(&["kill".into()]).is_empty());
        let text = perf.summary(None, &[], "store/x");
        assert!(text.contains("2.0 txn/s achieved of 10.0 asked"), "{text}");
        assert!(text.contains("try --concurrency 2n"), "{text}");
        assert!(text.contains("faults: kill x1"), "{text}");
        assert!(perf.to_edn().to_string().contains(":rate-asked 10.0"));
    }

    #[test]
    fn a_fault_that_never_took_effect_is_named() {
        let text = "{:index 0, :time 0, :type :invoke, :process :nemesis, :f :kill, :value [\"n1\"]}
{:index 1, :time 1, :type :info, :process :nemesis, :f :kill, :value {:node \"n1\", :fault :kill, :effective false, :evidence \"\"}, :error \"no effect: pid 7 still runs\"}
{:index 2, :time 2, :type :invoke, :process :nemesis, :f :pause, :value [\"n1\"]}
{:index 3, :time 3, :type :info, :process :nemesis, :f :pause, :value {:node \"n1\", :fault :pause, :effective true, :evidence \"pid 7 is stopped (state T)\"}}
{:index 4, :time 4, :type :invoke, :process :nemesis, :f :resume, :value [\"n1\"]}
{:index 5, :time 5, :type :info, :process :nemesis, :f :resume, :value {:node \"n1\", :fault :pause, :effective true, :evidence \"pid 7 runs\"}}";
        let ops = checker::history::read_history(text.as_bytes()).unwrap();
        let perf = Perf::measure(&[], &ops, 1.0, 1.0, 1);
        assert_eq!(perf.faults["kill"].effective, Some(0));
        assert_eq!(perf.faults["pause"].count, 1);
        assert_eq!(perf.faults["pause"].effective, Some(1));
        let why = perf.ineffective(&["kill".into(), "pause".into(), "stop-start".into()]);
        assert_eq!(why.len(), 2, "{why:?}");
        assert!(
            why[0].contains("kill was injected 1 time(s) and never took effect"),
            "{why:?}"
        );
        assert!(why[0].contains("no effect: pid 7 still runs"), "{why:?}");
        assert!(
            why[1].contains("stop-start was asked for but never injected"),
            "{why:?}"
        );
        assert!(
            perf.nemesis_edn()
                .to_string()
                .contains(":kill {:count 1, :effective 0")
        );
    }
}
