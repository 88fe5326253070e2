//! Keys and values that are not integers. Elle's histories may use any EDN scalar as a key or
//! a value (`:x`, `"x"`, `7`); the analyses work on integers. A non-integer scalar is interned
//! as an integer from a reserved range at the bottom of `i64`, which no history may use itself,
//! and printed back as written wherever an [`Edn::Int`] in that range is rendered.

use std::fmt;
use std::sync::{OnceLock, RwLock};

use rustc_hash::FxHashMap;

use crate::edn::Edn;

/// Integers below this stand for interned scalars; a history's own integers must not be.
pub const RESERVED_BELOW: i64 = i64::MIN + (1 << 32);

#[derive(Default)]
struct Table {
    scalars: Vec<Edn>,
    ids: FxHashMap<String, i64>,
}

fn table() -> &'static RwLock<Table> {
    static TABLE: OnceLock<RwLock<Table>> = OnceLock::new();
    TABLE.get_or_init(RwLock::default)
}

/// The integer a key or value stands for: itself for an integer, an interned id for any other
/// scalar (keyword, string, symbol, boolean, float), an error for anything else.
pub fn intern(value: &Edn, what: &str) -> Result<i64, String> {
    match value {
        Edn::Int(i) if *i < RESERVED_BELOW => Err(format!(
            "{what} {i} is in the range reserved for interned names (below {RESERVED_BELOW})"
        )),
        Edn::Int(i) => Ok(*i),
        Edn::Keyword(_) | Edn::Str(_) | Edn::Symbol(_) | Edn::Bool(_) | Edn::Float(_) => {
            let name = value.to_string();
            if let Some(&id) = table().read().expect("scalar table").ids.get(&name) {
                return Ok(id);
            }
            let mut table = table().write().expect("scalar table");
            if let Some(&id) = table.ids.get(&name) {
                return Ok(id);
            }
            let id = i64::MIN + table.scalars.len() as i64;
            table.scalars.push(value.clone());
            table.ids.insert(name, id);
            Ok(id)
        }
        other => Err(format!(
            "{what} must be a scalar (integer, keyword, string), not {other}"
        )),
    }
}

/// The scalar an interned id stands for.
pub fn lookup(id: i64) -> Option<Edn> {
    if id >= RESERVED_BELOW {
        return None;
    }
    let index = usize::try_from(id.wrapping_sub(i64::MIN)).ok()?;
    table()
        .read()
        .expect("scalar table")
        .scalars
        .get(index)
        .cloned()
}

/// Displays a key or value as the history wrote it.
#[derive(Debug, Clone, Copy)]
pub struct Show(pub i64);

impl fmt::Display for Show {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match lookup(self.0) {
            Some(scalar) => write!(f, "{scalar}"),
            None => write!(f, "{}", self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_names_and_prints_them_back() {
        let x = intern(&Edn::Keyword("x".into()), "a key").unwrap();
        let s = intern(&Edn::Str("x".into()), "a key").unwrap();
        assert_ne!(x, s, ":x and \"x\" are different keys");
        assert_eq!(intern(&Edn::Keyword("x".into()), "a key").unwrap(), x);
        assert_eq!(intern(&Edn::Int(7), "a key").unwrap(), 7);
        assert_eq!(Show(x).to_string(), ":x");
        assert_eq!(
            Edn::Vector(vec![Edn::Int(s), Edn::Int(3)]).to_string(),
            "[\"x\" 3]"
        );
        assert!(intern(&Edn::Int(i64::MIN), "a key").is_err());
        assert!(intern(&Edn::Vector(vec![]), "a key").is_err());
    }
}
