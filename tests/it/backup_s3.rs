//! Issue #12's "Done when", end to end: `ward backup` of a compose-style
//! Postgres container into an `s3://` store on a real S3-compatible server
//! (s3s-fs, `support::s3`), encrypted with age, restored onto a fresh volume
//! from the bucket and the identity alone; the failure signal when the
//! bucket is gone; a wrong identity; which recipients win (flags over
//! `WARD_AGE_RECIPIENTS` over ward.toml); SIGINT mid-upload; and a 1 GB
//! volume streamed up with bounded memory.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::docker::{Pg, docker};
use crate::support::hook::Receiver;
use crate::support::s3::{S3, s3};
use crate::support::*;
use age::secrecy::ExposeSecret;

const CHECK: &str = "5e1f0c2a-ward-s3-check";
/// A row value that must never be readable in the bucket.
const PLAINTEXT: &str = "Zebulon Quixote-Marchetti, born 1931-07-14, allergic to penicillin";
/// How long a test waits for a ping before calling ward hung.
const PATIENCE: Duration = Duration::from_secs(120);

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// An age key pair: (identity file, recipient).
fn age_key(dir: &Path, file: &str) -> (PathBuf, String) {
    let id = age::x25519::Identity::generate();
    let path = dir.join(file);
    std::fs::write(&path, format!("{}\n", id.to_string().expose_secret())).unwrap();
    (path, id.to_public().to_string())
}

/// `ward` against `server`, with its endpoint and credentials.
fn on(server: &S3) -> Ward {
    server.env(ward())
}

fn names(server: &S3, store: &str) -> Vec<String> {
    let list = on(server)
        .args(["snapshot", "list", "--json", "--store", store])
        .ok()
        .json();
    assert_eq!(
        list["incomplete"].as_array().map_or(0, Vec::len),
        0,
        "{list}"
    );
    list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap().to_string())
        .collect()
}

fn started_at(container: &str) -> String {
    docker(&["inspect", "-f", "{{.State.StartedAt}}", container])
}

