//! `ward check --against snapshot:NAME` on Docker volume snapshots, against
//! the real engine and real Postgres: a container's data is snapshotted, the
//! snapshot is restored into a throwaway server of its own image on
//! 127.0.0.1, and a data-breaking and a safe migration are checked against
//! it. The source container must keep running with its data unchanged, and
//! no throwaway container or volume may be left behind.

use std::path::Path;
use std::sync::Mutex;

use crate::support::check::{
    PhaseLog, assert_one_migration_error, findings, migrations, phases, report,
};
use crate::support::docker::{self as dk, Pg};
use crate::support::*;
use serde_json::Value;

/// The leftover checks look at every `ward-check-*` container and volume on
/// the engine, so the checks of this file run one at a time. All tests share
/// one binary: a test elsewhere that starts such throwaway servers (`check
/// --against snapshot:` of a Docker volume snapshot) must live here and take
/// this lock too.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A running container whose database `app` holds 300 visits, every third
/// with a NULL note (and empty `more_databases`); returns it with a cold
/// volume snapshot `name` in `store`.
fn snapshotted(store: &Path, name: &str, more_databases: &[&str]) -> Pg {
    let pg = Pg::start();
    for db in ["app"].iter().chain(more_databases) {
        pg.psql(&format!("CREATE DATABASE {db}"));
    }
    // A role whose password is known outside: the copy must not let it in.
    pg.psql("CREATE ROLE clinician LOGIN PASSWORD 'known-in-production'");
    dk::psql_in(
        &pg.name,
        "app",
        "CREATE TABLE visits(id int PRIMARY KEY, patient text NOT NULL, note text);
         INSERT INTO visits SELECT g, 'p' || g, CASE WHEN g % 3 = 0 THEN NULL ELSE md5(g::text) END
         FROM generate_series(1, 300) g;",
    );
    ward()
        .args([
            "snapshot",
            "create",
            name,
            "--container",
            &pg.name,
            "--store",
        ])
        .args([store])
        .ok();
    assert!(pg.running(), "the snapshot restarts the container");
    pg
}

/// `ward check --against snapshot:NAME --format json` (plus `extra`).
fn check(store: &Path, name: &str, files: &[(&str, &str)], extra: &[&str]) -> Run {
    let d = migrations(files);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = ward()
        .args(["check", "--format", "json", "--against"])
        .arg_str(&format!("snapshot:{name}"))
        .args(["--store"])
        .args([store])
        .args(["--migrations"])
        .args([d.path().join("migrations")])
        .args(extra)
        .run();
    assert_no_throwaways();
    r
}

/// No throwaway server or volume of `ward check` is left on the engine.
fn assert_no_throwaways() {
    let containers = dk::docker(&[
        "ps",
        "-a",
        "--format",
        "{{.Names}}",
        "--filter",
        "label=ward.helper=1",
        "--filter",
        "name=ward-check",
    ]);
    assert!(
        containers.trim().is_empty(),
        "throwaway containers left: {containers}"
    );
    let volumes = dk::docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        "label=ward.helper=1",
        "--filter",
        "name=ward-check",
    ]);
    assert!(
        volumes.trim().is_empty(),
        "throwaway volumes left: {volumes}"
    );
    let networks = dk::docker(&[
        "network",
        "ls",
        "-q",
        "--filter",
        "label=ward.helper=1",
        "--filter",
        "name=ward-check",
    ]);
    assert!(
        networks.trim().is_empty(),
        "throwaway networks left: {networks}"
    );
}

