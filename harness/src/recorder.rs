//! The history as it happens: every operation gets its index and time and is written to
//! `history.edn` and `history.txt` at once, so a crash or Ctrl-C keeps all recorded so far.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use checker::edn::Edn;
use checker::history::{Op, OpType, OpValue, Process};

/// Records operations in order, streaming them to disk.
pub struct Recorder {
    start: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    ops: Vec<Op>,
    edn: File,
    txt: File,
    /// Completions of clients' transactions so far: ok, fail, info.
    completions: [usize; 3],
}

impl Recorder {
    /// Creates `history.edn` and `history.txt` in `dir`.
    pub fn create(dir: &Path) -> anyhow::Result<Self> {
        let open = |name: &str| {
            File::create(dir.join(name))
                .with_context(|| format!("creating {name} in {}", dir.display()))
        };
        Ok(Recorder {
            start: Instant::now(),
            inner: Mutex::new(Inner {
                ops: Vec::new(),
                edn: open("history.edn")?,
                txt: open("history.txt")?,
                completions: [0; 3],
            }),
        })
    }

    /// Records one operation and returns it with its index and time.
    pub fn record(
        &self,
        process: Process,
        kind: OpType,
        f: &str,
        value: OpValue,
        error: Option<String>,
    ) -> anyhow::Result<Op> {
        let mut inner = self.inner.lock().expect("recorder lock");
        let op = Op {
            index: inner.ops.len(),
            time: self.start.elapsed().as_nanos() as i64,
            kind,
            process,
            f: f.to_owned().into(),
            value,
            error: error.map(Edn::Str),
        };
        let edn_line = format!("{}\n", op.to_edn());
        let value_text = match &op.value {
            OpValue::Txn(mops) => {
                Edn::Vector(mops.iter().map(|m| m.to_edn()).collect()).to_string()
            }
            OpValue::Other(v) => v.to_string(),
        };
        let mut txt_line = format!(
            "{}\t:{}\t:{}\t{}",
            op.process,
            kind.name(),
            op.f,
            value_text
        );
        if let Some(e) = &op.error {
            txt_line.push_str(&format!("\t{e}"));
        }
        txt_line.push('\n');
        inner
            .edn
            .write_all(edn_line.as_bytes())
            .context("writing history.edn")?;
        inner
            .txt
            .write_all(txt_line.as_bytes())
            .context("writing history.txt")?;
        if let (Process::Client(_), OpValue::Txn(_)) = (&op.process, &op.value) {
            match kind {
                OpType::Ok => inner.completions[0] += 1,
                OpType::Fail => inner.completions[1] += 1,
                OpType::Info => inner.completions[2] += 1,
                OpType::Invoke => {}
            }
        }
        inner.ops.push(op.clone());
        Ok(op)
    }

    /// Clients' transactions completed so far: ok, fail and info.
    pub fn completions(&self) -> [usize; 3] {
        self.inner.lock().expect("recorder lock").completions
    }

    /// A copy of everything recorded so far.
    pub fn ops(&self) -> Vec<Op> {
        self.inner.lock().expect("recorder lock").ops.clone()
    }

    /// Flushes both files to stable storage.
    pub fn sync(&self) -> anyhow::Result<()> {
        let inner = self.inner.lock().expect("recorder lock");
        inner.edn.sync_all()?;
        inner.txt.sync_all()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::history::{Mop, read_history};

    #[test]
    fn what_is_recorded_is_on_disk_and_readable() {
        let dir = tempfile::tempdir().unwrap();
        let recorder = Recorder::create(dir.path()).unwrap();
        let mops = vec![
            Mop::Append { key: 1, value: 2 },
            Mop::Read {
                key: 1,
                value: None,
            },
        ];
        recorder
            .record(
                Process::Client(0),
                OpType::Invoke,
                "txn",
                OpValue::Txn(mops),
                None,
            )
            .unwrap();
        recorder
            .record(
                Process::Client(0),
                OpType::Info,
                "txn",
                OpValue::Txn(vec![]),
                Some("timeout".into()),
            )
            .unwrap();
        // No flush, no drop: the lines are already in the files.
        let text = std::fs::read_to_string(dir.path().join("history.edn")).unwrap();
        let ops = read_history(text.as_bytes()).unwrap();
        assert_eq!(ops, recorder.ops());
        assert_eq!(ops[1].index, 1);
        let txt = std::fs::read_to_string(dir.path().join("history.txt")).unwrap();
        assert_eq!(
            txt.lines().next().unwrap(),
            "0\t:invoke\t:txn\t[[:append 1 2] [:r 1 nil]]"
        );
        assert!(txt.lines().nth(1).unwrap().ends_with("\"timeout\""));
    }
}
