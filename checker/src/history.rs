//! Histories: Jepsen operations, read one per line from EDN or JSON, and paired into transactions.

use std::borrow::Cow;
use std::fmt;
use std::io::BufRead;
use std::sync::{Mutex, mpsc};

use crate::edn::{self, Edn, ints, kw, kw_map};
use crate::scalar;

/// Whether an operation is an invocation or one of Jepsen's three completions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpType {
    /// The operation was invoked.
    Invoke,
    /// It certainly happened.
    Ok,
    /// It certainly did not happen.
    Fail,
    /// Indeterminate: it may or may not have happened.
    Info,
}

impl OpType {
    /// The Jepsen name: `invoke`, `ok`, `fail` or `info`.
    pub fn name(self) -> &'static str {
        match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "invoke" => OpType::Invoke,
            "ok" => OpType::Ok,
            "fail" => OpType::Fail,
            "info" => OpType::Info,
            _ => return None,
        })
    }
}

/// Who performed an operation: a client process or a named actor such as the nemesis.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// A numbered client process.
    Client(i64),
    /// A named actor (`:nemesis`, an observer...).
    Named(String),
}

/// The process of operations that name none: Elle takes them all as one process.
pub const NO_PROCESS: i64 = i64::MIN;

impl Process {
    fn to_edn(&self) -> Edn {
        match self {
            Process::Client(NO_PROCESS) => Edn::Nil,
            Process::Client(p) => Edn::Int(*p),
            Process::Named(name) => kw(name),
        }
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(NO_PROCESS) => f.write_str("nil"),
            Process::Client(p) => write!(f, "{p}"),
            Process::Named(name) => write!(f, ":{name}"),
        }
    }
}

/// A micro-operation inside a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mop {
    /// Append `value` to the list at `key`.
    Append {
        /// The key.
        key: i64,
        /// The unique value appended.
        value: i64,
    },
    /// Read the list at `key`; `None` before the read happened (in an invocation).
    Read {
        /// The key.
        key: i64,
        /// The list read, in order.
        value: Option<Vec<i64>>,
    },
    /// Write `value` to the register at `key` (rw-register).
    Write {
        /// The key.
        key: i64,
        /// The unique value written.
        value: i64,
    },
    /// A completed read of the register at `key`: `None` is its initial nil (rw-register).
    ReadRegister {
        /// The key.
        key: i64,
        /// The value read.
        value: Option<i64>,
    },
}

impl Mop {
    /// The key this micro-op touches.
    pub fn key(&self) -> i64 {
        match self {
            Mop::Append { key, .. }
            | Mop::Read { key, .. }
            | Mop::Write { key, .. }
            | Mop::ReadRegister { key, .. } => *key,
        }
    }

    /// Renders as Elle does: `[:append 3 17]`, `[:r 5 [1 2]]`, `[:w 3 4]`, `[:r 3 4]`.
    pub fn to_edn(&self) -> Edn {
        match self {
            Mop::Write { key, value } => {
                Edn::Vector(vec![kw("w"), Edn::Int(*key), Edn::Int(*value)])
            }
            Mop::ReadRegister { key, value } => Edn::Vector(vec![
                kw("r"),
                Edn::Int(*key),
                value.map_or(Edn::Nil, Edn::Int),
            ]),
            Mop::Append { key, value } => {
                Edn::Vector(vec![kw("append"), Edn::Int(*key), Edn::Int(*value)])
            }
            Mop::Read { key, value } => Edn::Vector(vec![
                kw("r"),
                Edn::Int(*key),
                value.as_deref().map_or(Edn::Nil, ints),
            ]),
        }
    }
}

/// The value of an operation: a transaction, or anything else (nemesis operations).
#[derive(Debug, Clone, PartialEq)]
pub enum OpValue {
    /// A list-append transaction.
    Txn(Vec<Mop>),
    /// Any other value, kept as read.
    Other(Edn),
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq)]
pub struct Op {
    /// Position in the history, 0-based.
    pub index: usize,
    /// Nanoseconds since the start of the test.
    pub time: i64,
    /// Invocation or completion.
    pub kind: OpType,
    /// Who performed it.
    pub process: Process,
    /// The function, such as `txn`.
    pub f: Cow<'static, str>,
    /// The value.
    pub value: OpValue,
    /// An error attached to a completion, if any.
    pub error: Option<Edn>,
}

