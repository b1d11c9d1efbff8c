//! API Gateway on the shared endpoint: the REST API control plane (restJson1 under
//! `/restapis`), and the execution of deployed stages.

use axum::extract::Request;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;

use super::front::{ControlPlane, ControlRequest, ControlService};

/// Answers one API Gateway control-plane request.
pub async fn handle(_cp: &ControlPlane, request: ControlRequest) -> Response {
    super::front::unimplemented(ControlService::ApiGateway, &request)
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
pub fn stage_target(_headers: &HeaderMap, _uri: &Uri) -> Option<StageTarget> {
    None
}

/// Runs a request through a deployed stage.
pub async fn execute(_cp: &ControlPlane, _target: StageTarget, _request: Request) -> Response {
    super::aws_error(
        axum::http::StatusCode::NOT_FOUND,
        "NotFoundException",
        "No such stage",
    )
}
