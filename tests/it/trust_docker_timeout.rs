//! Issue #14 item 15: a Docker endpoint that completes the handshake and
//! then never answers (a wedged engine) must cost ward one clear line and
//! exit 2 within `WARD_DOCKER_TIMEOUT`, never a hang. The endpoint is a real
//! unix socket in the test that answers `/version` and holds every other
//! request open forever.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::*;

/// Serves the handshake, then swallows every other request without an answer.
fn wedged_engine(socket: &Path) {
    let listener = UnixListener::bind(socket).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn));
        }
    });
}

fn serve(conn: UnixStream) {
    let mut writer = conn.try_clone().unwrap();
    let mut reader = BufReader::new(conn);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        // Skip the headers (the handshake has no body).
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
        }
        if !request_line.contains("/version") {
            // Hold the connection open, never answering.
            std::thread::sleep(Duration::from_secs(3600));
            return;
        }
        let body = r#"{"ApiVersion":"1.41","MinAPIVersion":"1.12","Version":"20.10.0","Os":"linux","Arch":"amd64"}"#;
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn a_docker_call_that_never_answers_is_a_one_line_error_within_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    wedged_engine(&socket);
    let store = dir.path().join("store");
    let started = Instant::now();
    let r = ward()
        .args(["snapshot", "create", "base", "--container", "clinic-db"])
        .args(["--store"])
        .args([&store])
        .env("DOCKER_HOST", &format!("unix://{}", socket.display()))
        .env("WARD_DOCKER_TIMEOUT", "2")
        .run();
    let took = started.elapsed();
    let err = r.fails_with(2, "did not answer within 2s");
    assert!(err.contains("inspecting container clinic-db"), "{err}");
    assert!(err.contains("WARD_DOCKER_TIMEOUT"), "{err}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // Nothing half-made in the store.
    assert!(
        !store.exists() || files(&store).is_empty(),
        "{:?}",
        files(&store)
    );
}
