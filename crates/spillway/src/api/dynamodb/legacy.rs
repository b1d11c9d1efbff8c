//! DynamoDB's legacy (pre-expression) parameters, which AWS still accepts and older
//! mappers still send: `Expected` (with `ConditionalOperator`), `AttributesToGet`,
//! `KeyConditions`, `QueryFilter`, `ScanFilter` and `AttributeUpdates`.
//!
//! Each is checked with AWS's messages and translated into the expression model
//! (`table::expr`): one evaluator serves both forms.

use serde_json::Value;

use super::DynamoError;
use crate::table::expr::{Action, Cmp, Cond, Operand, Path, SetValue, Step};
use crate::table::value::{AttributeValue, ValueError};

fn validation(m: impl Into<String>) -> DynamoError {
    DynamoError::Validation(m.into())
}

fn invalid(m: impl std::fmt::Display) -> DynamoError {
    validation(format!("One or more parameter values were invalid: {m}"))
}

fn attr(name: &str) -> Path {
    Path(vec![Step::Name(name.to_owned())])
}

fn value_of(v: &Value) -> Result<AttributeValue, DynamoError> {
    AttributeValue::from_json(v).map_err(|e| match e {
        ValueError::TooDeep => validation(format!("1 validation error detected: {e}")),
        e @ (ValueError::EmptyStringSet
        | ValueError::EmptyNumberSet
        | ValueError::EmptyBinarySet
        | ValueError::Duplicates(_)) => validation(e.to_string()),
        e => invalid(e),
    })
}

/// One legacy comparison as a condition over attribute `name`.
pub(super) fn comparison(name: &str, op: &str, values: &[AttributeValue]) -> Cond {
    let p = attr(name);
    let v = |i: usize| Operand::Value(values[i].clone());
    let cmp = |c: Cmp| Cond::Compare(Operand::Path(attr(name)), c, v(0));
    match op {
        "EQ" => cmp(Cmp::Eq),
        // An absent attribute is "not equal", as AWS evaluates NE.
        "NE" => Cond::Or(Box::new(Cond::NotExists(p)), Box::new(cmp(Cmp::Ne))),
        "LE" => cmp(Cmp::Le),
        "LT" => cmp(Cmp::Lt),
        "GE" => cmp(Cmp::Ge),
        "GT" => cmp(Cmp::Gt),
        "NOT_NULL" => Cond::Exists(p),
        "NULL" => Cond::NotExists(p),
        "CONTAINS" => Cond::Contains(Operand::Path(p), v(0)),
        "NOT_CONTAINS" => Cond::Not(Box::new(Cond::Contains(Operand::Path(p), v(0)))),
        "BEGINS_WITH" => Cond::BeginsWith(Operand::Path(p), v(0)),
        "IN" => Cond::In(
            Operand::Path(p),
            values.iter().cloned().map(Operand::Value).collect(),
        ),
        // BETWEEN (the operator set is checked before this is called).
        _ => Cond::Between(Operand::Path(p), v(0), v(1)),
    }
}

/// How many values an operator takes (IN: one or more).
fn arity_ok(op: &str, n: usize) -> bool {
    match op {
        "NULL" | "NOT_NULL" => n == 0,
        "IN" => n >= 1,
        "BETWEEN" => n == 2,
        _ => n == 1,
    }
}

fn type_ok(op: &str, t: &str) -> bool {
    let scalar = matches!(t, "S" | "N" | "B");
    match op {
        "EQ" | "NE" => scalar || matches!(t, "SS" | "NS" | "BS"),
        "BEGINS_WITH" => matches!(t, "S" | "B"),
        _ => scalar,
    }
}

const OPERATORS: [&str; 13] = [
    "EQ",
    "NE",
    "LE",
    "LT",
    "GE",
    "GT",
    "NOT_NULL",
    "NULL",
    "CONTAINS",
    "NOT_CONTAINS",
    "BEGINS_WITH",
    "IN",
    "BETWEEN",
];

fn values_list(v: Option<&Vec<Value>>) -> Result<Vec<AttributeValue>, DynamoError> {
    v.into_iter().flatten().map(value_of).collect()
}

fn same_type(values: &[AttributeValue]) -> Result<(), DynamoError> {
    if let Some(first) = values.first()
        && values.iter().any(|v| v.type_name() != first.type_name())
    {
        return Err(invalid(
            "AttributeValues inside AttributeValueList must be of same type",
        ));
    }
    Ok(())
}

