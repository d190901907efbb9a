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
//! <volume>/.ward-swap-<id>/lock            flock-held while a ward's helper lives
//!                          stage/<root>/   the staged volume contents
//!                          staged          staging finished (hashes checked)
//!                          old/            the previous contents, moved aside
//!                          out-done        all previous contents are in old/
//!                          in-begun        staged contents started moving in
//!                          in-done         all staged contents are in place
//!                          keep-previous   (before `committed`) --keep-previous was asked:
//!                                          old/ goes to the previous-contents volume
//!                          committed       the new data ran and proved its identity:
//!                                          never roll back from here
//!                          prev-cleared    the previous-contents volume was emptied
//!                          kept            old/ is wholly in the previous-contents volume
//!                          back            a rollback started
//!                          back-cleared    the new contents are out again
//! ```
//!
//! Finished swap directories are renamed to `.ward-trash-<id>` before they
//! are deleted, so a half-deleted one is never mistaken for a swap. The
//! previous-contents volume holds [`PREVIOUS_COMPLETE`] only while it holds
//! a whole copy. Swap directories no journal accounts for are judged by
//! [`super::sweep`].

use anyhow::{Result, bail};

use super::container::exec_ok;
use crate::docker::Docker;

/// Where helper containers mount the target volume.
pub(super) const MOUNT: &str = "/ward-vol";
/// Where a helper mounts the volume that keeps the previous contents.
pub(super) const PREVIOUS_MOUNT: &str = "/ward-prev";

/// In the previous-contents volume: its copy is whole (written last, removed
/// first). Never part of the contents put back.
pub(super) const PREVIOUS_COMPLETE: &str = ".ward-previous-complete";

/// The volume that keeps a target volume's previous contents (`--keep-previous`).
pub(crate) fn previous_volume(volume: &str) -> String {
    format!("{volume}-ward-previous")
}

/// `move_all SRC DST`: renames every entry of SRC (dot files too) into DST,
/// except ward's own `.ward-*` directories. Fails, moving nothing more, if
/// DST already holds an entry of that name (`mv` would nest into it).
/// `only_ward DIR` fails (status 3), printing `foreign NAME` for each, if
/// DIR holds anything but `.ward-*`.
const MOVE_ALL: &str = r#"
move_all() {
  for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    n="${e##*/}"
    case "$n" in .ward-swap-*|.ward-trash-*) continue;; esac
    if [ -e "$2/$n" ] || [ -L "$2/$n" ]; then
      echo "cannot move $e: $2/$n already exists" >&2; return 1
    fi
    mv "$e" "$2/" || return 1
  done
}
only_ward() {
  others=""
  for e in "$1"/* "$1"/.[!.]* "$1"/..?*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    case "${e##*/}" in .ward-*) continue;; esac
    others=1
    echo "foreign ${e##*/}"
  done
  if [ -n "$others" ]; then return 3; fi
}
"#;

/// Takes an exclusive `flock` on `$W/lock` and leaves it held by a
/// background process that lives as long as the helper container (the
/// helper is removed when the restore ends; a killed ward's helper is
/// removed by the next ward). Another ward's sweep ([`sweep_stale`]) skips a
/// swap directory whose lock is held: it is a live ward's staging, however
/// the two wards' own locks and journals missed each other (another
/// `WARD_STATE_DIR`, sudo, another user). The lock is taken before the
/// script goes on, and the background process inherits it (fd 9). Images
/// without `flock` (neither Debian nor busybox lacks it) stage unlocked.
const HOLD_LOCK: &str = "if command -v flock >/dev/null 2>&1; then\n\
  exec 9>\"$W/lock\"\n  flock -x 9\n\
  sh -c 'while :; do sleep 3600; done' </dev/null >/dev/null 2>&1 8>&- &\n\
  exec 9>&-\n\
fi";

/// Swap scripts on one swap directory run one at a time: each takes an
/// exclusive `flock` on `$W/run-lock` for its whole run. When ward's exec
/// of a script times out, the script goes on inside the helper; the
/// rollback that follows (`swap_back`) then waits for it instead of moving
/// entries while it still moves them the other way.
const ONE_AT_A_TIME: &str = "if [ -d \"$W\" ] && command -v flock >/dev/null 2>&1; then\n\
  exec 8>>\"$W/run-lock\"\n  flock -x 8\n\
fi";

