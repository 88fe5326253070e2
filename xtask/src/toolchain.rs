//! Choosing the Rust toolchain for the workspace: the SDK needs rustc >= 1.96. Where the default
//! is older, an installed toolchain that is new enough (the image's nightly) is used instead.

use anyhow::{Context, bail};
use xshell::{Shell, cmd};

/// The oldest rustc the workspace builds with.
const REQUIRED: (u32, u32) = (1, 96);
/// Installed toolchains to try, in order, when the default is too old.
const CANDIDATES: &[&str] = &["stable", "beta", "nightly"];

/// Makes every `cargo` run through `sh` use a toolchain >= 1.96, and says which.
pub fn select(sh: &Shell) -> anyhow::Result<()> {
    let current = version(sh, None)?;
    if current >= REQUIRED {
        return Ok(());
    }
    let chosen_by_user = std::env::var("RUSTUP_TOOLCHAIN_SOURCE").is_ok_and(|s| s != "default");
    if chosen_by_user {
        bail!(
            "the selected toolchain has rustc {}.{}; the PowerSync SDK needs {}.{} or newer",
            current.0,
            current.1,
            REQUIRED.0,
            REQUIRED.1
        );
    }
    for candidate in CANDIDATES {
        if version(sh, Some(candidate)).is_ok_and(|v| v >= REQUIRED) {
            eprintln!(
                "xtask: default rustc is {}.{}; using the installed `{candidate}` toolchain (needs >= {}.{})",
                current.0, current.1, REQUIRED.0, REQUIRED.1
            );
            sh.set_var("RUSTUP_TOOLCHAIN", candidate);
            return Ok(());
        }
    }
    bail!(
        "rustc {}.{} is too old and no installed toolchain has >= {}.{}; install one with rustup",
        current.0,
        current.1,
        REQUIRED.0,
        REQUIRED.1
    )
}

fn version(sh: &Shell, toolchain: Option<&str>) -> anyhow::Result<(u32, u32)> {
    let plus = toolchain.map(|t| format!("+{t}"));
    let text = cmd!(sh, "rustc {plus...} --version")
        .quiet()
        .ignore_stderr()
        .read()
        .context("running rustc --version")?;
    parse_version(&text).with_context(|| format!("unexpected rustc version {text:?}"))
}

fn parse_version(text: &str) -> Option<(u32, u32)> {
    let number = text.split_whitespace().nth(1)?;
    let mut parts = number.split(['.', '-']);
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rustc_versions() {
        assert_eq!(
            parse_version("rustc 1.95.0 (59807616e 2026-04-14)"),
            Some((1, 95))
        );
        assert_eq!(
            parse_version("rustc 1.97.0-nightly (e50aa6fba 2026-05-19)"),
            Some((1, 97))
        );
        assert_eq!(parse_version("garbage"), None);
    }
}
