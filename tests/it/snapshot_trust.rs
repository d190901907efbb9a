//! Secrets and hangs at ward's edges: passwords never in logs, errors or
//! manifests (also percent-encoded ones), and a server that accepts a
//! connection but never answers ends in a clear error, not a hang.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use crate::support::docker::Pg;
use crate::support::*;

/// A port that accepts connections and never says a word; held open until drop.
struct Silent {
    port: u16,
}

impl Silent {
    fn start() -> Silent {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for s in l.incoming().flatten() {
                held.push(s);
            }
        });
        Silent { port }
    }
}

#[test]
fn a_port_that_never_answers_is_a_clear_error_not_a_hang() {
    let silent = Silent::start();
    let url = format!("postgres://app:pw-9f3k@127.0.0.1:{}/app", silent.port);
    for args in [vec!["seed", "-n", "10"], vec!["doctor"]] {
        let started = Instant::now();
        let r = ward()
            .db(&url)
            .env("WARD_CONNECT_TIMEOUT", "2")
            .args(&args)
            .run();
        assert_ne!(r.code(), 0, "{args:?}");
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{args:?} took {:?}",
            started.elapsed()
        );
        let said = format!("{}{}", r.stdout(), r.stderr());
        assert!(said.contains("did not answer"), "{args:?}: {said}");
        assert!(
            !said.contains("pw-9f3k"),
            "{args:?} printed the password: {said}"
        );
    }
    // The Docker engine too.
    let started = Instant::now();
    let r = ward()
        .env("WARD_CONNECT_TIMEOUT", "2")
        .env("DOCKER_HOST", &format!("tcp://127.0.0.1:{}", silent.port))
        .args(["snapshot", "create", "--container", "nope", "--store"])
        .args([tempfile::tempdir().unwrap().path().to_str().unwrap()])
        .run();
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(r.stderr().contains("did not answer"), "{}", r.stderr());
}

#[test]
fn percent_encoded_passwords_never_reach_errors() {
    // Nothing listens on port 1: the connection error names the target.
    for url in [
        "postgres://app:p%40ss%2Fw0rd-x@127.0.0.1:1/app",
        "postgres://app:plain-s3cret-x@127.0.0.1:1/app",
    ] {
        let r = ward().db(url).args(["seed", "-n", "10"]).run();
        assert_eq!(r.code(), 2, "{}", r.stderr());
        let said = format!("{}{}", r.stdout(), r.stderr());
        for secret in ["p%40ss", "p@ss", "w0rd", "s3cret"] {
            assert!(!said.contains(secret), "{url}: {said}");
        }
    }
}

#[test]
fn debug_logs_and_manifests_never_hold_the_container_password() {
    let pg = Pg::start();
    let store = tempfile::tempdir().unwrap();
    let st = store.path().to_str().unwrap();
    for (i, (var, val)) in [("WARD_LOG", "debug"), ("WARD_LOG", "trace")]
        .iter()
        .enumerate()
    {
        let r = ward()
            .env(var, val)
            .args([
                "snapshot",
                "create",
                &format!("s{i}"),
                "--container",
                &pg.name,
            ])
            .args(["--store", st])
            .run();
        assert_eq!(r.code(), 0, "{}", r.stderr());
        assert!(
            r.stderr().len() > 200,
            "expected debug logs: {}",
            r.stderr()
        );
        assert!(
            !r.stderr().contains("test-secret-pw"),
            "{var}={val} logged the password"
        );
        // The engine's answer (with the environment) is logged, redacted.
        assert!(r.stderr().contains("POSTGRES_PASSWORD=***"), "{var}={val}");
    }
    let r = ward()
        .args(["-vv", "snapshot", "verify", "s0", "--store", st])
        .run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(!r.stderr().contains("test-secret-pw"));
    for e in std::fs::read_dir(store.path()).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&p).unwrap();
            assert!(!text.contains("test-secret-pw"), "{}", p.display());
        }
    }
}

