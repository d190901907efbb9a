//! Where snapshots live: a directory on this machine ([`local`]) or a prefix
//! of an S3-compatible bucket (`s3://bucket/prefix`, [`remote`]), behind one
//! [`Store`]. Both hold `<name>.tar.zst` (a file; in a bucket, a folder of
//! segments, [`segments`]) + `<name>.json` and keep the same promise: the
//! archive is written while it is produced (a temporary file renamed into
//! place; segments uploaded under a marker), the manifest is written last, so
//! a snapshot is whole — and listed — only once its manifest is there. What
//! an interrupted writer leaves (a temporary file; segments and their
//! marker) is removed by the next writer that takes the store's lock; a
//! local archive whose manifest never came (a kill between the two) is
//! listed as incomplete and removed by `delete`.
//!
//! Nothing read from a store is trusted: names are checked, manifests are
//! bound to the name they were found under, and archives are checked
//! entry by entry as they are read ([`super::checked`]).

pub(crate) mod local;
mod lock;
mod names;
pub(crate) mod remote;
mod segments;
mod settings;
mod upload;
mod writer;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::archive::HashWriter;
use super::crypt::Keys;
use super::manifest::Manifest;
pub(crate) use local::JournalEntry;
pub(crate) use names::check_name;
use names::parse_bound;
pub(crate) use remote::RemoteSettings;
pub(crate) use writer::{ArchiveWriter, Stored};
use writer::{Layer, Sink};

pub(crate) const ARCHIVE_EXT: &str = ".tar.zst";
pub(crate) const MANIFEST_EXT: &str = ".json";

#[derive(Debug, Clone)]
pub struct Store {
    /// The store as the user named it: a directory, or `s3://bucket/prefix`
    /// (a path either way, so journals and messages carry both).
    pub dir: PathBuf,
    backend: Backend,
    keys: Arc<Keys>,
}

#[derive(Debug, Clone)]
enum Backend {
    Local,
    Remote(Arc<remote::Remote>),
}

/// Held while writing; released on drop (and by the OS, or the lock's
/// expiry, if ward dies).
#[derive(Debug)]
pub struct StoreLock {
    _local: Option<std::fs::File>,
    _remote: Option<lock::RemoteLock>,
}

/// A listed snapshot, a manifest that cannot be read, or an archive whose
/// manifest was never written (a create interrupted between the two).
#[derive(Debug)]
pub enum Listed {
    Ok(Box<Manifest>),
    Unreadable { name: String, problem: String },
    Incomplete { name: String, archive_bytes: u64 },
}

impl Store {
    /// Opens a store: `s3://bucket/prefix` (settings from the environment
    /// and ward.toml, see [`remote::configure`]) or a directory (created,
    /// mode 0700, if needed).
    pub fn open(dir: &Path) -> Result<Store> {
        let backend = match remote::url_of(dir) {
            Some(url) => Backend::Remote(Arc::new(remote::Remote::open(url)?)),
            None => {
                local::open(dir)?;
                Backend::Local
            }
        };
        Ok(Store {
            dir: dir.to_path_buf(),
            backend,
            keys: Arc::new(Keys::default()),
        })
    }

