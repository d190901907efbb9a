//! Stage, then swap: a restore unpacks the snapshot into a directory inside
//! the target volume (same file system) while Postgres keeps running on the
//! old data, and only then stops the container and exchanges old and new
//! contents by renames — seconds, whatever the size. Every step leaves a
//! marker file in the swap directory, written after the step and synced, so
//! whoever comes next (this ward rolling back, or the next ward after a kill
//! or a power cut) can tell exactly how far the swap got and finish or undo
//! it:
//!
//! ```text
//! <volume>/.ward-swap-<id>/stage/<root>/   the staged volume contents
//!                          staged          staging finished (hashes checked)
//!                          old/            the previous contents, moved aside
//!                          out-done        all previous contents are in old/
//!                          in-done         all staged contents are in place
//!                          back            a rollback started
//!                          back-cleared    the new contents are out again
//! ```
//!
//! Finished swap directories are renamed to `.ward-trash-<id>` before they
//! are deleted, so a half-deleted one is never mistaken for a swap.

use anyhow::{Result, bail};

use super::container::exec_ok;
use crate::docker::Docker;

/// Where helper containers mount the target volume.
pub(super) const MOUNT: &str = "/ward-vol";
/// Where a helper mounts the volume that keeps the previous contents.
pub(super) const PREVIOUS_MOUNT: &str = "/ward-prev";

/// The volume that keeps a target volume's previous contents (`--keep-previous`).
pub(crate) fn previous_volume(volume: &str) -> String {
    format!("{volume}-ward-previous")
}

/// `move_all SRC DST`: renames every entry of SRC (dot files too) into DST,
/// except ward's own `.ward-*` directories.
const MOVE_ALL: &str = r#"
move_all() {
  for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    case "${e##*/}" in .ward-swap-*|.ward-trash-*) continue;; esac
    mv "$e" "$2/" || return 1
  done
}
"#;

/// One swap directory in one volume, seen through a helper container that
/// mounts the volume at [`MOUNT`].
#[derive(Clone)]
pub(super) struct Swap<'a> {
    pub d: &'a Docker,
    pub helper: &'a str,
    pub id: String,
    /// The staged volume root's name inside `stage/`.
    pub root: String,
    pub pgdata_rel: String,
    pub uid: u32,
    pub gid: u32,
}

