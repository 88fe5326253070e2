//! One readable file per anomaly found (`anomalies/<check>-<type>-<n>.txt`), a drawing of each
//! cycle (`.svg`), and `anomalies/index.html` gathering them.

use std::f64::consts::PI;
use std::fmt::Write as _;
use std::path::Path;

use checker::edn::Edn;
use checker::verdict::Verdict;

use super::timeline::escape;

/// Cases written per anomaly type; the rest are in `results.edn`.
const MAX_CASES: usize = 20;

/// What an anomaly type means, in a sentence; `-process` and `-realtime` variants mean the
/// same with the process or real-time order taking part.
fn meaning(kind: &str) -> &'static str {
    let base = kind
        .trim_end_matches("-process")
        .trim_end_matches("-realtime");
    match base {
        "G0" => {
            "A cycle of write-write dependencies: transactions overwrote each other in an order no serial execution allows."
        }
        "G1a" => "Aborted read: a transaction read a value written by a transaction that failed.",
        "G1b" => {
            "Intermediate read: a transaction read a value its writer later overwrote in the same transaction."
        }
        "G1c" => "Circular information flow: a cycle of write-write and write-read dependencies.",
        "G-single-item" => {
            "Read skew: a cycle with exactly one anti-dependency (a read that missed a write)."
        }
        "G-nonadjacent-item" => "A cycle whose anti-dependencies are never adjacent.",
        "G2-item" => {
            "A cycle with several anti-dependencies: no serial order explains what was read."
        }
        "incompatible-order" => {
            "Two reads of one list where neither is a prefix of the other: a list only grows by appends."
        }
        "duplicate-elements" => "A list held the same (unique) value twice.",
        "internal" => {
            "A read inside a transaction disagreed with what the transaction itself had read or written before."
        }
        "lost-update" => {
            "Two transactions read the same version of a key and both wrote it: one update was lost."
        }
        "future-read" => {
            "A read returned a value written by a transaction invoked only after the read completed."
        }
        "dirty-update" => "A write was applied on top of a value from a failed transaction.",
        "read-your-writes" => "A process did not see its own earlier write.",
        "monotonic-reads" => {
            "A process saw less than it had already seen: its reads went back in time."
        }
        "monotonic-writes" => {
            "A process's writes became visible out of order: a reader saw a later write of the process without an earlier one."
        }
        "writes-follow-reads" => {
            "A reader saw a write without something its writer had seen before writing it."
        }
        "garbage-read" => "A read returned a value nobody wrote.",
        "stale-read" => {
            "With one client, a read missed a write that had completed before the read began."
        }
        "cyclic-causality" => {
            "Transactions each causally before the other: every one read another's write around a cycle."
        }
        "lost-append" => "An acknowledged append is missing from a participant's final state.",
        "lost-write" => "A participant's final value is below the greatest acknowledged write.",
        "divergent-final-reads" => {
            "After healing and quiescence, participants hold different values."
        }
        "garbage-final-read" => "A final state holds a value nobody wrote.",
        "failed-append-visible" | "failed-write-visible" => {
            "A final state holds a value written by a transaction that failed."
        }
        "missing-final-read" => {
            "A participant's final read did not complete, so convergence could not be decided for it."
        }
        kind if kind.ends_with("-cycle-exists") => {
            "The dependencies that this model forbids to form a cycle form one among these transactions (their indices are listed), though the search named no cycle of a specific kind."
        }
        "empty-transaction-graph" => {
            "No dependency relates any two transactions: the history says nothing about isolation."
        }
        "stall" => "A wait for quiescence (empty upload queue, downloads settled) ran out.",
        "duplicate-writes" | "duplicate-appends" => {
            "A value meant to be unique was written twice: the history cannot be checked exactly."
        }
        _ => "See the case below.",
    }
}

