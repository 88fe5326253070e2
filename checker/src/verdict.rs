//! Verdicts in Elle's shape: `:valid?`, `:anomaly-types`, `:anomalies`, `:not`, `:also-not`.

use std::collections::{BTreeMap, BTreeSet};

use crate::edn::{Edn, kw, kw_map};
use crate::models;

/// Cases found, by anomaly type, as a checker collects them.
#[derive(Debug, Default)]
pub struct Findings(pub BTreeMap<String, Vec<Edn>>);

impl Findings {
    /// Records one case of `kind`.
    pub fn add(&mut self, kind: &str, case: Edn) {
        self.0.entry(kind.to_owned()).or_default().push(case);
    }

    /// Adds everything `other` found.
    pub fn merge(&mut self, other: Findings) {
        for (kind, cases) in other.0 {
            self.0.entry(kind).or_default().extend(cases);
        }
    }
}

/// Jepsen's three-valued validity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// No forbidden anomaly was found.
    Valid,
    /// A forbidden anomaly was found.
    Invalid,
    /// The analysis could not decide.
    Unknown,
}

impl Validity {
    /// The process exit code a gate uses: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> i32 {
        match self {
            Validity::Valid => 0,
            Validity::Invalid => 1,
            Validity::Unknown => 2,
        }
    }

    /// As Jepsen writes it: `true`, `false` or `:unknown`.
    pub fn to_edn(self) -> Edn {
        match self {
            Validity::Valid => Edn::Bool(true),
            Validity::Invalid => Edn::Bool(false),
            Validity::Unknown => kw("unknown"),
        }
    }

    /// Combines verdicts: any invalid is invalid, else any unknown is unknown.
    pub fn and(self, other: Validity) -> Validity {
        match (self, other) {
            (Validity::Invalid, _) | (_, Validity::Invalid) => Validity::Invalid,
            (Validity::Unknown, _) | (_, Validity::Unknown) => Validity::Unknown,
            _ => Validity::Valid,
        }
    }
}

/// What a checker found: each anomaly type with its cases, judged against consistency models.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The overall validity under the requested models.
    pub valid: Validity,
    /// The models checked.
    pub models: Vec<&'static str>,
    /// Every anomaly found, by type, each case a map explaining it.
    pub anomalies: BTreeMap<String, Vec<Edn>>,
    /// The weakest models these anomalies rule out.
    pub not: BTreeSet<&'static str>,
    /// Stronger models also ruled out.
    pub also_not: BTreeSet<&'static str>,
}

impl Verdict {
    /// Judges `anomalies` against `models` as Elle's `result-map` does: only the anomalies the
    /// models forbid, and those that say the analysis could not decide, are reported; invalid
    /// if any is forbidden, unknown if only undecided ones remain, valid (with nothing
    /// reported) otherwise. `:not` and `:also-not` come from everything found.
    /// `extra` anomalies are failures too, whatever the models (Elle's `:anomalies`).
    pub fn judge(
        models: Vec<&'static str>,
        extra: &[&'static str],
        anomalies: BTreeMap<String, Vec<Edn>>,
    ) -> Verdict {
        let forbidden = models::prohibited(&models, extra);
        let undecided = |a: &str| models::UNKNOWN_ANOMALIES.contains(&a);
        let reportable: BTreeMap<String, Vec<Edn>> = anomalies
            .iter()
            .filter(|(a, _)| forbidden.contains(a.as_str()) || undecided(a))
            .map(|(a, cases)| (a.clone(), cases.clone()))
            .collect();
        let reportable = models::without_redundant_cycle_exists(reportable);
        if reportable.is_empty() {
            return Verdict {
                valid: Validity::Valid,
                models,
                anomalies: reportable,
                not: BTreeSet::new(),
                also_not: BTreeSet::new(),
            };
        }
        let valid = if reportable.keys().any(|a| forbidden.contains(a.as_str())) {
            Validity::Invalid
        } else {
            Validity::Unknown
        };
        let (not, also_not) = models::boundary(anomalies.keys().map(String::as_str));
        Verdict {
            valid,
            models,
            anomalies: reportable,
            not,
            also_not,
        }
    }

    /// A verdict for checks outside the model lattice: invalid if anything was found, unknown if
    /// only findings that say the check could not decide.
    pub fn of_findings(anomalies: BTreeMap<String, Vec<Edn>>) -> Verdict {
        let undecided = |a: &String| models::UNKNOWN_ANOMALIES.contains(&a.as_str());
        let valid = if anomalies.keys().any(|a| !undecided(a)) {
            Validity::Invalid
        } else if anomalies.is_empty() {
            Validity::Valid
        } else {
            Validity::Unknown
        };
        Verdict {
            valid,
            models: Vec::new(),
            anomalies,
            not: BTreeSet::new(),
            also_not: BTreeSet::new(),
        }
    }

    /// The anomaly types found, sorted.
    pub fn anomaly_types(&self) -> impl Iterator<Item = &str> {
        self.anomalies.keys().map(String::as_str)
    }

    /// Renders as Elle's result map.
    pub fn to_edn(&self) -> Edn {
        let names = |set: &BTreeSet<&'static str>| Edn::Set(set.iter().map(|m| kw(m)).collect());
        let mut entries = vec![("valid?", self.valid.to_edn())];
        if !self.anomalies.is_empty() {
            entries.push((
                "anomaly-types",
                Edn::Vector(self.anomaly_types().map(kw).collect()),
            ));
            entries.push((
                "anomalies",
                Edn::Map(
                    self.anomalies
                        .iter()
                        .map(|(k, v)| (kw(k), Edn::Vector(v.clone())))
                        .collect(),
                ),
            ));
        }
        entries.push((
            "models",
            Edn::Vector(self.models.iter().map(|m| kw(m)).collect()),
        ));
        entries.push(("not", names(&self.not)));
        entries.push(("also-not", names(&self.also_not)));
        kw_map(entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn judges_against_the_requested_models() {
        let found = BTreeMap::from([("G-single-realtime".to_owned(), vec![Edn::Nil])]);
        let strict = Verdict::judge(vec!["strict-serializable"], &[], found.clone());
        assert_eq!(strict.valid, Validity::Invalid);
        assert!(strict.not.contains("strong-snapshot-isolation"));
        assert!(strict.also_not.contains("strict-serializable"));
        // As Elle: what the models allow is not reported at all.
        let serializable = Verdict::judge(vec!["serializable"], &[], found.clone());
        assert_eq!(serializable.valid, Validity::Valid);
        assert!(serializable.anomalies.is_empty() && serializable.not.is_empty());
        // Unless it is asked for.
        let asked = Verdict::judge(vec!["serializable"], &["G-single-realtime"], found);
        assert_eq!(asked.valid, Validity::Invalid);
    }

    #[test]
    fn a_timeout_alone_is_unknown() {
        let found = BTreeMap::from([("cycle-search-timeout".to_owned(), vec![])]);
        assert_eq!(
            Verdict::judge(vec!["serializable"], &[], found).valid,
            Validity::Unknown
        );
        let both = BTreeMap::from([
            ("cycle-search-timeout".to_owned(), vec![]),
            ("G0".to_owned(), vec![]),
        ]);
        assert_eq!(
            Verdict::judge(vec!["serializable"], &[], both).valid,
            Validity::Invalid
        );
    }

    #[test]
    fn renders_like_elle() {
        let v = Verdict::judge(vec!["serializable"], &[], BTreeMap::new());
        assert_eq!(
            v.to_edn().to_string(),
            "{:valid? true, :models [:serializable], :not #{}, :also-not #{}}"
        );
    }
}
