//! A small EDN reader and printer: enough for Jepsen histories and Elle-style results.

use std::fmt::{self, Write as _};

/// An EDN value.
#[derive(Debug, Clone, PartialEq)]
pub enum Edn {
    /// `nil`
    Nil,
    /// `true` or `false`
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
    /// A keyword, stored without its leading colon.
    Keyword(String),
    /// A symbol.
    Symbol(String),
    /// `[...]`
    Vector(Vec<Edn>),
    /// `(...)`
    List(Vec<Edn>),
    /// `#{...}`
    Set(Vec<Edn>),
    /// `{...}`, in the order written.
    Map(Vec<(Edn, Edn)>),
}

/// Builds a keyword.
pub fn kw(name: &str) -> Edn {
    Edn::Keyword(name.to_owned())
}

/// Builds a vector of integers.
pub fn ints(values: &[i64]) -> Edn {
    Edn::Vector(values.iter().map(|v| Edn::Int(*v)).collect())
}

/// Builds a map whose keys are keywords.
pub fn kw_map<I, S>(entries: I) -> Edn
where
    I: IntoIterator<Item = (S, Edn)>,
    S: AsRef<str>,
{
    Edn::Map(
        entries
            .into_iter()
            .map(|(k, v)| (kw(k.as_ref()), v))
            .collect(),
    )
}

impl Edn {
    /// Looks up a keyword key in a map.
    pub fn get(&self, key: &str) -> Option<&Edn> {
        match self {
            Edn::Map(entries) => entries.iter().find_map(|(k, v)| match k {
                Edn::Keyword(name) if name == key => Some(v),
                _ => None,
            }),
            _ => None,
        }
    }

    /// The elements of a vector, list or set.
    pub fn as_seq(&self) -> Option<&[Edn]> {
        match self {
            Edn::Vector(items) | Edn::List(items) | Edn::Set(items) => Some(items),
            _ => None,
        }
    }

    /// Converts to JSON: keywords and symbols become strings, sets become arrays, map keys
    /// become strings.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Edn::Nil => Value::Null,
            Edn::Bool(b) => Value::Bool(*b),
            Edn::Int(i) => crate::scalar::lookup(*i).map_or(Value::from(*i), |s| s.to_json()),
            Edn::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => Value::String(s.clone()),
            Edn::Vector(items) | Edn::List(items) | Edn::Set(items) => {
                Value::Array(items.iter().map(Edn::to_json).collect())
            }
            Edn::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            Edn::Str(s) | Edn::Keyword(s) | Edn::Symbol(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
        }
    }

    /// Renders with one map entry per line at the top level, as Jepsen's results.edn does.
    pub fn to_pretty_string(&self) -> String {
        match self {
            Edn::Map(entries) if !entries.is_empty() => {
                let mut out = String::from("{");
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push_str("\n ");
                    }
                    let _ = write!(out, "{k} {v}");
                }
                out.push('}');
                out
            }
            other => other.to_string(),
        }
    }
}

fn write_seq(f: &mut fmt::Formatter<'_>, open: &str, items: &[Edn], close: &str) -> fmt::Result {
    f.write_str(open)?;
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            f.write_str(" ")?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(close)
}

