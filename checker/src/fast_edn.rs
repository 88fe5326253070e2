//! A fast path for the common shape of a Jepsen op line, `{:index 0, :time 1, :type :ok,
//! :process 0, :f :txn, :value [[:append 1 2] [:r 1 [2]]]}`, parsed straight into an [`Op`]
//! without building an EDN tree. Anything else (errors, nemesis values, tags, strings) returns
//! `None`, and the caller uses the general reader, which also gives the error messages.

use crate::history::{Mop, Op, OpType, OpValue, Process};

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if b == b' ' || b == b',' || b == b'\t' || b == b'\n' || b == b'\r' {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.peek()? == b).then(|| self.pos += 1)
    }

    fn token(&mut self) -> &[u8] {
        self.skip_ws();
        let start = self.pos;
        while let Some(&b) = self.bytes.get(self.pos) {
            if b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'-' | b'_' | b':' | b'?' | b'!' | b'*' | b'+' | b'.' | b'/'
                )
            {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.bytes[start..self.pos]
    }

    fn keyword(&mut self) -> Option<&[u8]> {
        self.token().strip_prefix(b":").filter(|k| !k.is_empty())
    }

    fn int(&mut self) -> Option<i64> {
        let token = self.token();
        let (negative, digits) = match token.split_first() {
            Some((b'-', rest)) => (true, rest),
            _ => (false, token),
        };
        if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let value = digits
            .iter()
            .fold(0i64, |acc, d| acc * 10 + i64::from(d - b'0'));
        Some(if negative { -value } else { value })
    }

    fn ints(&mut self) -> Option<Vec<i64>> {
        self.eat(b'[')?;
        let mut list = Vec::new();
        loop {
            if self.peek()? == b']' {
                self.pos += 1;
                return Some(list);
            }
            list.push(self.int()?);
        }
    }

    fn mops(&mut self) -> Option<Vec<Mop>> {
        self.eat(b'[')?;
        let mut mops = Vec::new();
        loop {
            match self.peek()? {
                b']' => {
                    self.pos += 1;
                    return Some(mops);
                }
                b'[' => self.pos += 1,
                _ => return None,
            }
            let f = self.keyword()?;
            let read = match f {
                b"append" => false,
                b"r" => true,
                _ => return None,
            };
            let key = self.int()?;
            let mop = if read {
                let value = match self.peek()? {
                    b'[' => Some(self.ints()?),
                    _ if self.token() == b"nil" => None,
                    _ => return None,
                };
                Mop::Read { key, value }
            } else {
                Mop::Append {
                    key,
                    value: self.int()?,
                }
            };
            self.eat(b']')?;
            mops.push(mop);
        }
    }
}

/// Parses `line` if it has the common shape of a client's txn op; `position` is the default
/// index. Checks what the general reader checks, so both accept and reject the same lines.
pub fn parse_txn_op(line: &str, position: usize) -> Option<Op> {
    let mut c = Cursor {
        bytes: line.as_bytes(),
        pos: 0,
    };
    c.eat(b'{')?;
    let (mut index, mut time, mut kind, mut process, mut txn, mut mops) =
        (None, None, None, None, false, None);
    loop {
        if c.peek()? == b'}' {
            c.pos += 1;
            break;
        }
        match c.keyword()? {
            b"index" => index = Some(usize::try_from(c.int()?).ok()?),
            b"time" => time = Some(c.int()?),
            b"type" => {
                kind = Some(match c.keyword()? {
                    b"invoke" => OpType::Invoke,
                    b"ok" => OpType::Ok,
                    b"fail" => OpType::Fail,
                    b"info" => OpType::Info,
                    _ => return None,
                })
            }
            b"process" => process = Some(c.int()?),
            b"f" => txn = c.keyword()? == b"txn",
            b"value" => mops = Some(c.mops()?),
            _ => return None,
        }
    }
    c.skip_ws();
    if c.pos != c.bytes.len() || !txn {
        return None;
    }
    let kind = kind?;
    let mops = mops?;
    if kind == OpType::Ok
        && mops
            .iter()
            .any(|m| matches!(m, Mop::Read { value: None, .. }))
    {
        return None;
    }
    Some(Op {
        index: index.unwrap_or(position),
        time: time.unwrap_or(0),
        kind,
        process: Process::Client(process?),
        f: "txn".into(),
        value: OpValue::Txn(mops),
        error: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edn;
    use crate::history::op_from_edn;
    use crate::synth::{self, Params};

    fn general(line: &str) -> Op {
        op_from_edn(&edn::parse(line).unwrap(), 0).unwrap()
    }

    #[test]
    fn agrees_with_the_general_reader() {
        let ops = synth::serial_history(&Params {
            txns: 2000,
            fail_percent: 10,
            info_percent: 10,
            ..Params::default()
        });
        for op in &ops {
            let line = op.to_edn().to_string();
            assert_eq!(
                parse_txn_op(&line, 0).as_ref(),
                Some(&general(&line)),
                "{line}"
            );
        }
        let spaced =
            "{ :type :ok ,:process -3,:f :txn,:value [ [ :r 1 [ ] ] [:append -1 -2]], :index 7}";
        assert_eq!(parse_txn_op(spaced, 0).as_ref(), Some(&general(spaced)));
    }

    #[test]
    fn leaves_other_shapes_to_the_general_reader() {
        for line in [
            "{:type :info, :process :nemesis, :f :kill, :value [\"n1\"]}",
            "{:type :fail, :process 0, :f :txn, :value [[:append 1 2]], :error \"timeout\"}",
            "{:type :ok, :process 0, :f :txn, :value [[:r 1 nil]]}",
            "{:type :ok, :process 0, :f :txn, :value [[:w 1 2]]}",
            "{:type :ok, :process 0, :f :txn, :value [[:r 1 [1]]]} extra",
            "{:type :ok, :process 0, :f :txn, :value [[:append 1 99999999999999999999]]}",
            "#jepsen.history.Op{:type :ok, :process 0, :f :txn, :value []}",
        ] {
            assert_eq!(parse_txn_op(line, 0), None, "{line}");
        }
    }
}
