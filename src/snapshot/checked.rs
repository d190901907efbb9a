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
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

mod policy;
mod tally;
mod write;

use policy::check_entry;
use tally::{Counting, Hashing, read_id_frame};
use write::{fresh_header, write_error, write_file};

use super::archive::Tally;
use super::manifest::{Entry, Kind, Manifest};
use super::store::Store;
use crate::progress::Progress;

/// Where checked entries go.
pub(crate) enum Destination<'a> {
    /// Only check (verify).
    Nowhere,
    /// A fresh tar of the checked entries, written by ward (engine upload).
    Tar(tar::Builder<&'a mut dyn Write>),
    /// An empty staging directory that ward created.
    Directory(&'a Path),
}

/// Result of checking an archive against its manifest.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    pub problems: Vec<String>,
    pub bytes: u64,
    pub entries: u64,
}

/// Decompresses the archive in one pass and checks its id, its hash, every
/// entry against the policy and the manifest, and the byte cap; checked
/// entries go to `dest`. Problems with the archive are collected (reading
/// stops at the first when there is a destination); failing to write to the
/// destination is an error, not damage.
pub(crate) fn check(
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
    let hr: Box<dyn Read + Send> = match &manifest.encryption {
        None => Box::new(tally),
        Some(_) => match store.keys().decrypt(tally, &manifest.name) {
            Ok(r) => Box::new(r),
            Err(e) => match e.downcast::<super::Damaged>() {
                Ok(_) if stored.transport().is_some() => return Err(stored.transport_error()),
                Ok(d) => {
                    out.problems.push(d.0);
                    return Ok(out);
                }
                Err(e) => return Err(e),
            },
        },
    };
    // Read, hashed and decrypted on a thread of their own, beside the
    // decompressing and checking below.
    let mut hr = super::archive::ReadAhead::spawn(hr).context("cannot start a thread")?;
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
            if stored.transport().is_some() {
                // The network failed, not the archive: an error, not damage.
                return Err(stored.transport_error());
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
        if stored.transport().is_some() {
            return Err(stored.transport_error());
        }
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
