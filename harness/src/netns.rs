//! Client nodes as hosts of their own, for packet-level partitions: each runs in a network
//! namespace the test makes, joined to this machine by a veth pair on addresses of the test's
//! own (10.213.X.0/30). The PowerSync service listens on every interface, so a node reaches it
//! at the host end of its veth; PostgreSQL listens on loopback only, so the harness forwards the
//! host end's PostgreSQL port to it. A partition is an nftables table inside the node's
//! namespace that drops its packets to and from those ports; healing deletes the table.

use std::io::ErrorKind;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, bail};

/// Whether this machine can make namespaces and partitions: root, `ip` and `nft`.
pub fn check_support() -> Result<(), String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err("partitions need root (network namespaces and nftables)".into());
    }
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new(tool)
            .arg("-V")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !found {
            return Err(format!(
                "partitions need `{tool}` (Debian package {package})"
            ));
        }
    }
    Ok(())
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new(args[0])
        .args(&args[1..])
        .output()
        .with_context(|| format!("running {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "{} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// A node's namespace, its veth pair, and the forwarders to this machine's loopback.
pub struct Host {
    namespace: String,
    link: String,
    index: usize,
    forwarders: Vec<Forwarder>,
}

impl Host {
    /// Makes the namespace for node number `index` (0-based), named after `node`, and forwards
    /// `forwarded` ports of the host end to 127.0.0.1.
    pub fn create(node: &str, index: usize, forwarded: &[u16]) -> anyhow::Result<Host> {
        let namespace = format!("psj-{node}");
        let link = format!("vh-{}", index + 1);
        let peer = format!("vn-{}", index + 1);
        // Leftovers of a run that died: start clean.
        let _ = run(&["ip", "netns", "del", &namespace]);
        let _ = run(&["ip", "link", "del", &link]);
        let mut host = Host {
            namespace,
            link,
            index,
            forwarders: Vec::new(),
        };
        let ns = host.namespace.clone();
        let (host_ip, node_ip) = (
            format!("{}/30", host.host_ip()),
            format!("{}/30", host.node_ip()),
        );
        run(&["ip", "netns", "add", &ns])?;
        run(&[
            "ip", "link", "add", &host.link, "type", "veth", "peer", "name", &peer,
        ])?;
        run(&["ip", "link", "set", &peer, "netns", &ns])?;
        run(&["ip", "addr", "add", &host_ip, "dev", &host.link])?;
        run(&["ip", "link", "set", &host.link, "up"])?;
        run(&[
            "ip", "netns", "exec", &ns, "ip", "addr", "add", &node_ip, "dev", &peer,
        ])?;
        run(&["ip", "netns", "exec", &ns, "ip", "link", "set", &peer, "up"])?;
        run(&["ip", "netns", "exec", &ns, "ip", "link", "set", "lo", "up"])?;
        for &port in forwarded {
            host.forwarders
                .push(Forwarder::start(&host.host_ip(), port)?);
        }
        Ok(host)
    }

    /// This machine's address on the node's link.
    pub fn host_ip(&self) -> String {
        format!("10.213.{}.1", self.index + 1)
    }

    /// The node's address.
    pub fn node_ip(&self) -> String {
        format!("10.213.{}.2", self.index + 1)
    }

    /// The command prefix that runs a program inside the namespace.
    pub fn exec_prefix(&self) -> Vec<String> {
        vec![
            "ip".into(),
            "netns".into(),
            "exec".into(),
            self.namespace.clone(),
        ]
    }

    /// Drops the node's packets to and from this machine's `ports`.
    pub fn partition(&self, ports: &[u16]) -> anyhow::Result<()> {
        let list = ports
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        let rules = format!(
            "table inet psj {{
               chain out {{ type filter hook output priority 0; ip daddr {host} tcp dport {{ {list} }} drop; }}
               chain in {{ type filter hook input priority 0; ip saddr {host} tcp sport {{ {list} }} drop; }}
             }}",
            host = self.host_ip()
        );
        let _ = self.heal();
        run(&["ip", "netns", "exec", &self.namespace, "nft", &rules])
    }

    /// From inside the namespace, whether a TCP connection to this machine's end of the link at
    /// `port` opens within 2 s: the probe that shows a partition is in place, and healed.
    pub fn reaches(&self, port: u16) -> bool {
        let mut command = self.exec_prefix();
        command.extend(["timeout", "2", "bash", "-c"].map(String::from));
        command.push(format!("exec 3<>/dev/tcp/{}/{port}", self.host_ip()));
        Command::new(&command[0])
            .args(&command[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Removes every partition rule.
    pub fn heal(&self) -> anyhow::Result<()> {
        run(&[
            "ip",
            "netns",
            "exec",
            &self.namespace,
            "nft",
            "delete",
            "table",
            "inet",
            "psj",
        ])
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        for forwarder in self.forwarders.drain(..) {
            forwarder.stop();
        }
        let _ = run(&["ip", "netns", "del", &self.namespace]);
        let _ = run(&["ip", "link", "del", &self.link]);
    }
}

/// Forwards connections to `address:port` on to `127.0.0.1:port`.
struct Forwarder {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Forwarder {
    fn start(address: &str, port: u16) -> anyhow::Result<Forwarder> {
        let listener = TcpListener::bind((address, port))
            .with_context(|| format!("forwarding {address}:{port}"))?;
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((inbound, _)) => {
                        let _ = inbound.set_nonblocking(false);
                        if let Ok(outbound) = TcpStream::connect(("127.0.0.1", port)) {
                            // Protocols of small messages (PostgreSQL's) would otherwise wait
                            // on Nagle's algorithm and delayed ACKs at every round trip.
                            let _ = inbound.set_nodelay(true);
                            let _ = outbound.set_nodelay(true);
                            pipe(inbound, outbound);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        Ok(Forwarder { stop, thread })
    }

    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.join();
    }
}

/// Copies bytes both ways until either side closes.
fn pipe(a: TcpStream, b: TcpStream) {
    let (Ok(a2), Ok(b2)) = (a.try_clone(), b.try_clone()) else {
        return;
    };
    for (mut from, mut to) in [(a, b2), (b, a2)] {
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = to.shutdown(Shutdown::Write);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_reaches_loopback_until_partitioned() {
        if let Err(why) = check_support() {
            endpoint::prerequisite::missing(&format!("network namespaces: {why}"));
            return;
        }
        let server = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = server.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for stream in server.incoming() {
                drop(stream);
            }
        });
        let host = Host::create("nstest", 200, &[port]).unwrap();
        assert!(host.reaches(port), "through the forwarder to loopback");
        host.partition(&[port]).unwrap();
        assert!(!host.reaches(port), "partitioned");
        host.heal().unwrap();
        assert!(host.reaches(port), "healed");
        drop(host);
        let namespaces = String::from_utf8(
            Command::new("ip")
                .args(["netns", "list"])
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert!(!namespaces.contains("psj-nstest"), "{namespaces}");
    }
}
