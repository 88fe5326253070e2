//! The progress line: elapsed time against the time limit, clients' completions, and the fault
//! in progress, redrawn each second on a terminal; nothing at all when stderr is not one.

use std::io::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::recorder::Recorder;

/// Whether stderr is a terminal.
pub fn enabled() -> bool {
    // SAFETY: isatty on a file descriptor this process owns.
    unsafe { libc::isatty(libc::STDERR_FILENO) == 1 }
}

/// One line of progress.
pub fn line(elapsed: Duration, limit: f64, [ok, fail, info]: [usize; 3], fault: &str) -> String {
    let fault = if fault.is_empty() { "none" } else { fault };
    format!(
        "[{:>6.1}/{limit:.0} s] ok {ok}  fail {fail}  info {info}  nemesis: {fault}",
        elapsed.as_secs_f64()
    )
}

/// Redraws the line every second until `done`.
pub fn show(
    recorder: &Recorder,
    started: Instant,
    limit: f64,
    fault: &Mutex<String>,
    done: &AtomicBool,
) {
    let mut stderr = std::io::stderr();
    while !done.load(Ordering::SeqCst) {
        let text = line(
            started.elapsed(),
            limit,
            recorder.completions(),
            &fault.lock().expect("state lock"),
        );
        let _ = write!(stderr, "\r\x1b[2K{text}");
        let _ = stderr.flush();
        std::thread::sleep(Duration::from_secs(1));
    }
    let _ = writeln!(stderr, "\r\x1b[2K");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_the_line() {
        assert_eq!(
            line(Duration::from_millis(12_340), 60.0, [100, 2, 1], "kill n1"),
            "[  12.3/60 s] ok 100  fail 2  info 1  nemesis: kill n1"
        );
        assert!(line(Duration::ZERO, 5.0, [0, 0, 0], "").ends_with("nemesis: none"));
    }
}
