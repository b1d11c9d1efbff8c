//! DynamoDB's own request checks: what it verifies after its model's constraints and before
//! it looks up a table, in its order and in its words.
//!
//! DynamoDB answers the first failing check only, so the order is part of the behaviour a
//! client sees: per action, first whether expression and legacy parameters are mixed, then
//! the attribute values of the key or item, then action-specific rules, then the
//! expression maps (names, then values), then the expressions themselves (parsed by the
//! actions). The functions here are called by the actions in that order.

use std::collections::HashSet;

use serde_json::Value;

use super::DynamoError;
use crate::table::number::{Number, NumberError};

fn validation(m: impl Into<String>) -> DynamoError {
    DynamoError::Validation(m.into())
}

/// The data types an attribute value may carry; other members are ignored, as DynamoDB's
/// decoder ignores unknown fields.
const TYPES: [&str; 10] = ["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS"];

/// What is wrong with one attribute value, as DynamoDB words it (None: nothing).
pub fn attribute_value(v: &Value) -> Option<String> {
    let members = v.as_object()?;
    let present: Vec<(&str, &Value)> = members
        .iter()
        .filter(|(k, v)| TYPES.contains(&k.as_str()) && !v.is_null())
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    if present.is_empty() {
        return Some(
            "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes"
                .into(),
        );
    }
    for &(kind, value) in &present {
        let items = value.as_array().map(Vec::as_slice).unwrap_or_default();
        let problem = match kind {
            "N" => number(value.as_str().unwrap_or_default()),
            // Any value but true ("true", "yes" or "1" as a string count as true).
            "NULL" if crate::table::value::boolean(value) != Some(true) => Some(
                "One or more parameter values were invalid: Null attribute value types must have the value of true"
                    .into(),
            ),
            "SS" if items.is_empty() => Some(
                "One or more parameter values were invalid: An string set  may not be empty".into(),
            ),
            "NS" if items.is_empty() => Some(
                "One or more parameter values were invalid: An number set  may not be empty".into(),
            ),
            "BS" if items.is_empty() => Some(
                "One or more parameter values were invalid: Binary sets should not be empty".into(),
            ),
            "SS" => has_duplicates(items).then(|| {
                format!(
                    "One or more parameter values were invalid: Input collection {} contains duplicates.",
                    show(items)
                )
            }),
            "NS" => items
                .iter()
                .find_map(|n| number(n.as_str().unwrap_or_default()))
                .or_else(|| {
                    let parsed: Vec<Number> = items
                        .iter()
                        .filter_map(|n| Number::parse(n.as_str().unwrap_or_default()).ok())
                        .collect();
                    let distinct: HashSet<&Number> = parsed.iter().collect();
                    (distinct.len() < parsed.len())
                        .then(|| "Input collection contains duplicates".to_owned())
                }),
            "BS" => has_duplicates(items).then(|| {
                format!(
                    "One or more parameter values were invalid: Input collection {}of type BS contains duplicates.",
                    show(items)
                )
            }),
            "M" => value
                .as_object()
                .and_then(|m| m.values().find_map(attribute_value)),
            "L" => items.iter().find_map(attribute_value),
            _ => None,
        };
        if problem.is_some() {
            return problem;
        }
    }
    (present.len() > 1).then(|| {
        "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes"
            .into()
    })
}

/// What is wrong with the text of a number.
fn number(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some("The parameter cannot be converted to a numeric value".into());
    }
    match Number::parse(text) {
        Ok(_) => None,
        Err(e @ NumberError::NotNumeric(_)) => Some(e.to_string()),
        Err(e) => Some(e.to_string()),
    }
}

fn has_duplicates(items: &[Value]) -> bool {
    let mut seen = HashSet::new();
    items
        .iter()
        .any(|v| !seen.insert(v.as_str().unwrap_or_default()))
}

/// A list as Java prints it: `[a, b]`.
fn show(items: &[Value]) -> String {
    let parts: Vec<&str> = items
        .iter()
        .map(|v| v.as_str().unwrap_or_default())
        .collect();
    format!("[{}]", parts.join(", "))
}