    /// The same store with these encryption keys.
    pub fn with_keys(mut self, keys: Keys) -> Store {
        self.keys = Arc::new(keys);
        self
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    pub fn is_remote(&self) -> bool {
        matches!(self.backend, Backend::Remote(_))
    }

    /// The store as shown to the user.
    pub fn location(&self) -> String {
        match &self.backend {
            Backend::Local => self.dir.display().to_string(),
            Backend::Remote(r) => r.url(),
        }
    }

    /// Takes the writer lock, or fails at once if another ward holds it;
    /// then removes what dead writers left.
    pub fn lock(&self) -> Result<StoreLock> {
        match &self.backend {
            Backend::Local => {
                let file = local::lock(&self.dir)?;
                local::remove_stale(&self.dir);
                Ok(StoreLock {
                    _local: Some(file),
                    _remote: None,
                })
            }
            Backend::Remote(r) => {
                // A listing first: some services accept writes into a
                // bucket that does not exist; a listing says so.
                r.list("")?;
                let held = lock::acquire(r)?;
                for file in upload::clean_stale(r)? {
                    tracing::info!("removed the unfinished upload of {file} left by a killed ward");
                }
                Ok(StoreLock {
                    _local: None,
                    _remote: Some(held),
                })
            }
        }
    }

    /// Where snapshot `name`'s archive is (a path, or an s3:// URL).
    pub fn archive_location(&self, name: &str) -> String {
        match &self.backend {
            Backend::Local => self.archive_path(name).display().to_string(),
            Backend::Remote(r) => format!("{}/{name}{ARCHIVE_EXT}", r.url()),
        }
    }

    /// The archive's path in a local store.
    pub fn archive_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{ARCHIVE_EXT}"))
    }