impl Op {
    /// Renders as a Jepsen history map.
    pub fn to_edn(&self) -> Edn {
        let value = match &self.value {
            OpValue::Txn(mops) => Edn::Vector(mops.iter().map(Mop::to_edn).collect()),
            OpValue::Other(edn) => edn.clone(),
        };
        let mut entries = vec![
            ("index", Edn::Int(self.index as i64)),
            ("time", Edn::Int(self.time)),
            ("type", kw(self.kind.name())),
            ("process", self.process.to_edn()),
            ("f", kw(&self.f)),
            ("value", value),
        ];
        if let Some(error) = &self.error {
            entries.push(("error", error.clone()));
        }
        kw_map(entries)
    }
}

/// A malformed history: which line, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for HistoryError {}

/// Reads a history: Jepsen's `history.edn` (one op per line, or pretty-printed over several
/// lines), `#jepsen.history.Op{...}` tagged maps, or JSON objects (one per line, or elle-cli's
/// JSON array of ops). Blank lines and `;` comments are skipped. Stops at the first malformed
/// op and names its line. Lines are read in order and parsed in batches on every core.
pub fn read_history(mut reader: impl BufRead) -> Result<Vec<Op>, HistoryError> {
    /// Bytes of whole lines per batch: one allocation each, however short the lines.
    const CHUNK: usize = 4 << 20;
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let (chunk_tx, chunk_rx) = mpsc::sync_channel::<(usize, usize, Vec<u8>)>(workers * 2);
    let chunk_rx = Mutex::new(chunk_rx);
    let (chunks, failure) = std::thread::scope(|scope| {
        let chunk_tx = chunk_tx;
        let (result_tx, result_rx) = mpsc::channel();
        for _ in 0..workers {
            let (chunk_rx, result_tx) = (&chunk_rx, result_tx.clone());
            scope.spawn(move || {
                while let Ok((seq, first_line, bytes)) = chunk_rx.lock().expect("chunk lock").recv()
                {
                    let _ = result_tx.send((seq, parse_chunk(first_line, &bytes)));
                }
            });
        }
        drop(result_tx);
        let (mut seq, mut first_line) = (0, 1);
        let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK + (64 << 10));
        let mut failure = None;
        // Reads whole blocks and cuts each batch after its last line that ends before an op
        // starts, so that an op written over several lines stays in one batch.
        let mut scanned = 0;
        loop {
            let len = chunk.len();
            chunk.resize(len + (1 << 20), 0);
            let read = match reader.read(&mut chunk[len..]) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                Err(e) => {
                    chunk.truncate(len);
                    let line = first_line + chunk.iter().filter(|&&b| b == b'\n').count();
                    failure = Some(HistoryError {
                        line,
                        message: format!("cannot read: {e}"),
                    });
                    break;
                }
            };
            chunk.truncate(len + read);
            if read == 0 && len == chunk.len() {
                break;
            }
            if chunk.len() < CHUNK {
                continue;
            }
            let Some(cut) = last_op_start(&chunk[scanned..]).map(|c| c + scanned) else {
                scanned = chunk.len().saturating_sub(1);
                continue;
            };
            let mut next = Vec::with_capacity(CHUNK + (64 << 10));
            next.extend_from_slice(&chunk[cut..]);
            chunk.truncate(cut);
            let full = std::mem::replace(&mut chunk, next);
            let lines = full.iter().filter(|&&b| b == b'\n').count();
            let _ = chunk_tx.send((seq, first_line, full));
            seq += 1;
            first_line += lines;
            scanned = 0;
        }
        if !chunk.is_empty() {
            let _ = chunk_tx.send((seq, first_line, chunk));
            seq += 1;
        }
        drop(chunk_tx);
        let mut results: Vec<Option<Result<Vec<Op>, HistoryError>>> =
            (0..seq).map(|_| None).collect();
        for (i, result) in result_rx {
            results[i] = Some(result);
        }
        (results, failure)
    });
    let chunks = chunks
        .into_iter()
        .map(|chunk| chunk.expect("every chunk is parsed"))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ops = Vec::with_capacity(chunks.iter().map(Vec::len).sum());
    for chunk in chunks {
        ops.extend(chunk);
    }
    if let Some(failure) = failure {
        return Err(failure);
    }
    for (i, op) in ops.iter_mut().enumerate() {
        if op.index == UNNUMBERED {
            op.index = i;
        }
    }
    Ok(ops)
}

