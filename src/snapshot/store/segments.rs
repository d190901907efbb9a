//! How an archive lies in a bucket: as numbered segments under a folder
//! named like the archive (`<name>.tar.zst/000000`, `000001`, …), each one
//! object written by a single PUT while the archive is produced
//! ([`super::upload`]); read back in order, they are the archive's bytes.
//!
//! Why not one object by multipart upload: an upload is only an object once
//! the service has assembled it, and some services (s3s-fs; AWS for very
//! large objects) take seconds to minutes for that, after the last byte
//! arrived — the create waits for it. Segments need no assembly, and the
//! manifest, written last, is what makes them a snapshot, as the completion
//! of an upload did. Archives written by earlier wards as one object
//! (`<name>.tar.zst`) are still read, listed and deleted.
//!
//! Nothing here is trusted: a folder holding anything but a run of segment
//! numbers from 000000 is refused as damaged.

use std::io::Read;

use anyhow::Result;

use super::ARCHIVE_EXT;
use super::remote::Remote;
use crate::snapshot::Damaged;

/// Digits of a segment number (a million segments of 16 MiB: 16 TiB).
const DIGITS: usize = 6;
/// Segments an archive may have: as many as [`DIGITS`] can number.
pub(super) const MAX_SEGMENTS: usize = 1_000_000;

/// The folder of snapshot `name`'s segments, relative to the prefix.
pub(super) fn folder(name: &str) -> String {
    format!("{name}{ARCHIVE_EXT}")
}

/// Segment `index` of snapshot `name`.
pub(super) fn segment(name: &str, index: usize) -> String {
    format!("{name}{ARCHIVE_EXT}/{index:0DIGITS$}")
}

/// The snapshot whose archive `file` (a listed object or folder, relative to
/// the prefix) belongs to, if it is one: a segment, a folder or a one-object
/// archive of an earlier ward.
pub(super) fn archive_of(file: &str) -> Option<&str> {
    let file = file.trim_end_matches('/');
    let archive = match file.split_once('/') {
        Some((folder, rest)) if is_number(rest) => folder,
        Some(_) => return None,
        None => file,
    };
    archive.strip_suffix(ARCHIVE_EXT)
}

fn is_number(s: &str) -> bool {
    s.len() == DIGITS && s.bytes().all(|b| b.is_ascii_digit())
}

/// Snapshot `name`'s segments in order, with their sizes; empty when there
/// are none. Damaged when the folder holds anything else or a gap.
pub(super) fn list(remote: &Remote, name: &str) -> Result<Vec<(String, u64)>> {
    let mut found = remote.list(&folder(name))?;
    found.sort();
    for (i, (file, _)) in found.iter().enumerate() {
        if *file != segment(name, i) {
            return Err(Damaged(format!(
                "the archive {}/{} holds {file:?} where segment {i:0DIGITS$} should be — \
                 written or changed by something other than ward; not used",
                remote.url(),
                folder(name)
            ))
            .into());
        }
    }
    Ok(found)
}

/// The size of an earlier ward's one-object archive, None when there is
/// none. Found by listing, not by asking for the object: some services
/// answer a request for `x.tar.zst` with an error while `x.tar.zst/…`
/// objects exist (s3s-fs keeps them in a directory of that name).
fn one_object(remote: &Remote, name: &str) -> Result<Option<u64>> {
    let archive = folder(name);
    Ok(remote
        .list("")?
        .into_iter()
        .find_map(|(f, size)| (f == archive).then_some(size)))
}

/// The stored archive's size (segments, or one object), None when missing.
pub(super) fn size(remote: &Remote, name: &str) -> Result<Option<u64>> {
    let parts = list(remote, name)?;
    if parts.is_empty() {
        return one_object(remote, name);
    }
    Ok(Some(parts.iter().map(|(_, n)| n).sum()))
}

/// Whether any of the archive is there (anything in its folder counts, a
/// doctored one too: it takes the name, and `delete` removes it).
pub(super) fn exists(remote: &Remote, name: &str) -> Result<bool> {
    Ok(!remote.list(&folder(name))?.is_empty() || one_object(remote, name)?.is_some())
}

/// The archive's bytes, streamed.
pub(super) fn open(remote: &Remote, name: &str) -> Result<Box<dyn Read + Send>> {
    let parts = list(remote, name)?;
    if !parts.is_empty() {
        return Ok(remote.reader_of(parts.into_iter().map(|(f, _)| f).collect()));
    }
    match one_object(remote, name)? {
        Some(_) => Ok(remote.reader_of(vec![folder(name)])),
        None => anyhow::bail!("the archive {}/{} is missing", remote.url(), folder(name)),
    }
}

/// Removes the archive: every object in its folder, whatever it is, and a
/// one-object archive of the name.
pub(super) fn remove(remote: &Remote, name: &str) -> Result<()> {
    let files: Vec<String> = remote
        .list(&folder(name))?
        .into_iter()
        .map(|(f, _)| f)
        .collect();
    remote.delete_all(&files)?;
    if one_object(remote, name)?.is_some() {
        remote.delete(&folder(name))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_files_are_traced_to_their_snapshot() {
        assert_eq!(archive_of("nightly.tar.zst/000012"), Some("nightly"));
        assert_eq!(archive_of("nightly.tar.zst/"), Some("nightly"));
        assert_eq!(archive_of("nightly.tar.zst"), Some("nightly"));
        assert_eq!(archive_of("nightly.tar.zst/12"), None);
        assert_eq!(archive_of("nightly.tar.zst/000012/x"), None);
        assert_eq!(archive_of("nightly.json"), None);
        assert_eq!(segment("a", 7), "a.tar.zst/000007");
    }
}
