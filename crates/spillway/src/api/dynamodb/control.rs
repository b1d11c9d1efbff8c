//! The DynamoDB control plane: tables (create, describe, update, delete), Time to
//! Live, tags, and the account-level answers (limits, endpoints, backups).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Value, json};

use super::DynamoError;
use super::actions::{table_name, validation};
use crate::storage::{KeyAttributeEntry, Throughput};
use crate::stream::now_ms;
use crate::table::{TableError, TableState, Tables};

type R = Result<Value, DynamoError>;

/// DescribeTable, DeleteTable and the other table-level actions name the table they
/// did not find.
fn named_not_found(e: TableError) -> DynamoError {
    match e {
        TableError::TableNotFound(n) => DynamoError::TableNotFound(n),
        e => e.into(),
    }
}

/// A ProvisionedThroughput member, read as given (None when absent).
fn throughput_of(v: Option<&Value>) -> Option<Throughput> {
    let v = v?;
    Some(Throughput {
        read: v
            .get("ReadCapacityUnits")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        write: v
            .get("WriteCapacityUnits")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        last_increase_ms: None,
        last_decrease_ms: None,
        decreases_today: 0,
    })
}

fn throughput_json(tp: Option<&Throughput>) -> Value {
    let mut v = json!({
        "ReadCapacityUnits": tp.map_or(0, |t| t.read),
        "WriteCapacityUnits": tp.map_or(0, |t| t.write),
        "NumberOfDecreasesToday": tp.map_or(0, |t| t.decreases_today),
    });
    if let Some(ms) = tp.and_then(|t| t.last_increase_ms) {
        v["LastIncreaseDateTime"] = json!(ms as f64 / 1000.0);
    }
    if let Some(ms) = tp.and_then(|t| t.last_decrease_ms) {
        v["LastDecreaseDateTime"] = json!(ms as f64 / 1000.0);
    }
    v
}

/// A table's description as DynamoDB gives it; `throughput` overrides the table's own
/// (UpdateTable answers with the throughput still in force).
fn description(
    tables: &Tables,
    t: &TableState,
    counts: bool,
    throughput: Option<Option<&Throughput>>,
) -> Result<Value, DynamoError> {
    let (count, bytes) = if counts {
        tables.stats(&t.name).map_err(named_not_found)?
    } else {
        (0, 0)
    };
    let status = t.status.table();
    let mut ks = vec![json!({"AttributeName": t.hash_key.name, "KeyType": "HASH"})];
    if let Some(r) = &t.range_key {
        ks.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
    }
    // Every attribute a key of the table or an index names, table keys first.
    let mut defs: Vec<(&str, &str)> = Vec::new();
    let keys = std::iter::once(&t.hash_key)
        .chain(t.range_key.as_ref())
        .chain(
            t.indexes
                .iter()
                .flat_map(|i| std::iter::once(&i.hash_key).chain(i.range_key.as_ref())),
        );
    for k in keys {
        if !defs.iter().any(|(n, _)| *n == k.name) {
            defs.push((&k.name, k.kind.as_str()));
        }
    }
    let table_id = t.entry.uuid.clone().unwrap_or_else(|| {
        uuid::Uuid::new_v5(&uuid::Uuid::NAMESPACE_URL, t.arn.as_bytes()).to_string()
    });
    let tp = throughput.unwrap_or(t.entry.throughput.as_ref());
    let mut d = json!({
        "TableName": t.name,
        "TableArn": t.arn,
        "TableId": table_id,
        "TableStatus": status,
        "KeySchema": ks,
        "AttributeDefinitions": defs
            .iter()
            .map(|(n, k)| json!({"AttributeName": n, "AttributeType": k}))
            .collect::<Vec<_>>(),
        "CreationDateTime": t.created_ms as f64 / 1000.0,
        "ItemCount": count,
        "TableSizeBytes": bytes,
        "ProvisionedThroughput": throughput_json(tp),
    });
    if t.entry.throughput.is_none() {
        d["BillingModeSummary"] = json!({"BillingMode": "PAY_PER_REQUEST"});
        d["TableThroughputModeSummary"] = json!({"TableThroughputMode": "PAY_PER_REQUEST"});
    }
    let index_json = |local: bool| -> Vec<Value> {
        t.indexes
            .iter()
            .filter(|i| i.local == local)
            .map(|i| {
                let mut ks = vec![json!({"AttributeName": i.hash_key.name, "KeyType": "HASH"})];
                if let Some(r) = &i.range_key {
                    ks.push(json!({"AttributeName": r.name, "KeyType": "RANGE"}));
                }
                let mut projection = json!({"ProjectionType": i.projection});
                if !i.non_key_attributes.is_empty() {
                    projection["NonKeyAttributes"] = json!(i.non_key_attributes);
                }
                let mut v = json!({
                    "IndexName": i.name,
                    "KeySchema": ks,
                    "Projection": projection,
                    "IndexSizeBytes": 0,
                    "ItemCount": 0,
                    "IndexArn": format!("{}/index/{}", t.arn, i.name),
                });
                if !local {
                    v["IndexStatus"] = json!(if status == "CREATING" {
                        "CREATING"
                    } else {
                        t.status.index_status(&i.name)
                    });
                    let tp = t
                        .entry
                        .indexes
                        .iter()
                        .find(|e| e.name == i.name)
                        .and_then(|e| e.throughput.as_ref());
                    v["ProvisionedThroughput"] = throughput_json(tp);
                }
                v
            })
            .collect()
    };
    let (g, l) = (index_json(false), index_json(true));
    if !g.is_empty() {
        d["GlobalSecondaryIndexes"] = Value::Array(g);
    }
    if !l.is_empty() {
        d["LocalSecondaryIndexes"] = Value::Array(l);
    }
    Ok(d)
}

