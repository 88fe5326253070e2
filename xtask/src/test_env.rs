//! `powersync/powersync.env`: the test environment's ports, credentials and JWT key, shared by
//! xtask, Docker Compose and the service's config.

use std::collections::BTreeMap;

use anyhow::Context;

use crate::project;

/// The parsed environment file.
pub struct TestEnv {
    vars: BTreeMap<String, String>,
}

impl TestEnv {
    /// Reads `powersync/powersync.env`; a variable already set in the process's environment
    /// overrides the file.
    pub fn load() -> anyhow::Result<TestEnv> {
        let path = project::root().join("powersync/powersync.env");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let mut vars = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .with_context(|| format!("{}:{}: expected KEY=VALUE", path.display(), i + 1))?;
            let value = std::env::var(key).unwrap_or_else(|_| value.to_owned());
            vars.insert(key.to_owned(), value);
        }
        Ok(TestEnv { vars })
    }

    /// A variable's value.
    pub fn get(&self, key: &str) -> anyhow::Result<&str> {
        self.vars
            .get(key)
            .map(String::as_str)
            .with_context(|| format!("{key} is not set in powersync/powersync.env"))
    }

    /// Every variable, to pass to a process.
    pub fn vars(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}
