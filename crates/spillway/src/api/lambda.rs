//! Lambda's API on the shared endpoint (restJson1 under `/2015-03-31/` and its sibling
//! dates): functions, invocation, versions, concurrency, tags and event source mappings.
//! Requests are decoded here, `lambda::Lambda` does the work, and its errors become
//! Lambda's in one place ([`respond_error`]): the type in `x-amzn-ErrorType`, a
//! `{"Type", "Message"}` body.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};

use super::front::{ControlPlane, ControlRequest, ControlService};
use crate::function::{FunctionError, TableWrites};
use crate::lambda::{FunctionDoc, FunctionSettings, Lambda, LambdaError};
use crate::mapping::Mapping;
use crate::storage::{StorageError, SyncMode};

/// Answers one Lambda request.
pub async fn handle(cp: &ControlPlane, request: ControlRequest) -> Response {
    let lambda = &cp.lambda;
    let path = request.uri.path().to_owned();
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(|s| super::front::percent_decode(s.as_bytes()))
        .collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let method = request.method.clone();
    // The JSON body, or `None` when it is not a JSON object.
    let body = || -> Option<Value> {
        if request.body.is_empty() {
            return Some(json!({}));
        }
        serde_json::from_slice::<Value>(&request.body)
            .ok()
            .filter(Value::is_object)
    };
    macro_rules! body {
        () => {
            match body() {
                Some(v) => v,
                None => {
                    return lambda_error(
                        StatusCode::BAD_REQUEST,
                        "InvalidRequestContentException",
                        "Could not parse request body into json",
                    );
                }
            }
        };
    }
    let result = match (&method, segments.as_slice()) {
        (&Method::POST, ["2015-03-31", "functions"]) => create_function(lambda, body!()),
        (&Method::GET, ["2015-03-31", "functions"]) => list_functions(lambda),
        (&Method::GET, ["2015-03-31", "functions", f]) => get_function(lambda, f, &request),
        (&Method::DELETE, ["2015-03-31", "functions", f]) => lambda
            .delete(Lambda::resolve_name(f))
            .map(|()| no_content()),
        (&Method::GET, ["2015-03-31", "functions", f, "configuration"]) => lambda
            .get(Lambda::resolve_name(f))
            .map(|d| ok(configuration(lambda, &d, None))),
        (&Method::PUT, ["2015-03-31", "functions", f, "configuration"]) => {
            let b = body!();
            lambda
                .update_configuration(Lambda::resolve_name(f), settings(&b))
                .map(|d| ok(configuration(lambda, &d, None)))
        }
        (&Method::PUT, ["2015-03-31", "functions", f, "code"]) => update_code(lambda, f, body!()),
        (&Method::POST, ["2015-03-31", "functions", f, "invocations"]) => {
            return invoke(cp, Lambda::resolve_name(f), &request).await;
        }
        (&Method::POST, ["2015-03-31", "functions", f, "versions"]) => {
            let b = body!();
            let description = b["Description"].as_str().unwrap_or_default().to_owned();
            lambda
                .publish(Lambda::resolve_name(f), &description)
                .map(|(d, v)| {
                    (
                        StatusCode::CREATED,
                        axum::Json(configuration(lambda, &d, Some(v))),
                    )
                        .into_response()
                })
        }
        (&Method::GET, ["2015-03-31", "functions", f, "versions"]) => {
            lambda.get(Lambda::resolve_name(f)).map(|d| {
                let mut versions = vec![configuration(lambda, &d, None)];
                versions.extend(
                    d.versions
                        .iter()
                        .map(|v| configuration(lambda, &d, Some(v.version))),
                );
                ok(json!({ "Versions": versions }))
            })
        }
        (&Method::GET, [_, "functions", f, "code-signing-config"]) => lambda
            .get(Lambda::resolve_name(f))
            .map(|d| ok(json!({ "FunctionName": d.name, "CodeSigningConfigArn": "" }))),
        (&Method::GET, [_, "functions", f, "runtime-management-config"]) => lambda
            .get(Lambda::resolve_name(f))
            .map(|_| ok(json!({ "UpdateRuntimeOn": "Auto" }))),
        (&Method::GET, [_, "functions", f, "recursion-config"]) => lambda
            .get(Lambda::resolve_name(f))
            .map(|_| ok(json!({ "RecursiveLoop": "Terminate" }))),
        (&Method::GET, [_, "functions", f, "concurrency"]) => {
            lambda.get(Lambda::resolve_name(f)).map(|d| {
                ok(match d.reserved_concurrency {
                    Some(n) => json!({ "ReservedConcurrentExecutions": n }),
                    None => json!({}),
                })
            })
        }
        (&Method::PUT, [_, "functions", f, "concurrency"]) => {
            let b = body!();
            match b["ReservedConcurrentExecutions"].as_u64() {
                Some(n) if n <= 1000 => lambda
                    .set_concurrency(Lambda::resolve_name(f), Some(n as u32))
                    .map(|()| ok(json!({ "ReservedConcurrentExecutions": n }))),
                _ => Err(LambdaError::InvalidParameter(
                    "ReservedConcurrentExecutions must be a number between 0 and 1000".into(),
                )),
            }
        }
        (&Method::DELETE, [_, "functions", f, "concurrency"]) => lambda
            .set_concurrency(Lambda::resolve_name(f), None)
            .map(|()| no_content()),
        (&Method::GET, [_, "tags", arn @ ..]) => {
            let arn = arn.join("/");
            match mapping_uuid(&arn) {
                Some(uuid) => lambda.mapping_tags(uuid).map(|t| ok(json!({ "Tags": t }))),
                None => lambda
                    .get(Lambda::resolve_name(&arn))
                    .map(|d| ok(json!({ "Tags": d.tags }))),
            }
        }
        (&Method::POST, [_, "tags", arn @ ..]) => {
            let arn = arn.join("/");
            let tags = string_map(&body!()["Tags"]);
            match mapping_uuid(&arn) {
                Some(uuid) => lambda.tag_mapping(uuid, tags, &[]).map(|()| no_content()),
                None => lambda
                    .tag(Lambda::resolve_name(&arn), tags, &[])
                    .map(|_| no_content()),
            }
        }
        (&Method::DELETE, [_, "tags", arn @ ..]) => {
            let arn = arn.join("/");
            let keys: Vec<String> =
                super::front::form_pairs(request.uri.query().unwrap_or_default().as_bytes())
                    .into_iter()
                    .filter(|(k, _)| k == "tagKeys")
                    .map(|(_, v)| v)
                    .collect();
            match mapping_uuid(&arn) {
                Some(uuid) => lambda
                    .tag_mapping(uuid, BTreeMap::new(), &keys)
                    .map(|()| no_content()),
                None => lambda
                    .tag(Lambda::resolve_name(&arn), BTreeMap::new(), &keys)
                    .map(|_| no_content()),
            }
        }
        (&Method::POST, ["2015-03-31", "event-source-mappings"]) => {
            let b = body!();
            lambda.create_mapping(b).map(|m| {
                (
                    StatusCode::ACCEPTED,
                    axum::Json(mapping_json(lambda, &m, "Creating")),
                )
                    .into_response()
            })
        }
        (&Method::GET, ["2015-03-31", "event-source-mappings"]) => {
            Ok(list_mappings(lambda, &request))
        }
        (&Method::GET, ["2015-03-31", "event-source-mappings", uuid]) => lambda
            .mapping(uuid)
            .map(|m| ok(mapping_json(lambda, &m, state_of(&m)))),
        (&Method::PUT, ["2015-03-31", "event-source-mappings", uuid]) => {
            let b = body!();
            lambda.update_mapping(uuid, b).map(|m| {
                (
                    StatusCode::ACCEPTED,
                    axum::Json(mapping_json(lambda, &m, "Updating")),
                )
                    .into_response()
            })
        }
        (&Method::DELETE, ["2015-03-31", "event-source-mappings", uuid]) => {
            lambda.delete_mapping(uuid).map(|m| {
                (
                    StatusCode::ACCEPTED,
                    axum::Json(mapping_json(lambda, &m, "Deleting")),
                )
                    .into_response()
            })
        }
        _ => return super::front::unimplemented(ControlService::Lambda, &request),
    };
    result.unwrap_or_else(|e| respond_error(&e))
}

