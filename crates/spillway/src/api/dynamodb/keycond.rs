//! Query's key conditions and the ExclusiveStartKey of Query and Scan, judged as DynamoDB
//! judges them: a KeyConditionExpression's shape before the table is looked up, then the
//! conditions and the starting key against the key schema the request reads.

use super::DynamoError;
use super::legacy::{self, Conditions};
use crate::table::expr::{self, Cmp, Cond, Operand, Path, Step};
use crate::table::plan::SortKeyCondition;
use crate::table::value::{AttributeValue, Item};
use crate::table::{Index, KeyAttribute, TableState};

fn validation(m: impl Into<String>) -> DynamoError {
    DynamoError::Validation(m.into())
}

const INVALID_START: &str = "The provided starting key is invalid";
const SCHEMA_MISMATCH: &str = "The provided key element does not match the schema";

/// A KeyConditionExpression as the conditions it states, one per key attribute, in the
/// form of legacy KeyConditions: (attribute, operator, values).
pub fn from_expression(c: &Cond) -> Result<Conditions, DynamoError> {
    let mut out = Vec::new();
    collect(c, &mut out)?;
    Ok(out)
}

fn wrong_operator(what: &str) -> DynamoError {
    validation(format!(
        "Invalid operator used in KeyConditionExpression: {what}"
    ))
}

fn key_not_first(what: &str) -> DynamoError {
    validation(format!(
        "Invalid condition in KeyConditionExpression: {what} operator must have the key attribute as its first operand"
    ))
}

/// One AND-joined piece of a key condition; the operator is judged before its operands.
fn collect(c: &Cond, out: &mut Conditions) -> Result<(), DynamoError> {
    let (op, operands): (&str, Vec<&Operand>) = match c {
        Cond::And(a, b) => {
            collect(a, out)?;
            return collect(b, out);
        }
        Cond::Or(..) => return Err(wrong_operator("OR")),
        Cond::Not(_) => return Err(wrong_operator("NOT")),
        Cond::In(..) => return Err(wrong_operator("IN")),
        Cond::Compare(_, Cmp::Ne, _) => return Err(wrong_operator("<>")),
        Cond::Exists(_) => return Err(wrong_operator("attribute_exists")),
        Cond::NotExists(_) => return Err(wrong_operator("attribute_not_exists")),
        Cond::Type(..) => return Err(wrong_operator("attribute_type")),
        Cond::Contains(..) => return Err(wrong_operator("contains")),
        Cond::Between(first, lo, hi) => {
            if !matches!(first, Operand::Path(_)) {
                return Err(key_not_first("BETWEEN"));
            }
            ("BETWEEN", vec![first, lo, hi])
        }
        Cond::BeginsWith(first, prefix) => {
            if !matches!(first, Operand::Path(_)) {
                return Err(key_not_first("begins_with"));
            }
            ("BEGINS_WITH", vec![first, prefix])
        }
        Cond::Compare(a, cmp, b) => {
            let op = match cmp {
                Cmp::Eq => "EQ",
                Cmp::Lt => "LT",
                Cmp::Le => "LE",
                Cmp::Gt => "GT",
                _ => "GE",
            };
            (op, vec![a, b])
        }
    };
    let mut attribute: Option<(usize, &str)> = None;
    let mut values = Vec::new();
    for (i, o) in operands.into_iter().enumerate() {
        match o {
            Operand::Path(p) => {
                if attribute.is_some() {
                    return Err(validation(
                        "Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition",
                    ));
                }
                let [Step::Name(n)] = p.0.as_slice() else {
                    return Err(validation(
                        "KeyConditionExpressions cannot have conditions on nested attributes",
                    ));
                };
                attribute = Some((i, n));
            }
            Operand::Size(_) => {
                return Err(validation(
                    "KeyConditionExpressions cannot contain nested operations",
                ));
            }
            Operand::Value(v) => values.push(v.clone()),
        }
    }
    let Some((at, name)) = attribute else {
        return Err(validation(
            "Invalid condition in KeyConditionExpression: No key attribute specified",
        ));
    };
    if out.iter().any(|(n, _, _)| n == name) {
        return Err(validation(
            "KeyConditionExpressions must only contain one condition per key",
        ));
    }
    // `:v < k` states `k > :v`.
    let op = match (at, op) {
        (0, op) => op,
        (_, "LT") => "GT",
        (_, "LE") => "GE",
        (_, "GT") => "LT",
        (_, "GE") => "LE",
        (_, op) => op,
    };
    out.push((name.to_owned(), op.to_owned(), values));
    Ok(())
}

