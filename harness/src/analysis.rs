//! Checking a run: right after it, or again later from the store (`harness analyze`), with
//! other models if asked. A run keeps what its checks need beside the history: `test.json`,
//! `final.json` (the final reads and any stalls) and each node's `crud.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use checker::causal;
use checker::convergence::{self, FinalState};
use checker::crud_queue;
use checker::edn::{self, Edn, kw, kw_map};
use checker::history::{Op, OpType, OpValue, Process, pair_txns, read_history};
use checker::list_append;
use checker::max_register;
use checker::verdict::{Validity, Verdict};
use clap::ValueEnum;
use serde_json::{Value, json};

use crate::log::Log;
use crate::perf::Perf;
use crate::report::{self, lag, lag::Topology};
use crate::store;
use crate::stuck;
use crate::workload::{TxnModel, Workload};

/// What the final phase gathered.
#[derive(Default)]
pub struct Finale {
    /// Each participant's final read: the nodes, then PostgreSQL for synced workloads.
    pub finals: Vec<(String, FinalState)>,
    /// Each node's upload queue at the end (local PowerSync workloads).
    pub crud_dumps: BTreeMap<String, Value>,
    /// Waits for quiescence that ran out.
    pub stalls: Vec<Edn>,
}

impl Finale {
    /// Writes the final reads and stalls to `final.json` in `dir` (CRUD dumps are written by
    /// the final phase, per node).
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        let finals: Vec<Value> = self
            .finals
            .iter()
            .map(|(node, state)| json!({ "node": node, "state": state }))
            .collect();
        let stalls: Vec<String> = self.stalls.iter().map(Edn::to_string).collect();
        let text = serde_json::to_string_pretty(&json!({ "finals": finals, "stalls": stalls }))?;
        std::fs::write(dir.join("final.json"), text + "\n")?;
        Ok(())
    }

    /// Reads back what [`Finale::save`] and the final phase wrote in `dir`. Without
    /// `final.json`, every participant's final read is missing (never vacuously there).
    fn load(dir: &Path, nodes: &[String], synced: bool) -> anyhow::Result<Finale> {
        let mut finale = Finale::default();
        let path = dir.join("final.json");
        if !path.exists() {
            finale.finals = nodes.iter().map(|n| (n.clone(), None)).collect();
            if synced {
                finale.finals.push(("postgres".to_owned(), None));
            }
        } else {
            let text = std::fs::read_to_string(&path)?;
            let saved: Value = serde_json::from_str(&text)
                .with_context(|| format!("reading {}", path.display()))?;
            for entry in saved["finals"].as_array().into_iter().flatten() {
                let node = entry["node"].as_str().unwrap_or_default().to_owned();
                let state: FinalState = serde_json::from_value(entry["state"].clone())?;
                finale.finals.push((node, state));
            }
            for stall in saved["stalls"].as_array().into_iter().flatten() {
                let text = stall.as_str().unwrap_or_default();
                finale
                    .stalls
                    .push(edn::parse(text).map_err(anyhow::Error::msg)?);
            }
        }
        for node in nodes {
            if let Ok(text) = std::fs::read_to_string(dir.join(node).join("crud.json")) {
                finale
                    .crud_dumps
                    .insert(node.clone(), serde_json::from_str(&text)?);
            }
        }
        Ok(finale)
    }
}

/// Which checks to run, with which models.
pub struct Plan {
    /// The workload.
    pub workload: Workload,
    /// The client nodes.
    pub nodes: Vec<String>,
    /// Elle's models, when its analysis runs.
    pub models: Vec<&'static str>,
    /// Whether Elle's list-append analysis runs.
    pub list_append: bool,
    /// The transactions the run issued.
    pub txn: TxnModel,
    /// The PostgreSQL clients.
    pub postgres_nodes: Vec<String>,
    /// The number of workers.
    pub concurrency: usize,
    /// Seconds of workload.
    pub time_limit: f64,
    /// Transactions per second asked for.
    pub rate: f64,
    /// The faults named one by one (not through `all`): each must be injected, and take effect,
    /// for the run to count as valid; so must every fault injected.
    pub faults: Vec<String>,
}