/// Where the last op of `bytes` begins at the start of a line after the first, if one does.
fn last_op_start(bytes: &[u8]) -> Option<usize> {
    let mut end = bytes.len();
    while let Some(newline) = bytes[..end].iter().rposition(|&b| b == b'\n') {
        if starts_op(&bytes[newline + 1..]) {
            return Some(newline + 1);
        }
        end = newline;
    }
    None
}

/// Whether a line begins an op at its first column: `{`, a tag `#...`, or `[{` opening an
/// array of ops.
fn starts_op(line: &[u8]) -> bool {
    matches!(line.first(), Some(b'{' | b'#')) || line.starts_with(b"[{")
}

/// The index of an op whose line gave none, until its position is known.
const UNNUMBERED: usize = usize::MAX;

/// An op's text without what surrounds it in an array of ops: an opening `[`, a separating
/// `,`, a closing `]`.
fn unwrap_array_item(record: &str) -> &str {
    let mut text = record.trim();
    if let Some(rest) = text.strip_prefix('[')
        && rest.trim_start().starts_with(['{', '#'])
    {
        text = rest.trim_start();
    }
    if let Some(rest) = text.strip_suffix(']')
        && rest.trim_end().ends_with([',', '}'])
    {
        text = rest.trim_end();
    }
    text.strip_suffix(',').map_or(text, str::trim_end)
}

/// Whether a parse failed only because the op goes on past the end of the text.
fn incomplete(message: &str) -> bool {
    ["unterminated", "end of input", "EOF while parsing"]
        .iter()
        .any(|m| message.contains(m))
}

fn parse_chunk(first_line: usize, bytes: &[u8]) -> Result<Vec<Op>, HistoryError> {
    let mut ops = Vec::with_capacity(bytes.len() / 128);
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = first_line
            + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
        HistoryError {
            line,
            message: format!("not UTF-8: {e}"),
        }
    })?;
    let lines: Vec<&str> = text.split('\n').collect();
    let mut i = 0;
    while i < lines.len() {
        let line_no = first_line + i;
        let trimmed = lines[i].trim();
        if trimmed.is_empty() || trimmed.starts_with(';') || matches!(trimmed, "[" | "]") {
            i += 1;
            continue;
        }
        // An op may span several lines (pretty-printed): while the text so far is an
        // unfinished op and the next line does not start another, take the next line too.
        let start = lines[i].as_ptr() as usize - text.as_ptr() as usize;
        let mut end = i;
        let op = loop {
            let stop = lines[end].as_ptr() as usize - text.as_ptr() as usize + lines[end].len();
            match parse_op(unwrap_array_item(&text[start..stop]), UNNUMBERED) {
                Ok(op) => break op,
                Err(message)
                    if incomplete(&message)
                        && end + 1 < lines.len()
                        && !starts_op(lines[end + 1].as_bytes()) =>
                {
                    end += 1;
                }
                Err(message) => {
                    return Err(HistoryError {
                        line: line_no,
                        message,
                    });
                }
            }
        };
        ops.push(op);
        i = end + 1;
    }
    Ok(ops)
}

/// Parses one operation from a line of EDN or JSON; `position` is the default index.
pub fn parse_op(line: &str, position: usize) -> Result<Op, String> {
    let is_json = line
        .strip_prefix('{')
        .is_some_and(|rest| rest.trim_start().starts_with(['"', '}']));
    if !is_json && let Some(op) = crate::fast_edn::parse_txn_op(line, position) {
        return Ok(op);
    }
    let map = if is_json {
        let json: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
        json_to_edn(&json)
    } else {
        edn::parse(line).map_err(|e| format!("invalid EDN: {e}"))?
    };
    op_from_edn(&map, position)
}