/// A case's explanation: what the anomaly type means, the checker's own reasoning (cycles),
/// and each witness on a line of its own.
pub fn explain(check: &str, kind: &str, case: &Edn) -> String {
    let mut text = format!("{kind}, found by the {check} check\n{}\n\n", meaning(kind));
    if let Some(Edn::Str(explanation)) = case.get("explanation") {
        text.push_str(explanation);
        text.push('\n');
    }
    match case {
        Edn::Map(entries) => {
            // The cycle is in the explanation; everything else witnesses the anomaly.
            let witnesses: Vec<String> = entries
                .iter()
                .filter(|(key, _)| {
                    !matches!(key, Edn::Keyword(k) if ["explanation", "steps", "cycle", "type"].contains(&k.as_str()))
                })
                .map(|(key, value)| format!("  {}: {value}", key.to_string().trim_start_matches(':')))
                .collect();
            if !witnesses.is_empty() {
                let _ = writeln!(text, "Witnesses:\n{}", witnesses.join("\n"));
            }
        }
        other => {
            let _ = writeln!(text, "Witness: {other}");
        }
    }
    text
}

/// The cycle of a case, as (transaction label, operation) and the relation of each step.
fn cycle(case: &Edn) -> Option<(Vec<String>, Vec<String>)> {
    let ops = case.get("cycle")?.as_seq()?;
    let steps = case.get("steps")?.as_seq()?;
    // The cycle repeats its first transaction at the end.
    let nodes = ops[..ops.len().saturating_sub(1)]
        .iter()
        .map(|op| op.get("index").map_or_else(String::new, Edn::to_string))
        .collect::<Vec<_>>();
    let rels = steps
        .iter()
        .map(|s| {
            let rel = s.get("type").map_or_else(String::new, |t| t.to_string());
            match s.get("key") {
                Some(k) => format!("{} on key {k}", rel.trim_start_matches(':')),
                None => rel.trim_start_matches(':').to_owned(),
            }
        })
        .collect::<Vec<_>>();
    (nodes.len() >= 2 && nodes.len() == rels.len()).then_some((nodes, rels))
}

