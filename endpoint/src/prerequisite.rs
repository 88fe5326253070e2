//! What a test does when something it needs is missing (PostgreSQL, the loadable library, root,
//! a browser): with `CI=true` it fails, naming what is missing, so CI never passes a test that
//! did not run; elsewhere it says it was skipped, and, where `PSJ_SKIPPED_LOG` names a file,
//! adds the reason there for `cargo xtask ci`'s closing summary.

use std::io::Write as _;

/// The variable naming the file where skipped tests append their reason.
pub const SKIPPED_LOG: &str = "PSJ_SKIPPED_LOG";

/// Reports that a test cannot run because `what` is missing: panics under `CI=true`, else
/// prints and logs the skip. The caller returns after it.
pub fn missing(what: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("a prerequisite of this test is missing, and CI=true requires it: {what}");
    }
    eprintln!("skipped: {what}");
    if let Some(path) = std::env::var_os(SKIPPED_LOG)
        && let Ok(mut file) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    {
        let _ = writeln!(file, "{what}");
    }
}
