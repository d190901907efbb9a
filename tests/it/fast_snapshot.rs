//! Fast (in-cluster template) snapshots against real throwaway clusters:
//! round trips, sessions, privileges, verification.

use crate::support::*;
use ward::snapshot::template;

fn seeded(c: &Cluster, db: &str) -> String {
    sql(&c.url("postgres"), &format!("CREATE DATABASE {db}"));
    let url = c.url(db);
    ward().db(&url).args(["seed", "-n", "300"]).ok();
    url
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn round_trip_restores_every_table_exactly() {
    let c = cluster();
    let url = seeded(&c, "app");
    let before = table_checksums(&url, "public");
    let rt = rt();
    let facts = rt
        .block_on(template::create(&url, "before", false))
        .unwrap();
    assert_eq!(facts.source_database, "app");
    assert_eq!(facts.template_database, "ward_snap_before");
    assert!(facts.size_bytes > 1_000_000);
    // The copy is hidden: a template nobody may connect to.
    assert_eq!(
        value(
            &url,
            "SELECT datistemplate::text || datallowconn::text FROM pg_database WHERE datname = 'ward_snap_before'"
        ),
        "truefalse"
    );

    sql(
        &url,
        "DELETE FROM appointments WHERE id % 2 = 0; DROP TABLE observations; UPDATE patients SET email = NULL",
    );
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'observations'"
        ),
        0
    );
    let restored = rt.block_on(template::restore(&url, &facts, false)).unwrap();
    assert_eq!(restored.database, "app");
    assert_eq!(table_checksums(&url, "public"), before);
    // The template is still there for the next reset, and verifies.
    assert_eq!(rt.block_on(template::verify(&url, &facts)).unwrap(), None);
    // No leftovers of the swap.
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'ward_re%'"
        ),
        0
    );
}

#[test]
fn sessions_are_listed_and_only_force_ends_them() {
    let c = cluster();
    let url = seeded(&c, "app");
    let rt = rt();
    let facts = rt.block_on(template::create(&url, "s", false)).unwrap();
    sql(&url, "DELETE FROM prescriptions");
    let app = rt.block_on(ward::pg::connect(&url)).unwrap();
    rt.block_on(app.batch_execute("SET application_name = 'django'"))
        .unwrap();

    let err = rt
        .block_on(template::restore(&url, &facts, false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("app is in use by 1 session")
            && err.contains("django")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(
        int(&url, "SELECT count(*) FROM prescriptions"),
        0,
        "a refused restore changed data"
    );

    let r = rt.block_on(template::restore(&url, &facts, true)).unwrap();
    assert_eq!(r.sessions_ended, 1);
    assert!(int(&url, "SELECT count(*) FROM prescriptions") > 0);
    assert!(
        rt.block_on(app.simple_query("SELECT 1")).is_err(),
        "the app's session should have been ended"
    );

    // Creating a snapshot of a database in use is refused the same way.
    let app2 = rt.block_on(ward::pg::connect(&url)).unwrap();
    let err = rt
        .block_on(template::create(&url, "t", false))
        .unwrap_err()
        .to_string();
    assert!(err.contains("in use by 1 session"), "{err}");
    drop(app2);
}

#[test]
fn bad_input_is_refused_and_nothing_changes() {
    let c = cluster();
    let url = seeded(&c, "app");
    let rt = rt();
    rt.block_on(template::create(&url, "x", false)).unwrap();
    let err = rt
        .block_on(template::create(&url, "x", false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("already exists") && err.contains("another name"),
        "{err}"
    );

    let err = rt
        .block_on(template::create(&c.url("nope"), "y", false))
        .unwrap_err()
        .to_string();
    assert!(err.contains("nope"), "{err}");

    sql(&url, "CREATE ROLE dev LOGIN PASSWORD 'devpw'");
    let dev = format!("postgres://dev:devpw@127.0.0.1:{}/app", c.port());
    let err = rt
        .block_on(template::create(&dev, "z", false))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("may not create databases") && err.contains("ALTER ROLE dev CREATEDB"),
        "{err}"
    );
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'ward_snap_%'"
        ),
        1
    );
}