fn between_order(op: &str, values: &[AttributeValue]) -> Result<(), DynamoError> {
    if op == "BETWEEN"
        && values.len() == 2
        && crate::table::expr::compare(&values[0], &values[1]) == Some(std::cmp::Ordering::Greater)
    {
        return Err(validation(
            "The BETWEEN condition was provided a range where the lower bound is greater than the upper bound",
        ));
    }
    Ok(())
}

/// A map of `Condition`s (KeyConditions, QueryFilter, ScanFilter), checked, in request
/// order: (attribute, operator, values).
pub type Conditions = Vec<(String, String, Vec<AttributeValue>)>;

/// Reads and checks a map of `Condition`s, one condition after the other: its values,
/// then the operator's rules for them ([`check`]).
pub fn conditions(req: &Value, field: &str) -> Result<Option<Conditions>, DynamoError> {
    let Some(map) = req.get(field).and_then(Value::as_object) else {
        return Ok(None);
    };
    let mut out = Vec::with_capacity(map.len());
    for (name, c) in map {
        let op = c
            .get("ComparisonOperator")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !OPERATORS.contains(&op) {
            return Err(validation(format!(
                "1 validation error detected: Value '{op}' at '{}.{name}.member.comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]",
                lower_first(field)
            )));
        }
        let listed = c.get("AttributeValueList").and_then(Value::as_array);
        if let Some(m) = listed
            .into_iter()
            .flatten()
            .find_map(super::checks::attribute_value)
        {
            return Err(validation(m));
        }
        let condition = (name.clone(), op.to_owned(), values_list(listed)?);
        check(&condition)?;
        out.push(condition);
    }
    Ok(Some(out))
}

