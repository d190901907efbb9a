//! Issue #14 item 17 (store side): a store that fills up while `snapshot
//! create` writes must be named in one clear line with how much was written,
//! and leave nothing half-written — no partial archive, no manifest. The
//! store is a real tmpfs mounted by the test (ward's tests run as root), just
//! big enough for ward's free-space estimate, and the data is random bytes
//! that do not compress, so the archive outgrows it mid-stream.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// A tmpfs of `bytes` at a fresh directory; unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(bytes: u64) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={}k,mode=0700", bytes.div_ceil(1024)))
            .arg("tmpfs")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mounting a tmpfs (the test needs root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Bytes of every file under `dir` (what ward's estimate starts from).
fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = p.symlink_metadata().unwrap();
        if md.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else {
            total += md.len();
        }
    }
    total
}

#[test]
fn a_store_that_fills_up_is_named_and_nothing_half_written_is_left() {
    let mut c = cluster();
    let url = c.url("postgres");
    // ~100 MB of random bytes, stored as they are (no compression).
    sql(
        &url,
        "CREATE TABLE scans(id int, image bytea);
         ALTER TABLE scans ALTER image SET STORAGE EXTERNAL;
         INSERT INTO scans SELECT g,
           (SELECT decode(string_agg(md5(random()::text || g || i), ''), 'hex')
            FROM generate_series(1, 1000) i)
         FROM generate_series(1, 6400) g",
    );
    c.stop().unwrap();
    let data = c.dir().join("data");
    // Room for ward's own estimate (60 % of the data plus 16 MiB) and a
    // little more: the pre-check passes, the incompressible archive does not fit.
    let raw = size_of(&data);
    let estimate = raw / 10 * 6 + 16 * 1024 * 1024;
    let store = Tmpfs::mount(estimate + 4 * 1024 * 1024);
    let r = ward()
        .args(["snapshot", "create", "scans", "--datadir"])
        .args([&data])
        .args(["--store"])
        .args([store.path()])
        .run();
    let err = r.fails_with(2, "is full");
    assert!(err.contains(&store.path().display().to_string()), "{err}");
    assert!(err.contains("written"), "{err}");
    assert!(!err.contains("No space left on device"), "{err}");
    let left: Vec<PathBuf> = files(store.path())
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n != ".lock"))
        .collect();
    assert!(left.is_empty(), "left in the store: {left:?}");
    // The source data directory is as it was.
    assert_eq!(size_of(&data), raw);
}
