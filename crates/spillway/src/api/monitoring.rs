//! CloudWatch metric alarms on the shared endpoint: stored durably (one
//! [`ResourceStore`] document each, kind `cloudwatch.alarm`) and described, never
//! evaluated (`StateValue` stays `INSUFFICIENT_DATA`).
//!
//! CloudWatch's model lists three protocols, in botocore's order of preference: Smithy
//! RPC v2 CBOR (`smithy-protocol: rpc-v2-cbor`, `POST
//! /service/GraniteServiceVersion20100801/operation/{Op}`: botocore 1.43, the AWS CLI
//! and aws-sdk-go-v2's cloudwatch >= 1.52, so Terraform's provider), AWS JSON 1.0
//! (`X-Amz-Target: GraniteServiceVersion20100801.Op`) and awsQuery (`Action=Op`, XML).
//! All three are decoded into the JSON form, run by the same actions, and the result is
//! encoded back in the request's protocol. Timestamps are epoch milliseconds inside and
//! become tag-1 epoch seconds in CBOR, epoch seconds in JSON, ISO 8601 in XML.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ciborium::value::Value as Cbor;
use serde_json::{Map, Value, json};

use super::front::{self, ControlPlane, ControlRequest, ControlService};
use super::sqs::{json_body, string_list, text};
use crate::storage::ResourceStore;
use crate::stream::now_ms;

pub const ALARM_KIND: &str = "cloudwatch.alarm";
const SERVICE_PATH: &str = "/service/GraniteServiceVersion20100801/operation/";
/// Most alarms kept.
const MAX_ALARMS: usize = 10_000;
/// Members that are timestamps.
const TIMESTAMPS: [&str; 3] = [
    "AlarmConfigurationUpdatedTimestamp",
    "StateUpdatedTimestamp",
    "StateTransitionedTimestamp",
];
/// Members that are doubles (floats on the wire even when whole).
const DOUBLES: [&str; 1] = ["Threshold"];
/// The members of PutMetricAlarm kept as given (after type checks).
const ALARM_MEMBERS: [&str; 20] = [
    "AlarmDescription",
    "ActionsEnabled",
    "OKActions",
    "AlarmActions",
    "InsufficientDataActions",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Dimensions",
    "Period",
    "Unit",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "EvaluateLowSampleCountPercentile",
    "Metrics",
    "ThresholdMetricId",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Protocol {
    Cbor,
    Json,
    Query,
}

/// A CloudWatch error: status, the model's shape name, its awsQuery code.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    status: StatusCode,
    shape: &'static str,
    code: &'static str,
    message: String,
}

impl Failure {
    fn invalid(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            shape: "InvalidParameterValueException",
            code: "InvalidParameterValue",
            message: message.into(),
        }
    }

    fn missing(name: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            shape: "MissingRequiredParameterException",
            code: "MissingParameter",
            message: format!("The parameter {name} is required."),
        }
    }

    fn not_found(shape: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            shape,
            code: shape,
            message: message.into(),
        }
    }

    fn internal() -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            shape: "InternalServiceFault",
            code: "InternalServiceError",
            message: "Internal service error".into(),
        }
    }
}

/// The request's protocol, operation and input in JSON form.
fn decode(request: &ControlRequest) -> Result<(Protocol, String, Value), (Protocol, Failure)> {
    let path = request.uri.path();
    if request.headers.contains_key("smithy-protocol") || path.starts_with(SERVICE_PATH) {
        let op = path
            .strip_prefix(SERVICE_PATH)
            .unwrap_or_default()
            .to_owned();
        let input = super::kinesis::cbor::decode_request(&request.body).map_err(|_| {
            (
                Protocol::Cbor,
                Failure {
                    status: StatusCode::BAD_REQUEST,
                    shape: "SerializationException",
                    code: "SerializationException",
                    message: "The request body is not valid CBOR.".into(),
                },
            )
        })?;
        return Ok((Protocol::Cbor, op, input));
    }
    if let Some(op) = request.json_target() {
        let input = json_body(&request.body).ok_or_else(|| {
            (
                Protocol::Json,
                Failure {
                    status: StatusCode::BAD_REQUEST,
                    shape: "SerializationException",
                    code: "SerializationException",
                    message: "The request body is not a JSON object.".into(),
                },
            )
        })?;
        return Ok((Protocol::Json, op.to_owned(), input));
    }
    let mut pairs = front::form_pairs(&request.body);
    pairs.extend(front::form_pairs(
        request.uri.query().unwrap_or_default().as_bytes(),
    ));
    let op = request.query_action().unwrap_or_default();
    Ok((Protocol::Query, op, super::sqs::form_tree(&pairs)))
}

