//! `ward check --against snapshot:NAME` on snapshots of a native data
//! directory, against real Postgres: a stopped throwaway cluster is
//! snapshotted with `snapshot create --datadir`, and the check unpacks the
//! snapshot into a private temporary directory and runs this machine's own
//! server binaries of the same major on it. The source directory must stay
//! byte for byte as it was, and no temporary directory or server process of
//! the check may be left behind — also after Ctrl-C.
//!
//! Every `ward check` runs with its own TMPDIR, so "nothing left behind" is
//! an empty directory and no process mentioning it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::support::check::{assert_one_migration_error, findings, migrations, report};
use crate::support::*;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Two cores: one throwaway server of `ward check` at a time, and the
/// "no `postgres: ward-check` process" checks must not see another test's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A stopped cluster whose database `app` holds 300 visits, every third with
/// a NULL note, and a datadir snapshot `name` of it in `store`.
fn snapshotted(store: &Path, name: &str) -> Cluster {
    let mut c = cluster();
    sql(&c.url("postgres"), "CREATE DATABASE app");
    sql(
        &c.url("app"),
        "CREATE TABLE visits(id int PRIMARY KEY, patient text NOT NULL, note text);
         INSERT INTO visits SELECT g, 'p' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE md5(g::text) END
         FROM generate_series(1, 300) g;",
    );
    c.stop().unwrap();
    ward()
        .args(["snapshot", "create", name, "--datadir"])
        .args([c.data_path()])
        .args(["--store"])
        .args([store])
        .ok();
    c
}

/// A private TMPDIR for one `ward check`; the server runs as `postgres` when
/// the tests run as root, so it must be able to pass through.
fn private_tmp() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    t
}

fn check_cmd(store: &Path, name: &str, migrations: &Path, tmp: &Path) -> Ward {
    ward()
        .env("TMPDIR", tmp.to_str().unwrap())
        .args(["check", "--format", "json", "--against"])
        .arg_str(&format!("snapshot:{name}"))
        .args(["--store"])
        .args([store])
        .args(["--migrations"])
        .args([migrations.join("migrations")])
}

/// `ward check --against snapshot:NAME --format json`; asserts that nothing
/// of the throwaway server is left.
fn check(store: &Path, name: &str, files: &[(&str, &str)]) -> Run {
    let d = migrations(files);
    let tmp = private_tmp();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = check_cmd(store, name, d.path(), tmp.path()).run();
    assert_nothing_left(tmp.path());
    r
}

/// The command lines of every process on the machine.
fn processes() -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<u32>().is_ok())
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .collect()
}

fn throwaway_processes(tmp: &Path) -> Vec<String> {
    let tmp = tmp.display().to_string();
    processes()
        .into_iter()
        .filter(|p| p.contains(&tmp) || p.starts_with("postgres: ward-check"))
        .collect()
}

/// The check's TMPDIR is empty and no server of it runs.
fn assert_nothing_left(tmp: &Path) {
    let left: Vec<PathBuf> = std::fs::read_dir(tmp)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    let procs = throwaway_processes(tmp);
    assert!(
        procs.is_empty(),
        "throwaway server processes left: {procs:?}"
    );
}

/// SHA-256 of every file under `dir` (the source data directory while stopped).
fn tree_hashes(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let md = p.symlink_metadata().unwrap();
            if md.is_dir() {
                stack.push(p);
            } else if md.is_file() {
                let h = Sha256::digest(std::fs::read(&p).unwrap());
                out.insert(p, hex::encode(h));
            }
        }
    }
    out
}

