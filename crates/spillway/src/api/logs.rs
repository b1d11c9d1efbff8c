//! CloudWatch Logs on the shared endpoint (AWS JSON 1.1, `X-Amz-Target:
//! Logs_20140328.Op`): log groups (durable), streams and events (in memory), over
//! [`crate::logs`]; the functions' output appears in `/aws/lambda/{function}`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::front::{self, ControlPlane, ControlRequest, ControlService};
use super::sqs::{json_body, string_list, text};
use crate::logs::{FilterPattern, LogGroupDoc, LogGroups, LogsError};
use crate::stream::now_ms;

/// Most events one PutLogEvents takes (as AWS).
const MAX_PUT_EVENTS: usize = 10_000;
/// Most events one read answers (as AWS).
const MAX_READ_EVENTS: usize = 10_000;
/// Retention periods AWS accepts, in days.
const RETENTION_DAYS: [u32; 23] = [
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
    3288, 3653, 0,
];

/// A Logs error: status, type, message.
#[derive(Debug)]
struct Failure(StatusCode, &'static str, String);

impl Failure {
    fn invalid(message: impl Into<String>) -> Self {
        Self(
            StatusCode::BAD_REQUEST,
            "InvalidParameterException",
            message.into(),
        )
    }
}

impl From<LogsError> for Failure {
    fn from(e: LogsError) -> Self {
        let message = e.to_string();
        let kind = match e {
            LogsError::GroupNotFound | LogsError::StreamNotFound => "ResourceNotFoundException",
            LogsError::GroupExists | LogsError::StreamExists => "ResourceAlreadyExistsException",
            LogsError::InvalidParameter(_) => "InvalidParameterException",
            LogsError::LimitExceeded(_) => "LimitExceededException",
            LogsError::Storage(_) => {
                return Self(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ServiceUnavailableException",
                    "The service cannot complete the request.".into(),
                );
            }
        };
        Self(StatusCode::BAD_REQUEST, kind, message)
    }
}

const OPERATIONS: [&str; 18] = [
    "CreateLogGroup",
    "DescribeLogGroups",
    "DeleteLogGroup",
    "PutRetentionPolicy",
    "DeleteRetentionPolicy",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "TagLogGroup",
    "UntagLogGroup",
    "ListTagsLogGroup",
    "CreateLogStream",
    "DescribeLogStreams",
    "PutLogEvents",
    "GetLogEvents",
    "FilterLogEvents",
    "DeleteLogStream",
    "DescribeMetricFilters",
];

/// Answers one request of this service.
pub async fn handle(cp: &ControlPlane, request: ControlRequest) -> Response {
    let Some(op) = request.json_target().map(str::to_owned) else {
        return front::unimplemented(ControlService::Logs, &request);
    };
    if !OPERATIONS.contains(&op.as_str()) {
        return front::unimplemented(ControlService::Logs, &request);
    }
    let Some(input) = json_body(&request.body) else {
        return front::error(
            ControlService::Logs,
            &request.headers,
            StatusCode::BAD_REQUEST,
            "SerializationException",
            "The request body is not a JSON object.",
        );
    };
    let groups = LogGroups::new(Arc::clone(&cp.resources), &cp.region, &cp.account_id);
    let result = groups
        .adopt_function_groups()
        .map_err(Failure::from)
        .and_then(|()| run(&groups, &op, &input));
    match result {
        Ok(v) => {
            let mut r = (StatusCode::OK, v.to_string()).into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-amz-json-1.1"),
            );
            r
        }
        Err(Failure(status, kind, message)) => front::error(
            ControlService::Logs,
            &request.headers,
            status,
            kind,
            &message,
        ),
    }
}

fn required<'a>(input: &'a Value, name: &str) -> Result<&'a str, Failure> {
    text(input, name).ok_or_else(|| {
        Failure::invalid(format!(
            "1 validation error detected: Value null at '{name}' failed to satisfy constraint: Member must not be null"
        ))
    })
}

fn integer(input: &Value, name: &str) -> Result<Option<i64>, Failure> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_i64()
            .map(Some)
            .ok_or_else(|| Failure::invalid(format!("{name} must be an integer"))),
    }
}

/// `limit`, within 1..=max.
fn limit(input: &Value, max: usize) -> Result<usize, Failure> {
    match integer(input, "limit")? {
        None => Ok(max),
        Some(n) if n >= 1 && n as usize <= max => Ok(n as usize),
        Some(n) => Err(Failure::invalid(format!(
            "1 validation error detected: Value '{n}' at 'limit' failed to satisfy constraint: Member must have value between 1 and {max}"
        ))),
    }
}

