//! Consistency models as data: which models imply which, which anomalies each forbids, and which
//! anomalies imply others (after Elle's `elle.consistency-model`, from Adya, Bailis, Cerone et al.).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::graph::Rels;

/// `stronger -> [weaker...]`: a history that satisfies the left satisfies each on the right.
/// Elle's `elle.consistency-model/models`, with its canonical names (`PL-3`, `PL-SI`...) written
/// as the friendly ones Elle reports.
const MODEL_IMPLIES: &[(&str, &[&str])] = &[
    ("causal-cerone", &["read-atomic"]),
    ("consistent-view", &["cursor-stability", "monotonic-view"]),
    ("cursor-stability", &["read-committed"]),
    ("forward-consistent-view", &["consistent-view"]),
    ("read-committed", &["read-uncommitted"]),
    (
        "serializable",
        &[
            "repeatable-read",
            "update-serializable",
            "snapshot-isolation",
            "view-serializable",
        ],
    ),
    ("update-serializable", &["forward-consistent-view"]),
    ("monotonic-atomic-view", &["read-committed"]),
    ("monotonic-view", &["read-committed"]),
    ("monotonic-snapshot-read", &["read-committed"]),
    (
        "parallel-snapshot-isolation",
        &["causal-cerone", "update-atomic"],
    ),
    ("prefix", &["causal-cerone"]),
    ("read-atomic", &["monotonic-atomic-view"]),
    (
        "repeatable-read",
        &["cursor-stability", "monotonic-atomic-view"],
    ),
    ("update-atomic", &["read-atomic"]),
    ("session-serializable", &["1SR"]),
    (
        "snapshot-isolation",
        &[
            "forward-consistent-view",
            "monotonic-atomic-view",
            "monotonic-snapshot-read",
            "parallel-snapshot-isolation",
            "prefix",
        ],
    ),
    (
        "strict-serializable",
        &[
            "serializable",
            "linearizable",
            "snapshot-isolation",
            "strong-snapshot-isolation",
            "strong-session-serializable",
            "session-serializable",
        ],
    ),
    ("strong-session-read-uncommitted", &["read-uncommitted"]),
    (
        "strong-session-read-committed",
        &["read-committed", "strong-session-read-uncommitted"],
    ),
    (
        "strong-read-uncommitted",
        &["strong-session-read-uncommitted"],
    ),
    (
        "strong-read-committed",
        &["strong-session-read-committed", "strong-read-uncommitted"],
    ),
    (
        "strong-session-serializable",
        &["serializable", "strong-session-snapshot-isolation"],
    ),
    (
        "strong-session-snapshot-isolation",
        &["snapshot-isolation", "strong-session-read-committed"],
    ),
    (
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation", "strong-read-committed"],
    ),
    ("linearizable", &["sequential"]),
    ("sequential", &["causal"]),
    ("causal", &["writes-follow-reads", "PRAM"]),
    (
        "PRAM",
        &["monotonic-reads", "monotonic-writes", "read-your-writes"],
    ),
];

