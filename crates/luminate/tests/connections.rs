//! Connections below the router, against the real binary over raw TCP: the connection cap (clients
//! beyond it wait, the server's descriptors stay bounded, and they are served once others close); the
//! header-read timeout (a slowloris client is dropped) and the idle timeout (a keep-alive connection
//! is closed, on its own clock); a flood of connections under a low open-file limit, which used to
//! poison the engine; and the requests refused before routing, each answered with the contract's JSON
//! error, the status HTTP/1.1 gives it, and in order after pipelined requests before it; and a response
//! sent before its request's body was read says `connection: close`.
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on the first unexpected error"
)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use common::{Launch, Luminate, eventually, now_ms, point};
use serde_json::{Value, json};

const HEALTH: &[u8] = b"GET /api/v1/health HTTP/1.1\r\nHost: luminate\r\n\r\n";

/// One raw HTTP/1.1 response.
struct Reply {
    status: u16,
    /// Status line and header fields.
    head: String,
    body: Vec<u8>,
}

impl Reply {
    /// The body as the contract's error, after checking its shape: `INVALID_REQUEST`, a message,
    /// empty details, served as JSON.
    fn contract_error(&self, what: &str) -> Value {
        assert!(
            self.head
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{what}: {}",
            self.head
        );
        let body: Value = serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "{what}: body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        });
        let error = &body["error"];
        assert_eq!(error["code"], "INVALID_REQUEST", "{what}: {body}");
        assert_eq!(error["details"], json!({}), "{what}: {body}");
        assert_eq!(body.as_object().unwrap().len(), 1, "{what}: {body}");
        error["message"].clone()
    }
}

/// `host:port` of the server.
fn address(server: &Luminate) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// A raw connection; bytes read past one response are kept for the next (pipelining).
struct Client {
    stream: TcpStream,
    received: Vec<u8>,
}

