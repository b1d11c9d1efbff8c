//! DynamoDB attribute values and their JSON wire form (`{"S": "x"}`, `{"N": "1"}`, …).
//!
//! The wire form is also how items are stored (see `storage::keys`), so the one
//! conversion here is the only place that validates values.

use std::collections::BTreeMap;

use base64::Engine;
use bytes::Bytes;
use serde_json::{Map, Value};

use super::number::{Number, NumberError};

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

    /// Decodes the wire form.
    pub fn from_json(v: &Value) -> Result<Self, ValueError> {
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
            "BOOL" => Self::Bool(inner.as_bool().ok_or(ValueError::WrongShape("BOOL"))?),
            "NULL" => match inner.as_bool() {
                Some(true) => Self::Null,
                Some(false) => return Err(ValueError::NullFalse),
                None => return Err(ValueError::WrongShape("NULL")),
            },
            "M" => Self::M(item_from_json(inner).map_err(|e| match e {
                ItemError::Value(_, v) => v,
                ItemError::NotAnObject => ValueError::WrongShape("M"),
            })?),
            "L" => Self::L(
                list(inner, "L")?
                    .iter()
                    .map(Self::from_json)
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

/// Decodes an item (`{"name": {"S": "x"}, …}`).
pub fn item_from_json(v: &Value) -> Result<Item, ItemError> {
    let obj = v.as_object().ok_or(ItemError::NotAnObject)?;
    obj.iter()
        .map(|(k, v)| {
            AttributeValue::from_json(v)
                .map(|a| (k.clone(), a))
                .map_err(|e| ItemError::Value(k.clone(), e))
        })
        .collect()
}

/// Encodes an item.
pub fn item_to_json(item: &Item) -> Value {
    Value::Object(item.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
}

/// An item's size: attribute names plus values.
pub fn item_size(item: &Item) -> usize {
    item.iter().map(|(k, v)| k.len() + v.size()).sum()
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