/// The volume held something besides ward's swap directory when the
/// staged data was to move in.
#[derive(Debug, thiserror::Error)]
#[error(
    "volume holds {} besides ward's swap directory after the previous data was moved aside — \
     something wrote into it mid-swap (was the container started by hand?); ward neither \
     overwrites nor rolls back over it: the container is left stopped and the journal kept; \
     move those entries out of the volume, then run `ward snapshot recover`",
    .0.join(", ")
)]
pub(crate) struct ForeignData(pub Vec<String>);

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
    pub(super) fn dir(&self) -> String {
        format!("{MOUNT}/.ward-swap-{}", self.id)
    }

    /// The staged volume contents.
    pub(super) fn staged(&self) -> String {
        format!("{}/stage/{}", self.dir(), self.root)
    }

    /// PGDATA inside the staged contents.
    pub(super) fn staged_pgdata(&self) -> String {
        join(&self.staged(), &self.pgdata_rel)
    }

    /// Runs `script` in the helper. Values reach it only as positional
    /// arguments, never inside the script text: `$V` the volume, `$W` the
    /// swap directory, `$S` the staged contents, `$I` the swap id, `$U:$G`
    /// the owner, `$X` the script's own extra argument (`extra`).
    async fn sh(&self, script: &str, extra: &str) -> Result<()> {
        let out = self.sh_out(script, extra).await?;
        if !out.ok() {
            bail!(
                "a swap step in the helper container failed (exit {}): {}",
                out.code,
                out.stderr.trim()
            );
        }
        Ok(())
    }

    /// [`Swap::sh`], returning the script's output and status as they are.
    async fn sh_out(&self, script: &str, extra: &str) -> Result<crate::docker::ExecOutput> {
        let full = format!(
            "set -e\n{MOVE_ALL}\nV=\"$1\"; W=\"$2\"; S=\"$3\"; I=\"$4\"; U=\"$5\"; G=\"$6\"; X=\"$7\"\n{ONE_AT_A_TIME}\n{script}"
        );
        let (dir, staged, uid, gid) = (
            self.dir(),
            self.staged(),
            self.uid.to_string(),
            self.gid.to_string(),
        );
        crate::docker::exec(
            self.d,
            self.helper,
            None,
            &[
                "sh", "-c", &full, "sh", MOUNT, &dir, &staged, &self.id, &uid, &gid, extra,
            ],
        )
        .await
    }

    /// Whether the swap directory exists, and which markers it holds. Any
    /// failure other than "it does not exist" is an error, never "no swap".
    pub(super) async fn markers(&self) -> Result<Option<Vec<String>>> {
        let dir = self.dir();
        let out = crate::docker::exec(
            self.d,
            self.helper,
            None,
            &[
                "sh",
                "-c",
                "if [ -d \"$1\" ]; then cd \"$1\" && ls -A; elif [ -e \"$1\" ]; then \
                 echo \"$1 exists but is not a directory\" >&2; exit 1; else exit 3; fi",
                "sh",
                &dir,
            ],
        )
        .await?;
        match out.code {
            0 => Ok(Some(out.stdout.lines().map(str::to_string).collect())),
            3 => Ok(None),
            c => bail!(
                "cannot read the swap directory {dir} in the volume (exit {c}): {}",
                out.stderr.trim()
            ),
        }
    }

    /// Free bytes in the volume.
    pub(super) async fn free_bytes(&self) -> Result<u64> {
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

    /// Bytes the volume's current contents take (ward's own entries aside).
    pub(super) async fn current_bytes(&self) -> Result<u64> {
        let out = exec_ok(
            self.d,
            self.helper,
            &[
                "sh",
                "-c",
                "cd \"$1\" && for e in * .[!.]* ..?*; do [ -e \"$e\" ] || continue; \
                 case \"$e\" in .ward-*) ;; *) du -sk \"$e\";; esac; done",
                "sh",
                MOUNT,
            ],
        )
        .await?;
        Ok(out
            .stdout
            .lines()
            .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .sum::<u64>()
            * 1024)
    }

    /// Creates the empty staging directory (for `upload_to`, inside it).
    pub(super) async fn prepare(&self, upload_to: &str) -> Result<()> {
        self.sh(
            &format!("rm -rf \"$W\"\nmkdir -p \"$W\"\n{HOLD_LOCK}\nmkdir -p \"$W/stage\" \"$X\""),
            upload_to,
        )
        .await
    }

    /// Takes the swap directory's lock for the helper's lifetime (as
    /// staging does), so no sweep removes it while this ward finishes or
    /// undoes it. Waits at most 30 s for a holder to let go.
    pub(super) async fn hold_lock(&self) -> Result<()> {
        self.sh(
            "if [ -d \"$W\" ] && command -v flock >/dev/null 2>&1; then\n\
               exec 9>>\"$W/lock\"\n  flock -w 30 -x 9 || { echo 'the swap directory is locked by another ward' >&2; exit 1; }\n\
               sh -c 'while :; do sleep 3600; done' </dev/null >/dev/null 2>&1 8>&- &\n\
               exec 9>&-\n\
             fi",
            "",
        )
        .await
    }

    /// Fixes owner and mode of the staged tree, recreates the `data -> .`
    /// link of postgres:18.0 volumes when the snapshot recorded one (never
    /// extracted from the archive: the staged tree holds no link until
    /// every entry is written, and nothing ever lies below it), then marks
    /// staging finished.
    pub(super) async fn seal(&self, data_link: bool) -> Result<()> {
        let (name, target) = crate::snapshot::archive::DATA_LINK;
        let link = if data_link {
            format!(
                "if [ -e \"$S/{name}\" ] || [ -L \"$S/{name}\" ]; then\n\
                   echo 'the staged volume already holds {name}' >&2; exit 1\n\
                 fi\n\
                 ln -s '{target}' \"$S/{name}\"\nchown -h \"$U:$G\" \"$S/{name}\"\n"
            )
        } else {
            String::new()
        };
        self.sh(
            &format!(
                "chown -R \"$U:$G\" \"$S\"\nchmod 0700 \"$X\"\n{link}sync\ntouch \"$W/staged\"\nsync"
            ),
            &self.staged_pgdata(),
        )
        .await
    }

    /// Moves the previous contents aside (resumable).
    pub(super) async fn swap_out(&self) -> Result<()> {
        self.sh(
            "[ -e \"$W/staged\" ] || { echo 'staging did not finish' >&2; exit 1; }\n\
             if [ ! -e \"$W/out-done\" ]; then\n\
               mkdir -p \"$W/old\"\n  move_all \"$V\" \"$W/old\"\n  sync\n  touch \"$W/out-done\"\n  sync\n\
             fi",
            "",
        )
        .await
    }

    /// Moves the staged contents into place (resumable). Before the first
    /// entry moves in, the volume must hold nothing but ward's own entries:
    /// anything else was written mid-swap (e.g. someone started the
    /// container and its entrypoint created a fresh cluster) and is neither
    /// overwritten nor nested into — [`ForeignData`].
    pub(super) async fn swap_in(&self) -> Result<()> {
        let chmod_root = if self.pgdata_rel.is_empty() { "1" } else { "" };
        // Before the first entry moves in, the volume must hold nothing but
        // ward's own directories (else something wrote into it mid-swap).
        // One exec: this runs while the app is down.
        let out = self.sh_out(
            "[ -e \"$W/out-done\" ] || { echo 'the previous data is not aside' >&2; exit 1; }\n\
             if [ ! -e \"$W/in-done\" ]; then\n\
               if [ ! -e \"$W/in-begun\" ]; then only_ward \"$V\"; touch \"$W/in-begun\"; sync; fi\n\
               move_all \"$S\" \"$V\"\n  chown \"$U:$G\" \"$V\"\n\
               if [ -n \"$X\" ]; then chmod 0700 \"$V\"; fi\n  sync\n  touch \"$W/in-done\"\n  sync\n\
             fi",
            chmod_root,
        )
        .await?;
        let foreign: Vec<String> = out
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("foreign "))
            .map(str::to_string)
            .collect();
        match out.code {
            0 => Ok(()),
            3 if !foreign.is_empty() => Err(ForeignData(foreign).into()),
            c => bail!(
                "moving the staged data into place failed (exit {c}): {}",
                out.stderr.trim()
            ),
        }
    }

    /// Marks the swap as final: the new data ran and proved its identity
    /// (or there is no container to prove it with). Nothing rolls back
    /// past this marker; whoever comes next only cleans up — and, with
    /// `keep_previous` (recorded in the volume first, for a next ward that
    /// finds no journal), finishes keeping the previous contents.
    pub(super) async fn commit(&self, keep_previous: bool) -> Result<()> {
        self.sh(
            "[ -e \"$W/in-done\" ] || { echo 'the new data is not in place' >&2; exit 1; }\n\
             if [ -n \"$X\" ]; then touch \"$W/keep-previous\"; sync; fi\n\
             touch \"$W/committed\"\nsync",
            if keep_previous { "1" } else { "" },
        )
        .await
    }

    /// Puts the previous contents back, however far the swap got
    /// (resumable), and deletes the swap directory.
    pub(super) async fn swap_back(&self) -> Result<()> {
        self.sh(
            "[ ! -e \"$W/committed\" ] || { echo 'the swap is committed: the new data stays' >&2; exit 1; }\n\
             touch \"$W/back\"\nsync\n\
             if [ -e \"$W/out-done\" ] && [ ! -e \"$W/back-cleared\" ]; then\n\
               mkdir -p \"$S\"\n  move_all \"$V\" \"$S\"\n  sync\n  touch \"$W/back-cleared\"\n  sync\n\
             fi\n\
             mkdir -p \"$W/old\"\nmove_all \"$W/old\" \"$V\"\nsync\n\
             mv \"$W\" \"$V/.ward-trash-$I\"\nsync\nrm -rf \"$V/.ward-trash-$I\"",
            "",
        )
        .await
    }

    /// Copies the previous contents (`old/`) into the previous-contents
    /// volume mounted at [`PREVIOUS_MOUNT`], replacing what it held
    /// (resumable): empties it (its [`PREVIOUS_COMPLETE`] first), then
    /// copies and marks that copy whole, and the swap directory `kept`. The
    /// helper must mount both volumes.
    pub(super) async fn keep_previous(&self) -> Result<()> {
        self.sh(
            &format!(
                "P=\"$X\"\n\
                 if [ ! -e \"$W/prev-cleared\" ]; then\n\
                   rm -f \"$P/{PREVIOUS_COMPLETE}\"\n  sync\n\
                   find \"$P\" -mindepth 1 -maxdepth 1 -exec rm -rf {{}} +\n  sync\n  touch \"$W/prev-cleared\"\n  sync\n\
                 fi"
            ),
            PREVIOUS_MOUNT,
        )
        .await?;
        crate::snapshot::fault("restore:mid-keep")?;
        self.sh(
            &format!(
                "P=\"$X\"\n\
                 if [ -d \"$W/old\" ]; then cp -a \"$W/old/.\" \"$P/\"; fi\nsync\n\
                 touch \"$P/{PREVIOUS_COMPLETE}\"\nsync\ntouch \"$W/kept\"\nsync"
            ),
            PREVIOUS_MOUNT,
        )
        .await
    }

    /// Stages the previous-contents volume (mounted at [`PREVIOUS_MOUNT`])
    /// instead of an archive; with `require_whole`, only if it holds
    /// [`PREVIOUS_COMPLETE`].
    pub(super) async fn stage_previous(&self, require_whole: bool) -> Result<()> {
        let whole = if require_whole {
            format!(
                "[ -e \"$P/{PREVIOUS_COMPLETE}\" ] || {{ echo 'the previous-contents volume holds no whole copy' >&2; exit 1; }}\n"
            )
        } else {
            String::new()
        };
        self.sh(
            &format!(
                "P=\"$X\"\n{whole}\
                 rm -rf \"$W\"\nmkdir -p \"$W\"\n{HOLD_LOCK}\nmkdir -p \"$S\"\ncp -a \"$P/.\" \"$S/\"\n\
                 rm -f \"$S/{PREVIOUS_COMPLETE}\""
            ),
            PREVIOUS_MOUNT,
        )
        .await
    }

    /// Renames the committed swap directory to `.ward-trash-<id>` (durably),
    /// deleting nothing: whoever deletes it later — a background `rm` in
    /// the running target container, or the next ward's sweep — never
    /// mistakes it for a swap. Returns its name at the volume root.
    pub(super) async fn retire(&self) -> Result<String> {
        self.sh(
            "[ -e \"$W/committed\" ] || { echo 'the swap is not committed' >&2; exit 1; }\n\
             mv \"$W\" \"$V/.ward-trash-$I\"\nsync",
            "",
        )
        .await?;
        Ok(format!(".ward-trash-{}", self.id))
    }

    /// Deletes the swap directory (staging that failed, or the previous
    /// contents after a successful swap).
    pub(super) async fn discard(&self) -> Result<()> {
        // A background delete of an earlier restore's trash may race this
        // one (two `rm -rf` on one tree): retry, then judge by what is left.
        self.sh(
            "if [ -e \"$W\" ]; then mv \"$W\" \"$V/.ward-trash-$I\"; sync; fi\n\
             for try in 1 2 3; do rm -rf \"$V\"/.ward-trash-* 2>/dev/null && break; sleep 1; done\n\
             for t in \"$V\"/.ward-trash-*; do\n\
               if [ -e \"$t\" ]; then echo \"cannot delete $t\" >&2; exit 1; fi\n\
             done",
            "",
        )
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
