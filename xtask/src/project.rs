//! The project's shell: commands run from the workspace root with the chosen toolchain.

use std::path::PathBuf;
use std::process::Command;

use anyhow::Context;
use xshell::{Cmd, Shell};

use crate::toolchain;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

/// A shell at the workspace root whose `cargo` is new enough for the workspace.
pub fn shell() -> anyhow::Result<Shell> {
    let sh = Shell::new()?;
    sh.change_dir(root());
    toolchain::select(&sh)?;
    Ok(sh)
}

/// Runs a command with inherited output and returns its exit code (a signal counts as 2).
pub fn exit_code(cmd: Cmd<'_>) -> anyhow::Result<u8> {
    let display = cmd.to_string();
    let status = Command::from(cmd)
        .status()
        .with_context(|| format!("running {display}"))?;
    Ok(status.code().map_or(2, |c| c.clamp(0, 255) as u8))
}
