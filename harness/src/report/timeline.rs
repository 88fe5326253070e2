//! `timeline.html`: each process's operations as boxes on a time axis (one column per process,
//! time flowing down), each linked to its row in the history below. Well-formed XHTML, so any
//! HTML or XML parser reads it.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use checker::history::{Op, OpType, Process};

/// Operations drawn at most; a longer history is cut, and the page says so.
const MAX_OPS: usize = 20_000;
/// The tallest the time axis gets, in pixels.
const MAX_HEIGHT: f64 = 60_000.0;
const COLUMN: usize = 110;

/// Escapes text for HTML content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page for `ops`, titled `title`.
pub fn render(title: &str, ops: &[Op]) -> String {
    let shown = &ops[..ops.len().min(MAX_OPS)];
    // Pair each invocation with its process's next completion.
    let mut open: BTreeMap<&Process, &Op> = BTreeMap::new();
    let mut spans: Vec<(&Op, Option<&Op>)> = Vec::new();
    for op in shown {
        if op.kind == OpType::Invoke {
            if let Some(unfinished) = open.insert(&op.process, op) {
                spans.push((unfinished, None));
            }
        } else {
            match open.remove(&op.process) {
                Some(invoke) => spans.push((invoke, Some(op))),
                None => spans.push((op, Some(op))),
            }
        }
    }
    spans.extend(open.into_values().map(|invoke| (invoke, None)));
    let end = shown.last().map_or(1, |o| o.time.max(1)) as f64;
    let scale = (MAX_HEIGHT / end).min(1e-6 * 2.0); // px per ns: at most 2 px per ms
    let mut processes: Vec<&Process> = spans.iter().map(|(i, _)| &i.process).collect();
    processes.sort();
    processes.dedup();
    let column: BTreeMap<&Process, usize> =
        processes.iter().enumerate().map(|(i, p)| (*p, i)).collect();

    let mut html = String::new();
    let _ = write!(
        html,
        r#"<!DOCTYPE html>
<html xmlns="http://www.w3.org/1999/xhtml" lang="en">
<head>
<meta charset="utf-8"/>
<title>{title}</title>
<style>
body {{ font-family: sans-serif; font-size: 12px; margin: 12px; }}
#timeline {{ position: relative; height: {height}px; width: {width}px; margin-top: 32px;
             border-top: 1px solid #999; }}
.process {{ position: absolute; top: -18px; width: {col}px; font-weight: bold; }}
.op {{ position: absolute; width: {box}px; min-height: 2px; overflow: hidden; border-radius: 2px;
       color: #000; text-decoration: none; font-size: 10px; }}
.ok {{ background: #6db6ff; }} .info {{ background: #ffc04d; }} .fail {{ background: #ff7aa8; }}
.invoke {{ background: #ddd; }}
table {{ border-collapse: collapse; margin-top: 24px; }}
td, th {{ border: 1px solid #ccc; padding: 2px 6px; font-family: monospace; text-align: left; }}
tr:target {{ background: #ffef9f; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p>{count} operations{cut}. Time flows down, one column per process; a box spans an operation's
invocation to its completion. Click a box for the operation in the history.</p>
<div id="timeline">
"#,
        title = escape(title),
        height = (end * scale).ceil() as u64 + 40,
        width = processes.len() * COLUMN,
        col = COLUMN,
        box = COLUMN - 8,
        count = ops.len(),
        cut = if ops.len() > shown.len() {
            format!(" (the first {} shown)", shown.len())
        } else {
            String::new()
        },
    );
    for (p, i) in &column {
        let _ = writeln!(
            html,
            r#"<div class="process" style="left: {}px">{}</div>"#,
            i * COLUMN,
            escape(&p.to_string())
        );
    }
    for (invoke, completion) in &spans {
        let done = completion.unwrap_or(invoke);
        let kind = completion.map_or("invoke", |c| c.kind.name());
        let top = invoke.time as f64 * scale;
        let height = ((done.time - invoke.time) as f64 * scale).max(2.0);
        let _ = writeln!(
            html,
            r##"<a class="op {kind}" href="#op-{index}" style="top: {top:.1}px; left: {left}px; height: {height:.1}px" title="{title}">{f}</a>"##,
            index = done.index,
            left = column[&invoke.process] * COLUMN,
            title = escape(&done.to_edn().to_string()),
            f = escape(&invoke.f),
        );
    }
    html.push_str("</div>\n<table id=\"history\">\n<tr><th>index</th><th>time (ms)</th><th>process</th><th>type</th><th>operation</th></tr>\n");
    for op in shown {
        let _ = writeln!(
            html,
            r#"<tr id="op-{index}"><td>{index}</td><td>{time:.3}</td><td>{process}</td><td>{kind}</td><td>{edn}</td></tr>"#,
            index = op.index,
            time = op.time as f64 / 1e6,
            process = escape(&op.process.to_string()),
            kind = op.kind.name(),
            edn = escape(&op.to_edn().to_string()),
        );
    }
    html.push_str("</table>\n</body>\n</html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::read_history;

    #[test]
    fn draws_each_operation_linked_to_its_history_row() {
        let text = "\
{:index 0, :time 0, :type :invoke, :process 0, :f :txn, :value [[:append 1 1]]}
{:index 1, :time 1000, :type :invoke, :process 1, :f :txn, :value [[:r 1 nil]]}
{:index 2, :time 5000000, :type :ok, :process 0, :f :txn, :value [[:append 1 1]]}
{:index 3, :time 6000000, :type :info, :process 1, :f :txn, :value [[:r 1 nil]]}
{:index 4, :time 7000000, :type :invoke, :process :nemesis, :f :kill, :value \"n1\"}";
        let html = render("a <test>", &read_history(text.as_bytes()).unwrap());
        assert!(html.contains("<title>a &lt;test&gt;</title>"));
        assert!(html.contains(r##"class="op ok" href="#op-2""##), "{html}");
        assert!(html.contains(r##"class="op info" href="#op-3""##));
        assert!(html.contains(r##"class="op invoke" href="#op-4""##));
        for index in 0..5 {
            assert!(html.contains(&format!(r#"<tr id="op-{index}">"#)));
        }
    }
}
