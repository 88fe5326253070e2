//! Elle's own test cases (elle/list_append_test.clj, elle/rw_register_test.clj), written again
//! by hand: the same histories, in Elle's notation (keyword keys, no `:f`, completions without
//! invocations), with the verdicts, anomaly types and `:not` that Elle gives them.

use std::collections::BTreeSet;

use checker::history::read_history;
use checker::verdict::{Validity, Verdict};
use checker::{list_append, rw_register};

/// A transaction in Elle's test notation: `ax1` appends 1 to `:x`, `rx12` reads `:x = [1 2]`,
/// `ry` reads `:y` empty (lists) or nil (registers, also `ry_`), `wx3` writes 3.
fn mops(text: &str, registers: bool) -> String {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(f) = chars.next() {
        let key = chars.next().expect("a key after the function");
        let mut digits = String::new();
        while let Some(c) = chars.peek().filter(|c| c.is_ascii_digit() || **c == '_') {
            digits.push(*c);
            chars.next();
        }
        let digits = digits.trim_matches('_');
        let value = match f {
            'a' | 'w' => digits.to_owned(),
            'r' if registers => {
                if digits.is_empty() {
                    "nil".to_owned()
                } else {
                    digits.to_owned()
                }
            }
            'r' => {
                let elements: Vec<String> = digits.chars().map(String::from).collect();
                format!("[{}]", elements.join(" "))
            }
            other => panic!("unknown function {other}"),
        };
        let f = match f {
            'a' => "append",
            'w' => "w",
            _ => "r",
        };
        out.push(format!("[:{f} :{key} {value}]"));
    }
    format!("[{}]", out.join(" "))
}

/// The same transaction as its invocation would write it: reads not yet done.
fn invoked(text: &str, registers: bool) -> String {
    let done = mops(text, registers);
    let mut out = String::new();
    for part in done.split("] [") {
        let part = part.trim_start_matches('[').trim_end_matches(']');
        let mut words: Vec<&str> = part.split(' ').collect();
        if words[0] == ":r" {
            words.truncate(2);
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("[{}]", words.join(" ")));
    }
    format!("[{out}]")
}

/// A history under construction, one op per line, of list appends or (`.1`) registers.
#[derive(Default)]
struct History(Vec<String>, bool);

impl History {
    /// A history of register reads and writes.
    fn registers() -> History {
        History(Vec::new(), true)
    }

    /// A completion alone, as Elle's tests write most histories: `{:type :ok, :value ...}`.
    fn done(&mut self, process: i64, kind: &str, txn: &str) -> &mut Self {
        self.0.push(format!(
            "{{:process {process}, :type :{kind}, :value {}}}",
            mops(txn, self.1)
        ));
        self
    }

    /// An invocation.
    fn invoke(&mut self, process: i64, txn: &str) -> &mut Self {
        self.0.push(format!(
            "{{:process {process}, :type :invoke, :f :txn, :value {}}}",
            invoked(txn, self.1)
        ));
        self
    }

    /// Elle's `pair`: an invocation and its ok completion.
    fn pair(&mut self, process: i64, txn: &str) -> &mut Self {
        self.invoke(process, txn).done(process, "ok", txn)
    }

    fn list_append(&self, models: &[&'static str], anomalies: &[&'static str]) -> Verdict {
        let ops = read_history(self.0.join("\n").as_bytes()).expect("the history reads");
        let options = list_append::Options {
            models: models.to_vec(),
            anomalies: anomalies.to_vec(),
            ..list_append::Options::default()
        };
        list_append::check(&ops, &options)
    }

