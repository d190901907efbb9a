//! F13 (issue #13 point 2): volumes first initialised by the official
//! `postgres:18.0` image may hold a symbolic link `data -> .` at the volume
//! root (docker-library/postgres#1372, #1394). ward accepts exactly that
//! link — recorded in the manifest's layout, never followed, recreated on
//! restore — and still refuses every other one (`data -> ..`, `data -> /`,
//! `data -> .` deeper down), on create and in a store's archive alike,
//! touching nothing. The layout is built by hand in a container of the
//! local 18 test image.

use std::path::Path;

use crate::support::docker as dk;
use crate::support::server::Server;
use crate::support::ward;
use sha2::Digest;
use ward::snapshot::manifest::{Entry, Kind, Manifest};

const ROOT: &str = "/var/lib/postgresql";

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// The server's data and its volume's name.
fn setup() -> (Server, String) {
    let server = Server::start(18);
    server.psql(
        "postgres",
        "CREATE TABLE notes (id int PRIMARY KEY, body text);
         INSERT INTO notes SELECT g, md5(g::text) FROM generate_series(1, 2000) g",
    );
    let volume = dk::docker(&[
        "inspect",
        "-f",
        "{{range .Mounts}}{{if eq .Destination \"/var/lib/postgresql\"}}{{.Name}}{{end}}{{end}}",
        server.name(),
    ])
    .trim()
    .to_string();
    assert!(!volume.is_empty(), "no volume at {ROOT}");
    (server, volume)
}

fn rows(server: &Server) -> String {
    server.psql(
        "postgres",
        "SELECT count(*) || ':' || md5(string_agg(body, ',' ORDER BY id)) FROM notes",
    )
}

/// `ls -la` of the volume root and of PGDATA's top: what a hostile case may
/// not change (the server's own churn lives below).
fn volume_listing(server: &Server) -> String {
    dk::docker(&[
        "exec",
        server.name(),
        "sh",
        "-c",
        "ls -la --time-style=+ /var/lib/postgresql | sort; readlink /var/lib/postgresql/data \
         /var/lib/postgresql/18/docker/data || true",
    ])
}

