//! SQS on the shared endpoint, in both of its protocols: AWS JSON 1.0
//! (`X-Amz-Target: AmazonSQS.Op`, what botocore >= 1.31 and aws-sdk-go-v2 send) and
//! awsQuery (`Action=Op`, XML answers). Both are decoded into the JSON form, run by the
//! same actions over [`crate::queue::Queues`], and the JSON result is encoded back in
//! the request's protocol. Errors carry SQS's awsQuery code too (`x-amzn-query-error`),
//! which JSON clients report, as SQS does.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::front::{self, ControlPlane, ControlRequest, ControlService};
use crate::queue::{self, MessageAttribute, QueueError, Queues};

/// Most entries of a batch request.
const MAX_BATCH: usize = 10;
/// Most form pairs taken from one awsQuery request.
const MAX_FORM_PAIRS: usize = 2_000;
/// Most dotted segments of one awsQuery parameter name.
const MAX_FORM_DEPTH: usize = 8;

/// An SQS error: its status, the JSON protocol's type, the awsQuery code.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsError {
    pub status: StatusCode,
    pub json_type: &'static str,
    pub query_code: &'static str,
    pub message: String,
}

impl SqsError {
    fn new(json_type: &'static str, query_code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            json_type,
            query_code,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterValue", "InvalidParameterValue", message)
    }

    fn missing(name: &str) -> Self {
        Self::new(
            "MissingParameter",
            "MissingParameter",
            format!("The request must contain the parameter {name}."),
        )
    }
}

impl From<QueueError> for SqsError {
    fn from(e: QueueError) -> Self {
        let message = e.to_string();
        let (json_type, query_code) = match &e {
            QueueError::NotFound => (
                "QueueDoesNotExist",
                "AWS.SimpleQueueService.NonExistentQueue",
            ),
            QueueError::AlreadyExists(_) => ("QueueNameExists", "QueueAlreadyExists"),
            QueueError::InvalidAttributeName(_) => ("InvalidAttributeName", "InvalidAttributeName"),
            QueueError::InvalidAttributeValue(_) => {
                ("InvalidAttributeValue", "InvalidAttributeValue")
            }
            QueueError::InvalidParameter(_) => ("InvalidParameterValue", "InvalidParameterValue"),
            QueueError::InvalidContents(_) => ("InvalidMessageContents", "InvalidMessageContents"),
            QueueError::ReceiptHandleInvalid(_) => {
                ("ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid")
            }
            QueueError::NotInflight => (
                "MessageNotInflight",
                "AWS.SimpleQueueService.MessageNotInflight",
            ),
            QueueError::OverLimit(_) => ("OverLimit", "OverLimit"),
            QueueError::Storage(_) => {
                return Self {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    json_type: "InternalError",
                    query_code: "InternalError",
                    message: "We encountered an internal error. Please try again.".into(),
                };
            }
        };
        Self::new(json_type, query_code, message)
    }
}

/// The two wire protocols.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Protocol {
    Json,
    Query,
}

/// Answers one request of this service.
pub async fn handle(cp: &ControlPlane, request: ControlRequest) -> Response {
    let (protocol, operation, input) = match request.json_target() {
        Some(op) => {
            let op = op.to_owned();
            let Some(input) = json_body(&request.body) else {
                return respond_error(
                    Protocol::Json,
                    &request,
                    &SqsError::new(
                        "SerializationException",
                        "SerializationException",
                        "The request body is not a JSON object.",
                    ),
                );
            };
            (Protocol::Json, op, input)
        }
        None => {
            let Some(op) = request.query_action() else {
                return front::unimplemented(ControlService::Sqs, &request);
            };
            let mut pairs = front::form_pairs(&request.body);
            pairs.extend(front::form_pairs(
                request.uri.query().unwrap_or_default().as_bytes(),
            ));
            (Protocol::Query, op, query_input(&pairs))
        }
    };
    if !is_operation(&operation) {
        return front::unimplemented(ControlService::Sqs, &request);
    }
    let origin = request.origin();
    let queues = Queues::shared(
        std::sync::Arc::clone(&cp.resources),
        &cp.region,
        &cp.account_id,
    );
    let context = Context {
        queues: &queues,
        origin,
        path: request.uri.path().to_owned(),
    };
    match run(&context, &operation, &input).await {
        Ok(result) => respond(protocol, &operation, &result),
        Err(e) => respond_error(protocol, &request, &e),
    }
}