impl Client {
    fn connect(address: &str) -> Self {
        let stream = TcpStream::connect(address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self {
            stream,
            received: Vec::new(),
        }
    }

    /// Sends `bytes`. A write error is ignored: the server may stop reading (and answer) before a
    /// refused request is all sent, or close a connection it dropped.
    fn send(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Reads more bytes; 0 at the end of the stream (or a reset).
    fn receive(&mut self) -> usize {
        let mut chunk = [0u8; 4096];
        match self.stream.read(&mut chunk) {
            Ok(n) => {
                self.received.extend_from_slice(&chunk[..n]);
                n
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => 0,
            Err(e) => panic!("reading a response: {e}"),
        }
    }

    /// Reads one response (its body by `Content-Length`); `None` when the connection closes first.
    fn reply(&mut self) -> Option<Reply> {
        let head_end = loop {
            if let Some(end) = self.received.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            if self.receive() == 0 {
                assert!(
                    self.received.is_empty(),
                    "connection closed inside a response: {:?}",
                    self.received
                );
                return None;
            }
        };
        let head = String::from_utf8(self.received[..head_end].to_vec()).unwrap();
        let status = head[9..12].parse().unwrap();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no content-length: {head}"));
        while self.received.len() < head_end + length {
            assert_ne!(self.receive(), 0, "connection closed inside a body");
        }
        let body = self.received[head_end..head_end + length].to_vec();
        self.received.drain(..head_end + length);
        Some(Reply { status, head, body })
    }
}

/// Sends `request` on a new connection and reads the response.
fn exchange(address: &str, request: &[u8]) -> Reply {
    let mut client = Client::connect(address);
    client.send(request);
    client.reply().expect("a response")
}

/// A write body of one point of `metric`.
fn write_body(metric: &str) -> String {
    json!({"metrics": [point(metric, now_ms(), 1.0, &[])]}).to_string()
}

/// `body` in two chunks (with an extension) and a trailer.
fn chunked(body: &str) -> String {
    let (first, second) = body.split_at(body.len() / 2);
    format!(
        "{:x};note=1\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\nX-Trailer: done\r\n\r\n",
        first.len(),
        second.len()
    )
}

fn post_write(headers: &str, body: &str) -> Vec<u8> {
    format!(
        "POST /api/v1/write HTTP/1.1\r\nHost: luminate\r\nContent-Type: application/json\r\n{headers}\r\n{body}"
    )
    .into_bytes()
}

/// Descriptors the process `pid` has open.
fn open_descriptors(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[test]
fn requests_refused_below_the_router_answer_the_contract_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let address = address(&server);
    let long_target = format!(
        "GET /api/v1/metrics?prefix={} HTTP/1.1\r\nHost: luminate\r\n\r\n",
        "a".repeat(20_000)
    );
    let filler: String = (0..70)
        .map(|i| format!("X-Filler-{i}: {}\r\n", "v".repeat(1000)))
        .collect();
    let large_head = format!("GET /api/v1/health HTTP/1.1\r\nHost: luminate\r\n{filler}\r\n");
    let fields: String = (0..101).map(|i| format!("X-Field-{i}: v\r\n")).collect();
    let many_fields = format!("GET /api/v1/health HTTP/1.1\r\n{fields}\r\n");
    let body = write_body("framing");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "a malformed request line",
            b"GARBAGE\r\n\r\n".to_vec(),
            400,
            "malformed request line",
        ),
        (
            "a header line without a colon",
            b"GET /api/v1/health HTTP/1.1\r\nno colon here\r\n\r\n".to_vec(),
            400,
            "invalid header name",
        ),
        (
            "a control byte in a header value",
            b"GET /api/v1/health HTTP/1.1\r\nX-Bad: a\x01b\r\n\r\n".to_vec(),
            400,
            "invalid header value",
        ),
        (
            "a request target of 20 000 bytes",
            long_target.into_bytes(),
            414,
            "request target longer than 16384 bytes",
        ),
        (
            "a head of 70 KiB",
            large_head.into_bytes(),
            431,
            "request head larger than 65536 bytes",
        ),
        (
            "101 header fields",
            many_fields.into_bytes(),
            431,
            "more than 100 header fields",
        ),
        (
            "Transfer-Encoding with Content-Length",
            post_write(
                "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
                &chunked(&body),
            ),
            400,
            "may not carry both Transfer-Encoding and Content-Length",
        ),
        (
            "Content-Length before Transfer-Encoding",
            post_write(
                "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
                &chunked(&body),
            ),
            400,
            "may not carry both Transfer-Encoding and Content-Length",
        ),
        (
            "Transfer-Encoding: gzip, chunked",
            post_write("Transfer-Encoding: gzip, chunked\r\n", &chunked(&body)),
            400,
            r#"Transfer-Encoding "gzip, chunked" is not supported: only `chunked` is accepted"#,
        ),
        (
            "Transfer-Encoding: gzip",
            post_write("Transfer-Encoding: gzip\r\n", &chunked(&body)),
            400,
            r#"Transfer-Encoding "gzip" is not supported"#,
        ),
        (
            "a Content-Length that is a list",
            post_write(&format!("Content-Length: {0}, {0}\r\n", body.len()), &body),
            400,
            "invalid Content-Length",
        ),
    ];
    for (what, request, status, message) in cases {
        let reply = exchange(&address, &request);
        assert_eq!(reply.status, status, "{what}: {}", reply.head);
        let said = reply.contract_error(what);
        assert!(
            said.as_str().unwrap().contains(message),
            "{what}: {said} should say {message:?}"
        );
        assert!(
            reply
                .head
                .to_ascii_lowercase()
                .contains("connection: close"),
            "{what}: {}",
            reply.head
        );
    }

    // A chunked write is accepted; none of the refused ones stored its point.
    let reply = exchange(
        &address,
        &post_write("Transfer-Encoding: chunked\r\n", &chunked(&body)),
    );
    assert_eq!(
        (reply.status, reply.body.as_slice()),
        (200, &br#"{"accepted":1,"rejected":0,"errors":[]}"#[..]),
        "{}",
        reply.head
    );
    assert_eq!(server.count("framing"), 1);
}

/// Whether a response head says the connection closes after it.
fn says_close(head: &str) -> bool {
    head.to_ascii_lowercase().contains("connection: close")
}

#[test]
fn a_response_sent_before_its_body_was_read_says_the_connection_closes() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE__BATCH_WRITE__MAX_REQUEST_SIZE_BYTES", "1024")
        .start();
    let address = address(&server);
    let body = write_body("unread");
    let post = |path: &str, body: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: luminate\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    };
    // Refused before the body is read to its end: a route that does not exist (nothing reads the
    // body), and a write of ten 500-byte chunks past the 1 KiB cap (read, and drained, only up to
    // the cap again: the last five chunks are left). Both are small enough to reach the server in
    // one read, so its closing the connection is a clean end of stream, never a reset.
    let pieces: String = (0..10)
        .map(|_| format!("1f4\r\n{}\r\n", "x".repeat(500)))
        .collect();
    let oversized = post_write(
        "Transfer-Encoding: chunked\r\n",
        &format!("{pieces}0\r\n\r\n"),
    );
    for (what, request, status) in [
        ("no such route", post("/api/v1/nowhere", &body), 404),
        ("an oversized chunked write", oversized, 413),
    ] {
        let mut client = Client::connect(&address);
        client.send(&request);
        let reply = client.reply().unwrap();
        assert_eq!(reply.status, status, "{what}: {}", reply.head);
        assert!(says_close(&reply.head), "{what}: {}", reply.head);
        // The server closes it indeed: a request sent after it is never answered.
        client.send(HEALTH);
        assert!(client.reply().is_none(), "{what}: the connection closes");
    }
    // A write whose body is read, by length and chunked, and a request without a body: the
    // connection stays open for the next request, which is answered on it.
    for (what, request) in [
        ("a write", post("/api/v1/write", &body)),
        (
            "a chunked write",
            post_write("Transfer-Encoding: chunked\r\n", &chunked(&body)),
        ),
        ("a health check", HEALTH.to_vec()),
    ] {
        let mut client = Client::connect(&address);
        client.send(&request);
        let reply = client.reply().unwrap();
        assert_eq!(reply.status, 200, "{what}: {}", reply.head);
        assert!(!says_close(&reply.head), "{what}: {}", reply.head);
        client.send(HEALTH);
        let next = client.reply().expect("an answer on the same connection");
        assert_eq!(next.status, 200, "{what}: {}", next.head);
    }
    assert_eq!(server.count("unread"), 2);
}

