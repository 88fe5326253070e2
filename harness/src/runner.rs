//! One test run, start to verdict: start the nodes, drive workers at the requested rate until the
//! time limit, do final reads, stop the nodes, check the history, write the results.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use anyhow::Context;
use checker::edn::{Edn, kw, kw_map};
use checker::history::{Mop, OpType, OpValue, Process};
use checker::verdict::Validity;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::analysis::{self, Finale, Plan};
use crate::client::{Client, Completion};
use crate::generator::Generator;
use crate::interrupt;
use crate::log::Log;
use crate::nemesis::{self, Control, Nemesis};
use crate::netns::Host;
use crate::nodes::{Node, Placement};
use crate::options::TestOptions;
use crate::postgres;
use crate::progress;
use crate::recorder::Recorder;
use crate::store;
use crate::stuck;

/// Runs one test and returns its overall verdict.
pub fn run(options: &TestOptions, endpoint_bin: &Path) -> anyhow::Result<Validity> {
    let workload = options.workload;
    let dir = store::create_run_dir(&options.store, workload.name())?;
    let log = Log::create(&dir.join("jepsen.log"))?;
    log.info(format!("run directory {}", dir.display()));
    std::fs::write(
        dir.join("test.json"),
        serde_json::to_string_pretty(&options.describe())?,
    )?;
    let recorder = Recorder::create(&dir)?;

    if workload.synced() {
        let url = options.sync.postgres_url.as_deref().unwrap_or_default();
        postgres::reset(url)?;
        log.info("PostgreSQL tables emptied");
    }
    // Partitions put each client in a network namespace of its own.
    let (faults, observe_queues) = options.nemesis().map_err(anyhow::Error::msg)?;
    // Faults named one by one must each be injected; `all` asks for whichever apply.
    let faults_asked = if options.nemesis.all {
        Vec::new()
    } else {
        faults.clone()
    };
    let hosts: Vec<Host> = if faults.iter().any(|f| f.partitions()) {
        let (_, postgres_port) = options.sync.ports()?;
        let hosts = options
            .nodes
            .iter()
            .enumerate()
            .map(|(i, name)| Host::create(name, i, &[postgres_port]))
            .collect::<anyhow::Result<Vec<_>>>()?;
        log.info(format!(
            "{} client(s) in network namespaces of their own",
            hosts.len()
        ));
        hosts
    } else {
        Vec::new()
    };
    let (nodes, read_only) = start_nodes(options, endpoint_bin, &dir, &hosts, &log)?;
    let clients = options.nodes.len();
    if workload.synced() {
        catch_up(&nodes[..clients], options, &log)?;
        ensure_clean(&nodes[..clients], options, &log)?;
    }

    let nodes: Vec<Mutex<Node>> = nodes.into_iter().map(Mutex::new).collect();
    let addresses: Vec<String> = nodes
        .iter()
        .map(|n| n.lock().expect("node lock").address.clone())
        .collect();
    let concurrency = options.concurrency.resolve(nodes.len());
    let generator = Mutex::new(Generator::new(
        options.txn,
        options.seed,
        options.key_count,
        options.max_writes_per_key,
        options.max_txn_length,
    ));
    let next_slot = Mutex::new(Instant::now());
    let end = Instant::now() + Duration::from_secs_f64(options.time_limit);
    let highest_process = AtomicI64::new(concurrency as i64 - 1);
    let workload_done = AtomicBool::new(false);
    // PostgreSQL is watched through the final phase, so late uploads are seen too.
    let final_phase_done = AtomicBool::new(false);
    let fault_state = Mutex::new(String::new());
    let workload_started = Instant::now();
    log.info(format!(
        "{} workers on {} node(s), {} txn/s for {} s; nemesis: {}",
        concurrency,
        nodes.len(),
        options.rate,
        options.time_limit,
        if faults.is_empty() {
            "none".to_owned()
        } else {
            faults
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(", ")
        }
    ));
    let finale = std::thread::scope(|scope| -> anyhow::Result<Finale> {
        let (control, orders) = mpsc::channel();
        let nemesis = Nemesis {
            nodes: &nodes[..clients],
            faults,
            interval: Duration::from_secs_f64(options.nemesis_interval),
            recorder: &recorder,
            log: &log,
            rng: nemesis::rng(options.seed),
            deck: Vec::new(),
            state: &fault_state,
            hosts: &hosts,
            ports: if hosts.is_empty() {
                (0, 0)
            } else {
                options.sync.ports()?
            },
        };
        let nemesis = scope.spawn(move || nemesis.run(orders));
        let progress = progress::enabled().then(|| {
            scope.spawn(|| {
                progress::show(
                    &recorder,
                    workload_started,
                    options.time_limit,
                    &fault_state,
                    &workload_done,
                )
            })
        });
        let watcher = workload.synced().then(|| {
            let url = options.sync.postgres_url.as_deref().unwrap_or_default();
            scope.spawn(|| postgres::watch(url, &recorder, &final_phase_done, &log))
        });
        let stuck_watch = workload.synced().then(|| {
            scope.spawn(|| {
                stuck::watch(
                    &nodes[..clients],
                    &recorder,
                    &fault_state,
                    &workload_done,
                    options.unstick,
                    &log,
                )
            })
        });
        let observer = observe_queues.then(|| {
            scope.spawn(|| {
                nemesis::observe_upload_queues(&nodes[..clients], &recorder, &workload_done)
            })
        });
        let workers: Vec<_> = (0..concurrency)
            .map(|w| {
                let worker = Worker {
                    id: w,
                    concurrency,
                    client: Client::new(&addresses[w % addresses.len()], options.op_timeout()),
                    read_only: read_only[w % read_only.len()],
                    recorder: &recorder,
                    generator: &generator,
                    next_slot: &next_slot,
                    rate: options.rate,
                    end,
                    highest_process: &highest_process,
                    rng: StdRng::seed_from_u64(options.seed.wrapping_add(w as u64 + 1)),
                };
                scope.spawn(move || worker.run())
            })
            .collect();
        for handle in workers {
            handle.join().expect("worker panicked")?;
        }
        workload_done.store(true, Ordering::SeqCst);
        if let Some(progress) = progress {
            progress.join().expect("progress line panicked");
        }
        if let Some(observer) = observer {
            observer.join().expect("observer panicked")?;
        }
        if let Some(stuck_watch) = stuck_watch {
            stuck_watch.join().expect("sync watcher panicked")?;
        }
        let (healed, wait_healed) = mpsc::channel();
        if control.send(Control::Heal(healed)).is_ok() {
            let _ = wait_healed.recv();
        }
        let finale = if interrupt::interrupted() {
            log.info("interrupted: skipping the final phase; the history so far is kept");
            Ok(Finale::default())
        } else {
            let reads = {
                let generator = generator.lock().expect("generator lock");
                generator.read_all(generator.keys())
            };
            let next_process = highest_process.load(Ordering::SeqCst) + 1;
            final_phase(
                options,
                &nodes,
                clients,
                &recorder,
                &log,
                next_process,
                &reads,
            )
        };
        final_phase_done.store(true, Ordering::SeqCst);
        if let Some(watcher) = watcher {
            watcher.join().expect("PostgreSQL watcher panicked")?;
        }
        let finale = finale?;
        for node in &nodes {
            node.lock().expect("node lock").stop()?;
        }
        let _ = control.send(Control::Exit);
        nemesis.join().expect("nemesis panicked")?;
        Ok(finale)
    })?;
    drop(nodes);
    recorder.sync()?;

    finale.save(&dir)?;
    let ops = recorder.ops();
    log.info(format!("{} operations recorded; checking", ops.len()));
    let plan = Plan {
        workload,
        nodes: options.nodes.clone(),
        models: options.models()?,
        list_append: options.checks_list_append(),
        txn: options.txn,
        postgres_nodes: options.postgres_nodes.clone(),
        concurrency,
        time_limit: options.time_limit,
        rate: options.rate,
        faults: faults_asked.iter().map(|f| f.name().to_owned()).collect(),
    };
    analysis::check(&plan, &dir, &ops, &finale, interrupt::interrupted(), &log)
}