#[test]
fn verify_notices_a_missing_or_changed_copy() {
    let c = cluster();
    let url = seeded(&c, "app");
    let rt = rt();
    let facts = rt.block_on(template::create(&url, "v", false)).unwrap();
    sql(
        &c.url("postgres"),
        "ALTER DATABASE ward_snap_v ALLOW_CONNECTIONS true",
    );
    sql(
        &c.url("ward_snap_v"),
        "ALTER TABLE patients ADD COLUMN extra int",
    );
    sql(
        &c.url("postgres"),
        "ALTER DATABASE ward_snap_v ALLOW_CONNECTIONS false",
    );
    let problem = rt
        .block_on(template::verify(&url, &facts))
        .unwrap()
        .unwrap();
    assert!(
        problem.contains("schema of ward_snap_v changed"),
        "{problem}"
    );
    rt.block_on(template::delete(&url, "v", &facts)).unwrap();
    let problem = rt
        .block_on(template::verify(&url, &facts))
        .unwrap()
        .unwrap();
    assert!(problem.contains("no longer exists"), "{problem}");
    let err = rt
        .block_on(template::restore(&url, &facts, false))
        .unwrap_err()
        .to_string();
    assert!(err.contains("is gone from the cluster"), "{err}");
}

#[test]
fn failure_mid_restore_leaves_the_original_intact() {
    let c = cluster();
    let url = seeded(&c, "app");
    let rt = rt();
    let facts = rt.block_on(template::create(&url, "f", false)).unwrap();
    sql(&url, "DELETE FROM allergies");
    let changed = table_checksums(&url, "public");
    for point in ["template-copy", "template-swap"] {
        let err = rt
            .block_on(template::restore_with_fault(
                &url,
                &facts,
                false,
                Some(point),
            ))
            .unwrap_err();
        assert!(format!("{err:#}").contains("left as it was"), "{err:#}");
        assert_eq!(
            table_checksums(&url, "public"),
            changed,
            "after a fault at {point}"
        );
        assert_eq!(
            int(
                &url,
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'ward_re%'"
            ),
            0
        );
    }
    rt.block_on(template::restore(&url, &facts, false)).unwrap();
    assert!(int(&url, "SELECT count(*) FROM allergies") > 0);
}

#[test]
fn the_cli_takes_lists_verifies_restores_prunes_and_deletes_fast_snapshots() {
    let c = cluster();
    let url = seeded(&c, "app");
    let before = table_checksums(&url, "public");
    let store = tempfile::tempdir().unwrap();
    let st = store.path().to_str().unwrap().to_string();
    let w = || ward().db(&url).args(["--json"]);
    let m = w()
        .args(["snapshot", "create", "one", "--fast", "--store", &st])
        .ok()
        .json();
    assert_eq!(m["method"], "template");
    assert_eq!(m["template"]["template_database"], "ward_snap_one");
    w().args(["snapshot", "create", "two", "--fast", "--store", &st])
        .ok();
    let list = w().args(["snapshot", "list", "--store", &st]).ok().json();
    let rows = list["snapshots"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["source"].as_str().unwrap().contains("(in cluster)")),
        "{list}"
    );
    assert_eq!(
        w().args(["snapshot", "verify", "one", "--store", &st])
            .run()
            .code(),
        0
    );

    sql(&url, "DROP TABLE observations");
    // Without a terminal, restore needs --yes; with a session open it needs --force.
    ward()
        .db(&url)
        .args(["snapshot", "restore", "one", "--store", &st])
        .run()
        .fails_with(2, "--yes");
    let _app = {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = rt.block_on(ward::pg::connect(&url)).unwrap();
        (rt, client)
    };
    ward()
        .db(&url)
        .args(["snapshot", "restore", "one", "--yes", "--store", &st])
        .run()
        .fails_with(2, "--force");
    ward()
        .db(&url)
        .args([
            "snapshot", "restore", "one", "--yes", "--force", "--store", &st,
        ])
        .ok();
    assert_eq!(table_checksums(&url, "public"), before);

    // Prune across kinds keeps the newest and drops the other's copy in the cluster.
    ward()
        .db(&url)
        .args([
            "snapshot",
            "prune",
            "--keep-last",
            "1",
            "--yes",
            "--store",
            &st,
        ])
        .ok();
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname = 'ward_snap_one'"
        ),
        0
    );
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname = 'ward_snap_two'"
        ),
        1
    );
    ward()
        .db(&url)
        .args(["snapshot", "delete", "two", "--yes", "--store", &st])
        .ok();
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'ward_snap_%'"
        ),
        0
    );
    // A name collision is refused, and needs no database change.
    w().args(["snapshot", "create", "three", "--fast", "--store", &st])
        .ok();
    ward()
        .db(&url)
        .args(["snapshot", "create", "three", "--fast", "--store", &st])
        .run()
        .fails_with(2, "already exists");
}

