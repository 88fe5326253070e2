//! The upload connector against a real PostgreSQL (`cargo xtask ci` starts one and sets
//! POWERSYNC_TEST_PG_URL; run by hand without it, the tests say they were skipped, and fail under CI=true): crafted CRUD
//! transactions, retries of serialization failures, never applying a transaction twice, and
//! registers that keep the greater value.

use std::time::Duration;

use endpoint::connector::{Applied, Change, ChangeOp, PostgresApplier};
use serde_json::{Map, Value, json};
use tokio_postgres::NoTls;

fn database() -> Option<String> {
    let url = std::env::var("POWERSYNC_TEST_PG_URL").ok();
    if url.is_none() {
        endpoint::prerequisite::missing(
            "PostgreSQL: POWERSYNC_TEST_PG_URL is not set; `cargo xtask pg up` starts PostgreSQL and `cargo xtask ci` sets it",
        );
    }
    url
}

/// A prefix no other test run uses, so tests share the database without colliding.
fn unique(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{nanos}")
}

fn change(op: ChangeOp, id: &str, data: Value) -> Change {
    let data: Map<String, Value> = match data {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    Change {
        op,
        table: "lists".into(),
        id: id.into(),
        data,
        previous: None,
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

async fn row(client: &tokio_postgres::Client, id: &str) -> Option<(i64, String)> {
    client
        .query_opt("SELECT k, v FROM lists WHERE id = $1", &[&id])
        .await
        .unwrap()
        .map(|r| (r.get(0), r.get(1)))
}

#[tokio::test]
async fn applies_a_crud_transaction_atomically() {
    let Some(url) = database() else { return };
    let applier = PostgresApplier::new(&url);
    let client = connect(&url).await;
    let (a, b, c) = (unique("put"), unique("patch"), unique("delete"));
    let client_id = unique("client");
    client
        .execute(
            "INSERT INTO lists (id, k, v) VALUES ($1, 2, '1'), ($2, 3, '9')",
            &[&b, &c],
        )
        .await
        .unwrap();
    let changes = vec![
        change(ChangeOp::Put, &a, json!({"k": 1, "v": "5"})),
        change(ChangeOp::Patch, &b, json!({"v": "1,2"})),
        change(ChangeOp::Delete, &c, Value::Null),
    ];
    assert_eq!(
        applier.apply(&client_id, 1, &changes).await.unwrap(),
        Applied::Now { attempt: 1 }
    );
    assert_eq!(row(&client, &a).await, Some((1, "5".into())));
    assert_eq!(row(&client, &b).await, Some((2, "1,2".into())));
    assert_eq!(row(&client, &c).await, None);
}

#[tokio::test]
async fn never_applies_a_transaction_twice() {
    let Some(url) = database() else { return };
    let applier = PostgresApplier::new(&url);
    let client = connect(&url).await;
    let id = unique("twice");
    let client_id = unique("client");
    let first = vec![change(ChangeOp::Put, &id, json!({"k": 7, "v": "1"}))];
    assert_eq!(
        applier.apply(&client_id, 5, &first).await.unwrap(),
        Applied::Now { attempt: 1 }
    );
    // A retry of the same transaction (say its completion was lost) changes nothing...
    let replay = vec![change(
        ChangeOp::Put,
        &id,
        json!({"k": 7, "v": "overwritten"}),
    )];
    assert_eq!(
        applier.apply(&client_id, 5, &replay).await.unwrap(),
        Applied::Already
    );
    assert_eq!(row(&client, &id).await, Some((7, "1".into())));
    // ...while the next transaction, or the same id from another client, applies.
    assert_eq!(
        applier.apply(&client_id, 6, &replay).await.unwrap(),
        Applied::Now { attempt: 1 }
    );
    let other = unique("other-client");
    assert_eq!(
        applier.apply(&other, 5, &first).await.unwrap(),
        Applied::Now { attempt: 1 }
    );
}

#[tokio::test]
async fn retries_serialization_failures() {
    let Some(url) = database() else { return };
    let applier = std::sync::Arc::new(PostgresApplier::new(&url));
    let mut blocker = connect(&url).await;
    let reader = connect(&url).await;
    let id = unique("contended");
    reader
        .execute("INSERT INTO lists (id, k, v) VALUES ($1, 1, '1')", &[&id])
        .await
        .unwrap();
    // Another writer holds the row; the upload's snapshot predates that writer's commit, so
    // its REPEATABLE READ update fails with 40001 and must be retried.
    let tx = blocker.transaction().await.unwrap();
    tx.execute("UPDATE lists SET v = '1,2' WHERE id = $1", &[&id])
        .await
        .unwrap();
    let upload = {
        let (applier, id) = (applier.clone(), id.clone());
        let changes = vec![change(ChangeOp::Patch, &id, json!({"v": "1,3"}))];
        tokio::spawn(async move { applier.apply(&unique("client"), 1, &changes).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.commit().await.unwrap();
    match upload.await.unwrap().unwrap() {
        Applied::Now { attempt } => {
            assert!(attempt >= 2, "the first attempt cannot have committed")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(row(&reader, &id).await, Some((1, "1,3".into())));
}

#[tokio::test]
async fn returns_errors_it_cannot_retry() {
    let Some(url) = database() else { return };
    let applier = PostgresApplier::new(&url);
    let changes = vec![Change {
        op: ChangeOp::Put,
        table: "lists".into(),
        id: unique("bad"),
        data: Map::new(),
        previous: None,
    }];
    // No such server: the error comes back for the SDK to retry later.
    let broken = PostgresApplier::new(&url.replace("powersync_test", "no_such_database"));
    assert!(broken.apply("c", 1, &changes).await.is_err());
    // A well-formed transaction still applies through the healthy applier.
    assert!(applier.apply(&unique("client"), 1, &changes).await.is_ok());
}

#[tokio::test]
async fn applies_appends_not_whole_lists() {
    let Some(url) = database() else { return };
    let applier = PostgresApplier::new(&url);
    let client = connect(&url).await;
    let (patched, put) = (unique("appended"), unique("created-twice"));
    // Another client appended 9 after this one last synced [1].
    client
        .execute(
            "INSERT INTO lists (id, k, v) VALUES ($1, 1, '1,9'), ($2, 2, '7')",
            &[&patched, &put],
        )
        .await
        .unwrap();
    let mut patch = change(ChangeOp::Patch, &patched, json!({"v": "1,2,3"}));
    patch.previous = Some(json!({"v": "1"}).as_object().unwrap().clone());
    // This client created key 2 before it saw the other client's row.
    let create = change(ChangeOp::Put, &put, json!({"k": 2, "v": "8"}));
    applier
        .apply(&unique("client"), 1, &[patch, create])
        .await
        .unwrap();
    assert_eq!(row(&client, &patched).await, Some((1, "1,9,2,3".into())));
    assert_eq!(row(&client, &put).await, Some((2, "7,8".into())));
}

/// A register key no other test run uses: the nanosecond clock, plus `offset`.
fn unique_key(offset: i64) -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
        + offset
}

fn register(op: ChangeOp, k: i64, data: Value) -> Change {
    Change {
        table: "registers".into(),
        ..change(op, &k.to_string(), data)
    }
}

async fn register_value(client: &tokio_postgres::Client, k: i64) -> Option<i64> {
    client
        .query_opt("SELECT v FROM registers WHERE id = $1", &[&k.to_string()])
        .await
        .unwrap()
        .map(|r| r.get(0))
}

#[tokio::test]
async fn a_register_upload_keeps_the_greater_value() {
    let Some(url) = database() else { return };
    let applier = PostgresApplier::new(&url);
    let client = connect(&url).await;
    let (raised, kept, created) = (unique_key(0), unique_key(1), unique_key(2));
    // Other clients wrote 5 and 50 meanwhile.
    client
        .execute(
            "INSERT INTO registers (id, k, v) VALUES ($1, $2, 5), ($3, $4, 50)",
            &[&raised.to_string(), &raised, &kept.to_string(), &kept],
        )
        .await
        .unwrap();
    // A PATCH carries only the columns it changed, as the SDK queues it.
    let changes = [
        register(ChangeOp::Patch, raised, json!({"v": 7})),
        register(ChangeOp::Put, kept, json!({"k": kept, "v": 9})),
        register(ChangeOp::Put, created, json!({"k": created, "v": 4})),
    ];
    applier.apply(&unique("client"), 1, &changes).await.unwrap();
    assert_eq!(register_value(&client, raised).await, Some(7));
    assert_eq!(register_value(&client, kept).await, Some(50));
    assert_eq!(register_value(&client, created).await, Some(4));
}

#[tokio::test]
async fn a_register_change_it_cannot_apply_fails_the_whole_transaction() {
    let Some(url) = database() else { return };
    let applier = PostgresApplier::new(&url);
    let client = connect(&url).await;
    let (good, bad) = (unique_key(0), unique_key(1));
    let changes = [
        register(ChangeOp::Put, good, json!({"k": good, "v": 3})),
        register(ChangeOp::Patch, bad, json!({"v": "three"})),
    ];
    let error = applier
        .apply(&unique("client"), 1, &changes)
        .await
        .unwrap_err();
    assert!(format!("{error:#}").contains("no integer v"), "{error:#}");
    assert_eq!(register_value(&client, good).await, None, "nothing applied");
}

#[tokio::test]
async fn the_postgres_backend_runs_register_transactions() {
    use endpoint::postgres::PostgresBackend;
    use endpoint::registers::RegisterMop;
    let Some(url) = database() else { return };
    let backend = PostgresBackend::open(&url).await.unwrap();
    let k = unique_key(0);
    let done = backend
        .run_registers(&[
            RegisterMop::Read { k, v: None },
            RegisterMop::Write { k, v: 10 },
            RegisterMop::Write { k, v: 3 },
            RegisterMop::Read { k, v: None },
        ])
        .await
        .unwrap();
    assert_eq!(done[0], RegisterMop::Read { k, v: None });
    assert_eq!(done[3], RegisterMop::Read { k, v: Some(10) });
}
