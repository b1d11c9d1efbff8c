//! API Gateway on the shared endpoint: the REST API control plane (restJson1 under
//! `/restapis`, [`control`]), and the execution of deployed stages ([`execute`]).
//! The APIs themselves live in [`crate::gateway`].

mod control;
mod execute;

use axum::extract::Request;
use axum::http::{HeaderMap, Uri, header};
use axum::response::Response;

use super::front::{ControlPlane, ControlRequest};

/// Answers one API Gateway control-plane request.
pub async fn handle(cp: &ControlPlane, request: ControlRequest) -> Response {
    control::handle(cp, request).await
}

/// A request addressed to a deployed stage: `/_aws/execute-api/{api}/{stage}/{path}`, or
/// host `{api}.execute-api.*` with path `/{stage}/{path}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTarget {
    pub api_id: String,
    pub stage: String,
    /// The resource path within the stage, starting with `/`.
    pub path: String,
}

/// The stage a request is addressed to, if it is addressed to one.
pub fn stage_target(headers: &HeaderMap, uri: &Uri) -> Option<StageTarget> {
    let path = uri.path();
    if let Some(rest) = path.strip_prefix("/_aws/execute-api/") {
        let (api_id, rest) = rest.split_once('/').unwrap_or((rest, ""));
        return split_stage(api_id, rest);
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let (api_id, domain) = host.split_once('.')?;
    if !domain.starts_with("execute-api.") {
        return None;
    }
    split_stage(api_id, path.strip_prefix('/').unwrap_or(path))
}

/// `{stage}/{path}` after the API id.
fn split_stage(api_id: &str, rest: &str) -> Option<StageTarget> {
    let (stage, path) = rest.split_once('/').unwrap_or((rest, ""));
    if api_id.is_empty() || stage.is_empty() {
        return None;
    }
    Some(StageTarget {
        api_id: api_id.to_owned(),
        stage: stage.to_owned(),
        path: format!("/{path}"),
    })
}

/// Runs a request through a deployed stage.
pub async fn execute(cp: &ControlPlane, target: StageTarget, request: Request) -> Response {
    execute::execute(cp, target, request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn target(host: Option<&'static str>, uri: &str) -> Option<StageTarget> {
        let mut h = HeaderMap::new();
        if let Some(host) = host {
            h.insert(header::HOST, HeaderValue::from_static(host));
        }
        stage_target(&h, &uri.parse().unwrap())
    }

    fn t(api: &str, stage: &str, path: &str) -> Option<StageTarget> {
        Some(StageTarget {
            api_id: api.into(),
            stage: stage.into(),
            path: path.into(),
        })
    }

    #[test]
    fn stages_are_addressed_by_path_or_host() {
        assert_eq!(
            target(None, "/_aws/execute-api/abc/dev/"),
            t("abc", "dev", "/")
        );
        assert_eq!(
            target(None, "/_aws/execute-api/abc/dev"),
            t("abc", "dev", "/")
        );
        assert_eq!(
            target(None, "/_aws/execute-api/abc/dev/items/1?x=1"),
            t("abc", "dev", "/items/1")
        );
        assert_eq!(target(None, "/_aws/execute-api/abc"), None);
        assert_eq!(
            target(Some("abc.execute-api.localhost:4566"), "/dev/items"),
            t("abc", "dev", "/items")
        );
        assert_eq!(
            target(Some("abc.execute-api.us-east-1.amazonaws.com"), "/prod"),
            t("abc", "prod", "/")
        );
        assert_eq!(target(Some("127.0.0.1:4566"), "/dev"), None);
        assert_eq!(target(Some("abc.execute-api.x"), "/"), None);
    }
}
