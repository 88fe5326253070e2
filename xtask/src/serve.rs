//! `cargo xtask serve [-b 127.0.0.1] [-p 8080]`: a web page listing every stored run, with its
//! verdict, results, history, plots, timeline and anomalies.

use xshell::{Shell, cmd};

use crate::project;

/// Arguments of `xtask serve`.
#[derive(clap::Args)]
pub struct Args {
    /// Address to bind.
    #[arg(short = 'b', long = "bind", default_value = "127.0.0.1")]
    bind: String,
    /// Port.
    #[arg(short = 'p', long = "port", default_value_t = 8080)]
    port: u16,
    /// The store directory.
    #[arg(long, default_value = "store")]
    store: String,
}

/// Builds the harness and serves until interrupted.
pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<u8> {
    cmd!(sh, "cargo build -p harness").run()?;
    let harness = project::root().join("target/debug/harness");
    let (bind, port, store) = (&args.bind, args.port.to_string(), &args.store);
    project::exit_code(cmd!(
        sh,
        "{harness} serve --store {store} --bind {bind} --port {port}"
    ))
}