/// GlobalSecondaryIndexes and LocalSecondaryIndexes of a CreateTable.
fn index_entries(
    req: &Value,
    defs: &HashMap<String, String>,
    table_hash: &KeyAttributeEntry,
) -> Result<Vec<crate::storage::IndexEntry>, DynamoError> {
    let mut indexes = Vec::new();
    for (field, local) in [
        ("GlobalSecondaryIndexes", false),
        ("LocalSecondaryIndexes", true),
    ] {
        for ix in req
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let iname = ix["IndexName"]
                .as_str()
                .ok_or_else(|| validation(format!("{field}: IndexName is required")))?;
            let (mut ih, mut ir) = (None, None);
            for (n, k) in ix["KeySchema"].as_array().into_iter().flatten().enumerate() {
                let attr = k["AttributeName"].as_str().unwrap_or_default().to_owned();
                let kind = defs.get(&attr).cloned().ok_or_else(|| {
                    validation(format!("One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [{attr}]"))
                })?;
                let entry = KeyAttributeEntry { name: attr, kind };
                place_key(n, k["KeyType"].as_str(), entry, &mut ih, &mut ir)?;
            }
            let ih = ih.ok_or_else(|| {
                validation(format!("{field}: the index {iname} needs a HASH key"))
            })?;
            if local && &ih != table_hash {
                return Err(validation(format!(
                    "One or more parameter values were invalid: Index KeySchema does not have the same leading hash key as table KeySchema for index: {iname}"
                )));
            }
            indexes.push(crate::storage::IndexEntry {
                name: iname.to_owned(),
                hash_key: ih,
                range_key: ir,
                local,
                projection: ix["Projection"]["ProjectionType"]
                    .as_str()
                    .unwrap_or("ALL")
                    .to_owned(),
                non_key_attributes: ix["Projection"]["NonKeyAttributes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect(),
                throughput: if local {
                    None
                } else {
                    throughput_of(ix.get("ProvisionedThroughput"))
                },
            });
        }
    }
    Ok(indexes)
}

