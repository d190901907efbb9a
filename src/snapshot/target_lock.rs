//! The per-target locks: while one ward reads or replaces a volume or data
//! directory, no other ward (from this or another store) touches it. One
//! flock'd file per target in ward's state directory.

use anyhow::Result;

use super::volume;
use crate::target::Target;

/// Held while ward reads or replaces a target's data; released on drop (and
/// by the OS if ward dies).
#[derive(Debug)]
pub struct TargetLock {
    _file: std::fs::File,
}

/// The key a target is locked and journalled under.
pub(super) fn target_key(target: &Target) -> String {
    match target {
        Target::Volume(v) => volume_key(&v.volume.name),
        Target::Datadir(d) => format!(
            "datadir:{}",
            std::fs::canonicalize(d)
                .unwrap_or_else(|_| d.clone())
                .display()
        ),
    }
}

pub(super) fn volume_key(volume: &str) -> String {
    format!("volume:{volume}")
}

/// Where a target's lock lives: one file per volume or data directory, in
/// ward's state directory — the same directory, derived by the same
/// function, as the targets' journals — which every ward of this user on
/// this host shares whatever its store or working directory. So a restore
/// from one store and a snapshot into another cannot interleave on the same
/// data, and whoever holds a target's lock is the only one who may read or
/// repair its journal.
pub fn target_lock_path(target: &Target) -> std::path::PathBuf {
    key_lock_path(&target_key(target))
}

fn key_lock_path(key: &str) -> std::path::PathBuf {
    volume::state_dir().join("locks").join(format!(
        "target-{:016x}.lock",
        crate::seed::rng::fnv1a(key.as_bytes())
    ))
}

/// Opens (creating it, 0600, in a 0700 directory) the file an flock is taken
/// on. Shared by the target locks and `ward backup`'s run lock.
pub(crate) fn open_lock_file(path: &std::path::Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                anyhow::anyhow!("cannot create ward's lock directory {}: {e}", dir.display())
            })?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock {}: {e}", path.display()))
}

/// Takes the lock of `key`: `None` if another ward holds it.
pub(super) fn try_lock_key(key: &str) -> Result<Option<TargetLock>> {
    let path = key_lock_path(key);
    let file = open_lock_file(&path)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(Some(TargetLock { _file: file })),
        Err(fs4::TryLockError::WouldBlock) => Ok(None),
        Err(fs4::TryLockError::Error(e)) => {
            Err(anyhow::anyhow!("cannot lock {}: {e}", path.display()))
        }
    }
}

/// Takes the target's lock, or fails at once if another ward holds it.
pub fn lock_target(target: &Target) -> Result<TargetLock> {
    match try_lock_key(&target_key(target))? {
        Some(lock) => Ok(lock),
        None => Err(crate::error::Busy(format!(
            "another ward process is snapshotting or restoring {} (from this or another store) — \
             wait for it to finish",
            target.describe()
        ))
        .into()),
    }
}