/// A key in a form where equal keys are equal text, whatever the order of its members.
pub fn canonical(key: &Value) -> String {
    match key.as_object() {
        Some(m) => {
            let mut parts: Vec<String> = m.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.sort_unstable();
            parts.join("/")
        }
        None => key.to_string(),
    }
}

/// The attribute values of a key or an item (a map of name to value), first failure.
pub fn values(map: Option<&Value>) -> Result<(), DynamoError> {
    match map
        .and_then(Value::as_object)
        .and_then(|m| m.values().find_map(attribute_value))
    {
        Some(m) => Err(validation(m)),
        None => Ok(()),
    }
}

/// ExclusiveStartKey's values: most problems are prefixed with "The provided starting key
/// is invalid: ", those about numbers, number sets and duplicates are not.
pub fn start_key(req: &Value) -> Result<(), DynamoError> {
    let Some(m) = req
        .get("ExclusiveStartKey")
        .and_then(Value::as_object)
        .and_then(|m| m.values().find_map(attribute_value))
    else {
        return Ok(());
    };
    let bare = [
        "contains duplicates",
        "number set",
        "numeric value",
        "significant digits",
        "number with magnitude",
    ];
    if bare.iter().any(|b| m.contains(b)) {
        Err(validation(m))
    } else {
        Err(validation(format!(
            "The provided starting key is invalid: {m}"
        )))
    }
}

fn present(req: &Value, field: &str) -> bool {
    req.get(field).is_some_and(|v| !v.is_null())
}

/// Expression and legacy parameters mixed, and expression maps without expressions.
/// `expressions` and `legacy` in DynamoDB's order for the action.
pub fn expression_params(
    req: &Value,
    expressions: &[&str],
    legacy: &[&str],
) -> Result<(), DynamoError> {
    let used: Vec<&str> = expressions
        .iter()
        .copied()
        .filter(|e| present(req, e))
        .collect();
    if !used.is_empty() {
        // KeyConditions alone may come with other expressions.
        let key_conditions_alone =
            present(req, "KeyConditions") && !present(req, "KeyConditionExpression");
        let mixed: Vec<&str> = legacy
            .iter()
            .copied()
            .filter(|l| present(req, l) && !(key_conditions_alone && *l == "KeyConditions"))
            .collect();
        if !mixed.is_empty() {
            return Err(validation(format!(
                "Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {{{}}} Expression parameters: {{{}}}",
                mixed.join(", "),
                used.join(", ")
            )));
        }
    }
    if present(req, "ExpressionAttributeNames") && used.is_empty() {
        return Err(validation(
            "ExpressionAttributeNames can only be specified when using expressions",
        ));
    }
    let value_users: Vec<&str> = expressions
        .iter()
        .copied()
        .filter(|e| *e != "ProjectionExpression")
        .collect();
    if !value_users.is_empty()
        && present(req, "ExpressionAttributeValues")
        && value_users.iter().all(|e| !present(req, e))
    {
        return Err(validation(format!(
            "ExpressionAttributeValues can only be specified when using expressions: {} {} null",
            value_users.join(" and "),
            if value_users.len() > 1 { "are" } else { "is" }
        )));
    }
    Ok(())
}

