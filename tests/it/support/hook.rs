//! A tiny HTTP/1.1 receiver for `ward backup`'s webhook and pings: a std
//! TcpListener on a free port that records every request and answers 200.
//! Tests wait on what it has heard (the `/start` ping marks the phase a
//! run is in), never on a guessed time.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: String,
}

type Log = Arc<(Mutex<Vec<Request>>, Condvar)>;

pub struct Receiver {
    pub base: String,
    got: Log,
}

impl Receiver {
    pub fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let got: Log = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                if let Some(r) = read_request(&stream) {
                    sink.0.lock().unwrap().push(r);
                    sink.1.notify_all();
                }
                let mut s = stream;
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK",
                );
            }
        });
        Receiver { base, got }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.got.0.lock().unwrap().clone()
    }

    /// The paths heard so far, in order.
    pub fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
    }

    /// Blocks until a request whose path is `path` has arrived; panics
    /// after `patience` (a hang guard, not a measurement).
    pub fn wait_for(&self, path: &str, patience: Duration) {
        let deadline = Instant::now() + patience;
        let mut got = self.got.0.lock().unwrap();
        while !got.iter().any(|r| r.path == path) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no request to {path} arrived: {got:?}");
            got = self.got.1.wait_timeout(got, left).unwrap().0;
        }
    }
}

fn read_request(stream: &std::net::TcpStream) -> Option<Request> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0usize;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
