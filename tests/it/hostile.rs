//! A corpus of hostile archives and manifests, generated here, run against
//! `verify` and a data-directory `restore`. The attacker is anyone who can
//! write the store: every manifest is made consistent with its archive (the
//! hashes recomputed), so only ward's entry policy and bindings stand in the
//! way. Each case must be refused with exit 1 and leave the surroundings of
//! the target — the data directory and a sibling holding "host" files —
//! exactly as they were (hashed before and after).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::support::docker as dk;
use crate::support::*;
use sha2::Digest;
use ward::snapshot::manifest::{Entry, FORMAT, Kind, Layout, Manifest};

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn sha(b: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(b))
}

/// One raw tar entry: a name (bytes, as written), a type, data, a link
/// target, and extension records written before it.
#[derive(Clone)]
struct Raw {
    name: Vec<u8>,
    kind: tar::EntryType,
    data: Vec<u8>,
    link: Vec<u8>,
    /// PAX records (key, value) in an 'x' header before the entry.
    pax: Vec<(String, String)>,
    /// A GNU long name ('L' header) before the entry.
    long_name: Option<Vec<u8>>,
    /// The size the header claims, when it lies.
    header_size: Option<u64>,
}

fn file(name: &str, data: &[u8]) -> Raw {
    Raw {
        name: name.as_bytes().to_vec(),
        kind: tar::EntryType::Regular,
        data: data.to_vec(),
        link: Vec::new(),
        pax: Vec::new(),
        long_name: None,
        header_size: None,
    }
}

fn dir(name: &str) -> Raw {
    Raw {
        kind: tar::EntryType::Directory,
        ..file(name, b"")
    }
}

fn link(name: &str, kind: tar::EntryType, target: &str) -> Raw {
    Raw {
        kind,
        link: target.as_bytes().to_vec(),
        ..file(name, b"")
    }
}

fn raw_header(name: &[u8], kind: tar::EntryType, size: u64, link: &[u8]) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(if kind == tar::EntryType::Directory {
        0o700
    } else {
        0o600
    });
    h.set_size(size);
    let old = h.as_old_mut();
    let n = name.len().min(100);
    old.name[..n].copy_from_slice(&name[..n]);
    let l = link.len().min(100);
    old.linkname[..l].copy_from_slice(&link[..l]);
    h.set_cksum();
    h
}

/// The tar bytes of `items`, written block by block (no tar-rs path checks).
fn tar_of(items: &[Raw]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut push = |h: &tar::Header, data: &[u8]| {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        out.extend(std::iter::repeat_n(0u8, pad));
    };
    for it in items {
        if !it.pax.is_empty() {
            let mut body = Vec::new();
            for (k, v) in &it.pax {
                let rec = format!(" {k}={v}\n");
                // The length counts itself.
                let mut len = rec.len() + 1;
                while format!("{len}{rec}").len() != len {
                    len += 1;
                }
                body.extend_from_slice(format!("{len}{rec}").as_bytes());
            }
            push(
                &raw_header(b"pax", tar::EntryType::XHeader, body.len() as u64, b""),
                &body,
            );
        }
        if let Some(long) = &it.long_name {
            let mut body = long.clone();
            body.push(0);
            push(
                &raw_header(
                    b"././@LongLink",
                    tar::EntryType::GNULongName,
                    body.len() as u64,
                    b"",
                ),
                &body,
            );
        }
        let size = it.header_size.unwrap_or(it.data.len() as u64);
        push(&raw_header(&it.name, it.kind, size, &it.link), &it.data);
    }
    out.extend(std::iter::repeat_n(0u8, 1024));
    out
}

/// A zstd frame of `tar` (checksum on), optionally led by ward's id frame.
fn compress(tar: &[u8], id: Option<&str>) -> Vec<u8> {
    let mut z = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
    z.include_checksum(true).unwrap();
    std::io::Write::write_all(&mut z, tar).unwrap();
    let body = z.finish().unwrap();
    match id {
        Some(id) => [ward::snapshot::archive::id_frame(id), body].concat(),
        None => body,
    }
}

