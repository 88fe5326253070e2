//! `cargo xtask bench checker`: seeded list-append histories of growing size, serializable and
//! with injected anomalies, checked for strict serializability by this checker and, as a
//! reference, by the `adya` crate. Each check runs in a process of its own so that its time and
//! peak memory are its own. Prints figures and ratios; asserts nothing about speed.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use checker::history::read_history;
use checker::list_append::{self, Options};
use checker::synth::{self, Injection, Params};

/// Which checker a child process runs.
const OURS: &str = "ours";
const ADYA: &str = "adya";
/// A reference run that takes longer than this is reported as not finished.
const CHILD_LIMIT: Duration = Duration::from_secs(300);

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, which, file] = args.as_slice()
        && flag == "--measure"
    {
        return measure(which, Path::new(file));
    }
    let mut sizes = vec![10_000, 100_000, 1_000_000];
    let mut reference = true;
    let mut runs = 3usize;
    let mut keep: Option<std::path::PathBuf> = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--sizes" => {
                let list = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--sizes needs a list"))?;
                sizes = list.split(',').map(str::parse).collect::<Result<_, _>>()?;
            }
            "--no-reference" => reference = false,
            "--runs" => {
                runs = it
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("--runs needs a number"))?
                    .parse()?
            }
            "--keep" => {
                keep = Some(
                    it.next()
                        .ok_or_else(|| anyhow::anyhow!("--keep needs a directory"))?
                        .into(),
                )
            }
            other => anyhow::bail!(
                "unknown argument {other:?}; use --sizes 10000,100000 and --no-reference"
            ),
        }
    }
    let temp = tempfile::tempdir()?;
    let dir = keep.as_deref().unwrap_or(temp.path());
    std::fs::create_dir_all(dir)?;
    println!(
        "list-append histories: 100 processes, 10 hot keys (64 appends each before rotating), 1-4 micro-ops, 2% fail, 1% info"
    );
    println!(
        "each figure is the best of {runs} runs, each in a process of its own, reading a cached file"
    );
    println!(
        "{:>9} {:<12} {:<7} {:>9} {:>12} {:>9} {:<8} anomalies",
        "txns", "history", "checker", "seconds", "txn/s", "peak MB", "valid?"
    );
    // Every history is written before any is checked, so that generating one (which takes
    // several GB in this process) never disturbs the measurement of another.
    let mut histories = Vec::new();
    for &size in &sizes {
        for injected in [false, true] {
            let path = dir.join(format!("{size}-{injected}.edn"));
            let txns = write_history(&path, size, injected)?;
            histories.push((size, injected, txns, path));
        }
    }
    for (size, injected, txns, path) in &histories {
        let ours = best_of(runs, OURS, path)?;
        print_row(*size, *injected, OURS, *txns, &ours);
        if reference {
            let adya = best_of(runs, ADYA, path)?;
            print_row(*size, *injected, ADYA, *txns, &adya);
            if let (Some(a), Some(b)) = (ours.seconds, adya.seconds) {
                println!(
                    "{:>9} {:<12} adya takes {:.2}x the time and {:.2}x the memory",
                    "",
                    "",
                    b / a,
                    adya.peak_mb / ours.peak_mb.max(1.0)
                );
            }
        }
    }
    Ok(())
}

/// Generates and writes a history; returns its number of transactions.
fn write_history(path: &Path, size: usize, injected: bool) -> anyhow::Result<usize> {
    let mut ops = synth::serial_history(&Params {
        txns: size,
        processes: 100,
        active_keys: 10,
        max_writes_per_key: 64,
        seed: size as u64,
        ..Params::default()
    });
    if injected {
        for (i, injection) in Injection::ALL.into_iter().enumerate() {
            synth::inject(&mut ops, injection, i as u64 + 1);
        }
    }
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    for op in &ops {
        writeln!(out, "{}", op.to_edn())?;
    }
    // On disk before it is timed: writeback of a just-written file would slow the reader.
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(ops.len() / 2)
}