    pub fn manifest_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}{MANIFEST_EXT}"))
    }

    /// Whether anything (manifest or archive) takes the name.
    pub fn exists(&self, name: &str) -> Result<bool> {
        match &self.backend {
            Backend::Local => Ok(local::exists(&self.dir, name)),
            Backend::Remote(r) => {
                Ok(r.size(&format!("{name}{MANIFEST_EXT}"))?.is_some()
                    || segments::exists(r, name)?)
            }
        }
    }

    /// An archive in place without its manifest: a create that died between
    /// placing the archive and writing the manifest.
    pub fn incomplete(&self, name: &str) -> Result<bool> {
        match &self.backend {
            Backend::Local => Ok(local::incomplete(&self.dir, name)),
            Backend::Remote(r) => {
                Ok(segments::exists(r, name)?
                    && r.size(&format!("{name}{MANIFEST_EXT}"))?.is_none())
            }
        }
    }

    /// Bytes available to ward in the store (a bucket has no limit ward can see).
    pub fn available(&self) -> Result<u64> {
        match &self.backend {
            Backend::Local => fs4::available_space(&self.dir)
                .with_context(|| format!("cannot read the free space of {}", self.dir.display())),
            Backend::Remote(_) => Ok(u64::MAX),
        }
    }

    /// Starts a new archive for snapshot `name`, encrypted when the store's
    /// keys name recipients; refused unencrypted when they require it.
    pub fn new_archive(&self, name: &str) -> Result<ArchiveWriter> {
        self.check_writable()?;
        self.writer(name, self.keys.encrypting())
    }

    /// Refuses early what [`Store::new_archive`] would refuse (an
    /// unencrypted archive into a store that requires encryption), before a
    /// container is stopped for it.
    pub fn check_writable(&self) -> Result<()> {
        if self.keys.require && !self.keys.encrypting() {
            return crate::error::usage(format!(
                "the store {} requires encryption (ward.toml [store] require_encryption) and no \
                 recipient was given — pass --encrypt-to age1… (or set WARD_AGE_RECIPIENTS)",
                self.location()
            ));
        }
        Ok(())
    }

    /// A new archive written as given (a copy of stored bytes: an encrypted
    /// archive stays encrypted to its own recipients).
    pub fn new_raw_archive(&self, name: &str) -> Result<ArchiveWriter> {
        self.writer(name, false)
    }

    fn writer(&self, name: &str, encrypt: bool) -> Result<ArchiveWriter> {
        let sink = match &self.backend {
            Backend::Local => Sink::Local(local::TempArchive::create(&self.dir, name)?),
            Backend::Remote(r) => Sink::Remote(upload::Upload::begin(r.clone(), name)?),
        };
        let hashed = HashWriter::new(sink);
        if encrypt {
            Ok(ArchiveWriter {
                layer: Layer::Age(self.keys.encrypt(hashed)?),
                encryption: Some(self.keys.facts()),
            })
        } else {
            Ok(ArchiveWriter {
                layer: Layer::Plain(hashed),
                encryption: None,
            })
        }
    }

    /// Puts a finished archive in place and writes its manifest last (the
    /// stored size, hash and encryption are recorded in `m` first). A
    /// failure removes the archive again unless its manifest is in place.
    pub fn commit(&self, stored: Stored, m: &mut Manifest) -> Result<()> {
        m.compressed_bytes = stored.bytes;
        m.archive_sha256 = stored.sha256.clone();
        m.encryption = stored.encryption.clone();
        self.commit_checked(stored, m, &mut || Ok(()))
    }

    /// [`Store::commit`] of bytes copied as they were stored (`m` already
    /// describes them); `check` runs once the archive is in place, before
    /// the manifest is written, and its failure removes the archive.
    pub fn commit_checked(
        &self,
        stored: Stored,
        m: &Manifest,
        check: &mut dyn FnMut() -> Result<()>,
    ) -> Result<()> {
        if stored.bytes != m.compressed_bytes || stored.sha256 != m.archive_sha256 {
            anyhow::bail!(
                "the archive written for {:?} is not the one its manifest describes",
                m.name
            );
        }
        match stored.sink {
            Sink::Local(t) => local::commit(&self.dir, t, m, check),
            Sink::Remote(mut upload) => {
                let Backend::Remote(r) = &self.backend else {
                    anyhow::bail!("an upload committed to a local store");
                };
                // Until the manifest PUT, a failure removes the archive (the
                // drop); a failed PUT may still land later (a timeout after
                // the service stored it), so then archive and marker stay,
                // and the next ward keeps or removes the archive by whether
                // the manifest is there.
                upload.complete(stored.bytes)?;
                check()?;
                super::fault("store:before-manifest")?;
                let manifest = format!("{}{MANIFEST_EXT}", m.name);
                match r.put_small(&manifest, m.to_json().into_bytes(), false) {
                    Ok(()) => {
                        // A snapshot now: whatever happens, its archive stays.
                        if let Err(e) = super::fault("store:after-manifest") {
                            upload.keep();
                            return Err(e);
                        }
                        upload.settle();
                        Ok(())
                    }
                    Err(e) => {
                        upload.keep();
                        Err(e)
                    }
                }
            }
        }
    }

    /// Writes (or replaces) a manifest atomically.
    pub fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        match &self.backend {
            Backend::Local => local::write_manifest(&self.dir, manifest),
            Backend::Remote(r) => r.put_small(
                &format!("{}{MANIFEST_EXT}", manifest.name),
                manifest.to_json().into_bytes(),
                false,
            ),
        }
    }

    fn missing(&self, name: &str) -> Result<Manifest> {
        if self.incomplete(name)? {
            return crate::error::usage(format!(
                "snapshot {name:?} in {} is incomplete: its archive has no manifest (a create was \
                 interrupted) — `ward snapshot delete {name}` removes it",
                self.location()
            ));
        }
        crate::error::usage(format!(
            "no snapshot named {name:?} in {} — `ward snapshot list` shows what there is",
            self.location()
        ))
    }

    /// Loads one snapshot's manifest, with a clear error when it is not there.
    pub fn load(&self, name: &str) -> Result<Manifest> {
        check_name(name)?;
        let (text, shown) = match &self.backend {
            Backend::Local => {
                let path = self.manifest_path(name);
                match std::fs::read_to_string(&path) {
                    Ok(t) => (t, path.display().to_string()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                        return self.missing(name);
                    }
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot read {}", path.display()));
                    }
                }
            }
            Backend::Remote(r) => match r.get_small(&format!("{name}{MANIFEST_EXT}"))? {
                Some(b) => (
                    String::from_utf8_lossy(&b).into_owned(),
                    format!("{}/{name}{MANIFEST_EXT}", r.url()),
                ),
                None => return self.missing(name),
            },
        };
        parse_bound(name, &text).map_err(|e| {
            super::Damaged(format!(
                "the manifest {shown} is unreadable or not this snapshot's: {e}"
            ))
            .into()
        })
    }

    /// Every snapshot, oldest first.
    pub fn list(&self) -> Result<Vec<Listed>> {
        let mut out = match &self.backend {
            Backend::Local => local::list(&self.dir)?,
            Backend::Remote(r) => remote_list(r)?,
        };
        out.sort_by(|a, b| match (a, b) {
            (Listed::Ok(a), Listed::Ok(b)) => a.created_at.cmp(&b.created_at),
            (Listed::Ok(_), _) => std::cmp::Ordering::Less,
            (_, Listed::Ok(_)) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal,
        });
        Ok(out)
    }

    /// Removes a snapshot: the manifest first (so it stops being listed),
    /// then the archive.
    pub fn delete(&self, name: &str) -> Result<()> {
        check_name(name)?;
        if !self.exists(name)? {
            return crate::error::usage(format!(
                "no snapshot named {name:?} in {} — `ward snapshot list` shows what there is",
                self.location()
            ));
        }
        match &self.backend {
            Backend::Local => local::delete(&self.dir, name),
            Backend::Remote(r) => {
                r.delete(&format!("{name}{MANIFEST_EXT}"))?;
                segments::remove(r, name)
            }
        }
    }

    /// The stored archive's size, None when it is missing.
    pub fn archive_size(&self, name: &str) -> Result<Option<u64>> {
        match &self.backend {
            Backend::Local => Ok(std::fs::metadata(self.archive_path(name))
                .ok()
                .map(|m| m.len())),
            Backend::Remote(r) => segments::size(r, name),
        }
    }

    /// The stored archive's bytes (ciphertext when encrypted), streamed.
    pub fn open_archive(&self, name: &str) -> Result<Box<dyn Read + Send>> {
        match &self.backend {
            Backend::Local => {
                let path = self.archive_path(name);
                let f = std::fs::File::open(&path)
                    .with_context(|| format!("opening {}", path.display()))?;
                Ok(Box::new(std::io::BufReader::with_capacity(256 * 1024, f)))
            }
            Backend::Remote(r) => segments::open(r, name),
        }
    }

    /// Journals of ward processes that died (local stores keep them; a
    /// bucket never holds one).
    pub fn stale_journals(&self) -> Vec<(PathBuf, JournalEntry)> {
        match &self.backend {
            Backend::Local => local::stale_journals(&self.dir),
            Backend::Remote(_) => Vec::new(),
        }
    }
}