/// Checks a run's history, writes `results.edn` and `results.json` in `dir`, logs a summary,
/// and returns the verdict (at best unknown when the run was interrupted).
pub fn check(
    plan: &Plan,
    dir: &Path,
    ops: &[Op],
    finale: &Finale,
    interrupted: bool,
    log: &Log,
) -> anyhow::Result<Validity> {
    let checks = plan.workload.checks(plan.txn);
    let mut verdicts: Vec<(&str, Verdict)> = Vec::new();
    if plan.list_append {
        let started = Instant::now();
        let options = list_append::Options {
            models: plan.models.clone(),
            // Elle does not look for reads of values nobody appended; this suite does.
            anomalies: vec!["garbage-read"],
            cycle_search_timeout: Duration::from_secs(30),
        };
        verdicts.push(("workload", list_append::check(ops, &options)));
        log.info(format!("list-append analysis took {:?}", started.elapsed()));
    }
    let mut valid = Validity::Valid;
    let mut results = Vec::new();
    let paired = pair_txns(ops.iter().cloned());
    let mut other_checks: Vec<(&str, Validity)> = Vec::new();
    if checks.crud_queue {
        let (crud_valid, crud_edn) = check_crud_queues(ops, &plan.nodes, finale);
        valid = valid.and(crud_valid);
        other_checks.push(("crud-queue", crud_valid));
        results.push(("crud-queue", crud_edn));
    }
    if checks.causal || checks.convergence || checks.registers {
        match &paired {
            Ok(txns) if checks.registers => {
                // One client's transactions must also respect real time.
                let realtime = plan.workload.max_nodes() == 1;
                verdicts.push(("registers", max_register::check_sessions(txns, realtime)));
                if checks.convergence {
                    let convergence = max_register::check_convergence(
                        txns,
                        &finale.finals,
                        finale.stalls.clone(),
                    );
                    verdicts.push(("convergence", convergence));
                }
            }
            Ok(txns) => {
                if checks.causal {
                    verdicts.push(("causal", causal::check(txns)));
                }
                if checks.convergence {
                    let convergence =
                        convergence::check(txns, &finale.finals, finale.stalls.clone());
                    verdicts.push(("convergence", convergence));
                }
            }
            Err(e) => verdicts.push((
                "history",
                Verdict::of_findings(BTreeMap::from([(
                    "malformed-history".to_owned(),
                    vec![Edn::Str(e.clone())],
                )])),
            )),
        }
    }
    if plan.workload.synced() {
        let stuck: Vec<Edn> = ops
            .iter()
            .filter(|o| o.process == Process::Named("observer".into()) && o.f == stuck::STUCK)
            .map(|o| match &o.value {
                OpValue::Other(v) => v.clone(),
                OpValue::Txn(_) => Edn::Nil,
            })
            .collect();
        let found = if stuck.is_empty() {
            BTreeMap::new()
        } else {
            BTreeMap::from([("sync-stuck".to_owned(), stuck)])
        };
        verdicts.push(("sync", Verdict::of_findings(found)));
    }
    for (name, verdict) in &verdicts {
        valid = valid.and(verdict.valid);
        results.push((name, verdict.to_edn()));
    }
    if interrupted && valid == Validity::Valid {
        valid = Validity::Unknown;
    }
    let txns = paired.unwrap_or_default();
    let lag = plan.workload.synced().then(|| {
        lag::measure(
            &txns,
            ops,
            &Topology {
                nodes: &plan.nodes,
                postgres_nodes: &plan.postgres_nodes,
                concurrency: plan.concurrency,
                time_limit: plan.time_limit,
            },
        )
    });
    if let Some(lag) = &lag {
        results.push(("replication-lag", lag.to_edn()));
    }
    let perf = Perf::measure(&txns, ops, plan.rate, plan.time_limit, plan.concurrency);
    // Faults that never took effect leave the run untested under them: at best unknown.
    let ineffective = if interrupted {
        Vec::new()
    } else {
        perf.ineffective(&plan.faults)
    };
    if !ineffective.is_empty() {
        valid = valid.and(Validity::Unknown);
        for why in &ineffective {
            log.info(format!("not valid under faults: {why}"));
        }
        results.push((
            "faults-without-effect",
            Edn::Vector(ineffective.iter().cloned().map(Edn::Str).collect()),
        ));
    }
    results.insert(0, ("valid?", valid.to_edn()));
    results.push(("stats", stats(ops)));
    results.push(("perf", perf.to_edn()));
    results.push(("nemesis", perf.nemesis_edn()));
    results.push(("interrupted?", Edn::Bool(interrupted)));
    let results = kw_map(results);
    std::fs::write(dir.join("results.edn"), results.to_pretty_string() + "\n")?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(&results.to_json())? + "\n",
    )?;
    let title = format!(
        "{} {}",
        plan.workload.name(),
        dir.file_name().unwrap_or_default().to_string_lossy()
    );
    let named: Vec<(&str, &Verdict)> = verdicts.iter().map(|(n, v)| (*n, v)).collect();
    report::render(dir, &title, ops, &txns, lag.as_ref(), &named, log);
    let mut checked: Vec<(&str, Validity)> = verdicts.iter().map(|(n, v)| (*n, v.valid)).collect();
    checked.extend(other_checks);
    log.info(perf.summary(lag.as_ref(), &checked, &dir.display().to_string()));
    log.info(summary(&verdicts, valid, dir));
    Ok(valid)
}

