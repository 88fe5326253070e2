//! `cargo xtask service up|down|status`: the real PowerSync service, either the official image
//! through Docker Compose where a Docker engine answers, or a locally installed service program
//! named by `POWERSYNC_SERVICE_CMD`. It is never built here.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::test_env::TestEnv;
use crate::{pg, project};

/// What to do.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Action {
    /// Start PostgreSQL and the service, and wait until the service is ready.
    Up,
    /// Stop the service.
    Down,
    /// Say whether it is ready; exit 0 if it is, 3 if not.
    Status,
}

/// The environment variable naming the command that starts an installed service, e.g.
/// `/opt/powersync/bin/powersync-service start -r unified`.
pub const SERVICE_CMD: &str = "POWERSYNC_SERVICE_CMD";

/// How the service can be run here, if at all.
pub enum Runner {
    /// The official image, through Docker Compose.
    Compose,
    /// A locally installed program.
    Local(String),
}

impl Runner {
    /// Docker first, where an engine answers; else `POWERSYNC_SERVICE_CMD`; else why neither.
    pub fn find(sh: &Shell) -> Result<Runner, String> {
        if cmd!(sh, "docker info")
            .quiet()
            .ignore_stdout()
            .ignore_stderr()
            .run()
            .is_ok()
        {
            return Ok(Runner::Compose);
        }
        match std::env::var(SERVICE_CMD) {
            Ok(command) if !command.trim().is_empty() => Ok(Runner::Local(command)),
            _ => Err(format!(
                "no Docker engine answers (`docker info` fails) and {SERVICE_CMD} is not set to \
                 the command that starts an installed PowerSync service"
            )),
        }
    }
}

fn state_dir() -> PathBuf {
    project::root().join("target/powersync-service")
}

/// Runs the action and returns the exit code.
pub fn run(sh: &Shell, action: Action) -> anyhow::Result<u8> {
    let env = TestEnv::load()?;
    let port: u16 = env.get("PS_PORT")?.parse().context("PS_PORT")?;
    match action {
        Action::Up => {
            up(sh, &env)?;
            Ok(0)
        }
        Action::Down => {
            down(sh)?;
            Ok(0)
        }
        Action::Status => {
            if ready(port) {
                println!("service: ready on 127.0.0.1:{port}");
                Ok(0)
            } else {
                println!("service: not ready on 127.0.0.1:{port}");
                Ok(3)
            }
        }
    }
}

/// Brings PostgreSQL and the service up and waits for `/probes/readiness`.
pub fn up(sh: &Shell, env: &TestEnv) -> anyhow::Result<()> {
    pg::ensure_up(sh)?;
    start(sh, env)
}

/// Starts the service, PostgreSQL being up already, and waits for `/probes/readiness`.
pub fn start(sh: &Shell, env: &TestEnv) -> anyhow::Result<()> {
    let port: u16 = env.get("PS_PORT")?.parse().context("PS_PORT")?;
    if ready(port) {
        eprintln!("service: already ready on 127.0.0.1:{port}");
        return Ok(());
    }
    let runner = Runner::find(sh).map_err(anyhow::Error::msg)?;
    let dir = state_dir();
    sh.create_dir(&dir)?;
    let log = dir.join("service.log");
    match &runner {
        Runner::Compose => {
            let compose = project::root().join("powersync/docker-compose.yaml");
            cmd!(sh, "docker compose -f {compose} up -d").run()?;
        }
        Runner::Local(command) => {
            let out = std::fs::File::create(&log)?;
            let mut child = Command::new("setsid");
            child
                .args(["sh", "-c", &format!("exec {command}")])
                .current_dir(project::root().join("powersync"))
                .env(
                    "POWERSYNC_CONFIG_PATH",
                    project::root().join("powersync/config.yaml"),
                )
                .envs(env.vars())
                .stdin(Stdio::null())
                .stdout(out.try_clone()?)
                .stderr(out);
            let child = child
                .spawn()
                .with_context(|| format!("starting {command}"))?;
            std::fs::write(dir.join("service.pid"), child.id().to_string())?;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    while !ready(port) {
        if let Runner::Local(_) = runner
            && !local_alive()
        {
            bail!("the service exited during start-up; see {}", log.display());
        }
        if Instant::now() > deadline {
            bail!(
                "the service was not ready within 180 s; see {}",
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!("service: ready on 127.0.0.1:{port}");
    Ok(())
}

fn local_pid() -> Option<u32> {
    std::fs::read_to_string(state_dir().join("service.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn local_alive() -> bool {
    local_pid().is_some_and(|pid| {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
    })
}

/// Stops the service, if it runs.
pub fn down(sh: &Shell) -> anyhow::Result<()> {
    if let Some(pid) = local_pid() {
        if local_alive() {
            // The service leads its own process group (setsid): stop all of it.
            let group = format!("-{pid}");
            cmd!(sh, "kill -TERM -- {group}").quiet().run()?;
            let deadline = Instant::now() + Duration::from_secs(20);
            while local_alive() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            if local_alive() {
                cmd!(sh, "kill -KILL -- {group}").quiet().run()?;
            }
        }
        std::fs::remove_file(state_dir().join("service.pid"))?;
        eprintln!("service: stopped");
    } else if let Ok(Runner::Compose) = Runner::find(sh) {
        let compose = project::root().join("powersync/docker-compose.yaml");
        cmd!(sh, "docker compose -f {compose} down").run()?;
    } else {
        eprintln!("service: not running");
    }
    Ok(())
}

/// Whether `GET /probes/readiness` answers 200.
pub fn ready(port: u16) -> bool {
    let probe = || -> std::io::Result<bool> {
        let mut stream =
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(1))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.write_all(b"GET /probes/readiness HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head)?;
        Ok(head.starts_with(b"HTTP/1.") && &head[9..12] == b"200")
    };
    probe().unwrap_or(false)
}