/// A manifest that agrees with `items` as far as an attacker can make it.
fn manifest_of(name: &str, items: &[Raw], compressed: &[u8], tar: &[u8], id: &str) -> Manifest {
    let entries = items
        .iter()
        .map(|it| {
            let raw = it.long_name.clone().unwrap_or_else(|| it.name.clone());
            let path = String::from_utf8_lossy(&raw)
                .trim_start_matches("./")
                .trim_end_matches('/')
                .replace("/./", "/");
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
                link: (!it.link.is_empty()).then(|| String::from_utf8_lossy(&it.link).into()),
                kind,
                mode: 0o600,
            }
        })
        .collect();
    Manifest {
        format: FORMAT,
        id: id.into(),
        name: name.into(),
        created_at: chrono::Utc::now(),
        ward_version: "hostile".into(),
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
        total_bytes: items.iter().map(|i| i.data.len() as u64).sum(),
        tar_bytes: tar.len() as u64,
        compressed_bytes: compressed.len() as u64,
        archive_sha256: sha(compressed),
        archive_file: format!("{name}.tar.zst"),
        archive_carries_id: true,
        downtime_seconds: None,
        labels: Default::default(),
        database: None,
        last_verified: None,
        entries,
        template: None,
        encryption: None,
    }
}

/// Writes snapshot `name` built from `items` into the store.
fn put(store: &Path, name: &str, items: &[Raw]) -> Manifest {
    let tar = tar_of(items);
    let id = format!("id-{name}");
    let z = compress(&tar, Some(&id));
    let m = manifest_of(name, items, &z, &tar, &id);
    std::fs::write(store.join(format!("{name}.tar.zst")), &z).unwrap();
    std::fs::write(store.join(format!("{name}.json")), m.to_json()).unwrap();
    m
}

/// Everything under `root`: path → (type, mode, size, content hash or link).
fn fingerprint(root: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = p.symlink_metadata().unwrap();
        let rel = p.strip_prefix(root).unwrap().display().to_string();
        let what = if md.file_type().is_symlink() {
            format!("link {}", std::fs::read_link(&p).unwrap().display())
        } else if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
            "dir".to_string()
        } else {
            format!("file {}", sha(&std::fs::read(&p).unwrap()))
        };
        out.insert(
            rel,
            format!(
                "{what} {:o} {} {}",
                md.permissions().mode(),
                md.len(),
                md.mtime()
            ),
        );
    }
    out
}

/// A target data directory beside "host" files a hostile archive would love
/// to reach; returns (surroundings root, data directory).
fn surroundings() -> (tempfile::TempDir, std::path::PathBuf) {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::write(data.join("PG_VERSION"), "15\n").unwrap();
    std::fs::write(data.join("precious"), "patient rows").unwrap();
    let host = root.path().join("outside");
    std::fs::create_dir(&host).unwrap();
    std::fs::write(host.join("passwd"), "root:x:0:0").unwrap();
    (root, data)
}

/// Runs verify and restore on snapshot `name`; both must exit 1 naming
/// `needle`, and nothing around the target may change.
fn refused(store: &Path, name: &str, needle: &str) {
    let (root, data) = surroundings();
    let before = fingerprint(root.path());
    let r = ward()
        .args(["snapshot", "verify", name, "--store", &s(store)])
        .run();
    let said = format!("{}{}", r.stdout(), r.stderr());
    assert_eq!(r.code(), 1, "{name}: verify: {said}");
    assert!(
        said.contains(needle),
        "{name}: verify: want {needle:?} in {said}"
    );
    let r = ward()
        .args(["snapshot", "restore", name, "--store", &s(store)])
        .args(["--datadir", &s(&data), "--yes", "--no-safety"])
        .run();
    assert_eq!(r.code(), 1, "{name}: restore: {}", r.stderr());
    assert!(
        r.stderr().contains(needle),
        "{name}: restore: want {needle:?} in {}",
        r.stderr()
    );
    assert_eq!(
        fingerprint(root.path()),
        before,
        "{name}: the surroundings changed"
    );
}

fn ok_version() -> Raw {
    file("PG_VERSION", b"15\n")
}

#[test]
fn a_good_generated_snapshot_restores_so_the_corpus_tests_the_policy() {
    // The control: the same generator, nothing hostile, is accepted.
    let store = tempfile::tempdir().unwrap();
    put(
        store.path(),
        "good",
        &[ok_version(), dir("base"), file("base/1", b"rows")],
    );
    ward()
        .args(["snapshot", "verify", "good", "--store", &s(store.path())])
        .ok();
    let (_root, data) = surroundings();
    ward()
        .args(["snapshot", "restore", "good", "--store", &s(store.path())])
        .args(["--datadir", &s(&data), "--yes", "--no-safety"])
        .ok();
    assert_eq!(std::fs::read(data.join("base/1")).unwrap(), b"rows");
    assert!(!data.join("precious").exists(), "replaced, not merged");
}

