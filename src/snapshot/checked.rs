//! Reading an archive back, trusting nothing in it: one pass decompresses,
//! checks the archive's id and hash, every entry against the manifest and a
//! PGDATA allow-list, and hands each checked entry to a [`Destination`] —
//! nowhere (`verify`), a tar that ward writes afresh for the engine to
//! extract (volume restores), or a staging directory (data-directory
//! restores). What reaches a destination is always the entry that was
//! checked, under the name it was checked as: no second reader with other
//! rules (the engine's Go tar reader, another tar-rs pass) ever parses the
//! stored archive, so the two cannot disagree about a name or a size.
//!
//! Entry policy (reference/snapshots.md §7.3): only regular files and
//! directories. Refused — not skipped — are absolute paths, `..`, empty
//! components, symbolic links (a Postgres data directory needs none, and a
//! chain of them can point anywhere) but the one `data -> .` at a volume's
//! root that the postgres:18.0 image left and the manifest records (checked,
//! never written out: restores recreate it), hard links, devices, FIFOs, sparse
//! files, PAX records ward does not need (`GNU.sparse.*` renames entries for
//! some readers), duplicates after normalisation (`data/./x` is `data/x`),
//! non-UTF-8 or over-long names, and more bytes than the manifest declares.

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use super::archive::{ID_FRAME_MAGIC, ID_FRAME_TAG};
use super::manifest::{Entry, Kind, Manifest};
use super::store::Store;
use crate::progress::Progress;

/// The longest name an entry may have.
const MAX_NAME: usize = 4096;
/// PAX records an archive may carry: names, sizes, owners and times. Anything
/// else (GNU.sparse.*, LIBARCHIVE.*, SCHILY.*, …) changes what some reader
/// does with the entry, and ward's own writers never produce it.
const PAX_KEYS: &[&str] = &[
    "path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime",
];

/// Where checked entries go.
pub enum Destination<'a> {
    /// Only check (verify).
    Nowhere,
    /// A fresh tar of the checked entries, written by ward (engine upload).
    Tar(tar::Builder<&'a mut dyn Write>),
    /// An empty staging directory that ward created.
    Directory(&'a Path),
}

/// Result of checking an archive against its manifest.
#[derive(Debug, Default)]
pub struct Checked {
    pub problems: Vec<String>,
    pub bytes: u64,
    pub entries: u64,
}

/// Normalises an entry name exactly as it will be written: no leading `./`,
/// no `.` components, no trailing `/`. Refuses what cannot be normalised safely.
pub fn normalise(raw: &[u8]) -> std::result::Result<String, String> {
    if raw.len() > MAX_NAME {
        return Err(format!("an entry name is {} bytes long", raw.len()));
    }
    let s = std::str::from_utf8(raw).map_err(|_| "an entry name is not UTF-8".to_string())?;
    if s.starts_with('/') {
        return Err(format!("absolute path {s:?}"));
    }
    let trimmed = s.trim_end_matches('/');
    let mut parts = Vec::new();
    for (i, c) in trimmed.split('/').enumerate() {
        match c {
            ".." => return Err(format!("path {s:?} climbs out with \"..\"")),
            "." => {}
            "" if i == 0 && trimmed.is_empty() => {}
            "" => return Err(format!("path {s:?} has an empty component")),
            c if c.contains('\0') => return Err(format!("path {s:?} contains a NUL")),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Checks one entry against the allow-list; returns its normalised path.
fn check_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    seen: &mut HashSet<String>,
    data_link: Option<&str>,
) -> std::result::Result<(String, Kind), String> {
    let raw = entry.path_bytes().into_owned();
    let shown = String::from_utf8_lossy(&raw).into_owned();
    let path = normalise(&raw)?;
    if let Some(pax) = entry
        .pax_extensions()
        .map_err(|e| format!("archive is damaged: {e}"))?
    {
        for ext in pax {
            let ext = ext.map_err(|e| format!("archive is damaged: {e}"))?;
            let key = ext.key().unwrap_or("(not UTF-8)");
            if !PAX_KEYS.contains(&key) {
                return Err(format!(
                    "entry {shown:?} carries the PAX record {key:?}, which ward does not accept"
                ));
            }
        }
    }
    let kind = match entry.header().entry_type() {
        tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
        tar::EntryType::Directory => Kind::Dir,
        tar::EntryType::Symlink => {
            let target = entry
                .link_name_bytes()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            if data_link == Some(path.as_str()) && target == super::archive::DATA_LINK.1 {
                // Recorded by the manifest's layout; never written out.
                Kind::Symlink
            } else {
                return Err(format!(
                    "symlink {shown:?} -> {target:?}: a Postgres data directory needs no symbolic \
                     links and ward refuses them (the only one accepted is `data -> .` at the \
                     volume root of a postgres:18.0 volume, when the manifest records it)"
                ));
            }
        }
        tar::EntryType::Link => return Err(format!("hard link {shown:?}")),
        tar::EntryType::Char | tar::EntryType::Block => {
            return Err(format!("device node {shown:?}"));
        }
        tar::EntryType::Fifo => return Err(format!("FIFO {shown:?}")),
        other => return Err(format!("entry {shown:?} of unsupported type {other:?}")),
    };
    if !seen.insert(path.clone()) {
        return Err(format!(
            "duplicate entry {shown:?} (also listed as {path:?})"
        ));
    }
    Ok((path, kind))
}

/// Passes reads through, hashing and counting them, and remembers whether
/// reading failed — so a failed write is not blamed on the archive.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
    read_error: Option<String>,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if crate::error::cancelled() {
            // Not ErrorKind::Interrupted: io::copy and tar retry that one
            // (EINTR semantics) and would spin here for ever after Ctrl-C.
            return Err(io::Error::other("interrupted"));
        }
        match self.inner.read(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                self.size += n as u64;
                Ok(n)
            }
            Err(e) => {
                self.read_error = Some(e.to_string());
                Err(e)
            }
        }
    }
}

