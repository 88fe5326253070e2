//! Faults, as Jepsen's nemesis injects them: a thread that, every `--nemesis-interval`, either
//! starts a fault on a random node or ends the one in progress, recording both in the history as
//! the `:nemesis` process; and an observer that records each node's upload-queue size.
//!
//! The nemesis thread restarts nodes, and a node started by a thread dies with that thread
//! (PDEATHSIG), so it lives until the nodes are stopped: the runner tells it to heal, then to
//! exit.

use std::str::FromStr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::Duration;

use checker::edn::{Edn, kw, kw_map};
use checker::history::{OpType, OpValue, Process};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::client::Client;
use crate::log::Log;
use crate::netns::{self, Host};
use crate::nodes::Node;
use crate::recorder::Recorder;

/// A fault the nemesis can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL the endpoint, then restart it on the same database file.
    Kill,
    /// SIGSTOP the endpoint, then SIGCONT.
    Pause,
    /// Stop the endpoint gracefully (SIGTERM), then start it again.
    StopStart,
    /// Disconnect the SDK once its upload queue is empty, then connect again.
    DisconnectOrderly,
    /// Disconnect the SDK at any moment, then connect again.
    DisconnectRandom,
    /// Drop the node's packets to and from the PowerSync service, then heal.
    PartitionSync,
    /// Drop the node's packets to and from PostgreSQL, then heal.
    PartitionPostgres,
    /// Both.
    PartitionBoth,
}

impl Fault {
    /// Every fault, in the order `all` lists them.
    const ALL: [Fault; 8] = [
        Fault::Kill,
        Fault::Pause,
        Fault::StopStart,
        Fault::DisconnectOrderly,
        Fault::DisconnectRandom,
        Fault::PartitionSync,
        Fault::PartitionPostgres,
        Fault::PartitionBoth,
    ];

    /// The name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Kill => "kill",
            Fault::Pause => "pause",
            Fault::StopStart => "stop-start",
            Fault::DisconnectOrderly => "disconnect-orderly",
            Fault::DisconnectRandom => "disconnect-random",
            Fault::PartitionSync => "partition-sync",
            Fault::PartitionPostgres => "partition-postgres",
            Fault::PartitionBoth => "partition-both",
        }
    }

    /// Whether it needs each client in a network namespace of its own.
    pub fn partitions(self) -> bool {
        matches!(
            self,
            Fault::PartitionSync | Fault::PartitionPostgres | Fault::PartitionBoth
        )
    }

    /// Whether it needs nodes synced through the service.
    pub fn needs_sync(self) -> bool {
        matches!(self, Fault::DisconnectOrderly | Fault::DisconnectRandom) || self.partitions()
    }

    /// Whether a nemesis operation's `:f` starts a fault (and which).
    pub fn started_by(f: &str) -> Option<Fault> {
        Fault::ALL
            .into_iter()
            .find(|fault| fault.functions().0 == f)
    }

    /// Whether a nemesis operation's `:f` ends a fault.
    pub fn is_end(f: &str) -> bool {
        Fault::ALL.iter().any(|fault| fault.functions().1 == f)
    }

    /// The history's `:f` for the fault's start and its end.
    fn functions(self) -> (&'static str, &'static str) {
        match self {
            Fault::Kill => ("kill", "start"),
            Fault::Pause => ("pause", "resume"),
            Fault::StopStart => ("stop", "start"),
            Fault::DisconnectOrderly | Fault::DisconnectRandom => ("disconnect", "connect"),
            Fault::PartitionSync | Fault::PartitionPostgres | Fault::PartitionBoth => {
                (self.name(), "heal-partition")
            }
        }
    }
}

/// What `--nemesis` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NemesisSpec {
    /// The faults to inject; `all` means every one the workload supports.
    pub faults: Vec<Fault>,
    /// Whether `all` was given.
    pub all: bool,
    /// Whether to record upload-queue sizes.
    pub upload_queue: bool,
}

