//! The store, laid out like Jepsen's: `store/<test>/<timestamp>/` per run, with `store/latest`
//! and `store/<test>/latest` pointing at the newest.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context;

/// A timestamp as Jepsen names run directories: `20261126T012407.123Z`.
pub fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at)
        .to_string()
        .replace(['-', ':'], "")
}

/// Creates a fresh run directory for `test` and points the `latest` links at it.
pub fn create_run_dir(store: &Path, test: &str) -> anyhow::Result<PathBuf> {
    let base = timestamp(SystemTime::now());
    let test_dir = store.join(test);
    let mut name = base.clone();
    let mut n = 1;
    while test_dir.join(&name).exists() {
        n += 1;
        name = format!("{base}-{n}");
    }
    let dir = test_dir.join(&name);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    relink(&test_dir.join("latest"), Path::new(&name))?;
    relink(&store.join("latest"), &Path::new(test).join(&name))?;
    Ok(dir)
}

/// A stored run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// The test's name, such as `powersync-single`.
    pub test: String,
    /// The run directory's name, its timestamp.
    pub name: String,
    /// The run directory.
    pub dir: PathBuf,
}

/// Every run in `store` (directories with a history), newest first.
pub fn runs(store: &Path) -> anyhow::Result<Vec<Run>> {
    let mut runs = Vec::new();
    for test_dir in
        std::fs::read_dir(store).with_context(|| format!("reading {}", store.display()))?
    {
        let test_dir = test_dir?.path();
        if !test_dir.is_dir() || test_dir.is_symlink() {
            continue;
        }
        for run in std::fs::read_dir(&test_dir)? {
            let dir = run?.path();
            if dir.is_dir() && !dir.is_symlink() && dir.join("history.edn").exists() {
                let name = |p: &Path| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                runs.push(Run {
                    test: name(&test_dir),
                    name: name(&dir),
                    dir,
                });
            }
        }
    }
    runs.sort_by(|a, b| b.name.cmp(&a.name).then_with(|| a.test.cmp(&b.test)));
    Ok(runs)
}

fn relink(link: &Path, target: &Path) -> anyhow::Result<()> {
    let tmp = link.with_extension("tmp-link");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)?;
    std::fs::rename(&tmp, link).with_context(|| format!("updating {}", link.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_runs_like_jepsen_and_links_the_latest() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_700_000_000_123);
        assert_eq!(timestamp(at), "20231114T221320.123Z");
        let store = tempfile::tempdir().unwrap();
        let first = create_run_dir(store.path(), "sqlite3-local").unwrap();
        let second = create_run_dir(store.path(), "sqlite3-local").unwrap();
        assert_ne!(first, second);
        let latest = std::fs::canonicalize(store.path().join("latest")).unwrap();
        assert_eq!(latest, std::fs::canonicalize(&second).unwrap());
        let test_latest = std::fs::canonicalize(store.path().join("sqlite3-local/latest")).unwrap();
        assert_eq!(test_latest, latest);
    }
}