/// Answers one request of this service.
pub async fn handle(cp: &ControlPlane, request: ControlRequest) -> Response {
    let (protocol, op, input) = match decode(&request) {
        Ok(d) => d,
        Err((protocol, e)) => return respond_error(protocol, &request, &e),
    };
    if !matches!(
        op.as_str(),
        "PutMetricAlarm"
            | "DescribeAlarms"
            | "DeleteAlarms"
            | "ListTagsForResource"
            | "TagResource"
            | "UntagResource"
    ) || !input.is_object()
    {
        return front::unimplemented(ControlService::Monitoring, &request);
    }
    let alarms = Alarms {
        resources: Arc::clone(&cp.resources),
        arn_prefix: format!("arn:aws:cloudwatch:{}:{}:alarm:", cp.region, cp.account_id),
    };
    match run(&alarms, &op, &input) {
        Ok(v) => respond(protocol, &op, &v),
        Err(e) => respond_error(protocol, &request, &e),
    }
}

/// The alarms of one server.
struct Alarms {
    resources: Arc<dyn ResourceStore>,
    arn_prefix: String,
}

impl Alarms {
    fn get(&self, name: &str) -> Result<Option<Value>, Failure> {
        let doc = self
            .resources
            .get_resource(ALARM_KIND, name)
            .map_err(|_| Failure::internal())?;
        Ok(doc.and_then(|d| serde_json::from_slice(&d).ok()))
    }

    fn put(&self, name: &str, doc: &Value) -> Result<(), Failure> {
        self.resources
            .put_resource(ALARM_KIND, name, doc.to_string().as_bytes())
            .map_err(|_| Failure::internal())
    }

    fn list(&self) -> Result<Vec<Value>, Failure> {
        Ok(self
            .resources
            .list_resources(ALARM_KIND)
            .map_err(|_| Failure::internal())?
            .into_iter()
            .filter_map(|(_, d)| serde_json::from_slice(&d).ok())
            .collect())
    }

    /// The alarm an ARN names.
    fn of_arn(&self, arn: &str) -> Result<(String, Value), Failure> {
        let missing =
            || Failure::not_found("ResourceNotFoundException", format!("{arn} was not found"));
        let name = arn.strip_prefix(&self.arn_prefix).ok_or_else(missing)?;
        let doc = self.get(name)?.ok_or_else(missing)?;
        Ok((name.to_owned(), doc))
    }
}

/// An integer member, a JSON number or (awsQuery) text.
fn integer(input: &Value, name: &str) -> Result<Option<i64>, Failure> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| Failure::invalid(format!("{name} must be an integer"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| Failure::invalid(format!("{name} must be an integer"))),
        Some(_) => Err(Failure::invalid(format!("{name} must be an integer"))),
    }
}

/// Normalizes a member's value to its model type (awsQuery gives text for everything).
fn typed(name: &str, v: &Value) -> Result<Value, Failure> {
    let bad = || Failure::invalid(format!("Invalid value for {name}"));
    Ok(match name {
        "Period" | "EvaluationPeriods" | "DatapointsToAlarm" => {
            let n = integer(&json!({ name: v }), name)?.ok_or_else(bad)?;
            if !(0..=i64::from(i32::MAX)).contains(&n) {
                return Err(bad());
            }
            json!(n)
        }
        "Threshold" => {
            let f = match v {
                Value::Number(n) => n.as_f64(),
                Value::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|f| f.is_finite())
            .ok_or_else(bad)?;
            Value::Number(serde_json::Number::from_f64(f).ok_or_else(bad)?)
        }
        "ActionsEnabled" | "ReturnData" => match v {
            Value::Bool(b) => json!(b),
            Value::String(s) if s == "true" || s == "false" => json!(s == "true"),
            _ => return Err(bad()),
        },
        _ => match v {
            Value::String(s) if s.len() > 4096 => return Err(bad()),
            Value::Array(a) if a.len() > 100 => return Err(bad()),
            Value::Array(a) => Value::Array(
                a.iter()
                    .map(|item| typed_nested(item, 0))
                    .collect::<Result<_, _>>()?,
            ),
            other => typed_nested(other, 0)?,
        },
    })
}

