//! Writing checked entries out: headers of the fresh tar ward streams to the
//! engine, and files in a restore's staging directory (never reusing a file,
//! saying which disk is full when one is).

use std::fs::OpenOptions;
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Result;

/// A header ward writes itself: only the fields the entry needs.
pub(super) fn fresh_header(
    kind: tar::EntryType,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
) -> tar::Header {
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
pub(super) fn write_file(root: &Path, path: &str, mode: u32, data: &mut impl Read) -> Result<()> {
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
pub(super) fn write_error(e: io::Error, path: &Path) -> anyhow::Error {
    if e.raw_os_error() == Some(nix::libc::ENOSPC) {
        let free = path
            .ancestors()
            .find_map(|p| fs4::available_space(p).ok())
            .unwrap_or(0);
        anyhow::anyhow!(
            "the file system holding {} is full ({} free) — free space there and run the restore \
             again; the snapshot is fine and nothing was changed",
            path.display(),
            crate::units::human_bytes(free)
        )
    } else {
        anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
    }
}