/// Counts decompressed bytes for the progress bar.
struct Counting<'a, R> {
    inner: R,
    count: u64,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count += n as u64;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Hashes and counts the stored bytes as they are read, wherever the
/// reader ends up (inside a decryptor); [`TallyResult`] reads the result.
struct Tally<R> {
    inner: R,
    state: std::sync::Arc<std::sync::Mutex<(Sha256, u64)>>,
}

struct TallyResult(std::sync::Arc<std::sync::Mutex<(Sha256, u64)>>);

impl<R: Read> Tally<R> {
    fn new(inner: R) -> (Tally<R>, TallyResult) {
        let state = std::sync::Arc::new(std::sync::Mutex::new((Sha256::new(), 0)));
        (
            Tally {
                inner,
                state: state.clone(),
            },
            TallyResult(state),
        )
    }
}

impl<R: Read> Read for Tally<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.0.update(&buf[..n]);
        s.1 += n as u64;
        Ok(n)
    }
}

impl TallyResult {
    fn finish(self) -> (String, u64) {
        let s = self.0.lock().unwrap_or_else(|e| e.into_inner());
        (hex::encode(s.0.clone().finalize()), s.1)
    }
}

/// Reads the leading id frame, if there is one; returns the id and the bytes
/// read that turned out not to be one (to be decoded as zstd).
fn read_id_frame(r: &mut impl Read) -> io::Result<(Option<String>, Vec<u8>)> {
    let mut head = Vec::with_capacity(8);
    r.by_ref().take(8).read_to_end(&mut head)?;
    if head.len() < 8 || u32::from_le_bytes([head[0], head[1], head[2], head[3]]) != ID_FRAME_MAGIC
    {
        return Ok((None, head));
    }
    let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as u64;
    let mut payload = Vec::new();
    r.by_ref().take(len.min(4096)).read_to_end(&mut payload)?;
    let id = payload
        .strip_prefix(ID_FRAME_TAG)
        .map(|id| String::from_utf8_lossy(id).into_owned())
        .unwrap_or_default();
    if len > 4096 {
        return Ok((Some(format!("(an id frame of {len} bytes)")), Vec::new()));
    }
    Ok((Some(id), Vec::new()))
}

