//! Who owns a throwaway server's files: ward's own user, or the unprivileged
//! `postgres` system user when ward runs as root (initdb and postgres refuse
//! root), and whether that user can reach the directory at all.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};
use nix::unistd::{Gid, Uid, User};

use super::ClusterError;

/// The user the server runs as: `postgres` when ward is root (Postgres
/// refuses root), else ward's own user.
pub(super) fn run_as() -> Result<Option<(Uid, Gid)>, ClusterError> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let user = User::from_name("postgres")
        .ok()
        .flatten()
        .ok_or(ClusterError::NoUnprivilegedUser)?;
    Ok(Some((user.uid, user.gid)))
}

/// The server runs as `uid`, so every directory above its own must let it pass.
pub(super) fn ensure_reachable(dir: &Path, uid: Uid, gid: Gid) -> Result<()> {
    for ancestor in dir.ancestors().skip(1) {
        let Ok(md) = std::fs::metadata(ancestor) else {
            continue;
        };
        let mode = md.mode();
        let passes = mode & 0o001 != 0
            || (md.uid() == uid.as_raw() && mode & 0o100 != 0)
            || (md.gid() == gid.as_raw() && mode & 0o010 != 0);
        if !passes {
            return crate::error::usage(format!(
                "the postgres user cannot reach {} (mode {:o}), where ward puts a throwaway \
                 server — set TMPDIR to a directory it can reach, e.g. TMPDIR=/var/tmp",
                ancestor.display(),
                mode & 0o7777
            ));
        }
    }
    Ok(())
}

/// Hands `dir` and everything in it to `uid`:`gid` (when ward is root; as
/// another user it owns what it wrote already). Links are not followed.
pub(crate) fn chown_tree(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    if !Uid::effective().is_root() {
        return Ok(());
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        std::os::unix::fs::lchown(&path, Some(uid), Some(gid))
            .with_context(|| format!("cannot chown {}", path.display()))?;
        if path.symlink_metadata()?.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                stack.push(entry?.path());
            }
        }
    }
    Ok(())
}