impl Swap<'_> {
    pub fn dir(&self) -> String {
        format!("{MOUNT}/.ward-swap-{}", self.id)
    }

    /// The staged volume contents.
    pub fn staged(&self) -> String {
        format!("{}/stage/{}", self.dir(), self.root)
    }

    /// PGDATA inside the staged contents.
    pub fn staged_pgdata(&self) -> String {
        join(&self.staged(), &self.pgdata_rel)
    }

    async fn sh(&self, script: &str) -> Result<()> {
        let full = format!(
            "set -e\n{MOVE_ALL}\nV={MOUNT}\nW={}\nS={}\n{script}",
            self.dir(),
            self.staged()
        );
        exec_ok(self.d, self.helper, &["sh", "-c", &full]).await?;
        Ok(())
    }

    /// Whether the swap directory exists, and which markers it holds.
    pub async fn markers(&self) -> Result<Option<Vec<String>>> {
        let out = crate::docker::exec(
            self.d,
            self.helper,
            None,
            &["sh", "-c", &format!("cd {} && ls -A", self.dir())],
        )
        .await?;
        if !out.ok() {
            return Ok(None);
        }
        Ok(Some(out.stdout.lines().map(str::to_string).collect()))
    }

    /// Free bytes in the volume.
    pub async fn free_bytes(&self) -> Result<u64> {
        let out = exec_ok(self.d, self.helper, &["df", "-Pk", MOUNT]).await?;
        let kb = out
            .stdout
            .lines()
            .nth(1)
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|s| s.parse::<u64>().ok());
        match kb {
            Some(kb) => Ok(kb * 1024),
            None => bail!(
                "cannot read the volume's free space from df: {}",
                out.stdout.trim()
            ),
        }
    }

    /// Creates the empty staging directory (for `upload_to`, inside it).
    pub async fn prepare(&self, upload_to: &str) -> Result<()> {
        self.sh(&format!(
            "rm -rf \"$W\"\nmkdir -p \"$W/stage\" {upload_to:?}"
        ))
        .await
    }

    /// Fixes owner and mode of the staged tree, then marks staging finished.
    pub async fn seal(&self) -> Result<()> {
        self.sh(&format!(
            "chown -R {}:{} \"$S\"\nchmod 0700 {:?}\nsync\ntouch \"$W/staged\"\nsync",
            self.uid,
            self.gid,
            self.staged_pgdata()
        ))
        .await
    }

    /// Moves the previous contents aside (resumable).
    pub async fn swap_out(&self) -> Result<()> {
        self.sh(
            "[ -e \"$W/staged\" ] || { echo 'staging did not finish' >&2; exit 1; }\n\
             if [ ! -e \"$W/out-done\" ]; then\n\
               mkdir -p \"$W/old\"\n  move_all \"$V\" \"$W/old\"\n  sync\n  touch \"$W/out-done\"\n  sync\n\
             fi",
        )
        .await
    }

    /// Moves the staged contents into place (resumable).
    pub async fn swap_in(&self) -> Result<()> {
        let chmod_root = if self.pgdata_rel.is_empty() {
            "chmod 0700 \"$V\"\n"
        } else {
            ""
        };
        self.sh(&format!(
            "[ -e \"$W/out-done\" ] || {{ echo 'the previous data is not aside' >&2; exit 1; }}\n\
             if [ ! -e \"$W/in-done\" ]; then\n\
               move_all \"$S\" \"$V\"\n  chown {}:{} \"$V\"\n  {chmod_root}  sync\n  touch \"$W/in-done\"\n  sync\n\
             fi",
            self.uid, self.gid
        ))
        .await
    }

    /// Puts the previous contents back, however far the swap got
    /// (resumable), and deletes the swap directory.
    pub async fn swap_back(&self) -> Result<()> {
        self.sh(&format!(
            "touch \"$W/back\"\nsync\n\
             if [ -e \"$W/out-done\" ] && [ ! -e \"$W/back-cleared\" ]; then\n\
               mkdir -p \"$S\"\n  move_all \"$V\" \"$S\"\n  sync\n  touch \"$W/back-cleared\"\n  sync\n\
             fi\n\
             mkdir -p \"$W/old\"\nmove_all \"$W/old\" \"$V\"\nsync\n\
             mv \"$W\" \"$V/.ward-trash-{id}\"\nsync\nrm -rf \"$V/.ward-trash-{id}\"",
            id = self.id
        ))
        .await
    }

    /// Copies the previous contents (`old/`) into the previous-contents
    /// volume mounted at [`PREVIOUS_MOUNT`], replacing what it held
    /// (resumable). The helper must mount both volumes.
    pub async fn keep_previous(&self) -> Result<()> {
        self.sh(&format!(
            "P={PREVIOUS_MOUNT}\n\
             if [ ! -e \"$W/prev-cleared\" ]; then\n\
               find \"$P\" -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +\n  sync\n  touch \"$W/prev-cleared\"\n\
             fi\n\
             if [ -d \"$W/old\" ]; then cp -a \"$W/old/.\" \"$P/\"; fi\nsync"
        ))
        .await
    }

    /// Stages the previous-contents volume (mounted at [`PREVIOUS_MOUNT`])
    /// instead of an archive.
    pub async fn stage_previous(&self) -> Result<()> {
        self.sh(&format!(
            "P={PREVIOUS_MOUNT}\n\
             [ -n \"$(ls -A \"$P\")\" ] || {{ echo 'the previous-contents volume is empty' >&2; exit 1; }}\n\
             rm -rf \"$W\"\nmkdir -p \"$S\"\ncp -a \"$P/.\" \"$S/\""
        ))
        .await
    }

    /// Deletes the swap directory (staging that failed, or the previous
    /// contents after a successful swap).
    pub async fn discard(&self) -> Result<()> {
        self.sh(&format!(
            "if [ -e \"$W\" ]; then mv \"$W\" \"$V/.ward-trash-{id}\"; sync; fi\n\
             rm -rf \"$V\"/.ward-trash-*",
            id = self.id
        ))
        .await
    }
}

fn join(a: &str, b: &str) -> String {
    if b.is_empty() {
        a.to_string()
    } else {
        format!("{a}/{b}")
    }
}