/// The UUID of an event source mapping's ARN.
fn mapping_uuid(arn: &str) -> Option<&str> {
    arn.split_once(":event-source-mapping:")
        .map(|(_, uuid)| uuid)
}

fn ok(v: Value) -> Response {
    axum::Json(v).into_response()
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Lambda's error shape.
fn lambda_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut r = (
        status,
        axum::Json(json!({ "Type": "User", "Message": message, "message": message })),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(kind) {
        r.headers_mut().insert("x-amzn-errortype", v);
    }
    r
}

/// Each of the domain's errors as Lambda answers it.
fn respond_error(e: &LambdaError) -> Response {
    let message = e.to_string();
    let (status, kind) = match e {
        LambdaError::NotFound(_) => (StatusCode::NOT_FOUND, "ResourceNotFoundException"),
        LambdaError::Conflict(_) => (StatusCode::CONFLICT, "ResourceConflictException"),
        LambdaError::InvalidParameter(_) | LambdaError::InvalidZip(_) | LambdaError::Mapping(_) => {
            (StatusCode::BAD_REQUEST, "InvalidParameterValueException")
        }
        LambdaError::Storage(StorageError::Full(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "ServiceException")
        }
        LambdaError::Storage(_) | LambdaError::Io(_) => {
            tracing::error!(error = %e, "Lambda control plane failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "ServiceException")
        }
    };
    lambda_error(status, kind, &message)
}

fn string_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|o| {
            o.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// A function's settings from CreateFunction's or UpdateFunctionConfiguration's members.
fn settings(b: &Value) -> FunctionSettings {
    let text = |k: &str| b[k].as_str().map(str::to_owned);
    let number = |k: &str| b[k].as_u64().map(|n| n.min(u64::from(u32::MAX)) as u32);
    FunctionSettings {
        runtime: text("Runtime"),
        handler: text("Handler"),
        role: text("Role"),
        description: text("Description"),
        timeout: number("Timeout"),
        memory_size: number("MemorySize"),
        environment: b.get("Environment").map(|e| string_map(&e["Variables"])),
        architectures: b["Architectures"].as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        }),
        ephemeral_storage: b["EphemeralStorage"]["Size"]
            .as_u64()
            .map(|n| n.min(10_240) as u32),
    }
}

/// The zip of a request's `ZipFile` member (base64), or why there is none.
fn zip_file(b: &Value) -> Result<Vec<u8>, LambdaError> {
    let code = if b.get("Code").is_some() {
        &b["Code"]
    } else {
        b
    };
    match code["ZipFile"].as_str() {
        Some(z) => base64::engine::general_purpose::STANDARD
            .decode(z)
            .map_err(|_| {
                LambdaError::InvalidParameter(
                    "Could not unzip uploaded file. Please check your file, then try to upload again.".into(),
                )
            }),
        None if code.get("S3Bucket").is_some() || code.get("ImageUri").is_some() => {
            Err(LambdaError::InvalidParameter(
                "spillway takes function code as a ZipFile only (S3 and container images are not supported)".into(),
            ))
        }
        None => Err(LambdaError::InvalidParameter(
            "Please provide a source for function code.".into(),
        )),
    }
}

fn create_function(lambda: &Lambda, b: Value) -> Result<Response, LambdaError> {
    let Some(name) = b["FunctionName"].as_str() else {
        return Err(LambdaError::InvalidParameter(
            "FunctionName is required".into(),
        ));
    };
    let zip = zip_file(&b)?;
    let tags = string_map(&b["Tags"]);
    let publish = b["Publish"].as_bool().unwrap_or(false);
    let doc = lambda.create(
        Lambda::resolve_name(name),
        settings(&b),
        &zip,
        tags,
        publish,
    )?;
    let version = publish.then(|| doc.versions.last().map_or(1, |v| v.version));
    Ok((
        StatusCode::CREATED,
        axum::Json(configuration(lambda, &doc, version)),
    )
        .into_response())
}

fn update_code(lambda: &Lambda, f: &str, b: Value) -> Result<Response, LambdaError> {
    let zip = zip_file(&b)?;
    let publish = b["Publish"].as_bool().unwrap_or(false);
    let doc = lambda.update_code(Lambda::resolve_name(f), &zip, publish)?;
    let version = publish.then(|| doc.versions.last().map_or(1, |v| v.version));
    Ok(ok(configuration(lambda, &doc, version)))
}

fn list_functions(lambda: &Lambda) -> Result<Response, LambdaError> {
    let functions: Vec<Value> = lambda
        .list()?
        .iter()
        .map(|d| configuration(lambda, d, None))
        .collect();
    Ok(ok(json!({ "Functions": functions })))
}

fn get_function(
    lambda: &Lambda,
    f: &str,
    request: &ControlRequest,
) -> Result<Response, LambdaError> {
    let doc = lambda.get(Lambda::resolve_name(f))?;
    let origin = request.origin();
    let mut out = json!({
        "Configuration": configuration(lambda, &doc, None),
        "Code": {
            "RepositoryType": "S3",
            "Location": format!("{origin}/_spillway/lambda/{}/code.zip", doc.name),
        },
        "Tags": doc.tags,
    });
    if let Some(n) = doc.reserved_concurrency {
        out["Concurrency"] = json!({ "ReservedConcurrentExecutions": n });
    }
    Ok(ok(out))
}

/// FunctionConfiguration, of `$LATEST` or of a published version.
fn configuration(lambda: &Lambda, d: &FunctionDoc, version: Option<u32>) -> Value {
    let arn = lambda.function_arn(&d.name);
    let (version_name, arn, description, sha) =
        match version.and_then(|v| d.versions.iter().find(|x| x.version == v)) {
            Some(v) => (
                v.version.to_string(),
                format!("{arn}:{}", v.version),
                v.description.clone(),
                v.code_sha256.clone(),
            ),
            None => (
                "$LATEST".to_owned(),
                arn,
                d.description.clone(),
                d.code_sha_hex.clone(),
            ),
        };
    let sha = crate::lambda::code_sha256(&sha);
    let mut out = json!({
        "FunctionName": d.name,
        "FunctionArn": arn,
        "Runtime": d.runtime,
        "Role": d.role,
        "Handler": d.handler,
        "CodeSize": d.code_size,
        "Description": description,
        "Timeout": d.timeout,
        "MemorySize": d.memory_size,
        "LastModified": d.last_modified,
        "CodeSha256": sha,
        "Version": version_name,
        "TracingConfig": { "Mode": "PassThrough" },
        "RevisionId": d.revision_id,
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": d.architectures,
        "EphemeralStorage": { "Size": d.ephemeral_storage.unwrap_or(512) },
        "SnapStart": { "ApplyOn": "None", "OptimizationStatus": "Off" },
        "LoggingConfig": { "LogFormat": "Text", "LogGroup": format!("/aws/lambda/{}", d.name) },
        "RuntimeVersionConfig": { "RuntimeVersionArn": format!("arn:aws:lambda:{}::runtime:spillway", lambda.region) },
    });
    if !d.environment.is_empty() {
        out["Environment"] = json!({ "Variables": d.environment });
    }
    out
}

/// Invoke: RequestResponse answers the function's payload (a function error as 200 with
/// `X-Amz-Function-Error`), Event answers 202 and runs it in the background, DryRun 204.
async fn invoke(cp: &ControlPlane, name: &str, request: &ControlRequest) -> Response {
    let lambda = &cp.lambda;
    let Some(function) = cp.services.functions.get(name) else {
        return respond_error(&LambdaError::NotFound(format!(
            "Function not found: {}",
            lambda.function_arn(name)
        )));
    };
    if let Ok(doc) = lambda.get(name)
        && let Some(problem) = Lambda::runtime_problem(&doc)
    {
        return lambda_error(StatusCode::BAD_GATEWAY, "InvalidRuntimeException", &problem);
    }
    let kind = request
        .headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse")
        .to_owned();
    let payload = if request.body.is_empty() {
        bytes::Bytes::from_static(b"{}")
    } else {
        request.body.clone()
    };
    let tables = Arc::clone(&cp.services.tables);
    let run = async move {
        let mut writes = TableWrites::default();
        let result = function.invoke(payload, &mut writes).await;
        if result.is_ok()
            && !writes.ops.is_empty()
            && let Err(e) = tables.commit(&writes.ops, SyncMode::SyncData)
        {
            return Err(FunctionError::Start(format!(
                "committing the function's writes: {e}"
            )));
        }
        result
    };
    match kind.as_str() {
        "DryRun" => no_content(),
        "Event" => {
            let name = name.to_owned();
            tokio::spawn(async move {
                if let Err(e) = run.await {
                    tracing::warn!(function = %name, error = %e, "asynchronous invocation failed");
                }
            });
            StatusCode::ACCEPTED.into_response()
        }
        "RequestResponse" => {
            // In a task of its own: a client that hangs up does not stop the function.
            let outcome = tokio::spawn(run).await;
            let mut r = match outcome {
                Ok(Ok(body)) => (StatusCode::OK, body).into_response(),
                Ok(Err(e)) => {
                    let (error_type, message) = match &e {
                        FunctionError::Unhandled {
                            error_type,
                            message,
                        } => (error_type.clone(), message.clone()),
                        FunctionError::Timeout(_) => ("Sandbox.Timedout".into(), e.to_string()),
                        FunctionError::Start(_) => ("Runtime.ExitError".into(), e.to_string()),
                        FunctionError::Throttled => {
                            return lambda_error(
                                StatusCode::TOO_MANY_REQUESTS,
                                "TooManyRequestsException",
                                "Rate Exceeded.",
                            );
                        }
                    };
                    let mut r = (
                        StatusCode::OK,
                        json!({ "errorType": error_type, "errorMessage": message }).to_string(),
                    )
                        .into_response();
                    r.headers_mut().insert(
                        "x-amz-function-error",
                        HeaderValue::from_static("Unhandled"),
                    );
                    r
                }
                Err(_) => lambda_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "ServiceException",
                    "The invocation failed inside spillway",
                ),
            };
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r.headers_mut().insert(
                "x-amz-executed-version",
                HeaderValue::from_static("$LATEST"),
            );
            r
        }
        other => lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("Unsupported invocation type {other}"),
        ),
    }
}