fn tags(input: &Value, name: &str) -> Result<BTreeMap<String, String>, Failure> {
    let Some(v) = input.get(name) else {
        return Ok(BTreeMap::new());
    };
    let m = v
        .as_object()
        .ok_or_else(|| Failure::invalid(format!("{name} must be a map")))?;
    m.iter()
        .map(|(k, v)| match v.as_str() {
            Some(s) if (1..=128).contains(&k.len()) && s.len() <= 256 => {
                Ok((k.clone(), s.to_owned()))
            }
            _ => Err(Failure::invalid(format!("Invalid tag {k:?}"))),
        })
        .collect()
}

/// The group a request names by `logGroupName` or `logGroupIdentifier` (name or ARN).
fn group_name(input: &Value) -> Result<String, Failure> {
    let reference = text(input, "logGroupName")
        .or_else(|| text(input, "logGroupIdentifier"))
        .ok_or_else(|| Failure::invalid("logGroupName or logGroupIdentifier is required"))?;
    Ok(group_of_arn(reference).to_owned())
}

/// A group's name from its ARN (`...:log-group:NAME` or `...:log-group:NAME:*`).
fn group_of_arn(reference: &str) -> &str {
    match reference.find(":log-group:") {
        Some(at) => {
            let rest = &reference[at + ":log-group:".len()..];
            rest.strip_suffix(":*").unwrap_or(rest)
        }
        None => reference,
    }
}

fn describe_group(groups: &LogGroups, g: &LogGroupDoc) -> Value {
    let arn = groups.arn(&g.name);
    let mut v = json!({
        "logGroupName": g.name,
        "creationTime": g.creation_ms,
        "metricFilterCount": 0,
        "arn": format!("{arn}:*"),
        "logGroupArn": arn,
        "storedBytes": 0,
        "logGroupClass": g.class.as_deref().unwrap_or("STANDARD"),
    });
    if let Some(days) = g.retention_days {
        v["retentionInDays"] = json!(days);
    }
    if let Some(k) = &g.kms_key_id {
        v["kmsKeyId"] = json!(k);
    }
    v
}

/// A page of `items` after the token `next` (the last name of the previous page).
fn page<T>(
    items: Vec<T>,
    name: impl Fn(&T) -> &str,
    after: Option<&str>,
    limit: usize,
) -> (Vec<T>, Option<String>) {
    let mut items: Vec<T> = items
        .into_iter()
        .filter(|i| after.is_none_or(|a| name(i) > a))
        .collect();
    let next = (items.len() > limit).then(|| name(&items[limit - 1]).to_owned());
    items.truncate(limit);
    (items, next)
}

fn event_json(e: &crate::logs::Event, with_stream: bool) -> Value {
    let mut v = json!({
        "timestamp": e.timestamp,
        "message": e.message,
        "ingestionTime": e.ingestion_ms,
    });
    if with_stream {
        v["logStreamName"] = json!(&*e.stream);
        v["eventId"] = json!(format!("{:056}", e.id));
    }
    v
}

