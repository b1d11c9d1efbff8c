//! STS and IAM on the shared endpoint (awsQuery: a form-encoded `Action` in, XML out).

use axum::response::Response;

use super::front::{ControlPlane, ControlRequest, ControlService};

/// Answers one STS or IAM request.
pub async fn handle(
    _cp: &ControlPlane,
    service: ControlService,
    request: ControlRequest,
) -> Response {
    super::front::unimplemented(service, &request)
}
