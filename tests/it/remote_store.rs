//! Issue #12 parts 1, 2 and 4: snapshot stores in an S3-compatible bucket,
//! against a real S3 server (s3s-fs, installed by `.ci/s3-server.sh`; each
//! test starts its own), and age encryption at rest.

use std::path::Path;

use crate::support::s3::{S3, SECRET, s3};
use crate::support::*;
use age::secrecy::ExposeSecret;

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn rows(c: &Cluster) -> i64 {
    int(&c.url("postgres"), "SELECT count(*) FROM t")
}

fn on(server: &S3, args: &[&str]) -> Ward {
    server.env(ward()).args(args)
}

fn names(list: &serde_json::Value) -> Vec<String> {
    list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_data_directory_round_trips_through_a_bucket_and_is_pruned_there() {
    let server = s3();
    let store = server.url("db/prod");
    let mut c = stopped_cluster(500);
    let data = c.dir().join("data");
    let created = on(
        &server,
        &["snapshot", "create", "first", "--store", &store, "--json"],
    )
    .args(["--datadir"])
    .args([&data])
    .ok()
    .json();
    assert!(
        created["archive"]
            .as_str()
            .unwrap()
            .starts_with("s3://ward-test/db/prod/"),
        "{created}"
    );
    // Exactly the archive and its manifest: no marker, no lock left.
    assert_eq!(
        server.objects("db/prod"),
        ["first.json", "first.tar.zst/*"],
        "{:?}",
        server.objects("")
    );
    assert_eq!(server.pending_uploads(), 0);
    let list = on(&server, &["snapshot", "list", "--store", &store, "--json"])
        .ok()
        .json();
    assert_eq!(names(&list), ["first"]);
    let shown = on(
        &server,
        &["snapshot", "show", "first", "--store", &store, "--json"],
    )
    .ok()
    .json();
    assert_eq!(shown["name"], "first");
    on(&server, &["snapshot", "verify", "first", "--store", &store]).ok();

    c.start_again().unwrap();
    sql(&c.url("postgres"), "DELETE FROM t WHERE id > 10");
    assert_eq!(rows(&c), 10);
    c.stop().unwrap();
    on(
        &server,
        &[
            "snapshot",
            "restore",
            "first",
            "--store",
            &store,
            "--yes",
            "--datadir",
        ],
    )
    .args([&data])
    .ok();
    c.start_again().unwrap();
    assert_eq!(
        rows(&c),
        500,
        "the restore from the bucket did not bring the rows back"
    );
    c.stop().unwrap();

    // Damage in the bucket is found by verify (exit 1) and refused by
    // restore (exit 1), the data directory untouched.
    let segments = server.segments("db/prod", "first");
    let stored = segments[segments.len() / 2].clone();
    let good = std::fs::read(&stored).unwrap();
    crate::support::docker::flip_bit(&stored, (good.len() / 2) as u64);
    let r = on(&server, &["snapshot", "verify", "first", "--store", &store]).run();
    assert_eq!(r.code(), 1, "{}{}", r.stdout(), r.stderr());
    let r = on(
        &server,
        &[
            "snapshot",
            "restore",
            "first",
            "--store",
            &store,
            "--yes",
            "--datadir",
        ],
    )
    .args([&data])
    .run();
    assert_eq!(r.code(), 1, "{}", r.stderr());
    c.start_again().unwrap();
    assert_eq!(rows(&c), 500, "a damaged restore changed the data");
    c.stop().unwrap();
    std::fs::write(&stored, &good).unwrap();

    for name in ["second", "third"] {
        on(
            &server,
            &["snapshot", "create", name, "--store", &store, "--datadir"],
        )
        .args([&data])
        .ok();
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    on(
        &server,
        &[
            "snapshot",
            "prune",
            "--keep-last",
            "2",
            "--yes",
            "--store",
            &store,
        ],
    )
    .ok();
    let list = on(&server, &["snapshot", "list", "--store", &store, "--json"])
        .ok()
        .json();
    assert_eq!(names(&list), ["second", "third"]);
    on(
        &server,
        &["snapshot", "delete", "second", "--yes", "--store", &store],
    )
    .ok();
    assert_eq!(server.objects("db/prod"), ["third.json", "third.tar.zst/*"]);
}

#[test]
fn a_docker_volume_round_trips_through_a_bucket() {
    docker::require_image();
    let server = s3();
    let store = server.url("vol");
    let pg = docker::Pg::start();
    docker::fill(&pg.name, 2000);
    let before = docker::checksums(&pg.name);
    on(
        &server,
        &[
            "snapshot",
            "create",
            "vol1",
            "--container",
            &pg.name,
            "--store",
            &store,
        ],
    )
    .ok();
    on(&server, &["snapshot", "verify", "vol1", "--store", &store]).ok();
    docker::psql(&pg.name, "DELETE FROM items");
    on(
        &server,
        &["snapshot", "restore", "vol1", "--container", &pg.name],
    )
    .args(["--store", &store, "--yes"])
    .ok();
    assert!(docker::running(&pg.name));
    assert_eq!(docker::checksums(&pg.name), before);
}

/// What a killed ward or a dead server leaves must be invisible, and the
/// next run that takes the store's lock removes the unfinished upload.
fn assert_cleaned_by_the_next_run(server: &S3, store: &str, data: &Path) {
    let list = on(server, &["snapshot", "list", "--store", store, "--json"])
        .ok()
        .json();
    assert_eq!(names(&list), Vec::<String>::new(), "{list}");
    assert_eq!(
        list["incomplete"].as_array().map_or(0, |a| a.len()),
        0,
        "{list}"
    );
    on(
        server,
        &["snapshot", "create", "after", "--store", store, "--datadir"],
    )
    .args([data])
    .ok();
    assert_eq!(
        server.pending_uploads(),
        0,
        "the unfinished upload was not removed"
    );
    assert!(
        server
            .objects("kill")
            .iter()
            .all(|o| !o.starts_with(".ward/")),
        "{:?}",
        server.objects("kill")
    );
    let list = on(server, &["snapshot", "list", "--store", store, "--json"])
        .ok()
        .json();
    assert_eq!(names(&list), ["after"]);
}

/// A stopped cluster of 200 rows in `t` whose archive spans several 16 MiB
/// segments: two million random UUIDs beside them do not compress.
fn stopped_cluster_of_segments() -> Cluster {
    let mut c = cluster();
    sql(
        &c.url("postgres"),
        "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 200) g; \
         CREATE TABLE bulk AS SELECT gen_random_uuid() AS u FROM generate_series(1, 2000000)",
    );
    c.stop().unwrap();
    c
}

#[test]
fn a_ward_killed_mid_upload_leaves_nothing_listed_and_the_next_run_removes_its_upload() {
    let server = s3();
    let store = server.url("kill");
    let mut c = stopped_cluster_of_segments();
    let data = c.dir().join("data");
    let r = on(
        &server,
        &["snapshot", "create", "cut", "--store", &store, "--datadir"],
    )
    .args([&data])
    .env("WARD_FAULT", "store:before-complete:kill")
    .run();
    assert_ne!(r.code(), 0);
    assert!(
        server.pending_uploads() >= 2,
        "not several segments in the bucket: {}",
        server.pending_uploads()
    );
    assert_cleaned_by_the_next_run(&server, &store, &data);
    c.start_again().unwrap();
    assert_eq!(rows(&c), 200, "the data directory changed");
}

#[test]
fn the_server_killed_mid_upload_fails_in_one_line_and_the_next_run_cleans_up() {
    let mut server = s3();
    let store = server.url("kill");
    let mut c = stopped_cluster_of_segments();
    let data = c.dir().join("data");
    let (child, _dir) = on(
        &server,
        &["snapshot", "create", "cut", "--store", &store, "--datadir"],
    )
    .args([&data])
    .env("WARD_FAULT", "store:before-complete:sleep")
    .spawn();
    // Killed once segments have landed (before the last, or while ward
    // pauses before checking them): they and the marker stay behind.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while server.pending_uploads() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.kill();
    let out = child.wait_with_output().unwrap();
    let r = Run { out };
    r.fails_with(2, "cannot reach the S3 endpoint");
    server.start();
    assert!(
        server
            .objects("kill")
            .iter()
            .any(|o| o.starts_with(".ward/uploads/")),
        "the marker of the cut upload is not there for the next run"
    );
    assert!(server.pending_uploads() >= 2, "the cut segments are gone");
    assert_cleaned_by_the_next_run(&server, &store, &data);
    c.start_again().unwrap();
    assert_eq!(rows(&c), 200, "the data directory changed");
}

#[test]
fn a_ward_killed_after_the_manifest_leaves_a_whole_snapshot_that_the_next_run_keeps() {
    let server = s3();
    let store = server.url("late");
    let mut c = stopped_cluster(200);
    let data = c.dir().join("data");
    let r = on(
        &server,
        &[
            "snapshot",
            "create",
            "whole",
            "--store",
            &store,
            "--datadir",
        ],
    )
    .args([&data])
    .env("WARD_FAULT", "store:after-manifest:kill")
    .run();
    assert_ne!(r.code(), 0);
    assert!(
        server
            .objects("late")
            .iter()
            .any(|o| o.starts_with(".ward/uploads/")),
        "{:?}",
        server.objects("late")
    );
    let list = on(&server, &["snapshot", "list", "--store", &store, "--json"])
        .ok()
        .json();
    assert_eq!(names(&list), ["whole"], "{list}");
    // A forged marker naming it too (someone else's, on another host):
    // the manifest makes it a snapshot, so its archive is never taken.
    server.put(
        "late/.ward/uploads/forged.json",
        serde_json::to_vec(&serde_json::json!({
            "file": "whole.tar.zst",
            "pid": 1,
            "host": "elsewhere",
            "started_at": "2026-01-01T00:00:00Z",
        }))
        .unwrap(),
    );
    on(
        &server,
        &[
            "snapshot",
            "create",
            "after",
            "--store",
            &store,
            "--datadir",
        ],
    )
    .args([&data])
    .ok();
    assert_eq!(
        server.objects("late"),
        [
            "after.json",
            "after.tar.zst/*",
            "whole.json",
            "whole.tar.zst/*"
        ],
        "the markers were not removed, or the archive was"
    );
    on(&server, &["snapshot", "verify", "whole", "--store", &store]).ok();
    c.start_again().unwrap();
    assert_eq!(rows(&c), 200);
}

#[test]
fn an_earlier_wards_one_object_archive_is_still_read_and_a_doctored_segment_folder_is_refused() {
    let server = s3();
    let store = server.url("layout");
    let mut c = stopped_cluster(200);
    let data = c.dir().join("data");
    for name in ["old", "odd"] {
        on(
            &server,
            &["snapshot", "create", name, "--store", &store, "--datadir"],
        )
        .args([&data])
        .ok();
    }
    // "old" as wards before segments stored it: one object.
    let bytes = server.archive("layout", "old");
    let folder = server
        .data
        .path()
        .join(crate::support::s3::BUCKET)
        .join("layout/old.tar.zst");
    std::fs::remove_dir_all(folder).unwrap();
    server.put("layout/old.tar.zst", bytes);
    let list = on(&server, &["snapshot", "list", "--store", &store, "--json"])
        .ok()
        .json();
    assert_eq!(names(&list), ["old", "odd"], "{list}");
    on(&server, &["snapshot", "verify", "old", "--store", &store]).ok();
    on(
        &server,
        &[
            "snapshot",
            "restore",
            "old",
            "--store",
            &store,
            "--yes",
            "--datadir",
        ],
    )
    .args([&data])
    .ok();
    // An object slipped into "odd"'s folder (a gap in the numbers): the
    // archive is refused as damaged, nothing of it read.
    server.put("layout/odd.tar.zst/000007", b"junk".to_vec());
    let r = on(&server, &["snapshot", "verify", "odd", "--store", &store]).run();
    assert_eq!(r.code(), 1, "{}{}", r.stdout(), r.stderr());
    assert!(
        r.stderr().contains("where segment 000001 should be"),
        "{}",
        r.stderr()
    );
    for name in ["old", "odd"] {
        on(
            &server,
            &["snapshot", "delete", name, "--yes", "--store", &store],
        )
        .ok();
    }
    assert!(
        server
            .objects("layout")
            .iter()
            .all(|o| !o.starts_with("old") && !o.starts_with("odd")),
        "{:?}",
        server.objects("layout")
    );
    c.start_again().unwrap();
    assert_eq!(rows(&c), 200);
}

#[test]
fn wrong_or_missing_credentials_a_wrong_bucket_and_no_server_fail_in_one_line() {
    let server = s3();
    let store = server.url("creds");
    let mut c = stopped_cluster(10);
    let data = c.dir().join("data");
    let wrong_secret = "not-the-secret-but-a-long-one-42";
    let r = on(
        &server,
        &["snapshot", "create", "x", "--store", &store, "--datadir"],
    )
    .args([&data])
    .env("AWS_SECRET_ACCESS_KEY", wrong_secret)
    .run();
    let err = r.fails_with(2, "refused ward's credentials");
    assert!(
        !err.contains(wrong_secret) && !r.stdout().contains(wrong_secret),
        "{err}"
    );
    let r = on(&server, &["snapshot", "list", "--store", &store])
        .env("AWS_SECRET_ACCESS_KEY", wrong_secret)
        .env("WARD_LOG", "debug")
        .run();
    assert!(!r.stderr().contains(wrong_secret) && !r.stderr().contains(SECRET));
    assert_eq!(r.code(), 2, "{}", r.stderr());

    ward()
        .args(["snapshot", "list", "--store", &store])
        .env("AWS_ENDPOINT_URL", &server.endpoint())
        .env("AWS_ALLOW_HTTP", "true")
        .run()
        .fails_with(2, "no S3 credentials");
    on(
        &server,
        &[
            "snapshot",
            "create",
            "x",
            "--store",
            "s3://no-such-bucket/p",
            "--datadir",
        ],
    )
    .args([&data])
    .run()
    .fails_with(2, "does not exist");
    on(&server, &["snapshot", "list", "--store", &store])
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .run()
        .fails_with(2, "cannot reach the S3 endpoint");
    assert_eq!(
        server.objects(""),
        Vec::<String>::new(),
        "something was half-written"
    );
    assert_eq!(server.pending_uploads(), 0);
    c.start_again().unwrap();
    assert_eq!(rows(&c), 10);
}

#[test]
fn copy_goes_local_to_remote_to_local_and_is_checked_on_arrival() {
    let server = s3();
    let remote = server.url("offsite");
    let mut c = stopped_cluster(300);
    let data = c.dir().join("data");
    let here = tempfile::tempdir().unwrap();
    let back = tempfile::tempdir().unwrap();
    ward()
        .args([
            "snapshot",
            "create",
            "nightly",
            "--store",
            &s(here.path()),
            "--datadir",
        ])
        .args([&data])
        .ok();
    let copied = on(
        &server,
        &["snapshot", "copy", "nightly", "--to", &remote, "--json"],
    )
    .args(["--store", &s(here.path())])
    .ok()
    .json();
    assert_eq!(copied["verified"], "contents", "{copied}");
    assert_eq!(
        server.objects("offsite"),
        ["nightly.json", "nightly.tar.zst/*"]
    );
    on(
        &server,
        &[
            "snapshot",
            "copy",
            "nightly",
            "--from",
            &remote,
            "--to",
            &s(back.path()),
        ],
    )
    .ok();
    ward()
        .args(["snapshot", "verify", "nightly", "--store", &s(back.path())])
        .ok();
    assert_eq!(
        std::fs::read(here.path().join("nightly.tar.zst")).unwrap(),
        std::fs::read(back.path().join("nightly.tar.zst")).unwrap()
    );
    // A copy onto an existing name is refused.
    on(&server, &["snapshot", "copy", "nightly", "--to", &remote])
        .args(["--store", &s(here.path())])
        .run()
        .fails_with(2, "already exists");
    // A damaged source is refused before anything is named at the destination.
    crate::support::docker::flip_bit(&here.path().join("nightly.tar.zst"), 4000);
    let other = server.url("other");
    let r = on(&server, &["snapshot", "copy", "nightly", "--to", &other])
        .args(["--store", &s(here.path())])
        .run();
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert_eq!(server.objects("other"), Vec::<String>::new());
    c.start_again().unwrap();
}

/// An age key pair: (identity file, recipient).
fn age_key(dir: &Path, file: &str) -> (std::path::PathBuf, String) {
    let id = age::x25519::Identity::generate();
    let path = dir.join(file);
    std::fs::write(&path, format!("{}\n", id.to_string().expose_secret())).unwrap();
    (path, id.to_public().to_string())
}

#[test]
fn encrypted_snapshots_round_trip_locally_and_through_a_bucket() {
    let server = s3();
    let keys = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_key(keys.path(), "ops.key");
    let (wrong, _) = age_key(keys.path(), "other.key");
    let mut c = stopped_cluster(400);
    let data = c.dir().join("data");
    let local = tempfile::tempdir().unwrap();
    for store in [s(local.path()), server.url("enc")] {
        on(
            &server,
            &[
                "snapshot",
                "create",
                "sealed",
                "--store",
                &store,
                "--datadir",
            ],
        )
        .args([&data])
        .args(["--encrypt-to", &recipient])
        .ok();
        let shown = on(
            &server,
            &["snapshot", "show", "sealed", "--store", &store, "--json"],
        )
        .ok()
        .json();
        assert_eq!(
            shown["encryption"]["recipients"][0],
            recipient.as_str(),
            "{shown}"
        );
        // Without the identity: the ciphertext against its recorded hash.
        let v = on(
            &server,
            &["snapshot", "verify", "sealed", "--store", &store, "--json"],
        )
        .ok()
        .json();
        assert_eq!(v["scope"], "stored bytes", "{v}");
        on(
            &server,
            &["snapshot", "verify", "sealed", "--store", &store],
        )
        .args(["--identity", &s(&wrong)])
        .run()
        .fails_with(2, "cannot open");
        on(
            &server,
            &["snapshot", "verify", "sealed", "--store", &store],
        )
        .env("WARD_AGE_IDENTITY", &s(&identity))
        .ok();
        c.start_again().unwrap();
        sql(&c.url("postgres"), "DELETE FROM t");
        c.stop().unwrap();
        on(
            &server,
            &[
                "snapshot",
                "restore",
                "sealed",
                "--store",
                &store,
                "--yes",
                "--datadir",
            ],
        )
        .args([&data])
        .run()
        .fails_with(2, "--identity");
        on(
            &server,
            &[
                "snapshot",
                "restore",
                "sealed",
                "--store",
                &store,
                "--yes",
                "--datadir",
            ],
        )
        .args([&data])
        .args(["--identity", &s(&identity)])
        .ok();
        c.start_again().unwrap();
        assert_eq!(
            rows(&c),
            400,
            "the encrypted restore did not bring the rows back"
        );
        c.stop().unwrap();
    }
    // The local archive is ciphertext: no zstd magic, an age header.
    let bytes = std::fs::read(local.path().join("sealed.tar.zst")).unwrap();
    assert!(
        bytes.starts_with(b"age-encryption.org/v1"),
        "not an age file"
    );
    // Corrupt ciphertext is found without the identity (exit 1).
    let path = local.path().join("sealed.tar.zst");
    crate::support::docker::flip_bit(&path, (bytes.len() / 2) as u64);
    let r = ward()
        .args(["snapshot", "verify", "sealed", "--store", &s(local.path())])
        .run();
    assert_eq!(r.code(), 1, "{}{}", r.stdout(), r.stderr());
    std::fs::write(&path, &bytes).unwrap();
    // Copied as stored without the identity (checked by its hash), and with it.
    let r = on(
        &server,
        &[
            "snapshot",
            "copy",
            "sealed",
            "--to",
            &server.url("enc2"),
            "--json",
        ],
    )
    .args(["--store", &s(local.path())])
    .ok()
    .json();
    assert_eq!(r["verified"], "stored bytes");
}

#[test]
fn a_store_that_requires_encryption_refuses_a_plain_snapshot() {
    let server = s3();
    let mut c = stopped_cluster(10);
    let data = c.dir().join("data");
    let store = server.url("strict");
    on(
        &server,
        &[
            "snapshot",
            "create",
            "plain",
            "--store",
            &store,
            "--datadir",
        ],
    )
    .args([&data])
    .file("ward.toml", "[store]\nrequire_encryption = true\n")
    .run()
    .fails_with(2, "requires encryption");
    assert_eq!(server.objects("strict"), Vec::<String>::new());
    assert_eq!(server.pending_uploads(), 0);
    c.start_again().unwrap();
}

#[test]
fn encryption_refusals_leave_the_container_running_and_safety_copies_are_encrypted() {
    docker::require_image();
    let server = s3();
    let store = server.url("sealed-vol");
    let keys = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_key(keys.path(), "ops.key");
    let pg = docker::Pg::start();
    docker::fill(&pg.name, 500);
    let before = docker::checksums(&pg.name);
    // Running is not enough: a stop and restart leaves it running too.
    let started = || docker::docker(&["inspect", "-f", "{{.State.StartedAt}}", &pg.name]);
    let started_at = started();
    // No recipient for a store that requires encryption: refused before
    // the container is stopped.
    on(
        &server,
        &["snapshot", "create", "plain", "--container", &pg.name],
    )
    .args(["--store", &store])
    .file("ward.toml", "[store]\nrequire_encryption = true\n")
    .run()
    .fails_with(2, "requires encryption");
    assert!(docker::running(&pg.name));
    assert_eq!(started(), started_at, "the container was restarted");
    assert_eq!(server.objects("sealed-vol"), Vec::<String>::new());
    on(
        &server,
        &["snapshot", "create", "sealed", "--container", &pg.name],
    )
    .args(["--store", &store, "--encrypt-to", &recipient])
    .ok();
    // (That cold create restarted it.)
    let started_at = started();
    // No identity: said before anything is stopped or copied.
    on(
        &server,
        &["snapshot", "restore", "sealed", "--container", &pg.name],
    )
    .args([
        "--store",
        &store,
        "--yes",
        "--safety",
        "--encrypt-to",
        &recipient,
    ])
    .run()
    .fails_with(2, "--identity");
    assert!(docker::running(&pg.name));
    assert_eq!(started(), started_at, "the container was restarted");
    assert_eq!(
        server.objects("sealed-vol").len(),
        2,
        "{:?}",
        server.objects("sealed-vol")
    );
    // With it, and --safety: the copy of the current data is encrypted too.
    docker::psql(&pg.name, "DELETE FROM items");
    on(
        &server,
        &["snapshot", "restore", "sealed", "--container", &pg.name],
    )
    .args([
        "--store",
        &store,
        "--yes",
        "--safety",
        "--encrypt-to",
        &recipient,
    ])
    .args(["--identity", &s(&identity)])
    .ok();
    assert_eq!(docker::checksums(&pg.name), before);
    let safety = server
        .objects("sealed-vol")
        .into_iter()
        .find_map(|o| {
            o.strip_suffix(".tar.zst/*")
                .filter(|n| n.starts_with("safety-"))
                .map(str::to_string)
        })
        .expect("a safety snapshot");
    let bytes = server.archive("sealed-vol", &safety);
    assert!(
        bytes.starts_with(b"age-encryption.org/v1"),
        "the safety snapshot is in the clear"
    );
}