impl FromStr for NemesisSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut spec = NemesisSpec::default();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "none" => {}
                "all" => {
                    spec.all = true;
                    spec.upload_queue = true;
                }
                "upload-queue" => spec.upload_queue = true,
                other => match Fault::ALL.iter().find(|f| f.name() == other) {
                    Some(&f) if !spec.faults.contains(&f) => spec.faults.push(f),
                    Some(_) => {}
                    None => {
                        let known: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
                        return Err(format!(
                            "unknown nemesis {other:?}; known: {}, upload-queue, all, none",
                            known.join(", ")
                        ));
                    }
                },
            }
        }
        Ok(spec)
    }
}

impl NemesisSpec {
    /// The faults to inject for a workload: `all` keeps those it supports; asking explicitly
    /// for one it does not support is an error.
    pub fn resolve(&self, synced: bool, powersync: bool) -> Result<(Vec<Fault>, bool), String> {
        if let Some(f) = self.faults.iter().find(|f| f.needs_sync() && !synced) {
            return Err(format!("{} needs a workload whose nodes sync", f.name()));
        }
        if self.upload_queue && !self.all && !powersync {
            return Err("upload-queue needs PowerSync nodes".into());
        }
        let partitions = netns::check_support();
        if let (Some(f), Err(why)) = (self.faults.iter().find(|f| f.partitions()), &partitions) {
            return Err(format!("{}: {why}; refused rather than faked", f.name()));
        }
        let mut faults = self.faults.clone();
        if self.all {
            faults = Fault::ALL
                .into_iter()
                .filter(|f| synced || !f.needs_sync())
                .filter(|f| partitions.is_ok() || !f.partitions())
                .collect();
        }
        Ok((faults, self.upload_queue && powersync))
    }
}

/// What the runner tells the nemesis thread.
pub enum Control {
    /// End every fault in progress, then say so on the sender.
    Heal(Sender<()>),
    /// Return: the nodes are stopped.
    Exit,
}

/// The nemesis: faults on `nodes` every `interval`.
pub struct Nemesis<'a> {
    /// The nodes, shared with the runner.
    pub nodes: &'a [Mutex<Node>],
    /// The faults to choose from.
    pub faults: Vec<Fault>,
    /// Time between a fault's start and its end, and between faults.
    pub interval: Duration,
    /// Where its operations go.
    pub recorder: &'a Recorder,
    /// The run's log.
    pub log: &'a Log,
    /// Each client's namespace, when partitions are among the faults.
    pub hosts: &'a [Host],
    /// The ports of the PowerSync service and of PostgreSQL, as the clients reach them.
    pub ports: (u16, u16),
    /// Its randomness.
    pub rng: StdRng,
    /// The fault in progress, for the progress line.
    pub state: &'a Mutex<String>,
    /// The faults still to inject before any repeats: each is injected once, in a random
    /// order, before the next round, so a run long enough for N faults injects all N.
    pub deck: Vec<Fault>,
}

/// A fault in progress, with what it changed: the endpoint's process and database file before.
struct Active {
    fault: Fault,
    node: usize,
    pid: u32,
    inode: Option<u64>,
}

/// Evidence that a fault operation did what it says, or why it did not (or failed).
type Effect = anyhow::Result<String>;

/// How long an effect may take to show.
const EFFECT_WAIT: Duration = Duration::from_secs(5);

/// How long a reconnecting SDK may take to say it is connected.
const CONNECT_WAIT: Duration = Duration::from_secs(30);

/// Polls `check` every 50 ms for up to `wait`.
fn eventually(wait: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + wait;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A process's state letter in /proc (`R`, `S`, `T` stopped, `Z`...), or `None` once it is gone.
fn process_state(pid: u32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

fn inode(path: &std::path::Path) -> Option<u64> {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).ok()?).into()
}

/// The node's SDK status field `field`, if it answers.
fn sdk_flag(address: &str, field: &str) -> Option<bool> {
    Client::new(address, Duration::from_secs(2))
        .get_json("/db-api/status")
        .ok()?
        .get(field)?
        .as_bool()
}