/// Options of `harness analyze`.
#[derive(Debug, Clone, clap::Args)]
pub struct AnalyzeOptions {
    /// A run directory, or the index of a run in the store, newest first (0 is the latest).
    #[arg(short = 't', long = "test", default_value = "0")]
    pub test: String,
    /// The store directory.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Check against these models instead of the run's own (runs Elle's analysis).
    #[arg(long, value_delimiter = ',')]
    pub consistency_models: Vec<String>,
}

/// Checks a stored run again without running anything; rewrites its results.
pub fn analyze(options: &AnalyzeOptions) -> anyhow::Result<Validity> {
    let dir = find_run(&options.store, &options.test)?;
    let test: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("test.json")).context("reading test.json")?,
    )?;
    let name = test["workload"]
        .as_str()
        .context("test.json names no workload")?;
    let workload =
        Workload::from_str(name, true).map_err(|e| anyhow::anyhow!("workload {name}: {e}"))?;
    let nodes: Vec<String> = serde_json::from_value(test["nodes"].clone())?;
    let recorded: Vec<String> =
        serde_json::from_value(test["consistency-models"].clone()).unwrap_or_default();
    let asked = if options.consistency_models.is_empty() {
        &recorded
    } else {
        &options.consistency_models
    };
    let models = asked
        .iter()
        .map(|m| {
            checker::models::canonical_model(m)
                .ok_or_else(|| anyhow::anyhow!("unknown consistency model {m:?}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let txn = match test["txn"].as_str() {
        None => TxnModel::ListAppend,
        Some(name) => TxnModel::from_str(name, true)
            .map_err(|e| anyhow::anyhow!("transactions {name}: {e}"))?,
    };
    let postgres_nodes: Vec<String> =
        serde_json::from_value(test["postgres-nodes"].clone()).unwrap_or_default();
    let plan = Plan {
        workload,
        txn,
        concurrency: test["concurrency"]
            .as_u64()
            .map_or(nodes.len() + postgres_nodes.len(), |c| c as usize),
        time_limit: test["time-limit"].as_f64().unwrap_or(f64::MAX),
        rate: test["rate"].as_f64().unwrap_or(0.0),
        faults: test["nemesis-named"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .map(str::to_owned)
            .collect(),
        postgres_nodes,
        list_append: workload.checks(txn).list_append
            || (txn == TxnModel::ListAppend
                && (!options.consistency_models.is_empty()
                    || test["list-append-check"].as_bool().unwrap_or(false))),
        nodes,
        models,
    };
    let history = std::fs::File::open(dir.join("history.edn")).context("opening history.edn")?;
    let ops = read_history(std::io::BufReader::new(history)).context("reading history.edn")?;
    let finale = Finale::load(&dir, &plan.nodes, workload.synced())?;
    let log = Log::create(&dir.join("analysis.log"))?;
    log.info(format!(
        "re-analysing {} ({} operations)",
        dir.display(),
        ops.len()
    ));
    let interrupted = test_was_interrupted(&dir);
    check(&plan, &dir, &ops, &finale, interrupted, &log)
}

/// A run directory: `test` itself, or the `test`-th newest run in `store`.
fn find_run(store: &Path, test: &str) -> anyhow::Result<PathBuf> {
    let path = PathBuf::from(test);
    if path.join("history.edn").exists() {
        return Ok(path);
    }
    let index: usize = test.parse().with_context(|| {
        format!(
            "{test} is neither a run directory nor an index into {}",
            store.display()
        )
    })?;
    store::runs(store)?
        .into_iter()
        .nth(index)
        .map(|run| run.dir)
        .with_context(|| format!("{} holds no run number {index}", store.display()))
}

fn test_was_interrupted(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("results.edn")).is_ok_and(|r| r.contains(":interrupted? true"))
}

fn check_crud_queues(ops: &[Op], nodes: &[String], finale: &Finale) -> (Validity, Edn) {
    let txns = match pair_txns(ops.iter().cloned()) {
        Ok(t) => t,
        Err(e) => return (Validity::Unknown, kw_map([("error", Edn::Str(e))])),
    };
    let final_states: BTreeMap<&String, &BTreeMap<i64, Vec<i64>>> = finale
        .finals
        .iter()
        .filter_map(|(name, state)| Some((name, state.as_ref()?)))
        .collect();
    let mut valid = Validity::Valid;
    let mut per_node = Vec::new();
    for name in nodes {
        let edn = match (finale.crud_dumps.get(name), final_states.get(name).copied()) {
            (Some(dump), Some(state)) => match crud_queue::parse(dump) {
                Ok(queue) => {
                    let v = crud_queue::check(&txns, &queue, state);
                    valid = valid.and(v.valid);
                    v.to_edn()
                }
                Err(e) => {
                    valid = valid.and(Validity::Unknown);
                    kw_map([("valid?", kw("unknown")), ("error", Edn::Str(e))])
                }
            },
            _ => {
                valid = valid.and(Validity::Unknown);
                kw_map([
                    ("valid?", kw("unknown")),
                    (
                        "error",
                        Edn::Str("no final read or CRUD dump from this node".into()),
                    ),
                ])
            }
        };
        per_node.push((kw(name), edn));
    }
    (valid, Edn::Map(per_node))
}

fn stats(ops: &[Op]) -> Edn {
    let count = |kind: OpType| {
        ops.iter()
            .filter(|o| o.kind == kind && matches!(o.value, OpValue::Txn(_)))
            .count() as i64
    };
    kw_map([
        ("count", Edn::Int(count(OpType::Invoke))),
        ("ok-count", Edn::Int(count(OpType::Ok))),
        ("fail-count", Edn::Int(count(OpType::Fail))),
        ("info-count", Edn::Int(count(OpType::Info))),
    ])
}

fn summary(verdicts: &[(&str, Verdict)], valid: Validity, dir: &Path) -> String {
    let headline = match valid {
        Validity::Valid => "Everything looks good! ヽ(‘ー`)ノ",
        Validity::Invalid => "Analysis invalid! (ﾉಥ益ಥ）ﾉ ┻━┻",
        Validity::Unknown => "Errors occurred during analysis, but no anomalies found. ಠ~ಠ",
    };
    let mut text = format!("results in {}/results.edn\n", dir.display());
    let names =
        |s: &std::collections::BTreeSet<&str>| s.iter().copied().collect::<Vec<_>>().join(", ");
    for (name, verdict) in verdicts {
        let types: Vec<&str> = verdict.anomaly_types().collect();
        if types.is_empty() {
            continue;
        }
        text.push_str(&format!("{name}: {}\n", types.join(", ")));
        if !verdict.not.is_empty() {
            text.push_str(&format!(
                "  not: {}\n  also not: {}\n",
                names(&verdict.not),
                names(&verdict.also_not)
            ));
        }
    }
    text.push_str(headline);
    text
}
