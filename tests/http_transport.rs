//! The HTTP transport against a real server on loopback, driven byte by byte over raw TCP:
//! admission before a body is buffered, the deadline counted from arrival, header and body
//! read timeouts, the connection limit, and a drain that lets an upload in progress finish.

mod common;

use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client far slower than any limit under test: the point at which a test gives up.
const PATIENCE: Duration = Duration::from_secs(60);

fn body_of(request: &Value) -> Vec<u8> {
    serde_json::to_vec(request).expect("JSON")
}

/// The head of a JSON `POST /rank` with a `content-length` of `length`.
fn head(addr: &str, length: usize) -> String {
    format!(
        "POST /rank HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    )
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").to_owned()
}

/// Reads one HTTP/1.1 response (status and JSON body, by `content-length`), or `None` when
/// the server closes the connection first.
async fn read_response(stream: &mut TcpStream) -> Option<(u16, Value)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_string();
            let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                buffer.extend_from_slice(&chunk[..n]);
            }
            let body =
                serde_json::from_slice(&buffer[end + 4..end + 4 + length]).unwrap_or(Value::Null);
            return Some((status, body));
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
}

async fn within_patience<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(PATIENCE, future)
        .await
        .unwrap_or_else(|_| panic!("gave up waiting for {what}"))
}

/// A server on a copy of the shipped repository, with `adjust` applied to its config.
async fn start(
    adjust: impl FnOnce(&mut giftrank::config::Config),
) -> (tempfile::TempDir, common::Running) {
    let repo = common::temp_repo();
    let mut config = common::test_config(repo.path());
    adjust(&mut config);
    let server = common::start(config).await;
    (repo, server)
}

/// Sends a head and the first half of `body`, leaving the upload unfinished.
async fn start_upload(url: &str, body: &[u8]) -> TcpStream {
    let mut stream = TcpStream::connect(addr(url)).await.expect("connect");
    stream
        .write_all(head(&addr(url), body.len()).as_bytes())
        .await
        .expect("head");
    stream
        .write_all(&body[..body.len() / 2])
        .await
        .expect("first half");
    stream
}

