//! The run's log: each line to stderr and to `jepsen.log` in the run directory.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::SystemTime;

/// A log file that also echoes to stderr.
pub struct Log {
    file: Mutex<File>,
    /// Whether stderr is a terminal with a progress line to clear first.
    terminal: bool,
}

impl Log {
    /// Creates the log at `path`.
    pub fn create(path: &Path) -> anyhow::Result<Self> {
        Ok(Log {
            file: Mutex::new(File::create(path)?),
            terminal: crate::progress::enabled(),
        })
    }

    /// Logs one message (which may span lines).
    pub fn info(&self, message: impl AsRef<str>) {
        let stamp = humantime::format_rfc3339_millis(SystemTime::now());
        let text = format!("{stamp} INFO {}\n", message.as_ref());
        if self.terminal {
            eprint!("\r\x1b[2K{text}");
        } else {
            eprint!("{text}");
        }
        let _ = self
            .file
            .lock()
            .expect("log lock")
            .write_all(text.as_bytes());
    }
}
