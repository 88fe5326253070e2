//! What the pictures are drawn from: each client operation's time and latency, and the periods
//! during which a fault was in force.

use checker::history::{Op, OpType, OpValue, Process, Txn};

use crate::nemesis::Fault;

/// One completed client operation.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds from the start of the test to its invocation.
    pub time: f64,
    /// Milliseconds from invocation to completion.
    pub latency_ms: f64,
    /// How it completed.
    pub kind: OpType,
}

/// Every client transaction that completed, in order of invocation. Indeterminate operations
/// that never completed have no latency and are left out.
pub fn samples(txns: &[Txn]) -> Vec<Sample> {
    txns.iter()
        .filter_map(|t| {
            let done = t.complete_time?;
            Some(Sample {
                time: t.invoke_time as f64 / 1e9,
                latency_ms: (done - t.invoke_time) as f64 / 1e6,
                kind: t.kind,
            })
        })
        .collect()
}

/// A fault in force: from its invocation to the completion of the operation that ended it (or
/// the end of the history).
#[derive(Debug, Clone, PartialEq)]
pub struct Period {
    /// Seconds from the start of the test.
    pub start: f64,
    /// Seconds from the start of the test.
    pub end: f64,
    /// The fault and its target, such as `kill n1`.
    pub label: String,
}

/// The nemesis's faults, as periods. The nemesis runs one fault at a time: a fault lasts from
/// the invocation that started it until the completion of the next operation that ends one.
pub fn nemesis_periods(ops: &[Op]) -> Vec<Period> {
    let mut periods = Vec::new();
    let mut open: Option<Period> = None;
    let mut ending = false;
    for op in ops {
        if op.process != Process::Named("nemesis".into()) {
            continue;
        }
        let time = op.time as f64 / 1e9;
        match op.kind {
            OpType::Invoke if open.is_none() && Fault::started_by(&op.f).is_some() => {
                let target = match &op.value {
                    OpValue::Other(edn) => format!(" {}", edn.to_string().trim_matches('"')),
                    OpValue::Txn(_) => String::new(),
                };
                open = Some(Period {
                    start: time,
                    end: time,
                    label: format!("{}{target}", op.f),
                });
            }
            OpType::Invoke => ending = open.is_some() && Fault::is_end(&op.f),
            _ if ending => {
                if let Some(mut period) = open.take() {
                    period.end = time;
                    periods.push(period);
                }
                ending = false;
            }
            _ => {}
        }
    }
    if let Some(mut period) = open {
        period.end = ops.last().map_or(period.start, |o| o.time as f64 / 1e9);
        periods.push(period);
    }
    periods
}

/// The `q`-quantile (0 to 1) of sorted `values`, by the nearest rank.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::read_history;

    #[test]
    fn faults_become_periods() {
        let text = "\
{:index 0, :time 1000000000, :type :invoke, :process :nemesis, :f :kill, :value \"n1\"}
{:index 1, :time 1100000000, :type :info, :process :nemesis, :f :kill, :value \"n1\"}
{:index 2, :time 3000000000, :type :invoke, :process :nemesis, :f :start, :value \"n1\"}
{:index 3, :time 3500000000, :type :info, :process :nemesis, :f :start, :value \"n1\"}
{:index 4, :time 5000000000, :type :invoke, :process :nemesis, :f :pause, :value \"n2\"}
{:index 5, :time 5100000000, :type :info, :process :nemesis, :f :pause, :value \"n2\"}
{:index 6, :time 9000000000, :type :invoke, :process 0, :f :txn, :value [[:r 1 nil]]}";
        let ops = read_history(text.as_bytes()).unwrap();
        assert_eq!(
            nemesis_periods(&ops),
            [
                Period {
                    start: 1.0,
                    end: 3.5,
                    label: "kill n1".into()
                },
                Period {
                    start: 5.0,
                    end: 9.0,
                    label: "pause n2".into()
                },
            ]
        );
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let values = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&values, 0.5), 2.0);
        assert_eq!(quantile(&values, 0.99), 4.0);
        assert_eq!(quantile(&values, 0.0), 1.0);
        assert!(quantile(&[], 0.5).is_nan());
    }
}