fn key_ok(key: &str, sigil: char) -> bool {
    let mut chars = key.chars();
    chars.next() == Some(sigil)
        && key.len() > 1
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// ExpressionAttributeNames and ExpressionAttributeValues themselves: not empty, keys of
/// the form `#name` and `:name`, then each value.
pub fn expression_maps(req: &Value) -> Result<(), DynamoError> {
    if let Some(names) = req
        .get("ExpressionAttributeNames")
        .and_then(Value::as_object)
    {
        if names.is_empty() {
            return Err(validation("ExpressionAttributeNames must not be empty"));
        }
        if let Some(k) = names.keys().find(|k| !key_ok(k, '#')) {
            return Err(validation(format!(
                "ExpressionAttributeNames contains invalid key: Syntax error; key: \"{k}\""
            )));
        }
    }
    if let Some(vals) = req
        .get("ExpressionAttributeValues")
        .and_then(Value::as_object)
    {
        if vals.is_empty() {
            return Err(validation("ExpressionAttributeValues must not be empty"));
        }
        if let Some(k) = vals.keys().find(|k| !key_ok(k, ':')) {
            return Err(validation(format!(
                "ExpressionAttributeValues contains invalid key: Syntax error; key: \"{k}\""
            )));
        }
        for (k, v) in vals {
            if let Some(m) = attribute_value(v) {
                return Err(validation(format!(
                    "ExpressionAttributeValues contains invalid value: {m} for key {k}"
                )));
            }
        }
    }
    Ok(())
}

/// The table actions (CreateTable, DescribeTable, UpdateTable, DeleteTable,
/// DescribeTimeToLive) check their TableName's presence and length in words of their own,
/// before any constraint of the model.
pub fn table_action_name(action: &str, req: &Value) -> Result<(), DynamoError> {
    if !matches!(
        action,
        "CreateTable" | "DescribeTable" | "UpdateTable" | "DeleteTable" | "DescribeTimeToLive"
    ) {
        return Ok(());
    }
    match req.get("TableName") {
        None | Some(Value::Null) => Err(validation(
            "The parameter 'TableName' is required but was not present in the request",
        )),
        Some(Value::String(s))
            if !(3..=255).contains(&s.chars().map(char::len_utf16).sum::<usize>()) =>
        {
            Err(validation(
                "TableName must be at least 3 characters long and at most 255 characters long",
            ))
        }
        _ => Ok(()),
    }
}

/// Scan's Segment and TotalSegments, which come together, the segment below the total.
pub fn segments(req: &Value) -> Result<(), DynamoError> {
    let segment = req.get("Segment").and_then(Value::as_u64);
    let total = req.get("TotalSegments").and_then(Value::as_u64);
    // A Segment of 0 alone passes, as DynamoDB lets it.
    if segment.is_some_and(|s| s > 0) && total.is_none() {
        return Err(validation(
            "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
        ));
    }
    if let Some(n) = total {
        let Some(s) = segment else {
            return Err(validation(
                "The Segment parameter is required but was not present in the request when parameter TotalSegments is present",
            ));
        };
        if s >= n {
            return Err(validation(format!(
                "The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: {s} is not less than TotalSegments: {n}"
            )));
        }
    }
    Ok(())
}

/// AttributesToGet naming an attribute twice.
pub fn attributes_to_get(req: &Value) -> Result<(), DynamoError> {
    let Some(names) = req.get("AttributesToGet").and_then(Value::as_array) else {
        return Ok(());
    };
    let mut seen = HashSet::new();
    match names
        .iter()
        .filter_map(Value::as_str)
        .find(|n| !seen.insert(*n))
    {
        Some(n) => Err(validation(format!(
            "One or more parameter values were invalid: Duplicate value in attribute name: {n}"
        ))),
        None => Ok(()),
    }
}

/// The values inside a map of legacy conditions (QueryFilter, ScanFilter, KeyConditions;
/// Expected's Value and AttributeValueList).
pub fn condition_values(req: &Value, field: &str) -> Result<(), DynamoError> {
    let Some(map) = req.get(field).and_then(Value::as_object) else {
        return Ok(());
    };
    for c in map.values() {
        let listed = c
            .get("AttributeValueList")
            .and_then(Value::as_array)
            .into_iter()
            .flatten();
        if let Some(m) = c
            .get("Value")
            .into_iter()
            .chain(listed)
            .find_map(attribute_value)
        {
            return Err(validation(m));
        }
    }
    Ok(())
}

fn invalid(m: impl std::fmt::Display) -> DynamoError {
    validation(format!("One or more parameter values were invalid: {m}"))
}

fn names_of(list: &[Value]) -> Vec<&str> {
    list.iter()
        .map(|k| k["AttributeName"].as_str().unwrap_or_default())
        .collect()
}

fn list<'a>(req: &'a Value, field: &str) -> Option<&'a [Value]> {
    req.get(field).and_then(Value::as_array).map(Vec::as_slice)
}

