//! The listener's bounds, as a hostile or careless client meets them: thousands of idle
//! connections, slow headers, a body announced longer than it is, more connections
//! than allowed, more body bytes in flight than the budget. Each must cost the server a
//! bounded amount and never starve a normal request.

#![allow(clippy::unwrap_used)]
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

fn addr(s: &Server) -> String {
    s.base.trim_start_matches("http://").to_owned()
}

/// One request on a fresh connection; returns the status line and the whole answer.
fn request(s: &Server, raw: &str, timeout: Duration) -> String {
    let mut c = TcpStream::connect(addr(s)).unwrap();
    c.set_read_timeout(Some(timeout)).unwrap();
    c.write_all(raw.as_bytes()).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match c.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                // Enough to judge: the head and a short body.
                if out.windows(4).any(|w| w == b"\r\n\r\n") && out.len() > 60 {
                    let text = String::from_utf8_lossy(&out);
                    if let Some(len) = content_length(&text) {
                        let head = text.find("\r\n\r\n").unwrap() + 4;
                        if out.len() >= head + len {
                            break;
                        }
                    }
                }
            }
            Err(e) => panic!("no answer within {timeout:?}: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn content_length(head: &str) -> Option<usize> {
    head.lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(str::to_owned)
        })
        .and_then(|v| v.trim().parse().ok())
}

fn post_raw(body: &str) -> String {
    format!(
        "POST /dev HTTP/1.1\r\nhost: x\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Waits until the server closes `c`; returns how long that took, or None.
fn closed_within(c: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    c.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 1024];
    while start.elapsed() < limit {
        match c.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return Some(start.elapsed()),
        }
    }
    None
}

fn server_with(server_keys: &str) -> (tempfile::TempDir, Server) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with(|t| {
        t.replace("[server]\n", &format!("[server]\n{server_keys}\n"))
        // The keys set above win over the defaults that follow them in the file.
    });
    let config = dedupe_server_keys(&config);
    let s = Server::start(&dir.path().join("data"), Some(&config));
    (dir, s)
}