#[test]
fn pipelined_requests_are_answered_in_order_up_to_a_refused_head() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let body = write_body("pipelined");
    let requests = [
        b"GET /api/v1/health HTTP/1.1\r\nHost: luminate\r\n\r\n".to_vec(),
        post_write(&format!("Content-Length: {}\r\n", body.len()), &body),
        post_write(
            "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n",
            &chunked(&body),
        ),
        b"GET /api/v1/health HTTP/1.1\r\nHost: luminate\r\n\r\n".to_vec(),
    ]
    .concat();
    let mut client = Client::connect(&address(&server));
    client.send(&requests);

    let health = client.reply().unwrap();
    assert_eq!(health.status, 200, "{}", health.head);
    let write = client.reply().unwrap();
    assert_eq!(
        (write.status, write.body.as_slice()),
        (200, &br#"{"accepted":1,"rejected":0,"errors":[]}"#[..])
    );
    let refused = client.reply().unwrap();
    assert_eq!(refused.status, 400, "{}", refused.head);
    refused.contract_error("the refused pipelined request");
    assert!(
        client.reply().is_none(),
        "the connection closes after the refusal: nothing after it is read"
    );
    assert_eq!(server.count("pipelined"), 1);
}

#[test]
fn connections_beyond_the_cap_wait_until_others_close() {
    const CAP: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE_SERVER_MAX_CONNECTIONS", &CAP.to_string())
        .env("LUMINATE_SERVER_HEADER_READ_TIMEOUT", "60s")
        .start();
    assert!(
        eventually(Duration::from_secs(5), || server
            .output()
            .contains("max_connections=50")),
        "{}",
        server.output()
    );
    let address = address(&server);
    // The harness's client keeps this connection open: it holds one of the 50.
    assert_eq!(server.get("/api/v1/health").0, 200);
    let pid = server.pid();
    let before = open_descriptors(pid);

    // Three times the cap, all within the cap and the listen backlog (128): every handshake completes
    // at once (beyond the backlog the kernel drops handshakes, and clients retry after a second or more).
    let idle: Vec<Client> = (0..150).map(|_| Client::connect(&address)).collect();
    assert!(
        eventually(Duration::from_secs(10), || open_descriptors(pid)
            >= before + CAP - 1),
        "the server accepts up to the cap"
    );
    thread::sleep(Duration::from_millis(300));
    let during = open_descriptors(pid);
    assert!(
        during <= before + CAP + 2,
        "{during} descriptors open with 150 idle clients, {before} before them; the cap is {CAP}"
    );

    // A new client is not served while the cap is reached...
    let mut fresh = Client::connect(&address);
    fresh.send(HEALTH);
    fresh
        .stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let waiting = fresh.stream.read(&mut byte);
    assert!(
        matches!(&waiting, Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)),
        "served beyond the cap: {waiting:?}"
    );
    // ...and is, promptly, once the idle ones have gone.
    drop(idle);
    fresh
        .stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let reply = fresh.reply().expect("served once others closed");
    assert_eq!(reply.status, 200, "{}", reply.head);
    let (status, body) = server.write(&[point("capped", now_ms(), 1.0, &[])]);
    assert_eq!(status, 200, "{body}");
    let (status, health) = server.get("/api/v1/health");
    assert_eq!((status, health["status"].as_str()), (200, Some("healthy")));
    assert!(
        eventually(Duration::from_secs(10), || open_descriptors(pid)
            <= before + 2),
        "descriptors go back down once the clients left: {} open, {before} before",
        open_descriptors(pid)
    );
}

