//! AWS Signature Version 4 verification for the AWS JSON APIs (Kinesis and DynamoDB).
//!
//! Off by default: a local pipeline takes any client's dummy credentials. With
//! `[security] verify_signatures = true` every request must be signed, by header
//! (`Authorization: AWS4-HMAC-SHA256 ...`) or query string (`X-Amz-Signature=...`), with
//! one of the configured credentials, for the configured region and the target's
//! service. The checks run in the order AWS runs them, and each refusal carries AWS's
//! type and message (as recorded by kinesalite's and dynalite's tests against AWS).

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::kinesis::{Encoding, KinesisError, cbor};
use crate::config::SecurityConfig;

/// The one algorithm SigV4 defines.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's date may be from the server's clock, either way.
const MAX_SKEW_SECS: i64 = 15 * 60;
/// The longest a query-string signature may be valid (`X-Amz-Expires`), 7 days.
const MAX_EXPIRES_SECS: i64 = 604_800;
/// The payload hash of a request whose body is not signed.
const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Why a request's authentication was refused, in AWS's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No signature at all.
    #[error("Missing Authentication Token")]
    MissingToken,
    /// A signature with missing or malformed parts.
    #[error("{0}")]
    Incomplete(String),
    /// A signature that is complete but wrong: scope, date or the signature itself.
    #[error("{0}")]
    InvalidSignature(String),
    /// An unknown access key, or a session token that does not match.
    #[error("{0}")]
    UnrecognizedClient(&'static str),
}

/// Which AWS JSON API a request is for: the service of its credential scope and the
/// shape of its errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `Kinesis_20131202.*`, in JSON or CBOR.
    Kinesis(Encoding),
    /// `DynamoDB_20120810.*`.
    DynamoDb,
    /// A control-plane service (`api::front`), by its credential scope's name.
    Control(&'static str),
}

impl Api {
    /// The service name a credential scope must carry.
    pub fn service(self) -> &'static str {
        match self {
            Self::Kinesis(_) => "kinesis",
            Self::DynamoDb => "dynamodb",
            Self::Control(service) => service,
        }
    }
}

/// A control-plane service's refusal: the type in `x-amzn-ErrorType` (which every SDK
/// reads, whatever the service's protocol) and a JSON message.
fn control_refusal(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({ "__type": kind, "message": message });
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(kind) {
        h.insert("x-amzn-errortype", v);
    }
    super::kinesis::request_ids(h);
    r
}

impl AuthError {
    fn type_name(&self) -> &'static str {
        match self {
            Self::MissingToken => "MissingAuthenticationTokenException",
            Self::Incomplete(_) => "IncompleteSignatureException",
            Self::InvalidSignature(_) => "InvalidSignatureException",
            Self::UnrecognizedClient(_) => "UnrecognizedClientException",
        }
    }

    /// The refusal as the API answers it. Kinesis and DynamoDB both answer 400 to
    /// authentication failures of their JSON protocols; DynamoDB namespaces the type.
    pub fn respond(self, api: Api) -> Response {
        if self == Self::MissingToken {
            // The services' own answers, so that signed-off and signed-on refusals of
            // an unsigned request are the same bytes.
            return match api {
                Api::Kinesis(encoding) => {
                    KinesisError::MissingAuthenticationToken.respond(encoding)
                }
                Api::DynamoDb => super::dynamodb::missing_auth(),
                Api::Control(_) => control_refusal(
                    StatusCode::FORBIDDEN,
                    self.type_name(),
                    "Missing Authentication Token",
                ),
            };
        }
        let message = self.to_string();
        match api {
            Api::Control(_) => control_refusal(StatusCode::FORBIDDEN, self.type_name(), &message),
            Api::Kinesis(encoding) => {
                let body = json!({"__type": self.type_name(), "message": message});
                let (bytes, content_type) = match encoding {
                    Encoding::Json => (body.to_string().into_bytes(), "application/x-amz-json-1.1"),
                    Encoding::Cbor => (cbor::encode_response(&body), "application/x-amz-cbor-1.1"),
                };
                let mut r = (StatusCode::BAD_REQUEST, bytes).into_response();
                r.headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                super::kinesis::request_ids(r.headers_mut());
                r
            }
            Api::DynamoDb => {
                let body = json!({
                    "__type": format!("com.amazon.coral.service#{}", self.type_name()),
                    "message": message,
                });
                let text = body.to_string();
                let crc = crc32fast::hash(text.as_bytes());
                let mut r = (StatusCode::BAD_REQUEST, text).into_response();
                let h = r.headers_mut();
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/x-amz-json-1.0"),
                );
                h.insert(crate::api::names::X_AMZ_CRC32, HeaderValue::from(crc));
                h.insert(
                    crate::api::names::X_AMZN_REQUEST_ID,
                    crate::api::dynamodb::request_id(),
                );
                r
            }
        }
    }
}