fn run(groups: &LogGroups, op: &str, input: &Value) -> Result<Value, Failure> {
    match op {
        "CreateLogGroup" => {
            let name = required(input, "logGroupName")?;
            let kms = text(input, "kmsKeyId").map(str::to_owned);
            let class = text(input, "logGroupClass").map(str::to_owned);
            if class
                .as_deref()
                .is_some_and(|c| !matches!(c, "STANDARD" | "INFREQUENT_ACCESS" | "DELIVERY"))
            {
                return Err(Failure::invalid("Invalid logGroupClass"));
            }
            groups.create(LogGroupDoc {
                name: name.to_owned(),
                creation_ms: now_ms(),
                retention_days: None,
                kms_key_id: kms,
                class,
                tags: tags(input, "tags")?,
            })?;
            Ok(json!({}))
        }
        "DescribeLogGroups" => {
            let prefix = text(input, "logGroupNamePrefix");
            let pattern = text(input, "logGroupNamePattern").map(str::to_lowercase);
            if prefix.is_some() && pattern.is_some() {
                return Err(Failure::invalid(
                    "LogGroup name prefix and LogGroup name pattern are mutually exclusive parameters.",
                ));
            }
            let limit = limit(input, 50)?;
            let all: Vec<LogGroupDoc> = groups
                .list()?
                .into_iter()
                .filter(|g| prefix.is_none_or(|p| g.name.starts_with(p)))
                .filter(|g| {
                    pattern
                        .as_deref()
                        .is_none_or(|p| g.name.to_lowercase().contains(p))
                })
                .collect();
            let (items, next) = page(all, |g| g.name.as_str(), text(input, "nextToken"), limit);
            let mut out = json!({
                "logGroups": items.iter().map(|g| describe_group(groups, g)).collect::<Vec<_>>(),
            });
            if let Some(n) = next {
                out["nextToken"] = json!(n);
            }
            Ok(out)
        }
        "DeleteLogGroup" => {
            groups.delete(&group_name(input)?)?;
            Ok(json!({}))
        }
        "PutRetentionPolicy" => {
            let days = integer(input, "retentionInDays")?
                .and_then(|d| u32::try_from(d).ok())
                .filter(|d| *d != 0 && RETENTION_DAYS.contains(d))
                .ok_or_else(|| {
                    Failure::invalid(
                        "1 validation error detected: Value at 'retentionInDays' failed to satisfy constraint: Member must satisfy enum value set",
                    )
                })?;
            groups.update(&group_name(input)?, |g| g.retention_days = Some(days))?;
            Ok(json!({}))
        }
        "DeleteRetentionPolicy" => {
            groups.update(&group_name(input)?, |g| g.retention_days = None)?;
            Ok(json!({}))
        }
        "TagResource" | "TagLogGroup" => {
            let name = match text(input, "resourceArn") {
                Some(arn) => group_of_arn(arn).to_owned(),
                None => group_name(input)?,
            };
            let add = tags(input, "tags")?;
            groups.update(&name, |g| g.tags.extend(add))?;
            Ok(json!({}))
        }
        "UntagResource" | "UntagLogGroup" => {
            let (name, keys) = match text(input, "resourceArn") {
                Some(arn) => (group_of_arn(arn).to_owned(), string_list(input, "tagKeys")),
                None => (group_name(input)?, string_list(input, "tags")),
            };
            groups.update(&name, |g| {
                for k in &keys {
                    g.tags.remove(k);
                }
            })?;
            Ok(json!({}))
        }
        "ListTagsForResource" | "ListTagsLogGroup" => {
            let name = match text(input, "resourceArn") {
                Some(arn) => group_of_arn(arn).to_owned(),
                None => group_name(input)?,
            };
            Ok(json!({ "tags": groups.get(&name)?.tags }))
        }
        "DescribeMetricFilters" => Ok(json!({ "metricFilters": [] })),
        "CreateLogStream" => {
            groups.create_stream(&group_name(input)?, required(input, "logStreamName")?)?;
            Ok(json!({}))
        }
        "DeleteLogStream" => Err(Failure::invalid(
            "spillway does not delete log streams; delete the log group",
        )),
        "DescribeLogStreams" => {
            let group = group_name(input)?;
            let prefix = text(input, "logStreamNamePrefix");
            let by_time = text(input, "orderBy") == Some("LastEventTime");
            if by_time && prefix.is_some() {
                return Err(Failure::invalid(
                    "Cannot order by LastEventTime with a logStreamNamePrefix.",
                ));
            }
            let descending = input
                .get("descending")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let limit = limit(input, 50)?;
            let mut streams: Vec<(String, crate::logs::StreamInfo)> = groups
                .streams(&group)?
                .into_iter()
                .filter(|(n, _)| prefix.is_none_or(|p| n.starts_with(p)))
                .collect();
            if by_time {
                streams.sort_by_key(|(n, s)| (s.last_event_ms.unwrap_or(0), n.clone()));
            }
            if descending {
                streams.reverse();
            }
            // Pages by position: the token is the count already given.
            let skip: usize = text(input, "nextToken")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let total = streams.len();
            let arn = groups.arn(&group);
            let items: Vec<Value> = streams
                .into_iter()
                .skip(skip)
                .take(limit)
                .map(|(name, s)| {
                    let mut v = json!({
                        "logStreamName": name,
                        "creationTime": s.creation_ms,
                        "arn": format!("{arn}:log-stream:{name}"),
                        "storedBytes": s.stored_bytes,
                    });
                    if let Some(t) = s.first_event_ms {
                        v["firstEventTimestamp"] = json!(t);
                    }
                    if let Some(t) = s.last_event_ms {
                        v["lastEventTimestamp"] = json!(t);
                    }
                    if let Some(t) = s.last_ingestion_ms {
                        v["lastIngestionTime"] = json!(t);
                    }
                    v
                })
                .collect();
            let mut out = json!({ "logStreams": items });
            if skip + limit < total {
                out["nextToken"] = json!((skip + limit).to_string());
            }
            Ok(out)
        }
        "PutLogEvents" => {
            let group = group_name(input)?;
            let stream = required(input, "logStreamName")?;
            let events = input
                .get("logEvents")
                .and_then(Value::as_array)
                .ok_or_else(|| Failure::invalid("logEvents is required"))?;
            if events.is_empty() || events.len() > MAX_PUT_EVENTS {
                return Err(Failure::invalid(format!(
                    "logEvents takes 1 to {MAX_PUT_EVENTS} events"
                )));
            }
            let mut parsed = Vec::with_capacity(events.len());
            for e in events {
                let ts = integer(e, "timestamp")?
                    .ok_or_else(|| Failure::invalid("every log event needs a timestamp"))?;
                let message = required(e, "message")?;
                if message.is_empty() {
                    return Err(Failure::invalid("a log event's message must not be empty"));
                }
                parsed.push((ts, message.to_owned()));
            }
            groups.put_events(&group, stream, &parsed)?;
            Ok(json!({ "nextSequenceToken": format!("{:056}", now_ms()) }))
        }
        "GetLogEvents" => {
            let group = group_name(input)?;
            let stream = required(input, "logStreamName")?.to_owned();
            let limit = limit(input, MAX_READ_EVENTS)?;
            let from_head = input
                .get("startFromHead")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            let only = |s: &str| s == stream;
            if !groups.streams(&group)?.iter().any(|(n, _)| *n == stream) {
                return Err(LogsError::StreamNotFound.into());
            }
            let events = groups.events(
                &group,
                Some(&only),
                integer(input, "startTime")?,
                integer(input, "endTime")?,
                &FilterPattern::default(),
            )?;
            // Tokens are positions in this (timestamp-ordered) list: `f/N` reads from
            // N forward, `b/N` reads the events before N.
            let token = text(input, "nextToken");
            let (start, end) = match token.and_then(|t| t.split_once('/')) {
                Some(("f", n)) => {
                    let n = n.parse::<usize>().unwrap_or(0).min(events.len());
                    (n, (n + limit).min(events.len()))
                }
                Some(("b", n)) => {
                    let n = n.parse::<usize>().unwrap_or(0).min(events.len());
                    (n.saturating_sub(limit), n)
                }
                _ if from_head => (0, limit.min(events.len())),
                _ => (events.len().saturating_sub(limit), events.len()),
            };
            let items: Vec<Value> = events[start..end]
                .iter()
                .map(|e| event_json(e, false))
                .collect();
            Ok(json!({
                "events": items,
                "nextForwardToken": format!("f/{end:056}"),
                "nextBackwardToken": format!("b/{start:056}"),
            }))
        }
        "FilterLogEvents" => {
            let group = group_name(input)?;
            let names = string_list(input, "logStreamNames");
            let prefix = text(input, "logStreamNamePrefix").map(str::to_owned);
            if !names.is_empty() && prefix.is_some() {
                return Err(Failure::invalid(
                    "logStreamNames and logStreamNamePrefix are mutually exclusive",
                ));
            }
            let pattern = FilterPattern::parse(text(input, "filterPattern").unwrap_or_default())?;
            let limit = limit(input, MAX_READ_EVENTS)?;
            let only = |s: &str| {
                (names.is_empty() || names.iter().any(|n| n == s))
                    && prefix.as_deref().is_none_or(|p| s.starts_with(p))
            };
            let events = groups.events(
                &group,
                Some(&only),
                integer(input, "startTime")?,
                integer(input, "endTime")?,
                &pattern,
            )?;
            // The token is the count of matching events already given.
            let skip: usize = text(input, "nextToken")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            let total = events.len();
            let items: Vec<Value> = events
                .iter()
                .skip(skip)
                .take(limit)
                .map(|e| event_json(e, true))
                .collect();
            let searched: Vec<Value> = groups
                .streams(&group)?
                .into_iter()
                .filter(|(n, _)| only(n))
                .map(|(n, _)| json!({ "logStreamName": n, "searchedCompletely": true }))
                .collect();
            let mut out = json!({ "events": items, "searchedLogStreams": searched });
            if skip + limit < total {
                out["nextToken"] = json!((skip + limit).to_string());
            }
            Ok(out)
        }
        _ => Err(Failure(
            StatusCode::BAD_REQUEST,
            "UnknownOperationException",
            format!("spillway does not implement the CloudWatch Logs operation {op}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_references_take_names_and_arns() {
        assert_eq!(group_of_arn("/aws/lambda/f"), "/aws/lambda/f");
        assert_eq!(
            group_of_arn("arn:aws:logs:us-east-1:000000000000:log-group:/aws/lambda/f:*"),
            "/aws/lambda/f"
        );
        assert_eq!(
            group_of_arn("arn:aws:logs:us-east-1:000000000000:log-group:g"),
            "g"
        );
        assert!(group_name(&json!({})).is_err());
    }

    #[test]
    fn pages_continue_after_the_token() {
        let items = vec!["a", "b", "c"];
        let (p, next) = page(items.clone(), |s| s, None, 2);
        assert_eq!((p, next.as_deref()), (vec!["a", "b"], Some("b")));
        let (p, next) = page(items, |s| s, Some("b"), 2);
        assert_eq!((p, next), (vec!["c"], None));
    }

    #[test]
    fn limits_are_bounded() {
        assert!(limit(&json!({"limit": 0}), 50).is_err());
        assert!(limit(&json!({"limit": 51}), 50).is_err());
        assert!(limit(&json!({"limit": "x"}), 50).is_err());
        assert_eq!(limit(&json!({}), 50).unwrap(), 50);
    }
}