#[test]
fn a_restore_that_starts_some_other_cluster_is_not_called_a_success() {
    use crate::support::docker as dk;
    let pg = Pg::start();
    dk::fill(&pg.name, 2_000);
    let store = tempfile::tempdir().unwrap();
    let st = store.path().to_str().unwrap();
    ward()
        .args([
            "snapshot",
            "create",
            "base",
            "--container",
            &pg.name,
            "--store",
            st,
        ])
        .ok();
    pg.psql("insert into marks(label) values ('after the snapshot')");
    let current = pg.checksums();
    let path = store.path().join("base.json");
    let original = std::fs::read_to_string(&path).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&original).unwrap();
    assert!(manifest["system_identifier"].is_string(), "{manifest}");
    // Restores "base" from its manifest as `edit` changes it.
    let restore_edited = |edit: &dyn Fn(&mut serde_json::Value)| {
        let mut manifest: serde_json::Value = serde_json::from_str(&original).unwrap();
        edit(&mut manifest);
        std::fs::write(&path, manifest.to_string()).unwrap();
        ward()
            .args(["snapshot", "restore", "base", "--container", &pg.name])
            .args(["--yes", "--store", st])
            .run()
    };
    // The run said `needle`, and the container runs the data it had.
    let kept = |run: &Run, needle: &str, what: &str| {
        assert!(run.stderr().contains(needle), "{}", run.stderr());
        assert!(pg.running());
        assert_eq!(pg.checksums(), current, "{what}");
    };
    // The archive's hash still matches; only where it would be unpacked
    // changed (the image would then initialise an empty cluster beside the
    // data): refused as damage before anything is touched.
    let run = restore_edited(&|manifest| manifest["layout"]["root"] = "elsewhere".into());
    assert_eq!(run.code(), 1, "{}", run.stderr());
    kept(
        &run,
        "outside the volume root",
        "a refused restore touched the data",
    );
    // A root that would be shell text in a helper script (issue #14): refused
    // when the manifest is read, before any helper runs.
    let run = restore_edited(&|manifest| manifest["layout"]["root"] = "x;rm -rf $V;#".into());
    assert_ne!(run.code(), 0, "{}", run.stderr());
    kept(
        &run,
        "not a plain directory name",
        "a refused restore touched the data",
    );
    // A manifest that claims another cluster's identity: the restore runs,
    // the started cluster is not the one the manifest names, and the
    // previous data is put back.
    let run =
        restore_edited(&|manifest| manifest["system_identifier"] = "7000000000000000001".into());
    assert_ne!(run.code(), 0, "{}", run.stdout());
    kept(
        &run,
        "not the snapshot's cluster",
        "the previous data is back",
    );
}

#[test]
fn one_data_directory_is_locked_across_stores() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("PG_VERSION"), "15\n").unwrap();
    // Another ward (here: this test) works on the directory from another store.
    let target = ward::target::Target::Datadir(data.clone());
    let held = ward::snapshot::lock_target(&target).unwrap();
    // This process takes the lock in its own state directory (locks live
    // beside the journals: <state>/locks/…); the wards below must share it.
    let lock = ward::snapshot::target_lock_path(&target);
    let state = lock
        .parent()
        .and_then(|l| l.parent())
        .unwrap()
        .to_path_buf();
    let store = tempfile::tempdir().unwrap();
    let r = ward()
        .args([
            "snapshot",
            "create",
            "s",
            "--datadir",
            data.to_str().unwrap(),
        ])
        .args(["--store", store.path().to_str().unwrap()])
        .env("WARD_STATE_DIR", state.to_str().unwrap())
        .run();
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(
        r.stderr()
            .contains("another ward process is snapshotting or restoring"),
        "{}",
        r.stderr()
    );
    drop(held);
    // Released: the same command now gets past the lock (and on to the
    // next check: this directory has no cluster).
    let r = ward()
        .args([
            "snapshot",
            "create",
            "s",
            "--datadir",
            data.to_str().unwrap(),
        ])
        .args(["--store", store.path().to_str().unwrap()])
        .env("WARD_STATE_DIR", state.to_str().unwrap())
        .run();
    assert!(
        !r.stderr().contains("another ward process"),
        "{}",
        r.stderr()
    );
}
