//! DynamoDB attribute values and their JSON wire form (`{"S": "x"}`, `{"N": "1"}`, …).
//!
//! The wire form is also how items are stored (see `storage::keys`), so the one
//! conversion here is the only place that validates values.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value};

use crate::number::{Number, NumberError};

/// One attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttributeValue {
    S(String),
    N(Number),
    B(Bytes),
    Bool(bool),
    Null,
    M(BTreeMap<String, AttributeValue>),
    L(Vec<AttributeValue>),
    Ss(Vec<String>),
    Ns(Vec<Number>),
    Bs(Vec<Bytes>),
}

/// An item: attribute name to value.
pub type Item = BTreeMap<String, AttributeValue>;

/// Levels of nesting DynamoDB allows in one attribute value, the attribute itself being
/// level 1 (so a scalar inside 31 maps or lists is the deepest accepted).
pub const MAX_NESTING_LEVELS: usize = 32;
/// Longest attribute name, in bytes.
pub const MAX_NAME_BYTES: usize = 65535;
/// Nesting accepted when reading stored items back: items written before the limit
/// existed stay readable (serde_json's own recursion limit bounds them anyway).
const STORED_NESTING_LEVELS: usize = 128;

/// Why a value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error(
        "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
    )]
    Empty,
    #[error(
        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
    )]
    MoreThanOne,
    #[error("Unknown attribute value type `{0}`")]
    UnknownType(String),
    #[error("Supplied AttributeValue has an invalid {0} value")]
    WrongShape(&'static str),
    #[error("Invalid base64 in a binary value")]
    Base64,
    #[error("One or more parameter values were invalid: An string set  may not be empty")]
    EmptyStringSet,
    #[error("One or more parameter values were invalid: An number set  may not be empty")]
    EmptyNumberSet,
    #[error("One or more parameter values were invalid: Binary sets should not be empty")]
    EmptyBinarySet,
    #[error("One or more parameter values were invalid: Input collection {0} contains duplicates.")]
    Duplicates(String),
    #[error("Null attribute value types must have the value of true")]
    NullFalse,
    #[error("{0}")]
    Number(#[from] NumberError),
    #[error(
        "Nesting Levels have exceeded supported limits: Attributes in the item have nested levels beyond supported limit"
    )]
    TooDeep,
    #[error("Empty attribute name")]
    EmptyName,
    #[error("Attribute name exceeds the maximum length of 65535 bytes")]
    NameTooLong,
}

/// A BOOL's or NULL's flag. DynamoDB also reads a string for it ("true", "yes" or "1"
/// are true; "false", "no" or "0" are false), as the suite checked against AWS shows.
pub fn boolean(v: &Value) -> Option<bool> {
    if let Some(b) = v.as_bool() {
        return Some(b);
    }
    let s = v.as_str()?;
    if ["true", "yes", "1"]
        .iter()
        .any(|t| s.eq_ignore_ascii_case(t))
    {
        Some(true)
    } else if ["false", "no", "0"]
        .iter()
        .any(|t| s.eq_ignore_ascii_case(t))
    {
        Some(false)
    } else {
        None
    }
}

