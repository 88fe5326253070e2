//! Every list-append anomaly, each in a small hand-made history, and large valid histories.

use checker::history::{Op, read_history};
use checker::list_append::{Options, check};
use checker::verdict::{Validity, Verdict};

/// Builds a history line by line, in Jepsen's EDN.
#[derive(Default)]
struct History {
    lines: Vec<String>,
}

impl History {
    fn push(&mut self, process: i64, kind: &str, value: &str) -> &mut Self {
        let index = self.lines.len();
        self.lines.push(format!(
            "{{:index {index}, :time {}, :type :{kind}, :process {process}, :f :txn, :value {value}}}",
            index * 1000
        ));
        self
    }

    /// Invokes `value` with its reads blanked out.
    fn invoke(&mut self, process: i64, value: &str) -> &mut Self {
        let blanked = blank_reads(value);
        self.push(process, "invoke", &blanked)
    }

    /// A whole transaction: invocation then completion.
    fn txn(&mut self, process: i64, kind: &str, value: &str) -> &mut Self {
        self.invoke(process, value).push(process, kind, value)
    }

    fn ops(&self) -> Vec<Op> {
        read_history(self.lines.join("\n").as_bytes()).expect("test history parses")
    }

    fn check(&self, models: &[&'static str]) -> Verdict {
        check(
            &self.ops(),
            &Options {
                models: models.to_vec(),
                ..Options::default()
            },
        )
    }
}

/// `[[:r 1 [1 2]] [:append 1 3]]` -> `[[:r 1 nil] [:append 1 3]]`.
fn blank_reads(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(pos) = rest.find("[:r ") {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 4..];
        let key_end = after.find(' ').expect("[:r k v]");
        out.push_str("[:r ");
        out.push_str(&after[..key_end]);
        out.push_str(" nil]");
        let v = &after[key_end + 1..];
        let end = if v.starts_with('[') {
            v.find(']').expect("closing ]") + 2
        } else {
            v.find(']').expect("closing ]") + 1
        };
        rest = &v[end..];
    }
    out.push_str(rest);
    out
}

fn types(verdict: &Verdict) -> Vec<&str> {
    verdict.anomaly_types().collect()
}

const STRICT: &[&str] = &["strict-serializable"];

#[test]
fn blank_reads_blanks_only_reads() {
    assert_eq!(
        blank_reads("[[:r 1 [1 2]] [:append 1 3] [:r 2 []] [:r 3 nil]]"),
        "[[:r 1 nil] [:append 1 3] [:r 2 nil] [:r 3 nil]]"
    );
}

/// Two concurrent writers whose appends land in opposite orders on two keys: G0.
fn write_cycle() -> History {
    let mut h = History::default();
    h.invoke(0, "[[:append 1 1] [:append 2 1]]")
        .invoke(1, "[[:append 1 2] [:append 2 2]]")
        .push(0, "ok", "[[:append 1 1] [:append 2 1]]")
        .push(1, "ok", "[[:append 1 2] [:append 2 2]]")
        .txn(2, "ok", "[[:r 1 [1 2]] [:r 2 [2 1]]]");
    h
}

#[test]
fn g0_write_cycle() {
    let v = write_cycle().check(STRICT);
    assert_eq!(v.valid, Validity::Invalid);
    assert!(types(&v).contains(&"G0"), "{:?}", types(&v));
    assert!(v.not.contains("read-uncommitted"));
    let case = &v.anomalies["G0"][0];
    let text = case.get("explanation").unwrap().to_string();
    assert!(text.contains("appended 2 after T"), "{text}");
    assert!(text.contains("a contradiction"), "{text}");
}

#[test]
fn g1a_aborted_read() {
    let mut h = History::default();
    h.txn(0, "fail", "[[:append 1 1]]")
        .txn(1, "ok", "[[:r 1 [1]]]");
    let v = h.check(STRICT);
    // As in Elle, no dependency relates the two: the graph is empty too.
    assert_eq!(types(&v), ["G1a", "empty-transaction-graph"]);
    assert_eq!(v.not, ["read-committed"].into());
}