/// What SigV4 signs of a request.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: &'a str,
    pub uri: &'a Uri,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    fn header(&self, name: impl axum::http::header::AsHeaderName) -> Option<&'a str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Query parameters, percent-decoded, in order.
    fn query(&self) -> Vec<(String, String)> {
        self.uri
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (
                    String::from_utf8_lossy(&percent_decode(k)).into_owned(),
                    String::from_utf8_lossy(&percent_decode(v)).into_owned(),
                )
            })
            .collect()
    }
}

/// Whether a request carries any signature at all: the only check made when
/// verification is off.
pub fn is_signed(headers: &HeaderMap, uri: &Uri) -> bool {
    headers.contains_key(header::AUTHORIZATION)
        || headers.contains_key(&super::names::X_AMZ_SECURITY_TOKEN)
        || query_has_algorithm(uri)
}

fn query_has_algorithm(uri: &Uri) -> bool {
    uri.query()
        .unwrap_or_default()
        .split('&')
        .any(|p| p.split_once('=').map_or(p, |(k, _)| k) == "X-Amz-Algorithm")
}

/// One configured credential.
#[derive(Debug, Clone)]
struct Credential {
    secret_access_key: String,
    session_token: Option<String>,
}

/// Checks signatures against the configured credentials.
#[derive(Debug, Clone)]
pub struct Verifier {
    region: String,
    credentials: HashMap<String, Credential>,
}

/// The parts of a signature, from the header or the query string.
#[derive(Debug)]
struct Parts<'a> {
    algorithm: Cow<'a, str>,
    credential: Cow<'a, str>,
    signed_headers: Cow<'a, str>,
    signature: Cow<'a, str>,
    /// As sent (`X-Amz-Date`, or `Date`).
    date: Cow<'a, str>,
    /// Query form only: how long the signature is valid.
    expires: Option<Cow<'a, str>>,
    security_token: Option<Cow<'a, str>>,
    query_form: bool,
}

impl Verifier {
    /// A verifier when `[security] verify_signatures` is on; None when it is off.
    pub fn from_config(region: &str, security: &SecurityConfig) -> Option<Self> {
        if !security.verify_signatures {
            return None;
        }
        let credentials = security
            .credentials
            .iter()
            .map(|c| {
                (
                    c.access_key_id.clone(),
                    Credential {
                        secret_access_key: c.secret_access_key.clone(),
                        session_token: c.session_token.clone(),
                    },
                )
            })
            .collect();
        Some(Self {
            region: region.to_owned(),
            credentials,
        })
    }

    /// Verifies a request now.
    pub fn verify(&self, api: Api, req: &Request<'_>) -> Result<(), AuthError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
        self.verify_at(api, req, now)
    }

