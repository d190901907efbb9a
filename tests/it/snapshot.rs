//! `ward snapshot` against the real Docker engine and real Postgres: a compose
//! project snapshotted and restored by service name, cold and online round
//! trips compared table by table, injected failures, damaged and hostile
//! archives, wrong versions, native data directories.

use std::path::{Path, PathBuf};

use crate::support::docker::{self as dk, Compose, Pg};
use crate::support::snapshot::{listed, snap_in as snap};
use crate::support::*;

fn store() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn compose_service_db_round_trip_keeps_every_table_and_the_volume() {
    let c = Compose::up();
    let container = c.container();
    // Realistic rows, loaded by ward seed over the container's address.
    let ip = dk::docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        &container,
    ]);
    let url = format!("postgres://postgres:test-secret-pw@{}:5432/app", ip.trim());
    ward().db(&url).args(["seed", "-n", "300"]).ok();
    let before = dk::checksums_in(&container, "app");
    assert!(before.len() >= 8, "{before:?}");
    let labels_before = dk::docker(&["volume", "inspect", "-f", "{{json .Labels}}", &c.volume()]);

    let st = store();
    let project = c.project.clone();
    let out = snap(
        st.path(),
        &[
            "create",
            "before",
            "--compose-service",
            "db",
            "--compose-project",
            &project,
            "--label",
            "ticket=OPS-1",
        ],
    )
    .args(["--json"])
    .ok()
    .json();
    assert_eq!(out["method"], "cold");
    assert_eq!(out["restarted"], true);
    assert!(out["downtime_seconds"].as_f64().unwrap() > 0.0);
    assert!(dk::running(&container));

    // The manifest tells where it came from and what it holds; no password in it.
    let m = snap(st.path(), &["show", "before"])
        .args(["--json"])
        .ok()
        .json();
    assert_eq!(m["source"]["compose_project"], project.as_str());
    assert_eq!(m["source"]["compose_service"], "db");
    assert_eq!(m["source"]["volume"], c.volume().as_str());
    assert_eq!(m["pg_major"], 15);
    assert_eq!(m["pgdata_rel"], "");
    assert_eq!(m["labels"]["ticket"], "OPS-1");
    assert_eq!(m["uid"], 100, "the test image's postgres uid");
    assert!(m["system_identifier"].as_str().unwrap().len() > 5);
    let dbs = m["database"]["databases"].as_array().unwrap();
    let app = dbs.iter().find(|d| d["name"] == "app").unwrap();
    assert!(app["tables"]["public.patients"].is_i64());
    assert_eq!(app["schema_fingerprint"].as_str().unwrap().len(), 32);
    let text = std::fs::read_to_string(st.path().join("before.json")).unwrap();
    assert!(!text.contains("test-secret-pw"));
    let mode = std::fs::metadata(st.path().join("before.tar.zst"))
        .unwrap()
        .permissions();
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(mode.mode() & 0o777, 0o600);

    // Damage, then restore by service name.
    dk::psql_in(
        &container,
        "app",
        "drop table prescriptions; delete from observations;",
    );
    assert_ne!(dk::checksums_in(&container, "app"), before);
    let r = snap(
        st.path(),
        &[
            "restore",
            "before",
            "--compose-service",
            "db",
            "--compose-project",
            &project,
            "--yes",
            "--safety",
        ],
    )
    .args(["--json"])
    .ok()
    .json();
    assert_eq!(r["running"], true);
    let safety = r["safety_snapshot"].as_str().unwrap().to_string();
    assert!(listed(st.path()).contains(&safety));
    assert_eq!(dk::checksums_in(&container, "app"), before);

    // The volume kept its name and compose labels: compose still owns it.
    let labels_after = dk::docker(&["volume", "inspect", "-f", "{{json .Labels}}", &c.volume()]);
    assert_eq!(labels_before, labels_after);
    let stderr = c.compose(&["up", "-d"]);
    assert!(!stderr.contains("already exists"), "{stderr}");
    dk::wait_ready(&container);
    assert_eq!(dk::checksums_in(&container, "app"), before);

    // With no target flags, the compose project's one Postgres container is used.
    let out = ward()
        .env("COMPOSE_PROJECT_NAME", &project)
        .args([
            "snapshot",
            "create",
            "default-target",
            "--store",
            &s(st.path()),
        ])
        .args(["--json"])
        .ok()
        .json();
    assert!(out["target"].as_str().unwrap().contains(&c.volume()));
    assert!(dk::running(&container));

    // Every snapshot in the store verifies.
    for name in listed(st.path()) {
        snap(st.path(), &["verify", &name]).ok();
    }
}

