//! Where snapshots live: a directory holding `<name>.tar.zst` + `<name>.json`.
//!
//! Writes go to a dot-prefixed temporary name, are fsynced and renamed, and the
//! manifest is renamed into place last — a snapshot is whole only once both
//! files are in place. A crash or `kill -9` before the archive's rename leaves
//! an invisible temporary file, which the next writer removes; one between the
//! two renames leaves an archive without its manifest, which `list` shows as
//! incomplete and `delete NAME` removes (it holds real data, so it is never
//! hidden nor removed unasked). Files are 0600, the directory 0700. A lock
//! file stops two ward processes writing one store.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::manifest::Manifest;
use crate::error::UsageError;

pub const ARCHIVE_EXT: &str = ".tar.zst";
pub const MANIFEST_EXT: &str = ".json";

#[derive(Debug, Clone)]
pub struct Store {
    pub dir: PathBuf,
}

/// Held while writing; released on drop (and by the OS if ward dies).
#[derive(Debug)]
pub struct StoreLock {
    _file: File,
}

/// A listed snapshot, a manifest that cannot be read, or an archive whose
/// manifest was never written (a create interrupted between its two renames).
#[derive(Debug)]
pub enum Listed {
    Ok(Box<Manifest>),
    Unreadable { name: String, problem: String },
    Incomplete { name: String, archive_bytes: u64 },
}

/// Whether `path` is there, without following a symlink: a dangling link in
/// the store still takes the name, and `delete` removes the link itself.
fn present(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Checks a snapshot name: letters, digits, `.`, `_`, `-`; not starting with `.`.
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 100
        && !name.starts_with('.')
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        crate::error::usage(format!(
            "invalid snapshot name {name:?} — use up to 100 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
        ))
    }
}

/// Checks that a manifest found under `name` is that snapshot's: a copy
/// of `base.*` renamed to `other.*` still names `base` inside, and acting on
/// it (restore, prune) would mix the two up.
fn bound(name: &str, m: &Manifest) -> std::result::Result<(), String> {
    if m.name != name {
        return Err(format!(
            "the manifest is of snapshot {:?}, not {name:?} (renamed or copied by hand) — \
             ward will not use it",
            m.name
        ));
    }
    let archive = format!("{name}{ARCHIVE_EXT}");
    if m.template.is_none() && m.archive_file != archive {
        return Err(format!(
            "the manifest names the archive {:?}, not {archive:?} — ward will not use it",
            m.archive_file
        ));
    }
    Ok(())
}

impl Store {
    /// Opens (creating if needed, mode 0700) a store directory.
    pub fn open(dir: &Path) -> Result<Store> {
        if !dir.exists() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the snapshot store {}", dir.display()))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        } else if !dir.is_dir() {
            return crate::error::usage(format!(
                "the snapshot store {} is not a directory — pass another --store or set WARD_STORE",
                dir.display()
            ));
        }
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// Takes the writer lock, or fails at once if another ward holds it.
    pub fn lock(&self) -> Result<StoreLock> {
        let path = self.dir.join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                return Err(UsageError(format!(
                    "another ward process is writing to the snapshot store {} — wait for it to finish",
                    self.dir.display()
                ))
                .into());
            }
            Err(fs4::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        let lock = StoreLock { _file: file };
        self.remove_stale();
        Ok(lock)
    }

