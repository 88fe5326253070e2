//! `cargo xtask pg up|down|status`: a PostgreSQL server of the suite's own, in `target/pg`, on
//! 127.0.0.1 at the port in powersync.env, with logical replication, password authentication,
//! and the schema and publication from `powersync/setup.sql`.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

use crate::project;
use crate::test_env::TestEnv;

/// What to do.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Action {
    /// Initialise (once), start, and apply setup.sql; does nothing that is already done.
    Up,
    /// Stop the server; leaves nothing running.
    Down,
    /// Say whether it runs; exit 0 if it does, 3 if not.
    Status,
}

/// The server's directories and binaries.
struct Server {
    dir: PathBuf,
    bin: PathBuf,
    /// Run server commands as the `postgres` user (initdb refuses root).
    as_postgres: bool,
}

impl Server {
    fn find(sh: &Shell) -> anyhow::Result<Server> {
        let bin = binaries().context(
            "PostgreSQL server binaries not found: install Debian's postgresql package or set PG_BIN",
        )?;
        let as_postgres = cmd!(sh, "id -u").quiet().read()?.trim() == "0";
        let dir = project::root().join("target/pg");
        // Paths handed to the server must not pass through the link.
        let dir = std::fs::canonicalize(&dir).unwrap_or(dir);
        Ok(Server {
            dir,
            bin,
            as_postgres,
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// A server program, run as `postgres` when we are root.
    fn tool<'a>(&self, sh: &'a Shell, name: &str) -> xshell::Cmd<'a> {
        let program = self.bin.join(name);
        if self.as_postgres {
            cmd!(sh, "runuser -u postgres -- {program}")
        } else {
            cmd!(sh, "{program}")
        }
    }

    fn running(&self, sh: &Shell) -> bool {
        let data = self.data();
        data.join("PG_VERSION").exists()
            && self
                .tool(sh, "pg_ctl")
                .args(["status", "-D"])
                .arg(&data)
                .quiet()
                .ignore_stdout()
                .run()
                .is_ok()
    }
}

/// Whether the `postgres` user can enter `dir`.
fn postgres_can_reach(sh: &Shell, dir: &Path) -> bool {
    cmd!(sh, "runuser -u postgres -- test -x {dir}")
        .quiet()
        .ignore_stderr()
        .run()
        .is_ok()
}

fn binaries() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Some(dir.into());
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str()?.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop()
}

/// Runs the action and returns the exit code.
pub fn run(sh: &Shell, action: Action) -> anyhow::Result<u8> {
    let env = TestEnv::load()?;
    let server = Server::find(sh)?;
    match action {
        Action::Up => {
            ensure_up(sh)?;
            Ok(0)
        }
        Action::Down => {
            down(sh)?;
            Ok(0)
        }
        Action::Status => {
            let port = env.get("PS_PG_PORT")?;
            if server.running(sh) {
                println!(
                    "pg: running on 127.0.0.1:{port}, data in {}",
                    server.data().display()
                );
                Ok(0)
            } else {
                println!("pg: not running");
                Ok(3)
            }
        }
    }
}

/// Where the server's files go: `target/pg`, or, when the checkout is somewhere the `postgres`
/// user cannot enter (say, under /root), a directory in /var/tmp linked from `target/pg`.
fn prepare_dir(sh: &Shell) -> anyhow::Result<()> {
    let dir = project::root().join("target/pg");
    let root_user = cmd!(sh, "id -u").quiet().read()?.trim() == "0";
    if !root_user || dir.exists() || postgres_can_reach(sh, &project::root()) {
        return Ok(());
    }
    let mut hasher = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&project::root(), &mut hasher);
    let elsewhere = PathBuf::from(format!(
        "/var/tmp/powersync-consistency-pg-{:016x}",
        std::hash::Hasher::finish(&hasher)
    ));
    sh.create_dir(&elsewhere)?;
    sh.create_dir(project::root().join("target"))?;
    std::os::unix::fs::symlink(&elsewhere, &dir)?;
    eprintln!(
        "pg: the postgres user cannot reach {}; server files in {} (linked from {})",
        project::root().display(),
        elsewhere.display(),
        dir.display()
    );
    Ok(())
}

