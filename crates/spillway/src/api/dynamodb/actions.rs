//! The DynamoDB actions: decode, check, call the table domain, shape the answer.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::DynamoError;
use super::{checks, control, keycond, legacy};
use crate::storage::SyncMode;
use crate::table::expr::{self, Cond, Parser, Path};
use crate::table::value::{
    self, AttributeValue, Item, ItemError, ValueError, item_from_json, item_to_json,
};
use crate::table::{KeyType, TableError, TableState, Tables};

type R = Result<Value, DynamoError>;

/// Runs one action on a decoded request.
pub fn dispatch(t: &Arc<Tables>, action: &str, req: &Value) -> R {
    // AWS's model first: types, then every constraint, before the action looks at
    // anything (an operation the model has and spillway lacks is unknown below).
    let modelled = crate::api::model::dynamodb().check(action, req);
    if let Err(e @ crate::api::model::RequestError::Validation(_)) = modelled {
        // The table actions judge a missing or misfit TableName before the constraints.
        checks::table_action_name(action, req)?;
        control::arn_shape(t, action, req)?;
        return Err(e.into());
    }
    modelled?;
    checks::table_action_name(action, req)?;
    match action {
        "CreateTable" => control::create_table(t, req),
        "DeleteTable" => control::delete_table(t, req),
        "DescribeTable" => control::describe_table(t, req),
        "ListTables" => list_tables(t, req),
        "UpdateTable" => control::update_table(t, req),
        "DescribeTimeToLive" => control::describe_ttl(t, req),
        "UpdateTimeToLive" => control::update_ttl(t, req),
        "TagResource" => control::tag_resource(t, req),
        "UntagResource" => control::untag_resource(t, req),
        "ListTagsOfResource" => control::list_tags(t, req),
        "DescribeContinuousBackups" => control::describe_backups(t, req),
        "DescribeLimits" => Ok(control::describe_limits(t)),
        "DescribeEndpoints" => Ok(control::describe_endpoints(t)),
        "PutItem" => put_item(t, req),
        "GetItem" => get_item(t, req),
        "DeleteItem" => delete_item(t, req),
        "UpdateItem" => update_item(t, req),
        "Query" => query(t, req, true),
        "Scan" => query(t, req, false),
        "BatchWriteItem" => batch_write(t, req),
        "BatchGetItem" => batch_get(t, req),
        "TransactWriteItems" => transact_write(t, req),
        "TransactGetItems" => transact_get(t, req),
        _ => Err(DynamoError::UnknownOperation),
    }
}

pub(super) fn validation(m: impl Into<String>) -> DynamoError {
    DynamoError::Validation(m.into())
}

pub(super) fn table_name(req: &Value) -> Result<String, DynamoError> {
    match req.get("TableName") {
        Some(Value::String(s)) => {
            let pattern = s
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            let constraint = if s.len() < 3 {
                "Member must have length greater than or equal to 3"
            } else if s.len() > 255 {
                "Member must have length less than or equal to 255"
            } else if !pattern {
                "Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+"
            } else {
                return Ok(s.clone());
            };
            Err(validation(format!(
                "1 validation error detected: Value '{s}' at 'tableName' failed to satisfy constraint: {constraint}"
            )))
        }
        None | Some(Value::Null) => Err(validation(
            "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null",
        )),
        Some(_) => Err(DynamoError::Serialization(
            "TableName must be a string".into(),
        )),
    }
}

/// DynamoDB's answer to an item or value nested past 32 levels, inside the
/// "1 validation error detected" envelope single-item actions use.
fn too_deep() -> DynamoError {
    validation(format!(
        "1 validation error detected: {}",
        ValueError::TooDeep
    ))
}

/// The nesting refusal without the envelope, as batches and transactions send it.
fn bare(e: DynamoError) -> DynamoError {
    match e {
        DynamoError::Validation(m) => DynamoError::Validation(
            m.strip_prefix("1 validation error detected: ")
                .map(str::to_owned)
                .unwrap_or(m),
        ),
        other => other,
    }
}

pub(super) fn item_of(v: Option<&Value>, field: &str) -> Result<Item, DynamoError> {
    checks::values(v)?;
    match v {
        Some(v) => item_from_json(v).map_err(|e| match e {
            ItemError::Value(_, ValueError::TooDeep) => too_deep(),
            // The name itself is the problem; no need to repeat it.
            ItemError::Value(_, e @ (ValueError::EmptyName | ValueError::NameTooLong)) => {
                validation(format!("One or more parameter values were invalid: {e}"))
            }
            e => validation(format!("One or more parameter values were invalid: {e}")),
        }),
        None => Err(validation(format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ))),
    }
}

/// ExpressionAttributeNames and ExpressionAttributeValues.
struct Maps {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

fn maps(req: &Value) -> Result<Maps, DynamoError> {
    let mut names = HashMap::new();
    if let Some(Value::Object(m)) = req.get("ExpressionAttributeNames") {
        for (k, v) in m {
            let name = v.as_str().unwrap_or_default();
            if name.is_empty() {
                return Err(validation(format!(
                    "ExpressionAttributeNames contains invalid value: Empty attribute name for key {k}"
                )));
            }
            names.insert(k.clone(), name.to_owned());
        }
    }
    let mut values = HashMap::new();
    if let Some(Value::Object(m)) = req.get("ExpressionAttributeValues") {
        for (k, v) in m {
            values.insert(
                k.clone(),
                AttributeValue::from_json(v).map_err(|e| match e {
                    ValueError::TooDeep => too_deep(),
                    e => validation(format!(
                        "ExpressionAttributeValues contains invalid value: {e} for key {k}"
                    )),
                })?,
            );
        }
    }
    Ok(Maps { names, values })
}

/// A ValidationException naming the keys of `field` that no expression used.
fn refuse_unused<'k>(
    field: &str,
    keys: impl Iterator<Item = &'k String>,
    used: &std::collections::HashSet<String>,
) -> Result<(), DynamoError> {
    let mut unused: Vec<&str> = keys
        .filter(|k| !used.contains(*k))
        .map(String::as_str)
        .collect();
    if unused.is_empty() {
        return Ok(());
    }
    unused.sort_unstable();
    Err(validation(format!(
        "Value provided in {field} unused in expressions: keys: {{{}}}",
        unused.join(", ")
    )))
}