    fn rw_register(
        &self,
        models: &[&'static str],
        anomalies: &[&'static str],
        set: impl FnOnce(&mut rw_register::Options),
    ) -> Verdict {
        let ops = read_history(self.0.join("\n").as_bytes()).expect("the history reads");
        let mut options = rw_register::Options {
            models: models.to_vec(),
            anomalies: anomalies.to_vec(),
            ..rw_register::Options::default()
        };
        set(&mut options);
        rw_register::check(&ops, &options)
    }
}

/// Asserts Elle's verdict: validity, the anomaly types reported, and `:not`.
fn expect(verdict: &Verdict, valid: Validity, types: &[&str], not: &[&str]) {
    let found: Vec<&str> = verdict.anomaly_types().collect();
    assert_eq!(verdict.valid, valid, "types {found:?}");
    assert_eq!(found, types);
    let not: BTreeSet<&str> = not.iter().copied().collect();
    assert_eq!(verdict.not, not, "types {found:?}");
}

const NONE: &[&str] = &[];
use Validity::{Invalid, Unknown, Valid};

#[test]
fn g0_is_found_when_g0_or_g1_is_asked_for_but_not_g2() {
    let mut h = History::default();
    h.done(0, "ok", "ax1ay1")
        .done(0, "ok", "ax2ay2")
        .done(0, "ok", "rx12ry21");
    for asked in ["G0", "G1"] {
        expect(
            &h.list_append(&[], &[asked]),
            Invalid,
            &["G0"],
            &["read-uncommitted"],
        );
    }
    expect(&h.list_append(&[], &["G2"]), Valid, NONE, NONE);
}

#[test]
fn g1a_with_an_empty_transaction_graph() {
    let mut h = History::default();
    h.done(0, "fail", "ax1").done(0, "ok", "rx1");
    let rc = ["read-committed"];
    expect(
        &h.list_append(&["read-uncommitted"], &[]),
        Unknown,
        &["empty-transaction-graph"],
        &rc,
    );
    expect(
        &h.list_append(&["read-committed"], &[]),
        Invalid,
        &["G1a", "empty-transaction-graph"],
        &rc,
    );
    expect(
        &h.list_append(&[], &["G2"]),
        Unknown,
        &["empty-transaction-graph"],
        &rc,
    );
    expect(
        &h.list_append(&["repeatable-read"], &[]),
        Invalid,
        &["G1a", "empty-transaction-graph"],
        &rc,
    );
}

#[test]
fn g1b_is_also_a_g_single_item() {
    let mut h = History::default();
    h.pair(0, "ax1ax2").pair(0, "rx1");
    expect(&h.list_append(&[], &["G0"]), Valid, NONE, NONE);
    expect(
        &h.list_append(&[], &["G1"]),
        Invalid,
        &["G1b"],
        &["read-committed"],
    );
    expect(
        &h.list_append(&[], &["G2"]),
        Invalid,
        &["G-single-item"],
        &["read-committed"],
    );
    expect(
        &h.list_append(&["strict-serializable"], &[]),
        Invalid,
        &["G-single-item", "G1b"],
        &["read-committed"],
    );
}

#[test]
fn g1c_needs_g1_to_be_asked_for() {
    let mut h = History::default();
    h.done(0, "ok", "ax1ry1")
        .done(0, "ok", "ax2ay1")
        .done(0, "ok", "rx12ry1");
    expect(&h.list_append(&[], &["G0"]), Valid, NONE, NONE);
    expect(
        &h.list_append(&[], &["G1"]),
        Invalid,
        &["G1c"],
        &["read-committed"],
    );
    expect(&h.list_append(&[], &["G2"]), Valid, NONE, NONE);
}

#[test]
fn g_single_item_from_an_unread_initial_state() {
    let mut h = History::default();
    h.done(0, "ok", "ax1ay1")
        .done(0, "ok", "ax2ry")
        .done(0, "ok", "rx12");
    expect(&h.list_append(&[], &["G0"]), Valid, NONE, NONE);
    expect(&h.list_append(&[], &["G1"]), Valid, NONE, NONE);
    for asked in ["G-single", "G2"] {
        expect(
            &h.list_append(&[], &[asked]),
            Invalid,
            &["G-single-item"],
            &["consistent-view", "repeatable-read"],
        );
    }
}

#[test]
fn g2_item_is_a_pure_anti_dependency_cycle() {
    let mut h = History::default();
    h.done(0, "ok", "ax1ry").done(0, "ok", "ay1rx");
    for (models, asked) in [
        (&[][..], &["G0"][..]),
        (&[], &["G1"]),
        (&["read-committed"], &[]),
    ] {
        expect(&h.list_append(models, asked), Valid, NONE, NONE);
    }
    for (models, asked) in [
        (&[][..], &["G2"][..]),
        (&["serializable"], &[]),
        (&["repeatable-read"], &[]),
    ] {
        expect(
            &h.list_append(models, asked),
            Invalid,
            &["G2-item"],
            &["repeatable-read"],
        );
    }
}

#[test]
fn strong_snapshot_isolation_needs_real_time() {
    let mut h = History::default();
    h.pair(0, "ax1")
        .pair(1, "ax2")
        .pair(2, "rx1")
        .pair(3, "rx12");
    expect(&h.list_append(&[], &["G2"]), Valid, NONE, NONE);
    expect(&h.list_append(&["serializable"], &[]), Valid, NONE, NONE);
    expect(
        &h.list_append(&["strict-serializable"], &[]),
        Invalid,
        &["G-single-item-realtime"],
        &["strong-snapshot-isolation"],
    );
}

#[test]
fn strong_session_snapshot_isolation_needs_process_order() {
    let mut h = History::default();
    h.pair(0, "ax1")
        .pair(1, "ax2")
        .pair(1, "rx1")
        .pair(2, "rx12");
    expect(&h.list_append(&["serializable"], &[]), Valid, NONE, NONE);
    expect(
        &h.list_append(&["strong-session-snapshot-isolation"], &[]),
        Invalid,
        &["G-single-item-process"],
        &["strong-session-snapshot-isolation"],
    );
}

#[test]
fn g_nonadjacent_item_process() {
    // Elle's issue 17: nonadjacent anti-dependencies closed by process order.
    let mut h = History::default();
    h.pair(0, "rxrz1")
        .pair(1, "ax1")
        .pair(1, "rz")
        .pair(2, "az1");
    expect(&h.list_append(&["serializable"], &[]), Valid, NONE, NONE);
    expect(
        &h.list_append(&["strong-session-snapshot-isolation"], &[]),
        Invalid,
        &["G-nonadjacent-item-process"],
        &["strong-session-snapshot-isolation"],
    );
}

#[test]
fn contradictory_read_orders() {
    let mut h = History::default();
    h.done(0, "ok", "ax1ry1")
        .done(0, "ok", "ax2")
        .done(0, "ok", "ax3ay1")
        .done(0, "ok", "rx13")
        .done(0, "ok", "rx123");
    expect(
        &h.list_append(&[], &["G1"]),
        Invalid,
        &["G1c", "incompatible-order"],
        &["read-committed"],
    );
}

#[test]
fn dirty_updates() {
    let mut none = History::default();
    none.done(0, "fail", "ax1");
    expect(
        &none.list_append(&[], &["dirty-update"]),
        Unknown,
        &["empty-transaction-graph"],
        NONE,
    );
    let mut direct = History::default();
    direct
        .done(0, "fail", "ax1")
        .done(1, "ok", "ax2")
        .done(2, "ok", "rx12");
    expect(
        &direct.list_append(&[], &["dirty-update"]),
        Invalid,
        &["dirty-update"],
        &["read-committed"],
    );
    let mut indirect = History::default();
    indirect
        .done(0, "fail", "ax1")
        .done(1, "info", "ax2")
        .done(2, "ok", "ax3")
        .done(3, "ok", "rx123");
    expect(
        &indirect.list_append(&[], &["dirty-update"]),
        Invalid,
        &["dirty-update"],
        &["read-committed"],
    );
}

#[test]
fn duplicated_elements_are_also_g1c() {
    let mut h = History::default();
    h.done(0, "ok", "ax1ry1")
        .done(0, "ok", "ax2ay1")
        .done(0, "ok", "rx121");
    expect(
        &h.list_append(&["read-committed"], &[]),
        Invalid,
        &["G1c", "duplicate-elements"],
        &["read-uncommitted"],
    );
}

#[test]
fn an_internal_violation_with_a_g0_behind_it() {
    let mut h = History::default();
    h.done(0, "ok", "ax1ax2ax4").done(0, "ok", "ax3rx1234");
    expect(
        &h.list_append(&[], &["internal"]),
        Invalid,
        &["internal"],
        &["read-uncommitted"],
    );
}

#[test]
fn internal_cases() {
    // A read of nil, then of something: the 2026 fix.
    let mut nil_then = History::default();
    nil_then.pair(0, "rxrx2");
    // Stale, bad prefix, extension and short reads after an append.
    let after_append: Vec<History> = ["rx12ax3rx12", "rx12ax3rx023", "rx12ax3rx1234", "rx12ax3rx1"]
        .into_iter()
        .map(|txn| {
            let mut h = History::default();
            h.done(0, "ok", txn);
            h
        })
        .collect();
    // Unknown prefix: the read must end with what was appended.
    let mut unknown_prefix = History::default();
    unknown_prefix
        .done(0, "ok", "ax3rx1234")
        .done(0, "ok", "ax5rx");
    let mut good = History::default();
    good.done(0, "ok", "ry56ax3rx123ax4rx1234");
    let mut expectations = vec![(&nil_then, 1), (&unknown_prefix, 2), (&good, 0)];
    expectations.extend(after_append.iter().map(|h| (h, 1)));
    for (h, cases) in expectations {
        let v = h.list_append(&[], &["internal"]);
        let found = v.anomalies.get("internal").map_or(0, Vec::len);
        assert_eq!(found, cases, "{:?}", h.0);
    }
}

#[test]
fn the_fauna_example_reads_its_own_append_as_nil() {
    let text = "{:type :invoke, :f :txn, :value [[:append 0 6] [:r 0 nil]], :process 1, :index 20, :time 1}\n{:type :ok, :f :txn, :value [[:append 0 6] [:r 0 nil]], :process 1, :index 21, :time 2}";
    let ops = read_history(text.as_bytes()).unwrap();
    let options = list_append::Options {
        models: vec![],
        anomalies: vec!["internal"],
        ..list_append::Options::default()
    };
    let v = list_append::check(&ops, &options);
    assert_eq!(v.anomalies["internal"].len(), 1);
}

#[test]
fn future_reads() {
    let mut external = History::default();
    external.pair(0, "rx012ax1");
    let mut internal = History::default();
    internal.pair(0, "ax1rx01ax0ax3");
    for h in [&external, &internal] {
        let v = h.list_append(&["read-committed"], &[]);
        assert!(v.anomalies.contains_key("future-read"), "{:?}", h.0);
        assert_eq!(v.valid, Invalid);
    }
    let mut own = History::default();
    own.0
        .push("{:process 0, :type :invoke, :f :txn, :value [[:r :x [1]] [:append :x 1]]}".into());
    own.0
        .push("{:process 0, :type :ok, :f :txn, :value [[:r :x [1]] [:append :x 1]]}".into());
    expect(
        &own.list_append(&["read-committed"], &[]),
        Invalid,
        &["empty-transaction-graph", "future-read"],
        &["read-committed"],
    );
}

#[test]
fn an_unobserved_append_comes_after_the_last_observed_one() {
    // Elle's unobserved-write test: y never shows 1, so w1's append of 1 to y came after
    // the last observed y (2): ww w2 -> w1 on y, and ry -> w1 by rw.
    let mut h = History::default();
    for (p, txn) in [
        (0, "ax1ay1"),
        (1, "ax2ay2"),
        (2, "ax3ay3"),
        (3, "rx12"),
        (4, "ry2"),
    ] {
        h.invoke(p, txn);
    }
    for (p, txn) in [
        (0, "ax1ay1"),
        (1, "ax2ay2"),
        (2, "ax3ay3"),
        (3, "rx12"),
        (4, "ry2"),
    ] {
        h.done(p, "ok", txn);
    }
    expect(
        &h.list_append(&["serializable"], &[]),
        Invalid,
        &["G-single-item", "G0"],
        &["read-uncommitted"],
    );
}

#[test]
fn the_issue_examples_come_out_invalid() {
    // A lost update: both read key 2 empty; one appends 1 unobserved, the other 2.
    let text = "{:type :ok, :process 4, :f :txn, :value [[:r 2 []] [:append 2 1]]}\n{:type :ok, :process 3, :f :txn, :value [[:append 2 2] [:r 2 [2]]]}";
    let ops = read_history(text.as_bytes()).unwrap();
    let serializable = list_append::Options {
        models: vec!["serializable"],
        ..list_append::Options::default()
    };
    let v = list_append::check(&ops, &serializable);
    assert_eq!(
        v.valid,
        Invalid,
        "{:?}",
        v.anomaly_types().collect::<Vec<_>>()
    );
    assert!(v.anomalies.contains_key("G-single-item"));
    // A write skew: each misses the other's (unobserved) append.
    let text = "{:type :ok, :process 1, :f :txn, :value [[:append 3 1] [:append 2 4] [:r 4 []]]}\n{:type :ok, :process 0, :f :txn, :value [[:r 2 []] [:r 3 []] [:append 4 0]]}";
    let ops = read_history(text.as_bytes()).unwrap();
    let v = list_append::check(&ops, &serializable);
    assert_eq!(v.anomaly_types().collect::<Vec<_>>(), ["G2-item"]);
}

#[test]
fn repeatable_read_catches_g2_item_read_committed_does_not() {
    let mut h = History::default();
    h.done(0, "ok", "rxay1").done(0, "ok", "ryax1");
    expect(&h.list_append(&["read-committed"], &[]), Valid, NONE, NONE);
    expect(
        &h.list_append(&["repeatable-read"], &[]),
        Invalid,
        &["G2-item"],
        &["repeatable-read"],
    );
}

#[test]
fn g_nonadjacent_item_and_not_adjacent_anti_dependencies() {
    let mut h = History::default();
    h.pair(0, "ax1")
        .pair(0, "rx1ry")
        .pair(0, "ay1")
        .pair(0, "ry1rx");
    expect(
        &h.list_append(&["strict-serializable"], &[]),
        Invalid,
        &["G-nonadjacent-item"],
        &["repeatable-read", "snapshot-isolation"],
    );
    // rw rw wr rw wr: two of the anti-dependencies are adjacent, which snapshot isolation
    // allows.
    let mut adjacent = History::default();
    for txn in ["rx5ay1", "ryaz2", "rzat3", "rt3au4", "ruax5"] {
        adjacent.pair(0, txn);
    }
    expect(
        &adjacent.list_append(&["snapshot-isolation"], &[]),
        Valid,
        NONE,
        NONE,
    );
}

#[test]
fn lost_update_as_elle_defines_it() {
    let mut h = History::default();
    h.pair(0, "ax0").pair(0, "rx0ax1").pair(0, "rx0ax2");
    expect(
        &h.list_append(&["strict-serializable"], &[]),
        Invalid,
        &["G2-item", "lost-update"],
        &["cursor-stability", "update-atomic"],
    );
    // One transaction appending twice after its read is no lost update.
    let mut once = History::default();
    once.pair(0, "rxax1ax2").pair(0, "rx12");
    expect(
        &once.list_append(&["strict-serializable"], &[]),
        Valid,
        NONE,
        NONE,
    );
}

#[test]
fn wr_and_process_order_make_g1c_process() {
    // Elle's issue 21.
    let mut h = History::default();
    h.pair(1, "rx1ay1").pair(2, "ry1").pair(2, "ax1");
    expect(
        &h.list_append(&["strong-session-snapshot-isolation"], &[]),
        Invalid,
        &["G1c-process"],
        &["strong-session-read-committed"],
    );
}

#[test]
fn repeatable_read_forbids_the_item_variants() {
    let mut single = History::default();
    single.pair(0, "ax1ay1").pair(0, "rx1ry");
    expect(
        &single.list_append(&["repeatable-read"], &[]),
        Invalid,
        &["G-single-item"],
        &["consistent-view", "repeatable-read"],
    );
    let mut nonadjacent = History::default();
    for txn in ["ax1at1", "rx1ry", "ay1az2", "rz2rt"] {
        nonadjacent.pair(0, txn);
    }
    expect(
        &nonadjacent.list_append(&["repeatable-read"], &[]),
        Invalid,
        &["G-nonadjacent-item"],
        &["repeatable-read", "snapshot-isolation"],
    );
}

#[test]
fn rw_register_cases() {
    let none = |_: &mut rw_register::Options| {};
    // A write cycle needs a version order: with none, the graph is empty.
    let mut g0 = History::registers();
    g0.pair(0, "wx1wy2").pair(1, "wx2wy1");
    expect(
        &g0.rw_register(&[], &["G0"], none),
        Unknown,
        &["empty-transaction-graph"],
        NONE,
    );
    // Sequential keys give it one.
    g0.pair(0, "rx2").pair(1, "ry2");
    expect(
        &g0.rw_register(&[], &["G0"], |o| o.sequential_keys = true),
        Invalid,
        &["G0"],
        &["read-uncommitted"],
    );
    // G1c from reads of each other's writes.
    let mut g1c = History::registers();
    g1c.done(0, "ok", "wx1ry1").done(0, "ok", "wy1rx1");
    expect(&g1c.rw_register(&[], &["G0"], none), Valid, NONE, NONE);
    expect(
        &g1c.rw_register(&["read-uncommitted"], &[], none),
        Valid,
        NONE,
        NONE,
    );
    for (models, asked) in [
        (&[][..], &["G1"][..]),
        (&["read-committed"], &[]),
        (&["serializable"], &[]),
    ] {
        expect(
            &g1c.rw_register(models, asked, none),
            Invalid,
            &["G1c"],
            &["read-committed"],
        );
    }
    expect(&g1c.rw_register(&[], &["G2"], none), Valid, NONE, NONE);
    // G1b: the read dependency is not external, so the graph is empty.
    let mut g1b = History::registers();
    g1b.done(0, "ok", "wx1wx2").done(0, "ok", "rx1");
    expect(
        &g1b.rw_register(&[], &["G0"], none),
        Unknown,
        &["empty-transaction-graph"],
        &["read-committed"],
    );
    expect(
        &g1b.rw_register(&["repeatable-read"], &[], none),
        Invalid,
        &["G1b", "empty-transaction-graph"],
        &["read-committed"],
    );
    // Internal: a read that disagrees with the one before it, nil included (the 2026 fix).
    for txn in ["rx1rx2", "rx_rx2"] {
        let mut internal = History::registers();
        internal.done(0, "ok", txn);
        expect(
            &internal.rw_register(&[], &["internal"], none),
            Invalid,
            &["empty-transaction-graph", "internal"],
            &["read-atomic"],
        );
    }
    // nil precedes every version: with the wr dependency, a G-single-item.
    let mut initial = History::registers();
    initial
        .invoke(0, "rx_ry1")
        .invoke(1, "wy1wx2")
        .done(1, "ok", "wy1wx2")
        .done(0, "ok", "rx_ry1");
    expect(
        &initial.rw_register(&["serializable"], &[], none),
        Invalid,
        &["G-single-item"],
        &["consistent-view", "repeatable-read"],
    );
    // Linearizable keys: a read of 2 between the write of 1 and a read of 1 orders the
    // versions both ways.
    let mut cyclic = History::registers();
    cyclic.pair(0, "wx1").pair(0, "rx2").pair(0, "rx1");
    let v = cyclic.rw_register(&["strict-serializable"], &[], |o| {
        o.linearizable_keys = true
    });
    assert!(
        v.anomalies.contains_key("cyclic-versions"),
        "{:?}",
        v.anomalies.keys()
    );
    assert_eq!(v.not, BTreeSet::from(["read-uncommitted"]));
}

#[test]
fn elle_files_read_as_elle_writes_them() {
    // Pretty-printed over several lines, tagged, without :process or :f, with comments.
    let text = "; a comment\n\
        #jepsen.history.Op{:index 0,\n :type :invoke,\n :value [[:append :x 1] [:r :y]]}\n\
        {:index 1 :type :ok :value [[:append :x 1] [:r :y nil]]}\n\
        \n\
        {:index 2, :type :invoke, :value [[:r :x nil]]}\n\
        {:index 3, :type :ok, :value [[:r :x [1]]]}  ; trailing comment\n";
    let ops = read_history(text.as_bytes()).unwrap();
    assert_eq!(ops.len(), 4);
    let v = list_append::check(&ops, &list_append::Options::default());
    assert_eq!(
        v.valid,
        Valid,
        "{:?}",
        v.anomaly_types().collect::<Vec<_>>()
    );
    // elle-cli's JSON array, one op per line, and the same pretty-printed.
    let json = "[{\"index\":0,\"process\":1,\"type\":\"invoke\",\"value\":[[\"append\",\"x\",1]]},\n\
        {\"index\":1,\"process\":1,\"type\":\"ok\",\"value\":[[\"append\",\"x\",1]]}]\n";
    assert_eq!(read_history(json.as_bytes()).unwrap().len(), 2);
    let pretty = "[\n  {\n    \"index\": 0,\n    \"process\": 1,\n    \"type\": \"ok\",\n    \"value\": [[\"r\", \"x\", null]]\n  },\n  {\n    \"index\": 1,\n    \"process\": 1,\n    \"type\": \"ok\",\n    \"value\": [[\"r\", \"x\", []]]\n  }\n]\n";
    assert_eq!(read_history(pretty.as_bytes()).unwrap().len(), 2);
    // A malformed op among them is still named by its line.
    let bad = "{:index 0, :type :ok, :value [[:r :x nil]]}\n{:index 1, :type :ok :value [[:r :x nil]\n{:index 2, :type :ok, :value []}\n";
    assert_eq!(read_history(bad.as_bytes()).unwrap_err().line, 2);
}