/// Starts the clients under test (inside their namespaces, when there are `hosts`), then the
/// PostgreSQL clients; returns them with whether each only reads.
fn start_nodes(
    options: &TestOptions,
    endpoint_bin: &Path,
    dir: &Path,
    hosts: &[Host],
    log: &Log,
) -> anyhow::Result<(Vec<Node>, Vec<bool>)> {
    let workload = options.workload;
    let sync_args = if workload.synced() {
        options.sync.endpoint_args().map_err(anyhow::Error::msg)?
    } else {
        Vec::new()
    };
    let postgres_args = vec![
        "--postgres-url".to_owned(),
        options.sync.postgres_url.clone().unwrap_or_default(),
    ];
    let (clients_read_only, postgres_read_only) = workload.read_only();
    let mut nodes = Vec::new();
    let mut read_only = Vec::new();
    for (names, backend, args, ro) in [
        (
            &options.nodes,
            workload.backend(),
            &sync_args,
            clients_read_only,
        ),
        (
            &options.postgres_nodes,
            "postgres",
            &postgres_args,
            postgres_read_only,
        ),
    ] {
        for name in names {
            let (args, placement) = match hosts.get(nodes.len()) {
                Some(host) => (
                    options
                        .sync
                        .endpoint_args_via(&host.host_ip())
                        .map_err(anyhow::Error::msg)?,
                    Placement {
                        prefix: host.exec_prefix(),
                        listen: Some(format!("{}:0", host.node_ip())),
                    },
                ),
                None => (args.clone(), Placement::default()),
            };
            let node = Node::start(endpoint_bin, backend, name, dir, &args, &placement)?;
            let role = if ro { ", read-only" } else { "" };
            log.info(format!(
                "node {} ({backend}{role}) up at {}",
                node.name, node.address
            ));
            nodes.push(node);
            read_only.push(ro);
        }
    }
    Ok((nodes, read_only))
}