pub fn create_table(t: &Arc<Tables>, req: &Value) -> R {
    let name = table_name(req)?;
    super::checks::create_table(req)?;
    let schema = req.get("KeySchema").and_then(Value::as_array).ok_or_else(|| {
        validation("1 validation error detected: Value null at 'keySchema' failed to satisfy constraint: Member must not be null")
    })?;
    let defs: HashMap<String, String> = req
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .ok_or_else(|| validation("1 validation error detected: Value null at 'attributeDefinitions' failed to satisfy constraint: Member must not be null"))?
        .iter()
        .filter_map(|d| Some((d["AttributeName"].as_str()?.to_owned(), d["AttributeType"].as_str()?.to_owned())))
        .collect();
    let names: Vec<&str> = schema
        .iter()
        .map(|k| k["AttributeName"].as_str().unwrap_or_default())
        .collect();
    if names.iter().any(|n| !defs.contains_key(*n)) {
        return Err(validation(
            "Invalid KeySchema: Some index key attribute have no definition",
        ));
    }
    if names.len() == 2 && names[0] == names[1] {
        return Err(validation(
            "Both the Hash Key and the Range Key element in the KeySchema have the same name",
        ));
    }
    let mut hash = None;
    let mut range = None;
    for (n, k) in schema.iter().enumerate() {
        let attr = k["AttributeName"].as_str().unwrap_or_default().to_owned();
        let kind = defs.get(&attr).cloned().unwrap_or_default();
        if !matches!(kind.as_str(), "S" | "N" | "B") {
            return Err(validation(format!(
                "Member must satisfy enum value set: [B, N, S] ({attr})"
            )));
        }
        let entry = KeyAttributeEntry { name: attr, kind };
        place_key(n, k["KeyType"].as_str(), entry, &mut hash, &mut range)?;
    }
    let hash = hash.ok_or_else(|| {
        validation("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
    })?;
    let indexes = index_entries(req, &defs, &hash)?;
    let billing = req.get("BillingMode").and_then(Value::as_str);
    let throughput = if billing == Some("PAY_PER_REQUEST") {
        None
    } else {
        throughput_of(req.get("ProvisionedThroughput"))
    };
    let tags = tag_list(req.get("Tags"));
    let state = t.create_table(crate::table::NewTable {
        name,
        hash_key: hash,
        range_key: range,
        indexes,
        throughput,
        tags,
    })?;
    Ok(json!({"TableDescription": description(t, &state, false, None)?}))
}

pub fn delete_table(t: &Arc<Tables>, req: &Value) -> R {
    let name = table_name(req)?;
    let state = t.delete_table(&name).map_err(named_not_found)?;
    let mut desc = description(t, &state, false, None)?;
    desc["TableStatus"] = json!("DELETING");
    // A deleting table's description no longer lists its global indexes.
    if let Value::Object(m) = &mut desc {
        m.remove("GlobalSecondaryIndexes");
    }
    Ok(json!({"TableDescription": desc}))
}

pub fn describe_table(t: &Arc<Tables>, req: &Value) -> R {
    let name = table_name(req)?;
    let state = t.describe(&name).map_err(named_not_found)?;
    Ok(json!({"Table": description(t, &state, true, None)?}))
}

/// A new throughput over the old one: change times and decreases as DynamoDB counts them.
fn changed_throughput(old: Option<&Throughput>, mut new: Throughput) -> Throughput {
    let now = now_ms();
    if let Some(o) = old {
        new.last_increase_ms = o.last_increase_ms;
        new.last_decrease_ms = o.last_decrease_ms;
        new.decreases_today = o.decreases_today;
        if new.read > o.read || new.write > o.write {
            new.last_increase_ms = Some(now);
        }
        if new.read < o.read || new.write < o.write {
            new.last_decrease_ms = Some(now);
            new.decreases_today += 1;
        }
    } else {
        new.last_increase_ms = Some(now);
    }
    new
}

pub fn update_table(t: &Arc<Tables>, req: &Value) -> R {
    let name = table_name(req)?;
    let state = t.describe(&name).map_err(named_not_found)?;
    if state.status.table() != "ACTIVE" {
        return Err(DynamoError::ResourceInUse(format!(
            "Attempt to change a resource which is still in use: Table is being updated: {name}"
        )));
    }
    let billing = req.get("BillingMode").and_then(Value::as_str);
    let new_tp = throughput_of(req.get("ProvisionedThroughput"));
    if billing == Some("PAY_PER_REQUEST") && new_tp.is_some() {
        return Err(validation(
            "One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST",
        ));
    }
    if let (Some(n), Some(o)) = (&new_tp, &state.entry.throughput)
        && n.read == o.read
        && n.write == o.write
        && req.get("GlobalSecondaryIndexUpdates").is_none()
    {
        return Err(validation(format!(
            "The provisioned throughput for the table will not change. The requested value equals the current value. Current ReadCapacityUnits provisioned for the table: {}. Requested ReadCapacityUnits: {}. Current WriteCapacityUnits provisioned for the table: {}. Requested WriteCapacityUnits: {}. Refer to the Amazon DynamoDB Developer Guide for current limits and how to request higher limits.",
            o.read, n.read, o.write, n.write
        )));
    }
    // Global index changes: Create (with its key attributes' definitions), Update
    // (throughput), Delete.
    let defs: HashMap<String, String> = req
        .get("AttributeDefinitions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|d| {
            Some((
                d["AttributeName"].as_str()?.to_owned(),
                d["AttributeType"].as_str()?.to_owned(),
            ))
        })
        .chain(
            std::iter::once(&state.hash_key)
                .chain(state.range_key.as_ref())
                .chain(
                    state
                        .indexes
                        .iter()
                        .flat_map(|i| std::iter::once(&i.hash_key).chain(i.range_key.as_ref())),
                )
                .map(|k| (k.name.clone(), k.kind.as_str().to_owned())),
        )
        .collect();
    let table_hash = KeyAttributeEntry {
        name: state.hash_key.name.clone(),
        kind: state.hash_key.kind.as_str().to_owned(),
    };
    let mut creates = Vec::new();
    let mut deletes = Vec::new();
    let mut updates = Vec::new();
    for u in req
        .get("GlobalSecondaryIndexUpdates")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(c) = u.get("Create") {
            let spec = json!({ "GlobalSecondaryIndexes": [c] });
            let mut e = index_entries(&spec, &defs, &table_hash)?;
            let e = e
                .pop()
                .ok_or_else(|| validation("Invalid GlobalSecondaryIndexUpdates"))?;
            if state.indexes.iter().any(|i| i.name == e.name) {
                return Err(validation(format!(
                    "One or more parameter values were invalid: Index already exists: {}",
                    e.name
                )));
            }
            creates.push(e);
        } else if let Some(d) = u.get("Delete") {
            let n = d["IndexName"].as_str().unwrap_or_default().to_owned();
            if !state.indexes.iter().any(|i| i.name == n && !i.local) {
                return Err(DynamoError::ResourceNotFound);
            }
            deletes.push(n);
        } else if let Some(up) = u.get("Update") {
            let n = up["IndexName"].as_str().unwrap_or_default().to_owned();
            if !state.indexes.iter().any(|i| i.name == n && !i.local) {
                return Err(DynamoError::ResourceNotFound);
            }
            updates.push((n, throughput_of(up.get("ProvisionedThroughput"))));
        }
    }
    let old_tp = state.entry.throughput.clone();
    let created: Vec<String> = creates.iter().map(|e| e.name.clone()).collect();
    let new_state = t.update_entry(&name, |e| {
        match billing {
            Some("PAY_PER_REQUEST") => {
                e.throughput = None;
                for i in &mut e.indexes {
                    i.throughput = None;
                }
            }
            _ => {
                if let Some(n) = new_tp.clone() {
                    e.throughput = Some(changed_throughput(e.throughput.as_ref(), n));
                }
            }
        }
        for (n, tp) in &updates {
            if let Some(i) = e.indexes.iter_mut().find(|i| &i.name == n)
                && let Some(tp) = tp.clone()
            {
                i.throughput = Some(changed_throughput(i.throughput.as_ref(), tp));
            }
        }
        e.indexes.extend(creates);
        Ok(())
    })?;
    let updating = new_tp.is_some() || billing.is_some() || !updates.is_empty();
    if updating || !created.is_empty() || !deletes.is_empty() {
        let change = match (&new_tp, &old_tp) {
            (Some(n), Some(o)) => (
                n.read > o.read || n.write > o.write,
                n.read < o.read || n.write < o.write,
            ),
            _ => (false, false),
        };
        t.start_update(&new_state, created, deletes, change);
    }
    // The answer shows the throughput still in force, with the change's times.
    let mut shown = new_state.entry.throughput.clone();
    if let (Some(s), Some(o)) = (&mut shown, &old_tp) {
        s.read = o.read;
        s.write = o.write;
        s.decreases_today = o.decreases_today;
    }
    let mut desc = description(t, &new_state, false, Some(shown.as_ref()))?;
    if let Some(Value::Array(g)) = desc.get_mut("GlobalSecondaryIndexes")
        && updating
    {
        for i in g {
            if i["IndexStatus"] == "ACTIVE" {
                i["IndexStatus"] = json!("UPDATING");
            }
        }
    }
    Ok(json!({"TableDescription": desc}))
}

