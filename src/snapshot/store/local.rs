//! A directory as a snapshot store.
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
use std::io::{BufWriter, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{ARCHIVE_EXT, Listed, MANIFEST_EXT, check_name, parse_bound};
use crate::snapshot::manifest::Manifest;

/// Whether `path` is there, without following a symlink: a dangling link in
/// the store still takes the name, and `delete` removes the link itself.
fn present(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

fn archive_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{ARCHIVE_EXT}"))
}

fn manifest_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{MANIFEST_EXT}"))
}

/// Opens (creating if needed, mode 0700) a store directory.
pub(super) fn open(dir: &Path) -> Result<()> {
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
    Ok(())
}

/// Takes the writer lock, or fails at once if another ward holds it.
pub(super) fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(".lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(file),
        Err(fs4::TryLockError::WouldBlock) => Err(crate::error::Busy(format!(
            "another ward process is writing to the snapshot store {} — wait for it to finish",
            dir.display()
        ))
        .into()),
        Err(fs4::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

/// Temporary files left by a writer that died (only called under the lock).
pub(super) fn remove_stale(dir: &Path) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with('.') && n.contains(".tmp") {
                tracing::info!("removing the unfinished {n} left by an interrupted ward");
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

pub(super) fn exists(dir: &Path, name: &str) -> bool {
    present(&manifest_path(dir, name)) || present(&archive_path(dir, name))
}

pub(super) fn incomplete(dir: &Path, name: &str) -> bool {
    present(&archive_path(dir, name)) && !present(&manifest_path(dir, name))
}

/// A temporary archive file (0600), removed on drop unless placed.
pub(crate) struct TempArchive {
    path: PathBuf,
    file: Option<BufWriter<File>>,
}

impl TempArchive {
    pub(super) fn create(dir: &Path, name: &str) -> Result<TempArchive> {
        let path = dir.join(format!(".{name}{ARCHIVE_EXT}.tmp-{}", std::process::id()));
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(TempArchive {
            path,
            file: Some(BufWriter::with_capacity(256 * 1024, file)),
        })
    }

    /// Flushes and fsyncs the file.
    pub(super) fn sync(&mut self) -> Result<()> {
        if let Some(f) = self.file.as_mut() {
            f.flush().context("writing the archive")?;
            f.get_ref()
                .sync_all()
                .context("syncing the archive to disk")?;
        }
        Ok(())
    }
}

impl Write for TempArchive {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.file.as_mut() {
            Some(f) => f.write(buf),
            None => Err(std::io::Error::other("the archive was already placed")),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.flush())
    }
}

impl Drop for TempArchive {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Moves a finished (fsynced) archive into place and writes its manifest.
/// The manifest is written (to its temporary name) first: a store that
/// fills up then fails before the archive is named. An error removes the
/// archive again unless its manifest is in place; only a crash between the
/// two renames leaves the archive alone, listed as incomplete.
pub(super) fn commit(
    dir: &Path,
    mut temp: TempArchive,
    manifest: &Manifest,
    before_manifest: &mut dyn FnMut() -> Result<()>,
) -> Result<()> {
    let manifest_tmp = prepare_manifest(dir, manifest)?;
    let final_archive = archive_path(dir, &manifest.name);
    let placed = std::fs::rename(&temp.path, &final_archive)
        .with_context(|| format!("cannot rename into {}", final_archive.display()));
    if placed.is_ok() {
        // Placed: the temporary name is gone, nothing to remove on drop.
        temp.file = None;
    }
    let placed = placed
        .and_then(|()| sync_dir(dir))
        .and_then(|()| before_manifest())
        .and_then(|()| place_manifest(dir, &manifest_tmp, &manifest.name));
    if placed.is_err() {
        let _ = std::fs::remove_file(&manifest_tmp);
        if !manifest_path(dir, &manifest.name).exists() {
            let _ = std::fs::remove_file(&final_archive);
        }
    }
    placed
}

/// Writes (or replaces) a manifest atomically.
pub(super) fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    let tmp = prepare_manifest(dir, manifest)?;
    let placed = place_manifest(dir, &tmp, &manifest.name);
    if placed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    placed
}

/// The manifest, written and fsynced under a temporary name.
fn prepare_manifest(dir: &Path, manifest: &Manifest) -> Result<PathBuf> {
    let tmp = dir.join(format!(
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

fn place_manifest(dir: &Path, tmp: &Path, name: &str) -> Result<()> {
    let path = manifest_path(dir, name);
    std::fs::rename(tmp, &path)
        .with_context(|| format!("cannot rename into {}", path.display()))?;
    // The manifest is in place, so the snapshot exists (and is listed)
    // whatever happens next: an error here would have the caller report
    // that nothing was kept. A failed directory fsync (e.g. ENOSPC) only
    // means the rename might not survive a power cut — worth a warning.
    if let Err(e) = crate::snapshot::fault("store:sync-after-manifest").and_then(|()| sync_dir(dir))
    {
        tracing::warn!(
            "{e:#} — snapshot {name:?} is in place, but its manifest may not survive a power \
             cut until that file system is synced"
        );
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// Every snapshot (unsorted).
pub(super) fn list(dir: &Path) -> Result<Vec<Listed>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for e in rd.flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n.starts_with('.') {
            continue;
        }
        if let Some(name) = n.strip_suffix(ARCHIVE_EXT)
            && check_name(name).is_ok()
            && incomplete(dir, name)
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
            .and_then(|t| parse_bound(name, &t))
        {
            Ok(m) => out.push(Listed::Ok(Box::new(m))),
            Err(err) => out.push(Listed::Unreadable {
                name: name.to_string(),
                problem: err.to_string(),
            }),
        }
    }
    Ok(out)
}

/// Removes a snapshot's two files by name — a symlink is removed, never
/// what it points to.
pub(super) fn delete(dir: &Path, name: &str) -> Result<()> {
    for p in [manifest_path(dir, name), archive_path(dir, name)] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("cannot remove {}", p.display())),
        }
    }
    sync_dir(dir)
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

/// Journals that older wards kept in a local store directory (ward's
/// state directory holds them now: see `volume::journal`).
pub(super) fn stale_journals(dir: &Path) -> Vec<(PathBuf, JournalEntry)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
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