/// The anomalies each model forbids directly, beyond those of the models it implies (Elle's
/// `direct-proscribed-anomalies`).
const MODEL_FORBIDS: &[(&str, &[&str])] = &[
    ("causal-cerone", &["internal", "G1a"]),
    ("cursor-stability", &["G1", "G-cursor", "lost-update"]),
    ("monotonic-view", &["G1", "G-monotonic"]),
    ("monotonic-snapshot-read", &["G1", "G-MSR"]),
    ("consistent-view", &["G1", "G-single"]),
    ("forward-consistent-view", &["G1", "G-SIb"]),
    ("parallel-snapshot-isolation", &["internal", "G1a"]),
    (
        "serializable",
        &[
            "G1",
            "G2",
            "predicate-read-miss",
            "PL-3-cycle-exists",
            "internal",
        ],
    ),
    ("read-committed", &["G1", "PL-2-cycle-exists"]),
    (
        "read-uncommitted",
        &[
            "G0",
            "duplicate-elements",
            "cyclic-versions",
            "PL-1-cycle-exists",
        ],
    ),
    ("prefix", &["internal", "G1a"]),
    (
        "snapshot-isolation",
        &[
            "internal",
            "G1",
            "G-SI",
            "G-nonadjacent",
            "PL-SI-cycle-exists",
        ],
    ),
    ("read-atomic", &["internal", "G1a", "future-read"]),
    (
        "repeatable-read",
        &["G1", "G2-item", "PL-2.99-cycle-exists", "lost-update"],
    ),
    ("update-atomic", &["lost-update"]),
    (
        "strict-serializable",
        &["G1", "G1c-realtime", "G2-realtime", "PL-SS-cycle-exists"],
    ),
    (
        "strong-session-read-uncommitted",
        &["strong-session-PL-1-cycle-exists", "G0-process"],
    ),
    (
        "strong-session-read-committed",
        &["strong-session-PL-2-cycle-exists", "G1c-process"],
    ),
    (
        "strong-read-uncommitted",
        &["strong-PL-1-cycle-exists", "G0-realtime"],
    ),
    (
        "strong-read-committed",
        &["strong-PL-2-cycle-exists", "G1c-realtime"],
    ),
    (
        "strong-session-snapshot-isolation",
        &[
            "internal",
            "G1-process",
            "G-nonadjacent-process",
            "strong-session-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-snapshot-isolation",
        &[
            "internal",
            "G1-realtime",
            "G-nonadjacent-realtime",
            "strong-snapshot-isolation-cycle-exists",
        ],
    ),
    (
        "strong-session-serializable",
        &[
            "G1-process",
            "G2-process",
            "strong-session-serializable-cycle-exists",
        ],
    ),
    ("update-serializable", &["G1", "G-update"]),
];

/// `anomaly -> [anomalies it implies]` (Elle's `implied-anomalies`).
const ANOMALY_IMPLIES: &[(&str, &[&str])] = &[
    ("G0", &["G1c", "G0-process"]),
    ("G0-process", &["G1c-process", "G0-realtime"]),
    ("G0-realtime", &["G1c-realtime"]),
    ("G1a", &["G1"]),
    ("G1b", &["G1"]),
    ("G1c", &["G1", "G1c-process"]),
    ("G1c-process", &["G1c-realtime", "G1-process"]),
    ("G1c-realtime", &["G1-realtime"]),
    ("G1", &["G1-process"]),
    ("G1-process", &["G1-realtime"]),
    (
        "G-single-item",
        &["G-single", "G-single-item-process", "G-nonadjacent-item"],
    ),
    (
        "G-single-item-process",
        &[
            "G-single-process",
            "G-single-item-realtime",
            "G-nonadjacent-item-process",
        ],
    ),
    (
        "G-single-item-realtime",
        &["G-single-realtime", "G-nonadjacent-item-realtime"],
    ),
    ("G-single", &["G-nonadjacent", "GSIb", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
    (
        "G-nonadjacent-item",
        &["G-nonadjacent", "G2-item", "G-nonadjacent-item-process"],
    ),
    (
        "G-nonadjacent-item-process",
        &[
            "G-nonadjacent-process",
            "G2-item-process",
            "G-nonadjacent-item-realtime",
        ],
    ),
    (
        "G-nonadjacent-item-realtime",
        &["G2-item-realtime", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent", &["G2", "G-nonadjacent-process"]),
    (
        "G-nonadjacent-process",
        &["G2-process", "G-nonadjacent-realtime"],
    ),
    ("G-nonadjacent-realtime", &["G2-realtime"]),
    ("G2", &["G2-process"]),
    ("G2-item", &["G2", "G2-item-process"]),
    ("G2-item-process", &["G2-process", "G2-item-realtime"]),
    ("G2-item-realtime", &["G2-realtime"]),
    ("G2-process", &["G2-realtime"]),
    ("GSIa", &["GSI"]),
    ("GSIb", &["GSI"]),
    ("incompatible-order", &["G1a"]),
    ("future-read", &["G1c"]),
    ("dirty-update", &["G1a"]),
    ("lost-update", &["write-skew", "G2-item"]),
    ("write-skew", &["G2"]),
];

/// Elle's `cycle-exists` anomalies, in Elle's order: the anomaly, the model whose subgraph must
/// be acyclic, the relations of that subgraph, and whether it is extended by one more step
/// through an anti-dependency (the snapshot isolation models).
pub const CYCLE_EXISTS: &[(&str, &str, Rels, bool)] = &[
    ("PL-1-cycle-exists", "read-uncommitted", Rels::WW, false),
    ("PL-2-cycle-exists", "read-committed", WW_WR, false),
    ("PL-SI-cycle-exists", "snapshot-isolation", WW_WR, true),
    ("PL-2.99-cycle-exists", "repeatable-read", Rels::DATA, false),
    ("PL-3-cycle-exists", "serializable", Rels::DATA, false),
    (
        "strong-session-PL-1-cycle-exists",
        "strong-session-read-uncommitted",
        Rels(Rels::WW.0 | Rels::PROCESS.0),
        false,
    ),
    (
        "strong-session-PL-2-cycle-exists",
        "strong-session-read-committed",
        Rels(WW_WR.0 | Rels::PROCESS.0),
        false,
    ),
    (
        "strong-session-snapshot-isolation-cycle-exists",
        "strong-session-snapshot-isolation",
        Rels(WW_WR.0 | Rels::PROCESS.0),
        true,
    ),
    (
        "strong-session-serializable-cycle-exists",
        "strong-session-serializable",
        Rels(Rels::DATA.0 | Rels::PROCESS.0),
        false,
    ),
    (
        "strong-PL-1-cycle-exists",
        "strong-read-uncommitted",
        Rels(Rels::WW.0 | Rels::REALTIME.0),
        false,
    ),
    (
        "strong-PL-2-cycle-exists",
        "strong-read-committed",
        Rels(WW_WR.0 | Rels::REALTIME.0),
        false,
    ),
    (
        "strong-snapshot-isolation-cycle-exists",
        "strong-snapshot-isolation",
        Rels(WW_WR.0 | Rels::REALTIME.0),
        true,
    ),
    (
        "PL-SS-cycle-exists",
        "strict-serializable",
        Rels(Rels::DATA.0 | Rels::REALTIME.0),
        false,
    ),
];

const WW_WR: Rels = Rels(Rels::WW.0 | Rels::WR.0);

/// Drops the `cycle-exists` cases that other anomalies already prove (Elle's
/// `remove-redundant-cycle-exists`): telling that a cycle exists somewhere adds nothing once a
/// specific one rules the same model out.
pub fn without_redundant_cycle_exists<T>(
    mut anomalies: BTreeMap<String, T>,
) -> BTreeMap<String, T> {
    let others = anomalies
        .keys()
        .filter(|a| !a.ends_with("-cycle-exists"))
        .map(String::as_str);
    let impossible = impossible_models(others);
    anomalies.retain(|a, _| {
        !CYCLE_EXISTS
            .iter()
            .any(|(name, model, _, _)| name == a && impossible.contains(model))
    });
    anomalies
}

/// Findings that say the analysis could not decide, rather than that the system misbehaved.
pub const UNKNOWN_ANOMALIES: &[&str] = &[
    "cycle-search-timeout",
    "empty-transaction-graph",
    "duplicate-appends",
    "duplicate-writes",
    "malformed-history",
    "missing-final-read",
];

/// Every model this module knows, by name.
pub fn all_models() -> BTreeSet<&'static str> {
    MODEL_IMPLIES
        .iter()
        .flat_map(|(m, weaker)| std::iter::once(*m).chain(weaker.iter().copied()))
        .collect()
}

/// The anomaly of that name, if this module knows it: one a model forbids, one implied, or
/// one of the checks' own (`garbage-read`).
pub fn known_anomaly(name: &str) -> Option<&'static str> {
    let forbidden = MODEL_FORBIDS.iter().flat_map(|(_, v)| v.iter().copied());
    let implied = ANOMALY_IMPLIES
        .iter()
        .flat_map(|(k, v)| std::iter::once(*k).chain(v.iter().copied()));
    forbidden
        .chain(implied)
        .chain(["garbage-read"])
        .find(|a| *a == name)
}

/// Accepts a model name (or one of Elle's aliases) and returns its canonical name here.
pub fn canonical_model(name: &str) -> Option<&'static str> {
    let name = match name {
        "conflict-serializable" | "PL-3" => "serializable",
        "strong-serializable" | "PL-SS" => "strict-serializable",
        "PL-SI" => "snapshot-isolation",
        "PL-2" => "read-committed",
        "PL-1" => "read-uncommitted",
        "PL-2.99" => "repeatable-read",
        "PL-2+" => "consistent-view",
        "PL-CS" => "cursor-stability",
        "PL-FCV" => "forward-consistent-view",
        "PL-MSR" => "monotonic-snapshot-read",
        "PL-2L" => "monotonic-view",
        "PL-3U" => "update-serializable",
        "strong-session-PL-1" => "strong-session-read-uncommitted",
        "strong-session-PL-2" => "strong-session-read-committed",
        "strong-PL-1" => "strong-read-uncommitted",
        "strong-PL-2" => "strong-read-committed",
        other => other,
    };
    all_models().into_iter().find(|m| *m == name)
}

fn closure<'a>(
    starts: impl IntoIterator<Item = &'a str>,
    next: impl Fn(&str) -> Vec<&'a str>,
) -> BTreeSet<&'a str> {
    let mut seen = BTreeSet::new();
    let mut queue: VecDeque<&str> = starts.into_iter().collect();
    while let Some(x) = queue.pop_front() {
        if seen.insert(x) {
            queue.extend(next(x));
        }
    }
    seen
}