fn state_of(m: &Mapping) -> &'static str {
    if m.config.enabled {
        "Enabled"
    } else {
        "Disabled"
    }
}

/// EventSourceMappingConfiguration.
fn mapping_json(lambda: &Lambda, m: &Mapping, state: &str) -> Value {
    let c = &m.config;
    let mut out = json!({
        "UUID": m.uuid,
        "StartingPosition": crate::lambda::starting_position_name(c),
        "BatchSize": c.batch_size,
        "MaximumBatchingWindowInSeconds": c.maximum_batching_window_in_seconds,
        "ParallelizationFactor": c.parallelization_factor,
        "EventSourceArn": m.stream.arn,
        "FunctionArn": lambda.function_arn(&c.function_name),
        "LastModified": m.created_ms as f64 / 1000.0,
        "LastProcessingResult": "OK",
        "State": state,
        "StateTransitionReason": "User action",
        "DestinationConfig": {
            "OnFailure": c.destination_config.as_ref()
                .and_then(|d| d.on_failure.as_ref())
                .map_or_else(|| json!({}), |o| json!({ "Destination": o.destination })),
        },
        "MaximumRecordAgeInSeconds": c.maximum_record_age_in_seconds,
        "BisectBatchOnFunctionError": c.bisect_batch_on_function_error,
        "MaximumRetryAttempts": c.maximum_retry_attempts,
        "TumblingWindowInSeconds": 0,
        "FunctionResponseTypes": c.function_response_types,
        "EventSourceMappingArn": format!(
            "arn:aws:lambda:{}:{}:event-source-mapping:{}",
            lambda.region, lambda.account_id, m.uuid
        ),
    });
    if let Some(t) = c.starting_position_timestamp {
        out["StartingPositionTimestamp"] = t.into();
    }
    out
}

fn list_mappings(lambda: &Lambda, request: &ControlRequest) -> Response {
    let query = super::front::form_pairs(request.uri.query().unwrap_or_default().as_bytes());
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let function = param("FunctionName").map(|f| Lambda::resolve_name(&f).to_owned());
    let source = param("EventSourceArn");
    let mappings: Vec<Value> = lambda
        .mappings()
        .iter()
        .filter(|m| {
            function
                .as_ref()
                .is_none_or(|f| &m.config.function_name == f)
        })
        .filter(|m| {
            source
                .as_ref()
                .is_none_or(|s| &m.stream.arn == s || &m.stream.name == s)
        })
        .map(|m| mapping_json(lambda, m, state_of(m)))
        .collect();
    ok(json!({ "EventSourceMappings": mappings }))
}