impl AttributeValue {
    /// The type tag: "S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS".
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::S(_) => "S",
            Self::N(_) => "N",
            Self::B(_) => "B",
            Self::Bool(_) => "BOOL",
            Self::Null => "NULL",
            Self::M(_) => "M",
            Self::L(_) => "L",
            Self::Ss(_) => "SS",
            Self::Ns(_) => "NS",
            Self::Bs(_) => "BS",
        }
    }

    /// Decodes the wire form of a value in a request, within DynamoDB's nesting limit.
    pub fn from_json(v: &Value) -> Result<Self, ValueError> {
        Self::from_json_at(v, 1, MAX_NESTING_LEVELS)
    }

    /// Decodes a value at nesting level `level` (1 for an attribute), refusing levels
    /// past `max` before looking any deeper.
    fn from_json_at(v: &Value, level: usize, max: usize) -> Result<Self, ValueError> {
        if level > max {
            return Err(ValueError::TooDeep);
        }
        let obj = v.as_object().ok_or(ValueError::WrongShape("attribute"))?;
        let mut it = obj.iter();
        let (tag, inner) = it.next().ok_or(ValueError::Empty)?;
        if it.next().is_some() {
            return Err(ValueError::MoreThanOne);
        }
        let b64 = |v: &Value| -> Result<Bytes, ValueError> {
            let s = v.as_str().ok_or(ValueError::WrongShape("B"))?;
            base64::engine::general_purpose::STANDARD
                .decode(s)
                .map(Bytes::from)
                .map_err(|_| ValueError::Base64)
        };
        let list = |v: &Value, t: &'static str| -> Result<Vec<Value>, ValueError> {
            v.as_array().cloned().ok_or(ValueError::WrongShape(t))
        };
        Ok(match tag.as_str() {
            "S" => Self::S(
                inner
                    .as_str()
                    .ok_or(ValueError::WrongShape("S"))?
                    .to_owned(),
            ),
            "N" => Self::N(Number::parse(
                inner.as_str().ok_or(ValueError::WrongShape("N"))?,
            )?),
            "B" => Self::B(b64(inner)?),
            "BOOL" => Self::Bool(boolean(inner).ok_or(ValueError::WrongShape("BOOL"))?),
            "NULL" => match boolean(inner) {
                Some(true) => Self::Null,
                Some(false) => return Err(ValueError::NullFalse),
                None => return Err(ValueError::WrongShape("NULL")),
            },
            "M" => Self::M(
                inner
                    .as_object()
                    .ok_or(ValueError::WrongShape("M"))?
                    .iter()
                    .map(|(k, v)| Ok((k.clone(), Self::from_json_at(v, level + 1, max)?)))
                    .collect::<Result<_, ValueError>>()?,
            ),
            "L" => Self::L(
                inner
                    .as_array()
                    .ok_or(ValueError::WrongShape("L"))?
                    .iter()
                    .map(|v| Self::from_json_at(v, level + 1, max))
                    .collect::<Result<_, _>>()?,
            ),
            "SS" => {
                let v: Vec<String> = list(inner, "SS")?
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .map(str::to_owned)
                            .ok_or(ValueError::WrongShape("SS"))
                    })
                    .collect::<Result<_, _>>()?;
                if v.is_empty() {
                    return Err(ValueError::EmptyStringSet);
                }
                no_duplicates(&v, |s| format!("{s:?}"))?;
                Self::Ss(v)
            }
            "NS" => {
                let v: Vec<Number> = list(inner, "NS")?
                    .iter()
                    .map(|s| {
                        s.as_str()
                            .ok_or(ValueError::WrongShape("NS"))
                            .and_then(|t| Ok(Number::parse(t)?))
                    })
                    .collect::<Result<_, _>>()?;
                if v.is_empty() {
                    return Err(ValueError::EmptyNumberSet);
                }
                no_duplicates(&v, |n| n.to_string())?;
                Self::Ns(v)
            }
            "BS" => {
                let v: Vec<Bytes> = list(inner, "BS")?
                    .iter()
                    .map(b64)
                    .collect::<Result<_, _>>()?;
                if v.is_empty() {
                    return Err(ValueError::EmptyBinarySet);
                }
                no_duplicates(&v, |b| format!("{} bytes", b.len()))?;
                Self::Bs(v)
            }
            other => return Err(ValueError::UnknownType(other.to_owned())),
        })
    }

    /// Encodes the wire form.
    pub fn to_json(&self) -> Value {
        let b64 = |b: &Bytes| Value::String(base64::engine::general_purpose::STANDARD.encode(b));
        let (tag, inner) = match self {
            Self::S(s) => ("S", Value::String(s.clone())),
            Self::N(n) => ("N", Value::String(n.to_string())),
            Self::B(b) => ("B", b64(b)),
            Self::Bool(b) => ("BOOL", Value::Bool(*b)),
            Self::Null => ("NULL", Value::Bool(true)),
            Self::M(m) => ("M", item_to_json(m)),
            Self::L(l) => ("L", Value::Array(l.iter().map(Self::to_json).collect())),
            Self::Ss(v) => (
                "SS",
                Value::Array(v.iter().cloned().map(Value::String).collect()),
            ),
            Self::Ns(v) => (
                "NS",
                Value::Array(v.iter().map(|n| Value::String(n.to_string())).collect()),
            ),
            Self::Bs(v) => ("BS", Value::Array(v.iter().map(b64).collect())),
        };
        let mut m = Map::with_capacity(1);
        m.insert(tag.to_owned(), inner);
        Value::Object(m)
    }

    /// Bytes this value counts for in an item's size, as DynamoDB sizes items.
    pub fn size(&self) -> usize {
        match self {
            Self::S(s) => s.len(),
            Self::N(n) => n.size(),
            Self::B(b) => b.len(),
            Self::Bool(_) | Self::Null => 1,
            Self::M(m) => 3 + m.iter().map(|(k, v)| k.len() + v.size() + 1).sum::<usize>(),
            Self::L(l) => 3 + l.iter().map(|v| v.size() + 1).sum::<usize>(),
            Self::Ss(v) => v.iter().map(String::len).sum(),
            Self::Ns(v) => v.iter().map(Number::size).sum(),
            Self::Bs(v) => v.iter().map(Bytes::len).sum(),
        }
    }
}