    /// Temporary files left by a writer that died (only called under the lock).
    fn remove_stale(&self) {
        if let Ok(rd) = std::fs::read_dir(&self.dir) {
            for e in rd.flatten() {
                let n = e.file_name().to_string_lossy().into_owned();
                if n.starts_with('.') && n.contains(".tmp") {
                    tracing::info!("removing the unfinished {n} left by an interrupted ward");
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }

    pub fn archive_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{ARCHIVE_EXT}"))
    }

    pub fn manifest_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{MANIFEST_EXT}"))
    }

    pub fn exists(&self, name: &str) -> bool {
        present(&self.manifest_path(name)) || present(&self.archive_path(name))
    }

    /// An archive in place without its manifest: a create that died between
    /// the two renames of `commit`.
    pub fn incomplete(&self, name: &str) -> bool {
        present(&self.archive_path(name)) && !present(&self.manifest_path(name))
    }

    fn incomplete_error(&self, name: &str) -> anyhow::Error {
        UsageError(format!(
            "snapshot {name:?} in {} is incomplete: its archive has no manifest (a create was              interrupted) — `ward snapshot delete {name}` removes it",
            self.dir.display()
        ))
        .into()
    }

    /// Bytes available to ward in the store's file system.
    pub fn available(&self) -> Result<u64> {
        fs4::available_space(&self.dir)
            .with_context(|| format!("cannot read the free space of {}", self.dir.display()))
    }

    /// A new temporary archive file (0600).
    pub fn temp_archive(&self, name: &str) -> Result<(PathBuf, File)> {
        let path = self
            .dir
            .join(format!(".{name}{ARCHIVE_EXT}.tmp-{}", std::process::id()));
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok((path, file))
    }

    /// Moves a finished (fsynced) archive into place and writes its manifest.
    /// The manifest is written (to its temporary name) first: a store that
    /// fills up then fails before the archive is named. An error removes the
    /// archive again unless its manifest is in place; only a crash between the
    /// two renames leaves the archive alone, listed as incomplete.
    pub fn commit(&self, temp: &Path, manifest: &Manifest) -> Result<()> {
        let manifest_tmp = self.prepare_manifest(manifest)?;
        let final_archive = self.archive_path(&manifest.name);
        let placed = std::fs::rename(temp, &final_archive)
            .with_context(|| format!("cannot rename into {}", final_archive.display()))
            .and_then(|()| self.sync_dir())
            .and_then(|()| self.place_manifest(&manifest_tmp, &manifest.name));
        if placed.is_err() {
            let _ = std::fs::remove_file(&manifest_tmp);
            if !self.manifest_path(&manifest.name).exists() {
                let _ = std::fs::remove_file(&final_archive);
            }
        }
        placed
    }

    /// Writes (or replaces) a manifest atomically.
    pub fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let tmp = self.prepare_manifest(manifest)?;
        let placed = self.place_manifest(&tmp, &manifest.name);
        if placed.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        placed
    }