fn answers(address: &str) -> bool {
    Client::new(address, Duration::from_secs(2))
        .get_json("/health")
        .is_ok()
}

impl Nemesis<'_> {
    /// Alternates starting and ending faults until told to heal, then waits to exit.
    pub fn run(mut self, control: Receiver<Control>) -> anyhow::Result<()> {
        let mut active: Option<Active> = None;
        loop {
            let jitter = self.rng.random_range(0.5..1.5);
            match control.recv_timeout(self.interval.mul_f64(jitter)) {
                Err(RecvTimeoutError::Timeout) if self.faults.is_empty() => {}
                Err(RecvTimeoutError::Timeout) => {
                    active = match active.take() {
                        Some(fault) => {
                            self.end(&fault)?;
                            None
                        }
                        None => Some(self.start()?),
                    };
                }
                Ok(Control::Heal(done)) => {
                    if let Some(fault) = active.take() {
                        self.end(&fault)?;
                    }
                    let _ = done.send(());
                    let _ = control.recv();
                    return Ok(());
                }
                Ok(Control::Exit) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        }
    }

    fn record(
        &self,
        kind: OpType,
        f: &str,
        value: Edn,
        error: Option<String>,
    ) -> anyhow::Result<()> {
        self.recorder.record(
            Process::Named("nemesis".into()),
            kind,
            f,
            OpValue::Other(value),
            error,
        )?;
        Ok(())
    }

    fn start(&mut self) -> anyhow::Result<Active> {
        if self.deck.is_empty() {
            self.deck = self.faults.clone();
            self.deck.shuffle(&mut self.rng);
        }
        let fault = self.deck.pop().expect("the deck was just filled");
        let node = self.rng.random_range(0..self.nodes.len());
        let (f, _) = fault.functions();
        let mut guard = self.nodes[node].lock().expect("node lock");
        let name = guard.name.clone();
        let (pid, address) = (guard.pid(), guard.address.clone());
        let inode = inode(&guard.database());
        *self.state.lock().expect("state lock") = format!("{f} {name}");
        self.record(
            OpType::Invoke,
            f,
            Edn::Vector(vec![Edn::Str(name.clone())]),
            None,
        )?;
        let gone = |what: &str| -> Effect {
            if eventually(EFFECT_WAIT, || process_state(pid).is_none()) {
                Ok(format!("{what}: pid {pid} is gone"))
            } else {
                anyhow::bail!("no effect: pid {pid} still runs")
            }
        };
        let effect: Effect = match fault {
            Fault::Kill => guard.kill().and_then(|()| gone("killed")),
            Fault::StopStart => guard.stop().and_then(|()| gone("stopped")),
            Fault::Pause => guard.signal(libc::SIGSTOP).and_then(|()| {
                if eventually(EFFECT_WAIT, || process_state(pid) == Some('T')) {
                    Ok(format!("pid {pid} is stopped (state T)"))
                } else {
                    anyhow::bail!(
                        "no effect: pid {pid} is in state {:?}, not T",
                        process_state(pid)
                    )
                }
            }),
            Fault::DisconnectOrderly | Fault::DisconnectRandom => {
                let client = Client::new(&address, Duration::from_secs(70));
                let ready = if fault == Fault::DisconnectOrderly {
                    client
                        .post_json("/db-api/upload-queue-wait?timeout_ms=60000")
                        .map(|_| ())
                } else {
                    Ok(())
                };
                ready
                    .and_then(|()| client.post_json("/db-api/disconnect").map(|_| ()))
                    .and_then(|()| {
                        let disconnected = || {
                            sdk_flag(&address, "connected") == Some(false)
                                && sdk_flag(&address, "connecting") == Some(false)
                        };
                        if eventually(EFFECT_WAIT, disconnected) {
                            Ok("the SDK's status says disconnected".to_owned())
                        } else {
                            anyhow::bail!("no effect: the SDK still says connected or connecting")
                        }
                    })
            }
            Fault::PartitionSync | Fault::PartitionPostgres | Fault::PartitionBoth => {
                let ports = self.partition_ports(fault);
                self.host(node)
                    .and_then(|h| h.partition(&ports).map(|()| h))
                    .and_then(|h| {
                        let open: Vec<u16> =
                            ports.iter().copied().filter(|&p| h.reaches(p)).collect();
                        if open.is_empty() {
                            Ok(format!(
                                "a probe from the namespace to port(s) {ports:?} fails"
                            ))
                        } else {
                            anyhow::bail!(
                                "no effect: port(s) {open:?} still reachable from the namespace"
                            )
                        }
                    })
            }
        };
        drop(guard);
        self.completed(fault, f, &name, effect)?;
        Ok(Active {
            fault,
            node,
            pid,
            inode,
        })
    }

    fn end(&self, active: &Active) -> anyhow::Result<()> {
        let (_, f) = active.fault.functions();
        let mut guard = self.nodes[active.node].lock().expect("node lock");
        let name = guard.name.clone();
        let address = guard.address.clone();
        self.state.lock().expect("state lock").clear();
        self.record(
            OpType::Invoke,
            f,
            Edn::Vector(vec![Edn::Str(name.clone())]),
            None,
        )?;
        let effect: Effect = match active.fault {
            Fault::Kill | Fault::StopStart => guard.restart().and_then(|()| {
                let (pid, inode) = (guard.pid(), inode(&guard.database()));
                if pid == active.pid || process_state(active.pid).is_some() {
                    anyhow::bail!("no effect: pid {} still runs", active.pid)
                } else if inode != active.inode {
                    anyhow::bail!(
                        "the database file changed (inode {inode:?}, was {:?})",
                        active.inode
                    )
                } else if !answers(&address) {
                    anyhow::bail!("pid {pid} does not answer /health")
                } else {
                    Ok(format!(
                        "pid {pid} serves /health on the same database file (inode {})",
                        inode.unwrap_or_default()
                    ))
                }
            }),
            Fault::Pause => guard.signal(libc::SIGCONT).and_then(|()| {
                let pid = active.pid;
                if eventually(EFFECT_WAIT, || process_state(pid).is_some_and(|s| s != 'T'))
                    && answers(&address)
                {
                    Ok(format!("pid {pid} runs and answers again"))
                } else {
                    anyhow::bail!("no effect: pid {pid} is in state {:?}", process_state(pid))
                }
            }),
            Fault::DisconnectOrderly | Fault::DisconnectRandom => {
                Client::new(&address, Duration::from_secs(10))
                    .post_json("/db-api/connect")
                    .map(|_| ())
                    .and_then(|()| {
                        if eventually(CONNECT_WAIT, || {
                            sdk_flag(&address, "connected") == Some(true)
                        }) {
                            Ok("the SDK's status says connected".to_owned())
                        } else {
                            anyhow::bail!(
                                "not connected again within {CONNECT_WAIT:?}: {}",
                                Client::new(&address, Duration::from_secs(2))
                                    .get_json("/db-api/status")
                                    .map_or_else(|e| format!("{e:#}"), |v| v.to_string())
                            )
                        }
                    })
            }
            Fault::PartitionSync | Fault::PartitionPostgres | Fault::PartitionBoth => {
                let ports = self.partition_ports(active.fault);
                self.host(active.node)
                    .and_then(|h| h.heal().map(|()| h))
                    .and_then(|h| {
                        if eventually(EFFECT_WAIT, || ports.iter().all(|&p| h.reaches(p))) {
                            Ok(format!(
                                "a probe from the namespace to port(s) {ports:?} succeeds"
                            ))
                        } else {
                            anyhow::bail!("port(s) {ports:?} still unreachable after healing")
                        }
                    })
            }
        };
        drop(guard);
        self.completed(active.fault, f, &name, effect)
    }

    /// The ports a partition fault blocks.
    fn partition_ports(&self, fault: Fault) -> Vec<u16> {
        match fault {
            Fault::PartitionSync => vec![self.ports.0],
            Fault::PartitionPostgres => vec![self.ports.1],
            _ => vec![self.ports.0, self.ports.1],
        }
    }

    fn host(&self, node: usize) -> anyhow::Result<&Host> {
        self.hosts
            .get(node)
            .ok_or_else(|| anyhow::anyhow!("node {node} runs in no network namespace"))
    }

    /// Logs a fault operation's outcome and records its completion: the node, the fault,
    /// whether it took effect and the evidence, with the error if it did not.
    fn completed(&self, fault: Fault, f: &str, name: &str, effect: Effect) -> anyhow::Result<()> {
        let (effective, evidence, error) = match effect {
            Ok(evidence) => (true, evidence, None),
            Err(e) => (false, String::new(), Some(format!("{e:#}"))),
        };
        let outcome = error
            .as_deref()
            .map_or_else(|| format!(": {evidence}"), |e| format!(" failed: {e}"));
        self.log.info(format!("nemesis: {f} {name}{outcome}"));
        let value = kw_map([
            ("node", Edn::Str(name.to_owned())),
            ("fault", kw(fault.name())),
            ("effective", Edn::Bool(effective)),
            ("evidence", Edn::Str(evidence)),
        ]);
        self.record(OpType::Info, f, value, error)
    }
}