    /// Verifies a request as of `now` (Unix seconds), in AWS's order of checks.
    pub fn verify_at(&self, api: Api, req: &Request<'_>, now: i64) -> Result<(), AuthError> {
        let parts = extract(api, req)?;

        let Some(date) = parse_date(&parts.date) else {
            return Err(AuthError::Incomplete(format!(
                "Date must be in ISO-8601 'basic format'. Got '{}'. See http://en.wikipedia.org/wiki/ISO_8601",
                parts.date
            )));
        };
        check_time(date, now, parts.expires.as_deref())?;

        let signed: Vec<String> = parts
            .signed_headers
            .split(';')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if !signed.iter().any(|h| h == "host") {
            return Err(AuthError::InvalidSignature(
                "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
            ));
        }
        if parts.algorithm != ALGORITHM {
            return Err(AuthError::Incomplete(format!(
                "Unsupported AWS 'algorithm': '{}' (only {ALGORITHM} for now). ",
                parts.algorithm
            )));
        }

        let scope: Vec<&str> = parts.credential.trim_end_matches('/').split('/').collect();
        let [key_id, scope_date, region, service, terminator] = scope[..] else {
            return Err(AuthError::Incomplete(format!(
                "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{}'",
                parts.credential
            )));
        };
        let amz_date = format_date(date);
        let mut wrong = Vec::new();
        if region != self.region {
            wrong.push(format!(
                "Credential should be scoped to a valid region, not '{region}'."
            ));
        }
        if service != api.service() {
            wrong.push(format!(
                "Credential should be scoped to correct service: '{}'.",
                api.service()
            ));
        }
        if terminator != "aws4_request" {
            wrong.push(format!(
                "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
            ));
        }
        if scope_date != &amz_date[..8] {
            wrong.push(format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{}', from '{}'.",
                &amz_date[..8],
                parts.date
            ));
        }
        if !wrong.is_empty() {
            return Err(AuthError::InvalidSignature(wrong.join(" ")));
        }

        let Some(credential) = self.credentials.get(key_id) else {
            return Err(AuthError::UnrecognizedClient(
                "The security token included in the request is invalid.",
            ));
        };

        let body_hash = hex(&Sha256::digest(req.body));
        let payload_hashes: Vec<&str> = if parts.query_form {
            // A presigned request's body is usually not signed.
            vec![&body_hash, UNSIGNED_PAYLOAD]
        } else if req.header("x-amz-content-sha256") == Some(UNSIGNED_PAYLOAD) {
            vec![UNSIGNED_PAYLOAD]
        } else {
            // A declared hash that is not the body's fails here, as it should.
            vec![&body_hash]
        };
        let scope = format!("{scope_date}/{region}/{service}/{terminator}");
        let key = signing_key(&credential.secret_access_key, scope_date, region, service);
        let provided = unhex(&parts.signature);
        let mut expected = None;
        let mut matched = false;
        for payload_hash in payload_hashes {
            let canonical = canonical_request(req, &signed, payload_hash, parts.query_form);
            let to_sign = format!(
                "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
                hex(&Sha256::digest(canonical.as_bytes()))
            );
            let mut mac = hmac(&key);
            mac.update(to_sign.as_bytes());
            // Constant time, through the MAC API.
            if provided
                .as_deref()
                .is_some_and(|p| mac.verify_slice(p).is_ok())
            {
                matched = true;
                break;
            }
            expected.get_or_insert((canonical, to_sign));
        }
        if !matched {
            let (canonical, to_sign) = expected.unwrap_or_default();
            return Err(AuthError::InvalidSignature(format!(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.\n\nThe Canonical String for this request should have been\n'{canonical}'\n\nThe String-to-Sign should have been\n'{to_sign}'\n"
            )));
        }

