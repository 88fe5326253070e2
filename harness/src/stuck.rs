//! Clients whose sync is stuck: connected to nothing, while no fault of the nemesis is on them,
//! for longer than [`BOUND`] (the Rust SDK's restart deadlock, docs/findings/
//! sdk-restart-deadlock.md, looks so). Each is recorded in the history (`:process :observer`,
//! `:f :sync-stuck`, with the node, how long and the SDK's status) and reported as the
//! anomaly `:sync-stuck`, not only as a stall of the final phase. With `--unstick` the client
//! is reconnected at once (`:f :unstick`), so that a long run goes on testing safety.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use checker::edn::{Edn, kw_map};
use checker::history::{OpType, OpValue, Process};
use serde_json::Value;

use crate::log::Log;
use crate::nodes::Node;
use crate::recorder::Recorder;

/// How long a client may stay unconnected, with no fault on it, before it counts as stuck.
pub const BOUND: Duration = Duration::from_secs(30);

/// The history's `:f` of a stuck client.
pub const STUCK: &str = "sync-stuck";

/// Per client, since when it has been unconnected with no fault on it.
#[derive(Default)]
pub struct Watch {
    since: Vec<Option<Instant>>,
}

impl Watch {
    /// Takes one look at client `node` at `now`: its SDK status (`None` when it did not answer,
    /// as while it is killed) and whether a fault is on it. Returns how long it has been stuck,
    /// once that passes [`BOUND`]; the count starts again after.
    pub fn observe(
        &mut self,
        node: usize,
        now: Instant,
        status: Option<&Value>,
        faulted: bool,
    ) -> Option<Duration> {
        if self.since.len() <= node {
            self.since.resize(node + 1, None);
        }
        let unconnected = status.is_some_and(|s| s["connected"] == Value::Bool(false));
        if faulted || !unconnected {
            self.since[node] = None;
            return None;
        }
        let since = *self.since[node].get_or_insert(now);
        let stuck = now.duration_since(since);
        (stuck >= BOUND).then(|| {
            self.since[node] = None;
            stuck
        })
    }
}

/// Looks at every client each second until `stop`, recording the stuck ones (and, with
/// `unstick`, reconnecting them). `fault` is the nemesis's fault in progress, `"f node"`.
pub fn watch(
    nodes: &[Mutex<Node>],
    recorder: &Recorder,
    fault: &Mutex<String>,
    stop: &AtomicBool,
    unstick: bool,
    log: &Log,
) -> anyhow::Result<()> {
    let clients = Node::clients(nodes, Duration::from_secs(2));
    let mut watch = Watch::default();
    while !stop.load(Ordering::SeqCst) {
        for (i, (name, client)) in clients.iter().enumerate() {
            let status = client.get_json("/db-api/status").ok();
            let faulted = fault
                .lock()
                .expect("fault lock")
                .split_whitespace()
                .nth(1)
                .is_some_and(|n| n == name);
            let Some(stuck) = watch.observe(i, Instant::now(), status.as_ref(), faulted) else {
                continue;
            };
            let status_text = status.as_ref().map_or_else(String::new, Value::to_string);
            log.info(format!(
                "{name}: sync stuck for {stuck:?} with no fault on it; status {status_text}"
            ));
            let value = kw_map([
                ("node", Edn::Str(name.clone())),
                ("stuck-for-s", Edn::Float(stuck.as_secs_f64().round())),
                ("status", Edn::Str(status_text)),
            ]);
            recorder.record(
                Process::Named("observer".into()),
                OpType::Info,
                STUCK,
                OpValue::Other(value),
                None,
            )?;
            if unstick {
                let result = client
                    .post_json("/db-api/disconnect")
                    .and_then(|_| client.post_json("/db-api/connect"));
                let error = result.err().map(|e| format!("{e:#}"));
                log.info(format!("{name}: reconnected (--unstick)"));
                recorder.record(
                    Process::Named("observer".into()),
                    OpType::Info,
                    "unstick",
                    OpValue::Other(Edn::Vector(vec![Edn::Str(name.clone())])),
                    error,
                )?;
            }
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_client_unconnected_with_no_fault_for_the_bound_is_stuck() {
        let mut watch = Watch::default();
        let t0 = Instant::now();
        let down = json!({"connected": false, "connecting": true});
        let up = json!({"connected": true});
        assert_eq!(watch.observe(0, t0, Some(&down), false), None);
        assert_eq!(watch.observe(0, t0 + BOUND / 2, Some(&down), false), None);
        assert_eq!(
            watch.observe(0, t0 + BOUND, Some(&down), false),
            Some(BOUND)
        );
        // A fault on it (a disconnect, a partition), or an answer that it is connected, or no
        // answer at all (it is down), starts the count again.
        for (status, faulted) in [(Some(&down), true), (Some(&up), false), (None, false)] {
            let mut watch = Watch::default();
            assert_eq!(watch.observe(1, t0, Some(&down), false), None);
            assert_eq!(watch.observe(1, t0 + BOUND / 2, status, faulted), None);
            assert_eq!(watch.observe(1, t0 + BOUND, Some(&down), false), None);
        }
    }
}
