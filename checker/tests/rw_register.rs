//! The rw-register model: each anomaly and each version source in a small hand-made history, and
//! generated serial histories valid under every model with every version source on.

use checker::history::{Op, read_history};
use checker::models;
use checker::rw_register::{Options, check};
use checker::synth::{self, Params};
use checker::verdict::{Validity, Verdict};
use proptest::prelude::*;

fn txn(process: i64, kind: &str, value: &str, index: &mut usize) -> String {
    let lines = format!(
        "{{:index {}, :type :invoke, :process {process}, :f :txn, :value {}}}\n{{:index {}, :type :{kind}, :process {process}, :f :txn, :value {value}}}\n",
        *index,
        blank_reads(value),
        *index + 1
    );
    *index += 2;
    lines
}

/// `[:r 1 5]` -> `[:r 1 nil]`, for invocations.
fn blank_reads(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(pos) = rest.find("[:r ") {
        out.push_str(&rest[..pos + 4]);
        let after = &rest[pos + 4..];
        let key_end = after.find(' ').unwrap();
        out.push_str(&after[..key_end]);
        out.push_str(" nil]");
        rest = &after[after.find(']').unwrap() + 1..];
    }
    out.push_str(rest);
    out
}

fn history(txns: &[(i64, &str, &str)]) -> Vec<Op> {
    let mut index = 0;
    let text: String = txns
        .iter()
        .map(|(p, k, v)| txn(*p, k, v, &mut index))
        .collect();
    read_history(text.as_bytes()).unwrap()
}