        if let Some(token) = &credential.session_token {
            match &parts.security_token {
                Some(sent) if sent == token => {}
                Some(_) => {
                    return Err(AuthError::UnrecognizedClient(
                        "The security token included in the request is invalid",
                    ));
                }
                None => {
                    return Err(AuthError::UnrecognizedClient(
                        "The security token included in the request is invalid.",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Signs a request spillway sends (the remote engines' client, `crate::remote`): the
/// `Authorization` value for `req`, every header of which is signed. `req` must already
/// carry `host` and `x-amz-date` (see [`amz_date`]) for `now`.
pub fn sign(
    req: &Request<'_>,
    key_id: &str,
    secret: &str,
    region: &str,
    service: &str,
    now: i64,
) -> String {
    let amz_date = format_date(now);
    let date = &amz_date[..8];
    let mut signed: Vec<String> = req.headers.keys().map(|k| k.as_str().to_owned()).collect();
    signed.sort_unstable();
    signed.dedup();
    let body_hash = hex(&Sha256::digest(req.body));
    let canonical = canonical_request(req, &signed, &body_hash, false);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let mut mac = hmac(&signing_key(secret, date, region, service));
    mac.update(to_sign.as_bytes());
    format!(
        "{ALGORITHM} Credential={key_id}/{scope}, SignedHeaders={}, Signature={}",
        signed.join(";"),
        hex(&mac.finalize().into_bytes())
    )
}

/// Unix seconds as SigV4's `x-amz-date` (`YYYYMMDDTHHMMSSZ`).
pub fn amz_date(now: i64) -> String {
    format_date(now)
}

/// The checks AWS makes of a signature's shape before its value (a missing signature,
/// both forms at once, missing parts), without verifying it: made even when
/// verification is off, so that a malformed signature is refused as AWS refuses it.
/// For DynamoDB a header signature that has its three parts but no date is let
/// through: unverified, spillway has never asked it for one.
pub fn check_shape(api: Api, req: &Request<'_>) -> Result<(), AuthError> {
    match extract(api, req) {
        Err(AuthError::Incomplete(m))
            if api == Api::DynamoDb
                && m.starts_with("Authorization header requires existence of either") =>
        {
            Ok(())
        }
        other => other.map(|_| ()),
    }
}

/// Finds the signature's parts, or says which are missing.
fn extract<'a>(api: Api, req: &Request<'a>) -> Result<Parts<'a>, AuthError> {
    let auth = req.header(header::AUTHORIZATION);
    let in_query = query_has_algorithm(req.uri);
    if auth.is_some() && in_query {
        return Err(AuthError::InvalidSignature(
            "Found both 'X-Amz-Algorithm' as a query-string param and 'Authorization' as HTTP header."
                .into(),
        ));
    }
    match auth {
        None if !in_query => Err(AuthError::MissingToken),
        // DynamoDB does not look into an Authorization header that is not SigV4's.
        Some(a) if api == Api::DynamoDb && !a.trim().starts_with("AWS4-") => {
            Err(AuthError::MissingToken)
        }
        Some(a) => from_header(req, a),
        None => from_query(req),
    }
}

/// `text` split at commas and spaces, without empty pieces. A byte scan (both are
/// ASCII, so every cut is a character boundary): it runs on every request.
fn words(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let end = rest
                .bytes()
                .position(|b| b == b',' || b == b' ')
                .unwrap_or(rest.len());
            let word = &rest[..end];
            rest = rest.get(end + 1..).unwrap_or_default();
            if !word.is_empty() {
                return Some(word);
            }
        }
    })
}

/// A header signature's parts, borrowed from the request: this runs on every request,
/// verified or not, so it allocates only to report what is missing.
fn from_header<'a>(req: &Request<'a>, auth: &'a str) -> Result<Parts<'a>, AuthError> {
    let mut words = words(auth);
    let algorithm = words.next().unwrap_or_default();
    // The three fields, the last of each name winning, as AWS reads them.
    let (mut credential, mut signature, mut signed_headers) = ("", "", "");
    for w in words {
        let (k, v) = w.split_once('=').unwrap_or((w, ""));
        match k {
            "Credential" => credential = v,
            "Signature" => signature = v,
            "SignedHeaders" => signed_headers = v,
            _ => {}
        }
    }
    let date = req
        .header(&super::names::X_AMZ_DATE)
        .or_else(|| req.header(header::DATE));
    let mut missing = String::new();
    for (name, value) in [
        ("Credential", credential),
        ("Signature", signature),
        ("SignedHeaders", signed_headers),
    ] {
        if value.is_empty() {
            missing.push_str(&format!(
                "Authorization header requires '{name}' parameter. "
            ));
        }
    }
    if date.is_none() {
        missing.push_str(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. ",
        );
    }
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(format!(
            "{missing}Authorization={auth}"
        )));
    }
    Ok(Parts {
        algorithm: Cow::Borrowed(algorithm),
        credential: Cow::Borrowed(credential),
        signed_headers: Cow::Borrowed(signed_headers),
        signature: Cow::Borrowed(signature),
        date: Cow::Borrowed(date.unwrap_or_default()),
        expires: None,
        security_token: req
            .header(&super::names::X_AMZ_SECURITY_TOKEN)
            .map(Cow::Borrowed),
        query_form: false,
    })
}