struct Context<'a> {
    queues: &'a Queues,
    /// `http(s)://HOST` as the client reached us: queue URLs start with it.
    origin: String,
    /// The request path: awsQuery clients may post to the queue's URL.
    path: String,
}

impl Context<'_> {
    fn url(&self, name: &str) -> String {
        format!("{}/{}/{name}", self.origin, self.queues.account_id)
    }

    /// The queue a request names by `QueueUrl` (or, in awsQuery, by its path).
    fn queue(&self, input: &Value) -> Result<String, SqsError> {
        let reference = match input.get("QueueUrl").and_then(Value::as_str) {
            Some(u) => u.to_owned(),
            None if self.path.len() > 1 => self.path.clone(),
            None => return Err(SqsError::missing("QueueUrl")),
        };
        let name = queue::name_of(&reference);
        if !queue::valid_name(name) {
            return Err(SqsError::from(QueueError::NotFound));
        }
        Ok(name.to_owned())
    }
}

const OPERATIONS: [&str; 18] = [
    "CreateQueue",
    "GetQueueUrl",
    "ListQueues",
    "GetQueueAttributes",
    "SetQueueAttributes",
    "TagQueue",
    "UntagQueue",
    "ListQueueTags",
    "DeleteQueue",
    "PurgeQueue",
    "SendMessage",
    "SendMessageBatch",
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "ListDeadLetterSourceQueues",
];

fn is_operation(op: &str) -> bool {
    OPERATIONS.contains(&op)
}

/// An AWS JSON request body: an object (`{}` when empty), or None when it is not one
/// (shared with `api::logs` and `api::monitoring`).
pub(super) fn json_body(body: &[u8]) -> Option<Value> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Some(Value::Object(Map::new()));
    }
    serde_json::from_slice::<Value>(body)
        .ok()
        .filter(Value::is_object)
}

/// A string member (shared with `api::logs` and `api::monitoring`).
pub(super) fn text<'a>(input: &'a Value, name: &str) -> Option<&'a str> {
    input.get(name).and_then(Value::as_str)
}

fn required<'a>(input: &'a Value, name: &str) -> Result<&'a str, SqsError> {
    text(input, name).ok_or_else(|| SqsError::missing(name))
}

/// An integer member, given as a JSON number or (awsQuery) as text.
fn integer(input: &Value, name: &str) -> Result<Option<i64>, SqsError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
            SqsError::invalid(format!("Value {n} for parameter {name} is invalid."))
        }),
        Some(Value::String(s)) => {
            s.trim().parse().map(Some).map_err(|_| {
                SqsError::invalid(format!("Value {s} for parameter {name} is invalid."))
            })
        }
        Some(_) => Err(SqsError::invalid(format!(
            "Invalid value for the parameter {name}."
        ))),
    }
}

/// An integer member within `lo..=hi`.
fn bounded(input: &Value, name: &str, lo: i64, hi: i64) -> Result<Option<u64>, SqsError> {
    match integer(input, name)? {
        None => Ok(None),
        Some(v) if (lo..=hi).contains(&v) => Ok(Some(v as u64)),
        Some(v) => Err(SqsError::invalid(format!(
            "Value {v} for parameter {name} is invalid. Reason: Must be between {lo} and {hi}, if provided."
        ))),
    }
}