/// One condition's values against its operator: how many, of one type, of a type the
/// operator takes, and BETWEEN's bounds in order.
pub fn check((_, op, values): &(String, String, Vec<AttributeValue>)) -> Result<(), DynamoError> {
    if !arity_ok(op, values.len()) {
        return Err(invalid(format!(
            "Invalid number of argument(s) for the {op} ComparisonOperator"
        )));
    }
    same_type(values)?;
    if let Some(bad) = values.iter().find(|v| !type_ok(op, v.type_name())) {
        return Err(invalid(format!(
            "ComparisonOperator {op} is not valid for {} AttributeValue type",
            bad.type_name()
        )));
    }
    between_order(op, values)
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Combines conditions with AND, or OR when `ConditionalOperator` says so. None when
/// there are none (an empty map matches everything).
fn combine(conds: Vec<Cond>, req: &Value) -> Option<Cond> {
    let or = req.get("ConditionalOperator").and_then(Value::as_str) == Some("OR");
    conds.into_iter().reduce(|a, b| {
        if or {
            Cond::Or(Box::new(a), Box::new(b))
        } else {
            Cond::And(Box::new(a), Box::new(b))
        }
    })
}

/// QueryFilter or ScanFilter (read by [`conditions`]) as a filter condition.
pub fn filter(cs: &Conditions, req: &Value) -> Option<Cond> {
    combine(
        cs.iter().map(|(n, op, vs)| comparison(n, op, vs)).collect(),
        req,
    )
}

/// Expected (with ConditionalOperator) as a condition.
pub fn expected(req: &Value) -> Result<Option<Cond>, DynamoError> {
    let Some(map) = req.get("Expected").and_then(Value::as_object) else {
        return Ok(None);
    };
    let mut conds = Vec::with_capacity(map.len());
    for (name, c) in map {
        let has = |f: &str| c.get(f).is_some_and(|v| !v.is_null());
        let op = c.get("ComparisonOperator").and_then(Value::as_str);
        if let Some(op) = op
            && !OPERATORS.contains(&op)
        {
            return Err(validation(format!(
                "1 validation error detected: Value '{op}' at 'expected.{name}.member.comparisonOperator' failed to satisfy constraint: Member must satisfy enum value set: [IN, NULL, BETWEEN, LT, NOT_CONTAINS, EQ, GT, NOT_NULL, NE, LE, BEGINS_WITH, GE, CONTAINS]"
            )));
        }
        if has("AttributeValueList") && has("Value") {
            return Err(invalid(format!(
                "Value and AttributeValueList cannot be used together for Attribute: {name}"
            )));
        }
        if let Some(op) = op {
            if has("Exists") {
                return Err(invalid(format!(
                    "Exists and ComparisonOperator cannot be used together for Attribute: {name}"
                )));
            }
            if op != "NULL" && op != "NOT_NULL" && !has("AttributeValueList") && !has("Value") {
                return Err(invalid(format!(
                    "Value or AttributeValueList must be used with ComparisonOperator: {op} for Attribute: {name}"
                )));
            }
            let values = if has("Value") {
                vec![value_of(&c["Value"])?]
            } else {
                values_list(c.get("AttributeValueList").and_then(Value::as_array))?
            };
            if !arity_ok(op, values.len()) {
                return Err(invalid(format!(
                    "Invalid number of argument(s) for the {op} ComparisonOperator"
                )));
            }
            same_type(&values)?;
            between_order(op, &values)?;
            conds.push(comparison(name, op, &values));
        } else if has("AttributeValueList") {
            return Err(invalid(format!(
                "AttributeValueList can only be used with a ComparisonOperator for Attribute: {name}"
            )));
        } else {
            let exists = c.get("Exists").and_then(Value::as_bool);
            match (exists.unwrap_or(true), has("Value")) {
                (true, false) => {
                    return Err(invalid(format!(
                        "Value must be provided when Exists is {} for Attribute: {name}",
                        exists.map_or("null".to_owned(), |e| e.to_string())
                    )));
                }
                (false, true) => {
                    return Err(invalid(format!(
                        "Value cannot be used when Exists is false for Attribute: {name}"
                    )));
                }
                (true, true) => conds.push(comparison(name, "EQ", &[value_of(&c["Value"])?])),
                (false, false) => conds.push(comparison(name, "NULL", &[])),
            }
        }
    }
    Ok(combine(conds, req))
}

/// AttributesToGet as projection paths.
pub fn attributes_to_get(req: &Value) -> Result<Option<Vec<Path>>, DynamoError> {
    let Some(list) = req.get("AttributesToGet").and_then(Value::as_array) else {
        return Ok(None);
    };
    let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    for (i, n) in names.iter().enumerate() {
        if names[..i].contains(n) {
            return Err(invalid(format!("Duplicate value in attribute name: {n}")));
        }
    }
    Ok(Some(names.into_iter().map(attr).collect()))
}

/// AttributeUpdates as update actions.
pub fn attribute_updates(req: &Value) -> Result<Option<Vec<Action>>, DynamoError> {
    let Some(map) = req.get("AttributeUpdates").and_then(Value::as_object) else {
        return Ok(None);
    };
    let mut actions = Vec::with_capacity(map.len());
    for (name, u) in map {
        let value = match u.get("Value") {
            Some(v) if !v.is_null() => Some(value_of(v)?),
            _ => None,
        };
        let action = u.get("Action").and_then(Value::as_str).unwrap_or("PUT");
        let p = attr(name);
        actions.push(match (action, value) {
            ("DELETE", None) => Action::Remove(p),
            (_, None) => {
                return Err(invalid(
                    "Only DELETE action is allowed when no attribute value is specified",
                ));
            }
            ("DELETE", Some(v)) => {
                if !matches!(v.type_name(), "SS" | "NS" | "BS") {
                    return Err(invalid(format!(
                        "DELETE action with value is not supported for the type {}",
                        v.type_name()
                    )));
                }
                Action::Delete(p, v)
            }
            ("ADD", Some(AttributeValue::L(l))) => Action::Set(
                p.clone(),
                SetValue::ListAppend(
                    Box::new(SetValue::IfNotExists(
                        p,
                        Box::new(SetValue::Operand(Operand::Value(AttributeValue::L(
                            Vec::new(),
                        )))),
                    )),
                    Box::new(SetValue::Operand(Operand::Value(AttributeValue::L(l)))),
                ),
            ),
            ("ADD", Some(v)) => {
                if !matches!(v.type_name(), "SS" | "NS" | "BS" | "N") {
                    return Err(invalid(format!(
                        "ADD action is not supported for the type {}",
                        v.type_name()
                    )));
                }
                Action::Add(p, v)
            }
            (_, Some(v)) => Action::Set(p, SetValue::Operand(Operand::Value(v))),
        });
    }
    Ok(Some(actions))
}