/// The larger throughput DynamoDB accepts.
const MAX_CAPACITY: f64 = 1_000_000_000_000.0;

/// CreateTable's own rules, in DynamoDB's order: billing and throughput, the key schema
/// against the attribute definitions, then each local and each global index.
pub fn create_table(req: &Value) -> Result<(), DynamoError> {
    let on_demand = req.get("BillingMode").and_then(Value::as_str) == Some("PAY_PER_REQUEST");
    let throughput = req.get("ProvisionedThroughput").filter(|v| !v.is_null());
    if on_demand {
        if throughput.is_some() {
            return Err(invalid(
                "Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
            ));
        }
    } else {
        let units = |f: &str| {
            throughput
                .and_then(|t| t.get(f))
                .and_then(Value::as_f64)
                .filter(|u| *u != 0.0)
        };
        let (Some(read), Some(write)) = (units("ReadCapacityUnits"), units("WriteCapacityUnits"))
        else {
            return Err(invalid(
                "ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED",
            ));
        };
        for (field, u) in [("ReadCapacityUnits", read), ("WriteCapacityUnits", write)] {
            if u > MAX_CAPACITY {
                return Err(validation(format!(
                    "Given value {u} for {field} is out of bounds"
                )));
            }
        }
    }
    let defs = names_of(list(req, "AttributeDefinitions").unwrap_or_default());
    let schema = list(req, "KeySchema").unwrap_or_default();
    let keys = names_of(schema);
    if keys.len() > defs.len() {
        return Err(validation(
            "Invalid KeySchema: Some index key attribute have no definition",
        ));
    }
    let undefined = |keys: &[&str]| {
        keys.iter().any(|k| !defs.contains(k)).then(|| {
            invalid(format!(
                "Some index key attributes are not defined in AttributeDefinitions. Keys: [{}], AttributeDefinitions: [{}]",
                keys.join(", "),
                defs.join(", ")
            ))
        })
    };
    if let Some(e) = undefined(&keys) {
        return Err(e);
    }
    key_schema_shape(schema)?;
    let locals = list(req, "LocalSecondaryIndexes");
    let globals = list(req, "GlobalSecondaryIndexes");
    if locals.is_none() && globals.is_none() && keys.len() != defs.len() {
        return Err(invalid(
            "Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions",
        ));
    }
    let mut seen = HashSet::new();
    if let Some(locals) = locals {
        if locals.is_empty() {
            return Err(invalid("List of LocalSecondaryIndexes is empty"));
        }
        if schema.len() != 2 {
            return Err(invalid(
                "Table KeySchema does not have a range key, which is required when specifying a LocalSecondaryIndex",
            ));
        }
        for ix in locals {
            let name = ix["IndexName"].as_str().unwrap_or_default();
            let ix_schema = list(ix, "KeySchema").unwrap_or_default();
            let ix_keys = names_of(ix_schema);
            if let Some(e) = undefined(&ix_keys) {
                return Err(e);
            }
            key_schema_shape(ix_schema)?;
            if ix_schema.len() != 2 {
                return Err(invalid(format!(
                    "Index KeySchema does not have a range key for index: {name}"
                )));
            }
            if ix_keys.first() != keys.first() {
                return Err(invalid(format!(
                    "Index KeySchema does not have the same leading hash key as table KeySchema for index: {name}. index hash key: {}, table hash key: {}",
                    ix_keys.first().unwrap_or(&""),
                    keys.first().unwrap_or(&"")
                )));
            }
            projection(ix)?;
            if !seen.insert(name) {
                return Err(invalid(format!("Duplicate index name: {name}")));
            }
        }
        if locals.len() > 5 {
            return Err(invalid(
                "Number of LocalSecondaryIndexes exceeds per-table limit of 5",
            ));
        }
    }
    if let Some(globals) = globals {
        if globals.is_empty() {
            return Err(invalid("List of GlobalSecondaryIndexes is empty"));
        }
        for ix in globals {
            let name = ix["IndexName"].as_str().unwrap_or_default();
            let ix_schema = list(ix, "KeySchema").unwrap_or_default();
            if let Some(e) = undefined(&names_of(ix_schema)) {
                return Err(e);
            }
            key_schema_shape(ix_schema)?;
            projection(ix)?;
            if on_demand
                && ix
                    .get("ProvisionedThroughput")
                    .is_some_and(|v| !v.is_null())
            {
                return Err(invalid(format!(
                    "ProvisionedThroughput should not be specified for index: {name} when BillingMode is PAY_PER_REQUEST"
                )));
            }
            if !seen.insert(name) {
                return Err(invalid(format!("Duplicate index name: {name}")));
            }
        }
        if globals.len() > 20 {
            return Err(invalid(
                "GlobalSecondaryIndex count exceeds the per-table limit of 20",
            ));
        }
    }
    Ok(())
}