/// Decompresses the archive in one pass and checks its id, its hash, every
/// entry against the policy and the manifest, and the byte cap; checked
/// entries go to `dest`. Problems with the archive are collected (reading
/// stops at the first when there is a destination); failing to write to the
/// destination is an error, not damage.
pub fn check(
    store: &Store,
    manifest: &Manifest,
    mut dest: Destination<'_>,
    progress: &dyn Progress,
) -> Result<Checked> {
    let result = check_into(store, manifest, &mut dest, progress);
    match (result, dest) {
        (Ok(c), Destination::Tar(b)) if c.problems.is_empty() => {
            b.into_inner()
                .and_then(|w| w.flush())
                .context("finishing the stream to the engine")?;
            Ok(c)
        }
        (result, Destination::Tar(b)) => {
            // Dropping the builder would end the tar cleanly and let the
            // engine extract a partial copy as if it were whole; the stream
            // must stay broken. (The builder owns no memory.)
            std::mem::forget(b);
            result
        }
        (result, _) => result,
    }
}

fn check_into(
    store: &Store,
    manifest: &Manifest,
    dest: &mut Destination<'_>,
    progress: &dyn Progress,
) -> Result<Checked> {
    let archive = store.archive_location(&manifest.name);
    let (tally, stored) = Tally::new(store.open_archive(&manifest.name)?);
    let mut out = Checked::default();
    let streaming = !matches!(dest, Destination::Nowhere);
    let expected: HashMap<&str, &Entry> = manifest
        .entries
        .iter()
        .map(|e| (e.path.as_str(), e))
        .collect();
    // Encrypted: the stored bytes (hashed as read) are the ciphertext; age's
    // authenticated chunks stop a corrupt one before its plaintext is used.
    let mut hr: Box<dyn Read> = match &manifest.encryption {
        None => Box::new(tally),
        Some(_) => match store.keys().decrypt(tally, &manifest.name) {
            Ok(r) => Box::new(r),
            Err(e) => match e.downcast::<super::Damaged>() {
                Ok(d) => {
                    out.problems.push(d.0);
                    return Ok(out);
                }
                Err(e) => return Err(e),
            },
        },
    };
    let (frame_id, rest) = read_id_frame(&mut hr).with_context(|| format!("reading {archive}"))?;
    match (&frame_id, manifest.archive_carries_id) {
        (Some(id), _) if *id != manifest.id => out.problems.push(format!(
            "the archive belongs to snapshot id {id}, the manifest is of id {} (archive and \
             manifest were swapped or copied)",
            manifest.id
        )),
        (None, true) => out
            .problems
            .push("the archive does not carry the snapshot id its manifest requires".into()),
        _ => {}
    }
    // A volume archive is the engine's archive of the mount point: every entry
    // lies under one plain directory name, which restore uses as a mount path.
    let (volume_root, data_link) = match &manifest.layout {
        super::manifest::Layout::Volume { root, data_link } => (
            Some(root.as_str()),
            data_link.then(|| format!("{root}/{}", super::archive::DATA_LINK.0)),
        ),
        super::manifest::Layout::Pgdata => (None, None),
    };
    let mut data_link_seen = false;
    if let Some(root) = volume_root
        && (root.is_empty() || root == "." || root == ".." || root.contains(['/', '\\', '\0']))
    {
        out.problems.push(format!(
            "the manifest's volume root {root:?} is not a plain directory name"
        ));
    }
    if streaming && !out.problems.is_empty() {
        return Ok(out);
    }
    let mut dec = zstd::stream::read::Decoder::new(io::Cursor::new(rest).chain(hr))?;
    let mut seen = HashSet::new();
    let mut dir_modes = Vec::new();
    let cap = manifest.total_bytes;
    let mut data_bytes = 0u64;
    // Ok(Err(problem)): the archive is bad; Err(e): the destination failed.
    let result: Result<std::result::Result<(), String>> = (|| {
        let counting = Counting {
            inner: &mut dec,
            count: 0,
            progress,
        };
        let mut ar = tar::Archive::new(counting);
        let entries = match ar.entries() {
            Ok(e) => e,
            Err(e) => return Ok(Err(format!("not a tar archive: {e}"))),
        };
        for entry in entries {
            if crate::error::cancelled() {
                return Err(crate::error::Interrupted.into());
            }
            let mut entry = match entry {
                Ok(e) => e,
                Err(e) => return Ok(Err(format!("archive is damaged: {e}"))),
            };
            let (path, kind) = match check_entry(&mut entry, &mut seen, data_link.as_deref()) {
                Ok(pk) => pk,
                Err(p) => return Ok(Err(p)),
            };
            if let Some(link) = &data_link
                && path
                    .strip_prefix(link.as_str())
                    .is_some_and(|r| r.starts_with('/'))
            {
                return Ok(Err(format!(
                    "{path:?} lies below the `data -> .` link the manifest records"
                )));
            }
            out.entries += 1;
            if let Some(root) = volume_root
                && path != root
                && !path
                    .strip_prefix(root)
                    .is_some_and(|rest| rest.starts_with('/'))
            {
                return Ok(Err(format!(
                    "{path:?} lies outside the volume root {root:?} the manifest names"
                )));
            }
            let Some(want) = expected.get(path.as_str()) else {
                return Ok(Err(format!(
                    "{path:?} is in the archive but not in the manifest"
                )));
            };
            if want.kind != kind {
                return Ok(Err(format!(
                    "{path:?} is a {kind:?} in the archive but a {:?} in the manifest",
                    want.kind
                )));
            }
            let header = entry.header();
            let mode = header.mode().unwrap_or(0o600) & 0o777;
            let uid = header.uid().unwrap_or(0);
            let gid = header.gid().unwrap_or(0);
            let mtime = header.mtime().unwrap_or(0);
            if kind == Kind::Symlink {
                // Only the recorded `data -> .` gets here. Written nowhere:
                // the restore recreates it once every entry is in place.
                if want.link.as_deref() != Some(super::archive::DATA_LINK.1) {
                    return Ok(Err(format!(
                        "{path:?} is a link in the archive, but the manifest lists it with \
                         target {:?}",
                        want.link
                    )));
                }
                data_link_seen = true;
                continue;
            }
            if kind == Kind::Dir {
                match &mut *dest {
                    Destination::Nowhere => {}
                    Destination::Tar(b) if !path.is_empty() => {
                        let mut h = fresh_header(tar::EntryType::Directory, mode, uid, gid, mtime);
                        h.set_size(0);
                        b.append_data(&mut h, &path, io::empty())
                            .with_context(|| format!("writing {path} to the engine"))?;
                    }
                    Destination::Tar(_) => {}
                    Destination::Directory(root) if !path.is_empty() => {
                        let full = root.join(&path);
                        if !full.is_dir() {
                            std::fs::DirBuilder::new()
                                .mode(0o700)
                                .create(&full)
                                .map_err(|e| write_error(e, &full))?;
                        }
                        dir_modes.push((full, mode));
                    }
                    Destination::Directory(_) => {}
                }
                continue;
            }
            // The size the reader will use (a PAX record overrides the
            // header); a header that says otherwise is a lie for some reader.
            let declared = entry.size();
            if entry.header().size().ok() != Some(declared) {
                return Ok(Err(format!(
                    "{path:?} has two sizes (header {:?}, PAX {declared})",
                    entry.header().size().ok()
                )));
            }
            if data_bytes.saturating_add(declared) > cap {
                return Ok(Err(format!(
                    "{path:?} ({declared} bytes) would take the archive past the {cap} bytes the \
                     manifest declares"
                )));
            }
            if declared != want.size {
                return Ok(Err(format!(
                    "{path:?} declares {declared} bytes, the manifest lists {}",
                    want.size
                )));
            }
            let mut hashing = Hashing {
                inner: &mut entry,
                hasher: Sha256::new(),
                size: 0,
                read_error: None,
            };
            let written: Result<()> = match &mut *dest {
                Destination::Nowhere => io::copy(&mut hashing, &mut io::sink())
                    .map(|_| ())
                    .map_err(Into::into),
                Destination::Tar(b) => {
                    let mut h = fresh_header(tar::EntryType::Regular, mode, uid, gid, mtime);
                    h.set_size(declared);
                    b.append_data(&mut h, &path, &mut hashing)
                        .with_context(|| format!("writing {path} to the engine"))
                }
                Destination::Directory(root) => write_file(root, &path, mode, &mut hashing),
            };
            if let Some(e) = hashing.read_error.take() {
                return Ok(Err(format!("archive is damaged in {path:?}: {e}")));
            }
            written?;
            data_bytes += hashing.size;
            let got = hex::encode(hashing.hasher.finalize());
            if hashing.size != want.size || Some(&got) != want.sha256.as_ref() {
                return Ok(Err(format!(
                    "{path:?} does not match the manifest (size {} vs {}, sha256 differs: {})",
                    hashing.size,
                    want.size,
                    Some(&got) != want.sha256.as_ref()
                )));
            }
        }
        let mut counting = ar.into_inner();
        if let Err(e) = io::copy(&mut counting, &mut io::sink()) {
            return Ok(Err(format!("archive is damaged: {e}")));
        }
        out.bytes = counting.count;
        Ok(Ok(()))
    })();
    match result {
        Err(e) => {
            if crate::error::cancelled() {
                return Err(crate::error::Interrupted.into());
            }
            return Err(e);
        }
        Ok(Err(p)) => {
            if crate::error::cancelled() {
                return Err(crate::error::Interrupted.into());
            }
            out.problems.push(p);
            if streaming {
                return Ok(out);
            }
        }
        Ok(Ok(())) => {}
    }
    if out.problems.is_empty() && data_link.is_some() && !data_link_seen {
        out.problems.push(
            "the manifest records a `data -> .` link at the volume root, but the archive holds \
             none"
                .into(),
        );
    }
    if out.problems.is_empty() {
        let missing: Vec<&str> = manifest
            .entries
            .iter()
            .filter(|e| !seen.contains(&e.path))
            .map(|e| e.path.as_str())
            .take(5)
            .collect();
        if !missing.is_empty() {
            out.problems.push(format!(
                "the archive lacks entries the manifest lists: {}",
                missing.join(", ")
            ));
        }
    }
    // Hash the whole file, including anything after the last frame.
    let mut rest = dec.finish();
    if let Err(e) = io::copy(&mut rest, &mut io::sink()) {
        out.problems
            .push(format!("archive is damaged after its last frame: {e}"));
        return Ok(out);
    }
    drop(rest);
    let (sha, size) = stored.finish();
    if size != manifest.compressed_bytes {
        out.problems.push(format!(
            "the archive is {size} bytes, the manifest says {} (truncated or appended to)",
            manifest.compressed_bytes
        ));
    } else if sha != manifest.archive_sha256 {
        out.problems.push(
            "the archive's SHA-256 does not match the manifest (the file was altered)".into(),
        );
    }
    if out.problems.is_empty() {
        // Deepest first, so a read-only directory is set after its contents.
        for (dir, mode) in dir_modes.iter().rev() {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(*mode | 0o700))
                .map_err(|e| write_error(e, dir))?;
        }
    }
    Ok(out)
}