/// Waits until every client has applied a checkpoint requested now, so that it holds what
/// PostgreSQL holds after the reset: a first sync alone may deliver a checkpoint the service
/// took before the reset's TRUNCATE, and the run would read the previous run's values.
fn catch_up(clients: &[Node], options: &TestOptions, log: &Log) -> anyhow::Result<()> {
    let wait_ms = (options.sync.quiesce_timeout * 1000.0) as u64;
    let timeout = Duration::from_secs_f64(options.sync.quiesce_timeout + 30.0);
    for node in clients {
        let started = Instant::now();
        Client::new(&node.address, timeout)
            .post_json(&format!("/db-api/downloading-wait?timeout_ms={wait_ms}"))
            .with_context(|| format!("{} did not catch up with PostgreSQL", node.name))?;
        log.info(format!(
            "{}: caught up with PostgreSQL in {:?}",
            node.name,
            started.elapsed()
        ));
    }
    Ok(())
}

/// After the reset and every client's first checkpoint, every client and PostgreSQL must hold
/// nothing: anything else was left by an earlier run, and the run would judge that instead of
/// the system. Stops the run before the workload (exit 2) naming the node and the keys.
fn ensure_clean(clients: &[Node], options: &TestOptions, log: &Log) -> anyhow::Result<()> {
    let url = options.sync.postgres_url.as_deref().unwrap_or_default();
    let (lists, registers) = postgres::keys(url)?;
    let mut holdings = vec![(
        "PostgreSQL".to_owned(),
        lists.iter().map(i64::to_string).collect(),
        registers.iter().map(i64::to_string).collect(),
    )];
    for node in clients {
        let contents = Client::new(&node.address, Duration::from_secs(30))
            .get_json("/db-api/contents")
            .with_context(|| format!("reading what {} holds", node.name))?;
        let keys = |table: &str| -> Vec<String> {
            contents[table]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        holdings.push((node.name.clone(), keys("lists"), keys("registers")));
    }
    match leftovers(&holdings) {
        None => {
            log.info("every client and PostgreSQL start empty");
            Ok(())
        }
        Some(message) => {
            log.info(&message);
            anyhow::bail!(message)
        }
    }
}

/// What participants hold at the start, as `(name, list keys, register keys)`, said as an
/// error when any holds something.
fn leftovers(holdings: &[(String, Vec<String>, Vec<String>)]) -> Option<String> {
    let dirty: Vec<String> = holdings
        .iter()
        .filter(|(_, lists, registers)| !lists.is_empty() || !registers.is_empty())
        .map(|(name, lists, registers)| {
            format!("{name} holds lists {lists:?} and registers {registers:?}")
        })
        .collect();
    (!dirty.is_empty()).then(|| {
        format!(
            "the run does not start clean after every client's first checkpoint: {}. These \
             are an earlier run's data (the service served a checkpoint from before the \
             reset); no verdict on the system is given",
            dirty.join("; ")
        )
    })
}

struct Worker<'a> {
    id: usize,
    concurrency: usize,
    client: Client,
    /// Whether its node only reads.
    read_only: bool,
    recorder: &'a Recorder,
    generator: &'a Mutex<Generator>,
    next_slot: &'a Mutex<Instant>,
    rate: f64,
    end: Instant,
    highest_process: &'a AtomicI64,
    rng: StdRng,
}