fn out_of(table: &'static [(&'static str, &'static [&'static str])], x: &str) -> Vec<&'static str> {
    table
        .iter()
        .filter(|(k, _)| *k == x)
        .flat_map(|(_, v)| v.iter().copied())
        .collect()
}

fn into(table: &'static [(&'static str, &'static [&'static str])], x: &str) -> Vec<&'static str> {
    table
        .iter()
        .filter(|(_, v)| v.contains(&x))
        .map(|(k, _)| *k)
        .collect()
}

/// Every anomaly which, if present, means one of `models` does not hold.
pub fn anomalies_prohibited_by(models: &[&'static str]) -> BTreeSet<&'static str> {
    let implied_models = closure(models.iter().copied(), |m| out_of(MODEL_IMPLIES, m));
    let direct: Vec<&'static str> = implied_models
        .iter()
        .flat_map(|m| out_of(MODEL_FORBIDS, m))
        .collect();
    closure(direct, |a| into(ANOMALY_IMPLIES, a))
}

/// `model` and every model stronger than it.
pub fn at_least_as_strong(model: &'static str) -> BTreeSet<&'static str> {
    closure([model], |m| into(MODEL_IMPLIES, m))
}

/// Every anomaly which means the `models` do not hold, or which implies one of the `extra`
/// anomalies asked for (Elle's `prohibited-anomaly-types`, `:anomalies` being `extra`).
pub fn prohibited(models: &[&'static str], extra: &[&'static str]) -> BTreeSet<&'static str> {
    let mut prohibited = anomalies_prohibited_by(models);
    prohibited.extend(closure(extra.iter().copied(), |a| into(ANOMALY_IMPLIES, a)));
    prohibited
}

/// Every anomaly implied by the given ones (themselves included).
pub fn implied_anomalies<'a>(anomalies: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    closure(anomalies, |a| out_of(ANOMALY_IMPLIES, a))
}

/// Every model these anomalies rule out: those forbidding any anomaly they imply, and every
/// model stronger than those.
pub fn impossible_models<'a>(
    anomalies: impl IntoIterator<Item = &'a str>,
) -> BTreeSet<&'static str> {
    let implied = implied_anomalies(anomalies);
    let direct: Vec<&'static str> = MODEL_FORBIDS
        .iter()
        .filter(|(_, forbidden)| forbidden.iter().any(|a| implied.contains(a)))
        .map(|(m, _)| *m)
        .collect();
    closure(direct, |m| into(MODEL_IMPLIES, m))
}

