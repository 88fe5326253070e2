//! A synced run's PostgreSQL and PowerSync service, set up and torn down for each run as Jepsen
//! does for each test: by default the service is stopped, its bucket storage and replication
//! slots dropped, the synced tables emptied, and a fresh service started, so nothing of an
//! earlier run can reach this one. `--reuse-service` keeps a running service (the harness still
//! empties the tables and checks that every client starts empty). What the run started is
//! stopped at the end, unless `--leave-db-running`.

use xshell::Shell;

use crate::test_env::TestEnv;
use crate::{pg, service};

/// How a synced run treats the service and PostgreSQL.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lifecycle {
    /// Keep a service that is already running.
    pub reuse_service: bool,
    /// Leave PostgreSQL and the service running at the end (Jepsen's flag).
    pub leave_db_running: bool,
}

impl Lifecycle {
    /// Takes `--reuse-service` and `--leave-db-running` out of `flags`.
    pub fn from_flags(flags: &mut Vec<String>) -> Lifecycle {
        let mut take = |name: &str| {
            let before = flags.len();
            flags.retain(|f| f != name);
            flags.len() != before
        };
        Lifecycle {
            reuse_service: take("--reuse-service"),
            leave_db_running: take("--leave-db-running"),
        }
    }
}

/// What a run brought up, to take down again.
#[must_use = "call finish() when the run ends"]
pub struct Started {
    postgres: bool,
    service: bool,
    leave_running: bool,
}

/// Brings PostgreSQL and a service with no past up for one run (see the module's docs).
pub fn set_up(sh: &Shell, env: &TestEnv, lifecycle: Lifecycle) -> anyhow::Result<Started> {
    let postgres = !pg::is_running(sh);
    pg::ensure_up(sh)?;
    let port: u16 = env.get("PS_PORT")?.parse()?;
    let running = service::ready(port);
    let service = if lifecycle.reuse_service && running {
        eprintln!("service: reusing the running service (--reuse-service)");
        false
    } else {
        if running {
            service::down(sh)?;
        }
        pg::reset_sync_state(sh)?;
        service::start(sh, env)?;
        true
    };
    Ok(Started {
        postgres,
        service,
        leave_running: lifecycle.leave_db_running,
    })
}

impl Started {
    /// Stops what [`set_up`] started, unless asked to leave it running.
    pub fn finish(self, sh: &Shell) -> anyhow::Result<()> {
        if self.leave_running {
            eprintln!("service and PostgreSQL left running (--leave-db-running)");
            return Ok(());
        }
        if self.service {
            service::down(sh)?;
        }
        if self.postgres {
            pg::down(sh)?;
        }
        Ok(())
    }
}
