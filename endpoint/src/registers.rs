//! Max-write-wins register transactions: the JSON wire format and their execution on a SQLite
//! connection. A register only grows: writing `v` leaves `max(current, v)`, here as in the
//! upload connector and on PostgreSQL, so every participant converges on the greatest write.

use rusqlite::{Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::txn::{self, TxnError, TxnRequest};

/// The table holding one row per register: `k` the key, `v` its value.
pub const REGISTERS: &str = "registers";

/// A micro-operation, as Jepsen's rw-register writes it: `{"f":"w","k":3,"v":17}` or
/// `{"f":"r","k":5,"v":null}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", deny_unknown_fields)]
pub enum RegisterMop {
    /// Raise the register at `k` to `v` if `v` is greater.
    #[serde(rename = "w")]
    Write {
        /// The key.
        k: i64,
        /// The value.
        v: i64,
    },
    /// Read the register at `k`; `v` is filled in by the endpoint, `null` if never written.
    #[serde(rename = "r")]
    Read {
        /// The key.
        k: i64,
        /// The value read.
        v: Option<i64>,
    },
}

/// The body of `POST /mww-txn`.
pub type RegisterTxnRequest = TxnRequest<RegisterMop>;

/// The register table of the plain SQLite backend (the SDK makes its own from the schema).
pub const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS registers (id TEXT PRIMARY KEY, k INTEGER NOT NULL, v INTEGER NOT NULL)";

/// Runs the micro-ops in one transaction (`BEGIN IMMEDIATE` when it writes). Reads and updates
/// are separate statements, with no UPSERT, so the SDK's views accept them.
pub fn apply(conn: &mut Connection, mops: &[RegisterMop]) -> Result<Vec<RegisterMop>, TxnError> {
    let tx = txn::begin(
        conn,
        mops.iter().any(|m| matches!(m, RegisterMop::Write { .. })),
    )?;
    let aborted = |e: rusqlite::Error| TxnError::Aborted(e.to_string());
    let mut done = Vec::with_capacity(mops.len());
    for mop in mops {
        let key = match *mop {
            RegisterMop::Write { k, .. } | RegisterMop::Read { k, .. } => k,
        };
        let current: Option<i64> = tx
            .prepare_cached(&format!("SELECT v FROM {REGISTERS} WHERE id = ?1"))
            .and_then(|mut s| s.query_row([key.to_string()], |row| row.get(0)).optional())
            .map_err(aborted)?;
        match *mop {
            RegisterMop::Read { k, .. } => done.push(RegisterMop::Read { k, v: current }),
            RegisterMop::Write { k, v } => {
                match current {
                    Some(current) if current >= v => Ok(0),
                    Some(_) => tx
                        .prepare_cached(&format!("UPDATE {REGISTERS} SET v = ?2 WHERE id = ?1"))
                        .and_then(|mut s| s.execute((k.to_string(), v))),
                    None => tx
                        .prepare_cached(&format!(
                            "INSERT INTO {REGISTERS} (id, k, v) VALUES (?1, ?2, ?3)"
                        ))
                        .and_then(|mut s| s.execute((k.to_string(), k, v))),
                }
                .map_err(aborted)?;
                done.push(*mop);
            }
        }
    }
    txn::commit(tx)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_register_keeps_the_greatest_write() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(CREATE_TABLE).unwrap();
        let done = apply(
            &mut conn,
            &[
                RegisterMop::Read { k: 1, v: None },
                RegisterMop::Write { k: 1, v: 5 },
                RegisterMop::Read { k: 1, v: None },
                RegisterMop::Write { k: 1, v: 3 },
                RegisterMop::Read { k: 1, v: None },
            ],
        )
        .unwrap();
        let reads: Vec<Option<i64>> = done
            .iter()
            .filter_map(|m| match m {
                RegisterMop::Read { v, .. } => Some(*v),
                RegisterMop::Write { .. } => None,
            })
            .collect();
        assert_eq!(reads, [None, Some(5), Some(5)]);
        apply(&mut conn, &[RegisterMop::Write { k: 1, v: 9 }]).unwrap();
        let done = apply(&mut conn, &[RegisterMop::Read { k: 1, v: None }]).unwrap();
        assert_eq!(done, [RegisterMop::Read { k: 1, v: Some(9) }]);
    }

    #[test]
    fn parses_the_wire_format() {
        let req: RegisterTxnRequest = serde_json::from_str(
            r#"{"type":"invoke","f":"txn","value":[{"f":"w","k":3,"v":17},{"f":"r","k":5,"v":null}]}"#,
        )
        .unwrap();
        assert_eq!(req.value[0], RegisterMop::Write { k: 3, v: 17 });
        for bad in [
            r#"{"f":"txn","value":[{"f":"append","k":1,"v":2}]}"#,
            r#"{"f":"txn","value":[{"f":"w","k":1}]}"#,
            r#"{"f":"txn","value":[{"f":"w","k":1,"v":"x"}]}"#,
        ] {
            assert!(
                serde_json::from_str::<RegisterTxnRequest>(bad).is_err(),
                "{bad}"
            );
        }
    }
}
