//! `inspect DB [SQL...]`: opens a node's database read-only with bundled SQLite (>= 3.44, which
//! the PowerSync core needs), loads the PowerSync extension from `--lib`, runs each statement
//! and prints the rows tab-separated with a header.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};

/// Runs SQL on a node's database with the PowerSync extension loaded.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The loadable extension built by `cargo xtask build-lib`.
    #[arg(long, default_value = "target/powersync/libpowersync.so")]
    lib: PathBuf,
    /// The database file, e.g. store/latest/n1/data.db.
    db: PathBuf,
    /// Statements to run; by default the PowerSync version and each table's row count.
    sql: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let conn = Connection::open_with_flags(&args.db, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("opening {}", args.db.display()))?;
    // SAFETY: loading the project's own extension, built from the PowerSync core crate.
    unsafe {
        conn.load_extension_enable()?;
        conn.load_extension(&args.lib, None::<&str>)
            .with_context(|| format!("loading {}", args.lib.display()))?;
        conn.load_extension_disable()?;
    }
    let statements = if args.sql.is_empty() {
        vec![
            "SELECT powersync_rs_version() AS version".to_owned(),
            "SELECT name, (SELECT count(*) FROM pragma_table_info(name)) AS columns FROM sqlite_master WHERE type = 'table' ORDER BY name".to_owned(),
        ]
    } else {
        args.sql
    };
    for sql in statements {
        print_query(&conn, &sql).with_context(|| format!("running {sql:?}"))?;
    }
    Ok(())
}

fn print_query(conn: &Connection, sql: &str) -> anyhow::Result<()> {
    let mut stmt = conn.prepare(sql)?;
    let names: Vec<String> = stmt.column_names().iter().map(|s| s.to_string()).collect();
    println!("{}", names.join("\t"));
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        let cells: Vec<String> = (0..names.len())
            .map(|i| match row.get_ref(i) {
                Ok(ValueRef::Null) => "NULL".to_owned(),
                Ok(ValueRef::Integer(n)) => n.to_string(),
                Ok(ValueRef::Real(x)) => x.to_string(),
                Ok(ValueRef::Text(t)) => String::from_utf8_lossy(t).into_owned(),
                Ok(ValueRef::Blob(b)) => format!("<{} bytes>", b.len()),
                Err(e) => format!("<{e}>"),
            })
            .collect();
        println!("{}", cells.join("\t"));
    }
    Ok(())
}
