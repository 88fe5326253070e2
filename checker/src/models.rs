//! Consistency models as data: which models imply which, which anomalies each forbids, and which
//! anomalies imply others (after Elle's `elle.consistency-model`, from Adya, Bailis, Cerone et al.).

use std::collections::{BTreeSet, VecDeque};

/// `stronger -> [weaker...]`: a history that satisfies the left satisfies each on the right.
const MODEL_IMPLIES: &[(&str, &[&str])] = &[
    (
        "strict-serializable",
        &[
            "serializable",
            "snapshot-isolation",
            "strong-snapshot-isolation",
            "strong-session-serializable",
        ],
    ),
    (
        "strong-session-serializable",
        &["serializable", "strong-session-snapshot-isolation"],
    ),
    (
        "strong-snapshot-isolation",
        &["strong-session-snapshot-isolation", "strong-read-committed"],
    ),
    (
        "strong-session-snapshot-isolation",
        &["snapshot-isolation", "strong-session-read-committed"],
    ),
    (
        "serializable",
        &[
            "repeatable-read",
            "snapshot-isolation",
            "update-serializable",
        ],
    ),
    ("update-serializable", &["forward-consistent-view"]),
    ("forward-consistent-view", &["consistent-view"]),
    ("consistent-view", &["cursor-stability", "monotonic-view"]),
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
    ("parallel-snapshot-isolation", &["causal-cerone", "ROLA"]),
    ("prefix", &["causal-cerone"]),
    ("causal-cerone", &["read-atomic"]),
    ("ROLA", &["read-atomic"]),
    ("read-atomic", &["monotonic-atomic-view"]),
    (
        "repeatable-read",
        &["cursor-stability", "monotonic-atomic-view"],
    ),
    ("monotonic-atomic-view", &["read-committed"]),
    ("cursor-stability", &["read-committed"]),
    ("monotonic-view", &["read-committed"]),
    ("monotonic-snapshot-read", &["read-committed"]),
    ("read-committed", &["read-uncommitted"]),
    (
        "strong-read-committed",
        &["strong-session-read-committed", "strong-read-uncommitted"],
    ),
    (
        "strong-session-read-committed",
        &["read-committed", "strong-session-read-uncommitted"],
    ),
    (
        "strong-read-uncommitted",
        &["strong-session-read-uncommitted"],
    ),
    ("strong-session-read-uncommitted", &["read-uncommitted"]),
];

/// The anomalies each model forbids directly, beyond those of the models it implies.
const MODEL_FORBIDS: &[(&str, &[&str])] = &[
    ("causal-cerone", &["internal", "G1a"]),
    ("cursor-stability", &["G1", "G-cursor", "lost-update"]),
    ("monotonic-view", &["G1", "G-monotonic"]),
    ("monotonic-snapshot-read", &["G1", "G-MSR"]),
    ("consistent-view", &["G1", "G-single"]),
    ("forward-consistent-view", &["G1", "G-SIb"]),
    ("parallel-snapshot-isolation", &["internal", "G1a"]),
    ("serializable", &["G1", "G2", "internal"]),
    ("read-committed", &["G1"]),
    (
        "read-uncommitted",
        &["G0", "duplicate-elements", "cyclic-versions"],
    ),
    ("prefix", &["internal", "G1a"]),
    (
        "snapshot-isolation",
        &["internal", "G1", "G-SI", "G-nonadjacent"],
    ),
    ("read-atomic", &["internal", "G1a", "future-read"]),
    ("repeatable-read", &["G1", "G2-item", "lost-update"]),
    ("ROLA", &["lost-update"]),
    (
        "strict-serializable",
        &["G1", "G1c-realtime", "G2-realtime"],
    ),
    ("strong-session-read-uncommitted", &["G0-process"]),
    ("strong-session-read-committed", &["G1c-process"]),
    ("strong-read-uncommitted", &["G0-realtime"]),
    ("strong-read-committed", &["G1c-realtime"]),
    (
        "strong-session-snapshot-isolation",
        &["internal", "G1-process", "G-nonadjacent-process"],
    ),
    (
        "strong-snapshot-isolation",
        &["internal", "G1-realtime", "G-nonadjacent-realtime"],
    ),
    ("strong-session-serializable", &["G1-process", "G2-process"]),
    ("update-serializable", &["G1", "G-update"]),
];

/// `anomaly -> [anomalies it implies]`.
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
    ("G-single", &["G-nonadjacent", "G-SIb", "G-single-process"]),
    (
        "G-single-process",
        &["G-nonadjacent-process", "G-single-realtime"],
    ),
    ("G-single-realtime", &["G-nonadjacent-realtime"]),
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
    // Not in Elle: a read of a value that no transaction ever tried to write is at least as bad
    // as reading an aborted write.
    ("garbage-read", &["G1a"]),
];

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

/// Accepts a model name (or one of Elle's aliases) and returns its canonical name here.
pub fn canonical_model(name: &str) -> Option<&'static str> {
    let name = match name {
        "conflict-serializable" | "PL-3" => "serializable",
        "strong-serializable" | "PL-SS" => "strict-serializable",
        "PL-SI" => "snapshot-isolation",
        "PL-2" => "read-committed",
        "PL-1" => "read-uncommitted",
        "PL-2.99" => "repeatable-read",
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

/// Every anomaly implied by the given ones (themselves included).
pub fn implied_anomalies<'a>(anomalies: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    closure(anomalies, |a| out_of(ANOMALY_IMPLIES, a))
}

/// The models ruled out by these anomalies, as Elle's `:not` (the weakest of them) and
/// `:also-not` (the stronger rest).
pub fn boundary<'a>(
    anomalies: impl IntoIterator<Item = &'a str>,
) -> (BTreeSet<&'static str>, BTreeSet<&'static str>) {
    let implied = implied_anomalies(anomalies);
    let direct: Vec<&'static str> = MODEL_FORBIDS
        .iter()
        .filter(|(_, forbidden)| forbidden.iter().any(|a| implied.contains(a)))
        .map(|(m, _)| *m)
        .collect();
    let impossible = closure(direct, |m| into(MODEL_IMPLIES, m));
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
            "G-single",
            "G-nonadjacent",
            "G2-item",
            "G0-realtime",
            "G2-item-realtime",
            "G-single-process",
            "internal",
            "lost-update",
            "future-read",
            "dirty-update",
            "incompatible-order",
            "duplicate-elements",
            "garbage-read",
        ] {
            assert!(forbidden.contains(anomaly), "{anomaly}");
        }
    }

    #[test]
    fn serializable_allows_realtime_and_process_anomalies() {
        let forbidden = anomalies_prohibited_by(&["serializable"]);
        assert!(forbidden.contains("G2-item"));
        assert!(!forbidden.contains("G2-item-realtime"));
        assert!(!forbidden.contains("G-single-process"));
        let forbidden = anomalies_prohibited_by(&["snapshot-isolation"]);
        assert!(forbidden.contains("G-single"));
        assert!(!forbidden.contains("G2-item"));
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