struct Parsed {
    used_names: std::collections::HashSet<String>,
    used_values: std::collections::HashSet<String>,
    /// The document paths the expressions name, in the order they were parsed.
    paths: Vec<Path>,
}

impl Parsed {
    fn new() -> Self {
        Self {
            used_names: Default::default(),
            used_values: Default::default(),
            paths: Vec::new(),
        }
    }

    fn absorb(&mut self, p: &Parser<'_>) {
        self.used_names.extend(p.used_names.iter().cloned());
        self.used_values.extend(p.used_values.iter().cloned());
        self.paths.extend(p.paths.iter().cloned());
    }

    /// DynamoDB refuses a path into a key attribute of the table or of an index: keys
    /// are scalars, so `key.x` or `key[0]` cannot name anything.
    fn key_paths(&self, state: &TableState) -> Result<(), DynamoError> {
        let table_keys: Vec<&str> = std::iter::once(state.hash_key.name.as_str())
            .chain(state.range_key.as_ref().map(|k| k.name.as_str()))
            .collect();
        let index_keys: Vec<&str> = state
            .indexes
            .iter()
            .flat_map(|i| std::iter::once(&i.hash_key).chain(i.range_key.as_ref()))
            .map(|k| k.name.as_str())
            .collect();
        for p in self.paths.iter().filter(|p| p.0.len() > 1) {
            let Some(expr::Step::Name(top)) = p.0.first() else {
                continue;
            };
            let which = if table_keys.contains(&top.as_str()) {
                "Key"
            } else if index_keys.contains(&top.as_str()) {
                "IndexKey"
            } else {
                continue;
            };
            return Err(validation(format!(
                "Key attributes must be scalars; list random access '[]' and map lookup '.' are not allowed: {which}: {top}"
            )));
        }
        Ok(())
    }

    /// DynamoDB refuses names and values no expression used.
    fn check_unused(&self, m: &Maps) -> Result<(), DynamoError> {
        refuse_unused(
            "ExpressionAttributeValues",
            m.values.keys(),
            &self.used_values,
        )?;
        refuse_unused("ExpressionAttributeNames", m.names.keys(), &self.used_names)
    }
}

fn condition(
    req: &Value,
    field: &'static str,
    m: &Maps,
    used: &mut Parsed,
) -> Result<Option<Cond>, DynamoError> {
    match req.get(field).and_then(Value::as_str) {
        Some(text) => {
            let (c, p) = Parser::new(field, text, &m.names, &m.values)?.condition()?;
            used.absorb(&p);
            Ok(Some(c))
        }
        None => Ok(None),
    }
}

fn projection(req: &Value, m: &Maps, used: &mut Parsed) -> Result<Option<Vec<Path>>, DynamoError> {
    match req.get("ProjectionExpression").and_then(Value::as_str) {
        Some(text) => {
            let (paths, p) =
                Parser::new("ProjectionExpression", text, &m.names, &m.values)?.projection()?;
            used.absorb(&p);
            Ok(Some(paths))
        }
        None => Ok(None),
    }
}

/// ConditionExpression, or the legacy Expected.
fn condition_or_expected(
    req: &Value,
    m: &Maps,
    used: &mut Parsed,
) -> Result<Option<Cond>, DynamoError> {
    match condition(req, "ConditionExpression", m, used)? {
        Some(c) => Ok(Some(c)),
        None => legacy::expected(req),
    }
}

/// ProjectionExpression, or the legacy AttributesToGet.
fn projection_or_attributes(
    req: &Value,
    m: &Maps,
    used: &mut Parsed,
) -> Result<Option<Vec<Path>>, DynamoError> {
    match projection(req, m, used)? {
        Some(p) => Ok(Some(p)),
        None => legacy::attributes_to_get(req),
    }
}

fn project(item: &Item, paths: &Option<Vec<Path>>) -> Value {
    match paths {
        Some(p) => item_to_json(&expr::project(item, p)),
        None => item_to_json(item),
    }
}

fn list_tables(t: &Arc<Tables>, req: &Value) -> R {
    let limit = req.get("Limit").and_then(Value::as_u64).unwrap_or(100);
    if !(1..=100).contains(&limit) {
        return Err(validation(format!(
            "1 validation error detected: Value '{limit}' at 'limit' failed to satisfy constraint: Member must have value {} 100",
            if limit < 1 {
                "greater than or equal to 1"
            } else {
                "less than or equal to"
            }
        )));
    }
    let start = req.get("ExclusiveStartTableName").and_then(Value::as_str);
    let names: Vec<String> = t
        .all()
        .iter()
        .map(|s| s.name.clone())
        .filter(|n| start.is_none_or(|s| n.as_str() > s))
        .collect();
    let page: Vec<&String> = names.iter().take(limit as usize).collect();
    let mut out = json!({"TableNames": page});
    if names.len() > limit as usize
        && let Some(last) = page.last()
    {
        out["LastEvaluatedTableName"] = json!(last);
    }
    Ok(out)
}

/// ReturnValues for writes.
fn return_values(req: &Value, allowed: &[&str]) -> Result<String, DynamoError> {
    let rv = req
        .get("ReturnValues")
        .and_then(Value::as_str)
        .unwrap_or("NONE")
        .to_owned();
    if !allowed.contains(&rv.as_str()) {
        return Err(validation(format!(
            "ReturnValues can only be {} for this operation",
            allowed.join(" or ")
        )));
    }
    Ok(rv)
}

/// Whether the request asks for ConsumedCapacity (TOTAL or INDEXES).
fn wants_capacity(req: &Value) -> bool {
    matches!(
        req.get("ReturnConsumedCapacity").and_then(Value::as_str),
        Some("TOTAL" | "INDEXES")
    )
}

/// Read capacity of `bytes` read at once, as DynamoDB counts it: one unit per 4 KB
/// (rounded up) strongly consistent, half that eventually consistent.
fn read_units(bytes: usize, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096) as f64;
    if consistent { units } else { units / 2.0 }
}