/// Waits (on the gauge, not on a clock) until the server has admitted `n` ranking requests.
async fn until_admitted(server: &common::Running, n: i64) {
    within_patience("admission", async {
        while server.state.metrics.inflight.get() < n {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

#[tokio::test]
async fn an_upload_holds_its_place_from_admission_so_memory_is_bounded() {
    let (_repo, server) = start(|config| {
        config.max_inflight_requests = 1;
        config.request_timeout_ms = 60_000;
    })
    .await;
    let body = body_of(&common::example("rank_request.json"));
    let mut slow = start_upload(&server.url, &body).await;
    until_admitted(&server, 1).await;

    // The unfinished upload holds the only place: another request is shed at once,
    // before its body is read.
    let client = reqwest::Client::new();
    let shed = client
        .post(format!("{}/rank", server.url))
        .json(&common::example("rank_request.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(shed.status(), 503);
    assert!(shed.headers().contains_key("retry-after"));
    // Its body was not read, so its connection closes, and the answer says so.
    assert_eq!(shed.headers()["connection"], "close");

    slow.write_all(&body[body.len() / 2..])
        .await
        .expect("second half");
    let (status, response) = within_patience("the response", read_response(&mut slow))
        .await
        .expect("a response");
    assert_eq!(status, 200, "{response}");
    assert_eq!(server.state.metrics.inflight.get(), 0);
    server.shutdown().await;
}

#[tokio::test]
async fn the_deadline_counts_from_arrival_not_from_the_end_of_the_body() {
    let (_repo, server) = start(|config| {
        config.request_timeout_ms = 300;
    })
    .await;
    let body = body_of(&common::example("rank_request.json"));
    let mut slow = start_upload(&server.url, &body).await;
    // The client takes longer than the whole deadline to send the rest: the answer is
    // 504 whether or not the rest arrives.
    let (status, response) = within_patience("the 504", read_response(&mut slow))
        .await
        .expect("a response");
    assert_eq!(status, 504, "{response}");
    assert_eq!(response["error"]["code"], "deadline_exceeded");
    let _ = slow.write_all(&body[body.len() / 2..]).await;
    server.shutdown().await;
}

#[tokio::test]
async fn slow_headers_and_stalled_bodies_are_cut_off() {
    let (_repo, server) = start(|config| {
        config.header_read_timeout_ms = 200;
        config.body_read_timeout_ms = 200;
        config.request_timeout_ms = 60_000;
    })
    .await;

    // A head that never ends: the connection is closed without an answer.
    let mut stream = TcpStream::connect(addr(&server.url))
        .await
        .expect("connect");
    stream
        .write_all(b"POST /rank HTTP/1.1\r\nhost: x\r\n")
        .await
        .expect("partial head");
    let answer = within_patience("the close", read_response(&mut stream)).await;
    assert!(answer.is_none() || answer.is_some_and(|(s, _)| s == 408));

    // A body that stops arriving: 408, counted.
    let body = body_of(&common::example("rank_request.json"));
    let mut slow = start_upload(&server.url, &body).await;
    let (status, response) = within_patience("the 408", read_response(&mut slow))
        .await
        .expect("a response");
    assert_eq!(status, 408, "{response}");
    assert_eq!(response["error"]["code"], "body_timeout");
    let counted = server
        .state
        .metrics
        .rejected
        .with_label_values(&["body_timeout"])
        .get();
    assert_eq!(counted, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn connections_past_the_limit_wait_for_a_free_one() {
    let (_repo, server) = start(|config| {
        config.max_connections = 1;
    })
    .await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nhost: {}\r\n\r\n",
        addr(&server.url)
    );
    let mut first = TcpStream::connect(addr(&server.url))
        .await
        .expect("connect");
    first.write_all(request.as_bytes()).await.expect("send");
    let mut reply = [0u8; 256];
    let n = first.read(&mut reply).await.expect("reply");
    assert!(String::from_utf8_lossy(&reply[..n]).starts_with("HTTP/1.1 200"));

    // The first connection stays open (keep-alive): the second is not served...
    let mut second = TcpStream::connect(addr(&server.url))
        .await
        .expect("connect");
    second.write_all(request.as_bytes()).await.expect("send");
    let early = tokio::time::timeout(Duration::from_millis(300), second.read(&mut reply)).await;
    assert!(early.is_err(), "served past the connection limit");
    // ...until the first one closes.
    drop(first);
    let n = within_patience("the second reply", second.read(&mut reply))
        .await
        .expect("reply");
    assert!(String::from_utf8_lossy(&reply[..n]).starts_with("HTTP/1.1 200"));
    server.shutdown().await;
}

#[tokio::test]
async fn the_drain_finishes_a_request_whose_body_is_still_uploading() {
    let (_repo, server) = start(|config| {
        config.request_timeout_ms = 60_000;
    })
    .await;
    let body = body_of(&json!({
        "request_id": "uploading",
        "candidates": common::example("rank_request.json")["candidates"],
    }));
    let mut slow = start_upload(&server.url, &body).await;
    until_admitted(&server, 1).await;

    let mut readiness = server.state.subscribe_readiness();
    let shutdown = tokio::spawn(server.shutdown());
    within_patience("readiness to fall", readiness.wait_for(|ready| !*ready))
        .await
        .expect("readiness");
    slow.write_all(&body[body.len() / 2..])
        .await
        .expect("second half");
    let (status, response) = within_patience("the response", read_response(&mut slow))
        .await
        .expect("a response");
    assert_eq!(status, 200, "{response}");
    assert_eq!(response["request_id"], "uploading");
    within_patience("the drain", shutdown).await.expect("join");
}

/// `VmRSS` or `VmHWM` (peak) of process `pid`, in bytes.
fn memory_of(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| {
            l.strip_prefix(field)?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()
        })
        .expect(field);
    kib * 1024
}

#[tokio::test]
async fn many_large_uploads_at_once_stay_within_the_memory_bound() {
    const INFLIGHT: usize = 4;
    const BODY: usize = 4 << 20;
    const CLIENTS: usize = 48;
    let repo = common::temp_repo();
    let mut server = common::spawn_serve(
        repo.path(),
        &[
            ("GIFTRANK_MAX_INFLIGHT_REQUESTS", "4"),
            ("GIFTRANK_MAX_BODY_BYTES", &BODY.to_string()),
            ("GIFTRANK_REQUEST_TIMEOUT_MS", "60000"),
            ("GIFTRANK_WATCH_EVENTS", "false"),
        ],
    );
    let pid = server.child.id();
    let baseline = memory_of(pid, "VmRSS:");
    // Every client sends all but the last byte of a 4 MiB body and holds it there.
    let chunk = vec![b' '; 256 << 10];
    let mut uploads = Vec::new();
    for _ in 0..CLIENTS {
        let url = server.url.clone();
        let chunk = chunk.clone();
        uploads.push(tokio::spawn(async move {
            let stream = TcpStream::connect(addr(&url)).await.expect("connect");
            let (mut reader, mut writer) = stream.into_split();
            // Either the whole upload (but its last byte) goes through, or the server
            // answers first (503, shed before its body is read) and the upload stops.
            let upload = async {
                writer.write_all(head(&addr(&url), BODY).as_bytes()).await?;
                let mut sent = 0;
                while sent < BODY - 1 {
                    let n = chunk.len().min(BODY - 1 - sent);
                    writer.write_all(&chunk[..n]).await?;
                    sent += n;
                }
                std::io::Result::Ok(())
            };
            let mut first = [0u8; 12];
            let answered = tokio::select! {
                _ = upload => None,
                read = reader.read(&mut first) => Some(read.map_or(0, |n| n)),
            };
            (reader, writer, answered)
        }));
    }
    let mut streams = Vec::new();
    for upload in uploads {
        streams.push(
            within_patience("the uploads", upload)
                .await
                .expect("upload task"),
        );
    }
    let peak = memory_of(pid, "VmHWM:");
    drop(streams);
    server.signal("TERM");
    assert_eq!(server.child.wait().expect("exit").code(), Some(0));
    // DESIGN.md §10: at most max_inflight_requests × max_body_bytes of bodies are held;
    // the bound adds 100 MB. All 48 bodies buffered would be 192 MiB. (Bytes of
    // shed uploads may wait in the kernel's socket buffers; they are not the process's.)
    let bound = baseline + (INFLIGHT * BODY) as u64 + (100 << 20);
    assert!(
        peak <= bound,
        "peak RSS {} MiB over the bound {} MiB (baseline {} MiB)",
        peak >> 20,
        bound >> 20,
        baseline >> 20
    );
}
