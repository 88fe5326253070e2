//! `harness serve`: a small web page listing every stored run (test, time, verdict coloured
//! valid / invalid / unknown), linking to its results, history, plots, timeline and anomalies,
//! and serving the store's files. Read-only; nothing outside the store is served.

use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use checker::edn::{self, Edn};
use tiny_http::{Header, Request, Response, Server};

use crate::interrupt;
use crate::report::timeline::escape;
use crate::store::{self, Run};

/// Options of `harness serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeOptions {
    /// The store directory.
    #[arg(long, default_value = "store")]
    pub store: PathBuf,
    /// Address to bind.
    #[arg(short = 'b', long = "bind", default_value = "127.0.0.1")]
    pub bind: String,
    /// Port; 0 picks a free one.
    #[arg(short = 'p', long = "port", default_value_t = 8080)]
    pub port: u16,
}

/// Serves until interrupted. Prints the address it serves on as its first line of output.
pub fn serve(options: &ServeOptions) -> anyhow::Result<()> {
    let server = Server::http((options.bind.as_str(), options.port))
        .map_err(|e| anyhow::anyhow!("binding {}:{}: {e}", options.bind, options.port))?;
    let address = server
        .server_addr()
        .to_ip()
        .context("the server has no IP address")?;
    println!("serving {} on http://{address}/", options.store.display());
    while !interrupt::interrupted() {
        if let Some(request) = server.recv_timeout(Duration::from_millis(200))? {
            let (status, kind, body) = answer(&options.store, request.url());
            respond(request, status, kind, body);
        }
    }
    Ok(())
}

fn respond(request: Request, status: u16, kind: &str, body: Vec<u8>) {
    let header = Header::from_bytes("Content-Type", kind).expect("a valid header");
    let response = Response::from_data(body)
        .with_status_code(status)
        .with_header(header);
    // A client that went away is no concern of the server's.
    let _ = request.respond(response);
}

/// The status, content type and body for a request of `url`.
fn answer(store: &Path, url: &str) -> (u16, &'static str, Vec<u8>) {
    let path = url.split(['?', '#']).next().unwrap_or("/");
    let html = "text/html; charset=utf-8";
    if path == "/" {
        return match index(store) {
            Ok(page) => (200, html, page.into_bytes()),
            Err(e) => (
                500,
                "text/plain; charset=utf-8",
                format!("{e:#}\n").into_bytes(),
            ),
        };
    }
    let Some(relative) = path.strip_prefix("/files/").map(percent_decode) else {
        return (404, "text/plain; charset=utf-8", b"not found\n".to_vec());
    };
    let relative = Path::new(&relative);
    if relative
        .components()
        .any(|c| !matches!(c, Component::Normal(_)))
    {
        return (400, "text/plain; charset=utf-8", b"no such path\n".to_vec());
    }
    let full = store.join(relative);
    if full.is_dir() {
        return match listing(&full, relative) {
            Ok(page) => (200, html, page.into_bytes()),
            Err(e) => (
                500,
                "text/plain; charset=utf-8",
                format!("{e:#}\n").into_bytes(),
            ),
        };
    }
    match std::fs::read(&full) {
        Ok(bytes) => (200, content_type(&full), bytes),
        Err(_) => (404, "text/plain; charset=utf-8", b"not found\n".to_vec()),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("png") => "image/png",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        Some("db") => "application/octet-stream",
        _ => "text/plain; charset=utf-8",
    }
}

/// A run's verdict, from its `results.edn`: `valid`, `invalid`, `unknown`, or `incomplete`
/// while it runs or when it never finished.
fn verdict(dir: &Path) -> (&'static str, Option<i64>) {
    let Ok(text) = std::fs::read_to_string(dir.join("results.edn")) else {
        return ("incomplete", None);
    };
    let Ok(results) = edn::parse(&text) else {
        return ("incomplete", None);
    };
    let verdict = match results.get("valid?") {
        Some(Edn::Bool(true)) => "valid",
        Some(Edn::Bool(false)) => "invalid",
        _ => "unknown",
    };
    let count = match results.get("stats").and_then(|s| s.get("count")) {
        Some(Edn::Int(n)) => Some(*n),
        _ => None,
    };
    (verdict, count)
}