/// Keeps the first occurrence of each `[server]` key (ours, inserted at the top).
fn dedupe_server_keys(config: &str) -> String {
    let mut seen = std::collections::HashSet::new();
    let mut in_server = false;
    let mut out = String::new();
    for line in config.lines() {
        if line.starts_with('[') {
            in_server = line.trim() == "[server]";
        }
        if in_server
            && let Some((key, _)) = line.split_once('=')
            && !line.trim_start().starts_with('#')
            && !seen.insert(key.trim().to_owned())
        {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn idle_and_slow_clients_are_cut_off() {
    let (_dir, s) = server_with(
        "idle_timeout_ms = 1000\nheader_read_timeout_ms = 1000\nbody_read_timeout_ms = 1000",
    );

    // An idle keep-alive connection is closed.
    let mut idle = TcpStream::connect(addr(&s)).unwrap();
    let took = closed_within(&mut idle, Duration::from_secs(10));
    assert!(took.is_some(), "an idle connection was held for 10 s");

    // Slowloris: headers trickling in, one byte at a time, never finished.
    let mut slow = TcpStream::connect(addr(&s)).unwrap();
    slow.write_all(b"POST /dev HTTP/1.1\r\nhost: x\r\n")
        .unwrap();
    let start = Instant::now();
    let mut cut = false;
    while start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(300));
        if slow.write_all(b"x").is_err() {
            cut = true;
            break;
        }
        if closed_within(&mut slow, Duration::from_millis(1)).is_some() {
            cut = true;
            break;
        }
    }
    assert!(cut, "a client trickling headers was held for 10 s");

    // A body announced longer than it is, held open: answered and closed, not waited on.
    let mut short = TcpStream::connect(addr(&s)).unwrap();
    short
        .write_all(b"POST /dev HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n0123456789")
        .unwrap();
    short
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = short.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "a stalled body must fail fast: {answer:?}"
    );

    // Meanwhile normal requests are served.
    let ok = request(&s, &post_raw("{\"a\": 1}"), Duration::from_secs(5));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

#[test]
fn connections_past_the_limit_get_503_and_the_rest_are_served() {
    let (_dir, s) = server_with("max_connections = 20");
    let held: Vec<TcpStream> = (0..20)
        .map(|_| TcpStream::connect(addr(&s)).unwrap())
        .collect();
    // Let the server accept them all.
    std::thread::sleep(Duration::from_millis(300));
    let refused = request(&s, &post_raw("{\"a\": 1}"), Duration::from_secs(5));
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    assert!(refused.contains("ServiceUnavailable"), "{refused}");
    drop(held);
    std::thread::sleep(Duration::from_millis(300));
    let ok = request(&s, &post_raw("{\"a\": 1}"), Duration::from_secs(5));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

#[test]
fn bodies_past_the_byte_budget_get_503_before_being_read() {
    let (_dir, s) = server_with("request_body_budget_bytes = 100000");
    // One request holds 80 KB of the budget while its body trickles in.
    let mut holder = TcpStream::connect(addr(&s)).unwrap();
    holder
        .write_all(b"POST /dev HTTP/1.1\r\nhost: x\r\ncontent-length: 80000\r\n\r\n{\"a\":")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let body = format!("{{\"pad\": \"{}\"}}", "p".repeat(50_000));
    let refused = request(&s, &post_raw(&body), Duration::from_secs(5));
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after"),
        "{refused}"
    );
    assert!(refused.contains("ServiceUnavailableException"), "{refused}");
    // A small one still fits.
    let ok = request(&s, &post_raw("{\"a\": 1}"), Duration::from_secs(5));
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    drop(holder);
    std::thread::sleep(Duration::from_millis(200));
    let ok = request(&s, &post_raw(&body), Duration::from_secs(5));
    assert!(
        ok.starts_with("HTTP/1.1 200"),
        "the budget comes back: {ok}"
    );
}

/// 6,000 idle connections (fewer where the open-file limit cannot hold them, with a
/// note) and a normal request still answered; prints how long it waited.
#[test]
fn thousands_of_idle_connections_do_not_starve_a_request() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut lim = getrlimit(Resource::Nofile);
    lim.current = lim.maximum;
    let _ = setrlimit(Resource::Nofile, lim);
    let fds = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    // This process and the server each hold one descriptor per connection.
    let n = 6_000usize.min(usize::try_from(fds.saturating_sub(600)).unwrap_or(6_000));
    if n < 6_000 {
        eprintln!("NOTE: open-file limit {fds}: holding {n} idle connections, not 6,000");
    }
    let (_dir, s) = server_with("");
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        held.push(TcpStream::connect(addr(&s)).unwrap());
    }
    std::thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    let ok = request(&s, &post_raw("{\"a\": 1}"), Duration::from_secs(5));
    let waited = start.elapsed();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    println!("with {n} idle connections open, a POST took {waited:?}");
    let (status, health) = {
        let answer = request(
            &s,
            "GET /_spillway/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
            Duration::from_secs(5),
        );
        let body = answer
            .split("\r\n\r\n")
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        (answer, body)
    };
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let v: serde_json::Value = serde_json::from_str(&health).unwrap();
    assert!(
        v["connections"]["open"].as_u64().unwrap() >= n as u64,
        "{v}"
    );
}

#[test]
fn data_dir_and_iterator_key_are_private_and_open_binds_warn() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // An existing data dir readable by others is tightened.
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let log = dir.path().join("log");
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
        .arg(&data)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("listening"), "{line}");
    child.kill().unwrap();
    child.wait().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "data dir");
    assert_eq!(mode(&data.join("iterator-key")), 0o600, "iterator key");
    let stderr = std::fs::read_to_string(&log).unwrap();
    assert!(
        stderr.contains("without signature verification"),
        "no warning for a non-loopback bind: {stderr}"
    );
}