fn readlink(server: &Server, path: &str) -> Option<String> {
    let out = std::process::Command::new("docker")
        .args(["exec", server.name(), "readlink", path])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A PG 18 container with the `data -> .` link beside its cluster, its
/// volume, and a store holding the snapshot "linked" of it.
fn linked_snapshot() -> (Server, String, tempfile::TempDir) {
    let (server, volume) = setup();
    dk::docker(&[
        "exec",
        server.name(),
        "ln",
        "-s",
        ".",
        &format!("{ROOT}/data"),
    ]);
    let store = tempfile::tempdir().unwrap();
    ward()
        .args(["snapshot", "create", "linked", "--container", server.name()])
        .args(["--store", &s(store.path())])
        .ok();
    (server, volume, store)
}

#[test]
fn the_postgres_18_0_data_link_survives_create_verify_restore() {
    let (server, volume, store) = linked_snapshot();
    let st = s(store.path());
    let m = Manifest::parse(&std::fs::read_to_string(store.path().join("linked.json")).unwrap())
        .unwrap();
    let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    assert_eq!(json["layout"]["data_link"], true, "{}", json["layout"]);
    let link: Vec<&Entry> = m
        .entries
        .iter()
        .filter(|e| e.kind == Kind::Symlink)
        .collect();
    assert_eq!(link.len(), 1, "{link:?}");
    assert_eq!(link[0].path, "postgresql/data");
    assert_eq!(link[0].link.as_deref(), Some("."));
    ward()
        .args(["snapshot", "verify", "linked", "--store", &st])
        .ok();
    let before = rows(&server);

    // Change the data and drop the link: the restore brings both back.
    server.psql("postgres", "DELETE FROM notes WHERE id % 3 = 0");
    dk::docker(&["exec", server.name(), "rm", &format!("{ROOT}/data")]);
    assert_ne!(rows(&server), before);
    ward()
        .args([
            "snapshot",
            "restore",
            "linked",
            "--container",
            server.name(),
        ])
        .args(["--store", &st, "--yes"])
        .ok();
    assert_eq!(rows(&server), before, "rows differ after the restore");
    assert_eq!(
        readlink(&server, &format!("{ROOT}/data")).as_deref(),
        Some("."),
        "the data -> . link was not recreated"
    );
    assert_eq!(
        dk::docker(&[
            "exec",
            server.name(),
            "stat",
            "-c",
            "%U",
            &format!("{ROOT}/data")
        ])
        .trim(),
        "postgres"
    );
    assert_eq!(dk::helpers(&volume), 0, "helpers left");
    // A second snapshot of the restored volume records the link again.
    ward()
        .args(["snapshot", "create", "again", "--container", server.name()])
        .args(["--store", &st])
        .ok();
    ward()
        .args(["snapshot", "verify", "again", "--store", &st])
        .ok();
}

#[test]
fn other_links_in_a_postgres_18_volume_are_refused_by_create_and_touch_nothing() {
    let (server, volume) = setup();
    let store = tempfile::tempdir().unwrap();
    let st = s(store.path());
    let before = rows(&server);
    for (link, target) in [
        (format!("{ROOT}/data"), ".."),
        (format!("{ROOT}/data"), "/"),
        (format!("{ROOT}/18/docker/data"), "."),
        (format!("{ROOT}/other"), "."),
    ] {
        dk::docker(&["exec", server.name(), "ln", "-s", target, &link]);
        let listing = volume_listing(&server);
        let r = ward()
            .args([
                "snapshot",
                "create",
                "hostile",
                "--container",
                server.name(),
            ])
            .args(["--store", &st])
            .run();
        let err = r.fails_with(2, "symbolic link");
        assert!(err.contains(target), "{link} -> {target}: {err}");
        assert!(server_running(&server), "{link} -> {target}: left stopped");
        dk::wait_ready(server.name());
        assert_eq!(volume_listing(&server), listing, "{link} -> {target}");
        assert_eq!(rows(&server), before);
        assert_eq!(
            std::fs::read_dir(store.path())
                .unwrap()
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect::<Vec<_>>(),
            Vec::<String>::new(),
            "{link} -> {target}: something was written to the store"
        );
        assert_eq!(dk::helpers(&volume), 0, "helpers left");
        dk::docker(&["exec", server.name(), "rm", &link]);
    }
}

fn server_running(server: &Server) -> bool {
    dk::running(server.name())
}

/// Rewrites snapshot `from` into `to` in the same store, passing each tar
/// entry through `edit` (None drops it; extra entries come after), with a
/// manifest an attacker made consistent (entries, sizes, hashes).
fn forge(
    store: &Path,
    from: &str,
    to: &str,
    edit: impl Fn(&str, &tar::Header) -> Option<(String, Option<String>)>,
    extra: &[(&str, Kind, &str)],
) {
    let m = Manifest::parse(&std::fs::read_to_string(store.join(format!("{from}.json"))).unwrap())
        .unwrap();
    let z = std::fs::File::open(store.join(format!("{from}.tar.zst"))).unwrap();
    let mut ar = tar::Archive::new(zstd::stream::read::Decoder::new(z).unwrap());
    let mut out = tar::Builder::new(Vec::new());
    let mut entries = Vec::new();
    let sha = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().display().to_string();
        let path = path.trim_end_matches('/').to_string();
        let header = e.header().clone();
        let Some((path, link)) = edit(&path, &header) else {
            continue;
        };
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut e, &mut data).unwrap();
        let mut h = header.clone();
        let kind = match header.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink,
            _ => Kind::File,
        };
        if let Some(l) = &link {
            h.set_link_name(l).unwrap();
        }
        let link = link.or_else(|| {
            let target = header.link_name().unwrap()?;
            Some(target.display().to_string())
        });
        out.append_data(&mut h, &path, &data[..]).unwrap();
        entries.push(Entry {
            path,
            mode: header.mode().unwrap(),
            size: if kind == Kind::File {
                data.len() as u64
            } else {
                0
            },
            sha256: (kind == Kind::File).then(|| sha(&data)),
            link,
            kind,
        });
    }
    for (path, kind, what) in extra {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o600);
        match kind {
            Kind::Symlink => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                h.set_link_name(what).unwrap();
                out.append_data(&mut h, path, &[][..]).unwrap();
            }
            _ => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(what.len() as u64);
                out.append_data(&mut h, path, what.as_bytes()).unwrap();
            }
        }
        entries.push(Entry {
            path: path.to_string(),
            kind: kind.clone(),
            mode: 0o600,
            size: if *kind == Kind::File {
                what.len() as u64
            } else {
                0
            },
            sha256: (*kind == Kind::File).then(|| sha(what.as_bytes())),
            link: (*kind == Kind::Symlink).then(|| what.to_string()),
        });
    }
    let tar = out.into_inner().unwrap();
    let id = format!("forged-{to}");
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    enc.include_checksum(true).unwrap();
    std::io::Write::write_all(&mut enc, &tar).unwrap();
    let body = [
        ward::snapshot::archive::id_frame(&id),
        enc.finish().unwrap(),
    ]
    .concat();
    let forged = Manifest {
        id,
        name: to.to_string(),
        archive_file: format!("{to}.tar.zst"),
        tar_bytes: tar.len() as u64,
        compressed_bytes: body.len() as u64,
        archive_sha256: sha(&body),
        total_bytes: entries.iter().map(|e| e.size).sum(),
        file_count: entries.iter().filter(|e| e.kind == Kind::File).count() as u64,
        entries,
        ..m
    };
    std::fs::write(store.join(format!("{to}.tar.zst")), &body).unwrap();
    std::fs::write(store.join(format!("{to}.json")), forged.to_json()).unwrap();
}