fn from_query<'a>(req: &Request<'a>) -> Result<Parts<'a>, AuthError> {
    let query = req.query();
    let get = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let mut missing = String::new();
    for name in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Signature",
        "X-Amz-SignedHeaders",
        "X-Amz-Date",
    ] {
        if get(name).is_none() {
            missing.push_str(&format!(
                "AWS query-string parameters must include '{name}'. "
            ));
        }
    }
    if !missing.is_empty() {
        return Err(AuthError::Incomplete(format!(
            "{missing}Re-examine the query-string parameters."
        )));
    }
    let owned = |name: &str| Cow::Owned(get(name).unwrap_or_default());
    Ok(Parts {
        algorithm: owned("X-Amz-Algorithm"),
        credential: owned("X-Amz-Credential"),
        signed_headers: owned("X-Amz-SignedHeaders"),
        signature: owned("X-Amz-Signature"),
        date: owned("X-Amz-Date"),
        expires: get("X-Amz-Expires").map(Cow::Owned),
        security_token: get("X-Amz-Security-Token").map(Cow::Owned).or_else(|| {
            req.header(&super::names::X_AMZ_SECURITY_TOKEN)
                .map(Cow::Borrowed)
        }),
        query_form: true,
    })
}

/// The request's date against the clock: 15 minutes either way, or, for a query-string
/// signature with `X-Amz-Expires`, until it expires.
fn check_time(date: i64, now: i64, expires: Option<&str>) -> Result<(), AuthError> {
    let (d, n) = (format_date(date), format_date(now));
    if date > now + MAX_SKEW_SECS {
        return Err(AuthError::InvalidSignature(format!(
            "Signature not yet current: {d} is still later than {} ({n} + 15 min.)",
            format_date(now + MAX_SKEW_SECS)
        )));
    }
    match expires {
        None => {
            if date < now - MAX_SKEW_SECS {
                return Err(AuthError::InvalidSignature(format!(
                    "Signature expired: {d} is now earlier than {} ({n} - 15 min.)",
                    format_date(now - MAX_SKEW_SECS)
                )));
            }
        }
        Some(text) => {
            let secs = text
                .parse::<i64>()
                .ok()
                .filter(|s| (1..=MAX_EXPIRES_SECS).contains(s))
                .ok_or_else(|| {
                    AuthError::Incomplete(format!(
                        "X-Amz-Expires must be a whole number of seconds from 1 to {MAX_EXPIRES_SECS}, got '{text}'"
                    ))
                })?;
            if date < now - secs {
                return Err(AuthError::InvalidSignature(format!(
                    "Signature expired: {d} is now earlier than {} ({n} - {secs} sec.)",
                    format_date(now - secs)
                )));
            }
        }
    }
    Ok(())
}