#[test]
fn an_encrypted_backup_into_a_bucket_restores_onto_a_fresh_volume_and_a_dead_bucket_pings_fail() {
    let mut server = s3();
    let store = server.url("prod/db");
    let keys = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_key(keys.path(), "ops.key");
    let (wrong, _) = age_key(keys.path(), "intern.key");
    let pg = Pg::start();
    pg.psql(&format!(
        "create table patients(id int primary key, note text); \
         insert into patients select g, md5(g::text) from generate_series(1, 3000) g; \
         insert into patients values (0, '{PLAINTEXT}')"
    ));
    let before = pg.checksums();
    let hook = Receiver::start();
    let ping = format!("{}/ping/{CHECK}", hook.base);

    // The VPS: recipients in the environment (as the ops guide's unit
    // exports them), no identity anywhere.
    let run = on(&server)
        .args([
            "backup",
            "--json",
            "--container",
            &pg.name,
            "--store",
            &store,
        ])
        .args(["--ping", &ping])
        .env("WARD_AGE_RECIPIENTS", &recipient)
        .ok();
    let r = run.json();
    assert_eq!(r["status"], "ok", "{r:#}");
    assert!(pg.running(), "an online backup never stops the container");
    let name = r["snapshot"].as_str().unwrap().to_string();
    let st = &r["stores"][0];
    assert_eq!(st["arrived"], "created", "{st:#}");
    assert_eq!(st["verified"], true, "{st:#}");
    assert_eq!(
        st["checked"], "stored bytes",
        "no identity on the VPS: {st:#}"
    );
    assert_eq!(
        server.objects("prod/db"),
        [format!("{name}.json"), format!("{name}.tar.zst/*")],
        "exactly the archive and its manifest: no marker, no lock left"
    );
    assert_eq!(server.pending_uploads(), 0);
    assert_eq!(names(&server, &store), std::slice::from_ref(&name));
    let shown = on(&server)
        .args(["snapshot", "show", &name, "--json", "--store", &store])
        .ok()
        .json();
    assert_eq!(shown["encryption"]["scheme"], "age-x25519", "{shown:#}");
    assert_eq!(
        shown["encryption"]["recipients"],
        serde_json::json!([recipient])
    );
    let stored = server.archive("prod/db", &name);
    assert!(
        stored.starts_with(b"age-encryption.org/v1"),
        "not an age file"
    );
    for needle in [PLAINTEXT, "Quixote", "penicillin"] {
        assert!(
            !stored.windows(needle.len()).any(|w| w == needle.as_bytes()),
            "{needle:?} is readable in the bucket"
        );
    }
    let manifest = std::fs::read_to_string(
        server
            .data
            .path()
            .join(crate::support::s3::BUCKET)
            .join("prod/db")
            .join(format!("{name}.json")),
    )
    .unwrap();
    assert!(!manifest.contains("Quixote"), "{manifest}");
    assert_eq!(
        hook.paths(),
        [format!("/ping/{CHECK}/start"), format!("/ping/{CHECK}")]
    );

    // A new VPS: a fresh volume and container, the bucket and the identity.
    let fresh = Pg::start();
    let fresh_before = fresh.checksums();
    let fresh_started = started_at(&fresh.name);
    // A wrong identity first: one line, exit 2, the volume untouched.
    on(&server)
        .args(["snapshot", "restore", &name, "--container", &fresh.name])
        .args(["--store", &store, "--yes", "--identity", &s(&wrong)])
        .run()
        .fails_with(2, "cannot open");
    assert!(fresh.running());
    assert_eq!(started_at(&fresh.name), fresh_started, "it was restarted");
    assert_eq!(fresh.checksums(), fresh_before, "the volume was touched");
    on(&server)
        .args(["snapshot", "restore", &name, "--container", &fresh.name])
        .args(["--store", &store, "--yes", "--identity", &s(&identity)])
        .ok();
    assert!(fresh.running());
    assert_eq!(fresh.checksums(), before, "the restored data differs");
    assert_eq!(
        fresh.psql("select note from patients where id = 0").trim(),
        PLAINTEXT
    );

    // The bucket is gone: the run fails, names the store in one line, and
    // the check hears /start then /fail.
    server.kill();
    let hook = Receiver::start();
    let run = on(&server)
        // Another prefix: a name of its own, whatever the second.
        .file("ward.toml", "[backup]\nname_prefix = \"again\"\n")
        .args(["backup", "--container", &pg.name, "--store", &store])
        .args(["--ping", &format!("{}/ping/{CHECK}", hook.base)])
        .args(["--notify", &format!("{}/hook", hook.base)])
        .env("WARD_AGE_RECIPIENTS", &recipient)
        .run();
    // A step failed (README's backup table: 1), not bad config (2): a
    // timer must tell an outage from a typo.
    assert_eq!(run.code(), 1, "{}\n{}", run.stdout(), run.stderr());
    let stdout = run.stdout();
    let named: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains(&store) && l.contains("FAILED at"))
        .collect();
    assert_eq!(named.len(), 1, "{}", run.stdout());
    assert!(named[0].contains("S3"), "{}", named[0]);
    let paths = hook.paths();
    let pings: Vec<&String> = paths.iter().filter(|p| p.starts_with("/ping/")).collect();
    assert_eq!(
        pings,
        [
            &format!("/ping/{CHECK}/start"),
            &format!("/ping/{CHECK}/fail")
        ],
        "{paths:?}"
    );
    let hooked = hook
        .requests()
        .into_iter()
        .find(|r| r.path == "/hook")
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&hooked.body).unwrap();
    assert_eq!(body["status"], "failed", "{body:#}");
    assert!(pg.running());
}

