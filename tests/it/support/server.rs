//! A Postgres server of a given major in a container of the local test image
//! `ward-test/postgres:MAJOR`, published on 127.0.0.1 only, for tests that need
//! another major than the machine's own binaries (real histories such as
//! Lemmy need 16+). Removed on drop, also when a test panics. Nothing is
//! pulled: a missing image fails the test with the command that builds it.

use std::process::Command;
use std::time::{Duration, Instant};

use super::docker::{docker, unique};

/// A running server; `url(db)` reaches it from the host.
pub struct Server {
    name: String,
}

impl Server {
    /// Starts `ward-test/postgres:{major}` with trust auth on an ephemeral port.
    pub fn start(major: u32) -> Server {
        let image = format!("ward-test/postgres:{major}");
        let inspect = Command::new("docker")
            .args(["image", "inspect", &image])
            .output()
            .expect("cannot run docker (is it installed?)");
        assert!(
            inspect.status.success(),
            "image {image} missing: run `bash .ci/test-image.sh {major}`"
        );
        let name = unique(&format!("ward-test-pg{major}"));
        docker(&[
            "run",
            "-d",
            "--name",
            &name,
            "--label",
            "ward.test=1",
            "-e",
            "POSTGRES_HOST_AUTH_METHOD=trust",
            "-p",
            "127.0.0.1::5432",
            &image,
            // Test data only: durability is not what these tests measure.
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
        let server = Server { name };
        server.wait_ready();
        server
    }

    /// The container's name, for `--container`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A URL from the host; the port is read each time because a restarted
    /// container may be published on another ephemeral port.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}",
            published_port(&self.name)
        )
    }

    /// Runs SQL through psql inside the container; panics on error.
    pub fn psql(&self, db: &str, sql: &str) -> String {
        docker(&[
            "exec",
            &self.name,
            "psql",
            "-U",
            "postgres",
            "-d",
            db,
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            // Ready only once the real server (not the init-time one) answers on TCP.
            let ok = Command::new("docker")
                .args([
                    "exec",
                    &self.name,
                    "pg_isready",
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                ])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            if ok {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not become ready in 90 s: {}",
                self.name,
                docker(&["logs", "--tail", "20", &self.name])
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn published_port(name: &str) -> u16 {
    let out = docker(&["port", name, "5432/tcp"]);
    out.lines()
        .find_map(|l| l.rsplit(':').next()?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no published port for {name}: {out}"))
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .output();
    }
}
