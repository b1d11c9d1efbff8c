//! The HTTP surface of `spillway serve` in-process (the ingest route `POST /dev` above
//! all, and the AWS JSON endpoint and inspection API beside it), through
//! `spillway::api::Endpoint::handle`. The first byte picks the method, path and
//! content type; the second a header variant; the rest is the body. Must never panic.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::Request;
use libfuzzer_sys::fuzz_target;
use spillway::api::{Services, kinesis::iterator::IteratorCodec};
use spillway::config::{Config, DEFAULT_TOML};
use spillway::function::Functions;
use spillway::mapping::Mappings;
use spillway::storage::fjall_engine::FjallStore;
use spillway::storage::{Store, StreamStore};
use spillway::stream::Streams;
use spillway::table::Tables;

const PATHS: [&str; 6] = [
    "/dev",
    "/dev?x=1&y=%ZZ",
    "/dev/extra",
    "/",
    "/_spillway/streams",
    "/_spillway/streams/example-stream",
];
const CONTENT_TYPES: [&str; 5] = [
    "application/json",
    "text/plain",
    "application/x-amz-json-1.1",
    "application/x-www-form-urlencoded",
    "",
];

struct State {
    runtime: tokio::runtime::Runtime,
    endpoint: spillway::api::Endpoint,
    _dir: tempfile::TempDir,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        // The default config without its mapping: routes and streams, no pollers.
        let text = &DEFAULT_TOML[..DEFAULT_TOML
            .find("# Event source mappings")
            .expect("default config has a mapping")];
        let config = Config::parse(text, std::path::Path::new("fuzz.toml")).expect("config");
        let store: Arc<dyn Store> = Arc::new(FjallStore::open(dir.path()).expect("store"));
        let streams = Arc::new(
            Streams::open(
                Arc::clone(&store) as Arc<dyn StreamStore>,
                &config.streams_settings(),
            )
            .expect("streams"),
        );
        let tables =
            Arc::new(Tables::open(Arc::clone(&store), &config.tables_settings()).expect("tables"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let endpoint = runtime.block_on(async {
            let functions = Arc::new(Functions::from_config(
                &config,
                &tables,
                "127.0.0.1:9".parse().expect("address"),
            ));
            // The config has no mappings: this opens none and starts no poller.
            let mappings = Arc::new(
                Mappings::start(
                    &config,
                    Arc::clone(&store),
                    Arc::clone(&streams),
                    Arc::clone(&tables),
                    Arc::clone(&functions),
                )
                .expect("mappings"),
            );
            let resources = Arc::clone(&store) as Arc<dyn spillway::storage::ResourceStore>;
            let lambda = Arc::new(spillway::lambda::Lambda::new(
                &config,
                Arc::clone(&resources),
                Arc::clone(&functions),
                Arc::clone(&mappings),
            ));
            spillway::api::endpoint(
                &config,
                Services {
                    streams,
                    tables,
                    mappings,
                    functions,
                    iterators: IteratorCodec::new([7; 32]),
                    remote: None,
                    worker: None,
                },
                resources,
                lambda,
            )
        });
        State {
            runtime,
            endpoint,
            _dir: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let [a, b, body @ ..] = data else {
        return;
    };
    let method = ["POST", "GET", "PUT"][usize::from(a & 3) % 3];
    let path = PATHS[usize::from(a >> 2) % PATHS.len()];
    let mut request = Request::builder().method(method).uri(path).header(
        "content-type",
        CONTENT_TYPES[usize::from(b & 7) % CONTENT_TYPES.len()],
    );
    if b & 0x08 != 0 {
        request = request.header("x-amz-target", "DynamoDB_20120810.PutItem");
    }
    if b & 0x10 != 0 {
        request = request.header("x-amz-target", "Kinesis_20131202.PutRecord");
    }
    if b & 0x20 != 0 {
        request = request.header("authorization", "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host, Signature=0");
    }
    if b & 0x40 != 0 {
        // Header values that are valid bytes but not UTF-8 or not ASCII.
        request = request.header("x-request-id", &b"\xc3\xa9\xff"[..]);
    }
    let Ok(request) = request.body(Body::from(body.to_vec())) else {
        return;
    };
    let s = state();
    s.runtime.block_on(async {
        let response = s.endpoint.handle(request).await;
        let _ = axum::body::to_bytes(response.into_body(), usize::MAX).await;
    });
});