#[test]
fn g1b_intermediate_read() {
    let mut h = History::default();
    h.invoke(0, "[[:append 1 1] [:append 1 2]]")
        .txn(1, "ok", "[[:r 1 [1]]]")
        .push(0, "ok", "[[:append 1 1] [:append 1 2]]");
    let v = h.check(STRICT);
    assert!(types(&v).contains(&"G1b"), "{:?}", types(&v));
    assert_eq!(v.valid, Validity::Invalid);
}

#[test]
fn g1c_circular_information_flow() {
    let mut h = History::default();
    h.invoke(0, "[[:append 1 1] [:r 2 [1]]]")
        .invoke(1, "[[:append 2 1] [:r 1 [1]]]")
        .push(0, "ok", "[[:append 1 1] [:r 2 [1]]]")
        .push(1, "ok", "[[:append 2 1] [:r 1 [1]]]");
    let v = h.check(STRICT);
    assert_eq!(types(&v), ["G1c"]);
    assert!(v.not.contains("read-committed"));
}

#[test]
fn g_single_read_skew() {
    let mut h = History::default();
    h.invoke(0, "[[:r 1 []] [:r 2 [1]]]")
        .invoke(1, "[[:append 1 1] [:append 2 1]]")
        .push(1, "ok", "[[:append 1 1] [:append 2 1]]")
        .push(0, "ok", "[[:r 1 []] [:r 2 [1]]]")
        .txn(2, "ok", "[[:r 1 [1]]]");
    let v = h.check(&["serializable"]);
    assert_eq!(types(&v), ["G-single-item"]);
    // As Elle: a G-single-item is also a G2-item, which repeatable read forbids.
    assert_eq!(v.not, ["consistent-view", "repeatable-read"].into());
    let text = v.anomalies["G-single-item"][0]
        .get("explanation")
        .unwrap()
        .to_string();
    assert!(text.contains("read key 1 = []"), "{text}");
    assert!(text.contains("observed T"), "{text}");
}

#[test]
fn g_nonadjacent() {
    let mut h = History::default();
    let t1 = "[[:r 1 []] [:r 4 [1]]]";
    let t2 = "[[:append 1 1] [:append 2 1]]";
    let t3 = "[[:r 2 [1]] [:r 3 []]]";
    let t4 = "[[:append 3 1] [:append 4 1]]";
    h.invoke(0, t1).invoke(1, t2).invoke(2, t3).invoke(3, t4);
    h.push(1, "ok", t2)
        .push(3, "ok", t4)
        .push(0, "ok", t1)
        .push(2, "ok", t3);
    h.txn(4, "ok", "[[:r 1 [1]] [:r 3 [1]]]");
    let v = h.check(&["serializable"]);
    assert_eq!(types(&v), ["G-nonadjacent-item"]);
    assert!(v.not.contains("snapshot-isolation"));
}

#[test]
fn g2_item_write_skew() {
    let mut h = History::default();
    h.invoke(0, "[[:r 1 []] [:append 2 1]]")
        .invoke(1, "[[:r 2 []] [:append 1 1]]")
        .push(0, "ok", "[[:r 1 []] [:append 2 1]]")
        .push(1, "ok", "[[:r 2 []] [:append 1 1]]")
        .txn(2, "ok", "[[:r 1 [1]] [:r 2 [1]]]");
    let v = h.check(&["serializable"]);
    assert_eq!(types(&v), ["G2-item"]);
    assert!(v.not.contains("repeatable-read"));
    // Snapshot isolation allows write skew.
    assert_eq!(h.check(&["snapshot-isolation"]).valid, Validity::Valid);
}

#[test]
fn g_single_realtime_stale_read() {
    let mut h = History::default();
    h.txn(0, "ok", "[[:append 1 1]]")
        .txn(1, "ok", "[[:r 1 []]]")
        .txn(2, "ok", "[[:r 1 [1]]]");
    let strict = h.check(STRICT);
    assert_eq!(strict.valid, Validity::Invalid);
    assert_eq!(types(&strict), ["G-single-item-realtime"]);
    let text = strict.anomalies["G-single-item-realtime"][0]
        .get("explanation")
        .unwrap()
        .to_string();
    assert!(text.contains("completed at index"), "{text}");
    assert_eq!(h.check(&["serializable"]).valid, Validity::Valid);
}