#[test]
fn forged_links_in_a_postgres_18_snapshot_are_refused_by_restore_and_touch_nothing() {
    let (server, volume, store) = linked_snapshot();
    let st = s(store.path());
    // The control: the forger itself, changing nothing, makes a snapshot
    // ward restores — so the refusals below are the policy's doing.
    forge(
        store.path(),
        "linked",
        "same",
        |p, _| Some((p.to_string(), None)),
        &[],
    );
    ward()
        .args(["snapshot", "verify", "same", "--store", &st])
        .ok();
    let is_link = |p: &str, h: &tar::Header| {
        p == "postgresql/data" && h.entry_type() == tar::EntryType::Symlink
    };
    forge(
        store.path(),
        "linked",
        "up",
        |p, h| Some((p.to_string(), is_link(p, h).then(|| "..".to_string()))),
        &[],
    );
    forge(
        store.path(),
        "linked",
        "slash",
        |p, h| Some((p.to_string(), is_link(p, h).then(|| "/".to_string()))),
        &[],
    );
    forge(
        store.path(),
        "linked",
        "deeper",
        |p, _| Some((p.to_string(), None)),
        &[("postgresql/18/docker/data", Kind::Symlink, ".")],
    );
    forge(
        store.path(),
        "linked",
        "below",
        |p, _| Some((p.to_string(), None)),
        &[(
            "postgresql/data/evil",
            Kind::File,
            "written through the link",
        )],
    );
    let before = rows(&server);
    let listing = volume_listing(&server);
    for (name, needle) in [
        ("up", "symlink"),
        ("slash", "symlink"),
        ("deeper", "symlink"),
        ("below", "below the `data -> .` link"),
    ] {
        let r = ward()
            .args(["snapshot", "verify", name, "--store", &st])
            .run();
        assert_eq!(r.code(), 1, "{name}: verify: {}{}", r.stdout(), r.stderr());
        let r = ward()
            .args(["snapshot", "restore", name, "--container", server.name()])
            .args(["--store", &st, "--yes"])
            .run();
        assert_eq!(r.code(), 1, "{name}: restore: {}", r.stderr());
        assert!(
            r.stderr().contains(needle),
            "{name}: want {needle:?} in {}",
            r.stderr()
        );
        assert!(server_running(&server), "{name}: left stopped");
        dk::wait_ready(server.name());
        assert_eq!(rows(&server), before, "{name}: rows changed");
        assert_eq!(
            volume_listing(&server),
            listing,
            "{name}: the volume changed"
        );
        assert_eq!(dk::helpers(&volume), 0, "{name}: helpers left");
    }
}