#[test]
fn online_snapshot_under_pgbench_load_is_consistent_and_has_the_marker_row() {
    let pg = Pg::start();
    dk::docker(&[
        "exec", "-u", "postgres", &pg.name, "pgbench", "-i", "-q", "-s", "3", "-U", "postgres",
        "postgres",
    ]);
    pg.psql("create table marker(id int primary key, at timestamptz default now())");
    // Load in the background while the backup runs.
    let mut load = std::process::Command::new("docker")
        .args([
            "exec", "-u", "postgres", &pg.name, "pgbench", "-c", "3", "-T", "20", "-U", "postgres",
            "postgres",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // The snapshot must run under load: wait until pgbench's clients are in.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while pg
        .psql("select count(*) from pg_stat_activity where application_name = 'pgbench'")
        .trim()
        .parse::<i64>()
        .unwrap_or(0)
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "pgbench never connected"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    pg.psql("insert into marker values (42)");
    let st = store();
    let out = snap(
        st.path(),
        &["create", "hot", "--online", "--container", &pg.name],
    )
    .args(["--json"])
    .ok()
    .json();
    assert_eq!(out["method"], "online");
    assert!(out["downtime_seconds"].is_null());
    let _ = load.kill();
    let _ = load.wait();
    // The load ran through the snapshot: the container was never stopped.
    assert!(pg.running());
    snap(st.path(), &["verify", "hot"]).ok();

    pg.psql("drop table marker; truncate pgbench_history");
    snap(
        st.path(),
        &[
            "restore",
            "hot",
            "--container",
            &pg.name,
            "--yes",
            "--no-safety",
        ],
    )
    .ok();
    assert_eq!(pg.psql("select id from marker").trim(), "42");
    let amcheck = dk::docker(&[
        "exec",
        "-u",
        "postgres",
        &pg.name,
        "pg_amcheck",
        "-U",
        "postgres",
        "--all",
        "--install-missing",
        "--heapallindexed",
    ]);
    // docker() asserts pg_amcheck's exit status 0 (no corruption found).
    assert!(!amcheck.contains("ERROR"), "pg_amcheck found: {amcheck}");
    // pgbench's invariant: every balance change is in the history.
    let sums = pg.psql(
        "select (select sum(abalance) from pgbench_accounts) = (select coalesce(sum(delta),0) from pgbench_history)",
    );
    assert_eq!(sums.trim(), "t");
}

#[test]
fn container_runs_again_after_a_failure_mid_snapshot() {
    let pg = Pg::start();
    dk::fill(&pg.name, 20_000);
    let before = pg.checksums();
    let st = store();
    for fault in ["create:after-stop", "create:mid-stream"] {
        let r = snap(st.path(), &["create", "x", "--container", &pg.name])
            .env("WARD_FAULT", fault)
            .run();
        r.fails_with(2, "injected fault");
        assert!(pg.running(), "container left stopped after {fault}");
        pg.wait_ready();
        assert!(listed(st.path()).is_empty(), "a failed snapshot is listed");
        let leftovers: Vec<_> = std::fs::read_dir(st.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".lock")
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        assert_eq!(dk::remove_helpers(&pg.volume), 0, "helper left behind");
    }
    assert_eq!(pg.checksums(), before);
}

#[test]
fn failure_mid_restore_swaps_the_previous_data_back() {
    let pg = Pg::start();
    dk::fill(&pg.name, 20_000);
    let st = store();
    snap(st.path(), &["create", "old", "--container", &pg.name]).ok();
    pg.psql("insert into marks(label) values ('after the snapshot')");
    let current = pg.checksums();
    for fault in [
        "restore:mid-stage",
        "restore:after-stop",
        "restore:after-swap-out",
        "restore:after-start",
    ] {
        let r = snap(
            st.path(),
            &["restore", "old", "--container", &pg.name, "--yes"],
        )
        .env("WARD_FAULT", fault)
        .run();
        let err = r.fails_with(2, "injected fault");
        if fault == "restore:mid-stage" {
            assert!(err.contains("was not touched"), "{err}");
        } else {
            assert!(err.contains("previous data is back in place"), "{err}");
        }
        assert!(pg.running(), "container left stopped after {fault}");
        assert_eq!(pg.checksums(), current, "data not put back after {fault}");
        assert_eq!(dk::remove_helpers(&pg.volume), 0, "helper left behind");
        // Nothing of ward's is left in the volume, and no safety snapshot
        // was needed (none is taken by default).
        let left = dk::docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{}:/v", pg.volume),
            dk::IMAGE,
            "sh",
            "-c",
            "ls -A /v | grep '^.ward-' || true",
        ]);
        assert!(left.trim().is_empty(), "{fault}: {left}");
        assert_eq!(listed(st.path()), vec!["old".to_string()]);
    }
    // Without a fault the same restore succeeds and reports its phases.
    let r = snap(
        st.path(),
        &["restore", "old", "--container", &pg.name, "--yes", "--json"],
    )
    .ok();
    let j = r.json();
    for k in [
        "stage_seconds",
        "swap_seconds",
        "start_seconds",
        "downtime_seconds",
    ] {
        assert!(j[k].as_f64().is_some(), "{k} missing: {j}");
    }
    assert!(j["safety_snapshot"].is_null(), "{j}");
    pg.psql("select 1");
    assert_ne!(pg.checksums(), current);
}