/// A bucket's snapshots (unsorted): those with a manifest, and archives
/// without one that no upload marker names (a marker means an upload in
/// progress, or one the next writer cleans up: never listed).
fn remote_list(r: &Arc<remote::Remote>) -> Result<Vec<Listed>> {
    let (files, folders) = r.listing("")?;
    let mut out = Vec::new();
    let mut archives: Vec<&str> = files
        .iter()
        .map(|(f, _)| f)
        .chain(&folders)
        .filter_map(|f| segments::archive_of(f))
        .filter(|name| check_name(name).is_ok())
        .collect();
    archives.sort();
    archives.dedup();
    let has = |f: &str| files.iter().any(|(n, _)| n == f);
    let mut uploading = None;
    for name in archives {
        if has(&format!("{name}{MANIFEST_EXT}")) {
            continue;
        }
        let uploading = match &mut uploading {
            Some(u) => u,
            None => uploading.insert(upload::uploading(r)?),
        };
        if !uploading.iter().any(|u| u == name) {
            out.push(Listed::Incomplete {
                name: name.to_string(),
                archive_bytes: segments::size(r, name).ok().flatten().unwrap_or(0),
            });
        }
    }
    for (file, _) in &files {
        let Some(name) = file.strip_suffix(MANIFEST_EXT) else {
            continue;
        };
        if check_name(name).is_err() {
            continue;
        }
        let read = r.get_small(file).and_then(|b| {
            let text = String::from_utf8_lossy(&b.unwrap_or_default()).into_owned();
            parse_bound(name, &text)
        });
        out.push(match read {
            Ok(m) => Listed::Ok(Box::new(m)),
            Err(e) => Listed::Unreadable {
                name: name.to_string(),
                problem: format!("{e:#}"),
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