fn no_duplicates<T: PartialEq>(v: &[T], show: impl Fn(&T) -> String) -> Result<(), ValueError> {
    for (i, a) in v.iter().enumerate() {
        if v[..i].contains(a) {
            return Err(ValueError::Duplicates(show(a)));
        }
    }
    Ok(())
}

/// Why an item could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error("An item must be a JSON object of attribute names to values")]
    NotAnObject,
    #[error("attribute `{0}`: {1}")]
    Value(String, ValueError),
}

/// Decodes an item in a request (`{"name": {"S": "x"}, …}`): names of 1 to 64 KB, values
/// within DynamoDB's nesting limit.
pub fn item_from_json(v: &Value) -> Result<Item, ItemError> {
    let obj = v.as_object().ok_or(ItemError::NotAnObject)?;
    obj.iter()
        .map(|(k, v)| {
            check_name(k)
                .and_then(|()| AttributeValue::from_json(v))
                .map(|a| (k.clone(), a))
                .map_err(|e| ItemError::Value(k.clone(), e))
        })
        .collect()
}

/// Decodes an item as stored: the request limits are not applied again.
pub fn stored_item_from_json(v: &Value) -> Result<Item, ItemError> {
    let obj = v.as_object().ok_or(ItemError::NotAnObject)?;
    obj.iter()
        .map(|(k, v)| {
            AttributeValue::from_json_at(v, 1, STORED_NESTING_LEVELS)
                .map(|a| (k.clone(), a))
                .map_err(|e| ItemError::Value(k.clone(), e))
        })
        .collect()
}

/// An attribute name DynamoDB accepts: 1 to 65535 bytes.
pub fn check_name(name: &str) -> Result<(), ValueError> {
    if name.is_empty() {
        Err(ValueError::EmptyName)
    } else if name.len() > MAX_NAME_BYTES {
        Err(ValueError::NameTooLong)
    } else {
        Ok(())
    }
}

/// Nesting levels of the deepest value in `item` (1 for scalars only; 0 if empty).
pub fn item_depth(item: &Item) -> usize {
    // Iterative, so even a value built past the limit is measured without recursion.
    let mut deepest = 0;
    let mut todo: Vec<(&AttributeValue, usize)> = item.values().map(|v| (v, 1)).collect();
    while let Some((v, level)) = todo.pop() {
        deepest = deepest.max(level);
        match v {
            AttributeValue::M(m) => todo.extend(m.values().map(|x| (x, level + 1))),
            AttributeValue::L(l) => todo.extend(l.iter().map(|x| (x, level + 1))),
            _ => {}
        }
    }
    deepest
}

/// Encodes an item.
pub fn item_to_json(item: &Item) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// An item's size: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
}

