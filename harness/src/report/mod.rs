//! What a run leaves for people to look at, beside its results: `latency-raw.png`,
//! `latency-quantiles.png`, `rate.png`, `replication-lag.png` (synced workloads),
//! `timeline.html`, and the `anomalies/` explanations and cycle drawings.

pub mod anomalies;
pub mod lag;
mod plots;
pub mod series;
pub mod timeline;

use std::path::Path;

use checker::history::{Op, Txn};
use checker::verdict::Verdict;

use crate::log::Log;

/// Draws every picture and page of a run in `dir`. A picture that cannot be drawn is logged and
/// skipped: the verdict matters more.
pub fn render(
    dir: &Path,
    title: &str,
    ops: &[Op],
    txns: &[Txn],
    lag: Option<&lag::Lag>,
    verdicts: &[(&str, &Verdict)],
    log: &Log,
) {
    let samples = series::samples(txns);
    let periods = series::nemesis_periods(ops);
    let mut outcomes = vec![
        (
            "latency-raw.png",
            plots::latency_raw(&dir.join("latency-raw.png"), &samples, &periods),
        ),
        (
            "latency-quantiles.png",
            plots::latency_quantiles(&dir.join("latency-quantiles.png"), &samples, &periods),
        ),
        (
            "rate.png",
            plots::rate(&dir.join("rate.png"), &samples, &periods),
        ),
    ];
    if let Some(lag) = lag {
        outcomes.push((
            "replication-lag.png",
            plots::replication_lag(
                &dir.join("replication-lag.png"),
                &lag.sightings,
                &lag.observers,
                &periods,
            ),
        ));
    }
    outcomes.push((
        "timeline.html",
        std::fs::write(dir.join("timeline.html"), timeline::render(title, ops))
            .map_err(anyhow::Error::from),
    ));
    outcomes.push((
        "anomalies",
        anomalies::write(dir, verdicts).map(|n| {
            if n > 0 {
                log.info(format!("{n} anomalies explained in anomalies/index.html"));
            }
        }),
    ));
    for (name, outcome) in outcomes {
        if let Err(e) = outcome {
            log.info(format!("{name} not written: {e:#}"));
        }
    }
}
