//! A function instance's Runtime API, over a loopback socket to the listener spillway
//! starts for it. One `kind = "runtime"` function is started once, its bootstrap a shell
//! that writes `$AWS_LAMBDA_RUNTIME_API` to a file and waits for the fuzzer to exit; one
//! invocation is taken (by the harness, playing the runtime) and left unanswered. Each input becomes one raw HTTP request: the first byte
//! picks the route, the first line of the rest the request id (percent-encoded), the rest
//! the body. `invocation/next` (it waits for events) and `init/error` (it stops the
//! instance) are not sent. A panic in a handler aborts the process (libfuzzer-sys's
//! hook), and a 500 answer fails the target.
#![no_main]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use spillway::config::{Config, DEFAULT_TOML};
use spillway::function::{Functions, TableWrites};
use spillway::storage::Store;
use spillway::storage::fjall_engine::FjallStore;
use spillway::table::Tables;

struct State {
    address: String,
    _functions: Arc<Functions>,
    _runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn state() -> &'static State {
    static STATE: OnceLock<State> = OnceLock::new();
    STATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("runtime-api");
        let text = &DEFAULT_TOML[..DEFAULT_TOML
            .find("# Event source mappings")
            .expect("default config has a mapping")];
        let script = format!(
            "echo \"$AWS_LAMBDA_RUNTIME_API\" > '{}'; while kill -0 $PPID 2>/dev/null; do sleep 1; done",
            file.display()
        );
        let config = format!(
            "{text}\n[[functions]]\nname = \"fuzz-runtime\"\nkind = \"runtime\"\nreserved_concurrency = 1\ntimeout_seconds = 900\ncommand = [\"sh\", \"-c\", {}]\n",
            serde_json::to_string(&script).expect("string")
        );
        let config = Config::parse(&config, std::path::Path::new("fuzz.toml")).expect("config");
        let store: Arc<dyn Store> = Arc::new(FjallStore::open(&dir.path().join("d")).expect("store"));
        let tables = Arc::new(Tables::open(store, &config.tables_settings()).expect("tables"));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let functions = runtime.block_on(async {
            let functions = Arc::new(Functions::from_config(
                &config,
                &tables,
                "127.0.0.1:9".parse().expect("address"),
            ));
            let f = functions.get("fuzz-runtime").expect("function");
            // The invocation that starts the instance; it stays pending.
            tokio::spawn(async move {
                let _ = f
                    .invoke(bytes::Bytes::from_static(b"{}"), &mut TableWrites::default())
                    .await;
            });
            functions
        });
        let start = Instant::now();
        let address = loop {
            let a = std::fs::read_to_string(&file).unwrap_or_default();
            if !a.trim().is_empty() {
                break a.trim().to_owned();
            }
            assert!(start.elapsed() < Duration::from_secs(60), "no Runtime API address");
            std::thread::sleep(Duration::from_millis(20));
        };
        // Play the runtime once: take the invocation, so that the instance is not
        // stopped for never asking for it, and never answer it.
        let mut conn = TcpStream::connect(&address).expect("Runtime API listening");
        write!(
            conn,
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut answer = Vec::new();
        conn.read_to_end(&mut answer).expect("next invocation");
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
        State {
            address,
            _functions: functions,
            _runtime: runtime,
            _dir: dir,
        }
    })
}

fn percent_encode(raw: &[u8]) -> String {
    raw.iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b == b'-' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let (id, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&rest[..0], rest),
    };
    let id = percent_encode(id);
    if selector % 5 == 4 && id == "next" {
        // invocation/next waits for an event that never comes.
        return;
    }
    let (method, path, extra) = match selector % 5 {
        0 => (
            "POST",
            format!("/2018-06-01/runtime/invocation/{id}/response"),
            "",
        ),
        1 => (
            "POST",
            format!("/2018-06-01/runtime/invocation/{id}/error"),
            "Lambda-Runtime-Function-Error-Type: Runtime.Fuzz\r\n",
        ),
        2 => ("POST", format!("/2018-06-01/runtime/{id}"), ""),
        3 => (
            "PUT",
            format!("/2018-06-01/runtime/invocation/{id}/response"),
            "",
        ),
        _ => ("GET", format!("/2018-06-01/runtime/invocation/{id}"), ""),
    };
    let s = state();
    // Loopback ports can run short at thousands of connections a second: retry a while.
    let mut tries = 0;
    let mut conn = loop {
        match TcpStream::connect(&s.address) {
            Ok(c) => break c,
            Err(e) => {
                tries += 1;
                assert!(tries < 500, "Runtime API not listening: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    conn.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        s.address,
        body.len()
    );
    // The server may answer and close before taking the whole body.
    if conn.write_all(head.as_bytes()).is_err() || conn.write_all(body).is_err() {
        return;
    }
    let mut answer = Vec::new();
    // An answer may be lost to a reset when the server replies before reading the whole
    // body (as it does to an unknown request id); that is not a crash. A panicking
    // handler is: it runs in this process, and libfuzzer-sys aborts on any panic, in
    // any thread.
    let _ = conn.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/1.1 500"),
        "500 to {method} {path}: {:?}",
        String::from_utf8_lossy(&answer)
    );
});