impl Worker<'_> {
    /// Issues transactions until the time limit, as Jepsen's workers do: an indeterminate
    /// completion retires the process and the worker continues as a new one.
    fn run(mut self) -> anyhow::Result<()> {
        let mut process = self.id as i64;
        loop {
            let slot = {
                let mut next = self.next_slot.lock().expect("schedule lock");
                let slot = (*next).max(Instant::now());
                let gap = self.rng.random_range(0.0..2.0 / self.rate);
                *next = slot + Duration::from_secs_f64(gap);
                slot
            };
            if slot >= self.end || interrupt::interrupted() {
                return Ok(());
            }
            std::thread::sleep(slot.saturating_duration_since(Instant::now()));
            let mops = self
                .generator
                .lock()
                .expect("generator lock")
                .next_txn(self.read_only);
            let p = Process::Client(process);
            self.recorder.record(
                p.clone(),
                OpType::Invoke,
                "txn",
                OpValue::Txn(mops.clone()),
                None,
            )?;
            match self.client.txn(&mops) {
                Completion::Ok(done) => {
                    self.recorder
                        .record(p, OpType::Ok, "txn", OpValue::Txn(done), None)?;
                }
                Completion::Fail(e) => {
                    self.recorder
                        .record(p, OpType::Fail, "txn", OpValue::Txn(mops), Some(e))?;
                }
                Completion::Info(e) => {
                    self.recorder
                        .record(p, OpType::Info, "txn", OpValue::Txn(mops), Some(e))?;
                    process += self.concurrency as i64;
                    self.highest_process.fetch_max(process, Ordering::SeqCst);
                }
            }
        }
    }
}

/// Reads every key the run may have written (`reads`), in one transaction through `read`,
/// recorded like any other; returns the state read, if the read committed: each key's list, or
/// its register as a list of at most one value.
fn final_read(
    recorder: &Recorder,
    process: i64,
    reads: &[Mop],
    read: impl FnOnce(&[Mop]) -> Completion,
) -> anyhow::Result<Option<BTreeMap<i64, Vec<i64>>>> {
    let mops = reads.to_vec();
    let p = Process::Client(process);
    recorder.record(
        p.clone(),
        OpType::Invoke,
        "txn",
        OpValue::Txn(mops.clone()),
        None,
    )?;
    Ok(match read(&mops) {
        Completion::Ok(done) => {
            let state = done
                .iter()
                .filter_map(|m| match m {
                    Mop::Read {
                        key,
                        value: Some(list),
                    } => Some((*key, list.clone())),
                    Mop::ReadRegister { key, value } => {
                        Some((*key, value.iter().copied().collect()))
                    }
                    _ => None,
                })
                .collect();
            recorder.record(p, OpType::Ok, "txn", OpValue::Txn(done), None)?;
            Some(state)
        }
        Completion::Fail(e) => {
            recorder.record(p, OpType::Fail, "txn", OpValue::Txn(mops), Some(e))?;
            None
        }
        Completion::Info(e) => {
            recorder.record(p, OpType::Info, "txn", OpValue::Txn(mops), Some(e))?;
            None
        }
    })
}