/// Sends a request head one header line at a time, every 300 ms, for at most 10 s; returns how long
/// after the connect the server closed the connection, or the response if it answered one.
fn trickle_head(address: &str) -> Result<Duration, String> {
    let mut slow = TcpStream::connect(address).unwrap();
    slow.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let started = Instant::now();
    let _ = slow.write_all(b"GET /api/v1/health HTTP/1.1\r\n");
    let mut buf = [0u8; 1024];
    for line in 0.. {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a trickling client was not dropped"
        );
        match slow.read(&mut buf) {
            Ok(0) => return Ok(started.elapsed()),
            Ok(n) => return Err(String::from_utf8_lossy(&buf[..n]).into_owned()),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // A line written after the close makes the server's kernel answer with a reset.
            Err(_) => return Ok(started.elapsed()),
        }
        let _ = slow.write_all(format!("X-Slow-{line}: 1\r\n").as_bytes());
    }
    unreachable!("the loop returns")
}

#[test]
fn slowloris_client_is_dropped_after_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE_SERVER_HEADER_READ_TIMEOUT", "1s")
        .start();
    let address = address(&server);

    let dropped_after = trickle_head(&address).unwrap();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(3)).contains(&dropped_after),
        "dropped after {dropped_after:?}"
    );

    // A client that connects and sends nothing is dropped on the same clock.
    let mut silent = TcpStream::connect(&address).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let started = Instant::now();
    let mut byte = [0u8; 1];
    assert_eq!(silent.read(&mut byte).unwrap(), 0);
    let closed_after = started.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(3)).contains(&closed_after),
        "closed after {closed_after:?}"
    );
    assert_eq!(server.get("/api/v1/health").0, 200);
}