/// The canonical request, exactly as SigV4 defines it.
fn canonical_request(
    req: &Request<'_>,
    signed: &[String],
    payload_hash: &str,
    query_form: bool,
) -> String {
    let mut sorted: Vec<&str> = signed.iter().map(String::as_str).collect();
    sorted.sort_unstable();
    sorted.dedup();
    let mut headers = String::new();
    for name in &sorted {
        let values: Vec<String> = req
            .headers
            .get_all(*name)
            .iter()
            .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        let value = if values.is_empty() && *name == "host" {
            // HTTP/2 carries the host as the authority.
            req.uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default()
        } else {
            values.join(",")
        };
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&value);
        headers.push('\n');
    }
    format!(
        "{}\n{}\n{}\n{headers}\n{}\n{payload_hash}",
        req.method,
        canonical_uri(req.uri.path()),
        canonical_query(req.uri.query().unwrap_or_default(), query_form),
        sorted.join(";"),
    )
}

/// The path with dot segments removed, each segment URI-encoded once more (SigV4
/// double-encodes paths for every service but S3).
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for s in path.split('/').skip(1) {
        match s {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let encoded: Vec<String> = segments.iter().map(|s| uri_encode(s.as_bytes())).collect();
    format!("/{}", encoded.join("/"))
}

/// Query parameters decoded, re-encoded, sorted by name then value; the query form's
/// own signature left out.
fn canonical_query(query: &str, query_form: bool) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .filter(|(k, _)| !(query_form && k == "X-Amz-Signature"))
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// Trimmed, with runs of spaces made one.
fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// SigV4's URI encoding: everything but `A-Za-z0-9-_.~` as `%XX`.
fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `%XX` escapes decoded; an invalid escape is kept as it is, and `+` stands for itself.
pub fn percent_decode(s: &(impl AsRef<[u8]> + ?Sized)) -> Vec<u8> {
    let b = s.as_ref();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let Some(v) = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hmac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length")
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [date, region, service, "aws4_request"] {
        let mut mac = hmac(&key);
        mac.update(part.as_bytes());
        key = mac.finalize().into_bytes().to_vec();
    }
    key
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `YYYYMMDDTHHMMSSZ`, or an HTTP date (`Sun, 06 Nov 1994 08:49:37 GMT`), as Unix seconds.
fn parse_date(text: &str) -> Option<i64> {
    parse_basic(text).or_else(|| parse_http_date(text))
}

fn parse_basic(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let s = t.get(r)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    to_unix(
        num(0..4)?,
        num(4..6)?,
        num(6..8)?,
        num(9..11)?,
        num(11..13)?,
        num(13..15)?,
    )
}

fn parse_http_date(t: &str) -> Option<i64> {
    let w: Vec<&str> = t.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = w[..] else {
        return None;
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = u32::try_from(MONTHS.iter().position(|m| *m == month)? + 1).ok()?;
    let hms: Vec<u32> = time
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [h, m, s] = hms[..] else { return None };
    to_unix(year.parse().ok()?, month, day.parse().ok()?, h, m, s)
}

fn to_unix(y: u32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> Option<i64> {
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let days = days_from_civil(i64::from(y), mo, d);
    Some(days * 86_400 + i64::from(h * 3600 + mi * 60 + s))
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as `YYYYMMDDTHHMMSSZ`.
fn format_date(t: i64) -> String {
    let (days, secs) = (t.div_euclid(86_400), t.rem_euclid(86_400));
    let (y, m, d) = crate::mapping::dead_letter::civil_from_days(days);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{CredentialConfig, SecurityConfig};

    fn verifier() -> Verifier {
        let security = SecurityConfig {
            verify_signatures: true,
            credentials: vec![CredentialConfig {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: "secret".into(),
                session_token: None,
            }],
            api_keys: vec![],
        };
        Verifier::from_config("us-east-1", &security).unwrap()
    }

    fn check(api: Api, uri: &str, headers: &[(&str, &str)], now: i64) -> Result<(), AuthError> {
        let uri: Uri = uri.parse().unwrap();
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        let req = Request {
            method: "POST",
            uri: &uri,
            headers: &map,
            body: b"{}",
        };
        verifier().verify_at(api, &req, now)
    }

    const KINESIS: Api = Api::Kinesis(Encoding::Json);

    /// AWS's documented example (IAM ListUsers): canonical request and signature.
    #[test]
    fn what_sign_signs_verifies() {
        let uri: Uri = "/".parse().unwrap();
        let now = 1_700_000_000;
        let mut headers = HeaderMap::new();
        headers.insert("host", "127.0.0.1:4567".parse().unwrap());
        headers.insert("x-amz-date", amz_date(now).parse().unwrap());
        headers.insert(
            "x-amz-target",
            "Kinesis_20131202.ListStreams".parse().unwrap(),
        );
        let body = b"{}";
        let req = Request {
            method: "POST",
            uri: &uri,
            headers: &headers,
            body,
        };
        let auth = sign(&req, "AKIDEXAMPLE", "secret", "us-east-1", "kinesis", now);
        headers.insert("authorization", auth.parse().unwrap());
        let req = Request {
            method: "POST",
            uri: &uri,
            headers: &headers,
            body,
        };
        verifier()
            .verify_at(Api::Kinesis(crate::api::kinesis::Encoding::Json), &req, now)
            .unwrap();
        let tampered = Request {
            body: b"{ }",
            ..req
        };
        assert!(
            verifier()
                .verify_at(
                    Api::Kinesis(crate::api::kinesis::Encoding::Json),
                    &tampered,
                    now
                )
                .is_err()
        );
    }

    #[test]
    fn aws_documented_example_signs_alike() {
        let uri: Uri = "https://iam.amazonaws.com/?Version=2010-05-08&Action=ListUsers"
            .parse()
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            HeaderValue::from_static("application/x-www-form-urlencoded;   charset=utf-8"),
        );
        headers.insert("host", HeaderValue::from_static("iam.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let req = Request {
            method: "GET",
            uri: &uri,
            headers: &headers,
            body: b"",
        };
        let signed = ["content-type", "host", "x-amz-date"].map(String::from);
        let body_hash = hex(&Sha256::digest(b""));
        let canonical = canonical_request(&req, &signed, &body_hash, false);
        assert_eq!(
            canonical,
            "GET\n/\nAction=ListUsers&Version=2010-05-08\ncontent-type:application/x-www-form-urlencoded; charset=utf-8\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            hex(&Sha256::digest(canonical.as_bytes())),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let to_sign = format!(
            "{ALGORITHM}\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let mut mac = hmac(&signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20150830",
            "us-east-1",
            "iam",
        ));
        mac.update(to_sign.as_bytes());
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn paths_and_queries_are_encoded_as_sigv4_says() {
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/a/./b/../c d%20e"), "/a/c%20d%2520e");
        assert_eq!(
            canonical_query("b=2&a=%7e x&a=1&X-Amz-Signature=s&flag", true),
            "a=1&a=~%20x&b=2&flag="
        );
        assert_eq!(collapse_spaces("  a   b  c "), "a b c");
    }

    #[test]
    fn dates_round_trip() {
        let t = parse_date("20261130T231858Z").unwrap();
        assert_eq!(format_date(t), "20261130T231858Z");
        assert_eq!(parse_date("Mon, 30 Nov 2026 23:18:58 GMT"), Some(t));
        assert_eq!(format_date(0), "19700101T000000Z");
        assert_eq!(format_date(951_782_400), "20000229T000000Z");
        assert!(parse_date("201").is_none());
        assert!(parse_date("20261330T231858Z").is_none());
    }

    #[test]
    fn refusals_come_in_aws_order_with_aws_words() {
        let now = parse_date("20261130T120000Z").unwrap();
        assert_eq!(check(KINESIS, "/", &[], now), Err(AuthError::MissingToken));
        assert_eq!(
            check(KINESIS, "/", &[("authorization", "garbage")], now),
            Err(AuthError::Incomplete("Authorization header requires 'Credential' parameter. Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization=garbage".into()))
        );
        // DynamoDB reads only SigV4's header.
        assert_eq!(
            check(Api::DynamoDb, "/", &[("authorization", "garbage")], now),
            Err(AuthError::MissingToken)
        );
        assert!(matches!(
            check(KINESIS, "/?X-Amz-Algorithm=x", &[("authorization", "x")], now),
            Err(AuthError::InvalidSignature(m)) if m.starts_with("Found both")
        ));
        assert_eq!(
            check(KINESIS, "/?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=d", &[], now),
            Err(AuthError::Incomplete("AWS query-string parameters must include 'X-Amz-Credential'. AWS query-string parameters must include 'X-Amz-Signature'. AWS query-string parameters must include 'X-Amz-SignedHeaders'. Re-examine the query-string parameters.".into()))
        );
        let auth = |cred: &str, signed: &str| {
            format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders={signed}, Signature=00")
        };
        let good = auth(
            "AKIDEXAMPLE/20261130/us-east-1/kinesis/aws4_request",
            "host;x-amz-date",
        );
        assert_eq!(
            check(KINESIS, "/", &[("authorization", &good), ("x-amz-date", "201")], now),
            Err(AuthError::Incomplete("Date must be in ISO-8601 'basic format'. Got '201'. See http://en.wikipedia.org/wiki/ISO_8601".into()))
        );
        assert_eq!(
            check(KINESIS, "/", &[("authorization", &good), ("x-amz-date", "20261130T113959Z")], now),
            Err(AuthError::InvalidSignature("Signature expired: 20261130T113959Z is now earlier than 20261130T114500Z (20261130T120000Z - 15 min.)".into()))
        );
        assert_eq!(
            check(KINESIS, "/", &[("authorization", &good), ("x-amz-date", "20261130T121501Z")], now),
            Err(AuthError::InvalidSignature("Signature not yet current: 20261130T121501Z is still later than 20261130T121500Z (20261130T120000Z + 15 min.)".into()))
        );
        let date = ("x-amz-date", "20261130T120000Z");
        let no_host = auth(
            "AKIDEXAMPLE/20261130/us-east-1/kinesis/aws4_request",
            "x-amz-date",
        );
        assert_eq!(
            check(KINESIS, "/", &[("authorization", &no_host), date], now),
            Err(AuthError::InvalidSignature(
                "'Host' must be a 'SignedHeader' in the AWS Authorization.".into()
            ))
        );
        let short = auth("AKIDEXAMPLE/20261130/us-east-1/kinesis", "host");
        assert_eq!(
            check(KINESIS, "/", &[("authorization", &short), date], now),
            Err(AuthError::Incomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got 'AKIDEXAMPLE/20261130/us-east-1/kinesis'".into()))
        );
        let scope = auth(
            "AKIDEXAMPLE/20261129/eu-west-1/dynamodb/aws4_request",
            "host",
        );
        assert_eq!(
            check(KINESIS, "/", &[("authorization", &scope), date], now),
            Err(AuthError::InvalidSignature("Credential should be scoped to a valid region, not 'eu-west-1'. Credential should be scoped to correct service: 'kinesis'. Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '20261129' != '20261130', from '20261130T120000Z'.".into()))
        );
        let unknown = auth("NOPE/20261130/us-east-1/kinesis/aws4_request", "host");
        assert_eq!(
            check(KINESIS, "/", &[("authorization", &unknown), date], now),
            Err(AuthError::UnrecognizedClient(
                "The security token included in the request is invalid."
            ))
        );
        assert!(matches!(
            check(KINESIS, "/", &[("authorization", &good), date, ("host", "h")], now),
            Err(AuthError::InvalidSignature(m)) if m.starts_with("The request signature we calculated does not match")
                && m.contains("'POST\n/\n\nhost:h\nx-amz-date:20261130T120000Z\n\nhost;x-amz-date\n")
        ));
    }
}