#[test]
fn g0_process_and_realtime() {
    let mut h = History::default();
    h.txn(0, "ok", "[[:append 1 1]]")
        .txn(0, "ok", "[[:append 1 2]]")
        .txn(1, "ok", "[[:r 1 [2 1]]]");
    let v = h.check(&["strong-session-serializable"]);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(types(&v), ["G0-process"]);
    let strict = h.check(STRICT);
    assert!(
        types(&strict).contains(&"G0-realtime"),
        "{:?}",
        types(&strict)
    );
    assert_eq!(h.check(&["serializable"]).valid, Validity::Valid);
}

#[test]
fn internal_inconsistency() {
    let mut h = History::default();
    h.txn(0, "ok", "[[:append 1 1] [:r 1 []]]");
    let v = h.check(STRICT);
    assert_eq!(types(&v), ["empty-transaction-graph", "internal"]);
    assert_eq!(
        v.anomalies["internal"][0]
            .get("expected")
            .unwrap()
            .to_string(),
        "[... 1]"
    );
}

#[test]
fn incompatible_order() {
    let mut h = History::default();
    h.txn(0, "ok", "[[:append 1 1]]")
        .txn(1, "ok", "[[:append 1 2]]")
        .txn(2, "ok", "[[:r 1 [1]]]")
        .txn(3, "ok", "[[:r 1 [2]]]");
    let v = h.check(STRICT);
    assert!(types(&v).contains(&"incompatible-order"), "{:?}", types(&v));
}

#[test]
fn duplicate_elements() {
    let mut h = History::default();
    h.txn(0, "ok", "[[:append 1 1]]")
        .txn(1, "ok", "[[:r 1 [1 1]]]");
    let v = h.check(STRICT);
    assert!(types(&v).contains(&"duplicate-elements"), "{:?}", types(&v));
    assert!(v.not.contains("read-uncommitted"));
}

#[test]
fn dirty_update() {
    let mut h = History::default();
    h.txn(0, "fail", "[[:append 1 1]]")
        .txn(1, "ok", "[[:append 1 2]]")
        .txn(2, "ok", "[[:r 1 [1 2]]]");
    let v = h.check(STRICT);
    assert!(types(&v).contains(&"dirty-update"), "{:?}", types(&v));
    assert!(types(&v).contains(&"G1a"));
}

#[test]
fn lost_update() {
    let mut h = History::default();
    h.txn(0, "ok", "[[:append 1 1]]");
    h.invoke(1, "[[:r 1 [1]] [:append 1 2]]")
        .invoke(2, "[[:r 1 [1]] [:append 1 3]]")
        .push(1, "ok", "[[:r 1 [1]] [:append 1 2]]")
        .push(2, "ok", "[[:r 1 [1]] [:append 1 3]]")
        .txn(3, "ok", "[[:r 1 [1 2 3]]]");
    let v = h.check(&["repeatable-read"]);
    assert!(types(&v).contains(&"lost-update"), "{:?}", types(&v));
    assert_eq!(v.valid, Validity::Invalid);
}

#[test]
fn future_read() {
    let mut h = History::default();
    h.txn(0, "ok", "[[:r 1 [1]] [:append 1 1]]");
    let v = h.check(STRICT);
    assert!(types(&v).contains(&"future-read"), "{:?}", types(&v));
}

#[test]
fn garbage_read() {
    let mut h = History::default();
    h.txn(0, "ok", "[[:r 1 [9]]]");
    // Elle does not look for values nobody appended (and a lone transaction says nothing)...
    let v = h.check(STRICT);
    assert_eq!(types(&v), ["empty-transaction-graph"]);
    // ... this suite asks for them, as Elle's :anomalies option asks for more.
    let v = check(
        &h.ops(),
        &Options {
            anomalies: vec!["garbage-read"],
            ..Options::default()
        },
    );
    assert_eq!(types(&v), ["empty-transaction-graph", "garbage-read"]);
    assert_eq!(v.valid, Validity::Invalid);
}