fn json_to_edn(json: &serde_json::Value) -> Edn {
    use serde_json::Value;
    match json {
        Value::Null => Edn::Nil,
        Value::Bool(b) => Edn::Bool(*b),
        Value::Number(n) => n
            .as_i64()
            .map_or_else(|| Edn::Float(n.as_f64().unwrap_or(f64::NAN)), Edn::Int),
        Value::String(s) => Edn::Str(s.clone()),
        Value::Array(items) => Edn::Vector(items.iter().map(json_to_edn).collect()),
        Value::Object(entries) => Edn::Map(
            entries
                .iter()
                .map(|(k, v)| (kw(k), json_to_edn(v)))
                .collect(),
        ),
    }
}

fn name_of(value: &Edn) -> Option<&str> {
    match value {
        Edn::Keyword(s) | Edn::Str(s) | Edn::Symbol(s) => Some(s),
        _ => None,
    }
}

/// Builds an op from a parsed EDN (or JSON-converted) map.
pub(crate) fn op_from_edn(map: &Edn, position: usize) -> Result<Op, String> {
    if !matches!(map, Edn::Map(_)) {
        return Err("an operation must be a map".into());
    }
    let kind_name = map.get("type").and_then(name_of).ok_or("missing :type")?;
    let kind = OpType::parse(kind_name)
        .ok_or_else(|| format!(":type must be invoke, ok, fail or info, not {kind_name:?}"))?;
    let process = match map.get("process") {
        Some(Edn::Int(p)) => Process::Client(*p),
        None | Some(Edn::Nil) => Process::Client(NO_PROCESS),
        Some(other) => Process::Named(
            name_of(other)
                .ok_or("a :process must be an integer or a name")?
                .to_owned(),
        ),
    };
    let raw_value = map.get("value").cloned().unwrap_or(Edn::Nil);
    // Elle needs no :f: a value that is a vector of micro-ops is a transaction.
    let f: Cow<'static, str> = match map.get("f").and_then(name_of) {
        Some("txn") => Cow::Borrowed("txn"),
        Some(other) => Cow::Owned(other.to_owned()),
        None if looks_like_mops(&raw_value) => Cow::Borrowed("txn"),
        None => return Err("missing :f".into()),
    };
    let index = match map.get("index") {
        Some(Edn::Int(i)) if *i >= 0 => *i as usize,
        Some(_) => return Err(":index must be a non-negative integer".into()),
        None => position,
    };
    let time = match map.get("time") {
        Some(Edn::Int(t)) => *t,
        Some(_) => return Err(":time must be an integer".into()),
        None => 0,
    };
    let value = if f == "txn" && matches!(process, Process::Client(_)) {
        OpValue::Txn(parse_mops(&raw_value, kind)?)
    } else {
        OpValue::Other(raw_value)
    };
    Ok(Op {
        index,
        time,
        kind,
        process,
        f,
        value,
        error: map.get("error").cloned(),
    })
}

/// Whether a value has the shape of a transaction: a vector of `[f k v]` micro-ops.
fn looks_like_mops(value: &Edn) -> bool {
    value.as_seq().is_some_and(|items| {
        items.iter().all(|m| {
            matches!(m, Edn::Vector(parts) if matches!(parts.len(), 2 | 3) && name_of(&parts[0]).is_some())
        })
    })
}

