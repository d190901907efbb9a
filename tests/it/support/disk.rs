//! Small real file systems for the tests of a full disk: a tmpfs of a given
//! size (the tests run as root), the bytes the files under a directory take,
//! and a cluster whose data does not compress.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{Cluster, cluster, sql};

/// A stopped cluster holding ~100 MB that zstd cannot shrink (random bytes
/// stored as they are), so an archive or a staged copy of it is as big as
/// the data and outgrows a small file system mid-stream.
pub fn incompressible_cluster() -> Cluster {
    let mut cluster = cluster();
    sql(
        &cluster.url("postgres"),
        "CREATE TABLE scans(id int, image bytea);
         ALTER TABLE scans ALTER image SET STORAGE EXTERNAL;
         INSERT INTO scans SELECT g,
           (SELECT decode(string_agg(md5(random()::text || g || i), ''), 'hex')
            FROM generate_series(1, 1000) i)
         FROM generate_series(1, 6400) g",
    );
    cluster.stop().unwrap();
    cluster
}

/// A tmpfs of `bytes` at a fresh directory; unmounted when dropped.
pub struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `mode` is the mount's root mode (`0755`, `0700`).
    pub fn mount(bytes: u64, mode: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o"])
            .arg(format!("size={}k,mode={mode}", bytes.div_ceil(1024)))
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

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Bytes of every regular file under `dir` (what ward's estimates start from).
pub fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        let metadata = path.symlink_metadata().unwrap();
        if metadata.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if metadata.is_file() {
            total += metadata.len();
        }
    }
    total
}