/// The recipients a backup in `store` was encrypted to (empty: in the clear).
fn recipients_of(store: &Path) -> Vec<String> {
    let list = ward()
        .args(["snapshot", "list", "--json", "--store", &s(store)])
        .ok()
        .json();
    let name = list["snapshots"][0]["name"].as_str().unwrap().to_string();
    let shown = ward()
        .args(["snapshot", "show", &name, "--json", "--store", &s(store)])
        .ok()
        .json();
    shown["encryption"]["recipients"]
        .as_array()
        .map(|a| a.iter().map(|r| r.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

#[test]
fn backup_recipients_come_from_flags_over_the_environment_over_ward_toml() {
    let pg = Pg::start();
    pg.psql("create table t as select g from generate_series(1, 100) g");
    let keys = tempfile::tempdir().unwrap();
    let (_, flag) = age_key(keys.path(), "flag.key");
    let (_, listed) = age_key(keys.path(), "listed.key");
    let (_, env) = age_key(keys.path(), "env.key");
    let (_, file) = age_key(keys.path(), "toml.key");
    let recipients_file = keys.path().join("recipients.txt");
    std::fs::write(&recipients_file, format!("# ops laptop\n{listed}\n")).unwrap();
    let toml = format!("[store]\nencrypt_to = [\"{file}\"]\n");
    let backup = |store: &Path| {
        ward().file("ward.toml", &toml).args([
            "backup",
            "--container",
            &pg.name,
            "--store",
            &s(store),
        ])
    };
    let listed_file = s(&recipients_file);
    let (flag_s, listed_s) = (flag.as_str(), listed_file.as_str());
    let cases: [(Vec<&str>, bool, Vec<String>); 5] = [
        (vec!["--encrypt-to", flag_s], true, vec![flag.clone()]),
        (
            vec!["--recipients-file", listed_s],
            true,
            vec![listed.clone()],
        ),
        (
            vec!["--encrypt-to", flag_s, "--recipients-file", listed_s],
            true,
            vec![flag.clone(), listed.clone()],
        ),
        (vec![], true, vec![env.clone()]),
        (vec![], false, vec![file.clone()]),
    ];
    for (flags, with_env, want) in cases {
        let store = tempfile::tempdir().unwrap();
        let mut w = backup(store.path()).args(&flags);
        if with_env {
            w = w.env("WARD_AGE_RECIPIENTS", &env);
        }
        w.ok();
        assert_eq!(
            recipients_of(store.path()),
            want,
            "{flags:?} env={with_env}"
        );
    }
    // One parser for every way in: a bad recipient is one line, exit 2,
    // before anything is created.
    let store = tempfile::tempdir().unwrap();
    backup(store.path())
        .args(["--encrypt-to", "age1notakey"])
        .run()
        .fails_with(2, "age1notakey");
    let bad_file = keys.path().join("bad.txt");
    std::fs::write(&bad_file, "ssh-ed25519 AAAA nope\n").unwrap();
    backup(store.path())
        .args(["--recipients-file", &s(&bad_file)])
        .run()
        .fails_with(2, "bad.txt");
    assert_eq!(std::fs::read_dir(store.path()).unwrap().count(), 0);
    // Documented in --help, with an example.
    let help = ward().args(["backup", "--help"]).ok().stdout();
    for want in [
        "--encrypt-to <RECIPIENT>",
        "--recipients-file <FILE>",
        "WARD_AGE_RECIPIENTS",
        "ward backup --store s3://",
    ] {
        assert!(help.contains(want), "{want} missing in:\n{help}");
    }
}

#[test]
fn sigint_mid_upload_exits_130_pings_fail_last_and_lists_nothing() {
    let server = s3();
    let store = server.url("nightly");
    let pg = Pg::start();
    crate::support::docker::fill(&pg.name, 2000);
    let hook = Receiver::start();
    let (child, _dir) = on(&server)
        .args(["backup", "--container", &pg.name, "--store", &store])
        .args(["--ping", &format!("{}/ping/{CHECK}", hook.base)])
        // Holds the upload open a moment once its marker is written.
        .env("WARD_FAULT", "store:after-upload-marker:sleep")
        .spawn();
    hook.wait_for(&format!("/ping/{CHECK}/start"), PATIENCE);
    // Then the upload itself: its marker is in the bucket.
    let deadline = std::time::Instant::now() + PATIENCE;
    while !server
        .objects("nightly")
        .iter()
        .any(|o| o.starts_with(".ward/uploads/"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the upload never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let run = Run { out };
    assert_eq!(run.code(), 130, "{}\n{}", run.stdout(), run.stderr());
    let paths = hook.paths();
    assert_eq!(
        paths,
        [
            format!("/ping/{CHECK}/start"),
            format!("/ping/{CHECK}/fail")
        ],
        "{paths:?}"
    );
    assert!(
        hook.requests()[1].body.contains("interrupted"),
        "{:?}",
        hook.requests()[1].body
    );
    assert!(pg.running(), "the container was left stopped");
    assert_eq!(names(&server, &store), Vec::<String>::new());
    assert!(
        server
            .objects("nightly")
            .iter()
            .all(|o| !o.ends_with(".json") && !o.contains(".tar.zst")),
        "half-written: {:?}",
        server.objects("nightly")
    );
    // The next run cleans up what the interrupted one left.
    on(&server)
        .args(["backup", "--container", &pg.name, "--store", &store])
        .ok();
    assert_eq!(server.pending_uploads(), 0);
    assert_eq!(names(&server, &store).len(), 1);
    assert!(
        server
            .objects("nightly")
            .iter()
            .all(|o| !o.starts_with(".ward/")),
        "{:?}",
        server.objects("nightly")
    );
}

/// Runs `w` to the end, sampling the peak RSS of its process (VmHWM, KiB).
fn peak_rss_kib(w: Ward) -> (Run, u64) {
    let (mut child, _dir) = w.spawn();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    // Drained on threads: a full pipe would stall ward.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut b).unwrap();
        b
    });
    let err = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut b).unwrap();
        b
    });
    let exit = loop {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(kib) = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kib);
        }
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = std::process::Output {
        status: exit,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    (Run { out }, peak)
}