fn parse_mops(value: &Edn, kind: OpType) -> Result<Vec<Mop>, String> {
    let items = value
        .as_seq()
        .ok_or("a txn's :value must be a vector of micro-ops")?;
    items
        .iter()
        .map(|mop| {
            let (f, key, v) = match mop {
                Edn::Vector(parts) | Edn::List(parts) if parts.len() == 3 => {
                    (&parts[0], &parts[1], &parts[2])
                }
                // Elle writes a read not yet done as `[:r k]`.
                Edn::Vector(parts) | Edn::List(parts)
                    if parts.len() == 2 && name_of(&parts[0]) == Some("r") =>
                {
                    (&parts[0], &parts[1], &Edn::Nil)
                }
                Edn::Map(_) => (
                    mop.get("f").ok_or("micro-op without f")?,
                    mop.get("k").ok_or("micro-op without k")?,
                    mop.get("v").unwrap_or(&Edn::Nil),
                ),
                other => return Err(format!("micro-op must be [f k v], not {other}")),
            };
            let key = scalar::intern(key, "a key")?;
            match name_of(f) {
                Some("append") => Ok(Mop::Append {
                    key,
                    value: scalar::intern(v, "an appended value")?,
                }),
                Some("w") => Ok(Mop::Write {
                    key,
                    value: scalar::intern(v, "a written value")?,
                }),
                // A completed read of nil is a register's initial state (or, to list-append,
                // the empty list); in an invocation, nil is the value not yet read.
                Some("r") => match v {
                    Edn::Nil if kind == OpType::Ok => Ok(Mop::ReadRegister { key, value: None }),
                    Edn::Nil => Ok(Mop::Read { key, value: None }),
                    Edn::Vector(items) | Edn::List(items) => Ok(Mop::Read {
                        key,
                        value: Some(
                            items
                                .iter()
                                .map(|e| scalar::intern(e, "a list element"))
                                .collect::<Result<Vec<_>, _>>()?,
                        ),
                    }),
                    other => Ok(Mop::ReadRegister {
                        key,
                        value: Some(scalar::intern(other, "a read").map_err(|_| {
                            format!("a read must be a list, a scalar or nil, not {other}")
                        })?),
                    }),
                },
                _ => Err(format!(
                    "unknown micro-op function {f}; expected append, w or r"
                )),
            }
        })
        .collect()
}

/// A transaction: an invocation paired with its completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Txn {
    /// Dense id, in order of invocation.
    pub id: usize,
    /// The process that ran it.
    pub process: i64,
    /// How it completed; `Info` when it never completed.
    pub kind: OpType,
    /// History index of the invocation.
    pub invoke_index: usize,
    /// History index of the completion, if any.
    pub complete_index: Option<usize>,
    /// Time of the invocation, ns.
    pub invoke_time: i64,
    /// Time of the completion, ns.
    pub complete_time: Option<i64>,
    /// The micro-ops: the completion's for ok, the invocation's otherwise.
    pub mops: Vec<Mop>,
}

impl Txn {
    /// Its external list reads: the first access to each key, when that is a completed read,
    /// as (micro-op position, key, list).
    pub fn external_list_reads(&self) -> impl Iterator<Item = (usize, i64, &[i64])> {
        // Transactions are short: a scan beats a set here.
        self.mops.iter().enumerate().filter_map(move |(i, mop)| {
            let first = !self.mops[..i].iter().any(|m| m.key() == mop.key());
            match mop {
                Mop::Read {
                    key,
                    value: Some(list),
                } if first => Some((i, *key, list.as_slice())),
                _ => None,
            }
        })
    }

    /// Renders the completion (or the invocation when there is none) as a Jepsen op.
    pub fn to_edn(&self) -> Edn {
        Op {
            index: self.complete_index.unwrap_or(self.invoke_index),
            time: self.complete_time.unwrap_or(self.invoke_time),
            kind: self.kind,
            process: Process::Client(self.process),
            f: "txn".into(),
            value: OpValue::Txn(self.mops.clone()),
            error: None,
        }
        .to_edn()
    }
}

