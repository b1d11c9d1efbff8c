//! Template values: what a reference, literal or method call evaluates to.
//!
//! Lists and maps are shared with `Arc` and copied on write, so `#set($b = $a)` is cheap
//! and a value can never contain itself. Each collection remembers how deeply it nests,
//! so nesting (and with it every recursive walk, including `Drop`) stays bounded.

use std::collections::HashMap;
use std::sync::Arc;

/// A value a template computes with.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Java's `null`: renders as the reference's own source text, like an undefined one.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A whole number (Java `Integer`/`Long`).
    Int(i64),
    /// A decimal number (Java `Double`).
    Float(f64),
    /// A string.
    String(String),
    /// A list (Java `ArrayList`).
    List(Arc<List>),
    /// A map with string keys in insertion order (Java `LinkedHashMap`).
    Map(Arc<Map>),
    /// An object the host provides, with methods implemented in this crate.
    Host(Host),
}

/// The host objects API Gateway puts in every template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// `$input`: the request body and parameters.
    Input,
    /// `$util`: escaping and encoding helpers.
    Util,
}

/// A list's items and how deeply they nest.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct List {
    items: Vec<Value>,
    depth: usize,
}

/// An insertion-ordered map with string keys, indexed for constant-time lookup.
#[derive(Debug, Clone, Default)]
pub struct Map {
    entries: Vec<(String, Value)>,
    index: HashMap<String, usize>,
    depth: usize,
}

impl PartialEq for Map {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

impl Value {
    /// Converts a JSON tree (a request body, `$context`, stage variables) into a value.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                let mut list = List::default();
                for item in items {
                    list.push(Value::from_json(item));
                }
                Value::List(Arc::new(list))
            }
            serde_json::Value::Object(fields) => {
                let mut map = Map::default();
                for (k, v) in fields {
                    map.insert(k.clone(), Value::from_json(v));
                }
                Value::Map(Arc::new(map))
            }
        }
    }

    /// Wraps items into a list value.
    pub fn list(items: Vec<Value>) -> Value {
        let mut list = List::default();
        for item in items {
            list.push(item);
        }
        Value::List(Arc::new(list))
    }

    /// Builds a map value from pairs, later keys replacing earlier ones in place.
    pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
        let mut map = Map::default();
        for (k, v) in pairs {
            map.insert(k.into(), v);
        }
        Value::Map(Arc::new(map))
    }

    /// How many collections nest inside this value, itself included.
    pub fn depth(&self) -> usize {
        match self {
            Value::List(l) => l.depth,
            Value::Map(m) => m.depth,
            _ => 0,
        }
    }

    /// Velocity 1.7's truth: `null` and `false` are false, everything else (even `""`) true.
    pub fn truthy(&self) -> bool {
        !matches!(self, Value::Null | Value::Bool(false))
    }

    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a whole number, if it is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }
}

impl List {
    /// The items, in order.
    pub fn items(&self) -> &[Value] {
        &self.items
    }

    pub(crate) fn push(&mut self, v: Value) {
        self.depth = self.depth.max(v.depth() + 1);
        self.items.push(v);
    }

    pub(crate) fn insert(&mut self, at: usize, v: Value) {
        self.depth = self.depth.max(v.depth() + 1);
        self.items.insert(at, v);
    }

    pub(crate) fn set(&mut self, at: usize, v: Value) -> Option<Value> {
        self.depth = self.depth.max(v.depth() + 1);
        self.items
            .get_mut(at)
            .map(|slot| std::mem::replace(slot, v))
    }

    pub(crate) fn remove(&mut self, at: usize) -> Option<Value> {
        (at < self.items.len()).then(|| self.items.remove(at))
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }

    pub(crate) fn get_mut(&mut self, at: usize) -> Option<&mut Value> {
        self.items.get_mut(at)
    }

    /// Recomputes the nesting depth after an item changed in place.
    pub(crate) fn note_depth(&mut self, child: usize) {
        self.depth = self.depth.max(child + 1);
    }
}

impl Map {
    /// The entries, in insertion order.
    pub fn entries(&self) -> &[(String, Value)] {
        &self.entries
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.entries[i].1)
    }

    pub(crate) fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        match self.index.get(key) {
            Some(&i) => Some(&mut self.entries[i].1),
            None => None,
        }
    }

    /// Puts `v` under `key`, keeping the key's original position; returns the old value.
    pub(crate) fn insert(&mut self, key: String, v: Value) -> Option<Value> {
        self.depth = self.depth.max(v.depth() + 1);
        match self.index.get(&key) {
            Some(&i) => Some(std::mem::replace(&mut self.entries[i].1, v)),
            None => {
                self.index.insert(key.clone(), self.entries.len());
                self.entries.push((key, v));
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, key: &str) -> Option<Value> {
        let i = self.index.remove(key)?;
        let (_, v) = self.entries.remove(i);
        for slot in self.index.values_mut() {
            if *slot > i {
                *slot -= 1;
            }
        }
        Some(v)
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.index.clear();
    }

    pub(crate) fn note_depth(&mut self, child: usize) {
        self.depth = self.depth.max(child + 1);
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::String(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::String(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

/// Java's `Double.toString`: shortest digits, `.0` on whole numbers, `E` notation outside
/// [10^-3, 10^7).
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let abs = f.abs();
    if abs == 0.0 || (1e-3..1e7).contains(&abs) {
        let s = format!("{f}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let s = format!("{f:e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        let mantissa = if mantissa.contains('.') {
            mantissa.to_owned()
        } else {
            format!("{mantissa}.0")
        };
        format!("{mantissa}E{exp}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_render_like_java() {
        assert_eq!(format_float(1.0), "1.0");
        assert_eq!(format_float(2.5), "2.5");
        assert_eq!(format_float(1e21), "1.0E21");
        assert_eq!(format_float(1.5e-5), "1.5E-5");
        assert_eq!(format_float(-0.25), "-0.25");
    }

    #[test]
    fn map_keeps_order_and_reindexes_after_remove() {
        let mut m = Map::default();
        m.insert("a".into(), Value::Int(1));
        m.insert("b".into(), Value::Int(2));
        m.insert("c".into(), Value::Int(3));
        assert_eq!(m.remove("a"), Some(Value::Int(1)));
        assert_eq!(m.get("c"), Some(&Value::Int(3)));
        m.insert("b".into(), Value::Int(9));
        let keys: Vec<_> = m.entries().iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "c"]);
    }
}