pub fn describe_ttl(t: &Arc<Tables>, req: &Value) -> R {
    let name = table_name(req)?;
    let state = t.describe(&name).map_err(named_not_found)?;
    Ok(
        json!({"TimeToLiveDescription": match &state.entry.ttl_attribute {
            Some(a) => json!({"TimeToLiveStatus": "ENABLED", "AttributeName": a}),
            None => json!({"TimeToLiveStatus": "DISABLED"}),
        }}),
    )
}

pub fn update_ttl(t: &Arc<Tables>, req: &Value) -> R {
    let name = table_name(req)?;
    let spec = req.get("TimeToLiveSpecification").ok_or_else(|| {
        validation("1 validation error detected: Value null at 'timeToLiveSpecification' failed to satisfy constraint: Member must not be null")
    })?;
    let enabled = spec.get("Enabled").and_then(Value::as_bool).ok_or_else(|| {
        validation("1 validation error detected: Value null at 'timeToLiveSpecification.enabled' failed to satisfy constraint: Member must not be null")
    })?;
    let attr = spec
        .get("AttributeName")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| {
            validation("1 validation error detected: Value null at 'timeToLiveSpecification.attributeName' failed to satisfy constraint: Member must not be null")
        })?
        .to_owned();
    let state = t.describe(&name).map_err(named_not_found)?;
    match (&state.entry.ttl_attribute, enabled) {
        (Some(_), true) => {
            return Err(validation("TimeToLive is already enabled"));
        }
        (None, false) => {
            return Err(validation("TimeToLive is already disabled"));
        }
        _ => {}
    }
    t.update_entry(&name, |e| {
        e.ttl_attribute = enabled.then(|| attr.clone());
        Ok(())
    })
    .map_err(named_not_found)?;
    Ok(json!({"TimeToLiveSpecification": {"AttributeName": attr, "Enabled": enabled}}))
}