/// Pairs each client invocation of `txn` with the next completion of the same process.
/// Invocations that never complete become `Info`. A completion without an invocation (Elle's
/// own tests write histories of completions alone) is a transaction of its own, invoked and
/// completed at its index: it follows nothing in real time. A second invocation before a
/// completion is an error naming the op's index.
pub fn pair_txns(ops: impl IntoIterator<Item = Op>) -> Result<Vec<Txn>, String> {
    let mut txns: Vec<Txn> = Vec::new();
    let mut open: rustc_hash::FxHashMap<i64, usize> = rustc_hash::FxHashMap::default();
    for op in ops {
        let (Process::Client(process), OpValue::Txn(mops)) = (&op.process, op.value) else {
            continue;
        };
        if op.kind == OpType::Invoke {
            if let Some(&prev) = open.get(process) {
                return Err(format!(
                    "process {} invoked op {} while op {} was still open",
                    op.process, op.index, txns[prev].invoke_index
                ));
            }
            open.insert(*process, txns.len());
            txns.push(Txn {
                id: txns.len(),
                process: *process,
                kind: OpType::Info,
                invoke_index: op.index,
                complete_index: None,
                invoke_time: op.time,
                complete_time: None,
                mops,
            });
            continue;
        }
        let Some(id) = open.remove(process) else {
            txns.push(Txn {
                id: txns.len(),
                process: *process,
                kind: op.kind,
                invoke_index: op.index,
                complete_index: Some(op.index),
                invoke_time: op.time,
                complete_time: Some(op.time),
                mops,
            });
            continue;
        };
        let txn = &mut txns[id];
        txn.kind = op.kind;
        txn.complete_index = Some(op.index);
        txn.complete_time = Some(op.time);
        if op.kind == OpType::Ok {
            if mops.len() != txn.mops.len() {
                return Err(format!(
                    "op {} has {} micro-ops but its invocation had {}",
                    op.index,
                    mops.len(),
                    txn.mops.len()
                ));
            }
            txn.mops = mops;
        }
    }
    Ok(txns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_edn_and_json_lines() {
        let text = r#"{:index 0, :time 5, :type :invoke, :process 0, :f :txn, :value [[:append 1 2] [:r 1 nil]]}
{"index":1,"time":9,"type":"ok","process":0,"f":"txn","value":[["append",1,2],{"f":"r","k":1,"v":[2]}]}
; a comment

{:index 2, :time 10, :type :info, :process :nemesis, :f :kill, :value ["n1"]}
"#;
        let ops = read_history(text.as_bytes()).unwrap();
        assert_eq!(ops.len(), 3);
        assert_eq!(ops[1].kind, OpType::Ok);
        assert_eq!(
            ops[1].value,
            OpValue::Txn(vec![
                Mop::Append { key: 1, value: 2 },
                Mop::Read {
                    key: 1,
                    value: Some(vec![2])
                }
            ])
        );
        assert_eq!(ops[2].process, Process::Named("nemesis".into()));
        let txns = pair_txns(ops.clone()).unwrap();
        assert_eq!(txns.len(), 1);
        assert_eq!(txns[0].kind, OpType::Ok);
        assert_eq!(txns[0].complete_index, Some(1));
    }

    #[test]
    fn names_the_malformed_line() {
        let text = "{:index 0, :type :invoke, :process 0, :f :txn, :value []}\n\n{:index 1, :type :ok :process 0\n";
        let err = read_history(text.as_bytes()).unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.message.contains("invalid EDN"), "{err}");

        let err = read_history(
            &b"{\"type\":\"ok\",\"process\":0,\"f\":\"txn\",\"value\":[[\"r\",1,{\"a\":1}]]}\n"[..],
        )
        .unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("read must be a list"), "{err}");

        let err = read_history(&b"{:type :done, :process 0, :f :txn}"[..]).unwrap_err();
        assert!(err.message.contains(":type must be"), "{err}");
    }

    #[test]
    fn round_trips_ops_through_edn() {
        let line = "{:index 4, :time 7, :type :ok, :process 2, :f :txn, :value [[:append 3 4] [:r 3 [4]]]}";
        let op = parse_op(line, 0).unwrap();
        assert_eq!(op.to_edn().to_string(), line);
    }

    #[test]
    fn a_completion_alone_is_a_transaction_of_its_own() {
        let ops =
            read_history(&b"{:index 3, :type :ok, :process 0, :f :txn, :value []}"[..]).unwrap();
        let txns = pair_txns(ops).unwrap();
        assert_eq!(txns.len(), 1);
        assert_eq!((txns[0].invoke_index, txns[0].complete_index), (3, Some(3)));
        assert_eq!(txns[0].kind, OpType::Ok);
    }

    #[test]
    fn pairing_rejects_a_second_invocation() {
        let text = "{:type :invoke, :process 0, :f :txn, :value []}\n{:type :invoke, :process 0, :f :txn, :value []}";
        let ops = read_history(text.as_bytes()).unwrap();
        assert!(pair_txns(ops).unwrap_err().contains("still open"));
    }
}