#[test]
fn idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE_SERVER_IDLE_TIMEOUT", "1s")
        .env("LUMINATE_SERVER_HEADER_READ_TIMEOUT", "5s")
        .start();
    let mut client = Client::connect(&address(&server));
    client.send(HEALTH);
    assert_eq!(client.reply().unwrap().status, 200);
    let answered = Instant::now();
    client.send(HEALTH);
    assert_eq!(
        client.reply().unwrap().status,
        200,
        "kept alive between requests"
    );
    assert!(answered.elapsed() < Duration::from_secs(1));

    let idle_from = Instant::now();
    assert_eq!(client.receive(), 0, "closed by the server");
    let closed_after = idle_from.elapsed();
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(3)).contains(&closed_after),
        "closed after {closed_after:?} idle"
    );
}

#[test]
fn idle_keep_alive_connection_outlives_the_header_read_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .env("LUMINATE_SERVER_IDLE_TIMEOUT", "5s")
        .env("LUMINATE_SERVER_HEADER_READ_TIMEOUT", "1s")
        .start();
    let mut client = Client::connect(&address(&server));
    client.send(HEALTH);
    assert_eq!(client.reply().unwrap().status, 200);
    // Idle for longer than the header-read timeout: the idle clock is the one that runs.
    thread::sleep(Duration::from_millis(1500));
    client.send(HEALTH);
    assert_eq!(
        client.reply().expect("the connection is still open").status,
        200
    );
}

#[test]
fn connection_flood_under_a_low_open_file_limit_leaves_writes_working() {
    // Before the cap: more idle connections than the open-file limit took every descriptor, health
    // timed out, and the engine was poisoned by EMFILE on its WAL directory fsync (writes 503 until a
    // restart). One point per head makes every write flush: part files, manifest, directory fsyncs.
    let dir = tempfile::tempdir().unwrap();
    let server = Launch::new(dir.path())
        .runner(&["prlimit", "--nofile=256:256"])
        .env("LUMINATE_SERVER_HEADER_READ_TIMEOUT", "1s")
        .env("LUMINATE__STORAGE__EMBEDDED__HEAD_MAX_POINTS", "1")
        .start();
    assert!(
        eventually(Duration::from_secs(5), || server
            .output()
            .contains("max_connections=128")),
        "the default cap leaves a reserve under the 256 descriptors: {}",
        server.output()
    );
    let address = address(&server);
    let flood: Vec<Client> = (0..300).map(|_| Client::connect(&address)).collect();
    for i in 0..3 {
        let (status, body) = server.write(&[point("flooded", now_ms() - i, 1.0, &[])]);
        assert_eq!(status, 200, "write {i} during the flood: {body}");
    }
    let (status, health) = server.get("/api/v1/health");
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("healthy")),
        "{health}"
    );

    drop(flood);
    let (status, body) = server.write(&[point("flooded", now_ms() - 10, 1.0, &[])]);
    assert_eq!(status, 200, "{body}");
    let (status, health) = server.get("/api/v1/health");
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("healthy")),
        "{health}"
    );
    assert_eq!(server.count("flooded"), 4);
    assert!(!server.output().contains("poisoned"), "{}", server.output());
}

#[test]
fn sigterm_closes_idle_connections_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = Luminate::start(dir.path());
    let address = address(&server);
    let mut kept_alive = Client::connect(&address);
    kept_alive.send(HEALTH);
    assert_eq!(kept_alive.reply().unwrap().status, 200);
    let mut trickling = Client::connect(&address);
    trickling.send(b"GET /api/v1/health HTTP/1.1\r\nHost: lumi");
    let silent: Vec<Client> = (0..20).map(|_| Client::connect(&address)).collect();

    let signalled = Instant::now();
    server.signal("TERM");
    assert_eq!(kept_alive.receive(), 0, "an idle connection is closed");
    assert_eq!(trickling.receive(), 0, "so is one inside a request head");
    let status = server.wait();
    assert_eq!(status.code(), Some(0));
    assert!(
        signalled.elapsed() < Duration::from_secs(3),
        "idle connections do not hold the shutdown for server.shutdown_timeout (10 s): {:?}",
        signalled.elapsed()
    );
    drop(silent);
}