    /// The manifest, written and fsynced under a temporary name.
    fn prepare_manifest(&self, manifest: &Manifest) -> Result<PathBuf> {
        let tmp = self.dir.join(format!(
            ".{}{MANIFEST_EXT}.tmp-{}",
            manifest.name,
            std::process::id()
        ));
        let written = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(manifest.to_json().as_bytes())?;
                f.sync_all()
            })
            .with_context(|| format!("cannot write {}", tmp.display()));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map(|()| tmp)
    }

    fn place_manifest(&self, tmp: &Path, name: &str) -> Result<()> {
        let path = self.manifest_path(name);
        std::fs::rename(tmp, &path)
            .with_context(|| format!("cannot rename into {}", path.display()))?;
        // The manifest is in place, so the snapshot exists (and is listed)
        // whatever happens next: an error here would have the caller report
        // that nothing was kept. A failed directory fsync (e.g. ENOSPC) only
        // means the rename might not survive a power cut — worth a warning.
        if let Err(e) = super::fault("store:sync-after-manifest").and_then(|()| self.sync_dir()) {
            tracing::warn!(
                "{e:#} — snapshot {name:?} is in place, but its manifest may not survive a power \
                 cut until that file system is synced"
            );
        }
        Ok(())
    }

    fn sync_dir(&self) -> Result<()> {
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .with_context(|| format!("cannot sync {}", self.dir.display()))
    }

    /// Loads one snapshot's manifest, with a clear error when it is not there.
    pub fn load(&self, name: &str) -> Result<Manifest> {
        check_name(name)?;
        let path = self.manifest_path(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if self.incomplete(name) {
                    return Err(self.incomplete_error(name));
                }
                return crate::error::usage(format!(
                    "no snapshot named {name:?} in {} — `ward snapshot list` shows what there is",
                    self.dir.display()
                ));
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let m = Manifest::parse(&text).map_err(|e| {
            super::Damaged(format!(
                "the manifest {} is unreadable: {e}",
                path.display()
            ))
        })?;
        bound(name, &m).map_err(|why| super::Damaged(format!("{}: {why}", path.display())))?;
        Ok(m)
    }

    /// Every snapshot, oldest first.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.dir.display())),
        };
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with('.') {
                continue;
            }
            if let Some(name) = n.strip_suffix(ARCHIVE_EXT)
                && check_name(name).is_ok()
                && self.incomplete(name)
            {
                // The entry's own metadata: a symlink is not followed.
                let archive_bytes = e.metadata().map(|m| m.len()).unwrap_or(0);
                out.push(Listed::Incomplete {
                    name: name.to_string(),
                    archive_bytes,
                });
                continue;
            }
            let Some(name) = n.strip_suffix(MANIFEST_EXT) else {
                continue;
            };
            match std::fs::read_to_string(e.path())
                .map_err(anyhow::Error::from)
                .and_then(|t| Manifest::parse(&t))
                .and_then(|m| bound(name, &m).map(|()| m).map_err(anyhow::Error::msg))
            {
                Ok(m) => out.push(Listed::Ok(Box::new(m))),
                Err(err) => out.push(Listed::Unreadable {
                    name: name.to_string(),
                    problem: err.to_string(),
                }),
            }
        }
        out.sort_by(|a, b| match (a, b) {
            (Listed::Ok(a), Listed::Ok(b)) => a.created_at.cmp(&b.created_at),
            (Listed::Ok(_), _) => std::cmp::Ordering::Less,
            (_, Listed::Ok(_)) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal,
        });
        Ok(out)
    }

    /// Removes a snapshot: the manifest first (so it stops being listed), then
    /// the archive. Each is unlinked by name — a symlink is removed, never
    /// what it points to.
    pub fn delete(&self, name: &str) -> Result<()> {
        check_name(name)?;
        if !self.exists(name) {
            return crate::error::usage(format!(
                "no snapshot named {name:?} in {} — `ward snapshot list` shows what there is",
                self.dir.display()
            ));
        }
        for p in [self.manifest_path(name), self.archive_path(name)] {
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).with_context(|| format!("cannot remove {}", p.display())),
            }
        }
        self.sync_dir()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["db-20260101", "a", "x.y_z"] {
            check_name(ok).unwrap();
        }
        for bad in ["", ".hidden", "../x", "a/b", "-x", "sp ace"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_lock_is_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let l = store.lock().unwrap();
        let err = store.lock().unwrap_err().to_string();
        assert!(err.contains("another ward process"), "{err}");
        drop(l);
        store.lock().unwrap();
    }
}

/// What a running create/restore is doing to a container, kept on disk so
/// that the next ward can repair what a `kill -9` (or a power cut) left: a
/// stopped container is restarted; a half-replaced volume is reported with
/// the safety snapshot that holds the previous data.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct JournalEntry {
    pub pid: u32,
    pub operation: String,
    pub container: String,
    pub was_running: bool,
    /// "stopped" (data untouched), "replacing" (volume being replaced) or
    /// "restored" (new data in place).
    pub phase: String,
    pub snapshot: String,
    pub safety: Option<String>,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

/// A live journal; removed when dropped (ward finished, also with an error it
/// handled). Only a killed ward leaves it behind.
#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    pub entry: JournalEntry,
}

impl Journal {
    pub fn set(&mut self, phase: &str, safety: Option<String>) -> Result<()> {
        self.entry.phase = phase.to_string();
        if safety.is_some() {
            self.entry.safety = safety;
        }
        write_json(&self.path, &self.entry)
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<()> {
    let tmp = path.with_extension("json.tmp");
    {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(serde_json::to_string_pretty(value)?.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

impl Store {
    /// Starts a journal (call while holding the lock).
    pub fn journal(&self, entry: JournalEntry) -> Result<Journal> {
        let path = self.dir.join(format!(".journal-{}.json", entry.pid));
        write_json(&path, &entry)?;
        Ok(Journal { path, entry })
    }

    /// Journals of ward processes that died (call while holding the lock: then
    /// every journal on disk is stale).
    pub fn stale_journals(&self) -> Vec<(PathBuf, JournalEntry)> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).into_iter().flatten().flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with(".journal-")
                && n.ends_with(".json")
                && let Ok(text) = std::fs::read_to_string(e.path())
                && let Ok(j) = serde_json::from_str::<JournalEntry>(&text)
                && j.pid != std::process::id()
            {
                out.push((e.path(), j));
            }
        }
        out
    }
}