/// An item's size as DynamoDB measures it against a Query or Scan page's 1 MB, which is
/// not `item_size`: attribute names count one byte each, values carry small length
/// prefixes, and each item an overhead that grows with its size and its range key.
/// (Learned from AWS's answers: an item just over or under the limit ends a page
/// exactly where DynamoDB ends it.)
pub fn page_size(item: &Item, range_key: Option<&str>) -> usize {
    let mut range_size = 0;
    let mut size = 0;
    for (name, v) in item {
        if Some(name.as_str()) == range_key {
            range_size = v.size();
        } else {
            size += stored_size(v) + 1;
        }
    }
    2 + size + (1 + (1 + size) / 3072) * (18 + range_size)
}

/// A value's size with its storage prefixes (for [`page_size`]).
fn stored_size(v: &AttributeValue) -> usize {
    match v {
        AttributeValue::S(s) => {
            let n = s.len();
            n + if n < 128 {
                1
            } else if n < 16384 {
                2
            } else {
                3
            }
        }
        AttributeValue::B(b) => b.len() + 1,
        AttributeValue::N(n) => n.size() + 1,
        AttributeValue::Ss(x) => x.iter().map(String::len).sum::<usize>() + x.len() + 1,
        AttributeValue::Ns(x) => x.iter().map(Number::size).sum::<usize>() + x.len() + 1,
        AttributeValue::Bs(x) => x.iter().map(Bytes::len).sum::<usize>() + x.len() + 1,
        AttributeValue::Null => 0,
        AttributeValue::Bool(_) => 1,
        AttributeValue::L(l) => 3 + l.iter().map(|x| 1 + stored_size(x)).sum::<usize>(),
        AttributeValue::M(m) => 3 + m.len() + m.values().map(|x| stored_size(x) + 1).sum::<usize>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_type_round_trips() {
        let wire = json!({
            "s": {"S": "hello"},
            "n": {"N": "12345678901234567890123456789012345678"},
            "b": {"B": "AAEC"},
            "t": {"BOOL": true},
            "z": {"NULL": true},
            "m": {"M": {"inner": {"L": [{"S": "a"}, {"N": "-1.5"}]}}},
            "ss": {"SS": ["a", "b"]},
            "ns": {"NS": ["1", "2.5"]},
            "bs": {"BS": ["AA==", "AQ=="]}
        });
        let item = item_from_json(&wire).unwrap();
        assert_eq!(item_to_json(&item), wire);
    }

    fn deep_map(wraps: usize) -> Value {
        let mut v = json!({"S": "leaf"});
        for _ in 0..wraps {
            v = json!({"M": {"n": v}});
        }
        v
    }

    #[test]
    fn nesting_is_limited_to_32_levels() {
        // The leaf inside 31 maps is at level 32: accepted; one more is refused.
        let ok = item_from_json(&json!({"a": deep_map(31)})).unwrap();
        assert_eq!(item_depth(&ok), 32);
        assert_eq!(
            item_from_json(&json!({"a": deep_map(32)})),
            Err(ItemError::Value("a".into(), ValueError::TooDeep))
        );
        assert_eq!(
            AttributeValue::from_json(&deep_map(32)),
            Err(ValueError::TooDeep)
        );
        // Stored items are read back whatever their depth.
        assert!(stored_item_from_json(&json!({"a": deep_map(40)})).is_ok());
    }

    #[test]
    fn attribute_names_are_1_to_65535_bytes() {
        assert_eq!(
            item_from_json(&json!({"": {"S": "x"}})),
            Err(ItemError::Value(String::new(), ValueError::EmptyName))
        );
        let long = "n".repeat(MAX_NAME_BYTES + 1);
        assert!(item_from_json(&json!({ long.clone(): {"S": "x"} })).is_err());
        assert!(item_from_json(&json!({ long[1..].to_owned(): {"S": "x"} })).is_ok());
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            json!({}),
            json!({"S": "a", "N": "1"}),
            json!({"N": "abc"}),
            json!({"SS": []}),
            json!({"SS": ["a", "a"]}),
            json!({"NS": ["1", "1.0"]}),
            json!({"NULL": false}),
            json!({"X": 1}),
            json!({"B": "not base64!"}),
        ] {
            assert!(AttributeValue::from_json(&bad).is_err(), "{bad}");
        }
    }
}