struct Measured {
    seconds: Option<f64>,
    peak_mb: f64,
    valid: String,
    anomalies: String,
}

/// The fastest of `runs` measurements: the machine's own noise (page-cache reclaim, other
/// tenants) only ever adds time.
fn best_of(runs: usize, which: &str, path: &Path) -> anyhow::Result<Measured> {
    let mut best: Option<Measured> = None;
    for _ in 0..runs.max(1) {
        let m = run_child(which, path)?;
        let better = match (&best, m.seconds) {
            (None, _) => true,
            (Some(b), Some(s)) => b.seconds.is_none_or(|bs| s < bs),
            (Some(_), None) => false,
        };
        if better {
            best = Some(m);
        }
        if best.as_ref().is_some_and(|b| b.seconds.is_none()) {
            break;
        }
    }
    Ok(best.expect("at least one run"))
}

fn run_child(which: &str, path: &Path) -> anyhow::Result<Measured> {
    // These machines reclaim idle page cache: read the file once so that both checkers are
    // timed reading memory, not the disk.
    std::io::copy(&mut std::fs::File::open(path)?, &mut std::io::sink())?;
    let me = std::env::current_exe()?;
    let mut child = Command::new(me)
        .args(["--measure", which])
        .arg(path)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut child.stdout.take().expect("piped"), &mut text)?;
            let fields: Vec<&str> = text.trim_end_matches('\n').splitn(4, '\t').collect();
            return Ok(match (status.success(), fields.as_slice()) {
                (true, [secs, peak, valid, anomalies]) => Measured {
                    seconds: secs.parse().ok(),
                    peak_mb: peak.parse().unwrap_or(0.0),
                    valid: (*valid).to_owned(),
                    anomalies: (*anomalies).to_owned(),
                },
                _ => Measured {
                    seconds: None,
                    peak_mb: 0.0,
                    valid: "-".into(),
                    anomalies: format!("could not check it ({status})"),
                },
            });
        }
        if started.elapsed() > CHILD_LIMIT {
            child.kill()?;
            child.wait()?;
            return Ok(Measured {
                seconds: None,
                peak_mb: 0.0,
                valid: "-".into(),
                anomalies: format!("did not finish within {CHILD_LIMIT:?}"),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn print_row(size: usize, injected: bool, which: &str, txns: usize, m: &Measured) {
    let history = if injected { "injected" } else { "serializable" };
    let (secs, rate) = match m.seconds {
        Some(s) => (format!("{s:.3}"), format!("{:.0}", txns as f64 / s)),
        None => ("-".into(), "-".into()),
    };
    println!(
        "{size:>9} {history:<12} {which:<7} {secs:>9} {rate:>12} {:>9.0} {:<8} {}",
        m.peak_mb, m.valid, m.anomalies
    );
}

/// In a child: reads and checks the file with one checker, then prints
/// `seconds<TAB>peak MB<TAB>valid<TAB>anomaly types`.
fn measure(which: &str, path: &Path) -> anyhow::Result<()> {
    let started = Instant::now();
    let (valid, anomalies) = match which {
        OURS => {
            let file = std::io::BufReader::new(std::fs::File::open(path)?);
            let ops = read_history(file)?;
            let verdict = list_append::check_history(ops, &Options::default());
            let types: Vec<&str> = verdict.anomaly_types().collect();
            (verdict.valid.to_edn().to_string(), types.join(","))
        }
        ADYA => {
            let text = std::fs::read_to_string(path)?;
            let history = adya::History::from_edn(&text).map_err(|e| anyhow::anyhow!("{e}"))?;
            let report = adya::check(&history, adya::Workload::ListAppend, &adya::Opts::default());
            (
                format!("{:?}", report.valid).to_lowercase(),
                report.anomaly_types.join(","),
            )
        }
        other => anyhow::bail!("unknown checker {other}"),
    };
    let seconds = started.elapsed().as_secs_f64();
    println!("{seconds:.3}\t{:.1}\t{valid}\t{anomalies}", peak_mb());
    Ok(())
}

/// This process's peak resident memory, from /proc.
fn peak_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}