fn tag_list(v: Option<&Value>) -> Vec<(String, String)> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| {
            Some((
                t.get("Key")?.as_str()?.to_owned(),
                t.get("Value")?.as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// A missing ResourceArn, or one not shaped like an ARN with a resource path, as the tag
/// actions refuse it before any constraint of the model; other actions pass.
pub fn arn_shape(t: &Tables, action: &str, req: &Value) -> Result<(), DynamoError> {
    if !matches!(
        action,
        "TagResource" | "UntagResource" | "ListTagsOfResource"
    ) {
        return Ok(());
    }
    let arn = match req.get("ResourceArn") {
        None | Some(Value::Null) => return Err(validation("Invalid TableArn")),
        Some(v) => v.as_str().unwrap_or_default(),
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() < 6 || !parts[5].contains('/') || parts.iter().any(|p| p.is_empty()) {
        return Err(DynamoError::AccessDenied(format!(
            "User: arn:aws:iam::{}:root is not authorized to perform: dynamodb:{action} on resource: {}",
            t.account_id(),
            if arn.is_empty() { "*" } else { arn }
        )));
    }
    Ok(())
}

/// The table a ResourceArn names, with AWS's refusals for other ARNs.
fn arn_table(
    t: &Tables,
    req: &Value,
    action: &str,
    check: impl FnOnce() -> Result<(), DynamoError>,
) -> Result<String, DynamoError> {
    arn_shape(t, action, req)?;
    let arn = req["ResourceArn"].as_str().unwrap_or_default();
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    check()?;
    let name = parts[5].strip_prefix("table/").unwrap_or_default();
    let valid = parts[0] == "arn"
        && parts[1] == "aws"
        && parts[2] == "dynamodb"
        && parts[4].bytes().all(|b| b.is_ascii_digit())
        && name.len() >= 3
        && !name.contains('/');
    if !valid {
        return Err(validation(format!(
            "Invalid TableArn: Invalid ResourceArn provided as input {arn}"
        )));
    }
    Ok(name.to_owned())
}

fn arn_not_found(req: &Value) -> impl Fn(TableError) -> DynamoError + '_ {
    move |e| match e {
        TableError::TableNotFound(_) => DynamoError::NotFound(format!(
            "Requested resource not found: ResourcArn: {} not found",
            req["ResourceArn"].as_str().unwrap_or_default()
        )),
        e => e.into(),
    }
}

pub fn tag_resource(t: &Arc<Tables>, req: &Value) -> R {
    let name = arn_table(t, req, "TagResource", || match req.get("Tags") {
        None | Some(Value::Null) => Err(validation(
            "1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null",
        )),
        _ => Ok(()),
    })?;
    let tags = tag_list(req.get("Tags"));
    if tags.is_empty() {
        return Err(validation("Atleast one Tag needs to be provided as Input."));
    }
    t.update_entry(&name, |e| {
        for (k, v) in tags {
            match e.tags.iter_mut().find(|(x, _)| *x == k) {
                Some(slot) => slot.1 = v,
                None => e.tags.push((k, v)),
            }
        }
        Ok(())
    })
    .map_err(arn_not_found(req))?;
    Ok(Value::Null)
}

pub fn untag_resource(t: &Arc<Tables>, req: &Value) -> R {
    let name = arn_table(t, req, "UntagResource", || match req.get("TagKeys") {
        None | Some(Value::Null) => Err(validation(
            "1 validation error detected: Value null at 'tagKeys' failed to satisfy constraint: Member must not be null",
        )),
        _ => Ok(()),
    })?;
    let keys: Vec<String> = req["TagKeys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| k.as_str().map(str::to_owned))
        .collect();
    if keys.is_empty() {
        return Err(validation(
            "Atleast one Tag Key needs to be provided as Input.",
        ));
    }
    t.update_entry(&name, |e| {
        e.tags.retain(|(k, _)| !keys.contains(k));
        Ok(())
    })
    .map_err(DynamoError::from)?;
    Ok(Value::Null)
}

pub fn list_tags(t: &Arc<Tables>, req: &Value) -> R {
    let name = arn_table(t, req, "ListTagsOfResource", || Ok(()))?;
    let state = t.describe(&name).map_err(arn_not_found(req))?;
    Ok(json!({"Tags": state
        .entry
        .tags
        .iter()
        .map(|(k, v)| json!({"Key": k, "Value": v}))
        .collect::<Vec<_>>()}))
}

pub fn describe_backups(t: &Arc<Tables>, req: &Value) -> R {
    let name = table_name(req)?;
    t.describe(&name).map_err(|e| match e {
        TableError::TableNotFound(n) => {
            DynamoError::TableNotFoundException(format!("Table not found: {n}"))
        }
        e => e.into(),
    })?;
    Ok(json!({"ContinuousBackupsDescription": {
        "ContinuousBackupsStatus": "ENABLED",
        "PointInTimeRecoveryDescription": {"PointInTimeRecoveryStatus": "DISABLED"},
    }}))
}

/// DynamoDB's default account quotas.
pub fn describe_limits(_t: &Arc<Tables>) -> Value {
    json!({
        "AccountMaxReadCapacityUnits": 80000,
        "AccountMaxWriteCapacityUnits": 80000,
        "TableMaxReadCapacityUnits": 40000,
        "TableMaxWriteCapacityUnits": 40000,
    })
}

/// The one endpoint: this server, for the configured region.
pub fn describe_endpoints(t: &Arc<Tables>) -> Value {
    json!({"Endpoints": [{
        "Address": format!("dynamodb.{}.amazonaws.com", t.region()),
        "CachePeriodInMinutes": 1440,
    }]})
}

/// Puts the `n`th KeySchemaElement where DynamoDB requires it: HASH first, RANGE second
/// (a table's key schema and an index's alike).
fn place_key(
    n: usize,
    key_type: Option<&str>,
    entry: KeyAttributeEntry,
    hash: &mut Option<KeyAttributeEntry>,
    range: &mut Option<KeyAttributeEntry>,
) -> Result<(), DynamoError> {
    match (n, key_type) {
        (0, Some("HASH")) => *hash = Some(entry),
        (1, Some("RANGE")) => *range = Some(entry),
        (0, _) => {
            return Err(validation(
                "Invalid KeySchema: The first KeySchemaElement is not a HASH key type",
            ));
        }
        _ => {
            return Err(validation(
                "Invalid KeySchema: The second KeySchemaElement is not a RANGE key type",
            ));
        }
    }
    Ok(())
}