#[test]
fn datadir_snapshot_fails_a_not_null_on_nulls_and_passes_a_new_column() {
    let st = tempfile::tempdir().unwrap();
    let mut c = snapshotted(st.path(), "native");
    let before = tree_hashes(&c.data_path());
    assert!(before.len() > 100, "{} files", before.len());

    // The manifest records who owned the directory: the copy's superuser
    // is found by that name.
    let m: Value =
        serde_json::from_str(&std::fs::read_to_string(st.path().join("native.json")).unwrap())
            .unwrap();
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(c.data_path()).unwrap().uid();
    let owner = nix::unistd::User::from_uid(uid.into())
        .unwrap()
        .unwrap()
        .name;
    assert_eq!(m["source"]["datadir_owner"], owner.as_str(), "{m:#}");

    // Data-breaking: 100 notes are NULL.
    let r = check(
        st.path(),
        "native",
        &[(
            "1_note_required.sql",
            "-- every visit needs a note\nALTER TABLE visits ALTER COLUMN note SET NOT NULL;\n",
        )],
    );
    assert_one_migration_error(&r, 100, "23502", 2);

    // Safe: a nullable column.
    let r = check(
        st.path(),
        "native",
        &[(
            "1_add_seen_at.sql",
            "ALTER TABLE visits ADD COLUMN seen_at timestamptz;",
        )],
    );
    let j = report(&r);
    assert_eq!(
        (r.code(), j["verdict"].as_str()),
        (0, Some("PASS")),
        "{j:#}"
    );
    assert!(findings(&j, "migration-error").is_empty(), "{j:#}");

    // The source directory was never touched: same bytes, and once started
    // again the same rows and columns.
    assert_eq!(tree_hashes(&c.data_path()), before);
    c.start_again().unwrap();
    let url = c.url("app");
    assert_eq!(
        value(&url, "SELECT count(*) || '/' || count(note) FROM visits"),
        "300/200"
    );
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'visits'"
        ),
        3
    );
    // Nor the snapshot: it still verifies.
    ward()
        .args(["snapshot", "verify", "native", "--store"])
        .args([st.path()])
        .ok();
}

#[test]
fn a_manifest_without_the_owner_still_finds_the_superuser() {
    // Manifests written before the owner was recorded.
    let st = tempfile::tempdir().unwrap();
    let _c = snapshotted(st.path(), "old");
    let path = st.path().join("old.json");
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["source"].as_object_mut().unwrap().remove("datadir_owner");
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let r = check(
        st.path(),
        "old",
        &[("1_add.sql", "ALTER TABLE visits ADD COLUMN x int;")],
    );
    let j = report(&r);
    assert_eq!(
        (r.code(), j["verdict"].as_str()),
        (0, Some("PASS")),
        "{j:#}"
    );
}

#[test]
fn a_missing_major_version_is_a_one_line_error_naming_it() {
    let st = tempfile::tempdir().unwrap();
    let _c = snapshotted(st.path(), "future");
    let path = st.path().join("future.json");
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["pg_major"] = 99.into();
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();
    let r = check(
        st.path(),
        "future",
        &[("1_add.sql", "ALTER TABLE visits ADD COLUMN x int;")],
    );
    let err = r.fails_with(2, "PostgreSQL 99");
    assert!(err.contains("postgresql-99"), "{err}");
}

#[test]
fn ctrl_c_during_the_check_stops_the_throwaway_server() {
    let st = tempfile::tempdir().unwrap();
    let c = snapshotted(st.path(), "interrupted");
    let before = tree_hashes(&c.data_path());
    let d = migrations(&[("1_wait.sql", "SELECT pg_sleep(30);")]);
    let tmp = private_tmp();
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (mut child, _dir) = check_cmd(st.path(), "interrupted", d.path(), tmp.path())
        .env("WARD_LOG", "info")
        .spawn();
    // Wait for the phase marker of the sleeping migration (the log line
    // `phase: applying …`), reading stderr on a thread so it never fills.
    let (phase_seen, phase) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = String::new();
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap_or_default();
            if line.contains("phase: applying the pending migrations") {
                let _ = phase_seen.send(());
            }
            all += &line;
            all.push('\n');
        }
        all
    });
    phase
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("ward check never reached the migrations");
    assert!(
        !throwaway_processes(tmp.path()).is_empty(),
        "no throwaway server"
    );
    assert!(child.try_wait().unwrap().is_none(), "the check ended early");
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let log = reader.join().unwrap();
    assert_eq!(status.code(), Some(130), "{log}");
    assert_nothing_left(tmp.path());
    assert_eq!(tree_hashes(&c.data_path()), before);
}