/// A map of strings (attributes, tags).
fn string_map(input: &Value, name: &str) -> Result<BTreeMap<String, String>, SqsError> {
    match input.get(name) {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(SqsError::invalid(format!("Invalid value for {name}.{k}."))),
            })
            .collect(),
        Some(_) => Err(SqsError::invalid(format!(
            "{name} must be a map of strings."
        ))),
    }
}

/// A list of strings (shared with `api::logs` and `api::monitoring`).
pub(super) fn string_list(input: &Value, name: &str) -> Vec<String> {
    input
        .get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn message_attributes(input: &Value) -> Result<BTreeMap<String, MessageAttribute>, SqsError> {
    match input.get("MessageAttributes") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| {
                serde_json::from_value::<MessageAttribute>(v.clone())
                    .map(|a| (k.clone(), a))
                    .map_err(|_| {
                        SqsError::invalid(format!(
                            "The message attribute '{k}' must contain a DataType and a value."
                        ))
                    })
            })
            .collect(),
        Some(_) => Err(SqsError::invalid("MessageAttributes must be a map.")),
    }
}

/// The batch entries of a request, checked as SQS checks them.
fn entries(input: &Value) -> Result<Vec<Value>, SqsError> {
    let entries = input
        .get("Entries")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() {
        return Err(SqsError::new(
            "EmptyBatchRequest",
            "AWS.SimpleQueueService.EmptyBatchRequest",
            "There should be at least one entry in the request.",
        ));
    }
    if entries.len() > MAX_BATCH {
        return Err(SqsError::new(
            "TooManyEntriesInBatchRequest",
            "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
            format!(
                "Maximum number of entries per request are {MAX_BATCH}. You have sent {}.",
                entries.len()
            ),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for e in &entries {
        let id = text(e, "Id").unwrap_or_default();
        if id.is_empty()
            || id.len() > 80
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(SqsError::new(
                "InvalidBatchEntryId",
                "AWS.SimpleQueueService.InvalidBatchEntryId",
                "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.",
            ));
        }
        if !seen.insert(id.to_owned()) {
            return Err(SqsError::new(
                "BatchEntryIdsNotDistinct",
                "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
                format!("Id {id} repeated."),
            ));
        }
    }
    Ok(entries)
}

/// One failed batch entry.
fn failed(id: &str, e: &SqsError) -> Value {
    json!({
        "Id": id,
        "SenderFault": !e.status.is_server_error(),
        "Code": e.query_code,
        "Message": e.message,
    })
}

/// Runs `each` over a batch request's entries: `Successful` entries carry their `Id`
/// and what `each` answered, `Failed` ones SQS's error; a server fault fails the whole.
fn batch(
    input: &Value,
    mut each: impl FnMut(&Value) -> Result<Value, SqsError>,
) -> Result<Value, SqsError> {
    let (mut ok, mut bad) = (Vec::new(), Vec::new());
    for e in entries(input)? {
        let id = text(&e, "Id").unwrap_or_default();
        match each(&e) {
            Ok(mut v) => {
                v["Id"] = json!(id);
                ok.push(v);
            }
            Err(err) if err.status.is_server_error() => return Err(err),
            Err(err) => bad.push(failed(id, &err)),
        }
    }
    Ok(json!({ "Successful": ok, "Failed": bad }))
}

fn delete_one(queues: &Queues, name: &str, entry: &Value) -> Result<Value, SqsError> {
    queues.delete_message(name, required(entry, "ReceiptHandle")?)?;
    Ok(json!({}))
}

fn change_one(queues: &Queues, name: &str, entry: &Value) -> Result<Value, SqsError> {
    let timeout = bounded(entry, "VisibilityTimeout", 0, 43_200)?
        .ok_or_else(|| SqsError::missing("VisibilityTimeout"))?;
    queues.change_visibility(name, required(entry, "ReceiptHandle")?, timeout)?;
    Ok(json!({}))
}

/// Whether `name` is asked for by a list of names (`All`, `.*`, `prefix.*`, exact).
fn wanted(list: &[String], name: &str) -> bool {
    list.iter().any(|w| {
        w == "All"
            || w == ".*"
            || w == name
            || w.strip_suffix(".*")
                .is_some_and(|p| name.starts_with(p) && name[p.len()..].starts_with('.'))
    })
}

fn send_one(cx: &Context<'_>, name: &str, entry: &Value) -> Result<Value, SqsError> {
    let body = required(entry, "MessageBody")?;
    let delay = bounded(entry, "DelaySeconds", 0, 900)?;
    let attributes = message_attributes(entry)?;
    let sent = cx.queues.send(name, body, delay, &attributes)?;
    let mut out = json!({
        "MessageId": sent.message_id,
        "MD5OfMessageBody": sent.md5_body,
    });
    if let Some(md5) = sent.md5_attributes {
        out["MD5OfMessageAttributes"] = Value::String(md5);
    }
    Ok(out)
}

async fn run(cx: &Context<'_>, op: &str, input: &Value) -> Result<Value, SqsError> {
    let queues = cx.queues;
    match op {
        "CreateQueue" => {
            let name = required(input, "QueueName")?;
            let mut tags = string_map(input, "tags")?;
            tags.extend(string_map(input, "Tags")?);
            queues.create(name, &string_map(input, "Attributes")?, &tags)?;
            Ok(json!({ "QueueUrl": cx.url(name) }))
        }
        "GetQueueUrl" => {
            let name = required(input, "QueueName")?;
            if !queue::valid_name(name) {
                return Err(QueueError::NotFound.into());
            }
            queues.exists(name)?;
            Ok(json!({ "QueueUrl": cx.url(name) }))
        }
        "ListQueues" => {
            let prefix = text(input, "QueueNamePrefix").unwrap_or_default();
            let max = bounded(input, "MaxResults", 1, 1000)?;
            let after = text(input, "NextToken").unwrap_or_default();
            let names: Vec<String> = queues
                .list(prefix)?
                .into_iter()
                .filter(|n| n.as_str() > after)
                .collect();
            let limit = max.map_or(1000, |m| m as usize);
            let mut out = json!({});
            let page: Vec<Value> = names.iter().take(limit).map(|n| json!(cx.url(n))).collect();
            if !page.is_empty() {
                out["QueueUrls"] = Value::Array(page);
            }
            if max.is_some() && names.len() > limit {
                out["NextToken"] = json!(names[limit - 1]);
            }
            Ok(out)
        }
        "GetQueueAttributes" => {
            let name = cx.queue(input)?;
            let mut names = string_list(input, "AttributeNames");
            if names.is_empty() {
                names.push("All".into());
            }
            let attributes = queues.attributes(&name, &names)?;
            if attributes.is_empty() {
                return Ok(json!({}));
            }
            Ok(json!({ "Attributes": attributes }))
        }
        "SetQueueAttributes" => {
            let name = cx.queue(input)?;
            queues.set_attributes(&name, &string_map(input, "Attributes")?)?;
            Ok(json!({}))
        }
        "TagQueue" => {
            let name = cx.queue(input)?;
            queues.retag(&name, &string_map(input, "Tags")?, &[])?;
            Ok(json!({}))
        }
        "UntagQueue" => {
            let name = cx.queue(input)?;
            queues.retag(&name, &BTreeMap::new(), &string_list(input, "TagKeys"))?;
            Ok(json!({}))
        }
        "ListQueueTags" => {
            let tags = queues.tags(&cx.queue(input)?)?;
            if tags.is_empty() {
                return Ok(json!({}));
            }
            Ok(json!({ "Tags": tags }))
        }
        "DeleteQueue" => {
            queues.delete(&cx.queue(input)?)?;
            Ok(json!({}))
        }
        "PurgeQueue" => {
            queues.purge(&cx.queue(input)?)?;
            Ok(json!({}))
        }
        "ListDeadLetterSourceQueues" => {
            let name = cx.queue(input)?;
            let arn = queues.arn(&name);
            let mut urls = Vec::new();
            for other in queues.list("")? {
                let policy = queues.attributes(&other, &["RedrivePolicy".to_owned()])?;
                if policy
                    .get("RedrivePolicy")
                    .and_then(|p| serde_json::from_str::<Value>(p).ok())
                    .is_some_and(|p| p["deadLetterTargetArn"] == arn.as_str())
                {
                    urls.push(cx.url(&other));
                }
            }
            Ok(json!({ "queueUrls": urls }))
        }
        "SendMessage" => {
            let name = cx.queue(input)?;
            send_one(cx, &name, input)
        }
        "SendMessageBatch" => {
            let name = cx.queue(input)?;
            queues.exists(&name)?;
            let entries = entries(input)?;
            let total: usize = entries
                .iter()
                .map(|e| text(e, "MessageBody").map_or(0, str::len))
                .sum();
            if total > queue::MAX_MESSAGE_BYTES {
                return Err(SqsError::new(
                    "BatchRequestTooLong",
                    "AWS.SimpleQueueService.BatchRequestTooLong",
                    format!(
                        "Batch requests cannot be longer than {} bytes.",
                        queue::MAX_MESSAGE_BYTES
                    ),
                ));
            }
            batch(input, |e| send_one(cx, &name, e))
        }
        "ReceiveMessage" => {
            let name = cx.queue(input)?;
            let max = bounded(input, "MaxNumberOfMessages", 1, 10)?.unwrap_or(1) as usize;
            let visibility = bounded(input, "VisibilityTimeout", 0, 43_200)?;
            let wait = match bounded(input, "WaitTimeSeconds", 0, 20)? {
                Some(w) => w,
                None => queues
                    .attributes(&name, &["ReceiveMessageWaitTimeSeconds".to_owned()])?
                    .get("ReceiveMessageWaitTimeSeconds")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            };
            let mut system = string_list(input, "AttributeNames");
            system.extend(string_list(input, "MessageSystemAttributeNames"));
            let user = string_list(input, "MessageAttributeNames");
            let got = queues
                .receive(&name, max, visibility, Duration::from_secs(wait))
                .await?;
            let messages: Vec<Value> = got
                .into_iter()
                .map(|m| {
                    let mut v = json!({
                        "MessageId": m.message_id,
                        "ReceiptHandle": m.receipt_handle,
                        "MD5OfBody": m.md5_body,
                        "Body": m.body,
                    });
                    let attributes: BTreeMap<&String, &String> = m
                        .attributes
                        .iter()
                        .filter(|(k, _)| wanted(&system, k))
                        .collect();
                    if !attributes.is_empty() {
                        v["Attributes"] = json!(attributes);
                    }
                    let chosen: BTreeMap<String, MessageAttribute> = m
                        .message_attributes
                        .into_iter()
                        .filter(|(k, _)| wanted(&user, k))
                        .collect();
                    if let Some(md5) = queue::md5_of_attributes(&chosen) {
                        v["MD5OfMessageAttributes"] = json!(md5);
                        v["MessageAttributes"] = json!(chosen);
                    }
                    v
                })
                .collect();
            if messages.is_empty() {
                return Ok(json!({}));
            }
            Ok(json!({ "Messages": messages }))
        }
        "DeleteMessage" => delete_one(queues, &cx.queue(input)?, input),
        "DeleteMessageBatch" => {
            let name = cx.queue(input)?;
            queues.exists(&name)?;
            batch(input, |e| delete_one(queues, &name, e))
        }
        "ChangeMessageVisibility" => change_one(queues, &cx.queue(input)?, input),
        "ChangeMessageVisibilityBatch" => {
            let name = cx.queue(input)?;
            queues.exists(&name)?;
            batch(input, |e| change_one(queues, &name, e))
        }
        _ => Err(SqsError::new(
            "InvalidAction",
            "InvalidAction",
            format!("spillway does not implement the SQS operation {op}"),
        )),
    }
}

/// awsQuery parameters as a JSON tree: `A.1.B=x` is `{"A": [{"B": "x"}]}` (numbered
/// segments are list positions, `member`/`entry` segments are skipped), every value a
/// string. Shared with CloudWatch's awsQuery form.
pub fn form_tree(pairs: &[(String, String)]) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs.iter().take(MAX_FORM_PAIRS) {
        let segments: Vec<&str> = key
            .split('.')
            .filter(|s| *s != "member" && *s != "entry")
            .collect();
        if segments.is_empty()
            || segments.len() > MAX_FORM_DEPTH
            || segments.iter().any(|s| s.is_empty())
        {
            continue;
        }
        let mut at = &mut root;
        for (i, segment) in segments.iter().enumerate() {
            let Value::Object(map) = at else {
                break;
            };
            if i + 1 == segments.len() {
                map.insert((*segment).to_owned(), Value::String(value.clone()));
                break;
            }
            at = map
                .entry((*segment).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    lists_from_positions(root)
}

/// Objects whose keys are all positions (`"1"`, `"2"`, ...) become lists in order.
fn lists_from_positions(v: Value) -> Value {
    match v {
        Value::Object(map) => {
            let positional = !map.is_empty()
                && map
                    .keys()
                    .all(|k| k.len() <= 6 && k.bytes().all(|b| b.is_ascii_digit()));
            if positional {
                let mut items: Vec<(u32, Value)> = map
                    .into_iter()
                    .map(|(k, v)| (k.parse().unwrap_or(0), lists_from_positions(v)))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Value::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Value::Object(
                    map.into_iter()
                        .map(|(k, v)| (k, lists_from_positions(v)))
                        .collect(),
                )
            }
        }
        other => other,
    }
}

/// A list of `{K: .., V: ..}` objects as a map.
fn pairs_to_map(list: Option<Value>, key: &str, value: &str) -> Option<Value> {
    let Value::Array(items) = list? else {
        return None;
    };
    Some(Value::Object(
        items
            .into_iter()
            .filter_map(|mut item| {
                let k = item.get(key)?.as_str()?.to_owned();
                Some((
                    k,
                    item.get_mut(value).map(Value::take).unwrap_or(Value::Null),
                ))
            })
            .collect(),
    ))
}

/// SQS's awsQuery names turned into the JSON protocol's members.
fn query_input(pairs: &[(String, String)]) -> Value {
    let Value::Object(mut map) = form_tree(pairs) else {
        return json!({});
    };
    rename_query_members(&mut map);
    for batch in [
        "SendMessageBatchRequestEntry",
        "DeleteMessageBatchRequestEntry",
        "ChangeMessageVisibilityBatchRequestEntry",
    ] {
        if let Some(Value::Array(mut entries)) = map.remove(batch) {
            for e in &mut entries {
                if let Value::Object(m) = e {
                    rename_query_members(m);
                }
            }
            map.insert("Entries".into(), Value::Array(entries));
        }
    }
    Value::Object(map)
}

fn rename_query_members(map: &mut Map<String, Value>) {
    if let Some(v) = pairs_to_map(map.remove("Attribute"), "Name", "Value") {
        map.insert("Attributes".into(), v);
    }
    if let Some(v) = pairs_to_map(map.remove("Tag"), "Key", "Value") {
        map.insert("Tags".into(), v);
    }
    if let Some(v) = pairs_to_map(map.remove("MessageAttribute"), "Name", "Value") {
        map.insert("MessageAttributes".into(), v);
    }
    for (from, to) in [
        ("AttributeName", "AttributeNames"),
        ("MessageAttributeName", "MessageAttributeNames"),
        ("MessageSystemAttributeName", "MessageSystemAttributeNames"),
        ("TagKey", "TagKeys"),
    ] {
        if let Some(v) = map.remove(from) {
            map.insert(to.into(), v);
        }
    }
}

/// A result in the request's protocol.
fn respond(protocol: Protocol, op: &str, result: &Value) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let (content_type, body) = match protocol {
        Protocol::Json => ("application/x-amz-json-1.0", result.to_string()),
        Protocol::Query => {
            let mut inner = String::new();
            if let Value::Object(m) = result {
                for (k, v) in m {
                    xml_member(&mut inner, op, k, v);
                }
            }
            let result = if inner.is_empty() {
                String::new()
            } else {
                format!("<{op}Result>{inner}</{op}Result>")
            };
            (
                "text/xml",
                format!(
                    "<?xml version=\"1.0\"?><{op}Response xmlns=\"{}\">{result}<ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{op}Response>",
                    front::query_namespace(ControlService::Sqs)
                ),
            )
        }
    };
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        r.headers_mut().insert(super::names::X_AMZN_REQUEST_ID, v);
    }
    r
}

/// One member in SQS's XML: lists and maps are flattened (each item an element of the
/// item's own name).
fn xml_member(out: &mut String, op: &str, name: &str, value: &Value) {
    match (name, value) {
        ("Attributes" | "Tags" | "MessageAttributes", Value::Object(m)) => {
            let (item, key) = match name {
                "Attributes" => ("Attribute", "Name"),
                "Tags" => ("Tag", "Key"),
                _ => ("MessageAttribute", "Name"),
            };
            for (k, v) in m {
                out.push_str(&format!("<{item}><{key}>{}</{key}>", front::xml_escape(k)));
                xml_member(out, op, "Value", v);
                out.push_str(&format!("</{item}>"));
            }
        }
        (_, Value::Array(items)) => {
            let item = match name {
                "QueueUrls" | "queueUrls" => "QueueUrl".to_owned(),
                "Messages" => "Message".to_owned(),
                "Successful" => format!("{op}ResultEntry"),
                "Failed" => "BatchResultErrorEntry".to_owned(),
                other => other.to_owned(),
            };
            for v in items {
                xml_member(out, op, &item, v);
            }
        }
        (_, Value::Object(m)) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in m {
                xml_member(out, op, k, v);
            }
            out.push_str(&format!("</{name}>"));
        }
        (_, Value::Null) => {}
        (_, Value::String(s)) => {
            out.push_str(&format!("<{name}>{}</{name}>", front::xml_escape(s)));
        }
        (_, other) => out.push_str(&format!("<{name}>{other}</{name}>")),
    }
}

/// An error in the request's protocol; JSON errors carry the awsQuery code in
/// `x-amzn-query-error`, as SQS sends it.
fn respond_error(protocol: Protocol, request: &ControlRequest, e: &SqsError) -> Response {
    if protocol == Protocol::Query {
        return front::error(
            ControlService::Sqs,
            &request.headers,
            e.status,
            e.query_code,
            &e.message,
        );
    }
    let body = json!({
        "__type": format!("com.amazonaws.sqs#{}", e.json_type),
        "message": e.message,
    });
    let mut r = (e.status, body.to_string()).into_response();
    let headers = r.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    let fault = if e.status.is_server_error() {
        "Receiver"
    } else {
        "Sender"
    };
    if let Ok(v) = HeaderValue::from_str(&format!("{};{fault}", e.query_code)) {
        headers.insert("x-amzn-query-error", v);
    }
    headers.insert(super::names::X_AMZN_REQUEST_ID, super::uuid_request_id());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(form: &str) -> Vec<(String, String)> {
        front::form_pairs(form.as_bytes())
    }

    #[test]
    fn query_forms_become_the_json_members() {
        let v = query_input(&pairs(
            "Action=CreateQueue&QueueName=q&Attribute.1.Name=VisibilityTimeout&Attribute.1.Value=60\
             &Attribute.2.Name=DelaySeconds&Attribute.2.Value=5&Tag.1.Key=env&Tag.1.Value=dev",
        ));
        assert_eq!(v["QueueName"], "q");
        assert_eq!(
            v["Attributes"],
            json!({"VisibilityTimeout": "60", "DelaySeconds": "5"})
        );
        assert_eq!(v["Tags"], json!({"env": "dev"}));

        let v = query_input(&pairs(
            "Action=SendMessageBatch&SendMessageBatchRequestEntry.2.Id=b&SendMessageBatchRequestEntry.2.MessageBody=two\
             &SendMessageBatchRequestEntry.1.Id=a&SendMessageBatchRequestEntry.1.MessageBody=one\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Name=k&SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.DataType=String\
             &SendMessageBatchRequestEntry.1.MessageAttribute.1.Value.StringValue=v",
        ));
        assert_eq!(v["Entries"][0]["Id"], "a");
        assert_eq!(v["Entries"][1]["MessageBody"], "two");
        assert_eq!(
            v["Entries"][0]["MessageAttributes"]["k"],
            json!({"DataType": "String", "StringValue": "v"})
        );

        let v = query_input(&pairs("AttributeName.1=All&MessageAttributeName.1=.*"));
        assert_eq!(v["AttributeNames"], json!(["All"]));
        assert_eq!(v["MessageAttributeNames"], json!([".*"]));

        // CloudWatch's `member` lists.
        let v = form_tree(&pairs(
            "AlarmNames.member.1=a&AlarmNames.member.2=b&Dimensions.member.1.Name=n",
        ));
        assert_eq!(v["AlarmNames"], json!(["a", "b"]));
        assert_eq!(v["Dimensions"], json!([{"Name": "n"}]));
    }

    #[test]
    fn hostile_forms_never_panic() {
        for form in [
            "a.b=1&a=2",
            "a=1&a.b=2",
            "....=1",
            "x.1=1&x.a=2",
            "x.99999999999=1",
            "a.b.c.d.e.f.g.h.i.j=1",
            "Attribute.1.Value=orphan",
            "Tag=flat",
        ] {
            let _ = query_input(&pairs(form));
        }
    }

    #[test]
    fn attribute_name_lists_take_all_prefixes_and_names() {
        let list = vec!["app.*".to_owned(), "exact".to_owned()];
        assert!(wanted(&list, "app.id"));
        assert!(!wanted(&list, "application"));
        assert!(wanted(&list, "exact"));
        assert!(wanted(&["All".to_owned()], "anything"));
        assert!(!wanted(&[], "x"));
    }

    #[test]
    fn results_encode_as_sqs_xml() {
        let mut out = String::new();
        xml_member(
            &mut out,
            "ReceiveMessage",
            "Messages",
            &json!([{"MessageId": "m", "Body": "<b>", "Attributes": {"SentTimestamp": "1"}}]),
        );
        assert_eq!(
            out,
            "<Message><Attributes_placeholder/></Message>"
                .replace(
                    "<Attributes_placeholder/>",
                    "<Attribute><Name>SentTimestamp</Name><Value>1</Value></Attribute><Body>&lt;b&gt;</Body><MessageId>m</MessageId>"
                )
        );
        let mut out = String::new();
        xml_member(
            &mut out,
            "DeleteMessageBatch",
            "Successful",
            &json!([{"Id": "a"}]),
        );
        assert_eq!(
            out,
            "<DeleteMessageBatchResultEntry><Id>a</Id></DeleteMessageBatchResultEntry>"
        );
    }

    #[test]
    fn queue_errors_carry_both_codes() {
        let e = SqsError::from(QueueError::NotFound);
        assert_eq!(e.json_type, "QueueDoesNotExist");
        assert_eq!(e.query_code, "AWS.SimpleQueueService.NonExistentQueue");
    }
}