#[test]
fn restore_with_safety_copies_the_current_data_into_the_store_first() {
    let pg = Pg::start();
    dk::fill(&pg.name, 2_000);
    let st = store();
    snap(st.path(), &["create", "old", "--container", &pg.name]).ok();
    pg.psql("insert into marks(label) values ('after the snapshot')");
    let current = pg.checksums();
    let r = snap(
        st.path(),
        &[
            "restore",
            "old",
            "--container",
            &pg.name,
            "--yes",
            "--safety",
            "--json",
        ],
    )
    .ok();
    let safety = r.json()["safety_snapshot"].as_str().unwrap().to_string();
    assert!(listed(st.path()).contains(&safety));
    snap(
        st.path(),
        &["restore", &safety, "--container", &pg.name, "--yes"],
    )
    .ok();
    assert_eq!(pg.checksums(), current);
}

#[test]
fn verify_catches_bit_flips_and_truncation_and_restore_refuses_them() {
    let pg = Pg::start();
    dk::fill(&pg.name, 5_000);
    let st = store();
    snap(st.path(), &["create", "good", "--container", &pg.name]).ok();
    let archive = st.path().join("good.tar.zst");
    let len = std::fs::metadata(&archive).unwrap().len();
    let pristine = std::fs::read(&archive).unwrap();
    for (what, damage) in [
        (
            "flip early",
            Box::new(|p: &Path| dk::flip_bit(p, 5_000)) as Box<dyn Fn(&Path)>,
        ),
        (
            "flip middle",
            Box::new(move |p: &Path| dk::flip_bit(p, len / 2)),
        ),
        (
            "flip last byte",
            Box::new(move |p: &Path| dk::flip_bit(p, len - 1)),
        ),
        (
            "truncate",
            Box::new(move |p: &Path| {
                let f = std::fs::OpenOptions::new().write(true).open(p).unwrap();
                f.set_len(len / 2).unwrap();
            }),
        ),
        (
            "append",
            Box::new(|p: &Path| {
                use std::io::Write;
                let mut f = std::fs::OpenOptions::new().append(true).open(p).unwrap();
                f.write_all(b"junk").unwrap();
            }),
        ),
    ] {
        std::fs::write(&archive, &pristine).unwrap();
        damage(&archive);
        let r = snap(st.path(), &["verify", "good"]).run();
        assert_eq!(r.code(), 1, "{what}: {}{}", r.stdout(), r.stderr());
        assert!(r.stdout().contains("DAMAGED"), "{what}: {}", r.stdout());
    }
    // Restore of a damaged snapshot touches nothing.
    pg.psql("insert into marks(label) values ('keep me')");
    let now = pg.checksums();
    let r = snap(
        st.path(),
        &["restore", "good", "--container", &pg.name, "--yes"],
    )
    .run();
    assert_eq!(r.code(), 1, "{}", r.stderr());
    assert!(r.stderr().contains("nothing was changed"), "{}", r.stderr());
    assert_eq!(
        listed(st.path()),
        vec!["good".to_string()],
        "no safety snapshot taken"
    );
    assert!(pg.running());
    assert_eq!(pg.checksums(), now);
    std::fs::write(&archive, &pristine).unwrap();
    snap(st.path(), &["verify", "good"]).ok();
    // --deep: Postgres starts on a throwaway copy, pg_amcheck is clean, and
    // "last verified" is recorded; nothing is left behind.
    let out = snap(st.path(), &["verify", "good", "--deep"]).ok().stdout();
    assert!(out.contains("pg_amcheck clean"), "{out}");
    let m = snap(st.path(), &["show", "good"])
        .args(["--json"])
        .ok()
        .json();
    assert!(m["last_verified"].is_string(), "{m}");
    // Every `ward-verify` helper on the engine: this is the only test that
    // runs `verify --deep` (a new one elsewhere would need a shared lock).
    let left = dk::docker(&[
        "ps",
        "-aq",
        "--filter",
        "label=ward.helper=1",
        "--filter",
        "name=ward-verify",
    ]);
    let vols = dk::docker(&["volume", "ls", "-q", "--filter", "label=ward.helper=1"]);
    assert!(
        left.trim().is_empty() && !vols.contains("ward-verify"),
        "{left} {vols}"
    );
}

