//! A test node: list-append transactions on SQLite, directly (`sqlite3`) or through the PowerSync
//! SDK (`powersync`), served over HTTP by the `endpoint` program.

pub mod api;
pub mod backend;
pub mod connector;
pub mod postgres;
pub mod sdk;
pub mod sqlite;
pub mod txn;