#[test]
fn volume_snapshot_fails_a_not_null_on_nulls_and_passes_a_new_column() {
    let st = tempfile::tempdir().unwrap();
    let pg = snapshotted(st.path(), "before", &[]);
    let before = dk::checksums_in(&pg.name, "app");
    assert_eq!(before.len(), 1, "{before:?}");

    // Data-breaking: 100 notes are NULL.
    let r = check(
        st.path(),
        "before",
        &[(
            "1_note_required.sql",
            "-- every visit needs a note\nALTER TABLE visits ALTER COLUMN note SET NOT NULL;\n",
        )],
        &[],
    );
    let j = assert_one_migration_error(&r, 100, "23502", 2);
    assert_eq!(
        j["against"],
        "a clone of database app of snapshot before (restored into a throwaway server)",
        "the same words every run (no random port)"
    );

    // Safe: a nullable column.
    let r = check(
        st.path(),
        "before",
        &[(
            "1_add_seen_at.sql",
            "ALTER TABLE visits ADD COLUMN seen_at timestamptz;",
        )],
        &[],
    );
    let j = report(&r);
    assert_eq!(
        (r.code(), j["verdict"].as_str()),
        (0, Some("PASS")),
        "{j:#}"
    );
    assert!(findings(&j, "migration-error").is_empty(), "{j:#}");

    // The source container was never touched.
    assert!(pg.running());
    assert_eq!(dk::checksums_in(&pg.name, "app"), before);
    let cols = dk::psql_in(
        &pg.name,
        "app",
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'visits'",
    );
    assert_eq!(cols.trim(), "3");
    // Nor the snapshot: it still verifies.
    ward()
        .args(["snapshot", "verify", "before", "--store"])
        .args([st.path()])
        .ok();
}

#[test]
fn several_databases_need_database_and_it_picks_one() {
    let st = tempfile::tempdir().unwrap();
    let pg = snapshotted(st.path(), "two-dbs", &["reporting"]);
    let files = [(
        "1_note_required.sql",
        "ALTER TABLE visits ALTER COLUMN note SET NOT NULL;",
    )];

    let r = check(st.path(), "two-dbs", &files, &[]);
    r.fails_with(2, "--database");
    assert!(r.stderr().contains("app, reporting"), "{}", r.stderr());

    let r = check(st.path(), "two-dbs", &files, &["--database", "app"]);
    let j = report(&r);
    assert_eq!(
        (r.code(), j["verdict"].as_str()),
        (1, Some("FAIL")),
        "{j:#}"
    );
    assert_eq!(findings(&j, "migration-error")[0]["count"], 100);

    let r = check(st.path(), "two-dbs", &files, &["--database", "nope"]);
    r.fails_with(2, "no database \"nope\"");
    assert!(pg.running());
}

#[test]
fn an_absent_image_is_a_one_line_error_and_nothing_is_created() {
    let st = tempfile::tempdir().unwrap();
    let _pg = snapshotted(st.path(), "img", &[]);
    // Pretend the snapshot came from an image this engine does not have.
    let path = st.path().join("img.json");
    let mut m: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    m["source"]["image"] = "ward-test/absent-image:1".into();
    std::fs::write(&path, serde_json::to_string_pretty(&m).unwrap()).unwrap();

    let r = check(
        st.path(),
        "img",
        &[("1_add.sql", "ALTER TABLE visits ADD COLUMN x int;")],
        &[],
    );
    r.fails_with(2, "ward-test/absent-image:1");
    assert!(r.stderr().contains("never"), "{}", r.stderr());
}