/// A key schema is a HASH element, then optionally a RANGE element on another attribute.
fn key_schema_shape(schema: &[Value]) -> Result<(), DynamoError> {
    let keys = names_of(schema);
    if keys.len() == 2 && keys[0] == keys[1] {
        return Err(validation(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name",
        ));
    }
    let kind = |i: usize| schema.get(i).and_then(|k| k["KeyType"].as_str());
    if kind(0) != Some("HASH") {
        return Err(validation(
            "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
        ));
    }
    if schema.len() > 1 && kind(1) != Some("RANGE") {
        return Err(validation(
            "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
        ));
    }
    Ok(())
}

/// An index's Projection: a type, and NonKeyAttributes only with INCLUDE.
fn projection(ix: &Value) -> Result<(), DynamoError> {
    let p = &ix["Projection"];
    let Some(kind) = p["ProjectionType"].as_str() else {
        return Err(invalid("Unknown ProjectionType: null"));
    };
    if p.get("NonKeyAttributes").is_some_and(|v| !v.is_null()) && kind != "INCLUDE" {
        return Err(invalid(format!(
            "ProjectionType is {kind}, but NonKeyAttributes is specified"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attribute_values_are_judged_as_dynamodb_words_them() {
        let msg = |v: Value| attribute_value(&v);
        assert_eq!(msg(json!({"S": "a"})), None);
        assert!(
            msg(json!({}))
                .unwrap()
                .starts_with("Supplied AttributeValue is empty")
        );
        assert!(
            msg(json!({"a": ""}))
                .unwrap()
                .starts_with("Supplied AttributeValue is empty")
        );
        assert!(
            msg(json!({"S": "a", "N": "1"}))
                .unwrap()
                .contains("more than one datatypes")
        );
        // A bad number is reported before the second type.
        assert_eq!(
            msg(json!({"S": "a", "N": ""})).unwrap(),
            "The parameter cannot be converted to a numeric value"
        );
        assert_eq!(
            msg(json!({"N": "b"})).unwrap(),
            "The parameter cannot be converted to a numeric value: b"
        );
        assert_eq!(
            msg(json!({"NS": ["1", "1.0"]})).unwrap(),
            "Input collection contains duplicates"
        );
        assert_eq!(
            msg(json!({"SS": ["a", "a"]})).unwrap(),
            "One or more parameter values were invalid: Input collection [a, a] contains duplicates."
        );
        assert!(
            msg(json!({"L": [{"NULL": false}]}))
                .unwrap()
                .ends_with("must have the value of true")
        );
    }

    #[test]
    fn expression_keys_need_their_sigil() {
        assert!(key_ok("#a_1", '#'));
        assert!(!key_ok("#", '#'));
        assert!(!key_ok("a", '#'));
        assert!(!key_ok(":a-b", ':'));
    }
}