#[test]
fn indeterminate_writes_may_be_read() {
    let mut h = History::default();
    h.txn(0, "info", "[[:append 1 1]]")
        .txn(1, "ok", "[[:r 1 [1]]]");
    assert_eq!(h.check(STRICT).valid, Validity::Valid);
}

#[test]
fn no_committed_transactions_is_unknown() {
    let mut h = History::default();
    h.txn(0, "fail", "[[:append 1 1]]");
    assert_eq!(h.check(STRICT).valid, Validity::Unknown);
}

#[test]
fn non_unique_appends_are_unknown() {
    let mut h = History::default();
    h.txn(0, "ok", "[[:append 1 1]]")
        .txn(1, "ok", "[[:append 1 1]]");
    let v = h.check(STRICT);
    assert_eq!(v.valid, Validity::Unknown);
    assert_eq!(types(&v), ["duplicate-appends"]);
}

/// A history whose transactions each take effect atomically between invocation and completion:
/// strict serializable by construction.
fn serial_history(txns: usize, processes: i64, seed: u64) -> History {
    let mut rng = seed;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let mut state: std::collections::HashMap<u64, Vec<u64>> = Default::default();
    let mut pending: Vec<Option<Vec<(bool, u64, u64)>>> = vec![None; processes as usize];
    let mut h = History::default();
    let (mut started, mut value) = (0, 0u64);
    let render = |mops: &[(bool, u64, u64)],
                  state: Option<&std::collections::HashMap<u64, Vec<u64>>>| {
        let mut local = state.cloned();
        let parts: Vec<String> = mops
            .iter()
            .map(|&(append, k, v)| {
                if append {
                    if let Some(s) = local.as_mut() {
                        s.entry(k).or_default().push(v);
                    }
                    format!("[:append {k} {v}]")
                } else {
                    match &local {
                        Some(s) => {
                            let list = s.get(&k).cloned().unwrap_or_default();
                            let items: Vec<String> = list.iter().map(u64::to_string).collect();
                            format!("[:r {k} [{}]]", items.join(" "))
                        }
                        None => format!("[:r {k} nil]"),
                    }
                }
            })
            .collect();
        (format!("[{}]", parts.join(" ")), local)
    };
    while started < txns || pending.iter().any(Option::is_some) {
        let p = next(processes as u64) as usize;
        match pending[p].take() {
            None if started < txns => {
                let mops: Vec<(bool, u64, u64)> = (0..1 + next(4))
                    .map(|_| {
                        value += 1;
                        (next(2) == 0, next(200), value)
                    })
                    .collect();
                h.push(p as i64, "invoke", &render(&mops, None).0);
                pending[p] = Some(mops);
                started += 1;
            }
            None => {}
            Some(mops) => {
                let roll = next(20);
                if roll == 0 {
                    h.push(p as i64, "fail", &render(&mops, None).0);
                } else {
                    let (text, after) = render(&mops, Some(&state));
                    state = after.expect("rendered against state");
                    let kind = if roll == 1 { "info" } else { "ok" };
                    h.push(p as i64, kind, &text);
                }
            }
        }
    }
    h
}

#[test]
fn many_thousand_serial_transactions_are_valid() {
    let h = serial_history(20_000, 10, 0x5eed);
    let v = h.check(STRICT);
    assert_eq!(v.valid, Validity::Valid, "{:?}", types(&v));
    assert!(v.anomalies.is_empty());
}

#[test]
fn an_exhausted_cycle_search_is_unknown_not_a_hang() {
    // A G0 cycle, but no time at all to search for it: the result says so, and, as Elle's
    // fallback, that a cycle of write dependencies exists (which rules out read uncommitted).
    let v = check(
        &write_cycle().ops(),
        &Options {
            models: STRICT.to_vec(),
            cycle_search_timeout: std::time::Duration::ZERO,
            ..Options::default()
        },
    );
    assert_eq!(types(&v), ["PL-1-cycle-exists", "cycle-search-timeout"]);
    assert_eq!(v.valid, Validity::Invalid);
    assert_eq!(
        v.not,
        std::collections::BTreeSet::from(["read-uncommitted"])
    );
    let case = &v.anomalies["cycle-search-timeout"][0];
    assert_eq!(case.get("scc-size"), Some(&checker::edn::Edn::Int(2)));
}