/// Write capacity of an item of `bytes`: one unit per 1 KB, rounded up, at least one.
fn write_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// Read capacity of one item read by key (a missing item costs as a 1-byte one).
fn item_read_units(item: Option<&Item>, consistent: bool) -> f64 {
    read_units(item.map_or(1, value::item_size).max(1), consistent)
}

/// Write capacity of one item write: the larger of the item before and after.
fn item_write_units(old: Option<&Item>, new: Option<&Item>) -> f64 {
    write_units(
        old.map_or(0, value::item_size)
            .max(new.map_or(0, value::item_size)),
    )
}

fn consistent(req: &Value) -> bool {
    req.get("ConsistentRead").and_then(Value::as_bool) == Some(true)
}

/// One ConsumedCapacity entry: the total, and with INDEXES the table's and each index's
/// part (`index`: name, local, units).
fn capacity_json(
    req: &Value,
    table: &str,
    table_units: f64,
    index: Option<(&str, bool, f64)>,
) -> Value {
    let total = table_units + index.map_or(0.0, |i| i.2);
    let mut c = json!({"TableName": table, "CapacityUnits": total});
    if req.get("ReturnConsumedCapacity").and_then(Value::as_str) == Some("INDEXES") {
        c["Table"] = json!({"CapacityUnits": table_units});
        if let Some((name, local, units)) = index {
            let field = if local {
                "LocalSecondaryIndexes"
            } else {
                "GlobalSecondaryIndexes"
            };
            c[field] = json!({ name: {"CapacityUnits": units} });
        }
    }
    c
}

fn consumed(req: &Value, table: &str, units: f64, out: &mut Value) {
    if wants_capacity(req) {
        out["ConsumedCapacity"] = capacity_json(req, table, units, None);
    }
}

fn check(cond: &Option<Cond>, old: Option<&Item>, req: &Value) -> Result<(), TableError> {
    if let Some(c) = cond {
        let empty = Item::new();
        if !expr::eval(old.unwrap_or(&empty), c) {
            let keep = req
                .get("ReturnValuesOnConditionCheckFailure")
                .and_then(Value::as_str)
                == Some("ALL_OLD");
            return Err(TableError::ConditionalCheckFailed {
                old: if keep {
                    old.cloned().map(Box::new)
                } else {
                    None
                },
            });
        }
    }
    Ok(())
}

fn put_item(t: &Arc<Tables>, req: &Value) -> R {
    let name = table_name(req)?;
    checks::expression_params(req, &["ConditionExpression"], &["Expected"])?;
    let item = item_of(req.get("Item"), "item")?;
    if let Some(rv) = req.get("ReturnValues").and_then(Value::as_str)
        && !matches!(rv, "ALL_OLD" | "NONE")
    {
        return Err(validation("ReturnValues can only be ALL_OLD or NONE"));
    }
    if value::item_size(&item) > crate::table::MAX_ITEM_BYTES {
        return Err(validation(
            "Item size has exceeded the maximum allowed size",
        ));
    }
    checks::condition_values(req, "Expected")?;
    checks::expression_maps(req)?;
    let m = maps(req)?;
    let mut used = Parsed::new();
    let cond = condition_or_expected(req, &m, &mut used)?;
    used.check_unused(&m)?;
    let rv = return_values(req, &["NONE", "ALL_OLD"])?;
    index_key_types(&*t.get(&name)?, &item)?;
    // A put with no condition and no returned item does not need the item it replaces.
    // (Capacity, as DynamoDB counts it, needs the old item's size too.)
    if cond.is_none() && rv == "NONE" && !wants_capacity(req) {
        let op = t.get(&name)?.prepare_put(&item)?;
        t.commit(&[op], SyncMode::SyncData)?;
        return Ok(write_answer(req, &name, None, 0.0));
    }
    let (old, _) = t.modify(&name, &item, SyncMode::SyncData, |old| {
        check(&cond, old, req)?;
        Ok(Some(item.clone()))
    })?;
    let units = item_write_units(old.as_ref(), Some(&item));
    Ok(write_answer(
        req,
        &name,
        (rv == "ALL_OLD").then_some(old).flatten(),
        units,
    ))
}

/// The answer to a PutItem or DeleteItem: the old item when asked for, and capacity.
fn write_answer(req: &Value, table: &str, attributes: Option<Item>, units: f64) -> Value {
    let mut out = json!({});
    if let Some(o) = attributes {
        out["Attributes"] = item_to_json(&o);
    }
    consumed(req, table, units, &mut out);
    out
}

fn get_item(t: &Arc<Tables>, req: &Value) -> R {
    let name = table_name(req)?;
    checks::expression_params(req, &["ProjectionExpression"], &["AttributesToGet"])?;
    let key = item_of(req.get("Key"), "key")?;
    checks::attributes_to_get(req)?;
    checks::expression_maps(req)?;
    // The request is checked whole before the table is looked up, as DynamoDB does.
    let m = maps(req)?;
    let mut used = Parsed::new();
    let proj = projection_or_attributes(req, &m, &mut used)?;
    used.check_unused(&m)?;
    let state = t.get(&name)?;
    key_only(&state, &key)?;
    used.key_paths(&state)?;
    let mut out = json!({});
    let found = t.get_item(&name, &key)?;
    if let Some(item) = &found {
        out["Item"] = project(item, &proj);
    }
    consumed(
        req,
        &name,
        item_read_units(found.as_ref(), consistent(req)),
        &mut out,
    );
    Ok(out)
}

/// The key attributes are present in `item`, each of its key type.
fn key_has_schema(t: &TableState, item: &Item) -> Result<(), DynamoError> {
    for k in std::iter::once(&t.hash_key).chain(t.range_key.as_ref()) {
        if item
            .get(&k.name)
            .is_none_or(|v| v.type_name() != k.kind.as_str())
        {
            return Err(validation(
                "The provided key element does not match the schema",
            ));
        }
    }
    Ok(())
}