fn up(sh: &Shell, server: &Server, env: &TestEnv) -> anyhow::Result<()> {
    let port = env.get("PS_PG_PORT")?;
    let data = server.data();
    sh.create_dir(&server.dir)?;
    if server.as_postgres {
        let dir = &server.dir;
        cmd!(sh, "chown postgres:postgres {dir}").run()?;
    }
    if !data.join("PG_VERSION").exists() {
        let pwfile = server.dir.join("superuser-password");
        std::fs::write(&pwfile, env.get("PS_PG_SUPERUSER_PASSWORD")?)?;
        if server.as_postgres {
            cmd!(sh, "chown postgres:postgres {pwfile}").run()?;
        }
        let initdb = server
            .tool(sh, "initdb")
            .args([
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--no-instructions",
                "-D",
            ])
            .arg(&data)
            .arg(format!("--pwfile={}", pwfile.display()));
        let result = initdb.quiet().run();
        std::fs::remove_file(&pwfile)?;
        result.context("initdb failed")?;
    }
    if !server.running(sh) {
        let socket_dir = server.dir.join("run");
        sh.create_dir(&socket_dir)?;
        if server.as_postgres {
            cmd!(sh, "chown postgres:postgres {socket_dir}").run()?;
        }
        let options = format!(
            "-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20 \
             -c max_connections=200",
            socket_dir.display()
        );
        let log = server.dir.join("postgres.log");
        server
            .tool(sh, "pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(&log)
            .arg("-o")
            .arg(options)
            .run()
            .with_context(|| format!("starting PostgreSQL; see {}", log.display()))?;
    }
    let password = env.get("PS_PG_PASSWORD")?;
    run_sql_file(sh, env, "powersync/setup.sql", &[("password", password)])
        .context("applying powersync/setup.sql")?;
    let _password = sh.push_env("PGPASSWORD", env.get("PS_PG_SUPERUSER_PASSWORD")?);
    let level = cmd!(
        sh,
        "psql -X -At -h 127.0.0.1 -p {port} -U postgres -d postgres -c 'SHOW wal_level'"
    )
    .quiet()
    .read()?;
    if level.trim() != "logical" {
        bail!(
            "PostgreSQL on port {port} has wal_level={level}, not logical: is another server on that port?"
        );
    }
    eprintln!("pg: up on 127.0.0.1:{port} (data in {})", data.display());
    Ok(())
}

/// Stops the server (fast shutdown), if it runs.
pub fn down(sh: &Shell) -> anyhow::Result<()> {
    let server = Server::find(sh)?;
    if server.running(sh) {
        let data = server.data();
        server
            .tool(sh, "pg_ctl")
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(&data)
            .run()?;
    } else {
        eprintln!("pg: not running");
    }
    Ok(())
}

/// Whether the suite's server runs.
pub fn is_running(sh: &Shell) -> bool {
    Server::find(sh).is_ok_and(|server| server.running(sh))
}

/// Drops the service's bucket storage and replication slots and empties the synced tables
/// (`powersync/reset.sql`), while no service runs: the next service starts from nothing.
pub fn reset_sync_state(sh: &Shell) -> anyhow::Result<()> {
    run_sql_file(sh, &TestEnv::load()?, "powersync/reset.sql", &[])
        .context("resetting the service's storage (powersync/reset.sql)")?;
    eprintln!("pg: bucket storage and replication slots dropped, synced tables emptied");
    Ok(())
}

/// Runs one of `powersync/`'s SQL files as the superuser, connected to `postgres`, with the psql
/// variables `user`, `db` and `storage_db` from powersync.env, and `extra`.
fn run_sql_file(
    sh: &Shell,
    env: &TestEnv,
    file: &str,
    extra: &[(&str, &str)],
) -> anyhow::Result<()> {
    let port = env.get("PS_PG_PORT")?;
    let file = project::root().join(file);
    let mut vars = vec![
        format!("user={}", env.get("PS_PG_USER")?),
        format!("db={}", env.get("PS_PG_DATABASE")?),
        format!("storage_db={}", env.get("PS_PG_STORAGE_DATABASE")?),
    ];
    vars.extend(extra.iter().map(|(k, v)| format!("{k}={v}")));
    let vars: Vec<String> = vars
        .into_iter()
        .flat_map(|v| ["-v".to_owned(), v])
        .collect();
    let _password = sh.push_env("PGPASSWORD", env.get("PS_PG_SUPERUSER_PASSWORD")?);
    let _quiet = sh.push_env("PGOPTIONS", "-c client_min_messages=warning");
    cmd!(
        sh,
        "psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p {port} -U postgres -d postgres {vars...} -f {file}"
    )
    .quiet()
    .ignore_stdout()
    .run()?;
    Ok(())
}

/// Brings the server up, as `pg up` does, for tasks that need PostgreSQL.
pub fn ensure_up(sh: &Shell) -> anyhow::Result<()> {
    let env = TestEnv::load()?;
    prepare_dir(sh)?;
    up(sh, &Server::find(sh)?, &env)
}
