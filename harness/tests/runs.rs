//! Real runs of the harness against real endpoints: the store's contents, the exit-code gate, and
//! that crashes and Ctrl-C never lose the recorded history.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use checker::history::{OpType, read_history};

fn harness() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_harness"))
}

/// The endpoint program beside the harness, built first if this test runs on its own.
fn endpoint() -> PathBuf {
    let path = harness().with_file_name("endpoint");
    if !path.exists() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "endpoint"])
            .status()
            .expect("running cargo build -p endpoint");
        assert!(status.success(), "building the endpoint failed");
    }
    path
}

fn start(store: &Path, workload: &str, time_limit: &str) -> Child {
    Command::new(harness())
        .args([
            "test",
            workload,
            "--time-limit",
            time_limit,
            "--rate",
            "100",
            "--concurrency",
            "3",
        ])
        .arg("--store")
        .arg(store)
        .arg("--endpoint-bin")
        .arg(endpoint())
        .stdin(Stdio::null())
        .spawn()
        .expect("starting the harness")
}

fn wait(mut child: Child) -> i32 {
    child
        .wait()
        .expect("waiting for the harness")
        .code()
        .expect("exited normally")
}

fn latest(store: &Path) -> PathBuf {
    std::fs::canonicalize(store.join("latest")).expect("store/latest points at the run")
}

/// Waits until the run has recorded at least `ops` operations.
fn wait_for_ops(store: &Path, ops: usize) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(dir) = std::fs::canonicalize(store.join("latest"))
            && std::fs::read_to_string(dir.join("history.edn"))
                .is_ok_and(|h| h.lines().count() >= ops)
        {
            return dir;
        }
        assert!(Instant::now() < deadline, "the run recorded nothing");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                // pid (comm) state ppid ...: comm may hold spaces, so split after the last ')'.
                stat.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
    })
}

fn history(dir: &Path) -> Vec<checker::history::Op> {
    let text = std::fs::read_to_string(dir.join("history.edn")).unwrap();
    read_history(text.as_bytes()).expect("the stored history parses")
}

#[test]
fn a_valid_run_leaves_a_complete_store() {
    let store = tempfile::tempdir().unwrap();
    assert_eq!(wait(start(store.path(), "sqlite3-local", "2")), 0);
    let dir = latest(store.path());
    assert_eq!(
        std::fs::canonicalize(store.path().join("sqlite3-local/latest")).unwrap(),
        dir
    );
    for file in [
        "history.edn",
        "history.txt",
        "results.edn",
        "results.json",
        "jepsen.log",
        "test.json",
        "n1/endpoint.log",
        "n1/data.db",
    ] {
        assert!(dir.join(file).exists(), "{file} is missing");
    }
    let ops = history(&dir);
    assert!(
        ops.iter().filter(|o| o.kind == OpType::Ok).count() > 50,
        "too few ok ops"
    );
    let results = std::fs::read_to_string(dir.join("results.edn")).unwrap();
    assert!(results.starts_with("{:valid? true"), "{results}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["valid?"], serde_json::Value::Bool(true));

    // Checked again from the store, with another model, by path and by index.
    assert_eq!(
        analyze(&[
            "-t",
            dir.to_str().unwrap(),
            "--consistency-models",
            "serializable"
        ]),
        0
    );
    let results = std::fs::read_to_string(dir.join("results.edn")).unwrap();
    assert!(results.contains(":models [:serializable]"), "{results}");
    assert_eq!(
        analyze(&["--store", store.path().to_str().unwrap(), "-t", "0"]),
        0
    );
    let results = std::fs::read_to_string(dir.join("results.edn")).unwrap();
    assert!(
        results.contains(":models [:strict-serializable]"),
        "{results}"
    );
    assert_eq!(
        analyze(&["--store", store.path().to_str().unwrap(), "-t", "1"]),
        2,
        "no second run"
    );
}

/// Runs `harness analyze` and returns its exit code.
fn analyze(args: &[&str]) -> i32 {
    Command::new(harness())
        .arg("analyze")
        .args(args)
        .status()
        .expect("running harness analyze")
        .code()
        .expect("exited normally")
}

#[test]
fn a_killed_node_loses_no_history() {
    let store = tempfile::tempdir().unwrap();
    let child = start(store.path(), "sqlite3-local", "4");
    let dir = wait_for_ops(store.path(), 40);
    let nodes = children(child.id());
    assert_eq!(nodes.len(), 1, "one endpoint process");
    // SAFETY: SIGKILL to the endpoint process this test found.
    unsafe { libc::kill(nodes[0] as libc::pid_t, libc::SIGKILL) };
    let code = wait(child);
    let ops = history(&dir);
    let ok = ops.iter().filter(|o| o.kind == OpType::Ok).count();
    let failed = ops.iter().filter(|o| o.kind == OpType::Fail).count();
    assert!(ok >= 20, "the ops before the kill are kept: {ok}");
    assert!(
        failed > 0,
        "ops after the kill fail: the node refuses connections"
    );
    assert!(dir.join("results.edn").exists());
    // Only failures and indeterminate ops followed: the history is still valid.
    assert_eq!(code, 0);
}

#[test]
fn ctrl_c_keeps_the_history_and_stops_the_nodes() {
    let store = tempfile::tempdir().unwrap();
    let child = start(store.path(), "powersync-local", "60");
    let dir = wait_for_ops(store.path(), 40);
    let nodes = children(child.id());
    assert_eq!(nodes.len(), 1);
    // SAFETY: SIGINT to the harness this test started.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let started = Instant::now();
    let code = wait(child);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run wound down promptly"
    );
    assert_eq!(code, 2, "an interrupted run is at best unknown");
    assert!(!alive(nodes[0]), "the node was stopped");
    let results = std::fs::read_to_string(dir.join("results.edn")).unwrap();
    assert!(results.contains(":interrupted? true"), "{results}");
    assert!(history(&dir).len() >= 40);
}

#[test]
fn a_corrupted_database_is_caught_and_gates_as_invalid() {
    let store = tempfile::tempdir().unwrap();
    let child = start(store.path(), "sqlite3-local", "4");
    let dir = wait_for_ops(store.path(), 200);
    // A fault from outside: another process drops the last element of every list.
    let conn = rusqlite::Connection::open(dir.join("n1/data.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let changed = conn
        .execute(
            "UPDATE lists SET v = rtrim(rtrim(v, '0123456789'), ',') WHERE instr(v, ',') > 0",
            [],
        )
        .unwrap();
    assert!(changed > 0, "some lists had two or more elements");
    assert_eq!(wait(child), 1, "lost appends make the history invalid");
    let results = std::fs::read_to_string(dir.join("results.edn")).unwrap();
    assert!(results.starts_with("{:valid? false"), "{results}");
    assert_eq!(
        analyze(&["-t", dir.to_str().unwrap()]),
        1,
        "and so it stays when checked again"
    );
}
