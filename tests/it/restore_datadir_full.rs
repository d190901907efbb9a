//! Issue #13 point 6: a `--datadir` restore whose file system fills up in the
//! middle of staging (the pre-check saw room; then something else took it —
//! the way a busy host does) must say in one line that the file system is
//! full, name where and how much is free, exit 2, and leave the old data
//! directory exactly as it was, with no staging copy beside it. The file
//! system is a real tmpfs mounted by the test (CI runs as root); a watcher
//! fills it the moment ward creates its staging directory.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::disk::{Tmpfs, incompressible_cluster, size_of};
use crate::support::*;
use sha2::Digest;

/// Every path under `dir` with its type, mode, owner and content hash.
fn fingerprint(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = p.symlink_metadata().unwrap();
        let what = if md.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
            "dir".to_string()
        } else {
            hex::encode(sha2::Sha256::digest(std::fs::read(&p).unwrap()))
        };
        let rel = p.strip_prefix(dir).unwrap().display().to_string();
        let facts = format!("{what} {:o} {}:{}", md.mode(), md.uid(), md.gid());
        out.insert(rel, facts);
    }
    out
}

/// ward's staging directories beside the data directory.
fn staging_copies(parent: &Path) -> Vec<String> {
    std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".ward-restore-"))
        .collect()
}

/// Waits (60 s at most) for ward's staging directory to appear in
/// `parent`, then takes every free byte of the file system. Returns
/// whether it got to fill it.
fn fill_once_staging_starts(parent: PathBuf) -> std::thread::JoinHandle<bool> {
    std::thread::spawn(move || {
        let deadline = Instant::now() + Duration::from_secs(60);
        while staging_copies(&parent).is_empty() {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let free = Command::new("df")
            .args(["-B1", "--output=avail"])
            .arg(&parent)
            .output()
            .unwrap();
        let free: u64 = String::from_utf8_lossy(&free.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Most of it at once, the rest (whatever ward's staging left)
        // byte by byte until the file system says it is full.
        let _ = Command::new("fallocate")
            .args(["-l", &(free / 10 * 9).to_string()])
            .arg(parent.join("filler"))
            .status();
        let rest = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k", "status=none"])
            .arg(format!("of={}", parent.join("filler-rest").display()))
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        // dd stops only when the file system is full.
        !rest.success()
    })
}

#[test]
fn a_datadir_restore_that_runs_out_of_disk_mid_staging_says_full_and_keeps_the_old_data() {
    // ~100 MB that zstd cannot shrink: staging takes long enough for the
    // watcher to fill the file system under it.
    let c = incompressible_cluster();
    let source = c.dir().join("data");
    let store = tempfile::tempdir().unwrap();
    ward()
        .args(["snapshot", "create", "scans", "--datadir"])
        .args([&source])
        .args(["--store"])
        .args([store.path()])
        .ok();
    // Room for the old data, the staged copy and ward's headroom: the
    // free-space pre-check passes.
    let raw = size_of(&source);
    let fs = Tmpfs::mount(raw * 3 + 64 * 1024 * 1024, "0755");
    let data = fs.path().join("data");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&source)
        .arg(&data)
        .status()
        .unwrap();
    assert!(cp.success());
    let before = fingerprint(&data);

    let filler = fill_once_staging_starts(fs.path().to_path_buf());
    let r = ward()
        .args(["snapshot", "restore", "scans", "--datadir"])
        .args([&data])
        .args(["--store"])
        .args([store.path()])
        .args(["--yes"])
        .run();
    assert!(
        filler.join().unwrap(),
        "the watcher never saw ward's staging directory: {}",
        r.stderr()
    );
    let err = r.fails_with(2, "is full");
    let place = fs.path().display().to_string();
    assert!(err.contains(&place), "the message names no place: {err}");
    assert!(err.contains(" free"), "the message gives no numbers: {err}");
    assert!(
        err.contains("nothing was changed"),
        "the message does not say the data is safe: {err}"
    );
    assert!(!err.contains("No space left on device"), "{err}");
    assert_eq!(fingerprint(&data), before, "the old data directory changed");
    assert_eq!(
        staging_copies(fs.path()),
        Vec::<String>::new(),
        "a staging copy was left beside the data directory"
    );
}