/// Nested structures (Dimensions, Metrics): members typed by name, depth bounded.
fn typed_nested(v: &Value, depth: usize) -> Result<Value, Failure> {
    if depth > 6 {
        return Err(Failure::invalid("Too deeply nested"));
    }
    Ok(match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| {
                    let v = match k.as_str() {
                        "Period" | "ReturnData" => typed(k, v)?,
                        _ => typed_nested(v, depth + 1)?,
                    };
                    Ok((k.clone(), v))
                })
                .collect::<Result<_, Failure>>()?,
        ),
        Value::Array(a) if a.len() <= 100 => Value::Array(
            a.iter()
                .map(|x| typed_nested(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Value::Array(_) => return Err(Failure::invalid("Too many list members")),
        Value::String(s) if s.len() > 4096 => return Err(Failure::invalid("Value too long")),
        other => other.clone(),
    })
}

/// Tags as `[{Key, Value}]`, checked.
fn tag_list(input: &Value) -> Result<BTreeMap<String, String>, Failure> {
    let Some(list) = input.get("Tags") else {
        return Ok(BTreeMap::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| Failure::invalid("Tags must be a list"))?;
    if list.len() > 50 {
        return Err(Failure::invalid("At most 50 tags"));
    }
    list.iter()
        .map(|t| match (text(t, "Key"), text(t, "Value")) {
            (Some(k), Some(v)) if (1..=128).contains(&k.len()) && v.len() <= 256 => {
                Ok((k.to_owned(), v.to_owned()))
            }
            _ => Err(Failure::invalid(
                "Each tag needs a Key (1-128) and a Value (0-256)",
            )),
        })
        .collect()
}

fn tags_json(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({ "Key": k, "Value": v }))
            .collect(),
    )
}

fn stored_tags(doc: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(doc["Tags"].clone()).unwrap_or_default()
}

