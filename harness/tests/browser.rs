//! The results browser in a real headless Chromium: after a short real run, `harness serve`'s
//! page is rendered, and its DOM and a screenshot must show the runs table with the verdict
//! coloured. Without Chromium the test says it was skipped, unless HARNESS_REQUIRE_BROWSER is
//! set (CI installs Debian's chromium and sets it).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

mod common;

use common::{decode_png, endpoint, harness};

/// Chromium, from CHROMIUM or the PATH.
fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|n| dir.join(n)))
        .find(|p| p.is_file())
}

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(store: &Path) -> (Server, String) {
    let mut child = Command::new(harness())
        .args(["serve", "--port", "0", "--store"])
        .arg(store)
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting harness serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    (Server(child), url)
}

fn headless(chromium: &Path, args: &[&str], url: &str) -> std::process::Output {
    Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--hide-scrollbars",
            "--window-size=1200,500",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("running chromium")
}

#[test]
fn browser_renders_the_runs_table() {
    let Some(chromium) = chromium() else {
        assert!(
            std::env::var_os("HARNESS_REQUIRE_BROWSER").is_none(),
            "HARNESS_REQUIRE_BROWSER is set but no chromium was found (apt-get install chromium)"
        );
        endpoint::prerequisite::missing(
            "Chromium: no chromium on the PATH (Debian's package chromium provides it)",
        );
        return;
    };
    let store = tempfile::tempdir().unwrap();
    let status = Command::new(harness())
        .args([
            "test",
            "sqlite3-local",
            "--time-limit",
            "2",
            "--rate",
            "100",
        ])
        .arg("--store")
        .arg(store.path())
        .arg("--endpoint-bin")
        .arg(endpoint())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0), "the run is valid");
    let (_server, url) = serve(store.path());

    let dom = headless(&chromium, &["--dump-dom"], &url);
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains(r#"<table id="runs">"#), "{dom}");
    assert!(dom.contains(r#"<td class="valid">valid</td>"#), "{dom}");
    assert!(dom.contains("timeline.html") && dom.contains("latency-raw.png"));

    let shot = store.path().join("index.png");
    let out = headless(
        &chromium,
        &[&format!("--screenshot={}", shot.display())],
        &url,
    );
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let image = decode_png(&shot);
    // The verdict cell's green, #43a047, as Chromium paints it.
    let green = image.count([0x43, 0xa0, 0x47], 12);
    assert!(
        green > 400,
        "the valid verdict's cell is painted green: {green} green pixels in {}",
        shot.display()
    );
    // The table's header row is painted too: its grey background.
    let grey = image.count([0xee, 0xee, 0xee], 0);
    assert!(grey > 1000, "the header row is painted: {grey} grey pixels");
}