/// The key attributes a request reads: the index's, or the table's.
pub fn schema<'s>(
    state: &'s TableState,
    index: Option<&'s Index>,
) -> (&'s KeyAttribute, Option<&'s KeyAttribute>) {
    match index {
        Some(ix) => (&ix.hash_key, ix.range_key.as_ref()),
        None => (&state.hash_key, state.range_key.as_ref()),
    }
}

/// The starting key's value for one key attribute, refused when absent (`missing`) or of
/// another type than the schema's.
fn piece<'k>(
    start: &'k Item,
    key: &KeyAttribute,
    missing: &str,
) -> Result<&'k AttributeValue, DynamoError> {
    let v = start.get(&key.name).ok_or_else(|| validation(missing))?;
    if v.type_name() != key.kind.as_str() {
        return Err(validation(SCHEMA_MISMATCH));
    }
    let empty = match v {
        AttributeValue::S(s) => s.is_empty().then_some("string"),
        AttributeValue::B(b) => b.is_empty().then_some("binary"),
        _ => None,
    };
    if let Some(kind) = empty {
        return Err(validation(format!(
            "One or more parameter values were invalid: The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {}",
            key.name
        )));
    }
    Ok(v)
}

/// How many attributes a starting key has: the table's key and the index's, each once.
fn start_key_size(state: &TableState, index: Option<&Index>) -> usize {
    let mut names = vec![&state.hash_key.name];
    names.extend(state.range_key.as_ref().map(|k| &k.name));
    if let Some(ix) = index {
        for k in std::iter::once(&ix.hash_key).chain(ix.range_key.as_ref()) {
            if !names.contains(&&k.name) {
                names.push(&k.name);
            }
        }
    }
    names.len()
}

/// The table's own key inside a starting key.
fn table_part(state: &TableState, start: &Item) -> Result<(), DynamoError> {
    for k in std::iter::once(&state.hash_key).chain(state.range_key.as_ref()) {
        piece(start, k, SCHEMA_MISMATCH)
            .map_err(|_| validation(format!("{INVALID_START}: {SCHEMA_MISMATCH}")))?;
    }
    Ok(())
}

/// What a query reads: the partition (hash key value) and the sort key's condition, as
/// an expression and as bounds (where reading begins).
pub struct KeyRange {
    pub hash: AttributeValue,
    pub range: Option<Cond>,
    pub sort: SortKeyCondition,
}