fn run(alarms: &Alarms, op: &str, input: &Value) -> Result<Value, Failure> {
    match op {
        "PutMetricAlarm" => {
            let name = text(input, "AlarmName").ok_or_else(|| Failure::missing("AlarmName"))?;
            if name.is_empty() || name.len() > 255 {
                return Err(Failure::invalid(
                    "AlarmName must have length between 1 and 255",
                ));
            }
            for required in ["EvaluationPeriods", "ComparisonOperator"] {
                if input.get(required).is_none() {
                    return Err(Failure::missing(required));
                }
            }
            let now = now_ms();
            let existing = alarms.get(name)?;
            if existing.is_none() && alarms.list()?.len() >= MAX_ALARMS {
                return Err(Failure {
                    status: StatusCode::BAD_REQUEST,
                    shape: "LimitExceededFault",
                    code: "LimitExceeded",
                    message: format!("spillway keeps at most {MAX_ALARMS} alarms"),
                });
            }
            let mut alarm = Map::new();
            alarm.insert("AlarmName".into(), json!(name));
            alarm.insert(
                "AlarmArn".into(),
                json!(format!("{}{name}", alarms.arn_prefix)),
            );
            alarm.insert("ActionsEnabled".into(), json!(true));
            for list in [
                "OKActions",
                "AlarmActions",
                "InsufficientDataActions",
                "Dimensions",
            ] {
                alarm.insert(list.into(), json!([]));
            }
            for member in ALARM_MEMBERS {
                if let Some(v) = input.get(member).filter(|v| !v.is_null()) {
                    alarm.insert(member.into(), typed(member, v)?);
                }
            }
            alarm.insert("AlarmConfigurationUpdatedTimestamp".into(), json!(now));
            let (state_since, tags) = match &existing {
                Some(doc) => (
                    doc["Alarm"]["StateUpdatedTimestamp"]
                        .as_u64()
                        .unwrap_or(now),
                    stored_tags(doc),
                ),
                None => (now, tag_list(input)?),
            };
            alarm.insert("StateValue".into(), json!("INSUFFICIENT_DATA"));
            alarm.insert(
                "StateReason".into(),
                json!("Unchecked: Initial alarm creation"),
            );
            alarm.insert("StateUpdatedTimestamp".into(), json!(state_since));
            alarm.insert("StateTransitionedTimestamp".into(), json!(state_since));
            alarms.put(name, &json!({ "Alarm": alarm, "Tags": tags }))?;
            Ok(json!({}))
        }
        "DescribeAlarms" => {
            let names = string_list(input, "AlarmNames");
            if names.len() > 100 {
                return Err(Failure::invalid("AlarmNames takes at most 100 names"));
            }
            let prefix = text(input, "AlarmNamePrefix");
            if prefix.is_some() && !names.is_empty() {
                return Err(Failure {
                    status: StatusCode::BAD_REQUEST,
                    shape: "InvalidParameterCombinationException",
                    code: "InvalidParameterCombination",
                    message: "AlarmNames and AlarmNamePrefix cannot be given together".into(),
                });
            }
            let state = text(input, "StateValue");
            let action_prefix = text(input, "ActionPrefix");
            let types: Vec<&str> = input
                .get("AlarmTypes")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let max = match integer(input, "MaxRecords")? {
                None => 50,
                Some(n) if (1..=100).contains(&n) => n as usize,
                Some(_) => return Err(Failure::invalid("MaxRecords must be between 1 and 100")),
            };
            let after = text(input, "NextToken");
            let metric = types.is_empty() || types.contains(&"MetricAlarm");
            let mut found: Vec<Value> = alarms
                .list()?
                .into_iter()
                .map(|d| d["Alarm"].clone())
                .filter(|_| metric)
                .filter(|a| {
                    let name = a["AlarmName"].as_str().unwrap_or_default();
                    (names.is_empty() || names.iter().any(|n| n == name))
                        && prefix.is_none_or(|p| name.starts_with(p))
                        && after.is_none_or(|t| name > t)
                        && state.is_none_or(|s| a["StateValue"] == s)
                        && action_prefix.is_none_or(|p| {
                            a["AlarmActions"].as_array().is_some_and(|l| {
                                l.iter()
                                    .any(|x| x.as_str().is_some_and(|x| x.starts_with(p)))
                            })
                        })
                })
                .collect();
            let next = (found.len() > max).then(|| found[max - 1]["AlarmName"].clone());
            found.truncate(max);
            let mut out = json!({ "MetricAlarms": found, "CompositeAlarms": [] });
            if let Some(n) = next {
                out["NextToken"] = n;
            }
            Ok(out)
        }
        "DeleteAlarms" => {
            let names: Vec<&str> = input
                .get("AlarmNames")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if names.is_empty() || names.len() > 100 {
                return Err(Failure::missing("AlarmNames"));
            }
            let mut missing = Vec::new();
            for n in &names {
                if alarms.get(n)?.is_none() {
                    missing.push(*n);
                }
            }
            if !missing.is_empty() {
                return Err(Failure::not_found(
                    "ResourceNotFound",
                    format!("{} does not exist", missing.join(", ")),
                ));
            }
            for n in names {
                alarms
                    .resources
                    .delete_resource(ALARM_KIND, n)
                    .map_err(|_| Failure::internal())?;
            }
            Ok(json!({}))
        }
        "ListTagsForResource" => {
            let arn = text(input, "ResourceARN").ok_or_else(|| Failure::missing("ResourceARN"))?;
            let (_, doc) = alarms.of_arn(arn)?;
            Ok(json!({ "Tags": tags_json(&stored_tags(&doc)) }))
        }
        "TagResource" | "UntagResource" => {
            let arn = text(input, "ResourceARN").ok_or_else(|| Failure::missing("ResourceARN"))?;
            let (name, mut doc) = alarms.of_arn(arn)?;
            let mut tags = stored_tags(&doc);
            if op == "TagResource" {
                tags.extend(tag_list(input)?);
            } else {
                for k in input
                    .get("TagKeys")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    tags.remove(k);
                }
            }
            if tags.len() > 50 {
                return Err(Failure::invalid("A resource takes at most 50 tags"));
            }
            doc["Tags"] = json!(tags);
            alarms.put(&name, &doc)?;
            Ok(json!({}))
        }
        _ => Err(Failure::invalid(format!("Unknown operation {op}"))),
    }
}

