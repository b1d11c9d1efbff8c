//! Remote engines: streams and tables kept by a service that speaks Kinesis' or
//! DynamoDB's API (another spillway, AWS behind a plain-HTTP endpoint, ScyllaDB
//! Alternator, LocalStack), reached over HTTP.
//!
//! They exist so that several spillway processes can run as stateless workers over one
//! shared engine (`crate::worker`): the engine assigns positions (the stream's sequence
//! numbers) and keeps every durable byte; a worker keeps nothing that a kill -9 could
//! lose. A 200 from a worker's ingest route is the engine's 200 for PutRecord.
//!
//! One [`AwsJsonClient`] per engine: AWS JSON requests (`X-Amz-Target`), signed with
//! SigV4 (credentials from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, else a fixed
//! local pair), errors read from `__type` and `message` into [`RemoteError`].

pub mod dynamodb;
pub mod endpoint;
pub mod kinesis;
pub mod postgres;
pub mod sqs;

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

pub use endpoint::Endpoint;

/// Why a call to a remote engine failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RemoteError {
    /// The engine answered with an error of its API.
    #[error("{endpoint} answered {status} {kind}: {message}")]
    Service {
        endpoint: String,
        status: u16,
        kind: String,
        message: String,
    },
    /// The engine could not be reached, or the connection broke.
    #[error("{endpoint}: {message}")]
    Transport { endpoint: String, message: String },
    /// The engine answered something its API does not say.
    #[error("{endpoint}: unexpected answer: {message}")]
    Decode { endpoint: String, message: String },
    /// The client for the engine could not be set up (a CA bundle that does not read).
    #[error("{endpoint}: {message}")]
    Setup { endpoint: String, message: String },
}

impl RemoteError {
    /// The error's `__type` without its namespace, when the engine answered one.
    pub fn kind(&self) -> Option<&str> {
        match self {
            Self::Service { kind, .. } => Some(kind.rsplit('#').next().unwrap_or(kind)),
            _ => None,
        }
    }

    /// Whether trying again later can succeed: the engine unreachable, overloaded or
    /// failing inside.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Transport { .. } => true,
            Self::Decode { .. } | Self::Setup { .. } => false,
            Self::Service { status, .. } => {
                *status >= 500
                    || matches!(
                        self.kind(),
                        Some(
                            "ProvisionedThroughputExceededException"
                                | "ThrottlingException"
                                | "LimitExceededException"
                                | "RequestLimitExceeded"
                                | "Throttling"
                        )
                    )
            }
        }
    }
}

