//! What a run did, as a Jepsen user reads it at a glance before the verdict: operations by
//! type, the rate achieved against the rate asked, latency quantiles, replication lag, each
//! check's verdict and the faults injected. The same figures go in `results.edn` as `:perf`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use checker::edn::{Edn, kw, kw_map};
use checker::history::{Op, OpType, Process, Txn};
use checker::verdict::{Validity, Verdict};

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
    /// Faults injected, by name: how many were started.
    faults: BTreeMap<String, usize>,
    concurrency: usize,
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
        let mut faults = BTreeMap::new();
        for op in ops {
            if op.kind == OpType::Invoke && op.process == Process::Named("nemesis".into()) {
                *faults.entry(op.f.to_string()).or_default() += 1;
            }
        }
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
        entries.push((
            "faults",
            Edn::Map(
                self.faults
                    .iter()
                    .map(|(f, n)| (kw(f), Edn::Int(*n as i64)))
                    .collect(),
            ),
        ));
        kw_map(entries)
    }

    /// The summary printed at the end of a run, before the verdict.
    pub fn summary(&self, lag: Option<&Lag>, verdicts: &[(&str, Verdict)], store: &str) -> String {
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
                .map(|(f, n)| format!("{f} x{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(text, "faults: {faults}");
        for (name, verdict) in verdicts {
            let valid = match verdict.valid {
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
    use checker::history::{Mop, OpValue, pair_txns};
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
        assert_eq!(perf.faults["kill"], 1);
        let text = perf.summary(None, &[], "store/x");
        assert!(text.contains("2.0 txn/s achieved of 10.0 asked"), "{text}");
        assert!(text.contains("try --concurrency 2n"), "{text}");
        assert!(text.contains("faults: kill x1"), "{text}");
        assert!(perf.to_edn().to_string().contains(":rate-asked 10.0"));
    }
}
