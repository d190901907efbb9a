//! A snapshot store another ward is writing to is *busy*: an error (exit 2,
//! one line, "wait for it"), never damage (exit 1) — a cron job or CI gate
//! reading exit 1 as "the backup is broken" would page someone for nothing.
//! Pinned for `snapshot verify --deep` of a Docker volume's snapshot, whose
//! verification record needs the store's writer lock, on a local store (held with flock(1), as another
//! process holds it) and on a remote one (a live lock object of another host).

use crate::support::docker::Pg;
use crate::support::s3::s3;
use crate::support::*;

/// Holds `<dir>/.lock` the way another ward does (an exclusive flock) until
/// dropped.
struct HeldLock(std::process::Child);

impl HeldLock {
    fn on(dir: &std::path::Path) -> HeldLock {
        let lock = dir.join(".lock");
        // Blocking, so that a probe holding the lock for an instant only
        // delays it.
        // Wrapped at once: its Drop kills and waits for it on every path.
        let held = HeldLock(
            std::process::Command::new("flock")
                .args(["--exclusive", "--timeout", "60"])
                .arg(&lock)
                .args(["sleep", "600"])
                .spawn()
                .expect("flock(1) runs"),
        );
        // flock creates and locks the file before it starts sleep; a
        // probe that cannot take it proves it held.
        for _ in 0..200 {
            let probe = std::process::Command::new("flock")
                .args(["--exclusive", "--nonblock"])
                .arg(&lock)
                .arg("true")
                .status()
                .unwrap();
            if !probe.success() {
                return held;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("flock never held {}", lock.display());
    }
}

impl Drop for HeldLock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn deep_verify_of_a_busy_local_store_exits_2_not_1() {
    let store = tempfile::tempdir().unwrap();
    let pg = Pg::start();
    ward()
        .args([
            "snapshot",
            "create",
            "held",
            "--container",
            &pg.name,
            "--store",
        ])
        .args([store.path()])
        .ok();
    let _held = HeldLock::on(store.path());
    ward()
        .args(["snapshot", "verify", "held", "--deep", "--store"])
        .args([store.path()])
        .run()
        .fails_with(2, "another ward process is writing to the snapshot store");
}

#[test]
fn deep_verify_of_a_busy_remote_store_exits_2_not_1() {
    let server = s3();
    let store = server.url("busy");
    let pg = Pg::start();
    server
        .env(ward())
        .args(["snapshot", "create", "held", "--container", &pg.name])
        .args(["--store", &store])
        .ok();
    let lock = serde_json::json!({
        "host": "vps-elsewhere-7f3a",
        "pid": 4242,
        "token": "0123456789abcdef",
        "expires_at": chrono::Utc::now() + chrono::Duration::hours(1),
    });
    server.put("busy/.ward/lock", lock.to_string().into_bytes());
    server
        .env(ward())
        .args(["snapshot", "verify", "held", "--deep", "--store", &store])
        .run()
        .fails_with(2, "vps-elsewhere-7f3a");
}
