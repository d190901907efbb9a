//! Private S3-compatible servers for the remote-store tests: s3s-fs, the
//! real server `.ci/s3-server.sh` installs, started here on a free port with
//! its own data directory (one per test, so a test may kill its server
//! mid-upload). Buckets are directories of the data directory. A missing
//! binary fails the test, naming the script.
//!
//! Each server has its own access key: the tests share one binary, so a
//! port one test's server gave up (killed, then restarted) may be taken by
//! another test's server; with distinct keys a ward that reached the wrong
//! server fails authentication instead of silently using the other test's
//! bucket.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::Ward;

pub const SECRET: &str = "ward-test-secret-key-0123456789";
pub const BUCKET: &str = "ward-test";

pub struct S3 {
    child: Option<Child>,
    /// This server's access key (unique in the test run).
    key: String,
    pub port: u16,
    pub data: tempfile::TempDir,
}

fn binary() -> PathBuf {
    let bin = std::env::var_os("WARD_TEST_S3S")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/ward-ci/bin/s3s-fs"));
    assert!(
        bin.is_file(),
        "the S3 test server {} is missing — run `bash .ci/s3-server.sh` (CI runs it from .ci/run)",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh server with one empty bucket, [`BUCKET`].
pub fn s3() -> S3 {
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir(data.path().join(BUCKET)).unwrap();
    static SERVERS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let serial = SERVERS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let mut s = S3 {
        child: None,
        key: format!("ward-test-{}-{serial}", std::process::id()),
        port: free_port(),
        data,
    };
    // A port freed for us may be taken before s3s-fs binds it: try another.
    for _ in 0..5 {
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.start())).is_ok() {
            return s;
        }
        s.kill();
        s.port = free_port();
    }
    s.start();
    s
}

impl S3 {
    /// (Re)starts the server on its port and data.
    pub fn start(&mut self) {
        let child = Command::new(binary())
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", &self.key, "--secret-key", SECRET])
            .arg(self.data.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        self.child = Some(child);
        for _ in 0..100 {
            // Our own child must be the one listening: a port taken by
            // another test's server in the meantime makes ours exit.
            let exited = self
                .child
                .as_mut()
                .is_some_and(|c| c.try_wait().ok().flatten().is_some());
            assert!(
                !exited,
                "s3s-fs exited at start (port {} taken?)",
                self.port
            );
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                // s3s-fs exits at once when its bind fails: still alive a
                // moment later, the listener is ours.
                std::thread::sleep(std::time::Duration::from_millis(200));
                let exited = self
                    .child
                    .as_mut()
                    .is_some_and(|c| c.try_wait().ok().flatten().is_some());
                assert!(
                    !exited,
                    "s3s-fs exited at start (port {} taken?)",
                    self.port
                );
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("s3s-fs did not listen on 127.0.0.1:{}", self.port);
    }

    /// Kills the server at once (SIGKILL).
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{BUCKET}/{prefix}")
    }

    /// `w` with this server's endpoint and the right credentials.
    pub fn env(&self, w: Ward) -> Ward {
        w.env("AWS_ENDPOINT_URL", &self.endpoint())
            .env("AWS_ACCESS_KEY_ID", &self.key)
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ALLOW_HTTP", "true")
    }

    /// Writes `bytes` to `key` in the bucket through the S3 API (as another
    /// host's ward would), not behind the server's back.
    pub fn put(&self, key: &str, bytes: Vec<u8>) {
        use object_store::{ObjectStoreExt, PutPayload};
        let client = self.client();
        let key = object_store::path::Path::from(key);
        runtime()
            .block_on(async { client.put(&key, PutPayload::from(bytes)).await })
            .unwrap_or_else(|e| panic!("PUT {key}: {e}"));
    }

    /// An object_store client of this server's bucket.
    fn client(&self) -> object_store::aws::AmazonS3 {
        object_store::aws::AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_bucket_name(BUCKET)
            .with_region("us-east-1")
            .with_access_key_id(&self.key)
            .with_secret_access_key(SECRET)
            .with_allow_http(true)
            .with_virtual_hosted_style_request(false)
            .build()
            .unwrap()
    }

    /// The objects under `prefix` in the bucket (paths relative to it), an
    /// archive's segments (`name.tar.zst/000000`, …) shown as one
    /// `name.tar.zst/*`.
    pub fn objects(&self, prefix: &str) -> Vec<String> {
        let root = self.data.path().join(BUCKET).join(prefix);
        let mut out = Vec::new();
        walk(&root, &root, &mut out);
        for o in &mut out {
            if let Some((archive, segment)) = o.rsplit_once(".tar.zst/")
                && segment.len() == 6
                && segment.bytes().all(|b| b.is_ascii_digit())
            {
                *o = format!("{archive}.tar.zst/*");
            }
        }
        out.sort();
        out.dedup();
        out
    }

    /// The segment objects of archive `name` under `prefix`, in order
    /// (their paths in the server's data directory).
    pub fn segments(&self, prefix: &str, name: &str) -> Vec<std::path::PathBuf> {
        let dir = self
            .data
            .path()
            .join(BUCKET)
            .join(prefix)
            .join(format!("{name}.tar.zst"));
        let mut out: Vec<_> = std::fs::read_dir(&dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }

    /// Archive `name`'s stored bytes under `prefix` (its segments, joined).
    pub fn archive(&self, prefix: &str, name: &str) -> Vec<u8> {
        let segments = self.segments(prefix, name);
        assert!(!segments.is_empty(), "no archive {name} under {prefix}");
        segments
            .iter()
            .flat_map(|p| std::fs::read(p).unwrap())
            .collect()
    }

    /// Uploads not part of a snapshot: the server's unfinished multipart
    /// uploads (its part files), and segments of an archive without a
    /// manifest beside it.
    pub fn pending_uploads(&self) -> usize {
        let parts = std::fs::read_dir(self.data.path())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".upload"))
            .count();
        let mut all = Vec::new();
        let root = self.data.path().join(BUCKET);
        walk(&root, &root, &mut all);
        let orphans = all
            .iter()
            .filter_map(|o| o.rsplit_once(".tar.zst/").map(|(a, _)| a))
            .filter(|archive| !root.join(format!("{archive}.json")).exists())
            .count();
        parts + orphans
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(root, &p, out);
        } else {
            out.push(p.strip_prefix(root).unwrap().display().to_string());
        }
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.kill();
    }
}
