//! `checker FILE`: checks a Jepsen history and prints Elle's result map.
//! Exits 0 when valid, 1 when invalid, 2 when unknown or unreadable.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use checker::{history, list_append, models, rw_register};
use clap::{Parser, ValueEnum};

/// The kind of transactions in the history.
#[derive(Clone, Copy, ValueEnum)]
enum Model {
    /// Appends to lists and reads of whole lists (Elle's list-append).
    ListAppend,
    /// Writes and reads of registers (Elle's rw-register).
    RwRegister,
}

/// Checks a transactional history (Jepsen `history.edn`, or JSON with one op per line).
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The history file.
    file: PathBuf,
    /// What the transactions do.
    #[arg(long, value_enum, default_value = "list-append")]
    model: Model,
    /// Comma-separated consistency models the history must satisfy.
    #[arg(long, value_delimiter = ',', default_value = "strict-serializable")]
    consistency_models: Vec<String>,
    /// Comma-separated anomalies that fail the check whatever the models (Elle's
    /// `:anomalies`), e.g. `garbage-read`, which the models do not cover.
    #[arg(long, value_delimiter = ',')]
    anomalies: Vec<String>,
    /// Print JSON instead of EDN.
    #[arg(long)]
    json: bool,
    /// Seconds allowed for cycle search before reporting :cycle-search-timeout.
    #[arg(long, default_value_t = 10.0)]
    cycle_search_timeout: f64,
    /// rw-register: a write follows the read before it in a transaction.
    #[arg(long)]
    wfr_keys: bool,
    /// rw-register: each key is sequentially consistent (process order orders versions).
    #[arg(long)]
    sequential_keys: bool,
    /// rw-register: each key is linearizable (real-time order orders versions).
    #[arg(long)]
    linearizable_keys: bool,
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("checker: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(args: Args) -> anyhow::Result<u8> {
    let mut models = Vec::new();
    for name in &args.consistency_models {
        match models::canonical_model(name) {
            Some(m) => models.push(m),
            None => bail!(
                "unknown consistency model {name:?}; known: {}",
                models::all_models()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
    let mut anomalies = Vec::new();
    for name in &args.anomalies {
        match models::known_anomaly(name) {
            Some(a) => anomalies.push(a),
            None => bail!("unknown anomaly {name:?}"),
        }
    }
    let file =
        File::open(&args.file).with_context(|| format!("cannot open {}", args.file.display()))?;
    let ops = history::read_history(BufReader::new(file))
        .with_context(|| format!("malformed history {}", args.file.display()))?;
    let cycle_search_timeout = Duration::from_secs_f64(args.cycle_search_timeout);
    let verdict = match args.model {
        Model::ListAppend => list_append::check_history(
            ops,
            &list_append::Options {
                models,
                anomalies,
                cycle_search_timeout,
            },
        ),
        Model::RwRegister => rw_register::check_history(
            ops,
            &rw_register::Options {
                models,
                anomalies,
                cycle_search_timeout,
                wfr_keys: args.wfr_keys,
                sequential_keys: args.sequential_keys,
                linearizable_keys: args.linearizable_keys,
            },
        ),
    };
    let edn = verdict.to_edn();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&edn.to_json())?);
    } else {
        println!("{}", edn.to_pretty_string());
    }
    Ok(verdict.valid.exit_code() as u8)
}