/// JSON (timestamps in epoch ms) to CBOR: timestamps as tag 1 over epoch seconds,
/// doubles as floats.
fn to_cbor(v: &Value, member: Option<&str>) -> Cbor {
    match v {
        Value::Number(n) if member.is_some_and(|m| TIMESTAMPS.contains(&m)) => {
            Cbor::Tag(1, Box::new(Cbor::Float(n.as_f64().unwrap_or(0.0) / 1000.0)))
        }
        Value::Number(n) if member.is_some_and(|m| DOUBLES.contains(&m)) || n.is_f64() => {
            Cbor::Float(n.as_f64().unwrap_or(0.0))
        }
        Value::Number(n) => n.as_i64().map_or_else(
            || Cbor::Float(n.as_f64().unwrap_or(0.0)),
            |i| Cbor::Integer(i.into()),
        ),
        Value::Null => Cbor::Null,
        Value::Bool(b) => Cbor::Bool(*b),
        Value::String(s) => Cbor::Text(s.clone()),
        Value::Array(a) => Cbor::Array(a.iter().map(|x| to_cbor(x, None)).collect()),
        Value::Object(m) => Cbor::Map(
            m.iter()
                .map(|(k, v)| (Cbor::Text(k.clone()), to_cbor(v, Some(k))))
                .collect(),
        ),
    }
}

/// Timestamps (epoch ms) as the JSON protocol's epoch seconds, recursively.
fn json_timestamps(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if TIMESTAMPS.contains(&k.as_str())
                    && let Some(ms) = v.as_f64()
                {
                    *v = json!(ms / 1000.0);
                } else {
                    json_timestamps(v);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(json_timestamps),
        _ => {}
    }
}

