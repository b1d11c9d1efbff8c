//! The configured HTTP routes (`[[routes]]`): each path's methods, to a buffered route
//! ([`super::ingest`]: the body appended to a stream) or a direct one
//! ([`super::direct`]: the function invoked), behind API keys where a route asks for
//! them. Its own module so that neither kind of route imports the other.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};

use super::aws_error;
use super::direct::DirectRoute;
use super::ingest::{ApiKeys, IngestRoute};
use crate::config::{ApiKeyConfig, RouteConfig};

/// One configured route: buffered (the body appended to a stream) or direct (the
/// function invoked).
enum Route {
    Buffered(IngestRoute),
    Direct(DirectRoute),
}

impl Route {
    async fn handle(&self, req: Request) -> Response {
        match self {
            Self::Buffered(r) => r.handle(req).await,
            Self::Direct(r) => r.handle(req).await,
        }
    }
}

/// Routes for every `[[routes]]` entry (buffered, or direct through
/// [`super::direct`]); other methods on those paths answer 405.
/// Routes with `api_key_required` admit requests through `api_keys` first.
pub fn router(
    routes: &[RouteConfig],
    api_keys: &[ApiKeyConfig],
    services: &super::Services,
) -> Router {
    let keys = Arc::new(ApiKeys::new(api_keys));
    let mut by_path: BTreeMap<&str, MethodRouter> = BTreeMap::new();
    for rc in routes {
        let method = Method::from_bytes(rc.method.to_ascii_uppercase().as_bytes())
            .expect("config validation checked the method");
        let filter = MethodFilter::try_from(method).unwrap_or(MethodFilter::POST);
        let keys = rc.api_key_required.then(|| Arc::clone(&keys));
        let route = Arc::new(match (&rc.stream, &rc.function) {
            (Some(stream), _) => {
                Route::Buffered(IngestRoute::new(stream, rc.partition_key.clone(), services))
            }
            (None, Some(function)) => Route::Direct(DirectRoute::new(function, services)),
            (None, None) => unreachable!("config validation requires stream or function"),
        });
        let method_router = on(filter, move |req: Request| {
            let (route, keys) = (Arc::clone(&route), keys.clone());
            async move {
                match admit(keys.as_deref(), &req) {
                    Some(refused) => refused,
                    None => route.handle(req).await,
                }
            }
        });
        let entry = by_path.remove(rc.path.as_str()).unwrap_or_default();
        by_path.insert(rc.path.as_str(), entry.merge(method_router));
    }
    let mut app = Router::new();
    for (path, mr) in by_path {
        app = app.route(
            path,
            mr.fallback(|| async {
                aws_error(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowedException",
                    "This route does not accept this HTTP method",
                )
            }),
        );
    }
    app
}

/// The refusal, when a route needs an API key and the request's does not pass.
fn admit(keys: Option<&ApiKeys>, req: &Request) -> Option<Response> {
    let err = keys?.admit(req.headers()).err()?;
    tracing::debug!(error = %err, path = %req.uri().path(), "api key refused");
    let mut resp = err.into_response();
    resp.headers_mut().insert(
        crate::api::names::X_AMZN_REQUEST_ID,
        crate::api::uuid_request_id(),
    );
    Some(resp)
}
