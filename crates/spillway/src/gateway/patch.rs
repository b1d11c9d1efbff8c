//! API Gateway's `patchOperations`: `{op, path, value}` applied to a document. Paths are
//! JSON-pointer-like (`/description`, `/variables/x`, `/requestTemplates/application~1json`,
//! `~1` standing for `/`), values always strings on the wire (`"true"`, `"29000"`), turned
//! into the member's own type here.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::GatewayError;

/// One patch operation as clients send it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct PatchOp {
    pub op: String,
    pub path: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
}

/// What a kind of document allows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules {
    /// Members no patch may touch (ids, creation dates).
    pub fixed: &'static [&'static str],
    /// Maps whose values are booleans (a method's `requestParameters`).
    pub bool_maps: &'static [&'static str],
}

/// Members that hold booleans or integers, wherever they appear.
const BOOL_MEMBERS: [&str; 6] = [
    "apiKeyRequired",
    "tracingEnabled",
    "cacheClusterEnabled",
    "disableExecuteApiEndpoint",
    "metricsEnabled",
    "dataTraceEnabled",
];
const INT_MEMBERS: [&str; 2] = ["timeoutInMillis", "minimumCompressionSize"];

/// The `patchOperations` of a request body (none when absent).
pub fn operations(body: &Value) -> Result<Vec<PatchOp>, GatewayError> {
    match body.get("patchOperations") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| GatewayError::BadRequest(format!("Invalid patch operations: {e}"))),
    }
}

/// A path's segments, `~1` and `~0` decoded.
pub fn segments(path: &str) -> Result<Vec<String>, GatewayError> {
    let rest = path
        .strip_prefix('/')
        .filter(|r| !r.is_empty())
        .ok_or_else(|| GatewayError::BadRequest(format!("Invalid patch path {path}")))?;
    Ok(rest
        .split('/')
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect())
}

/// Applies `ops` to `target`, all or nothing.
pub fn apply<T: Serialize + DeserializeOwned>(
    target: &mut T,
    ops: &[PatchOp],
    rules: Rules,
) -> Result<(), GatewayError> {
    let mut doc = serde_json::to_value(&*target)
        .map_err(|e| GatewayError::BadRequest(format!("Invalid patch target: {e}")))?;
    for op in ops {
        apply_one(&mut doc, op, rules)?;
    }
    *target = serde_json::from_value(doc)
        .map_err(|e| GatewayError::BadRequest(format!("Invalid patch operation specified: {e}")))?;
    Ok(())
}

fn apply_one(doc: &mut Value, op: &PatchOp, rules: Rules) -> Result<(), GatewayError> {
    let segs = segments(&op.path)?;
    if rules.fixed.contains(&segs[0].as_str()) {
        return Err(GatewayError::BadRequest(format!(
            "Invalid patch path '{}' specified for op '{}'. Must be one of: [...]",
            op.path, op.op
        )));
    }
    let invalid = || {
        GatewayError::BadRequest(format!(
            "Invalid patch operation specified. Must be 'add'|'remove'|'replace'|'copy'|'move': {}",
            op.op
        ))
    };
    let (last, parents) = segs.split_last().ok_or_else(invalid)?;
    let creating = op.op != "remove";
    let mut node = doc;
    let mut parent_name = "";
    for seg in parents {
        let Value::Object(map) = node else {
            return Err(GatewayError::BadRequest(format!(
                "Invalid patch path {}",
                op.path
            )));
        };
        if !map.contains_key(seg) || map[seg].is_null() {
            if !creating {
                return Ok(());
            }
            map.insert(seg.clone(), Value::Object(Map::new()));
        }
        parent_name = seg;
        node = map.get_mut(seg).ok_or_else(invalid)?;
    }
    let value = || op.value.clone().unwrap_or_default();
    match node {
        // A list member names its element: `/binaryMediaTypes/image~1png`,
        // `/endpointConfiguration/types/EDGE`.
        Value::Array(items) => {
            let at = items.iter().position(|v| v.as_str() == Some(last));
            match (op.op.as_str(), at) {
                ("add", None) => items.push(Value::String(last.clone())),
                ("add", Some(_)) => {}
                ("remove", Some(i)) => {
                    items.remove(i);
                }
                ("replace", Some(i)) => items[i] = Value::String(value()),
                ("replace" | "remove", None) => {
                    return Err(GatewayError::BadRequest(format!(
                        "Invalid patch path {}",
                        op.path
                    )));
                }
                _ => return Err(invalid()),
            }
        }
        Value::Object(map) => match op.op.as_str() {
            "add" | "replace" => {
                // Adding to a list member appends (`add /binaryMediaTypes` value x).
                if let Some(Value::Array(items)) = map.get_mut(last)
                    && op.op == "add"
                {
                    items.push(Value::String(value()));
                    return Ok(());
                }
                let typed = typed(
                    last,
                    rules.bool_maps.contains(&parent_name),
                    map.get(last),
                    value(),
                )?;
                map.insert(last.clone(), typed);
            }
            "remove" => {
                map.remove(last);
            }
            "copy" | "move" => {
                return Err(GatewayError::BadRequest(format!(
                    "Invalid patch operation specified: {} is not supported here",
                    op.op
                )));
            }
            _ => return Err(invalid()),
        },
        _ => {
            return Err(GatewayError::BadRequest(format!(
                "Invalid patch path {}",
                op.path
            )));
        }
    }
    Ok(())
}