/// The hostile entries: (snapshot name, entries, what the refusal says).
fn hostile_cases() -> Vec<(&'static str, Vec<Raw>, &'static str)> {
    use tar::EntryType::*;
    let long = "d/".repeat(2100) + "x";
    vec![
        (
            "dotdot",
            vec![ok_version(), file("base/../../outside/passwd", b"x")],
            "climbs out",
        ),
        (
            "absolute",
            vec![ok_version(), file("/tmp/ward-hostile-abs", b"x")],
            "absolute path",
        ),
        (
            "hardlink",
            vec![ok_version(), link("h", Link, "../outside/passwd")],
            "hard link",
        ),
        (
            "device",
            vec![ok_version(), file("dev", b"").with_kind(Char)],
            "device node",
        ),
        (
            "block",
            vec![ok_version(), file("blk", b"").with_kind(Block)],
            "device node",
        ),
        (
            "fifo",
            vec![ok_version(), file("fifo", b"").with_kind(Fifo)],
            "FIFO",
        ),
        (
            "duplicate",
            vec![ok_version(), file("PG_VERSION", b"15\n")],
            "duplicate",
        ),
        (
            "dot-duplicate",
            vec![
                ok_version(),
                dir("base"),
                file("base/1", b"a"),
                file("base/./1", b"a"),
            ],
            "duplicate",
        ),
        (
            "leading-dot-duplicate",
            vec![ok_version(), file("./PG_VERSION", b"15\n")],
            "duplicate",
        ),
        (
            "empty-component",
            vec![ok_version(), file("base//1", b"a")],
            "empty component",
        ),
        (
            "link-parent",
            vec![ok_version(), link("x", Symlink, "..")],
            "symbolic",
        ),
        (
            "link-escape",
            vec![ok_version(), link("pg_wal", Symlink, "../outside")],
            "symbolic",
        ),
        (
            "link-absolute",
            vec![ok_version(), link("pg_wal", Symlink, "/etc")],
            "symbolic",
        ),
        (
            "link-chain",
            vec![
                ok_version(),
                dir("a"),
                dir("a/b"),
                link("a/b/lnk", Symlink, "../.."),
                link("passwd", Symlink, "a/b/lnk/../outside/passwd"),
            ],
            "symbolic",
        ),
        (
            "write-through-link",
            vec![
                ok_version(),
                link("w", Symlink, "."),
                file("w/passwd", b"x"),
            ],
            "symbolic",
        ),
        (
            "pax-sparse-name",
            vec![
                ok_version(),
                file("innocent", b"x").with_pax("GNU.sparse.name", "../outside/passwd"),
            ],
            "GNU.sparse.name",
        ),
        (
            "pax-path-escape",
            vec![
                ok_version(),
                file("innocent", b"x").with_pax("path", "../outside/passwd"),
            ],
            "climbs out",
        ),
        (
            "pax-size-lie",
            vec![ok_version(), file("f", &[7u8; 600]).with_pax("size", "0")],
            "two sizes",
        ),
        (
            "long-name",
            vec![ok_version(), file("x", b"x").with_long_name(&long)],
            "bytes long",
        ),
        (
            "non-utf8",
            vec![
                ok_version(),
                Raw {
                    name: vec![b'x', 0xff],
                    ..file("", b"x")
                },
            ],
            "not UTF-8",
        ),
        (
            "sparse",
            vec![ok_version(), file("s", b"").with_kind(GNUSparse)],
            "damaged",
        ),
    ]
}

#[test]
fn hostile_entries_are_refused_by_verify_and_restore_and_touch_nothing() {
    let store = tempfile::tempdir().unwrap();
    for (name, items, needle) in &hostile_cases() {
        put(store.path(), name, items);
        refused(store.path(), name, needle);
    }
    assert!(!Path::new("/tmp/ward-hostile-abs").exists());
}

