//! Shared by the benches that run Postgres in a Docker volume (`snapshot`,
//! `backup`): shell steps, the wait for the bench container's server, and the
//! removal of its container and volume however the bench ends.

use std::process::Command;
use std::time::{Duration, Instant};

/// The local test image `.ci/test-image.sh` builds (never pulled).
pub const IMAGE: &str = "ward-test/postgres:15";

pub fn sh(cmd: &str) -> String {
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", cmd])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The bench container and its volume, removed on drop.
pub struct Cleanup {
    pub container: String,
    pub volume: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.container])
            .output();
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.volume])
            .output();
    }
}

pub fn wait_ready(c: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let ok = Command::new("docker")
            .args([
                "exec", "-u", "postgres", c, "psql", "-XAtq", "-d", "app", "-c", "select 1",
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if ok {
            std::thread::sleep(Duration::from_millis(500));
            return;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("postgres in {c} not ready");
}