/// One member in awsQuery XML: lists wrap their items in `member`.
fn xml_member(out: &mut String, name: &str, v: &Value) {
    match v {
        Value::Array(a) => {
            out.push_str(&format!("<{name}>"));
            for item in a {
                xml_member(out, "member", item);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Object(m) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in m {
                xml_member(out, k, v);
            }
            out.push_str(&format!("</{name}>"));
        }
        Value::Null => {}
        Value::String(s) => out.push_str(&format!("<{name}>{}</{name}>", front::xml_escape(s))),
        Value::Number(n) if TIMESTAMPS.contains(&name) => out.push_str(&format!(
            "<{name}>{}</{name}>",
            crate::mapping::dead_letter::iso8601(n.as_u64().unwrap_or(0))
        )),
        other => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

fn with_request_id(mut r: Response, content_type: &'static str) -> Response {
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(super::names::X_AMZN_REQUEST_ID, super::uuid_request_id());
    r
}

fn cbor_bytes(v: &Cbor) -> Vec<u8> {
    let mut out = Vec::new();
    ciborium::ser::into_writer(v, &mut out).expect("writing to a Vec");
    out
}

fn respond(protocol: Protocol, op: &str, result: &Value) -> Response {
    match protocol {
        Protocol::Cbor => {
            let mut r = with_request_id(
                (StatusCode::OK, cbor_bytes(&to_cbor(result, None))).into_response(),
                "application/cbor",
            );
            r.headers_mut()
                .insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
            r
        }
        Protocol::Json => {
            let mut v = result.clone();
            json_timestamps(&mut v);
            with_request_id(
                (StatusCode::OK, v.to_string()).into_response(),
                "application/x-amz-json-1.0",
            )
        }
        Protocol::Query => {
            let mut inner = String::new();
            if let Value::Object(m) = result {
                for (k, v) in m {
                    xml_member(&mut inner, k, v);
                }
            }
            let result = if inner.is_empty() {
                String::new()
            } else {
                format!("<{op}Result>{inner}</{op}Result>")
            };
            let body = format!(
                "<{op}Response xmlns=\"{}\">{result}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{op}Response>",
                front::query_namespace(ControlService::Monitoring),
                uuid::Uuid::new_v4()
            );
            with_request_id((StatusCode::OK, body).into_response(), "text/xml")
        }
    }
}

fn respond_error(protocol: Protocol, request: &ControlRequest, e: &Failure) -> Response {
    let body = json!({
        "__type": format!("com.amazonaws.cloudwatch#{}", e.shape),
        "message": e.message,
    });
    let mut r = match protocol {
        Protocol::Query => {
            return front::error(
                ControlService::Monitoring,
                &request.headers,
                e.status,
                e.code,
                &e.message,
            );
        }
        Protocol::Cbor => {
            let mut r = with_request_id(
                (e.status, cbor_bytes(&to_cbor(&body, None))).into_response(),
                "application/cbor",
            );
            r.headers_mut()
                .insert("smithy-protocol", HeaderValue::from_static("rpc-v2-cbor"));
            r
        }
        Protocol::Json => with_request_id(
            (e.status, body.to_string()).into_response(),
            "application/x-amz-json-1.0",
        ),
    };
    let fault = if e.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    if let Ok(v) = HeaderValue::from_str(&format!("{};{fault}", e.code)) {
        r.headers_mut().insert("x-amzn-query-error", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(
        path: &str,
        headers: &[(&'static str, &'static str)],
        body: Vec<u8>,
    ) -> ControlRequest {
        let mut h = axum::http::HeaderMap::new();
        for (k, v) in headers {
            h.insert(*k, HeaderValue::from_static(v));
        }
        ControlRequest {
            method: axum::http::Method::POST,
            uri: path.parse().expect("uri"),
            headers: h,
            body: body.into(),
        }
    }

    #[test]
    fn the_three_protocols_decode_to_one_form() {
        let cbor = cbor_bytes(&Cbor::Map(vec![
            (Cbor::Text("AlarmName".into()), Cbor::Text("a".into())),
            (Cbor::Text("Threshold".into()), Cbor::Float(80.0)),
            (Cbor::Text("Period".into()), Cbor::Integer(60.into())),
        ]));
        let r = request(
            "/service/GraniteServiceVersion20100801/operation/PutMetricAlarm",
            &[("smithy-protocol", "rpc-v2-cbor")],
            cbor,
        );
        let (p, op, input) = decode(&r).expect("cbor");
        assert_eq!((p, op.as_str()), (Protocol::Cbor, "PutMetricAlarm"));
        assert_eq!(input["AlarmName"], "a");
        assert_eq!(input["Period"], 60);

        let r = request(
            "/",
            &[(
                "x-amz-target",
                "GraniteServiceVersion20100801.DescribeAlarms",
            )],
            br#"{"AlarmNames":["a"]}"#.to_vec(),
        );
        let (p, op, input) = decode(&r).expect("json");
        assert_eq!((p, op.as_str()), (Protocol::Json, "DescribeAlarms"));
        assert_eq!(input["AlarmNames"], json!(["a"]));

        let r = request(
            "/",
            &[],
            b"Action=PutMetricAlarm&AlarmName=a&Threshold=80&Dimensions.member.1.Name=FunctionName&Dimensions.member.1.Value=f".to_vec(),
        );
        let (p, op, input) = decode(&r).expect("query");
        assert_eq!((p, op.as_str()), (Protocol::Query, "PutMetricAlarm"));
        assert_eq!(
            input["Dimensions"],
            json!([{"Name": "FunctionName", "Value": "f"}])
        );
        assert_eq!(
            typed("Threshold", &input["Threshold"]).unwrap(),
            json!(80.0)
        );

        // Garbage never panics.
        let r = request(
            "/service/GraniteServiceVersion20100801/operation/PutMetricAlarm",
            &[("smithy-protocol", "rpc-v2-cbor")],
            vec![0xff, 0x00, 0xbf],
        );
        assert!(decode(&r).is_err());
    }

    #[test]
    fn cbor_answers_tag_timestamps_and_keep_doubles_floats() {
        let v = to_cbor(
            &json!({"StateUpdatedTimestamp": 1_500, "Threshold": 80.0, "Period": 60}),
            None,
        );
        let Cbor::Map(m) = v else { panic!("map") };
        let get = |k: &str| {
            m.iter()
                .find(|(key, _)| key == &Cbor::Text(k.into()))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get("StateUpdatedTimestamp"),
            Some(Cbor::Tag(1, Box::new(Cbor::Float(1.5))))
        );
        assert_eq!(get("Threshold"), Some(Cbor::Float(80.0)));
        assert_eq!(get("Period"), Some(Cbor::Integer(60.into())));
    }

    #[test]
    fn hostile_members_are_refused() {
        assert!(typed("Period", &json!("x")).is_err());
        assert!(typed("Period", &json!(-1)).is_err());
        assert!(typed("Threshold", &json!("NaN")).is_err());
        assert!(typed("AlarmDescription", &json!("x".repeat(5000))).is_err());
        let mut deep = json!("x");
        for _ in 0..20 {
            deep = json!([deep]);
        }
        assert!(typed("Metrics", &deep).is_err());
    }
}