/// An SVG drawing of a cycle: transactions on a circle, each arrow labelled with its relation.
pub fn draw_cycle(nodes: &[String], rels: &[String]) -> String {
    let n = nodes.len() as f64;
    let (cx, cy, r) = (300.0, 260.0, 180.0);
    let at = |i: usize| {
        let a = -PI / 2.0 + 2.0 * PI * i as f64 / n;
        (cx + r * a.cos(), cy + r * a.sin())
    };
    let mut svg = String::from(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="600" height="520" viewBox="0 0 600 520" font-family="sans-serif" font-size="13">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#444"/></marker></defs>
"##,
    );
    for (i, rel) in rels.iter().enumerate() {
        let ((x1, y1), (x2, y2)) = (at(i), at((i + 1) % nodes.len()));
        let (dx, dy) = (x2 - x1, y2 - y1);
        let len = (dx * dx + dy * dy).sqrt().max(1.0);
        let (ux, uy) = (dx / len, dy / len);
        // Each arrow bends to its left, so the two arrows between a pair never overlap.
        let bend = 0.18 * len;
        let (qx, qy) = ((x1 + x2) / 2.0 + uy * bend, (y1 + y2) / 2.0 - ux * bend);
        let pad = 34.0;
        let (sx, sy) = (x1 + ux * pad, y1 + uy * pad);
        let (ex, ey) = (x2 - ux * pad, y2 - uy * pad);
        let _ = writeln!(
            svg,
            r##"<path d="M {sx:.1} {sy:.1} Q {qx:.1} {qy:.1} {ex:.1} {ey:.1}" fill="none" stroke="#444" stroke-width="1.5" marker-end="url(#arrow)"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#b00020">{}</text>"##,
            qx + uy * 14.0,
            qy - ux * 14.0 + 4.0,
            escape(rel)
        );
    }
    for (i, index) in nodes.iter().enumerate() {
        let (x, y) = at(i);
        let _ = writeln!(
            svg,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="30" fill="#e8f0fe" stroke="#1f77d4" stroke-width="2"/>
<text x="{x:.1}" y="{:.1}" text-anchor="middle" font-weight="bold">T{}</text>
<text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="10">op {}</text>"##,
            y - 2.0,
            i + 1,
            y + 12.0,
            escape(index)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// Writes the files for every anomaly in `verdicts` under `dir/anomalies`; returns how many
/// cases were written. Leaves no directory when nothing was found.
pub fn write(dir: &Path, verdicts: &[(&str, &Verdict)]) -> anyhow::Result<usize> {
    let out = dir.join("anomalies");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    let mut index = String::new();
    let mut written = 0;
    for (check, verdict) in verdicts {
        for (kind, cases) in &verdict.anomalies {
            for (n, case) in cases.iter().take(MAX_CASES).enumerate() {
                std::fs::create_dir_all(&out)?;
                let stem = format!("{check}-{kind}-{}", n + 1);
                let text = explain(check, kind, case);
                std::fs::write(out.join(format!("{stem}.txt")), &text)?;
                let _ = write!(
                    index,
                    "<h2 id=\"{stem}\">{}</h2>\n<p><a href=\"{stem}.txt\">{stem}.txt</a></p>\n<pre>{}</pre>\n",
                    escape(&stem),
                    escape(&text)
                );
                if let Some((nodes, rels)) = cycle(case) {
                    std::fs::write(out.join(format!("{stem}.svg")), draw_cycle(&nodes, &rels))?;
                    let _ = writeln!(
                        index,
                        "<p><img src=\"{stem}.svg\" alt=\"the cycle of {stem}\"/></p>"
                    );
                }
                written += 1;
            }
            if cases.len() > MAX_CASES {
                let _ = writeln!(
                    index,
                    "<p>{} more {kind} cases are in results.edn.</p>",
                    cases.len() - MAX_CASES
                );
            }
        }
    }
    if written > 0 {
        let page = format!(
            "<!DOCTYPE html>\n<html xmlns=\"http://www.w3.org/1999/xhtml\" lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n<title>anomalies</title>\n<style>body {{ font-family: sans-serif; margin: 16px; }} pre {{ background: #f6f6f6; padding: 8px; white-space: pre-wrap; }}</style>\n</head>\n<body>\n<h1>{written} anomalies explained</h1>\n{index}</body>\n</html>\n"
        );
        std::fs::write(out.join("index.html"), page)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::edn::{kw, kw_map};

    #[test]
    fn explains_a_case_by_its_meaning_and_witnesses() {
        let case = kw_map([
            ("op", kw("t2")),
            ("key", Edn::Int(3)),
            ("read", Edn::Int(4)),
            ("expected-at-least", Edn::Int(9)),
        ]);
        let text = explain("registers", "monotonic-reads", &case);
        assert!(
            text.starts_with("monotonic-reads, found by the registers check\nA process saw less"),
            "{text}"
        );
        assert!(
            text.contains("\n  read: 4\n  expected-at-least: 9\n"),
            "{text}"
        );
        let cycle = kw_map([
            ("cycle", Edn::Vector(vec![])),
            (
                "explanation",
                Edn::Str("T1 < T2 < T1: a contradiction!".into()),
            ),
        ]);
        let text = explain("workload", "G-single-item-realtime", &cycle);
        assert!(
            text.contains("Read skew") && text.contains("a contradiction!"),
            "{text}"
        );
        assert!(!text.contains("cycle:"), "{text}");
    }

    #[test]
    fn draws_a_cycle_with_a_labelled_arrow_per_step() {
        let svg = draw_cycle(
            &["3".into(), "7".into()],
            &["wr on key 1".into(), "rw on key 2".into()],
        );
        assert_eq!(svg.matches("marker-end").count(), 2);
        assert!(
            svg.contains(">wr on key 1</text>") && svg.contains(">T2</text>"),
            "{svg}"
        );
    }
}