/// Checks a query's key conditions and starting key against the schema it reads, in
/// DynamoDB's order: per key attribute (hash, then range) the starting key's piece, then
/// the condition; then the table's part of the starting key; then whether the starting
/// key lies inside the conditions.
pub fn query_range(
    state: &TableState,
    index: Option<&Index>,
    conds: &Conditions,
    start: Option<&Item>,
) -> Result<KeyRange, DynamoError> {
    if start.is_some_and(|s| s.len() != start_key_size(state, index)) {
        return Err(validation(INVALID_START));
    }
    let (hash, range) = schema(state, index);
    let find = |k: &KeyAttribute| conds.iter().find(|(n, _, _)| *n == k.name);
    for (key, is_hash) in std::iter::once((hash, true)).chain(range.map(|r| (r, false))) {
        if let Some(s) = start {
            piece(s, key, INVALID_START)?;
        }
        if is_hash && range.is_none() && conds.len() > 1 {
            return Err(validation("Query key condition not supported"));
        }
        let Some((_, op, values)) = find(key) else {
            if is_hash || conds.len() > 1 {
                return Err(validation(format!(
                    "Query condition missed key schema element: {}",
                    key.name
                )));
            }
            continue;
        };
        if matches!(
            op.as_str(),
            "NULL" | "NOT_NULL" | "NE" | "CONTAINS" | "NOT_CONTAINS" | "IN"
        ) {
            return Err(validation(
                "Attempted conditional constraint is not an indexable operation",
            ));
        }
        if values.iter().any(|v| v.type_name() != key.kind.as_str()) {
            return Err(validation(
                "One or more parameter values were invalid: Condition parameter type does not match schema type",
            ));
        }
        if is_hash && op != "EQ" {
            return Err(validation("Query key condition not supported"));
        }
    }
    let hash_value = find(hash)
        .and_then(|(_, _, v)| v.first().cloned())
        .ok_or_else(|| {
            validation(format!(
                "Query condition missed key schema element: {}",
                hash.name
            ))
        })?;
    // The sort key's condition, as an expression (what is kept) and as bounds (where
    // reading begins).
    let range_found = range.and_then(find);
    let range_cond = range_found.map(|(n, op, vs)| legacy::comparison(n, op, vs));
    let sort = range_found.map_or(SortKeyCondition::Any, |(_, op, vs)| {
        SortKeyCondition::from_operator(op, vs)
    });
    if let Some(s) = start {
        table_part(state, s)?;
        let same_partition = s
            .get(&hash.name)
            .and_then(|v| expr::compare(v, &hash_value))
            == Some(std::cmp::Ordering::Equal);
        match &range_cond {
            None if !same_partition => {
                return Err(validation(
                    "The provided starting key is outside query boundaries based on provided conditions",
                ));
            }
            None => {}
            Some(c) => {
                if !expr::eval(s, c) {
                    return Err(validation(
                        "The provided starting key does not match the range key predicate",
                    ));
                }
                if !same_partition {
                    return Err(validation(
                        "The query can return at most one row and cannot be restarted",
                    ));
                }
            }
        }
    }
    Ok(KeyRange {
        hash: hash_value,
        range: range_cond,
        sort,
    })
}

/// Scan's starting key: its size, the index's key in it, then (after `between`, which
/// DynamoDB judges there) the table's key in it.
pub fn scan_start(
    state: &TableState,
    index: Option<&Index>,
    start: Option<&Item>,
    between: impl FnOnce() -> Result<(), DynamoError>,
) -> Result<(), DynamoError> {
    if let Some(s) = start {
        if s.len() != start_key_size(state, index) {
            return Err(validation(match index {
                Some(_) => INVALID_START.to_owned(),
                None => format!("{INVALID_START}: {SCHEMA_MISMATCH}"),
            }));
        }
        if let Some(ix) = index {
            for k in std::iter::once(&ix.hash_key).chain(ix.range_key.as_ref()) {
                piece(s, k, INVALID_START)?;
            }
        }
    }
    between()?;
    match start {
        Some(s) => table_part(state, s),
        None => Ok(()),
    }
}

/// The document paths a condition reads.
pub fn paths<'c>(c: &'c Cond, out: &mut Vec<&'c Path>) {
    let operand = |o: &'c Operand, out: &mut Vec<&'c Path>| {
        if let Operand::Path(p) | Operand::Size(p) = o {
            out.push(p);
        }
    };
    match c {
        Cond::Compare(a, _, b) | Cond::BeginsWith(a, b) | Cond::Contains(a, b) => {
            operand(a, out);
            operand(b, out);
        }
        Cond::Between(a, b, d) => {
            for o in [a, b, d] {
                operand(o, out);
            }
        }
        Cond::In(a, list) => {
            operand(a, out);
            for o in list {
                operand(o, out);
            }
        }
        Cond::Exists(p) | Cond::NotExists(p) => out.push(p),
        Cond::Type(p, o) => {
            out.push(p);
            operand(o, out);
        }
        Cond::And(a, b) | Cond::Or(a, b) => {
            paths(a, out);
            paths(b, out);
        }
        Cond::Not(a) => paths(a, out),
    }
}

fn head(p: &Path) -> Option<&str> {
    match p.0.first() {
        Some(Step::Name(n)) => Some(n),
        _ => None,
    }
}

