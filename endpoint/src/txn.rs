//! List-append transactions: the JSON wire format and their execution on a SQLite connection.

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::{Deserialize, Serialize};

/// The table holding one row per key; `v` is the list, comma-separated, in append order.
pub const TABLE: &str = "lists";

/// A micro-operation, as Jepsen's JSON writes it: `{"f":"append","k":3,"v":17}` or
/// `{"f":"r","k":5,"v":null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "f", deny_unknown_fields)]
pub enum Mop {
    /// Append `v` to the list at `k`.
    #[serde(rename = "append")]
    Append {
        /// The key.
        k: i64,
        /// The value.
        v: i64,
    },
    /// Read the list at `k`; `v` is filled in by the endpoint.
    #[serde(rename = "r")]
    Read {
        /// The key.
        k: i64,
        /// The list read.
        v: Option<Vec<i64>>,
    },
}

/// The body of `POST /sql-txn` (micro-ops `M` = [`Mop`]) and of `POST /mww-txn`
/// ([`crate::registers::RegisterMop`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxnRequest<M = Mop> {
    /// Must be `invoke` when given.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// Must be `txn`.
    pub f: String,
    /// The micro-ops, run in order.
    pub value: Vec<M>,
}

/// Why a transaction did not complete `ok`.
#[derive(Debug)]
pub enum TxnError {
    /// It certainly did not commit.
    Aborted(String),
    /// It may or may not have committed.
    Indeterminate(String),
}

impl std::fmt::Display for TxnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TxnError::Aborted(m) => write!(f, "aborted: {m}"),
            TxnError::Indeterminate(m) => write!(f, "indeterminate: {m}"),
        }
    }
}

/// Decodes the `v` column.
pub fn decode_list(text: &str) -> Result<Vec<i64>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|s| {
            s.parse()
                .map_err(|e| format!("bad list element {s:?}: {e}"))
        })
        .collect()
}

/// Begins a transaction: `BEGIN IMMEDIATE` when it `writes`, so writers are serialised;
/// deferred otherwise.
pub fn begin(conn: &mut Connection, writes: bool) -> Result<Transaction<'_>, TxnError> {
    let behavior = if writes {
        TransactionBehavior::Immediate
    } else {
        TransactionBehavior::Deferred
    };
    conn.transaction_with_behavior(behavior)
        .map_err(|e| TxnError::Aborted(e.to_string()))
}

/// Commits; a failed commit leaves the outcome unknown.
pub fn commit(tx: Transaction<'_>) -> Result<(), TxnError> {
    tx.commit()
        .map_err(|e| TxnError::Indeterminate(format!("commit failed: {e}")))
}

/// Runs the micro-ops in one transaction (see [`begin`]). Returns the micro-ops with reads
/// filled in.
pub fn apply(conn: &mut Connection, mops: &[Mop]) -> Result<Vec<Mop>, TxnError> {
    let tx = begin(conn, mops.iter().any(|m| matches!(m, Mop::Append { .. })))?;
    let aborted = |e: rusqlite::Error| TxnError::Aborted(e.to_string());
    let mut done = Vec::with_capacity(mops.len());
    for mop in mops {
        let key = match mop {
            Mop::Append { k, .. } | Mop::Read { k, .. } => *k,
        };
        let current: Option<String> = tx
            .prepare_cached(&format!("SELECT v FROM {TABLE} WHERE id = ?1"))
            .and_then(|mut s| s.query_row([key.to_string()], |row| row.get(0)).optional())
            .map_err(aborted)?;
        match mop {
            Mop::Read { k, .. } => {
                let list =
                    decode_list(current.as_deref().unwrap_or("")).map_err(TxnError::Aborted)?;
                done.push(Mop::Read {
                    k: *k,
                    v: Some(list),
                });
            }
            Mop::Append { k, v } => {
                match current {
                    Some(list) if !list.is_empty() => tx
                        .prepare_cached(&format!("UPDATE {TABLE} SET v = ?2 WHERE id = ?1"))
                        .and_then(|mut s| s.execute((k.to_string(), format!("{list},{v}")))),
                    Some(_) => tx
                        .prepare_cached(&format!("UPDATE {TABLE} SET v = ?2 WHERE id = ?1"))
                        .and_then(|mut s| s.execute((k.to_string(), v.to_string()))),
                    None => tx
                        .prepare_cached(&format!(
                            "INSERT INTO {TABLE} (id, k, v) VALUES (?1, ?2, ?3)"
                        ))
                        .and_then(|mut s| s.execute((k.to_string(), k, v.to_string()))),
                }
                .map_err(aborted)?;
                done.push(mop.clone());
            }
        }
    }
    commit(tx)?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(&format!(
            "CREATE TABLE {TABLE} (id TEXT PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL)"
        ))
        .unwrap();
        conn
    }

    #[test]
    fn appends_and_reads_in_order() {
        let mut c = conn();
        let mops = vec![
            Mop::Read { k: 1, v: None },
            Mop::Append { k: 1, v: 5 },
            Mop::Append { k: 1, v: 3 },
            Mop::Read { k: 1, v: None },
        ];
        let done = apply(&mut c, &mops).unwrap();
        assert_eq!(
            done[0],
            Mop::Read {
                k: 1,
                v: Some(vec![])
            }
        );
        assert_eq!(
            done[3],
            Mop::Read {
                k: 1,
                v: Some(vec![5, 3])
            }
        );
        let done = apply(
            &mut c,
            &[Mop::Append { k: 1, v: 9 }, Mop::Read { k: 1, v: None }],
        )
        .unwrap();
        assert_eq!(
            done[1],
            Mop::Read {
                k: 1,
                v: Some(vec![5, 3, 9])
            }
        );
    }

    #[test]
    fn a_failed_statement_rolls_everything_back() {
        let mut c = conn();
        apply(&mut c, &[Mop::Append { k: 1, v: 1 }]).unwrap();
        c.execute_batch("UPDATE lists SET v = 'garbage' WHERE id = '2'")
            .unwrap();
        c.execute("INSERT INTO lists (id, k, v) VALUES ('2', 2, 'x')", [])
            .unwrap();
        let err = apply(
            &mut c,
            &[Mop::Append { k: 1, v: 2 }, Mop::Read { k: 2, v: None }],
        )
        .unwrap_err();
        assert!(matches!(err, TxnError::Aborted(_)), "{err}");
        let done = apply(&mut c, &[Mop::Read { k: 1, v: None }]).unwrap();
        assert_eq!(
            done[0],
            Mop::Read {
                k: 1,
                v: Some(vec![1])
            }
        );
    }

    #[test]
    fn parses_the_wire_format() {
        let req: TxnRequest = serde_json::from_str(
            r#"{"type":"invoke","f":"txn","value":[{"f":"append","k":3,"v":17},{"f":"r","k":5,"v":null}]}"#,
        )
        .unwrap();
        assert_eq!(req.value[0], Mop::Append { k: 3, v: 17 });
        assert!(
            serde_json::from_str::<TxnRequest>(r#"{"f":"txn","value":[{"f":"w","k":1,"v":2}]}"#)
                .is_err()
        );
        assert!(
            serde_json::from_str::<TxnRequest>(r#"{"f":"txn","value":[{"f":"append","k":1}]}"#)
                .is_err()
        );
    }

    #[test]
    fn decodes_lists() {
        assert_eq!(decode_list("1,-2,30").unwrap(), vec![1, -2, 30]);
        assert_eq!(decode_list("").unwrap(), Vec::<i64>::new());
        assert!(decode_list("1,x").is_err());
    }
}