#[test]
fn wrong_major_version_and_layout_are_refused() {
    let pg = Pg::start();
    let st = store();
    snap(st.path(), &["create", "s", "--container", &pg.name]).ok();
    let path = st.path().join("s.json");
    let orig = std::fs::read_to_string(&path).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&orig).unwrap();
    m["pg_major"] = 14.into();
    std::fs::write(&path, m.to_string()).unwrap();
    let r = snap(
        st.path(),
        &["restore", "s", "--container", &pg.name, "--yes"],
    )
    .run();
    let err = r.fails_with(2, "PostgreSQL 14");
    assert!(err.contains("runs PostgreSQL 15"), "{err}");
    let mut m: serde_json::Value = serde_json::from_str(&orig).unwrap();
    m["pgdata_rel"] = "18/docker".into();
    std::fs::write(&path, m.to_string()).unwrap();
    let r = snap(
        st.path(),
        &["restore", "s", "--container", &pg.name, "--yes"],
    )
    .run();
    r.fails_with(2, "incompatible layout");
    assert!(pg.running());
    assert_eq!(
        listed(st.path()),
        vec!["s".to_string()],
        "no safety snapshot taken"
    );
}

#[test]
fn restore_without_a_terminal_needs_yes() {
    let pg = Pg::start();
    let st = store();
    snap(st.path(), &["create", "s", "--container", &pg.name]).ok();
    snap(st.path(), &["restore", "s", "--container", &pg.name])
        .run()
        .fails_with(2, "pass --yes");
    snap(st.path(), &["delete", "s"])
        .run()
        .fails_with(2, "pass --yes");
    snap(st.path(), &["delete", "s", "--yes"]).ok();
    assert!(listed(st.path()).is_empty());
}

#[test]
fn bad_targets_and_names_are_one_line_errors() {
    let st = store();
    snap(
        st.path(),
        &["create", "--container", "ward-no-such-container-xyz"],
    )
    .run()
    .fails_with(2, "no container named");
    snap(st.path(), &["create", "../evil", "--container", "x"])
        .run()
        .fails_with(2, "invalid snapshot name");
    snap(st.path(), &["create", "--volume", "v"])
        .run()
        .fails_with(2, "needs --image");
    snap(st.path(), &["show", "nope"])
        .run()
        .fails_with(2, "no snapshot named");
    snap(st.path(), &["verify", "nope"])
        .run()
        .fails_with(2, "no snapshot named");
    snap(
        st.path(),
        &["create", "x", "--label", "novalue", "--container", "c"],
    )
    .run()
    .fails_with(2, "KEY=VALUE");
    let empty = tempfile::tempdir().unwrap();
    ward()
        .env("COMPOSE_PROJECT_NAME", "ward-no-such-project-xyz")
        .args(["snapshot", "create", "--store", &s(st.path())])
        .args::<[&str; 0], &str>([])
        .run()
        .fails_with(2, "no Postgres container found");
    ward()
        .args(["snapshot", "create", "--store", &s(st.path()), "--datadir"])
        .args([empty.path()])
        .run()
        .fails_with(2, "not a Postgres data directory");
}

// ---------------------------------------------------------------------------
// Native data directories (no Docker).
// ---------------------------------------------------------------------------