/// The layout of M3: a volume a `postgres:18.0` container initialised
/// with its cluster at the volume root and `data -> .` beside it, now run
/// with `PGDATA=/var/lib/postgresql/data` — PGDATA *is* the link.
fn linked_pgdata() -> dk::Pg {
    let image = "ward-test/postgres:18";
    let name = dk::unique("ward-test-pg18-linked");
    // A Pg of the 18 image: its container and volume are removed on drop.
    let l = dk::Pg {
        volume: format!("{name}-data"),
        name,
    };
    dk::docker(&["volume", "create", "--label", "ward.test=1", &l.volume]);
    let mount = format!("{}:{ROOT}", l.volume);
    // initdb at the volume root, then the link, as the 18.0 image left it.
    dk::docker(&[
        "run",
        "--rm",
        "--user",
        "postgres",
        "-v",
        &mount,
        "--entrypoint",
        "sh",
        image,
        "-c",
        "initdb -D /var/lib/postgresql -U postgres --auth=trust >/dev/null && ln -s . /var/lib/postgresql/data",
    ]);
    dk::docker(&[
        "run",
        "-d",
        "--name",
        &l.name,
        "--label",
        "ward.test=1",
        "-e",
        "POSTGRES_HOST_AUTH_METHOD=trust",
        "-e",
        &format!("PGDATA={ROOT}/data"),
        "-v",
        &mount,
        image,
        "-c",
        "fsync=off",
    ]);
    dk::wait_ready(&l.name);
    l
}

/// M3: a cold `create` of a container whose PGDATA is the `data -> .` link
/// refuses before it stops anything (running: the container was never
/// restarted; stopped: it stays stopped), names the link and the fix, and
/// writes nothing to the store.
#[test]
fn create_refuses_a_pgdata_that_is_the_data_link_before_stopping_anything() {
    let l = linked_pgdata();
    assert_eq!(
        readlink_in(&l.name, &format!("{ROOT}/data")).as_deref(),
        Some(".")
    );
    let store = tempfile::tempdir().unwrap();
    let st = s(store.path());
    let in_store = || {
        std::fs::read_dir(store.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect::<Vec<_>>()
    };
    for running in [true, false] {
        if !running {
            dk::docker(&["stop", &l.name]);
        }
        let since = dk::started_at(&l.name);
        let r = ward()
            .args(["snapshot", "create", "linked", "--container", &l.name])
            .args(["--store", &st])
            .run();
        let err = r.fails_with(2, "symbolic link");
        assert!(err.contains(&format!("PGDATA={ROOT}")), "{err}");
        assert!(err.contains("nothing was stopped"), "{err}");
        assert_eq!(dk::running(&l.name), running, "running={running}: {err}");
        assert_eq!(
            dk::started_at(&l.name),
            since,
            "running={running}: the container was stopped and started again"
        );
        assert_eq!(in_store(), Vec::<String>::new(), "running={running}");
        assert_eq!(dk::helpers(&l.volume), 0, "helpers left");
    }
}

fn readlink_in(container: &str, path: &str) -> Option<String> {
    let out = std::process::Command::new("docker")
        .args(["exec", container, "readlink", path])
        .output()
        .unwrap();
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}