/// Removes the test's container even when the test fails.
struct Container(String);
impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", "-v", &self.0])
            .output();
    }
}

#[test]
fn fast_snapshots_reach_a_container_through_its_published_port() {
    use crate::support::docker::{IMAGE, docker, require_image, unique, wait_ready};
    require_image();
    let c = Container(unique("ward-test-fast"));
    docker(&[
        "run",
        "-d",
        "--name",
        &c.0,
        "--label",
        "ward.test=1",
        "-e",
        "POSTGRES_PASSWORD=pw-fast",
        "-e",
        "POSTGRES_DB=app",
        "-p",
        "127.0.0.1::5432",
        IMAGE,
    ]);
    wait_ready(&c.0);
    let port = docker(&["port", &c.0, "5432/tcp"]);
    let port = port.trim().rsplit(':').next().unwrap().to_string();
    let url = format!("postgres://postgres:pw-fast@127.0.0.1:{port}/app");
    ward().db(&url).args(["seed", "-n", "200"]).ok();
    let before = table_checksums(&url, "public");
    let store = tempfile::tempdir().unwrap();
    let st = store.path().to_str().unwrap();
    // No --database-url: the container's published port and environment say where.
    let m = ward()
        .args([
            "--json",
            "snapshot",
            "create",
            "c1",
            "--fast",
            "--container",
            &c.0,
            "--store",
            st,
        ])
        .ok()
        .json();
    assert_eq!(m["source"]["container"], c.0.as_str());
    assert!(
        !m.to_string().contains("pw-fast"),
        "the password leaked into the manifest"
    );
    sql(&url, "DROP TABLE allergies");
    ward()
        .args(["snapshot", "restore", "c1", "--yes", "--store", st])
        .ok();
    assert_eq!(table_checksums(&url, "public"), before);
    ward()
        .args(["snapshot", "delete", "c1", "--yes", "--store", st])
        .ok();
    assert_eq!(
        int(
            &url,
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'ward_snap_%'"
        ),
        0
    );
}

#[test]
fn check_runs_against_a_clone_of_a_fast_snapshot() {
    let c = cluster();
    let url = seeded(&c, "app");
    let store = tempfile::tempdir().unwrap();
    let st = store.path().to_str().unwrap();
    ward()
        .db(&url)
        .args(["snapshot", "create", "base", "--fast", "--store", st])
        .ok();
    let dir = tempfile::tempdir().unwrap();
    let migrations = dir.path().join("migrations");
    std::fs::create_dir(&migrations).unwrap();
    std::fs::write(
        migrations.join("20240101000000_whole_numbers.sql"),
        "ALTER TABLE observations ALTER COLUMN value TYPE integer;\n",
    )
    .unwrap();
    let r = ward()
        .db(&url)
        .args([
            "check",
            "--format",
            "json",
            "--store",
            st,
            "--against",
            "snapshot:base",
            "--migrations",
        ])
        .args([&migrations])
        .run();
    assert_eq!(r.code(), 1, "{}\n{}", r.stdout(), r.stderr());
    let report = r.json();
    assert!(
        report["against"]
            .as_str()
            .unwrap()
            .contains("ward_snap_base"),
        "{report}"
    );
    assert!(report.to_string().contains("values-changed"), "{report}");
    // The snapshot's copy is closed again and unchanged; the live database too.
    assert_eq!(
        value(
            &url,
            "SELECT datallowconn::text FROM pg_database WHERE datname = 'ward_snap_base'"
        ),
        "false"
    );
    ward()
        .db(&url)
        .args(["snapshot", "verify", "base", "--store", st])
        .ok();
    assert_eq!(
        value(
            &url,
            "SELECT data_type FROM information_schema.columns WHERE table_name = 'observations' AND column_name = 'value'"
        ),
        "numeric"
    );
    // A volume snapshot (or a missing one) is a clear error.
    ward()
        .db(&url)
        .args([
            "check",
            "--store",
            st,
            "--against",
            "snapshot:nope",
            "--migrations",
        ])
        .args([&migrations])
        .run()
        .fails_with(2, "no snapshot named");
}