/// A filter naming a key attribute of the schema read (`what` is how DynamoDB names the
/// filter: "QueryFilter" or "Filter Expression").
pub fn filter_on_key(
    keys: (&KeyAttribute, Option<&KeyAttribute>),
    heads: &[&str],
    what: &str,
) -> Result<(), DynamoError> {
    match std::iter::once(keys.0)
        .chain(keys.1)
        .find(|k| heads.contains(&k.name.as_str()))
    {
        Some(k) => Err(validation(format!(
            "{what} can only contain non-primary key attributes: Primary key attribute: {}",
            k.name
        ))),
        None => Ok(()),
    }
}

/// The first steps of paths.
pub fn heads<'p>(paths: &[&'p Path]) -> Vec<&'p str> {
    paths.iter().filter_map(|p| head(p)).collect()
}

/// A path reaching inside a key attribute (`k.x`, `k[0]`), which DynamoDB refuses: the
/// table's keys first, then the indexes' (global: both keys; local: the sort key).
pub fn scalar_keys(state: &TableState, paths: &[&Path]) -> Result<(), DynamoError> {
    let nested: Vec<&str> = paths
        .iter()
        .filter(|p| p.0.len() > 1)
        .filter_map(|p| head(p))
        .collect();
    if nested.is_empty() {
        return Ok(());
    }
    let refuse = |kind: &str, name: &str| {
        Err(validation(format!(
            "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: {kind}: {name}"
        )))
    };
    for k in std::iter::once(&state.hash_key).chain(state.range_key.as_ref()) {
        if nested.contains(&k.name.as_str()) {
            return refuse("Key", &k.name);
        }
    }
    let global = state.indexes.iter().filter(|ix| !ix.local);
    let local = state.indexes.iter().filter(|ix| ix.local);
    let index_keys = global
        .flat_map(|ix| std::iter::once(&ix.hash_key).chain(ix.range_key.as_ref()))
        .chain(local.filter_map(|ix| ix.range_key.as_ref()));
    for k in index_keys {
        if nested.contains(&k.name.as_str()) {
            return refuse("IndexKey", &k.name);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::table::expr::Parser;

    fn shape(text: &str) -> Result<Conditions, String> {
        let names = HashMap::new();
        let values: HashMap<String, AttributeValue> =
            [(":v".to_owned(), AttributeValue::S("x".into()))].into();
        let (c, _) = Parser::new("KeyConditionExpression", text, &names, &values)
            .and_then(|p| p.condition())
            .map_err(|e| e.0)?;
        from_expression(&c).map_err(|e| match e {
            DynamoError::Validation(m) => m,
            other => format!("{other:?}"),
        })
    }

    #[test]
    fn key_conditions_come_out_one_per_attribute_with_the_key_on_the_left() {
        let c = shape(":v <= k AND h = :v").unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].0.as_str(), c[0].1.as_str()), ("k", "GE"));
        assert_eq!((c[1].0.as_str(), c[1].1.as_str()), ("h", "EQ"));
        let c = shape("begins_with(k, :v)").unwrap();
        assert_eq!(c[0].1, "BEGINS_WITH");
    }

    #[test]
    fn the_operator_is_judged_before_its_operands() {
        let m = shape("a = :v OR size(b) > :v").unwrap_err();
        assert_eq!(m, "Invalid operator used in KeyConditionExpression: OR");
        let m = shape("a.b <> :v").unwrap_err();
        assert_eq!(m, "Invalid operator used in KeyConditionExpression: <>");
        let m = shape(":v between size(a) and :v").unwrap_err();
        assert!(
            m.contains("BETWEEN operator must have the key attribute"),
            "{m}"
        );
        let m = shape("a between b and size(a)").unwrap_err();
        assert!(
            m.ends_with("Multiple attribute names used in one condition"),
            "{m}"
        );
        let m = shape("a > size(b)").unwrap_err();
        assert_eq!(
            m,
            "KeyConditionExpressions cannot contain nested operations"
        );
        let m = shape("a[0] > :v").unwrap_err();
        assert_eq!(
            m,
            "KeyConditionExpressions cannot have conditions on nested attributes"
        );
        let m = shape(":v > :v AND a = :v").unwrap_err();
        assert!(m.ends_with("No key attribute specified"), "{m}");
        let m = shape("a > :v AND (b = :v AND a < :v)").unwrap_err();
        assert_eq!(
            m,
            "KeyConditionExpressions must only contain one condition per key"
        );
    }
}
