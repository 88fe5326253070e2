//! The HTTP API: `POST /sql-txn` runs a list-append transaction, `POST /mww-txn` a
//! max-write-wins register transaction; `/db-api/*` exposes the SDK's state.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::backend::Backend;
use crate::registers::RegisterTxnRequest;
use crate::sdk::SdkBackend;
use crate::txn::{TxnError, TxnRequest};

/// Shared state of the handlers.
pub struct App {
    /// The node's name, such as `n1`.
    pub node: String,
    /// Where transactions run.
    pub backend: Backend,
}

/// The router for all routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/sql-txn", post(sql_txn))
        .route("/mww-txn", post(mww_txn))
        .route("/db-api/status", get(status))
        .route("/db-api/upload-queue-count", get(upload_queue_count))
        .route("/db-api/crud", get(crud))
        .route("/db-api/contents", get(contents))
        .route("/db-api/connect", post(connect))
        .route("/db-api/disconnect", post(disconnect))
        .route(
            "/db-api/upload-queue-wait",
            get(upload_queue_wait).post(upload_queue_wait),
        )
        .route(
            "/db-api/downloading-wait",
            get(downloading_wait).post(downloading_wait),
        )
        .with_state(app)
}

/// A JSON reply with a status code.
struct Reply(StatusCode, Value);

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.0, axum::Json(self.1)).into_response()
    }
}

fn bad_request(message: String) -> Reply {
    Reply(
        StatusCode::BAD_REQUEST,
        json!({ "type": "error", "error": message }),
    )
}

async fn health(State(app): State<Arc<App>>) -> Reply {
    Reply(
        StatusCode::OK,
        json!({ "node": app.node, "backend": app.backend.name(), "ok": true }),
    )
}

async fn sql_txn(State(app): State<Arc<App>>, body: Bytes) -> Reply {
    let request: TxnRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("malformed transaction: {e}")),
    };
    if let Err(reply) = check_invocation(&request.f, request.kind.as_deref()) {
        return reply;
    }
    completion(app.backend.run(&request.value).await, &request.value)
}

async fn mww_txn(State(app): State<Arc<App>>, body: Bytes) -> Reply {
    let request: RegisterTxnRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("malformed register transaction: {e}")),
    };
    if let Err(reply) = check_invocation(&request.f, request.kind.as_deref()) {
        return reply;
    }
    completion(
        app.backend.run_registers(&request.value).await,
        &request.value,
    )
}

/// A transaction's `f` must be `txn`, and its `type`, when given, `invoke`.
fn check_invocation(f: &str, kind: Option<&str>) -> Result<(), Reply> {
    if f != "txn" {
        return Err(bad_request(format!(
            "unsupported function {f:?}; expected \"txn\""
        )));
    }
    if let Some(kind) = kind.filter(|k| *k != "invoke") {
        return Err(bad_request(format!(
            "unsupported type {kind:?}; expected \"invoke\""
        )));
    }
    Ok(())
}

/// The reply to a transaction: `ok` with the reads filled in, `fail` when it certainly did not
/// commit, `info` (500) when it may have.
fn completion<M: serde::Serialize>(result: Result<Vec<M>, TxnError>, invoked: &[M]) -> Reply {
    match result {
        Ok(value) => Reply(
            StatusCode::OK,
            json!({ "type": "ok", "f": "txn", "value": value }),
        ),
        Err(TxnError::Aborted(error)) => Reply(
            StatusCode::OK,
            json!({ "type": "fail", "f": "txn", "value": invoked, "error": error }),
        ),
        Err(TxnError::Indeterminate(error)) => {
            log::warn!("indeterminate transaction: {error}");
            Reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({ "type": "info", "f": "txn", "value": invoked, "error": error }),
            )
        }
    }
}

/// The node's SDK backend, or the reply for a route that needs one on a node without it.
fn sdk<'a>(app: &'a App, route: &str) -> Result<&'a SdkBackend, Reply> {
    match &app.backend {
        Backend::Sdk(sdk) => Ok(sdk),
        other => Err(Reply(
            StatusCode::NOT_FOUND,
            json!({ "type": "error", "error": format!("{route} needs the powersync backend; this node runs {}", other.name()) }),
        )),
    }
}

/// 200 with the value, or `on_error`'s reply.
fn reply(result: anyhow::Result<Value>, on_error: fn(anyhow::Error) -> Reply) -> Reply {
    result.map_or_else(on_error, |v| Reply(StatusCode::OK, v))
}

/// A failure of the SDK or its database: 500.
fn internal(e: anyhow::Error) -> Reply {
    Reply(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({ "type": "error", "error": format!("{e:#}") }),
    )
}

/// A wait that ran out is a stall: 504 with what the SDK reported.
fn stalled(e: anyhow::Error) -> Reply {
    Reply(
        StatusCode::GATEWAY_TIMEOUT,
        json!({ "type": "error", "error": format!("{e:#}") }),
    )
}

/// `?timeout_ms=N` for the waits; 60 s by default.
#[derive(serde::Deserialize)]
struct Wait {
    timeout_ms: Option<u64>,
}

impl Wait {
    fn timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms.unwrap_or(60_000))
    }
}

async fn status(State(app): State<Arc<App>>) -> Reply {
    match sdk(&app, "/db-api/status") {
        Ok(sdk) => Reply(StatusCode::OK, sdk.status()),
        Err(reply) => reply,
    }
}

async fn upload_queue_count(State(app): State<Arc<App>>) -> Reply {
    match sdk(&app, "/db-api/upload-queue-count") {
        Ok(sdk) => reply(sdk.upload_queue().await, internal),
        Err(reply) => reply,
    }
}

async fn crud(State(app): State<Arc<App>>) -> Reply {
    match sdk(&app, "/db-api/crud") {
        Ok(sdk) => reply(sdk.crud().await, internal),
        Err(reply) => reply,
    }
}

async fn contents(State(app): State<Arc<App>>) -> Reply {
    match sdk(&app, "/db-api/contents") {
        Ok(sdk) => reply(sdk.contents().await, internal),
        Err(reply) => reply,
    }
}

async fn connect(State(app): State<Arc<App>>) -> Reply {
    match sdk(&app, "/db-api/connect") {
        Ok(sdk) => reply(
            sdk.connect().await.map(|()| json!({ "connecting": true })),
            internal,
        ),
        Err(reply) => reply,
    }
}

async fn disconnect(State(app): State<Arc<App>>) -> Reply {
    match sdk(&app, "/db-api/disconnect") {
        Ok(sdk) => reply(
            sdk.disconnect()
                .await
                .map(|()| json!({ "connected": false })),
            internal,
        ),
        Err(reply) => reply,
    }
}

async fn upload_queue_wait(State(app): State<Arc<App>>, Query(wait): Query<Wait>) -> Reply {
    match sdk(&app, "/db-api/upload-queue-wait") {
        Ok(sdk) => reply(sdk.wait_upload_queue_empty(wait.timeout()).await, stalled),
        Err(reply) => reply,
    }
}

async fn downloading_wait(State(app): State<Arc<App>>, Query(wait): Query<Wait>) -> Reply {
    match sdk(&app, "/db-api/downloading-wait") {
        Ok(sdk) => reply(sdk.wait_downloaded(wait.timeout()).await, stalled),
        Err(reply) => reply,
    }
}