/// A Key must name exactly the key attributes.
fn key_only(t: &TableState, key: &Item) -> Result<(), DynamoError> {
    t.check_key_sizes(key)?;
    let expected = 1 + usize::from(t.range_key.is_some());
    if key.len() != expected {
        return Err(validation(
            "The provided key element does not match the schema",
        ));
    }
    key_has_schema(t, key)?;
    for k in std::iter::once(&t.hash_key).chain(t.range_key.as_ref()) {
        let kind = match key.get(&k.name) {
            Some(AttributeValue::S(s)) if s.is_empty() => "string",
            Some(AttributeValue::B(b)) if b.is_empty() => "binary",
            _ => continue,
        };
        return Err(validation(format!(
            "One or more parameter values were invalid: The AttributeValue for a key attribute cannot contain an empty {kind} value. Key: {}",
            k.name
        )));
    }
    t.encode_key(key)
        .map_err(|_| validation("The provided key element does not match the schema"))?;
    Ok(())
}

fn delete_item(t: &Arc<Tables>, req: &Value) -> R {
    let name = table_name(req)?;
    checks::expression_params(req, &["ConditionExpression"], &["Expected"])?;
    let key = item_of(req.get("Key"), "key")?;
    checks::condition_values(req, "Expected")?;
    checks::expression_maps(req)?;
    let m = maps(req)?;
    let mut used = Parsed::new();
    let cond = condition_or_expected(req, &m, &mut used)?;
    used.check_unused(&m)?;
    let rv = return_values(req, &["NONE", "ALL_OLD"])?;
    let state = t.get(&name)?;
    key_only(&state, &key)?;
    used.key_paths(&state)?;
    let (old, _) = t.modify(&name, &key, SyncMode::SyncData, |old| {
        check(&cond, old, req)?;
        Ok(None)
    })?;
    let units = item_write_units(old.as_ref(), None);
    Ok(write_answer(
        req,
        &name,
        (rv == "ALL_OLD").then_some(old).flatten(),
        units,
    ))
}

/// The key attributes of a table's indexes: (attribute, type, index), in index order.
fn index_keys(state: &TableState) -> Vec<(String, KeyType, String)> {
    state
        .indexes
        .iter()
        .flat_map(|i| {
            std::iter::once(&i.hash_key)
                .chain(i.range_key.as_ref())
                .map(|k| (k.name.clone(), k.kind, i.name.clone()))
        })
        .collect()
}

/// An item's index key attributes must have the index's key types.
fn index_key_types(state: &TableState, item: &Item) -> Result<(), DynamoError> {
    for (n, kind, index) in index_keys(state) {
        if let Some(v) = item.get(&n)
            && v.type_name() != kind.as_str()
        {
            return Err(validation(format!(
                "One or more parameter values were invalid: Type mismatch for Index Key {n} Expected: {} Actual: {} IndexName: {index}",
                kind.as_str(),
                v.type_name()
            )));
        }
    }
    Ok(())
}

/// The type a SET value has whatever the item holds, when there is one.
fn static_type(v: &expr::SetValue) -> Option<&'static str> {
    match v {
        expr::SetValue::Operand(expr::Operand::Value(v)) => Some(v.type_name()),
        expr::SetValue::Plus(..) | expr::SetValue::Minus(..) => Some("N"),
        expr::SetValue::ListAppend(..) => Some("L"),
        _ => None,
    }
}

fn update_item(t: &Arc<Tables>, req: &Value) -> R {
    let name = table_name(req)?;
    checks::expression_params(
        req,
        &["UpdateExpression", "ConditionExpression"],
        &["AttributeUpdates", "Expected"],
    )?;
    let key = item_of(req.get("Key"), "key")?;
    checks::condition_values(req, "AttributeUpdates")?;
    checks::condition_values(req, "Expected")?;
    checks::expression_maps(req)?;
    let m = maps(req)?;
    let mut used = Parsed::new();
    let legacy_updates = req.get("UpdateExpression").is_none();
    let actions = match req.get("UpdateExpression").and_then(Value::as_str) {
        Some(text) => {
            let (a, p) = Parser::new("UpdateExpression", text, &m.names, &m.values)?.update()?;
            used.absorb(&p);
            a
        }
        None => legacy::attribute_updates(req)?.unwrap_or_default(),
    };
    let cond = condition_or_expected(req, &m, &mut used)?;
    used.check_unused(&m)?;
    let state = t.get(&name)?;
    key_only(&state, &key)?;
    let key_names: Vec<&str> = std::iter::once(state.hash_key.name.as_str())
        .chain(state.range_key.as_ref().map(|r| r.name.as_str()))
        .collect();
    for a in &actions {
        let (expr::Action::Set(p, _)
        | expr::Action::Remove(p)
        | expr::Action::Add(p, _)
        | expr::Action::Delete(p, _)) = a;
        if let Some(expr::Step::Name(top)) = p.0.first()
            && key_names.contains(&top.as_str())
        {
            return Err(validation(format!(
                "One or more parameter values were invalid: Cannot update attribute {top}. This attribute is part of the key"
            )));
        }
    }
    let index_keys = index_keys(&state);
    // An index key set to a value whose type is known before the item is read.
    for a in &actions {
        let (p, known) = match a {
            expr::Action::Set(p, v) => (p, static_type(v)),
            expr::Action::Add(p, v) => (p, Some(v.type_name())),
            _ => continue,
        };
        if let ([expr::Step::Name(top)], Some(actual)) = (p.0.as_slice(), known)
            && let Some((_, kind, index)) = index_keys
                .iter()
                .find(|(n, k, _)| n == top && k.as_str() != actual)
        {
            return Err(validation(format!(
                "One or more parameter values were invalid: Type mismatch for Index Key {top} Expected: {} Actual: {actual} IndexName: {index}",
                kind.as_str()
            )));
        }
    }
    used.key_paths(&state)?;
    let rv = return_values(
        req,
        &["NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"],
    )?;
    let (old, new) = t.modify(&name, &key, SyncMode::SyncData, |old| {
        check(&cond, old, req)?;
        let mut item = old.cloned().unwrap_or_else(|| key.clone());
        expr::apply(&mut item, &actions).map_err(|e| {
            // AttributeUpdates' ADD and DELETE word a type mismatch their own way.
            if legacy_updates && e == expr::wrong_type() {
                TableError::Validation("Type mismatch for attribute to update".into())
            } else {
                TableError::Validation(e.0)
            }
        })?;
        if value::item_depth(&item) > value::MAX_NESTING_LEVELS {
            return Err(TableError::Validation(format!(
                "1 validation error detected: {}",
                ValueError::TooDeep
            )));
        }
        if value::item_size(&item) > crate::table::MAX_ITEM_BYTES {
            return Err(TableError::Validation(
                "Item size to update has exceeded the maximum allowed size".into(),
            ));
        }
        let changed_index_key = index_keys.iter().any(|(n, k, _)| {
            item.get(n).is_some_and(|v| {
                v.type_name() != k.as_str() && old.and_then(|o| o.get(n)) != Some(v)
            })
        });
        if changed_index_key {
            return Err(TableError::Validation(
                "The update expression attempted to update the secondary index key to unsupported type"
                    .into(),
            ));
        }
        Ok(Some(item))
    })?;
    let new = new.unwrap_or_default();
    let old = old.unwrap_or_default();
    // UPDATED_OLD and UPDATED_NEW: the paths the actions wrote, as a projection.
    let touched: Vec<expr::Path> = actions
        .iter()
        .map(|a| expr::action_path(a).clone())
        .collect();
    let pick = |i: &Item| -> Item { expr::project(i, &touched) };
    let attrs = match rv.as_str() {
        "ALL_OLD" => Some(old.clone()),
        "ALL_NEW" => Some(new.clone()),
        "UPDATED_OLD" => Some(pick(&old)),
        "UPDATED_NEW" => Some(pick(&new)),
        _ => None,
    };
    let mut out = json!({});
    if let Some(a) = attrs.filter(|a| !a.is_empty()) {
        out["Attributes"] = item_to_json(&a);
    }
    consumed(
        req,
        &name,
        item_write_units(Some(&old), Some(&new)),
        &mut out,
    );
    Ok(out)
}