#[test]
fn size_lies_and_truncation_are_refused() {
    let store = tempfile::tempdir().unwrap();
    // The header claims more than the archive holds.
    let items = vec![
        ok_version(),
        file("big", b"short").with_header_size(1 << 20),
    ];
    let tar = tar_of(&items);
    let z = compress(&tar, Some("id-liar"));
    let mut m = manifest_of("liar", &items, &z, &tar, "id-liar");
    m.total_bytes = 1 << 21;
    for e in &mut m.entries {
        if e.path == "big" {
            e.size = 1 << 20;
        }
    }
    std::fs::write(store.path().join("liar.tar.zst"), &z).unwrap();
    std::fs::write(store.path().join("liar.json"), m.to_json()).unwrap();
    refused(store.path(), "liar", "does not match the manifest");
    // More data than the manifest's total.
    let items = vec![ok_version(), file("big", &[1u8; 10_000])];
    let mut m = put(store.path(), "over", &items);
    m.total_bytes = 100;
    std::fs::write(store.path().join("over.json"), m.to_json()).unwrap();
    refused(store.path(), "over", "past the");
}

#[test]
fn renamed_swapped_and_broken_manifests_are_damage() {
    let store = tempfile::tempdir().unwrap();
    let st = store.path();
    put(st, "base", &[ok_version(), file("a", b"base")]);
    put(st, "other", &[ok_version(), file("a", b"other")]);
    // base.* copied under another name.
    for ext in ["json", "tar.zst"] {
        std::fs::copy(
            st.join(format!("base.{ext}")),
            st.join(format!("before-upgrade.{ext}")),
        )
        .unwrap();
    }
    refused(st, "before-upgrade", "not \"before-upgrade\"");
    // The archive of another snapshot, its hash recorded in this manifest.
    std::fs::copy(st.join("other.tar.zst"), st.join("swapped.tar.zst")).unwrap();
    let mut m: Manifest =
        Manifest::parse(&std::fs::read_to_string(st.join("base.json")).unwrap()).unwrap();
    let z = std::fs::read(st.join("other.tar.zst")).unwrap();
    m.name = "swapped".into();
    m.archive_file = "swapped.tar.zst".into();
    m.archive_sha256 = sha(&z);
    m.compressed_bytes = z.len() as u64;
    std::fs::write(st.join("swapped.json"), m.to_json()).unwrap();
    refused(st, "swapped", "belongs to snapshot id id-other");
    // An archive stripped of its id while the manifest says it carries one.
    let tar = tar_of(&[ok_version()]);
    let bare = compress(&tar, None);
    let mut m = manifest_of("stripped", &[ok_version()], &bare, &tar, "id-stripped");
    m.archive_carries_id = true;
    std::fs::write(st.join("stripped.tar.zst"), &bare).unwrap();
    std::fs::write(st.join("stripped.json"), m.to_json()).unwrap();
    refused(st, "stripped", "does not carry the snapshot id");
    // Broken JSON.
    std::fs::copy(st.join("base.tar.zst"), st.join("broken.tar.zst")).unwrap();
    std::fs::write(st.join("broken.json"), "{\"format\": 1, \"id\": ").unwrap();
    refused(st, "broken", "unreadable");
    // list shows the renamed and broken ones as unreadable; prune never acts on them.
    let j = ward()
        .args(["snapshot", "list", "--json", "--store", &s(st)])
        .ok()
        .json();
    let names: Vec<&str> = j["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["name"].as_str())
        .collect();
    assert!(names.contains(&"base") && names.contains(&"other"), "{j}");
    for bad in ["before-upgrade", "broken"] {
        assert!(!names.contains(&bad), "{bad} listed as good: {j}");
    }
    ward()
        .args([
            "snapshot",
            "prune",
            "--keep-last",
            "1",
            "--yes",
            "--store",
            &s(st),
        ])
        .ok();
    for kept in ["before-upgrade", "broken"] {
        assert!(
            st.join(format!("{kept}.json")).exists(),
            "prune must not touch {kept}, whose manifest is not its own"
        );
    }
}

trait RawExt {
    fn with_kind(self, kind: tar::EntryType) -> Raw;
    fn with_pax(self, key: &str, value: &str) -> Raw;
    fn with_long_name(self, name: &str) -> Raw;
    fn with_header_size(self, size: u64) -> Raw;
}

impl RawExt for Raw {
    fn with_kind(mut self, kind: tar::EntryType) -> Raw {
        self.kind = kind;
        self
    }
    fn with_pax(mut self, key: &str, value: &str) -> Raw {
        self.pax.push((key.into(), value.into()));
        self
    }
    fn with_long_name(mut self, name: &str) -> Raw {
        self.long_name = Some(name.as_bytes().to_vec());
        self
    }
    fn with_header_size(mut self, size: u64) -> Raw {
        self.header_size = Some(size);
        self
    }
}

#[test]
fn restore_checks_free_space_before_touching_anything() {
    let store = tempfile::tempdir().unwrap();
    let mut m = put(store.path(), "huge", &[ok_version(), file("a", b"x")]);
    // Declares an exabyte: verify is fine with a cap that high, the disk is not.
    m.total_bytes = 1 << 60;
    std::fs::write(store.path().join("huge.json"), m.to_json()).unwrap();
    let (root, data) = surroundings();
    let before = fingerprint(root.path());
    let r = ward()
        .args(["snapshot", "restore", "huge", "--store", &s(store.path())])
        .args(["--datadir", &s(&data), "--yes", "--no-safety"])
        .run();
    assert_eq!(r.code(), 2, "{}", r.stderr());
    assert!(
        r.stderr().contains("not enough free space") && r.stderr().contains("needed"),
        "{}",
        r.stderr()
    );
    assert_eq!(fingerprint(root.path()), before);
}

/// What a hostile restore could change in a Docker volume: the name of
/// every path (the server's own churn — WAL, statistics, relcache init
/// files — aside), the
/// contents of the files the server does not rewrite, and the rows.
fn volume_fingerprint(pg: &dk::Pg) -> String {
    let listing = dk::docker(&[
        "run",
        "--rm",
        "--label",
        "ward.test=1",
        "--network",
        "none",
        "-v",
        &format!("{}:/v:ro", pg.volume),
        "--entrypoint",
        "sh",
        dk::IMAGE,
        "-c",
        "cd /v && find . -path ./pg_wal -prune -o -path ./pg_stat_tmp -prune -o \\
         -path ./pg_stat -prune -o -path ./pg_logical -prune -o \\
         ! -name pg_internal.init -print | sort && \\
         sha256sum precious PG_VERSION postgresql.conf pg_hba.conf",
    ]);
    format!("{listing}\n{:?}", pg.checksums())
}

#[test]
fn hostile_archives_restored_into_a_docker_volume_touch_nothing() {
    let store = tempfile::tempdir().unwrap();
    let pg = dk::Pg::start();
    pg.psql("CREATE TABLE visits(id int PRIMARY KEY, note text); INSERT INTO visits SELECT g, md5(g::text) FROM generate_series(1, 500) g");
    dk::docker(&[
        "exec",
        &pg.name,
        "sh",
        "-c",
        "echo patient rows > /var/lib/postgresql/data/precious",
    ]);
    let mut cases = hostile_cases();
    // A size lie: the header claims more than the archive holds.
    let liar = vec![
        ok_version(),
        file("big", b"short").with_header_size(1 << 20),
    ];
    cases.push(("liar", liar, "does not match the manifest"));
    let before = volume_fingerprint(&pg);
    for (name, items, needle) in &cases {
        let mut m = put(store.path(), name, items);
        if *name == "liar" {
            m.total_bytes = 1 << 21;
            for e in m.entries.iter_mut().filter(|e| e.path == "big") {
                e.size = 1 << 20;
            }
            std::fs::write(store.path().join("liar.json"), m.to_json()).unwrap();
        }
        let r = ward()
            .args(["snapshot", "restore", name, "--store", &s(store.path())])
            .args(["--container", &pg.name, "--yes", "--no-safety"])
            .run();
        assert_eq!(r.code(), 1, "{name}: restore: {}", r.stderr());
        assert!(
            r.stderr().contains(needle),
            "{name}: want {needle:?} in {}",
            r.stderr()
        );
        assert!(pg.running(), "{name}: the container was left stopped");
        assert_eq!(dk::helpers(&pg.volume), 0, "{name}: helpers left");
        assert_eq!(
            volume_fingerprint(&pg),
            before,
            "{name}: the volume changed"
        );
    }
    assert!(!Path::new("/tmp/ward-hostile-abs").exists());
}