/// Records each node's upload-queue size every second until `stop` is set.
pub fn observe_upload_queues(
    nodes: &[Mutex<Node>],
    recorder: &Recorder,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let clients = Node::clients(nodes, Duration::from_secs(2));
    while !stop.load(Ordering::SeqCst) {
        let sizes: Vec<(Edn, Edn)> = clients
            .iter()
            .map(|(name, client)| {
                let size = client
                    .get_json("/db-api/upload-queue-count")
                    .ok()
                    .and_then(|v| v.get("count").and_then(Value::as_i64))
                    .map_or(Edn::Nil, Edn::Int);
                (Edn::Str(name.clone()), size)
            })
            .collect();
        recorder.record(
            Process::Named("observer".into()),
            OpType::Info,
            "upload-queue",
            OpValue::Other(Edn::Map(sizes)),
            None,
        )?;
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(())
}

/// Seeds the nemesis's randomness from the run's seed.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ 0x006e_656d_6573_6973)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_nemesis_lists() {
        let spec: NemesisSpec = "kill,pause,kill".parse().unwrap();
        assert_eq!(spec.faults, vec![Fault::Kill, Fault::Pause]);
        assert_eq!(
            "none".parse::<NemesisSpec>().unwrap(),
            NemesisSpec::default()
        );
        assert!(
            "bogus"
                .parse::<NemesisSpec>()
                .unwrap_err()
                .contains("unknown nemesis")
        );
        let partition: NemesisSpec = "partition-sync".parse().unwrap();
        assert!(
            partition
                .resolve(false, true)
                .unwrap_err()
                .contains("needs a workload whose nodes sync")
        );
        match netns::check_support() {
            Ok(()) => assert_eq!(
                partition.resolve(true, true).unwrap().0,
                vec![Fault::PartitionSync]
            ),
            Err(_) => assert!(
                partition
                    .resolve(true, true)
                    .unwrap_err()
                    .contains("refused rather than faked")
            ),
        }
    }

    #[test]
    fn resolves_against_the_workload() {
        let all: NemesisSpec = "all".parse().unwrap();
        assert_eq!(
            all.resolve(false, false).unwrap(),
            (vec![Fault::Kill, Fault::Pause, Fault::StopStart], false)
        );
        let expected = if netns::check_support().is_ok() { 8 } else { 5 };
        assert_eq!(all.resolve(true, true).unwrap().0.len(), expected);
        let disconnect: NemesisSpec = "disconnect-random".parse().unwrap();
        assert!(disconnect.resolve(false, true).is_err());
        let queue: NemesisSpec = "upload-queue".parse().unwrap();
        assert!(queue.resolve(false, false).is_err());
        assert_eq!(queue.resolve(false, true).unwrap(), (vec![], true));
    }
}