/// A header ward writes itself: only the fields the entry needs.
fn fresh_header(kind: tar::EntryType, mode: u32, uid: u64, gid: u64, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(mtime);
    h
}

/// Writes one checked file into the staging directory. No link exists in the
/// tree ward is building (links are refused) and the path is normalised, so
/// `root/path` stays under `root`; `create_new` never reuses a file.
fn write_file(root: &Path, path: &str, mode: u32, data: &mut impl Read) -> Result<()> {
    let full = root.join(path);
    if let Some(parent) = full.parent()
        && !parent.is_dir()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|e| write_error(e, parent))?;
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&full)
        .map_err(|e| write_error(e, &full))?;
    io::copy(data, &mut f).map_err(|e| write_error(e, &full))?;
    f.set_permissions(std::fs::Permissions::from_mode(mode | 0o600))
        .map_err(|e| write_error(e, &full))?;
    Ok(())
}

/// A failed write, saying what is full when the disk is.
fn write_error(e: io::Error, path: &Path) -> anyhow::Error {
    if e.raw_os_error() == Some(nix::libc::ENOSPC) {
        let free = path
            .ancestors()
            .find_map(|p| fs4::available_space(p).ok())
            .unwrap_or(0);
        anyhow::anyhow!(
            "the file system holding {} is full ({} free) — free space there and run the restore \
             again; the snapshot is fine and nothing was changed",
            path.display(),
            super::human_bytes(free)
        )
    } else {
        anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise_as_they_are_written() {
        assert_eq!(normalise(b"data/./PG_VERSION").unwrap(), "data/PG_VERSION");
        assert_eq!(normalise(b"./base/1/").unwrap(), "base/1");
        assert_eq!(normalise(b"./").unwrap(), "");
        assert!(normalise(b"data//x").is_err());
        assert!(normalise(b"a/../../x").is_err());
        assert!(normalise(b"/etc/passwd").is_err());
        assert!(normalise(&[b'x'; 5000]).is_err());
    }
}
