//! Loads the PowerSync extension built by `cargo xtask build-lib` into bundled SQLite.
//! `cargo xtask ci` builds it and sets POWERSYNC_LIB; run by hand without it, the test says it
//! was skipped (and fails under CI=true).

use rusqlite::Connection;

fn library() -> Option<std::path::PathBuf> {
    match std::env::var_os("POWERSYNC_LIB") {
        Some(path) => Some(path.into()),
        None => {
            endpoint::prerequisite::missing(
                "the loadable library: POWERSYNC_LIB is not set; run `cargo xtask build-lib` and point it at libpowersync.so",
            );
            None
        }
    }
}

fn load(conn: &Connection, path: &std::path::Path) {
    // SAFETY: the project's own extension, built from the PowerSync core crate.
    unsafe {
        conn.load_extension_enable().unwrap();
        conn.load_extension(path, None::<&str>)
            .unwrap_or_else(|e| panic!("loading {}: {e}", path.display()));
        conn.load_extension_disable().unwrap();
    }
}

#[test]
fn loads_and_reports_its_version() {
    let Some(path) = library() else { return };
    let conn = Connection::open_in_memory().unwrap();
    load(&conn, &path);
    let version: String = conn
        .query_row("SELECT powersync_rs_version()", [], |row| row.get(0))
        .unwrap();
    assert!(version.starts_with("0.5.4"), "version {version}");
}

#[test]
fn manages_a_schema_like_the_sdk() {
    let Some(path) = library() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut conn = Connection::open(dir.path().join("db.sqlite")).unwrap();
    load(&conn, &path);
    let schema = r#"{"tables":[{"name":"lists","columns":[{"name":"k","type":"INTEGER"},{"name":"v","type":"TEXT"}]}]}"#;
    let tx = conn.transaction().unwrap();
    tx.query_row("SELECT powersync_init()", [], |_| Ok(()))
        .unwrap();
    tx.query_row("SELECT powersync_replace_schema(?1)", [schema], |_| Ok(()))
        .unwrap();
    tx.commit().unwrap();
    conn.execute("INSERT INTO lists (id, k, v) VALUES ('1', 1, '5')", [])
        .unwrap();
    let queued: i64 = conn
        .query_row("SELECT count(*) FROM ps_crud", [], |row| row.get(0))
        .unwrap();
    assert_eq!(queued, 1, "an insert through the view is queued for upload");
}