fn query(t: &Arc<Tables>, req: &Value, is_query: bool) -> R {
    let name = table_name(req)?;
    // DynamoDB's checks before the table: the legacy filter comes before AttributesToGet
    // in a Query and after it in a Scan.
    let filter_conditions = if is_query {
        checks::expression_params(
            req,
            &[
                "ProjectionExpression",
                "FilterExpression",
                "KeyConditionExpression",
            ],
            &[
                "AttributesToGet",
                "QueryFilter",
                "ConditionalOperator",
                "KeyConditions",
            ],
        )?;
        let filter = legacy::conditions(req, "QueryFilter")?;
        checks::attributes_to_get(req)?;
        checks::start_key(req)?;
        if !["KeyConditions", "KeyConditionExpression"]
            .iter()
            .any(|f| req.get(*f).is_some_and(|v| !v.is_null()))
        {
            return Err(validation(
                "Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.",
            ));
        }
        filter
    } else {
        checks::expression_params(
            req,
            &["ProjectionExpression", "FilterExpression"],
            &["AttributesToGet", "ScanFilter", "ConditionalOperator"],
        )?;
        checks::attributes_to_get(req)?;
        let filter = legacy::conditions(req, "ScanFilter")?;
        checks::start_key(req)?;
        checks::segments(req)?;
        filter
    };
    checks::expression_maps(req)?;
    let m = maps(req)?;
    let mut used = Parsed::new();
    // The expressions in DynamoDB's order: key condition, filter, projection.
    let key_expr = if is_query {
        condition(req, "KeyConditionExpression", &m, &mut used)?
    } else {
        None
    };
    let filter_expr = condition(req, "FilterExpression", &m, &mut used)?;
    let proj = projection_or_attributes(req, &m, &mut used)?;
    used.check_unused(&m)?;
    // The key conditions' own shape, still before the table.
    let key_conds = if is_query {
        let conds = match &key_expr {
            Some(c) => {
                let conds = keycond::from_expression(c)?;
                conds.iter().try_for_each(legacy::check)?;
                conds
            }
            None => legacy::conditions(req, "KeyConditions")?.unwrap_or_default(),
        };
        if conds.len() != 1 && conds.len() != 2 {
            return Err(validation("Conditions can be of length 1 or 2 only"));
        }
        Some(conds)
    } else {
        None
    };
    let state = t.get(&name)?;
    used.key_paths(&state)?;
    let index = match req.get("IndexName").and_then(Value::as_str) {
        Some(n) => Some(
            state
                .indexes
                .iter()
                .find(|i| i.name == n)
                .cloned()
                .ok_or_else(|| {
                    validation(format!("The table does not have the specified index: {n}"))
                })?,
        ),
        None => None,
    };
    if index.as_ref().is_some_and(|ix| !ix.local) && consistent(req) {
        return Err(validation(
            "Consistent reads are not supported on global secondary indexes",
        ));
    }
    let start = match req.get("ExclusiveStartKey") {
        Some(v) if !v.is_null() => Some(item_of(Some(v), "exclusiveStartKey")?),
        _ => None,
    };
    let segment = match (req.get("Segment"), req.get("TotalSegments")) {
        (None, None) => None,
        (Some(s), Some(n)) => {
            let (s, n) = (s.as_u64().unwrap_or(u64::MAX), n.as_u64().unwrap_or(0));
            if n == 0 || n > 1_000_000 || s >= n {
                return Err(validation(
                    "The Segment parameter must be less than TotalSegments, which must be 1 to 1000000",
                ));
            }
            Some((s, n))
        }
        _ => {
            return Err(validation(
                "The TotalSegments parameter is required but was not present in the request when Segment parameter is present",
            ));
        }
    };
    // Segments split DynamoDB's partition hash of the hash key (`table::partition`).
    let in_segment = |item: &Item, (s, n): (u64, u64)| {
        item.get(&state.hash_key.name)
            .and_then(crate::table::partition::bucket)
            .is_some_and(|b| crate::table::partition::segment(b, n) == s)
    };
    let keys = keycond::schema(&state, index.as_ref());
    let all_unsupported = || match &index {
        Some(ix)
            if !ix.local
                && ix.projection != "ALL"
                && req.get("Select").and_then(Value::as_str) == Some("ALL_ATTRIBUTES") =>
        {
            Err(validation(format!(
                "One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index {} because its projection type is not ALL",
                ix.name
            )))
        }
        _ => Ok(()),
    };
    let proj_paths: Vec<&Path> = proj.iter().flatten().collect();
    let mut filter_paths = Vec::new();
    if let Some(f) = &filter_expr {
        keycond::paths(f, &mut filter_paths);
    }
    let key_range = match &key_conds {
        Some(conds) => {
            let range = keycond::query_range(&state, index.as_ref(), conds, start.as_ref())?;
            keycond::scalar_keys(&state, &proj_paths)?;
            match &filter_conditions {
                Some(fc) => {
                    let heads: Vec<&str> = fc.iter().map(|(n, _, _)| n.as_str()).collect();
                    keycond::filter_on_key(keys, &heads, "QueryFilter")?;
                }
                None if filter_expr.is_some() => {
                    let heads = keycond::heads(&filter_paths);
                    keycond::filter_on_key(keys, &heads, "Filter Expression")?;
                }
                None => {}
            }
            all_unsupported()?;
            keycond::scalar_keys(&state, &filter_paths)?;
            Some(range)
        }
        None => {
            keycond::scan_start(&state, index.as_ref(), start.as_ref(), all_unsupported)?;
            if let (Some(k), Some((s, n))) = (&start, segment)
                && !in_segment(k, (s, n))
            {
                return Err(validation(format!(
                    "The provided starting key is invalid: Invalid ExclusiveStartKey. Please use ExclusiveStartKey with correct Segment. TotalSegments: {n} Segment: {s}"
                )));
            }
            keycond::scalar_keys(&state, &proj_paths)?;
            keycond::scalar_keys(&state, &filter_paths)?;
            None
        }
    };
    let filter = filter_expr.or_else(|| {
        filter_conditions
            .as_ref()
            .and_then(|cs| legacy::filter(cs, req))
    });
    let limit = match req.get("Limit") {
        Some(v) => match v.as_u64() {
            Some(n) if n >= 1 => n as usize,
            _ => {
                return Err(validation(format!(
                    "1 validation error detected: Value '{v}' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
                )));
            }
        },
        None => usize::MAX,
    };
    let forward = req
        .get("ScanIndexForward")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let limit = limit.min(100_000);
    let range_cond = key_range.as_ref().and_then(|r| r.range.as_ref());
    let keep = |item: &Item| range_cond.is_none_or(|c| expr::eval(item, c));
    let page = match (&index, &key_range) {
        (Some(ix), kr) => t.index_page(
            &name,
            &ix.name,
            kr.as_ref().map(|r| &r.hash),
            forward,
            start.as_ref(),
            limit,
            &keep,
        )?,
        (None, Some(r)) => t.query(
            &name,
            &r.hash,
            &r.sort,
            forward,
            start.as_ref(),
            limit,
            &keep,
        )?,
        (None, None) => t.scan_page(&name, start.as_ref(), limit)?,
    };
    // What an index that does not project everything holds of an item: its keys, or
    // its keys and the listed attributes.
    let index_view = |i: &Item| -> Option<Item> {
        let ix = index.as_ref().filter(|ix| ix.projection != "ALL")?;
        let mut keep = vec![state.hash_key.name.as_str(), ix.hash_key.name.as_str()];
        keep.extend(state.range_key.as_ref().map(|r| r.name.as_str()));
        keep.extend(ix.range_key.as_ref().map(|r| r.name.as_str()));
        if ix.projection == "INCLUDE" {
            keep.extend(ix.non_key_attributes.iter().map(String::as_str));
        }
        Some(
            i.iter()
                .filter(|(k, _)| keep.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        )
    };
    // A local index asked for ALL_ATTRIBUTES fetches the rest of each item it returns
    // from the table, as DynamoDB does, and the table's read is charged too.
    let fetch = index.as_ref().is_some_and(|ix| {
        ix.local
            && ix.projection != "ALL"
            && req.get("Select").and_then(Value::as_str) == Some("ALL_ATTRIBUTES")
    });
    let read_bytes: usize = page
        .items
        .iter()
        .map(|i| index_view(i).map_or_else(|| value::item_size(i), |v| value::item_size(&v)))
        .sum();
    let units = read_units(read_bytes, consistent(req));
    let mut items = Vec::new();
    for item in &page.items {
        if segment.is_some_and(|sn| !in_segment(item, sn)) {
            continue;
        }
        if filter.as_ref().is_some_and(|c| !expr::eval(item, c)) {
            continue;
        }
        items.push(item);
    }
    let fetched_units = if fetch {
        let bytes: usize = items.iter().map(|i| value::item_size(i)).sum();
        read_units(bytes, consistent(req))
    } else {
        0.0
    };
    let count_only = req.get("Select").and_then(Value::as_str) == Some("COUNT");
    let mut out = json!({"Count": items.len(), "ScannedCount": page.scanned});
    if !count_only {
        out["Items"] = Value::Array(
            items
                .iter()
                .map(|i| match index_view(i) {
                    Some(view) if proj.is_none() && !fetch => item_to_json(&view),
                    _ => project(i, &proj),
                })
                .collect(),
        );
    }
    if let Some(k) = &page.last_evaluated_key {
        out["LastEvaluatedKey"] = item_to_json(k);
    }
    if wants_capacity(req) {
        out["ConsumedCapacity"] = match &index {
            Some(ix) => capacity_json(req, &name, fetched_units, Some((&ix.name, ix.local, units))),
            None => capacity_json(req, &name, units, None),
        };
    }
    Ok(out)
}

fn batch_write(t: &Arc<Tables>, req: &Value) -> R {
    let requests = req.get("RequestItems").and_then(Value::as_object).ok_or_else(|| {
        validation("1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null")
    })?;
    let total: usize = requests
        .values()
        .map(|v| v.as_array().map_or(0, Vec::len))
        .sum();
    if total == 0 || total > 25 {
        return Err(validation(format!(
            "1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Member must have length {} 25",
            if total == 0 {
                "greater than or equal to 1, less than or equal to"
            } else {
                "less than or equal to"
            }
        )));
    }
    // Every request's values are checked before any table is looked up.
    for list in requests.values() {
        let list = list.as_array().map(Vec::as_slice).unwrap_or_default();
        if list.iter().any(|r| {
            r.as_object()
                .is_some_and(|o| o.values().all(Value::is_null))
        }) {
            return Err(validation(
                "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
            ));
        }
        for r in list {
            if let Some(item) = r.get("PutRequest").and_then(|p| p.get("Item")) {
                checks::values(Some(item))?;
                let item = item_of(Some(item), "item").map_err(bare)?;
                if value::item_size(&item) > crate::table::MAX_ITEM_BYTES {
                    return Err(validation(
                        "Item size has exceeded the maximum allowed size",
                    ));
                }
            } else if let Some(key) = r.get("DeleteRequest").and_then(|d| d.get("Key")) {
                checks::values(Some(key))?;
            }
        }
    }
    let mut ops = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let with_capacity = wants_capacity(req);
    let mut capacity: Vec<(String, f64)> = Vec::new();
    for (table, list) in requests {
        let state = t.get(table)?;
        let mut units = 0.0;
        for r in list.as_array().into_iter().flatten() {
            let (op, key) = if let Some(p) = r.get("PutRequest") {
                let item = item_of(p.get("Item"), "item").map_err(bare)?;
                key_has_schema(&state, &item)?;
                let op = state.prepare_put(&item)?;
                if with_capacity {
                    let old = t.get_item(table, &state.key_of(&item))?;
                    units += item_write_units(old.as_ref(), Some(&item));
                }
                (op, state.encode_key(&item)?)
            } else if let Some(d) = r.get("DeleteRequest") {
                let key = item_of(d.get("Key"), "key")?;
                key_only(&state, &key)?;
                if with_capacity {
                    let old = t.get_item(table, &key)?;
                    units += item_write_units(old.as_ref(), None);
                }
                let k = state.encode_key(&key)?;
                (
                    crate::storage::WriteOp::DeleteItem {
                        table_id: state.table_id,
                        key: k.clone(),
                    },
                    k,
                )
            } else {
                return Err(validation(
                    "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes",
                ));
            };
            if !seen.insert((state.table_id, key)) {
                return Err(validation("Provided list of item keys contains duplicates"));
            }
            ops.push(op);
        }
        capacity.push((table.clone(), units));
    }
    t.commit(&ops, SyncMode::SyncData)?;
    let mut out = json!({"UnprocessedItems": {}});
    if with_capacity {
        out["ConsumedCapacity"] = capacity
            .iter()
            .map(|(table, units)| capacity_json(req, table, *units, None))
            .collect();
    }
    Ok(out)
}

/// Item bytes one BatchGetItem answers at most (DynamoDB: about 1 MB, the item that
/// crosses it included).
const BATCH_GET_BYTES: usize = 1024 * 1024 + crate::table::MAX_ITEM_BYTES - 3;

fn batch_get(t: &Arc<Tables>, req: &Value) -> R {
    let requests = req.get("RequestItems").and_then(Value::as_object).ok_or_else(|| {
        validation("1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must not be null")
    })?;
    let total: usize = requests
        .values()
        .map(|v| v["Keys"].as_array().map_or(0, Vec::len))
        .sum();
    // Every table's request is checked, in DynamoDB's order, before any table is read.
    let mut counted = 0;
    for spec in requests.values() {
        checks::expression_params(spec, &["ProjectionExpression"], &["AttributesToGet"])?;
        checks::attributes_to_get(spec)?;
        checks::expression_maps(spec)?;
        let m = maps(spec)?;
        let mut used = Parsed::new();
        projection_or_attributes(spec, &m, &mut used)?;
        used.check_unused(&m)?;
        let mut seen = std::collections::HashSet::new();
        for k in spec["Keys"].as_array().into_iter().flatten() {
            checks::values(Some(k))?;
            if !seen.insert(checks::canonical(k)) {
                return Err(validation("Provided list of item keys contains duplicates"));
            }
            counted += 1;
            if counted > 100 {
                return Err(validation(
                    "Too many items requested for the BatchGetItem call",
                ));
            }
        }
    }
    if total == 0 || total > 100 {
        return Err(validation(
            "Too many items requested for the BatchGetItem call",
        ));
    }
    let mut responses = serde_json::Map::new();
    let mut unprocessed_keys = serde_json::Map::new();
    let mut total_size = 0;
    let mut capacity: Vec<(String, f64)> = Vec::new();
    for (table, spec) in requests {
        let state = t.get(table)?;
        checks::expression_params(spec, &["ProjectionExpression"], &["AttributesToGet"])?;
        let m = maps(spec)?;
        let mut used = Parsed::new();
        let proj = projection_or_attributes(spec, &m, &mut used)?;
        used.check_unused(&m)?;
        let mut found = Vec::new();
        let strong = consistent(spec);
        let mut units = 0.0;
        let mut unprocessed = Vec::new();
        for k in spec["Keys"].as_array().into_iter().flatten() {
            let key = item_of(Some(k), "keys")?;
            key_only(&state, &key)?;
            let item = t.get_item(table, &key)?;
            if let Some(i) = &item {
                // A response holds about 1 MB (plus one item): the rest are left
                // unprocessed for the caller to ask again, each charged one unit.
                let size = value::item_size(i);
                if total_size + size > BATCH_GET_BYTES {
                    unprocessed.push(k.clone());
                    units += 1.0;
                    continue;
                }
                total_size += size;
            }
            units += item_read_units(item.as_ref(), strong);
            if let Some(item) = item {
                found.push(project(&item, &proj));
            }
        }
        if !unprocessed.is_empty() {
            let mut again = serde_json::Map::new();
            for f in [
                "ConsistentRead",
                "ProjectionExpression",
                "ExpressionAttributeNames",
                "AttributesToGet",
            ] {
                if let Some(v) = spec.get(f) {
                    again.insert(f.to_owned(), v.clone());
                }
            }
            again.insert("Keys".to_owned(), Value::Array(unprocessed));
            unprocessed_keys.insert(table.clone(), Value::Object(again));
        }
        responses.insert(table.clone(), Value::Array(found));
        capacity.push((table.clone(), units));
    }
    let mut out = json!({"Responses": responses, "UnprocessedKeys": unprocessed_keys});
    if wants_capacity(req) {
        out["ConsumedCapacity"] = capacity
            .iter()
            .map(|(table, units)| capacity_json(req, table, *units, None))
            .collect();
    }
    Ok(out)
}

fn transact_write(t: &Arc<Tables>, req: &Value) -> R {
    let items = req.get("TransactItems").and_then(Value::as_array).ok_or_else(|| {
        validation("1 validation error detected: Value null at 'transactItems' failed to satisfy constraint: Member must not be null")
    })?;
    if items.is_empty() || items.len() > 100 {
        return Err(validation(format!(
            "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length {} 100",
            if items.is_empty() {
                "greater than or equal to 1, less than or equal to"
            } else {
                "less than or equal to"
            }
        )));
    }
    let mut steps = Vec::with_capacity(items.len());
    for entry in items {
        let (kind, spec) = ["Put", "Update", "Delete", "ConditionCheck"]
            .iter()
            .find_map(|k| entry.get(*k).map(|s| (*k, s)))
            .ok_or_else(|| {
                validation("TransactItems can only contain one of Check, Put, Update or Delete")
            })?;
        let table = table_name(spec)?;
        let state = t.get(&table)?;
        let m = maps(spec)?;
        let mut used = Parsed::new();
        let cond = condition(spec, "ConditionExpression", &m, &mut used)?;
        let keep_old = spec
            .get("ReturnValuesOnConditionCheckFailure")
            .and_then(Value::as_str)
            == Some("ALL_OLD");
        let fail = move |old: Option<&Item>| TableError::ConditionalCheckFailed {
            old: if keep_old {
                old.cloned().map(Box::new)
            } else {
                None
            },
        };
        let step = match kind {
            "Put" => {
                let item = item_of(spec.get("Item"), "item").map_err(bare)?;
                used.check_unused(&m)?;
                crate::table::TxStep {
                    table,
                    key: state.key_of(&item),
                    decide: Box::new(move |old| {
                        if cond
                            .as_ref()
                            .is_some_and(|c| !expr::eval(old.unwrap_or(&Item::new()), c))
                        {
                            return Err(fail(old));
                        }
                        Ok(crate::table::TxOutcome::Put(item))
                    }),
                }
            }
            "Update" => {
                let key = item_of(spec.get("Key"), "key")?;
                key_only(&state, &key)?;
                let text = spec
                    .get("UpdateExpression")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let (actions, p) =
                    Parser::new("UpdateExpression", text, &m.names, &m.values)?.update()?;
                used.absorb(&p);
                used.check_unused(&m)?;
                let base = key.clone();
                crate::table::TxStep {
                    table,
                    key,
                    decide: Box::new(move |old| {
                        if cond
                            .as_ref()
                            .is_some_and(|c| !expr::eval(old.unwrap_or(&Item::new()), c))
                        {
                            return Err(fail(old));
                        }
                        let mut item = old.cloned().unwrap_or(base);
                        expr::apply(&mut item, &actions)
                            .map_err(|e| TableError::Validation(e.0))?;
                        if value::item_depth(&item) > value::MAX_NESTING_LEVELS {
                            return Err(TableError::Validation(
                                "Nesting Levels have exceeded supported limits".into(),
                            ));
                        }
                        Ok(crate::table::TxOutcome::Put(item))
                    }),
                }
            }
            _ => {
                let key = item_of(spec.get("Key"), "key")?;
                key_only(&state, &key)?;
                used.check_unused(&m)?;
                let delete = kind == "Delete";
                crate::table::TxStep {
                    table,
                    key,
                    decide: Box::new(move |old| {
                        if cond
                            .as_ref()
                            .is_some_and(|c| !expr::eval(old.unwrap_or(&Item::new()), c))
                        {
                            return Err(fail(old));
                        }
                        Ok(if delete {
                            crate::table::TxOutcome::Delete
                        } else {
                            crate::table::TxOutcome::Keep
                        })
                    }),
                }
            }
        };
        steps.push(step);
    }
    match t.transact(steps) {
        Ok(()) => Ok(json!({})),
        Err(crate::table::TxError::Invalid(e)) => Err(e.into()),
        Err(crate::table::TxError::Canceled(reasons)) => Err(DynamoError::TransactionCanceled(
            reasons
                .into_iter()
                .map(|r| {
                    r.map(|e| match e {
                        TableError::ConditionalCheckFailed { old } => (
                            "ConditionalCheckFailed".to_owned(),
                            "The conditional request failed".to_owned(),
                            old.map(|o| item_to_json(&o)),
                        ),
                        other => ("ValidationError".to_owned(), other.to_string(), None),
                    })
                })
                .collect(),
        )),
    }
}

fn transact_get(t: &Arc<Tables>, req: &Value) -> R {
    let items = req.get("TransactItems").and_then(Value::as_array).ok_or_else(|| {
        validation("1 validation error detected: Value null at 'transactItems' failed to satisfy constraint: Member must not be null")
    })?;
    if items.is_empty() || items.len() > 100 {
        return Err(validation(
            "1 validation error detected: Value at 'transactItems' failed to satisfy constraint: Member must have length less than or equal to 100",
        ));
    }
    let mut out = Vec::with_capacity(items.len());
    for entry in items {
        let spec = entry
            .get("Get")
            .ok_or_else(|| validation("TransactGetItems can only contain Get"))?;
        let table = table_name(spec)?;
        let key = item_of(spec.get("Key"), "key")?;
        key_only(&*t.get(&table)?, &key)?;
        let m = maps(spec)?;
        let mut used = Parsed::new();
        let proj = projection(spec, &m, &mut used)?;
        used.check_unused(&m)?;
        out.push(match t.get_item(&table, &key)? {
            Some(item) => json!({"Item": project(&item, &proj)}),
            None => json!({}),
        });
    }
    Ok(json!({"Responses": out}))
}