impl fmt::Display for Edn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edn::Nil => f.write_str("nil"),
            Edn::Bool(b) => write!(f, "{b}"),
            Edn::Int(i) => write!(f, "{}", crate::scalar::Show(*i)),
            Edn::Float(x) if x.is_finite() && x.fract() == 0.0 => write!(f, "{x:.1}"),
            Edn::Float(x) => write!(f, "{x}"),
            Edn::Str(s) => write!(f, "{s:?}"),
            Edn::Keyword(k) => write!(f, ":{k}"),
            Edn::Symbol(s) => f.write_str(s),
            Edn::Vector(items) => write_seq(f, "[", items, "]"),
            Edn::List(items) => write_seq(f, "(", items, ")"),
            Edn::Set(items) => write_seq(f, "#{", items, "}"),
            Edn::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k} {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// Parses exactly one EDN value from `text` (surrounding whitespace and comments allowed).
pub fn parse(text: &str) -> Result<Edn, String> {
    let mut parser = Parser {
        bytes: text.as_bytes(),
        pos: 0,
    };
    let value = parser.value()?;
    parser.skip_ws();
    if parser.pos != parser.bytes.len() {
        return Err(format!(
            "unexpected text after value at column {}",
            parser.pos + 1
        ));
    }
    Ok(value)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
}

fn is_delimiter(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b',' | b'[' | b']' | b'(' | b')' | b'{' | b'}' | b'"' | b';'
        )
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while let Some(&b) = self.bytes.get(self.pos) {
            if b.is_ascii_whitespace() || b == b',' {
                self.pos += 1;
            } else if b == b';' {
                while self.bytes.get(self.pos).is_some_and(|&b| b != b'\n') {
                    self.pos += 1;
                }
            } else {
                break;
            }
        }
    }

    fn error<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at column {}", self.pos + 1))
    }

    fn value(&mut self) -> Result<Edn, String> {
        self.skip_ws();
        let Some(&b) = self.bytes.get(self.pos) else {
            return self.error("unexpected end of input");
        };
        match b {
            b'[' => {
                self.pos += 1;
                Ok(Edn::Vector(self.items(b']')?))
            }
            b'(' => {
                self.pos += 1;
                Ok(Edn::List(self.items(b')')?))
            }
            b'{' => {
                self.pos += 1;
                let items = self.items(b'}')?;
                if items.len() % 2 != 0 {
                    return self.error("map with an odd number of forms");
                }
                let mut entries = Vec::with_capacity(items.len() / 2);
                let mut it = items.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    entries.push((k, v));
                }
                Ok(Edn::Map(entries))
            }
            b'"' => self.string(),
            b'#' => self.dispatch(),
            b'\\' => self.character(),
            b']' | b')' | b'}' => self.error("unbalanced closing delimiter"),
            _ => self.atom(),
        }
    }

    fn items(&mut self, close: u8) -> Result<Vec<Edn>, String> {
        let mut items = Vec::new();
        loop {
            self.skip_ws();
            match self.bytes.get(self.pos) {
                None => return self.error("unterminated collection"),
                Some(&b) if b == close => {
                    self.pos += 1;
                    return Ok(items);
                }
                Some(b'#') if self.bytes.get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    self.value()?;
                }
                Some(_) => items.push(self.value()?),
            }
        }
    }

    fn dispatch(&mut self) -> Result<Edn, String> {
        match self.bytes.get(self.pos + 1) {
            Some(b'{') => {
                self.pos += 2;
                Ok(Edn::Set(self.items(b'}')?))
            }
            Some(b'_') => {
                self.pos += 2;
                self.value()?;
                self.value()
            }
            Some(_) => {
                // A tagged literal such as #jepsen.history.Op{...}: keep the value, drop the tag.
                self.pos += 1;
                while self.bytes.get(self.pos).is_some_and(|&b| !is_delimiter(b)) {
                    self.pos += 1;
                }
                self.value()
            }
            None => self.error("dangling #"),
        }
    }

    fn string(&mut self) -> Result<Edn, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let start = self.pos;
            while self
                .bytes
                .get(self.pos)
                .is_some_and(|&b| b != b'"' && b != b'\\')
            {
                self.pos += 1;
            }
            out.push_str(
                std::str::from_utf8(&self.bytes[start..self.pos]).map_err(|e| e.to_string())?,
            );
            match self.bytes.get(self.pos) {
                None => return self.error("unterminated string"),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(Edn::Str(out));
                }
                Some(_) => {
                    let escaped = self.bytes.get(self.pos + 1).copied();
                    self.pos += 2;
                    match escaped {
                        Some(b'n') => out.push('\n'),
                        Some(b't') => out.push('\t'),
                        Some(b'r') => out.push('\r'),
                        Some(b'"') => out.push('"'),
                        Some(b'\\') => out.push('\\'),
                        Some(b'u') => {
                            let hex = self
                                .bytes
                                .get(self.pos..self.pos + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .and_then(char::from_u32);
                            match hex {
                                Some(c) => out.push(c),
                                None => return self.error("bad \\u escape"),
                            }
                            self.pos += 4;
                        }
                        _ => return self.error("bad escape in string"),
                    }
                }
            }
        }
    }

    fn character(&mut self) -> Result<Edn, String> {
        self.pos += 1;
        let start = self.pos;
        self.pos += 1;
        while self.bytes.get(self.pos).is_some_and(|&b| !is_delimiter(b)) {
            self.pos += 1;
        }
        let token = std::str::from_utf8(&self.bytes[start..self.pos.min(self.bytes.len())])
            .map_err(|e| e.to_string())?;
        let c = match token {
            "newline" => "\n",
            "space" => " ",
            "tab" => "\t",
            other => other,
        };
        Ok(Edn::Str(c.to_owned()))
    }

    fn atom(&mut self) -> Result<Edn, String> {
        let start = self.pos;
        while self.bytes.get(self.pos).is_some_and(|&b| !is_delimiter(b)) {
            self.pos += 1;
        }
        let token = std::str::from_utf8(&self.bytes[start..self.pos]).map_err(|e| e.to_string())?;
        Ok(match token {
            "nil" => Edn::Nil,
            "true" => Edn::Bool(true),
            "false" => Edn::Bool(false),
            _ if token.starts_with(':') && token.len() > 1 => Edn::Keyword(token[1..].to_owned()),
            _ if token.starts_with(|c: char| c.is_ascii_digit())
                || (token.len() > 1
                    && token.starts_with(['-', '+'])
                    && token[1..].starts_with(|c: char| c.is_ascii_digit())) =>
            {
                let digits = token.trim_end_matches(['N', 'M']);
                if let Ok(i) = digits.parse::<i64>() {
                    Edn::Int(i)
                } else if let Ok(f) = digits.parse::<f64>() {
                    Edn::Float(f)
                } else {
                    return Err(format!("bad number {token:?} at column {}", start + 1));
                }
            }
            _ => Edn::Symbol(token.to_owned()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_jepsen_op() {
        let op = parse(
            r#"{:index 3, :time 123, :type :ok, :process 0, :f :txn, :value [[:append 3 17] [:r 5 nil] [:r 6 [1 2]]]}"#,
        )
        .unwrap();
        assert_eq!(op.get("index"), Some(&Edn::Int(3)));
        assert_eq!(op.get("type"), Some(&kw("ok")));
        let value = op.get("value").unwrap().as_seq().unwrap();
        assert_eq!(value.len(), 3);
        assert_eq!(
            value[2].as_seq().unwrap()[2],
            Edn::Vector(vec![Edn::Int(1), Edn::Int(2)])
        );
    }

    #[test]
    fn round_trips_through_display() {
        let text = r#"{:a #{1 2}, :b "x\"y\n", :c (nil true -4 2.5), :d {:e :f/g}}"#;
        let value = parse(text).unwrap();
        assert_eq!(parse(&value.to_string()).unwrap(), value);
    }

    #[test]
    fn skips_comments_discards_and_tags() {
        let value = parse("; header\n#jepsen.history.Op{:a #_ 1 2}").unwrap();
        assert_eq!(value.get("a"), Some(&Edn::Int(2)));
    }

    #[test]
    fn reports_malformed_input() {
        assert!(parse("{:a 1").unwrap_err().contains("unterminated"));
        assert!(parse("{:a}").unwrap_err().contains("odd"));
        assert!(parse("[1 2] 3").unwrap_err().contains("after value"));
        assert!(parse("\"abc").unwrap_err().contains("unterminated string"));
    }

    #[test]
    fn converts_to_json() {
        let value = parse("{:a [:b 1] :c #{nil}}").unwrap();
        assert_eq!(
            value.to_json(),
            serde_json::json!({"a": ["b", 1], "c": [null]})
        );
    }
}