/// A patch value in the member's own type.
fn typed(
    member: &str,
    in_bool_map: bool,
    previous: Option<&Value>,
    value: String,
) -> Result<Value, GatewayError> {
    let wants_bool =
        in_bool_map || BOOL_MEMBERS.contains(&member) || matches!(previous, Some(Value::Bool(_)));
    let wants_number = INT_MEMBERS.contains(&member) || matches!(previous, Some(Value::Number(_)));
    if wants_bool {
        return match value.to_ascii_lowercase().as_str() {
            "true" => Ok(Value::Bool(true)),
            "false" => Ok(Value::Bool(false)),
            _ => Err(GatewayError::BadRequest(format!(
                "Invalid boolean value for {member}: {value}"
            ))),
        };
    }
    if wants_number {
        if let Ok(n) = value.parse::<i64>() {
            return Ok(n.into());
        }
        return value
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| {
                GatewayError::BadRequest(format!("Invalid number value for {member}: {value}"))
            });
    }
    Ok(Value::String(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gateway::model::{Integration, Stage};

    fn op(op: &str, path: &str, value: Option<&str>) -> PatchOp {
        PatchOp {
            op: op.into(),
            path: path.into(),
            value: value.map(Into::into),
            from: None,
        }
    }

    fn stage() -> Stage {
        serde_json::from_value(serde_json::json!({
            "deploymentId": "d1", "stageName": "dev", "cacheClusterStatus": "NOT_AVAILABLE",
            "createdDate": 1, "lastUpdatedDate": 1
        }))
        .unwrap()
    }

    #[test]
    fn replaces_adds_and_removes_members() {
        let mut s = stage();
        let rules = Rules {
            fixed: &["stageName", "createdDate"],
            bool_maps: &[],
        };
        apply(
            &mut s,
            &[
                op("replace", "/description", Some("hello")),
                op("replace", "/deploymentId", Some("d2")),
                op("add", "/variables/stream", Some("s1")),
                op("add", "/variables/other", Some("o")),
                op("replace", "/tracingEnabled", Some("true")),
            ],
            rules,
        )
        .unwrap();
        assert_eq!(s.description.as_deref(), Some("hello"));
        assert_eq!(s.deployment_id, "d2");
        assert_eq!(s.variables["stream"], "s1");
        assert!(s.tracing_enabled);
        apply(&mut s, &[op("remove", "/variables/other", None)], rules).unwrap();
        assert_eq!(s.variables.len(), 1);
        // All or nothing: a bad operation leaves the document as it was.
        let before = s.clone();
        let e = apply(
            &mut s,
            &[
                op("replace", "/description", Some("changed")),
                op("replace", "/tracingEnabled", Some("maybe")),
            ],
            rules,
        );
        assert!(matches!(e, Err(GatewayError::BadRequest(_))));
        assert_eq!(s, before);
        assert!(apply(&mut s, &[op("replace", "/stageName", Some("x"))], rules).is_err());
        assert!(apply(&mut s, &[op("replace", "", Some("x"))], rules).is_err());
    }

    #[test]
    fn escaped_paths_and_typed_values() {
        let mut i: Integration = serde_json::from_value(serde_json::json!({
            "type": "AWS", "timeoutInMillis": 29000, "cacheKeyParameters": []
        }))
        .unwrap();
        apply(
            &mut i,
            &[
                op(
                    "add",
                    "/requestTemplates/application~1json",
                    Some("{\"a\": 1}"),
                ),
                op("replace", "/timeoutInMillis", Some("5000")),
                op("replace", "/passthroughBehavior", Some("NEVER")),
            ],
            Rules::default(),
        )
        .unwrap();
        assert_eq!(i.request_templates["application/json"], "{\"a\": 1}");
        assert_eq!(i.timeout_in_millis, 5000);
        assert_eq!(i.passthrough_behavior.as_deref(), Some("NEVER"));
        apply(
            &mut i,
            &[op("remove", "/requestTemplates/application~1json", None)],
            Rules::default(),
        )
        .unwrap();
        assert!(i.request_templates.is_empty());
    }

    #[test]
    fn list_members_name_their_elements() {
        let mut v = serde_json::json!({"endpointConfiguration": {"types": ["EDGE"]}, "binaryMediaTypes": []});
        apply(
            &mut v,
            &[
                op(
                    "replace",
                    "/endpointConfiguration/types/EDGE",
                    Some("REGIONAL"),
                ),
                op("add", "/binaryMediaTypes/image~1png", None),
            ],
            Rules::default(),
        )
        .unwrap();
        assert_eq!(v["endpointConfiguration"]["types"][0], "REGIONAL");
        assert_eq!(v["binaryMediaTypes"][0], "image/png");
        apply(
            &mut v,
            &[op("remove", "/binaryMediaTypes/image~1png", None)],
            Rules::default(),
        )
        .unwrap();
        assert_eq!(v["binaryMediaTypes"], serde_json::json!([]));
    }

    #[test]
    fn bool_maps_take_booleans() {
        let mut v = serde_json::json!({"requestParameters": {}});
        apply(
            &mut v,
            &[op(
                "add",
                "/requestParameters/method.request.querystring.q",
                Some("true"),
            )],
            Rules {
                fixed: &[],
                bool_maps: &["requestParameters"],
            },
        )
        .unwrap();
        assert_eq!(
            v["requestParameters"]["method.request.querystring.q"],
            serde_json::json!(true)
        );
    }
}