fn run(ops: &[Op], models: &[&'static str], f: impl FnOnce(&mut Options)) -> Verdict {
    let mut options = Options {
        models: models.to_vec(),
        ..Options::default()
    };
    f(&mut options);
    check(ops, &options)
}

fn types(v: &Verdict) -> Vec<&str> {
    v.anomaly_types().collect()
}

const SERIALIZABLE: &[&str] = &["serializable"];
const STRICT: &[&str] = &["strict-serializable"];

#[test]
fn a_serial_history_is_valid() {
    let ops = history(&[
        (0, "ok", "[[:w 1 1] [:w 2 1]]"),
        (1, "ok", "[[:r 1 1] [:w 1 2]]"),
        (0, "ok", "[[:r 1 2] [:r 2 1]]"),
    ]);
    let v = run(&ops, STRICT, |o| {
        o.wfr_keys = true;
        o.sequential_keys = true;
        o.linearizable_keys = true;
    });
    assert_eq!(v.valid, Validity::Valid, "{:?}", v.anomalies);
}

#[test]
fn g1a_g1b_and_internal() {
    let ops = history(&[
        (0, "fail", "[[:w 1 1]]"),
        (1, "ok", "[[:r 1 1]]"),
        (2, "ok", "[[:w 2 1] [:w 2 2]]"),
        (3, "ok", "[[:r 2 1]]"),
        (4, "ok", "[[:w 3 1] [:r 3 2]]"),
    ]);
    let v = run(&ops, STRICT, |_| {});
    for kind in ["G1a", "G1b", "internal"] {
        assert!(types(&v).contains(&kind), "{kind} in {:?}", types(&v));
    }
}

#[test]
fn lost_update() {
    let ops = history(&[
        (0, "ok", "[[:w 1 1]]"),
        (1, "ok", "[[:r 1 1] [:w 1 2]]"),
        (2, "ok", "[[:r 1 1] [:w 1 3]]"),
    ]);
    let v = run(&ops, &["repeatable-read"], |_| {});
    assert!(types(&v).contains(&"lost-update"), "{:?}", types(&v));
    assert_eq!(v.valid, Validity::Invalid);
}

#[test]
fn g_single_from_the_initial_state() {
    // T1 misses T2's write of x but sees its write of y: read skew.
    let ops = history(&[
        (0, "ok", "[[:r 1 nil] [:r 2 1]]"),
        (1, "ok", "[[:w 1 1] [:w 2 1]]"),
    ]);
    let v = run(&ops, SERIALIZABLE, |_| {});
    assert_eq!(types(&v), ["G-single-item"]);
    let text = v.anomalies["G-single-item"][0]
        .get("explanation")
        .unwrap()
        .to_string();
    assert!(text.contains("read key 1 = nil"), "{text}");
}

#[test]
fn g2_item_write_skew() {
    let ops = history(&[
        (0, "ok", "[[:r 1 nil] [:w 2 1]]"),
        (1, "ok", "[[:r 2 nil] [:w 1 1]]"),
    ]);
    let v = run(&ops, SERIALIZABLE, |_| {});
    assert_eq!(types(&v), ["G2-item"]);
    assert_eq!(
        run(&ops, &["snapshot-isolation"], |_| {}).valid,
        Validity::Valid
    );
}

#[test]
fn writes_follow_reads_orders_versions() {
    // x: 1 -> 2 (T2), and T3 read 2 then wrote 1's successor... a cycle of versions 2 -> 3 -> 2.
    let ops = history(&[
        (0, "ok", "[[:w 1 1]]"),
        (1, "ok", "[[:r 1 2] [:w 1 3]]"),
        (2, "ok", "[[:r 1 3] [:w 1 2]]"),
    ]);
    assert!(!types(&run(&ops, STRICT, |_| {})).contains(&"cyclic-versions"));
    let v = run(&ops, STRICT, |o| o.wfr_keys = true);
    assert!(types(&v).contains(&"cyclic-versions"), "{:?}", types(&v));
    assert_eq!(v.valid, Validity::Invalid);
}

#[test]
fn sequential_keys_use_process_order() {
    // Process 1 sees x = 2 and then x = 1, but process 0 wrote 1 before 2.
    let ops = history(&[
        (0, "ok", "[[:w 1 1]]"),
        (0, "ok", "[[:w 1 2]]"),
        (1, "ok", "[[:r 1 2]]"),
        (1, "ok", "[[:r 1 1]]"),
    ]);
    assert_eq!(run(&ops, SERIALIZABLE, |_| {}).valid, Validity::Valid);
    let v = run(&ops, SERIALIZABLE, |o| o.sequential_keys = true);
    assert!(types(&v).contains(&"cyclic-versions"), "{:?}", types(&v));
}

#[test]
fn linearizable_keys_use_real_time() {
    // A read that begins after a write completed, and misses it.
    let ops = history(&[
        (0, "ok", "[[:w 1 1]]"),
        (1, "ok", "[[:r 1 nil]]"),
        (2, "ok", "[[:r 1 1]]"),
    ]);
    let v = run(&ops, STRICT, |_| {});
    assert_eq!(types(&v), ["G-single-item-realtime"]);
    assert_eq!(run(&ops, SERIALIZABLE, |_| {}).valid, Validity::Valid);
    let v = run(&ops, STRICT, |o| o.linearizable_keys = true);
    assert_eq!(v.valid, Validity::Invalid);
}

#[test]
fn list_histories_are_refused() {
    let ops = history(&[(0, "ok", "[[:append 1 1]]")]);
    let v = run(&ops, STRICT, |_| {});
    assert_eq!(v.valid, Validity::Unknown);
    assert_eq!(types(&v), ["malformed-history"]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// A serial execution over registers is valid under every model, with every version source.
    #[test]
    fn serial_register_histories_are_valid(txns in 1usize..300, processes in 1usize..8, keys in 1usize..6, seed in any::<u64>()) {
        let ops = synth::serial_history(&Params { txns, processes, active_keys: keys, max_writes_per_key: 10, registers: true, seed, ..Params::default() });
        let text: String = ops.iter().map(|op| format!("{}\n", op.to_edn())).collect();
        let ops = read_history(text.as_bytes()).unwrap();
        let all: Vec<&'static str> = models::all_models().into_iter().collect();
        let v = run(&ops, &all, |o| {
            o.wfr_keys = true;
            o.sequential_keys = true;
            o.linearizable_keys = true;
        });
        // Valid; or, as in Elle, unknown when no dependency relates any two transactions.
        let types: Vec<&str> = v.anomaly_types().collect();
        let undecided = v.valid == Validity::Unknown && types == ["empty-transaction-graph"];
        prop_assert!(v.valid == Validity::Valid || undecided, "{:?} {:?}", v.valid, types);
    }
}
