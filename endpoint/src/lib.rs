//! A test node: list-append and max-write-wins register transactions on SQLite, directly (`sqlite3`) or through the PowerSync
//! SDK (`powersync`), served over HTTP by the `endpoint` program.

pub mod api;
pub mod backend;
pub mod connector;
pub mod postgres;
pub mod prerequisite;
pub mod registers;
pub mod sdk;
pub mod sqlite;
pub mod txn;