/// A run's transactions, nodes and faults, from its `test.json`: `list-append, n1 n2 + pg1,
/// kill pause`.
fn configuration(dir: &Path) -> String {
    let Ok(test) = std::fs::read_to_string(dir.join("test.json")) else {
        return String::new();
    };
    let Ok(test) = serde_json::from_str::<serde_json::Value>(&test) else {
        return String::new();
    };
    let names = |field: &str| -> Vec<String> {
        test[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    let mut nodes = names("nodes").join(" ");
    let postgres = names("postgres-nodes");
    if !postgres.is_empty() {
        nodes = format!("{nodes} + {}", postgres.join(" "));
    }
    let faults = names("nemesis");
    let faults = if faults.is_empty() {
        "no faults".to_owned()
    } else {
        faults.join(" ")
    };
    let txn = test["txn"].as_str().unwrap_or("list-append");
    format!("{txn}, {nodes}, {faults}")
}

/// `20261126T040649.967Z` as `2026-11-26 04:06:49`.
fn readable_time(name: &str) -> String {
    let b = name.as_bytes();
    if b.len() >= 15 && b[8] == b'T' {
        format!(
            "{}-{}-{} {}:{}:{}",
            &name[0..4],
            &name[4..6],
            &name[6..8],
            &name[9..11],
            &name[11..13],
            &name[13..15]
        )
    } else {
        name.to_owned()
    }
}

const PAGE_HEAD: &str = r#"<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" lang="en">
<head>
<meta charset="utf-8"/>
<title>TITLE</title>
<style>
body { font-family: sans-serif; margin: 20px; }
table { border-collapse: collapse; }
th, td { border: 1px solid #bbb; padding: 4px 10px; text-align: left; }
th { background: #eee; }
td.valid { background: #43a047; color: #fff; font-weight: bold; }
td.invalid { background: #e53935; color: #fff; font-weight: bold; }
td.unknown { background: #fb8c00; color: #fff; font-weight: bold; }
td.incomplete { background: #9e9e9e; color: #fff; }
a { margin-right: 8px; }
</style>
</head>
<body>
"#;

fn page(title: &str, body: &str) -> String {
    format!(
        "{}{body}</body>\n</html>\n",
        PAGE_HEAD.replace("TITLE", &escape(title))
    )
}

/// The list of runs.
fn index(store: &Path) -> anyhow::Result<String> {
    let runs = if store.exists() {
        store::runs(store)?
    } else {
        Vec::new()
    };
    let mut body = format!(
        "<h1>Stored runs</h1>\n<p>{} run(s) in {}</p>\n<table id=\"runs\">\n<tr><th>test</th><th>time (UTC)</th><th>configuration</th><th>verdict</th><th>operations</th><th>files</th></tr>\n",
        runs.len(),
        escape(&store.display().to_string())
    );
    for run in &runs {
        row(&mut body, run);
    }
    body.push_str("</table>\n");
    Ok(page("Stored runs", &body))
}

fn row(body: &mut String, run: &Run) {
    let (verdict, count) = verdict(&run.dir);
    let base = format!("/files/{}/{}", run.test, run.name);
    let mut links = String::new();
    for (file, label) in [
        ("results.edn", "results"),
        ("history.edn", "history"),
        ("jepsen.log", "log"),
        ("timeline.html", "timeline"),
        ("latency-raw.png", "latency"),
        ("latency-quantiles.png", "quantiles"),
        ("rate.png", "rate"),
        ("replication-lag.png", "lag"),
        ("anomalies/index.html", "anomalies"),
    ] {
        if run.dir.join(file).exists() {
            let _ = write!(links, "<a href=\"{base}/{file}\">{label}</a>");
        }
    }
    let _ = write!(links, "<a href=\"{base}/\">all files</a>");
    let _ = writeln!(
        body,
        "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"{verdict}\">{verdict}</td><td>{}</td><td>{links}</td></tr>",
        escape(&run.test),
        escape(&readable_time(&run.name)),
        escape(&configuration(&run.dir)),
        count.map_or_else(String::new, |c| c.to_string()),
    );
}

/// A directory's files, linked.
fn listing(dir: &Path, relative: &Path) -> anyhow::Result<String> {
    let mut names: Vec<(String, bool)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                e.path().is_dir(),
            )
        })
        .collect();
    names.sort();
    let shown = relative.display().to_string();
    let mut body = format!(
        "<h1>{}</h1>\n<p><a href=\"/\">all runs</a></p>\n<ul>\n",
        escape(&shown)
    );
    for (name, is_dir) in names {
        let slash = if is_dir { "/" } else { "" };
        let _ = writeln!(
            body,
            "<li><a href=\"/files/{}/{}{slash}\">{}{slash}</a></li>",
            escape(&shown),
            escape(&name),
            escape(&name)
        );
    }
    body.push_str("</ul>\n");
    Ok(page(&shown, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_only_inside_the_store() {
        let store = tempfile::tempdir().unwrap();
        let run = store.path().join("sqlite3-local/20261126T040649.967Z");
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("history.edn"), "").unwrap();
        std::fs::write(
            run.join("test.json"),
            r#"{"txn": "max-write-wins", "nodes": ["n1", "n2"], "postgres-nodes": ["pg1"], "nemesis": ["kill"]}"#,
        )
        .unwrap();
        std::fs::write(
            run.join("results.edn"),
            "{:valid? false\n :stats {:count 7}}\n",
        )
        .unwrap();
        let (status, _, body) = answer(store.path(), "/");
        let body = String::from_utf8(body).unwrap();
        assert_eq!(status, 200);
        assert!(
            body.contains("<td class=\"invalid\">invalid</td><td>7</td>"),
            "{body}"
        );
        assert!(body.contains("2026-11-26 04:06:49"));
        assert!(
            body.contains("<td>max-write-wins, n1 n2 + pg1, kill</td>"),
            "{body}"
        );
        let (status, kind, _) = answer(
            store.path(),
            "/files/sqlite3-local/20261126T040649.967Z/results.edn",
        );
        assert_eq!((status, kind), (200, "text/plain; charset=utf-8"));
        assert_eq!(answer(store.path(), "/files/../../etc/passwd").0, 400);
        assert_eq!(answer(store.path(), "/files/%2e%2e/x").0, 400);
        assert_eq!(answer(store.path(), "/files/nothing").0, 404);
        let (status, _, listing) = answer(store.path(), "/files/sqlite3-local/");
        assert_eq!(status, 200);
        assert!(
            String::from_utf8(listing)
                .unwrap()
                .contains("20261126T040649.967Z/")
        );
    }
}