/// The key pair requests are signed with.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl Credentials {
    /// The local pair every spillway accepts when it does not verify signatures.
    fn local() -> Self {
        Self {
            access_key_id: "spillway".into(),
            secret_access_key: "spillway".into(),
            session_token: None,
        }
    }

    /// From `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, if set.
    pub fn from_env() -> Option<Self> {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(Self {
            access_key_id: var("AWS_ACCESS_KEY_ID")?,
            secret_access_key: var("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }
}

/// What a forwarded request came back with.
#[derive(Debug)]
pub struct Forwarded {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Bytes,
}

/// A client of one AWS JSON API at one endpoint.
#[derive(Debug, Clone)]
pub struct AwsJsonClient {
    http: reqwest::Client,
    /// `http://HOST:PORT/`, `https://HOST/`.
    url: String,
    /// `HOST[:PORT]`, as signed.
    host: String,
    /// The credential scope's service name (`kinesis`, `dynamodb`).
    service: &'static str,
    /// The target prefix (`Kinesis_20131202`).
    target: &'static str,
    content_type: &'static str,
    region: String,
    credentials: Credentials,
}

impl AwsJsonClient {
    /// A client of `endpoint`, signing for its region or else `region`.
    pub fn new(
        endpoint: &Endpoint,
        service: &'static str,
        target: &'static str,
        content_type: &'static str,
        region: &str,
    ) -> Result<Self, RemoteError> {
        // AWS refuses the local pair with a message that does not name the variables.
        let credentials = match (&endpoint.region, Credentials::from_env()) {
            (Some(_), None) => {
                return Err(RemoteError::Setup {
                    endpoint: endpoint.url(),
                    message: "AWS's endpoints need credentials: set AWS_ACCESS_KEY_ID and \
                              AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary ones); \
                              profiles, SSO and instance roles are not read"
                        .into(),
                });
            }
            (_, found) => found.unwrap_or_else(Credentials::local),
        };
        Ok(Self {
            http: endpoint::http_client(endpoint)?,
            url: endpoint.url(),
            host: endpoint.authority.clone(),
            service,
            target,
            content_type,
            region: endpoint.region.as_deref().unwrap_or(region).to_owned(),
            credentials,
        })
    }

    /// The endpoint, as errors name it.
    pub fn endpoint(&self) -> &str {
        &self.url
    }

    /// Sends `body` as `target` (`Kinesis_20131202.PutRecord`), signed.
    async fn send(
        &self,
        target: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<reqwest::Response, RemoteError> {
        self.send_within(target, content_type, body, None).await
    }

    /// [`Self::send`], with a time limit of its own for the whole exchange (an event
    /// stream lasts minutes; other calls keep the client's 30 s).
    async fn send_within(
        &self,
        target: &str,
        content_type: &str,
        body: Bytes,
        limit: Option<Duration>,
    ) -> Result<reqwest::Response, RemoteError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let mut headers = axum::http::HeaderMap::new();
        let value = |v: &str| {
            axum::http::HeaderValue::from_str(v).map_err(|e| RemoteError::Decode {
                endpoint: self.url.clone(),
                message: format!("header value {v:?}: {e}"),
            })
        };
        headers.insert("host", value(&self.host)?);
        headers.insert("x-amz-date", value(&crate::api::sigv4::amz_date(now))?);
        headers.insert("x-amz-target", value(target)?);
        headers.insert("content-type", value(content_type)?);
        if let Some(token) = &self.credentials.session_token {
            headers.insert("x-amz-security-token", value(token)?);
        }
        let uri: axum::http::Uri = "/".parse().expect("/ is a URI");
        let authorization = crate::api::sigv4::sign(
            &crate::api::sigv4::Request {
                method: "POST",
                uri: &uri,
                headers: &headers,
                body: &body,
            },
            &self.credentials.access_key_id,
            &self.credentials.secret_access_key,
            &self.region,
            self.service,
            now,
        );
        headers.insert("authorization", value(&authorization)?);
        // reqwest sets the host from the URL.
        headers.remove("host");
        let mut request = self.http.post(&self.url).headers(headers).body(body);
        if let Some(limit) = limit {
            request = request.timeout(limit);
        }
        request.send().await.map_err(|e| RemoteError::Transport {
            endpoint: self.url.clone(),
            message: error_chain(&e),
        })
    }

    /// Calls `action` once with a JSON body; a non-2xx answer is a
    /// [`RemoteError::Service`] read from its `__type` and `message`.
    pub async fn call(&self, action: &str, body: &Value) -> Result<Value, RemoteError> {
        let target = format!("{}.{action}", self.target);
        let body = Bytes::from(serde_json::to_vec(body).expect("JSON serializes"));
        let response = self.send(&target, self.content_type, body).await?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| RemoteError::Transport {
            endpoint: self.url.clone(),
            message: error_chain(&e),
        })?;
        let value: Value = if bytes.is_empty() {
            Value::Object(Default::default())
        } else {
            serde_json::from_slice(&bytes).map_err(|e| RemoteError::Decode {
                endpoint: self.url.clone(),
                message: format!("{action} answered {status} with no JSON: {e}"),
            })?
        };
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        Err(RemoteError::Service {
            endpoint: self.url.clone(),
            status,
            kind: text("__type").unwrap_or_else(|| format!("HTTP {status}")),
            message: text("message")
                .or_else(|| text("Message"))
                .unwrap_or_default(),
        })
    }

    /// Calls `action`, trying again (up to `tries` times, backing off from 100 ms to 2 s)
    /// while the failure is [`RemoteError::retryable`]. Only for idempotent calls.
    pub async fn call_retrying(
        &self,
        action: &str,
        body: &Value,
        tries: u32,
    ) -> Result<Value, RemoteError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match self.call(action, body).await {
                Err(e) if e.retryable() && attempt < tries => {
                    let wait = (100u64 << attempt.min(5)).min(2000);
                    tracing::debug!(error = %e, action, attempt, "remote engine call failed; trying again");
                    tokio::time::sleep(Duration::from_millis(wait)).await;
                }
                other => return other,
            }
        }
    }

    /// Creates a resource unless it exists (`ResourceInUseException`: another worker
    /// made it), then describes it every 100 ms, for at most a minute, until `ready`
    /// finds it usable; what `ready` read from the description.
    pub async fn create_and_wait<T>(
        &self,
        what: &str,
        create: (&str, &Value),
        describe: (&str, &Value),
        ready: impl Fn(&Value) -> Option<T>,
    ) -> Result<T, RemoteError> {
        match self.call_retrying(create.0, create.1, 5).await {
            Ok(_) => tracing::info!(endpoint = %self.url, "created {what} in the engine"),
            Err(e) if e.kind() == Some("ResourceInUseException") => {}
            Err(e) => return Err(e),
        }
        for _ in 0..600 {
            let description = self.call_retrying(describe.0, describe.1, 5).await?;
            if let Some(found) = ready(&description) {
                return Ok(found);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err(RemoteError::Decode {
            endpoint: self.url.clone(),
            message: format!("{what} did not become ACTIVE within a minute"),
        })
    }

    /// Forwards a client's request to the engine as it came (re-signed with this
    /// worker's credentials): the AWS APIs on a worker answer from the shared engine.
    pub async fn forward(
        &self,
        target: &str,
        content_type: &str,
        body: Bytes,
    ) -> Result<Forwarded, RemoteError> {
        let response = self.send(target, content_type, body).await?;
        let (status, content_type) = status_and_type(&response);
        let body = response.bytes().await.map_err(|e| RemoteError::Transport {
            endpoint: self.url.clone(),
            message: error_chain(&e),
        })?;
        Ok(Forwarded {
            status,
            content_type,
            body,
        })
    }
}

impl AwsJsonClient {
    /// Forwards a request whose answer is a stream (SubscribeToShard's event stream):
    /// the status and content type, and the body as it arrives, for up to `limit`.
    pub async fn forward_stream(
        &self,
        target: &str,
        content_type: &str,
        body: Bytes,
        limit: Duration,
    ) -> Result<
        (
            u16,
            Option<String>,
            impl futures_util::Stream<Item = Result<Bytes, reqwest::Error>> + Send + use<>,
        ),
        RemoteError,
    > {
        let response = self
            .send_within(target, content_type, body, Some(limit))
            .await?;
        let (status, content_type) = status_and_type(&response);
        Ok((status, content_type, response.bytes_stream()))
    }
}

/// An answer's status and content type, to pass on.
fn status_and_type(response: &reqwest::Response) -> (u16, Option<String>) {
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (response.status().as_u16(), content_type)
}

/// An error with its causes, as one line (reqwest's own message says little).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

/// The remote engines of a worker.
#[derive(Debug, Clone)]
pub struct RemoteEngines {
    pub kinesis: kinesis::KinesisClient,
    pub tables: TableEngine,
    /// Where on-failure records for SQS destinations go (`[workers] queue_engine`).
    pub queues: Option<std::sync::Arc<sqs::SqsClient>>,
}

/// A worker's table engine: the functions' items, and the lease table.
#[derive(Debug, Clone)]
pub enum TableEngine {
    /// Any DynamoDB-API endpoint (`dynamodb+http://HOST:PORT`, `dynamodb://REGION`).
    DynamoDb(dynamodb::DynamoDbClient),
    /// PostgreSQL (`postgres://...`).
    Postgres(postgres::PostgresTables),
}

impl TableEngine {
    /// Makes sure a configured table can take items.
    pub async fn ensure_table(
        &self,
        table: &crate::config::TableConfig,
    ) -> Result<(), RemoteError> {
        match self {
            Self::DynamoDb(db) => db.ensure_table(table).await,
            Self::Postgres(pg) => pg.ensure_table(table).await,
        }
    }

    /// Makes sure the lease table exists.
    pub async fn ensure_lease_table(&self, name: &str) -> Result<(), RemoteError> {
        match self {
            Self::DynamoDb(db) => db.ensure_lease_table(name).await,
            Self::Postgres(pg) => pg.ensure_lease_table().await,
        }
    }

    /// Puts items (DynamoDB JSON), replacing those of the same key.
    pub async fn put_items(
        &self,
        table: &str,
        items: Vec<serde_json::Value>,
    ) -> Result<(), RemoteError> {
        match self {
            Self::DynamoDb(db) => db.put_items(table, items).await,
            Self::Postgres(pg) => pg.put_items(table, items).await,
        }
    }

    /// Every item of a table (DynamoDB JSON): small tables, tests and inspection.
    pub async fn scan(&self, table: &str) -> Result<Vec<serde_json::Value>, RemoteError> {
        match self {
            Self::DynamoDb(db) => Ok(db
                .scan_all(table)
                .await?
                .into_iter()
                .map(serde_json::Value::Object)
                .collect()),
            Self::Postgres(pg) => pg.items(table).await,
        }
    }

    /// The DynamoDB endpoint, when the tables are behind one (a worker forwards the
    /// DynamoDB API there).
    pub fn dynamodb(&self) -> Option<&dynamodb::DynamoDbClient> {
        match self {
            Self::DynamoDb(db) => Some(db),
            Self::Postgres(_) => None,
        }
    }
}