fn pg_ctl(c: &Cluster, action: &str) {
    let data = c.dir().join("data");
    let opts = format!(
        "-p {} -k {} -c listen_addresses=127.0.0.1",
        c.port(),
        c.dir().display()
    );
    let mut cmd = c.command("pg_ctl");
    cmd.arg("-D").arg(&data).args(["-w", "-t", "60"]);
    if action == "start" {
        cmd.args(["-l"])
            .arg(c.dir().join("log2"))
            .args(["-o", &opts]);
    } else {
        cmd.args(["-m", "fast"]);
    }
    let out = cmd.arg(action).output().unwrap();
    assert!(
        out.status.success(),
        "pg_ctl {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn datadir_round_trip_and_running_server_refused() {
    let mut c = cluster();
    let url = c.url("postgres");
    sql(
        &url,
        "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1,5000) g",
    );
    let before = value(&url, "select md5(string_agg(v, '' order by id)) from t");
    let data: PathBuf = c.dir().join("data");
    let st = store();
    snap(st.path(), &["create", "live", "--datadir", &s(&data)])
        .run()
        .fails_with(2, "is running");
    c.stop().unwrap();
    snap(st.path(), &["create", "native", "--datadir", &s(&data)]).ok();
    snap(st.path(), &["verify", "native"]).ok();
    pg_ctl(&c, "start");
    sql(&url, "drop table t");
    pg_ctl(&c, "stop");
    let r = snap(
        st.path(),
        &[
            "restore",
            "native",
            "--datadir",
            &s(&data),
            "--yes",
            "--safety",
        ],
    )
    .args(["--json"])
    .ok()
    .json();
    assert!(
        r["safety_snapshot"]
            .as_str()
            .unwrap()
            .starts_with("safety-")
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );
    pg_ctl(&c, "start");
    assert_eq!(
        value(&url, "select md5(string_agg(v, '' order by id)) from t"),
        before
    );
    pg_ctl(&c, "stop");
}

// ---------------------------------------------------------------------------
// Hostile archives: refused by verify and by restore, nothing written.
// ---------------------------------------------------------------------------

use ward::snapshot::manifest::{Entry, FORMAT, Kind, Layout, Manifest};

struct Item {
    name: Vec<u8>,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Option<&'static str>,
}

fn item(name: &str, kind: tar::EntryType, data: &[u8]) -> Item {
    Item {
        name: name.as_bytes().to_vec(),
        kind,
        data: data.to_vec(),
        link: None,
    }
}

/// Writes `<name>.tar.zst` + a manifest that lists every entry as it is (so
/// only the entry policy can refuse it).
fn hostile(store: &Path, name: &str, items: &[Item], declared_total: Option<u64>) {
    let mut tar_bytes = Vec::new();
    {
        let mut b = tar::Builder::new(&mut tar_bytes);
        for it in items {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(it.kind);
            h.set_mode(0o600);
            h.set_size(it.data.len() as u64);
            {
                let old = h.as_old_mut();
                old.name = [0; 100];
                old.name[..it.name.len()].copy_from_slice(&it.name);
                if let Some(l) = it.link {
                    old.linkname = [0; 100];
                    old.linkname[..l.len()].copy_from_slice(l.as_bytes());
                }
            }
            h.set_cksum();
            b.append(&h, &it.data[..]).unwrap();
        }
        b.finish().unwrap();
    }
    let mut z = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    z.include_checksum(true).unwrap();
    std::io::Write::write_all(&mut z, &tar_bytes).unwrap();
    let compressed = z.finish().unwrap();
    let sha = |b: &[u8]| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(b))
    };
    let entries: Vec<Entry> = items
        .iter()
        .map(|it| {
            let path = String::from_utf8_lossy(&it.name)
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_string();
            let kind = match it.kind {
                tar::EntryType::Directory => Kind::Dir,
                tar::EntryType::Symlink => Kind::Symlink,
                _ => Kind::File,
            };
            Entry {
                path,
                sha256: (kind == Kind::File).then(|| sha(&it.data)),
                size: if kind == Kind::File {
                    it.data.len() as u64
                } else {
                    0
                },
                link: it.link.map(str::to_string),
                kind,
                mode: 0o600,
            }
        })
        .collect();
    let total: u64 = items.iter().map(|i| i.data.len() as u64).sum();
    let m = Manifest {
        format: FORMAT,
        id: name.into(),
        name: name.into(),
        created_at: chrono::Utc::now(),
        ward_version: "test".into(),
        method: "cold".into(),
        source: Default::default(),
        pg_major: 15,
        system_identifier: None,
        pgdata: None,
        pgdata_rel: String::new(),
        layout: Layout::Pgdata,
        uid: None,
        gid: None,
        file_count: items.len() as u64,
        total_bytes: declared_total.unwrap_or(total),
        tar_bytes: tar_bytes.len() as u64,
        compressed_bytes: compressed.len() as u64,
        archive_sha256: sha(&compressed),
        archive_file: format!("{name}.tar.zst"),
        archive_carries_id: false,
        downtime_seconds: None,
        labels: Default::default(),
        database: None,
        last_verified: None,
        entries,
        template: None,
        encryption: None,
    };
    std::fs::write(store.join(format!("{name}.tar.zst")), compressed).unwrap();
    std::fs::write(store.join(format!("{name}.json")), m.to_json()).unwrap();
}

