//! CloudWatch (metric alarms, stored and described) on the shared endpoint.

use axum::response::Response;

use super::front::{ControlPlane, ControlRequest, ControlService};

/// Answers one request of this service.
pub async fn handle(_cp: &ControlPlane, request: ControlRequest) -> Response {
    super::front::unimplemented(ControlService::Monitoring, &request)
}
