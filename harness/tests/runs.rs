//! Real runs of the harness against real endpoints: the store's contents, the exit-code gate, and
//! that crashes and Ctrl-C never lose the recorded history.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use checker::history::{OpType, read_history};

mod common;

use common::{decode_png, endpoint, harness, parse_markup};

fn start(store: &Path, workload: &str, time_limit: &str, extra: &[&str]) -> Child {
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
        .args(extra)
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

/// The micro-ops of every committed (ok) transaction.
fn committed_mops(ops: &[checker::history::Op]) -> impl Iterator<Item = &checker::history::Mop> {
    ops.iter()
        .filter(|o| o.kind == OpType::Ok)
        .filter_map(|o| match &o.value {
            checker::history::OpValue::Txn(mops) => Some(mops),
            _ => None,
        })
        .flatten()
}

fn history(dir: &Path) -> Vec<checker::history::Op> {
    let text = std::fs::read_to_string(dir.join("history.edn")).unwrap();
    read_history(text.as_bytes()).expect("the stored history parses")
}

#[test]
fn a_valid_run_leaves_a_complete_store() {
    let store = tempfile::tempdir().unwrap();
    assert_eq!(wait(start(store.path(), "sqlite3-local", "2", &[])), 0);
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
        "timeline.html",
    ] {
        assert!(dir.join(file).exists(), "{file} is missing");
    }
    // Every picture decodes, every page parses.
    for png in ["latency-raw.png", "latency-quantiles.png", "rate.png"] {
        let image = decode_png(&dir.join(png));
        assert_eq!((image.width, image.height), (1100, 560), "{png}");
        if png != "latency-quantiles.png" {
            assert!(
                image.count([0x1f, 0x77, 0xd4], 0) > 100,
                "{png} draws ok operations in blue"
            );
        }
    }
    let timeline = parse_markup(&dir.join("timeline.html"));
    assert!(timeline["a"] > 50, "a box per operation: {timeline:?}");
    assert!(timeline["tr"] > 100, "a row per history line: {timeline:?}");
    assert!(
        !dir.join("anomalies").exists(),
        "a valid run explains no anomalies"
    );
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
    let child = start(store.path(), "sqlite3-local", "4", &[]);
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
    // Opened again after the SIGKILL, the node's database holds every acknowledged append.
    let conn = rusqlite::Connection::open(dir.join("n1/data.db")).unwrap();
    let mut stored = std::collections::BTreeSet::new();
    let mut rows = conn.prepare("SELECT k, v FROM lists").unwrap();
    for row in rows
        .query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
        .unwrap()
    {
        let (k, v) = row.unwrap();
        for value in endpoint::txn::decode_list(&v).unwrap() {
            stored.insert((k, value));
        }
    }
    let acknowledged: Vec<(i64, i64)> = committed_mops(&ops)
        .filter_map(|m| match *m {
            checker::history::Mop::Append { key, value } => Some((key, value)),
            _ => None,
        })
        .collect();
    assert!(!acknowledged.is_empty(), "appends were acknowledged");
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|a| !stored.contains(a))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged appends lost by the SIGKILL: {lost:?}"
    );
}

#[test]
fn ctrl_c_keeps_the_history_and_stops_the_nodes() {
    let store = tempfile::tempdir().unwrap();
    let child = start(store.path(), "powersync-local", "60", &[]);
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
    let child = start(store.path(), "sqlite3-local", "4", &[]);
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
    // Each anomaly is explained in a file, each cycle drawn, and the index parses.
    let anomalies = dir.join("anomalies");
    let index = parse_markup(&anomalies.join("index.html"));
    let files: Vec<PathBuf> = std::fs::read_dir(&anomalies)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let texts = files
        .iter()
        .filter(|f| f.extension() == Some("txt".as_ref()));
    assert_eq!(texts.count(), index["h2"], "one explanation per case");
    for svg in files
        .iter()
        .filter(|f| f.extension() == Some("svg".as_ref()))
    {
        let drawing = parse_markup(svg);
        assert!(
            drawing["circle"] >= 2 && drawing["path"] >= 3,
            "{drawing:?}"
        );
    }
}

#[test]
fn max_write_wins_registers_run_on_the_sdk_and_a_lowered_register_is_caught() {
    let store = tempfile::tempdir().unwrap();
    let registers = ["--txn", "max-write-wins"];
    assert_eq!(
        wait(start(store.path(), "powersync-local", "2", &registers)),
        0
    );
    let dir = latest(store.path());
    let ops = history(&dir);
    let writes = committed_mops(&ops)
        .filter(|m| matches!(m, checker::history::Mop::Write { .. }))
        .count();
    assert!(writes > 50, "register writes committed: {writes}");
    let results = std::fs::read_to_string(dir.join("results.edn")).unwrap();
    assert!(results.contains(":registers {:valid? true"), "{results}");

    // A fault from outside: another process lowers every register while the run goes on.
    let child = start(store.path(), "sqlite3-local", "4", &registers);
    let dir = wait_for_ops(store.path().join("sqlite3-local").as_path(), 200);
    let conn = rusqlite::Connection::open(dir.join("n1/data.db")).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    let changed = conn
        .execute("UPDATE registers SET v = v - 1000000", [])
        .unwrap();
    assert!(changed > 0, "some registers were written");
    assert_eq!(
        wait(child),
        1,
        "reads going backwards make the history invalid"
    );
    let results = std::fs::read_to_string(dir.join("results.edn")).unwrap();
    assert!(results.contains(":stale-read"), "{results}");
    assert_eq!(analyze(&["-t", dir.to_str().unwrap()]), 1);
}

#[test]
fn faults_prove_they_took_effect_and_a_run_without_the_effect_is_unknown() {
    let store = tempfile::tempdir().unwrap();
    let faults = ["--nemesis", "kill,pause", "--nemesis-interval", "0.7"];
    assert_eq!(wait(start(store.path(), "sqlite3-local", "4", &faults)), 0);
    let dir = latest(store.path());
    let results = std::fs::read_to_string(dir.join("results.edn")).unwrap();
    for fault in ["kill", "pause"] {
        // `:kill {:count N, :effective N, ...}`, N at least 1: every one took effect.
        let entry = results
            .split_once(&format!(":{fault} {{:count "))
            .map(|(_, rest)| rest)
            .unwrap_or_else(|| panic!("no {fault} in :nemesis: {results}"));
        let number = |text: &str| -> u64 {
            text.split(|c: char| !c.is_ascii_digit())
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let count = number(entry);
        let effective = number(entry.split_once(":effective ").unwrap().1);
        assert!(count >= 1 && effective == count, "{fault}: {results}");
    }
    let history = std::fs::read_to_string(dir.join("history.edn")).unwrap();
    assert!(history.contains(":evidence \"killed: pid "), "{history}");
    // The same run, had its kill done nothing: checked again, it is not valid under faults.
    let ineffective = history.replace(
        ":fault :kill, :effective true",
        ":fault :kill, :effective false",
    );
    assert_ne!(ineffective, history);
    std::fs::write(dir.join("history.edn"), ineffective).unwrap();
    assert_eq!(analyze(&["-t", dir.to_str().unwrap()]), 2);
    let results = std::fs::read_to_string(dir.join("results.edn")).unwrap();
    assert!(
        results.contains(":faults-without-effect [\"kill was injected"),
        "{results}"
    );
}
