//! Endpoint processes: one per node, each with its own directory, database file and log, stopped
//! on every exit path (drop, panic unwinding, and the parent's death through PDEATHSIG).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::client::Client;

/// A running endpoint.
pub struct Node {
    /// The node's name, such as `n1`.
    pub name: String,
    /// Its directory in the store: database, log, dumps.
    pub dir: PathBuf,
    /// The address it listens on; a restart keeps it.
    pub address: String,
    child: Child,
    /// How it was started, to start it again.
    launch: Launch,
}

/// What it takes to start a node again on the same database and address.
#[derive(Clone)]
struct Launch {
    bin: PathBuf,
    backend: String,
    extra: Vec<String>,
    /// A command to run it under, such as `ip netns exec NS`.
    prefix: Vec<String>,
}

/// Where and how a node runs: on this host's loopback, or inside a namespace.
#[derive(Clone, Default)]
pub struct Placement {
    /// A command to run the endpoint under, such as `ip netns exec NS`.
    pub prefix: Vec<String>,
    /// The address to listen on, port 0 for any.
    pub listen: Option<String>,
}

/// How long a node may take to open its database, sync, and start listening.
const START_TIMEOUT: Duration = Duration::from_secs(180);
/// How long a node may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

impl Node {
    /// Starts `bin` as node `name` with `backend` and `extra` flags, its database in
    /// `store_dir/name/`, and waits until it listens (for a synced node: until its first full
    /// sync).
    pub fn start(
        bin: &Path,
        backend: &str,
        name: &str,
        store_dir: &Path,
        extra: &[String],
        placement: &Placement,
    ) -> anyhow::Result<Node> {
        let launch = Launch {
            bin: bin.to_owned(),
            backend: backend.to_owned(),
            extra: extra.to_vec(),
            prefix: placement.prefix.clone(),
        };
        let dir = store_dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let listen = placement.listen.as_deref().unwrap_or("127.0.0.1:0");
        let (child, address) = spawn(&launch, name, &dir, listen)?;
        Ok(Node {
            name: name.to_owned(),
            dir,
            address,
            child,
            launch,
        })
    }

    /// Starts the node again, on its database file and address, after it stopped or was
    /// killed.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            anyhow::bail!("node {} is still running", self.name);
        }
        let (child, _) = spawn(&self.launch, &self.name, &self.dir, &self.address)?;
        self.child = child;
        Ok(())
    }

    /// Sends `signal` to the node's process.
    pub fn signal(&self, signal: libc::c_int) -> anyhow::Result<()> {
        // SAFETY: kill(2) on our own child's pid.
        if unsafe { libc::kill(self.child.id() as libc::pid_t, signal) } != 0 {
            return Err(std::io::Error::last_os_error().into());
        }
        Ok(())
    }

    /// A client of each of `nodes`, with its name, for watchers that must not hold the nodes'
    /// locks (the nemesis takes them; a node keeps its address across restarts).
    pub fn clients(nodes: &[Mutex<Node>], timeout: Duration) -> Vec<(String, Client)> {
        nodes
            .iter()
            .map(|n| {
                let node = n.lock().expect("node lock");
                (node.name.clone(), Client::new(&node.address, timeout))
            })
            .collect()
    }

    /// The process id of the node's endpoint.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The node's database file.
    pub fn database(&self) -> PathBuf {
        self.dir.join("data.db")
    }

    /// Kills the node with SIGKILL and reaps it.
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_none() {
            self.child.kill()?;
            self.child.wait()?;
        }
        Ok(())
    }
}

/// Starts an endpoint process and waits until it listens; returns it and its address.
fn spawn(launch: &Launch, name: &str, dir: &Path, listen: &str) -> anyhow::Result<(Child, String)> {
    let (bin, backend, extra) = (&launch.bin, &launch.backend, &launch.extra);
    let ready = dir.join("ready");
    let _ = std::fs::remove_file(&ready);
    let log_path = dir.join("endpoint.log");
    let log = File::options()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = match launch.prefix.split_first() {
        Some((program, args)) => {
            let mut command = Command::new(program);
            command.args(args).arg(bin);
            command
        }
        None => Command::new(bin),
    };
    command
        .arg("--backend")
        .arg(backend)
        .arg("--db")
        .arg(dir.join("data.db"))
        .arg("--node")
        .arg(name)
        .arg("--ready-file")
        .arg(&ready)
        .arg("--listen")
        .arg(listen)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .spawn()
        .with_context(|| format!("starting endpoint {}", bin.display()))?;
    let deadline = Instant::now() + START_TIMEOUT;
    let address = loop {
        if let Ok(address) = std::fs::read_to_string(&ready) {
            break address;
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "node {name} exited during start-up ({status}); its log ends:\n{}",
                log_tail(&log_path)
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "node {name} did not start within {START_TIMEOUT:?}; its log ends:\n{}",
                log_tail(&log_path)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Ok((child, address))
}

impl Node {
    /// Stops the node: SIGTERM, then SIGKILL if it does not exit in time.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if self.child.try_wait()?.is_some() {
            return Ok(());
        }
        self.signal(libc::SIGTERM)?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if self.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.child.kill()?;
        self.child.wait()?;
        bail!(
            "node {} ignored SIGTERM for {STOP_TIMEOUT:?} and was killed",
            self.name
        )
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            eprintln!("stopping node {}: {e:#}", self.name);
        }
    }
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