#[test]
fn restore_refuses_a_corpus_of_hostile_archives() {
    use tar::EntryType::*;
    let st = store();
    let ok = |n: &str| item(n, Regular, b"15\n");
    let corpus: Vec<(&str, Vec<Item>, Option<u64>, &str)> = vec![
        (
            "abs",
            vec![ok("PG_VERSION"), item("/etc/cron.d/x", Regular, b"x")],
            None,
            "absolute path",
        ),
        (
            "dotdot",
            vec![ok("PG_VERSION"), item("base/../../x", Regular, b"x")],
            None,
            "climbs out",
        ),
        (
            "symlink-escape",
            vec![
                ok("PG_VERSION"),
                Item {
                    name: b"pg_wal".to_vec(),
                    kind: Symlink,
                    data: vec![],
                    link: Some("../../etc"),
                },
            ],
            None,
            "symbolic",
        ),
        (
            "symlink-abs",
            vec![
                ok("PG_VERSION"),
                Item {
                    name: b"pg_wal".to_vec(),
                    kind: Symlink,
                    data: vec![],
                    link: Some("/etc"),
                },
            ],
            None,
            "symbolic",
        ),
        (
            "through-symlink",
            vec![
                ok("PG_VERSION"),
                Item {
                    name: b"a".to_vec(),
                    kind: Symlink,
                    data: vec![],
                    link: Some("b"),
                },
                item("a/passwd", Regular, b"x"),
            ],
            None,
            "symbolic",
        ),
        (
            "hardlink",
            vec![
                ok("PG_VERSION"),
                Item {
                    name: b"h".to_vec(),
                    kind: Link,
                    data: vec![],
                    link: Some("PG_VERSION"),
                },
            ],
            None,
            "hard link",
        ),
        (
            "device",
            vec![ok("PG_VERSION"), item("dev", Char, b"")],
            None,
            "device node",
        ),
        (
            "fifo",
            vec![ok("PG_VERSION"), item("fifo", Fifo, b"")],
            None,
            "FIFO",
        ),
        (
            "dup",
            vec![ok("PG_VERSION"), item("PG_VERSION", Regular, b"15\n")],
            None,
            "duplicate",
        ),
        (
            "oversize",
            vec![ok("PG_VERSION"), item("big", Regular, &[7u8; 10_000])],
            Some(100),
            "past the",
        ),
        (
            "non-utf8",
            vec![
                ok("PG_VERSION"),
                Item {
                    name: vec![b'x', 0xff, 0xfe],
                    kind: Regular,
                    data: b"x".to_vec(),
                    link: None,
                },
            ],
            None,
            "not UTF-8",
        ),
    ];
    // A target that must stay untouched: a (fake) data directory.
    let target = tempfile::tempdir().unwrap();
    let data = target.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("PG_VERSION"), "15\n").unwrap();
    std::fs::write(data.join("precious"), "keep").unwrap();
    for (name, items, declared, needle) in &corpus {
        hostile(st.path(), name, items, *declared);
        let r = snap(st.path(), &["verify", name]).run();
        assert_eq!(r.code(), 1, "{name}: {}{}", r.stdout(), r.stderr());
        assert!(
            r.stdout().contains(needle),
            "{name}: expected {needle:?} in {}",
            r.stdout()
        );
        let r = snap(
            st.path(),
            &["restore", name, "--datadir", &s(&data), "--yes"],
        )
        .run();
        assert_eq!(r.code(), 1, "{name}: {}", r.stderr());
        assert!(r.stderr().contains(needle), "{name}: {}", r.stderr());
    }
    let mut left: Vec<String> = std::fs::read_dir(target.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, vec!["data"], "nothing written beside the target");
    assert_eq!(
        std::fs::read_to_string(data.join("precious")).unwrap(),
        "keep"
    );
    assert!(!Path::new("/etc/cron.d/x").exists());
}

#[test]
fn demo_snapshots_damages_restores_and_the_rows_are_back() {
    let d = ward().args(["demo", "-n", "200", "--json"]).ok().json();
    let sn = &d["snapshot"];
    assert_eq!(sn["dropped_table"], "prescriptions");
    assert!(sn["rows_before"].as_i64().unwrap() > 0);
    assert_eq!(sn["rows_after_restore"], sn["rows_before"]);
}

#[test]
fn every_snapshot_subcommand_has_help_with_examples() {
    let top = ward().args(["snapshot", "--help"]).ok().stdout();
    assert!(top.contains("Examples:"), "{top}");
    for sub in [
        "create", "list", "show", "delete", "verify", "restore", "prune",
    ] {
        let help = ward().args(["snapshot", sub, "--help"]).ok().stdout();
        assert!(help.contains("Examples:"), "{sub}: {help}");
        assert!(
            help.contains(&format!("ward snapshot {sub}")),
            "{sub}: {help}"
        );
    }
}

