//! The writer lock of an `s3://` prefix (`.ward/lock`, src/snapshot/store/
//! lock.rs) against a real S3 server: two wards writing at once never
//! corrupt each other (a second one started while the first is mid-upload
//! is refused in one line, and the first's snapshot is whole), a live lock of another host refuses a create and makes
//! `ward backup` wait its turn (a typed busy error, not a failure), and a
//! stale lock — its owner expired, its upload cut by SIGKILL — is taken
//! over by the next run, which removes the dead run's upload.

use crate::support::docker::Pg;
use crate::support::hook::Receiver;
use crate::support::s3::{S3, s3};
use crate::support::*;

fn on(server: &S3) -> Ward {
    server.env(ward())
}

fn listed(server: &S3, store: &str) -> Vec<String> {
    let list = on(server)
        .args(["snapshot", "list", "--json", "--store", store])
        .ok()
        .json();
    assert_eq!(
        list["incomplete"].as_array().map_or(0, Vec::len),
        0,
        "{list}"
    );
    let mut names: Vec<String> = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

/// The lock object another host's ward would write, expiring at `expires`.
fn foreign_lock(expires: chrono::DateTime<chrono::Utc>) -> Vec<u8> {
    serde_json::json!({
        "host": "vps-elsewhere-7f3a",
        "pid": 4242,
        "token": "0123456789abcdef",
        "expires_at": expires,
    })
    .to_string()
    .into_bytes()
}

#[test]
fn a_second_create_while_the_first_is_uploading_is_refused_as_busy_and_the_first_is_whole() {
    let server = s3();
    let store = server.url("shared");
    let mut a = stopped_cluster(300);
    let mut b = stopped_cluster(500);
    // The first is held just after its upload began (its marker written,
    // the store's lock taken) until the test releases it: the second then
    // runs from start to end while the first is certainly mid-upload.
    let release = tempfile::tempdir().unwrap();
    let release_file = release.path().join("go");
    let (first, _d1) = on(&server)
        .args([
            "snapshot",
            "create",
            "from-a",
            "--store",
            &store,
            "--datadir",
        ])
        .args([a.dir().join("data")])
        .env("WARD_FAULT", "store:after-upload-marker:hold")
        .env("WARD_FAULT_RELEASE", release_file.to_str().unwrap())
        .spawn();
    let uploading = (0..1200).any(|_| {
        let marker = server
            .objects("shared")
            .iter()
            .any(|o| o.starts_with(".ward/uploads/"));
        if !marker {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        marker
    });
    assert!(uploading, "the first create never began its upload");
    let second = on(&server)
        .args([
            "snapshot",
            "create",
            "from-b",
            "--store",
            &store,
            "--datadir",
        ])
        .args([b.dir().join("data")])
        .run();
    std::fs::write(&release_file, b"").unwrap();
    let first = Run {
        out: first.wait_with_output().unwrap(),
    };
    second.fails_with(2, "another ward process");
    assert!(
        second.stderr().contains("is writing to the snapshot store"),
        "{}",
        second.stderr()
    );
    assert_eq!(
        first.code(),
        0,
        "the first create failed: {}",
        first.stderr()
    );
    assert_eq!(listed(&server, &store), ["from-a"]);
    on(&server)
        .args(["snapshot", "verify", "from-a", "--store", &store])
        .ok();
    assert_eq!(server.pending_uploads(), 0);
    assert!(
        server
            .objects("shared")
            .iter()
            .all(|o| !o.starts_with(".ward/")),
        "{:?}",
        server.objects("shared")
    );
    a.start_again().unwrap();
    b.start_again().unwrap();
}

#[test]
fn a_live_foreign_lock_refuses_a_create_and_a_backup_waits_for_it() {
    let server = s3();
    let store = server.url("held");
    let mut c = stopped_cluster(50);
    let data = c.dir().join("data");
    server.put(
        "held/.ward/lock",
        foreign_lock(chrono::Utc::now() + chrono::Duration::hours(1)),
    );
    on(&server)
        .args(["snapshot", "create", "x", "--store", &store, "--datadir"])
        .args([&data])
        .run()
        .fails_with(2, "vps-elsewhere-7f3a");
    assert_eq!(
        server.objects("held"),
        [".ward/lock"],
        "something was written"
    );
    c.start_again().unwrap();

    // `ward backup` is unattended: a busy store is waited for (until the
    // other ward's lock expires here), not a failure.
    let pg = Pg::start();
    let hook = Receiver::start();
    server.put(
        "held/.ward/lock",
        foreign_lock(chrono::Utc::now() + chrono::Duration::seconds(30)),
    );
    let run = on(&server)
        .args([
            "backup",
            "--json",
            "--container",
            &pg.name,
            "--store",
            &store,
        ])
        .args(["--ping", &format!("{}/ping/c", hook.base)])
        .run();
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    let r = run.json();
    assert_eq!(r["status"], "ok", "{r:#}");
    assert!(
        run.stderr().contains("waited") && run.stderr().contains("release a lock"),
        "the backup did not wait for the lock: {}",
        run.stderr()
    );
    assert_eq!(hook.paths(), ["/ping/c/start", "/ping/c"]);
    assert_eq!(listed(&server, &store), [r["snapshot"].as_str().unwrap()]);
}

#[test]
fn a_stale_lock_and_a_killed_upload_are_taken_over_and_removed_by_the_next_run() {
    let server = s3();
    let store = server.url("stale");
    let mut c = stopped_cluster(200);
    let data = c.dir().join("data");
    // A ward killed (SIGKILL) just before its upload completes: its lock,
    // its marker and its uploaded segments stay behind.
    let r = on(&server)
        .args(["snapshot", "create", "cut", "--store", &store, "--datadir"])
        .args([&data])
        .env("WARD_FAULT", "store:before-complete:kill")
        .run();
    assert_ne!(r.code(), 0);
    let left = server.objects("stale");
    assert!(left.contains(&".ward/lock".to_string()), "{left:?}");
    assert!(
        left.iter().any(|o| o.starts_with(".ward/uploads/")),
        "{left:?}"
    );
    assert!(server.pending_uploads() > 0, "no upload was in flight");
    // Make its lock another host's, expired: only the expiry makes it
    // stale (no process check applies to another host).
    server.put(
        "stale/.ward/lock",
        foreign_lock(chrono::Utc::now() - chrono::Duration::minutes(5)),
    );
    assert_eq!(listed(&server, &store), Vec::<String>::new());
    on(&server)
        .args([
            "snapshot",
            "create",
            "after",
            "--store",
            &store,
            "--datadir",
        ])
        .args([&data])
        .ok();
    assert_eq!(
        server.pending_uploads(),
        0,
        "the killed run's upload was not removed"
    );
    assert_eq!(
        server.objects("stale"),
        ["after.json", "after.tar.zst/*"],
        "the lock or the marker was left"
    );
    assert_eq!(listed(&server, &store), ["after"]);
    on(&server)
        .args(["snapshot", "verify", "after", "--store", &store])
        .ok();
    c.start_again().unwrap();
}