#[test]
fn a_manifest_naming_another_database_never_gets_it_dropped() {
    let c = cluster();
    let url = c.url("postgres");
    sql(&url, "CREATE DATABASE precious");
    sql(&url, "CREATE DATABASE app");
    let app = c.url("app");
    let store = tempfile::tempdir().unwrap();
    let st = store.path().to_str().unwrap().to_string();
    let w = || ward().db(&app);
    w().args(["snapshot", "create", "s1", "--fast", "--store", &st])
        .ok();
    w().args(["snapshot", "create", "s2", "--fast", "--store", &st])
        .ok();
    let exists = |db: &str| {
        int(
            &url,
            &format!("SELECT count(*) FROM pg_database WHERE datname = '{db}'"),
        ) == 1
    };
    let edit = |name: &str, f: &dyn Fn(&mut serde_json::Value)| {
        let p = store.path().join(format!("{name}.json"));
        let mut m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        f(&mut m);
        std::fs::write(&p, m.to_string()).unwrap();
    };
    // A manifest pointed at another database: delete, prune, restore and
    // verify refuse (exit 1) and the database stays.
    edit("s1", &|m| {
        m["template"]["template_database"] = "precious".into()
    });
    for args in [
        vec!["snapshot", "delete", "s1", "--yes"],
        vec!["snapshot", "restore", "s1", "--yes"],
        vec!["snapshot", "verify", "s1"],
        vec!["snapshot", "prune", "--keep-last", "1", "--yes"],
    ] {
        let r = w().args(&args).args(["--store", &st]).run();
        assert_eq!(r.code(), 1, "{args:?}: {}", r.stderr());
        assert!(
            r.stderr().contains("leaves it alone"),
            "{args:?}: {}",
            r.stderr()
        );
        assert!(exists("precious"), "{args:?} dropped another database");
    }
    // Nor may `check --against snapshot:s1` open (and later close) it.
    let migrations = tempfile::tempdir().unwrap();
    std::fs::write(
        migrations.path().join("1_add.sql"),
        "ALTER TABLE IF EXISTS t ADD COLUMN x int;",
    )
    .unwrap();
    let r = w()
        .args(["check", "--against", "snapshot:s1", "--store", &st, "-m"])
        .arg_str(migrations.path().to_str().unwrap())
        .run();
    assert_eq!(r.code(), 1, "check: {}", r.stderr());
    assert!(r.stderr().contains("leaves it alone"), "{}", r.stderr());
    assert_eq!(
        value(
            &url,
            "SELECT datallowconn::text FROM pg_database WHERE datname = 'precious'"
        ),
        "true",
        "check changed another database's ALLOW_CONNECTIONS"
    );
    // A database with ward's name for the snapshot but not made by ward (no
    // comment) is not dropped either; nor is ward's copy whose oid changed.
    edit("s1", &|m| {
        m["template"]["template_database"] = "ward_snap_s1".into();
    });
    sql(&url, "ALTER DATABASE ward_snap_s1 IS_TEMPLATE false");
    sql(&url, "DROP DATABASE ward_snap_s1");
    sql(&url, "CREATE DATABASE ward_snap_s1");
    let r = w()
        .args(["snapshot", "delete", "s1", "--yes", "--store", &st])
        .run();
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(exists("ward_snap_s1"));
    sql(
        &url,
        "COMMENT ON DATABASE ward_snap_s1 IS 'ward fast snapshot s1 of app'",
    );
    let r = w()
        .args(["snapshot", "delete", "s1", "--yes", "--store", &st])
        .run();
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(r.stderr().contains("oid"), "{}", r.stderr());
    assert!(exists("ward_snap_s1"));
    // Ward's own copy, untouched, is still deleted as before.
    w().args(["snapshot", "delete", "s2", "--yes", "--store", &st])
        .ok();
    assert!(!exists("ward_snap_s2"));
}
