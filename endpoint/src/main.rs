//! `endpoint`: one test node. Serves the transaction API on 127.0.0.1 over a SQLite database,
//! plain or managed by the PowerSync SDK.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, ValueEnum};

use endpoint::backend::Backend;
use endpoint::connector::SyncConfig;
use endpoint::{api, postgres, sdk, sqlite};

/// Which backend runs the transactions.
#[derive(Clone, Copy, ValueEnum)]
enum BackendKind {
    /// Plain SQLite (rusqlite, bundled SQLite).
    Sqlite3,
    /// The PowerSync Rust SDK: local only, or synced with --sync-url.
    Powersync,
    /// PostgreSQL directly (--postgres-url).
    Postgres,
}

/// One test node.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The backend.
    #[arg(long, value_enum)]
    backend: BackendKind,
    /// The database file (sqlite3 and powersync backends).
    #[arg(long, required_if_eq_any = [("backend", "sqlite3"), ("backend", "powersync")])]
    db: Option<PathBuf>,
    /// The node's name, used in logs and replies.
    #[arg(long, default_value = "n1")]
    node: String,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: String,
    /// Once ready, write the bound address to this file.
    #[arg(long)]
    ready_file: Option<PathBuf>,
    /// Sync through the PowerSync service at this base URL (powersync backend only).
    #[arg(long, requires_all = ["postgres_url", "jwt_secret", "jwt_kid", "jwt_audience"])]
    sync_url: Option<String>,
    /// PostgreSQL URL the upload connector writes to.
    #[arg(long)]
    postgres_url: Option<String>,
    /// HS256 key of the service's JWKS, base64url.
    #[arg(long)]
    jwt_secret: Option<String>,
    /// The key's id.
    #[arg(long)]
    jwt_kid: Option<String>,
    /// The audience the service accepts.
    #[arg(long)]
    jwt_audience: Option<String>,
    /// Seconds to wait for the first full sync before serving.
    #[arg(long, default_value_t = 120)]
    first_sync_timeout: u64,
}

impl Args {
    fn sync_config(&self) -> Option<SyncConfig> {
        let service_url = self.sync_url.clone()?;
        // Paths are joined onto the base URL: keep its trailing slash.
        let service_url = if service_url.ends_with('/') {
            service_url
        } else {
            format!("{service_url}/")
        };
        Some(SyncConfig {
            service_url,
            postgres_url: self.postgres_url.clone()?,
            jwt_secret: self.jwt_secret.clone()?,
            jwt_kid: self.jwt_kid.clone()?,
            jwt_audience: self.jwt_audience.clone()?,
            subject: self.node.clone(),
        })
    }
}

fn main() -> anyhow::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()?
        .block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let sync = args.sync_config();
    let db = args.db.clone().unwrap_or_default();
    let backend = match args.backend {
        BackendKind::Sqlite3 if sync.is_some() => {
            anyhow::bail!("--sync-url needs --backend powersync")
        }
        BackendKind::Sqlite3 => Backend::Sqlite(sqlite::SqliteBackend::open(&db)?),
        BackendKind::Powersync => {
            let synced = sync.is_some();
            let sdk = sdk::SdkBackend::open(&db, sync)?;
            if synced {
                sdk.connect().await?;
                sdk.wait_first_sync(std::time::Duration::from_secs(args.first_sync_timeout))
                    .await
                    .context("waiting for the first full sync")?;
                log::info!("first full sync done");
            }
            Backend::Sdk(sdk)
        }
        BackendKind::Postgres => {
            let url = args
                .postgres_url
                .as_deref()
                .context("--backend postgres needs --postgres-url")?;
            Backend::Postgres(postgres::PostgresBackend::open(url).await?)
        }
    };
    let app = Arc::new(api::App {
        node: args.node.clone(),
        backend,
    });
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let address = listener.local_addr()?;
    log::info!(
        "node {} ({}) listening on {address}",
        args.node,
        app.backend.name()
    );
    if let Some(path) = &args.ready_file {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, address.to_string())?;
        std::fs::rename(&tmp, path)?;
    }
    axum::serve(listener, api::router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    log::info!("node {} stopped", args.node);
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