#[test]
fn prune_keeps_the_newest_and_says_why() {
    // Manifests with chosen creation times (archives are not read by prune).
    let st = store();
    let times = [
        "2026-01-01T10:00:00Z",
        "2026-01-01T12:00:00Z",
        "2026-01-02T12:00:00Z",
        "2026-01-09T12:00:00Z",
        "2026-02-01T12:00:00Z",
    ];
    for (i, t) in times.iter().enumerate() {
        let name = format!("s{i}");
        hostile(
            st.path(),
            &name,
            &[item("PG_VERSION", tar::EntryType::Regular, b"15\n")],
            None,
        );
        let p = st.path().join(format!("{name}.json"));
        let mut m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        m["created_at"] = (*t).into();
        std::fs::write(&p, m.to_string()).unwrap();
    }
    let d = snap(st.path(), &["prune", "--keep-daily", "2", "--dry-run"])
        .args(["--json"])
        .ok()
        .json();
    let kept: Vec<&str> = d["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|x| x["keep"] == true)
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(kept, vec!["s4", "s3"]);
    assert_eq!(listed(st.path()).len(), 5, "dry run deletes nothing");
    // No policy: nothing deleted, and the message says how to set one.
    let r = snap(st.path(), &["prune"]).run();
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(r.stderr().contains("--keep-last"), "{}", r.stderr());
    // Deleting needs --yes without a terminal.
    let r = snap(st.path(), &["prune", "--keep-monthly", "2"]).run();
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(r.stderr().contains("--yes"), "{}", r.stderr());
    assert_eq!(listed(st.path()).len(), 5, "nothing deleted without --yes");
    let out = snap(st.path(), &["prune", "--keep-monthly", "2", "--yes"])
        .ok()
        .stdout();
    assert!(
        out.contains("keep    s4") && out.contains("newest"),
        "{out}"
    );
    let mut left = listed(st.path());
    left.sort();
    assert_eq!(left, vec!["s3", "s4"]);
    assert!(!st.path().join("s0.tar.zst").exists());
}

#[test]
fn throwaway_volumes_of_a_killed_ward_are_swept_and_live_ones_kept() {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string();
    // A volume or network ("volume" / "network") labelled as the helper of
    // the ward whose process id is `pid`.
    let make_labelled = |kind: &str, name: &str, pid: &str| {
        dk::docker(&[
            kind,
            "create",
            "--label",
            "ward.helper=1",
            "--label",
            &format!("ward.pid={pid}"),
            "--label",
            &format!("ward.host={host}"),
            name,
        ]);
    };
    let make = |name: &str, pid: &str| make_labelled("volume", name, pid);
    let dead = dk::unique("ward-test-orphan");
    let live = dk::unique("ward-test-live");
    // No process has this pid (it is above the kernel's pid_max).
    make(&dead, "99999999");
    make(&live, &std::process::id().to_string());
    // The private networks such servers sit on.
    let make_network = |name: &str, pid: &str| make_labelled("network", name, pid);
    let dead_network = dk::unique("ward-test-orphan-net");
    let live_network = dk::unique("ward-test-live-net");
    make_network(&dead_network, "99999999");
    make_network(&live_network, &std::process::id().to_string());
    // A throwaway server of a killed `check --against snapshot`: still running.
    let server = dk::unique("ward-test-orphan-server");
    dk::docker(&[
        "run",
        "-d",
        "--name",
        &server,
        "--label",
        "ward.test=1",
        "--label",
        "ward.helper=1",
        "--label",
        "ward.pid=99999999",
        "--label",
        &format!("ward.host={host}"),
        "--network",
        &dead_network,
        "-e",
        "POSTGRES_PASSWORD=x",
        // No anonymous volume to leak when the sweep removes the container.
        "--tmpfs",
        "/var/lib/postgresql/data",
        dk::IMAGE,
    ]);
    // Any ward command sweeps them, even one that never touches Docker.
    let st = store();
    snap(st.path(), &["list"]).ok();
    let gone = dk::docker(&["ps", "-aq", "--filter", &format!("name={server}")]);
    assert!(
        gone.trim().is_empty(),
        "orphaned throwaway server kept running"
    );
    let left = dk::docker(&["volume", "ls", "-q"]);
    dk::docker(&["volume", "rm", &live]);
    assert!(!left.lines().any(|l| l == dead), "orphan kept: {left}");
    assert!(left.lines().any(|l| l == live), "live volume swept: {left}");
    let networks = dk::docker(&["network", "ls", "--format", "{{.Name}}"]);
    dk::docker(&["network", "rm", &live_network]);
    assert!(
        !networks.lines().any(|l| l == dead_network),
        "orphan network kept: {networks}"
    );
    assert!(
        networks.lines().any(|l| l == live_network),
        "live network swept: {networks}"
    );
}

#[test]
fn the_manifest_records_the_migration_head_and_restore_warns_when_the_code_differs() {
    let pg = Pg::start();
    pg.psql(
        "create table _sqlx_migrations(version bigint primary key, description text not null, \
         installed_on timestamptz not null default now(), success boolean not null, \
         checksum bytea not null, execution_time bigint not null); \
         insert into _sqlx_migrations values \
         (20240101000000, 'init', now(), true, '\\x00', 1), \
         (20240202000000, 'add', now(), true, '\\x00', 1), \
         (20240303000000, 'broken', now(), false, '\\x00', 1)",
    );
    let st = store();
    snap(st.path(), &["create", "m", "--container", &pg.name]).ok();
    let j = snap(st.path(), &["list", "--json"]).ok().json();
    let heads = j["snapshots"][0]["migration_heads"].as_array().unwrap();
    assert_eq!(heads.len(), 1, "{j}");
    assert_eq!(heads[0], "postgres: sqlx 20240202000000");
    let show = snap(st.path(), &["show", "m"]).ok().stdout();
    assert!(
        show.contains("sqlx at 20240202000000 (2 applied)"),
        "{show}"
    );
    let show = snap(st.path(), &["show", "m", "--json"]).ok().json();
    assert_eq!(
        show["database"]["databases"][0]["migration_head"]["version"],
        "20240202000000"
    );
    // Old manifests (without the field) still load.
    let path = st.path().join("m.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    for db in v["database"]["databases"].as_array_mut().unwrap() {
        db.as_object_mut().unwrap().remove("migration_head");
    }
    std::fs::write(&path, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    snap(st.path(), &["show", "m"]).ok();
    std::fs::write(&path, text).unwrap();
    // The code is two migrations ahead of the snapshot: a warning, not a refusal.
    let dir = tempfile::tempdir().unwrap();
    for f in [
        "20240101000000_init.sql",
        "20240202000000_add.sql",
        "20240303000000_broken.sql",
        "20240404000000_more.sql",
    ] {
        std::fs::write(dir.path().join(f), "select 1;").unwrap();
    }
    let r = snap(
        st.path(),
        &["restore", "m", "--container", &pg.name, "--yes"],
    )
    .args(["--migrations", &s(dir.path())])
    .ok();
    let err = r.stderr();
    assert!(
        err.contains("BEHIND")
            && err.contains("20240303000000_broken.sql")
            && err.contains("20240404000000_more.sql"),
        "{err}"
    );
    // In step with the code: no warning.
    std::fs::remove_file(dir.path().join("20240303000000_broken.sql")).unwrap();
    std::fs::remove_file(dir.path().join("20240404000000_more.sql")).unwrap();
    let r = snap(
        st.path(),
        &["restore", "m", "--container", &pg.name, "--yes"],
    )
    .args(["--migrations", &s(dir.path())])
    .ok();
    assert!(!r.stderr().contains("warning"), "{}", r.stderr());
}

#[test]
fn keep_previous_keeps_the_replaced_data_outside_the_volume_and_previous_puts_it_back() {
    let pg = Pg::start();
    dk::fill(&pg.name, 3_000);
    let st = store();
    snap(st.path(), &["create", "old", "--container", &pg.name]).ok();
    pg.psql("insert into marks(label) values ('written after the snapshot')");
    let current = pg.checksums();
    let prev = format!("{}-ward-previous", pg.volume);
    let _gone = RemoveVolume(prev.clone());
    // --previous before anything was kept: a clear error, nothing touched.
    let r = snap(
        st.path(),
        &["restore", "--previous", "--container", &pg.name, "--yes"],
    )
    .run();
    r.fails_with(2, "no previous contents are kept");
    let r = snap(
        st.path(),
        &[
            "restore",
            "old",
            "--container",
            &pg.name,
            "--yes",
            "--keep-previous",
        ],
    )
    .ok();
    assert!(r.stderr().contains(&prev), "{}", r.stderr());
    assert_ne!(pg.checksums(), current);
    // The kept copy is a whole data directory in its own volume, and the
    // target volume holds nothing of ward's.
    let kept = dk::docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{prev}:/p"),
        dk::IMAGE,
        "ls",
        "-A",
        "/p",
    ]);
    assert!(
        kept.contains("PG_VERSION") && kept.contains("base"),
        "{kept}"
    );
    let left = dk::docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{}:/v", pg.volume),
        dk::IMAGE,
        "sh",
        "-c",
        "ls -A /v | grep '^.ward-' || true",
    ]);
    assert!(left.trim().is_empty(), "{left}");
    // Put it back: the data written after the snapshot is there again.
    let r = snap(
        st.path(),
        &["restore", "--previous", "--container", &pg.name, "--yes"],
    )
    .ok();
    assert!(r.stdout().contains("Restored"), "{}", r.stdout());
    assert!(pg.running());
    assert_eq!(pg.checksums(), current);
    assert_eq!(dk::remove_helpers(&pg.volume), 0, "helper left behind");
}

/// Removes a Docker volume when dropped.
struct RemoveVolume(String);
impl Drop for RemoveVolume {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["volume", "rm", "-f", &self.0])
            .output();
    }
}