#[test]
fn the_throwaway_server_is_published_on_127_0_0_1_only() {
    let st = tempfile::tempdir().unwrap();
    let pg = snapshotted(st.path(), "ports", &[]);
    let d = migrations(&[("1_wait.sql", "SELECT pg_sleep(15);")]);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (mut child, _dir) = ward()
        .args(["check", "--format", "json", "--against", "snapshot:ports"])
        .args(["--store"])
        .args([st.path()])
        .args(["--migrations"])
        .args([d.path().join("migrations")])
        .spawn();
    // While the migration sleeps, look at the throwaway server's ports.
    let ports = throwaway_ports(&mut child);
    let ports = ports.trim();
    assert!(
        ports.starts_with("127.0.0.1:") && ports.ends_with("->5432/tcp") && !ports.contains(','),
        "published as {ports:?}"
    );
    // Only ward's own role may log in to the copy.
    let name = dk::docker(&[
        "ps",
        "--format",
        "{{.Names}}",
        "--filter",
        "label=ward.helper=1",
        "--filter",
        "name=ward-check",
    ]);
    // The server may still be starting, or ward setting it up: poll while
    // the migration sleeps.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut logins = String::new();
    while std::time::Instant::now() < deadline && logins != "postgres" {
        let out = std::process::Command::new("docker")
            .args([
                "exec",
                "-u",
                "postgres",
                name.trim(),
                "psql",
                "-XAtq",
                "-U",
                "postgres",
            ])
            .args([
                "-c",
                "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolcanlogin",
            ])
            .output()
            .unwrap();
        logins = String::from_utf8_lossy(&out.stdout).trim().to_string();
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(logins, "postgres", "login roles of the copy");
    // Off shared networks: a container on the default bridge reaches the
    // source container there (the probe works) but not the copy.
    let networks = networks_of(name.trim());
    assert!(
        !networks.contains(&"bridge".to_string()) && networks.len() == 1,
        "the copy sits on {networks:?}"
    );
    assert_eq!(probe(&bridge_address(&pg.name)), Some(0), "control probe");
    assert_eq!(
        probe(&bridge_address(name.trim())),
        Some(2),
        "another container reached the copy's server"
    );
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_throwaways();
    assert!(pg.running());
}

/// The networks a container is attached to.
fn networks_of(container: &str) -> Vec<String> {
    let out = dk::docker(&[
        "inspect",
        "-f",
        "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}",
        container,
    ]);
    out.split_whitespace().map(str::to_string).collect()
}

/// The container's address on its (one) network.
fn bridge_address(container: &str) -> String {
    let out = dk::docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        container,
    ]);
    assert!(!out.trim().is_empty(), "{container} has no address");
    out.trim().to_string()
}

/// `pg_isready` against `address:5432` from a fresh container on the
/// engine's default bridge: 0 answers, 2 no answer within 3 s.
fn probe(address: &str) -> Option<i32> {
    std::process::Command::new("docker")
        .args(["run", "--rm", "--label", "ward.test=1", "--entrypoint"])
        .args([
            "pg_isready",
            dk::IMAGE,
            "-h",
            address,
            "-p",
            "5432",
            "-t",
            "3",
        ])
        .output()
        .unwrap()
        .status
        .code()
}

/// Waits until `ward check` (the child) runs its throwaway server; returns
/// the server's published ports as `docker ps` shows them.
fn throwaway_ports(child: &mut std::process::Child) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let p = dk::docker(&[
            "ps",
            "--format",
            "{{.Ports}}",
            "--filter",
            "label=ward.helper=1",
            "--filter",
            "name=ward-check",
        ]);
        if !p.trim().is_empty() {
            return p;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "ward check ended before its throwaway server was seen"
        );
        assert!(std::time::Instant::now() < deadline, "no throwaway server");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn ctrl_c_during_the_check_removes_the_throwaway_server() {
    let st = tempfile::tempdir().unwrap();
    let pg = snapshotted(st.path(), "interrupted", &[]);
    let before = dk::checksums_in(&pg.name, "app");
    let d = migrations(&[("1_wait.sql", "SELECT pg_sleep(30);")]);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (mut child, _dir) = ward()
        .env("WARD_LOG", "info")
        .args(["check", "--against", "snapshot:interrupted", "--store"])
        .args([st.path()])
        .args(["--migrations"])
        .args([d.path().join("migrations")])
        .spawn();
    // The interrupt lands while the migration sleeps on the throwaway server:
    // wait for the log's phase marker, not for a guessed number of seconds.
    let log = PhaseLog::watch(&mut child);
    log.wait_for("applying the pending migrations");
    throwaway_ports(&mut child);
    assert!(child.try_wait().unwrap().is_none(), "the check ended early");
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let log = log.finish();
    assert_eq!(status.code(), Some(130), "{log}");
    assert_eq!(
        phases(&log).last(),
        Some(&"applying the pending migrations"),
        "the interrupt did not stop the check while it applied the migrations: {log}"
    );
    assert_no_throwaways();
    assert!(pg.running());
    assert_eq!(dk::checksums_in(&pg.name, "app"), before);
}