#[test]
fn a_1gb_volume_streams_into_a_bucket_with_bounded_memory() {
    let server = s3();
    let store = server.url("big");
    let pg = Pg::start();
    // ~1 GB of barely compressible rows, made inside the container.
    pg.psql(
        "set synchronous_commit = off; \
         create table bulk(id int, a text, b text, c text, d text); \
         insert into bulk select g, \
           md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), \
           md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), \
           md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), \
           md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text) \
         from generate_series(1, 1800000) g",
    );
    pg.psql("checkpoint");
    let volume_bytes: u64 = docker(&["exec", &pg.name, "du", "-sb", "/var/lib/postgresql/data"])
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(volume_bytes > 1_000_000_000, "only {volume_bytes} bytes");
    let (run, peak_kib) = peak_rss_kib(
        on(&server)
            .args([
                "snapshot",
                "create",
                "big",
                "--json",
                "--container",
                &pg.name,
            ])
            .args(["--store", &store]),
    );
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    let created = run.json();
    assert!(
        created["compressed_bytes"].as_u64().unwrap() > 300_000_000,
        "the archive is too small to prove streaming: {created:#}"
    );
    // A ward process is never below ~10 MiB: a 0 means the sampler read nothing.
    assert!(
        peak_kib > 10 * 1024,
        "no RSS sample was read: {peak_kib} KiB"
    );
    assert!(
        peak_kib < 200 * 1024,
        "ward's peak RSS was {} MiB streaming {} MB",
        peak_kib / 1024,
        volume_bytes / 1_000_000
    );
    assert_eq!(names(&server, &store), ["big"]);
    assert_eq!(server.pending_uploads(), 0);
    let segments = server.segments("big", "big").len();
    assert!(segments > 10, "only {segments} segments");
    // Read back across every segment, with bounded memory too.
    let (run, peak_kib) =
        peak_rss_kib(on(&server).args(["snapshot", "verify", "big", "--store", &store]));
    assert_eq!(run.code(), 0, "{}\n{}", run.stdout(), run.stderr());
    assert!(
        (10 * 1024..200 * 1024).contains(&peak_kib),
        "ward's peak RSS verifying was {} MiB",
        peak_kib / 1024
    );
}