/// After the workload: for synced workloads, wait until every client's uploads drain, then until
/// each has applied a fresh checkpoint (a wait that runs out is a stall, a finding); then every
/// node's final read, and PostgreSQL's; for local PowerSync nodes, their upload queue.
fn final_phase(
    options: &TestOptions,
    nodes: &[Mutex<Node>],
    clients: usize,
    recorder: &Recorder,
    log: &Log,
    first_process: i64,
    reads: &[Mop],
) -> anyhow::Result<Finale> {
    let workload = options.workload;
    let mut finale = Finale::default();
    let wait_ms = (options.sync.quiesce_timeout * 1000.0) as u64;
    let mut process = first_process;
    let timeout = Duration::from_secs_f64(options.sync.quiesce_timeout + 30.0);
    // Every client's uploads must be in PostgreSQL before any client's barrier, and every
    // barrier passed before any final read: otherwise a node read early misses what another
    // uploaded late.
    if workload.synced() {
        // Healing includes reconnecting, as the original Jepsen suite does: a client whose
        // sync is stuck (reported by the watcher during the workload) starts afresh.
        for node in &nodes[..clients] {
            let node = node.lock().expect("node lock");
            match Client::new(&node.address, Duration::from_secs(30)).post_json("/db-api/connect") {
                Ok(_) => log.info(format!("{}: reconnected for the final phase", node.name)),
                Err(e) => log.info(format!("{}: reconnecting failed: {e:#}", node.name)),
            }
        }
        for route in ["upload-queue-wait", "downloading-wait"] {
            for node in &nodes[..clients] {
                let node = node.lock().expect("node lock");
                let client = Client::new(&node.address, timeout);
                let started = Instant::now();
                match client.post_json(&format!("/db-api/{route}?timeout_ms={wait_ms}")) {
                    Ok(_) => log.info(format!(
                        "{}: {route} done in {:?}",
                        node.name,
                        started.elapsed()
                    )),
                    Err(e) => {
                        log.info(format!("{}: {route} stalled: {e:#}", node.name));
                        finale.stalls.push(kw_map([
                            ("node", Edn::Str(node.name.clone())),
                            ("wait", kw(route)),
                            ("error", Edn::Str(format!("{e:#}"))),
                        ]));
                    }
                }
            }
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        let node = node.lock().expect("node lock");
        let is_client = i < clients;
        let client = Client::new(&node.address, timeout);
        let state = final_read(recorder, process, reads, |mops| client.txn(mops))?;
        process += 1;
        if state.is_none() {
            log.info(format!("final read on {} did not complete", node.name));
        }
        // A PostgreSQL client's final read is PostgreSQL's, which is read directly below.
        if is_client {
            finale.finals.push((node.name.clone(), state));
        }
        if workload.checks(options.txn).crud_queue {
            let dump = client
                .get_json("/db-api/crud")
                .context("fetching the CRUD queue")?;
            std::fs::write(
                node.dir.join("crud.json"),
                serde_json::to_string_pretty(&dump)?,
            )?;
            finale.crud_dumps.insert(node.name.clone(), dump);
        }
    }
    if workload.synced() {
        let url = options.sync.postgres_url.as_deref().unwrap_or_default();
        let state = final_read(recorder, process, reads, |mops| match postgres::final_read(
            url, mops,
        ) {
            Ok(done) => Completion::Ok(done),
            Err(e) => Completion::Fail(format!("{e:#}")),
        })?;
        if state.is_none() {
            log.info("the final read on PostgreSQL failed");
        }
        finale.finals.push(("postgres".to_owned(), state));
    }
    Ok(finale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_with_leftovers_names_who_holds_what() {
        let clean = vec![
            ("PostgreSQL".to_owned(), vec![], vec![]),
            ("n1".to_owned(), vec![], vec![]),
        ];
        assert_eq!(leftovers(&clean), None);
        let dirty = vec![
            ("PostgreSQL".to_owned(), vec![], vec![]),
            ("n1".to_owned(), vec!["3".to_owned()], vec![]),
        ];
        let message = leftovers(&dirty).unwrap();
        assert!(message.contains("n1 holds lists [\"3\"]"), "{message}");
        assert!(!message.contains("PostgreSQL holds"), "{message}");
    }
}
