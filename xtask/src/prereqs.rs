//! What a task needs from the machine (`xtask/prerequisites.txt`, which `.ci/run` reads too),
//! checked before anything is built. What is missing is installed with apt when we are root, as
//! Jepsen installs packages on its nodes, saying what; otherwise (and always under `CI=true`,
//! where `.ci/run` must have installed it) the task stops with one line naming the packages.

use anyhow::bail;
use xshell::{Shell, cmd};

/// The list: package, presence check, need, purpose.
const LIST: &str = include_str!("../prerequisites.txt");

/// One prerequisite.
struct Prerequisite<'a> {
    package: &'a str,
    check: &'a str,
    need: &'a str,
}

fn prerequisites() -> impl Iterator<Item = Prerequisite<'static>> {
    LIST.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some(Prerequisite {
                package: words.next()?,
                check: words.next()?,
                need: words.next()?,
            })
        })
}

/// Whether a check passes: one of its `|`-separated alternatives does.
fn present(check: &str) -> bool {
    check.split('|').any(alternative_present)
}

/// A path pattern (with `*`, and `$VAR` for a leading environment variable) matches a file,
/// or a command is on PATH.
fn alternative_present(check: &str) -> bool {
    if let Some(rest) = check.strip_prefix('$') {
        let (var, path) = rest.split_once('/').unwrap_or((rest, ""));
        let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) else {
            return false;
        };
        let value = value.to_string_lossy().into_owned();
        let full = if path.is_empty() {
            value
        } else {
            format!("{value}/{path}")
        };
        return full.starts_with('/') && glob_exists(&full);
    }
    if check.starts_with('/') {
        return glob_exists(check);
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(check).is_file()))
}

/// Whether some file matches `pattern`, whose `*` match within one path component.
fn glob_exists(pattern: &str) -> bool {
    fn walk(base: std::path::PathBuf, parts: &[&str]) -> bool {
        let Some((part, rest)) = parts.split_first() else {
            return base.exists();
        };
        if !part.contains('*') {
            return walk(base.join(part), rest);
        }
        let (prefix, suffix) = part.split_once('*').unwrap_or((part, ""));
        let suffix = suffix.trim_end_matches('*');
        std::fs::read_dir(&base).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                name.starts_with(prefix)
                    && (suffix.is_empty() || name[prefix.len()..].contains(suffix))
                    && walk(e.path(), rest)
            })
        })
    }
    let parts: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
    walk("/".into(), &parts)
}

/// The packages missing for `needs` (e.g. `["build", "plots"]`).
pub fn missing(needs: &[&str]) -> Vec<&'static str> {
    prerequisites()
        .filter(|p| needs.contains(&p.need) && !present(p.check))
        .map(|p| p.package)
        .collect()
}

/// Makes sure what `needs` asks for is installed: installs it as root, or stops saying how.
pub fn ensure(sh: &Shell, needs: &[&str]) -> anyhow::Result<()> {
    let missing = missing(needs);
    if missing.is_empty() {
        return Ok(());
    }
    let list = missing.join(" ");
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        bail!(
            "CI=true and packages are missing: {list} (needed for {}); .ci/run installs them \
             from xtask/prerequisites.txt",
            needs.join(", ")
        );
    }
    let root = cmd!(sh, "id -u")
        .quiet()
        .read()
        .is_ok_and(|id| id.trim() == "0");
    let apt = present("apt-get");
    if !(root && apt) {
        bail!(
            "missing packages: {list}; install them with: sudo apt-get install -y {list} \
             (or enter `nix develop`, which provides them)"
        );
    }
    eprintln!("xtask: installing {list} (needed for {})", needs.join(", "));
    let _frontend = sh.push_env("DEBIAN_FRONTEND", "noninteractive");
    cmd!(sh, "apt-get update -qq")
        .quiet()
        .ignore_stdout()
        .run()?;
    cmd!(sh, "apt-get install -y -qq {missing...}")
        .quiet()
        .ignore_stdout()
        .run()?;
    let still = self::missing(needs);
    if !still.is_empty() {
        bail!(
            "apt-get installed {list}, but still missing: {}",
            still.join(" ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_parses_and_covers_every_need() {
        let all: Vec<_> = prerequisites().collect();
        assert!(
            all.iter()
                .any(|p| p.package == "libclang-dev" && p.need == "build")
        );
        for need in ["build", "postgres", "partitions", "plots", "browser"] {
            assert!(all.iter().any(|p| p.need == need), "{need}");
        }
    }

    #[test]
    fn checks_find_files_and_commands() {
        assert!(present("sh"));
        assert!(!present("surely-no-such-command-here"));
        assert!(glob_exists("/e*/passwd"));
        assert!(!glob_exists("/no-such-dir-*/x"));
        assert!(present("surely-no-such-command-here|sh"));
        assert!(!present("$SURELY_NO_SUCH_VARIABLE/x"));
    }
}
