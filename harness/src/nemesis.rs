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

use checker::edn::Edn;
use checker::history::{OpType, OpValue, Process};
use rand::rngs::StdRng;
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
}

/// A fault in progress.
struct Active {
    fault: Fault,
    node: usize,
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
        node: &str,
        error: Option<String>,
    ) -> anyhow::Result<()> {
        let value = OpValue::Other(Edn::Vector(vec![Edn::Str(node.to_owned())]));
        self.recorder
            .record(Process::Named("nemesis".into()), kind, f, value, error)?;
        Ok(())
    }

    fn start(&mut self) -> anyhow::Result<Active> {
        let fault = self.faults[self.rng.random_range(0..self.faults.len())];
        let node = self.rng.random_range(0..self.nodes.len());
        let (f, _) = fault.functions();
        let mut guard = self.nodes[node].lock().expect("node lock");
        let name = guard.name.clone();
        *self.state.lock().expect("state lock") = format!("{f} {name}");
        self.record(OpType::Invoke, f, &name, None)?;
        let result = match fault {
            Fault::Kill => guard.kill(),
            Fault::Pause => guard.signal(libc::SIGSTOP),
            Fault::StopStart => guard.stop(),
            Fault::DisconnectOrderly => {
                let client = Client::new(&guard.address, Duration::from_secs(70));
                client
                    .post_json("/db-api/upload-queue-wait?timeout_ms=60000")
                    .and_then(|_| client.post_json("/db-api/disconnect"))
                    .map(|_| ())
            }
            Fault::DisconnectRandom => Client::new(&guard.address, Duration::from_secs(10))
                .post_json("/db-api/disconnect")
                .map(|_| ()),
            Fault::PartitionSync => self.host(node).and_then(|h| h.partition(&[self.ports.0])),
            Fault::PartitionPostgres => self.host(node).and_then(|h| h.partition(&[self.ports.1])),
            Fault::PartitionBoth => self
                .host(node)
                .and_then(|h| h.partition(&[self.ports.0, self.ports.1])),
        };
        drop(guard);
        self.completed(f, &name, result)?;
        Ok(Active { fault, node })
    }

    fn end(&self, active: &Active) -> anyhow::Result<()> {
        let (_, f) = active.fault.functions();
        let mut guard = self.nodes[active.node].lock().expect("node lock");
        let name = guard.name.clone();
        self.state.lock().expect("state lock").clear();
        self.record(OpType::Invoke, f, &name, None)?;
        let result = match active.fault {
            Fault::Kill | Fault::StopStart => guard.restart(),
            Fault::Pause => guard.signal(libc::SIGCONT),
            Fault::DisconnectOrderly | Fault::DisconnectRandom => {
                Client::new(&guard.address, Duration::from_secs(10))
                    .post_json("/db-api/connect")
                    .map(|_| ())
            }
            Fault::PartitionSync | Fault::PartitionPostgres | Fault::PartitionBoth => {
                self.host(active.node).and_then(Host::heal)
            }
        };
        drop(guard);
        self.completed(f, &name, result)
    }

    fn host(&self, node: usize) -> anyhow::Result<&Host> {
        self.hosts
            .get(node)
            .ok_or_else(|| anyhow::anyhow!("node {node} runs in no network namespace"))
    }

    /// Logs a fault operation's outcome and records its completion, with the error if any.
    fn completed(&self, f: &str, name: &str, result: anyhow::Result<()>) -> anyhow::Result<()> {
        let error = result.err().map(|e| format!("{e:#}"));
        let failed = error
            .as_deref()
            .map(|e| format!(" failed: {e}"))
            .unwrap_or_default();
        self.log.info(format!("nemesis: {f} {name}{failed}"));
        self.record(OpType::Info, f, name, error)
    }
}

/// Records each node's upload-queue size every second until `stop` is set.
pub fn observe_upload_queues(
    nodes: &[Mutex<Node>],
    recorder: &Recorder,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    let clients: Vec<(String, Client)> = nodes
        .iter()
        .map(|n| {
            let node = n.lock().expect("node lock");
            (
                node.name.clone(),
                Client::new(&node.address, Duration::from_secs(2)),
            )
        })
        .collect();
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