/// The models ruled out by these anomalies, as Elle's `:not` (the weakest of them) and
/// `:also-not` (the stronger rest).
pub fn boundary<'a>(
    anomalies: impl IntoIterator<Item = &'a str>,
) -> (BTreeSet<&'static str>, BTreeSet<&'static str>) {
    let impossible = impossible_models(anomalies);
    let weakest: BTreeSet<&'static str> = impossible
        .iter()
        .copied()
        .filter(|m| {
            let weaker = closure(out_of(MODEL_IMPLIES, m), |x| out_of(MODEL_IMPLIES, x));
            !weaker.iter().any(|w| impossible.contains(w))
        })
        .collect();
    let rest = impossible.difference(&weakest).copied().collect();
    (weakest, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_serializable_forbids_everything_we_detect() {
        let forbidden = anomalies_prohibited_by(&["strict-serializable"]);
        for anomaly in [
            "G0",
            "G1a",
            "G1b",
            "G1c",
            "G-single-item",
            "G-nonadjacent-item",
            "G2-item",
            "G0-realtime",
            "G2-item-realtime",
            "G-single-item-process",
            "internal",
            "lost-update",
            "future-read",
            "dirty-update",
            "incompatible-order",
            "duplicate-elements",
        ] {
            assert!(forbidden.contains(anomaly), "{anomaly}");
        }
    }

    #[test]
    fn serializable_allows_realtime_and_process_anomalies() {
        let forbidden = anomalies_prohibited_by(&["serializable"]);
        assert!(forbidden.contains("G2-item"));
        assert!(!forbidden.contains("G2-item-realtime"));
        assert!(!forbidden.contains("G-single-item-process"));
        let forbidden = anomalies_prohibited_by(&["snapshot-isolation"]);
        assert!(forbidden.contains("G-single-item"));
        assert!(!forbidden.contains("G2-item"));
        // Elle does not look for garbage reads: only asking for them makes them fail a check.
        assert!(!anomalies_prohibited_by(&["strict-serializable"]).contains("garbage-read"));
        assert!(prohibited(&["read-committed"], &["garbage-read"]).contains("garbage-read"));
    }

    #[test]
    fn boundary_names_the_weakest_broken_model() {
        let (not, also_not) = boundary(["G-single"]);
        assert_eq!(not, BTreeSet::from(["consistent-view"]));
        assert!(also_not.contains("serializable"));
        assert!(also_not.contains("strict-serializable"));
        assert!(!also_not.contains("read-committed"));

        let (not, also_not) = boundary(["G0"]);
        assert_eq!(not, BTreeSet::from(["read-uncommitted"]));
        assert!(also_not.contains("strict-serializable"));

        let (not, _) = boundary(["G2-item-realtime"]);
        assert_eq!(not, BTreeSet::from(["strict-serializable"]));
    }

    #[test]
    fn aliases_resolve() {
        assert_eq!(canonical_model("PL-SS"), Some("strict-serializable"));
        assert_eq!(canonical_model("serializable"), Some("serializable"));
        assert_eq!(canonical_model("bogus"), None);
    }
}
