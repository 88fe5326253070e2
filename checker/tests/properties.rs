//! Properties over generated histories, and the history reader under arbitrary input.

use checker::history::{Op, read_history};
use checker::list_append::{Options, check};
use checker::models;
use checker::synth::{self, Injection, Params};
use checker::verdict::Validity;
use proptest::prelude::*;

fn params() -> impl Strategy<Value = Params> {
    (
        1usize..400,
        1usize..12,
        1usize..8,
        1usize..40,
        1usize..6,
        0u64..10,
        0u64..10,
        any::<u64>(),
    )
        .prop_map(
            |(
                txns,
                processes,
                active_keys,
                max_writes_per_key,
                max_txn_length,
                fail,
                info,
                seed,
            )| Params {
                txns,
                processes,
                active_keys,
                max_writes_per_key,
                max_txn_length,
                fail_percent: fail,
                info_percent: info,
                seed,
                registers: false,
            },
        )
}

fn to_text(ops: &[Op]) -> String {
    ops.iter().map(|op| format!("{}\n", op.to_edn())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// A history from a serial execution is valid under every model, read back from its text.
    #[test]
    fn serial_histories_are_valid_under_every_model(p in params()) {
        let ops = synth::serial_history(&p);
        let ops = read_history(to_text(&ops).as_bytes()).unwrap();
        let all: Vec<&'static str> = models::all_models().into_iter().collect();
        let verdict = check(&ops, &Options { models: all, ..Options::default() });
        // Valid; or, as in Elle, unknown when no dependency relates any two transactions.
        let types: Vec<&str> = verdict.anomaly_types().collect();
        let undecided = verdict.valid == Validity::Unknown && types == ["empty-transaction-graph"];
        prop_assert!(verdict.valid == Validity::Valid || undecided, "{:?} {:?}", verdict.valid, types);
    }

    /// A planted anomaly is always found.
    #[test]
    fn injected_anomalies_are_found(p in params(), seed in any::<u64>()) {
        for injection in Injection::ALL {
            let mut ops = synth::serial_history(&p);
            if !synth::inject(&mut ops, injection, seed) {
                continue;
            }
            let verdict = check(&ops, &Options::default());
            let types: Vec<&str> = verdict.anomaly_types().collect();
            prop_assert_eq!(verdict.valid, Validity::Invalid, "{:?}: {:?}", injection, types);
            let ruled_out = verdict.not.contains(injection.rules_out())
                || verdict.also_not.contains(injection.rules_out());
            prop_assert!(
                ruled_out,
                "{:?} should rule out {}, found {:?}", injection, injection.rules_out(), types
            );
        }
    }

    /// The reader never panics: arbitrary text is read, or rejected naming a line that exists.
    #[test]
    fn the_reader_names_a_real_line_or_reads(text in "(\\PC|\n){0,400}") {
        let lines = text.lines().count();
        if let Err(e) = read_history(text.as_bytes()) {
            prop_assert!(e.line >= 1 && e.line <= lines.max(1), "line {} of {}", e.line, lines);
        }
    }

    /// Damaging a valid history's line is caught at that line, or leaves it readable.
    #[test]
    fn damage_is_caught_at_its_line(p in params(), at in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>(), byte in 0u8..128) {
        let ops = synth::serial_history(&p);
        let mut lines: Vec<String> = to_text(&ops).lines().map(str::to_owned).collect();
        prop_assume!(!lines.is_empty());
        let i = at.index(lines.len());
        let line = &mut lines[i];
        let pos = cut.index(line.len());
        line.truncate(pos);
        line.push(byte as char);
        match read_history(lines.join("\n").as_bytes()) {
            Ok(read) => prop_assert_eq!(read.len(), lines.iter().filter(|l| !l.trim().is_empty() && !l.trim().starts_with(';')).count()),
            Err(e) => prop_assert_eq!(e.line, i + 1),
        }
    }
}

/// Edge cases of the reader, written by hand beside the generated ones. (Failures proptest
/// finds are kept in `properties.proptest-regressions` and re-run first.)
mod edge_cases {
    use super::*;

    #[test]
    fn a_lone_backslash_is_a_character_not_a_crash() {
        assert!(read_history(&b"\\"[..]).is_err());
    }

    #[test]
    fn a_lone_hash_or_colon_is_rejected_with_its_line() {
        for text in ["#", ":", "{#", "\n\n#_"] {
            let lines = text.lines().count().max(1);
            let e = read_history(text.as_bytes()).unwrap_err();
            assert!(e.line <= lines, "{text:?}: {e}");
        }
    }

    #[test]
    fn a_unicode_string_is_a_key_like_any_scalar() {
        let ops =
            read_history("{:type :ok, :process 0, :f :txn, :value [[:r \"é\" nil]]}".as_bytes())
                .unwrap();
        assert!(ops[0].to_edn().to_string().contains("[:r \"é\" nil]"));
        let e = read_history("{:type :ok, :process 0, :f :txn, :value [[:r {} nil]]}".as_bytes())
            .unwrap_err();
        assert!(e.message.contains("key must be a scalar"), "{e}");
    }
}
