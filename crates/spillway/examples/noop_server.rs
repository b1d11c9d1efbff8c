//! The HTTP ceiling: an axum server whose `POST /dev` reads the body and answers 200 with
//! a small JSON body, doing nothing else. Benchmarks compare spillway against it.
//!
//! `cargo run --release --example noop_server -- 127.0.0.1:4599`

use axum::Router;
use axum::routing::post;

/// Same allocator as the spillway binary, so the ceiling is a fair one.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4599".into());
    let app = Router::new().route(
        "/dev",
        post(|body: bytes::Bytes| async move {
            axum::Json(serde_json::json!({
                "SequenceNumber": "49000000000000000000000000000000000000000000000000000000",
                "ShardId": "shardId-000000000000",
                "len": body.len(),
            }))
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("noop server listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await
}
