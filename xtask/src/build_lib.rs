//! `cargo xtask build-lib`: the PowerSync SQLite core as a loadable extension,
//! `target/powersync/libpowersync.so`, built from the `powersync_core` crate by the project's own
//! `loadable` crate.

use std::path::PathBuf;

use xshell::{Shell, cmd};

use crate::{prereqs, project};

/// Builds the library and returns its path.
pub fn run(sh: &Shell) -> anyhow::Result<PathBuf> {
    prereqs::ensure(sh, &["build"])?;
    cmd!(sh, "cargo build -p powersync-loadable --profile loadable").run()?;
    let target = project::root().join("target");
    let built = target.join("loadable/libpowersync_loadable.so");
    let dir = target.join("powersync");
    sh.create_dir(&dir)?;
    let lib = dir.join("libpowersync.so");
    sh.copy_file(&built, &lib)?;
    eprintln!("xtask: built {}", lib.display());
    Ok(lib)
}
