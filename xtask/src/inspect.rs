//! `cargo xtask inspect DB [SQL...]`: runs SQL on a node's database with the PowerSync extension
//! loaded (bundled SQLite; Debian's sqlite3 is too old for the extension).

use xshell::{Shell, cmd};

use crate::{build_lib, project};

/// Arguments of `xtask inspect`.
#[derive(clap::Args)]
pub struct Args {
    /// The database, e.g. store/latest/n1/data.db.
    db: String,
    /// Statements to run; by default the extension's version and the tables.
    sql: Vec<String>,
}

/// Builds what it needs and runs the statements.
pub fn run(sh: &Shell, args: &Args) -> anyhow::Result<u8> {
    let lib = build_lib::run(sh)?;
    let (db, sql) = (&args.db, &args.sql);
    project::exit_code(cmd!(
        sh,
        "cargo run --quiet -p endpoint --bin inspect -- --lib {lib} {db} {sql...}"
    ))
}
