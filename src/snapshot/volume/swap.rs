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
//!                          committed       the new data ran and proved its identity:
//!                                          never roll back from here
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
/// except ward's own `.ward-*` directories. Fails, moving nothing more, if
/// DST already holds an entry of that name (`mv` would nest into it).
/// `only_ward DIR` fails, naming them, if DIR holds anything but `.ward-*`.
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
    others="$others ${e##*/}"
  done
  if [ -n "$others" ]; then
    echo "the volume is expected to hold only ward's swap directory here, but it holds:$others (did something start the container mid-swap?); the journal is kept" >&2
    return 1
  fi
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

    /// Runs `script` in the helper. Values reach it only as positional
    /// arguments, never inside the script text: `$V` the volume, `$W` the
    /// swap directory, `$S` the staged contents, `$I` the swap id, `$U:$G`
    /// the owner, `$X` the script's own extra argument (`extra`).
    async fn sh(&self, script: &str, extra: &str) -> Result<()> {
        let full = format!(
            "set -e\n{MOVE_ALL}\nV=\"$1\"; W=\"$2\"; S=\"$3\"; I=\"$4\"; U=\"$5\"; G=\"$6\"; X=\"$7\"\n{ONE_AT_A_TIME}\n{script}"
        );
        let (dir, staged, uid, gid) = (
            self.dir(),
            self.staged(),
            self.uid.to_string(),
            self.gid.to_string(),
        );
        exec_ok(
            self.d,
            self.helper,
            &[
                "sh", "-c", &full, "sh", MOUNT, &dir, &staged, &self.id, &uid, &gid, extra,
            ],
        )
        .await?;
        Ok(())
    }

    /// Whether the swap directory exists, and which markers it holds. Any
    /// failure other than "it does not exist" is an error, never "no swap".
    pub async fn markers(&self) -> Result<Option<Vec<String>>> {
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

    /// Bytes the volume's current contents take (ward's own entries aside).
    pub async fn current_bytes(&self) -> Result<u64> {
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
    pub async fn prepare(&self, upload_to: &str) -> Result<()> {
        self.sh(
            &format!("rm -rf \"$W\"\nmkdir -p \"$W\"\n{HOLD_LOCK}\nmkdir -p \"$W/stage\" \"$X\""),
            upload_to,
        )
        .await
    }

    /// Takes the swap directory's lock for the helper's lifetime (as
    /// staging does), so no sweep removes it while this ward finishes or
    /// undoes it. Waits at most 30 s for a holder to let go.
    pub async fn hold_lock(&self) -> Result<()> {
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
    pub async fn seal(&self, data_link: bool) -> Result<()> {
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
    pub async fn swap_out(&self) -> Result<()> {
        self.sh(
            "[ -e \"$W/staged\" ] || { echo 'staging did not finish' >&2; exit 1; }\n\
             if [ ! -e \"$W/out-done\" ]; then\n\
               mkdir -p \"$W/old\"\n  move_all \"$V\" \"$W/old\"\n  sync\n  touch \"$W/out-done\"\n  sync\n\
             fi",
            "",
        )
        .await
    }

    /// What the volume holds besides ward's own `.ward-*` entries.
    async fn foreign_entries(&self) -> Result<Vec<String>> {
        let out = exec_ok(
            self.d,
            self.helper,
            &[
                "sh",
                "-c",
                "cd \"$1\" && for e in * .[!.]* ..?*; do [ -e \"$e\" ] || [ -L \"$e\" ] || continue; \
                 case \"$e\" in .ward-*) ;; *) echo \"$e\";; esac; done",
                "sh",
                MOUNT,
            ],
        )
        .await?;
        Ok(out.stdout.lines().map(str::to_string).collect())
    }

    /// Moves the staged contents into place (resumable). Before the first
    /// entry moves in, the volume must hold nothing but ward's own entries:
    /// anything else was written mid-swap (e.g. someone started the
    /// container and its entrypoint created a fresh cluster) and is neither
    /// overwritten nor nested into — [`ForeignData`].
    pub async fn swap_in(&self) -> Result<()> {
        let m = self.markers().await?.unwrap_or_default();
        let has = |x: &str| m.iter().any(|e| e == x);
        if has("out-done") && !has("in-begun") && !has("in-done") {
            let others = self.foreign_entries().await?;
            if !others.is_empty() {
                return Err(ForeignData(others).into());
            }
        }
        let chmod_root = if self.pgdata_rel.is_empty() { "1" } else { "" };
        // Before the first entry moves in, the volume must hold nothing but
        // ward's own directories (else something wrote into it mid-swap).
        self.sh(
            "[ -e \"$W/out-done\" ] || { echo 'the previous data is not aside' >&2; exit 1; }\n\
             if [ ! -e \"$W/in-done\" ]; then\n\
               if [ ! -e \"$W/in-begun\" ]; then only_ward \"$V\"; touch \"$W/in-begun\"; sync; fi\n\
               move_all \"$S\" \"$V\"\n  chown \"$U:$G\" \"$V\"\n\
               if [ -n \"$X\" ]; then chmod 0700 \"$V\"; fi\n  sync\n  touch \"$W/in-done\"\n  sync\n\
             fi",
            chmod_root,
        )
        .await
    }

    /// Marks the swap as final: the new data ran and proved its identity
    /// (or there is no container to prove it with). Nothing rolls back
    /// past this marker; whoever comes next only cleans up.
    pub async fn commit(&self) -> Result<()> {
        self.sh(
            "[ -e \"$W/in-done\" ] || { echo 'the new data is not in place' >&2; exit 1; }\n\
             touch \"$W/committed\"\nsync",
            "",
        )
        .await
    }

    /// Puts the previous contents back, however far the swap got
    /// (resumable), and deletes the swap directory.
    pub async fn swap_back(&self) -> Result<()> {
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
    /// (resumable). The helper must mount both volumes.
    pub async fn keep_previous(&self) -> Result<()> {
        self.sh(
            "P=\"$X\"\n\
             if [ ! -e \"$W/prev-cleared\" ]; then\n\
               find \"$P\" -mindepth 1 -maxdepth 1 -exec rm -rf {} +\n  sync\n  touch \"$W/prev-cleared\"\n\
             fi\n\
             if [ -d \"$W/old\" ]; then cp -a \"$W/old/.\" \"$P/\"; fi\nsync",
            PREVIOUS_MOUNT,
        )
        .await
    }

    /// Stages the previous-contents volume (mounted at [`PREVIOUS_MOUNT`])
    /// instead of an archive.
    pub async fn stage_previous(&self) -> Result<()> {
        self.sh(
            &format!(
                "P=\"$X\"\n\
                 [ -n \"$(ls -A \"$P\")\" ] || {{ echo 'the previous-contents volume is empty' >&2; exit 1; }}\n\
                 rm -rf \"$W\"\nmkdir -p \"$W\"\n{HOLD_LOCK}\nmkdir -p \"$S\"\ncp -a \"$P/.\" \"$S/\""
            ),
            PREVIOUS_MOUNT,
        )
        .await
    }

    /// Deletes the swap directory (staging that failed, or the previous
    /// contents after a successful swap).
    pub async fn discard(&self) -> Result<()> {
        self.sh(
            "if [ -e \"$W\" ]; then mv \"$W\" \"$V/.ward-trash-$I\"; sync; fi\n\
             rm -rf \"$V\"/.ward-trash-*",
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

/// What [`sweep_in`] did to ward's leftover directories in a volume.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Swept {
    /// Trash, staging leftovers and finished swaps: deleted.
    pub removed: Vec<String>,
    /// Swap directories that may hold (part of) the previous data: left alone.
    pub kept: Vec<String>,
    /// Swap directories whose `lock` a live helper holds: another ward's
    /// restore in progress, left alone.
    pub busy: Vec<String>,
}

/// Finds ward's swap and trash directories that no journal accounts for
/// (the journal was lost, or another state directory holds it) and removes
/// those that hold nothing of the user's: trash, staging leftovers (nothing
/// of the previous data ever moved aside: no `old/` entry, no `out-done`,
/// `in-begun` or `back`) and finished swaps (`committed`: the new data is in
/// place). On PG ≤ 17 images the volume root is PGDATA, so a leftover would
/// otherwise ride along in every later cold snapshot and `pg_basebackup`.
/// A swap directory that may hold any of the previous data — even a part
/// of it, from a ward killed in the middle of moving it aside — is kept.
/// One whose `lock` a live helper holds (another ward staging right now,
/// see [`HOLD_LOCK`]) is busy. Runs in `helper`, which mounts the volume
/// read-write at [`MOUNT`] — a restore's own staging helper, before it
/// creates its swap directory, so no container is started for the sweep
/// alone. Call holding the target lock, after the journal was handled.
pub(super) async fn sweep_in(d: &Docker, helper: &str) -> Result<Swept> {
    const SWEEP: &str = r#"
cd "$1" || exit 1
have_flock=""
if command -v flock >/dev/null 2>&1; then have_flock=1; fi
# Whether swap directory $1 holds nothing of the previous data: "ok" or "keep".
decide() {
  if [ ! -e "$1/committed" ]; then
    if [ -e "$1/out-done" ] || [ -e "$1/in-begun" ] || [ -e "$1/back" ]; then
      echo keep; return
    fi
    if [ -e "$1/old" ] || [ -L "$1/old" ]; then
      if [ ! -d "$1/old" ] || [ -L "$1/old" ] || [ -n "$(ls -A "$1/old")" ]; then
        echo keep; return
      fi
    fi
  fi
  echo ok
}
for w in .ward-trash-* .ward-swap-*; do
  [ -e "$w" ] || [ -L "$w" ] || continue
  case "$w" in
    .ward-swap-*)
      if [ -d "$w" ] && [ ! -L "$w" ]; then
        t=".ward-trash-${w#.ward-swap-}-swept"
        if [ -n "$have_flock" ]; then
          # Decide and rename while holding the directory's lock and its
          # run-lock: a ward that takes either later finds it gone, and one
          # that holds either now makes it busy.
          r=$( (
            flock -n 7 || { echo busy; exit 0; }
            flock -n 6 || { echo busy; exit 0; }
            d=$(decide "$w")
            if [ "$d" = ok ]; then mv "$w" "$t" && echo moved; else echo "$d"; fi
          ) 7>>"$w/lock" 6>>"$w/run-lock" )
        elif [ -e "$w/lock" ]; then
          r=busy
        else
          r=$(decide "$w")
          if [ "$r" = ok ]; then mv "$w" "$t" && r=moved; fi
        fi
        case "$r" in
          moved) rm -rf "$t" && echo "removed $w";;
          busy) echo "busy $w";;
          *) echo "keep $w";;
        esac
        continue
      fi;;
  esac
  rm -rf "$w" && echo "removed $w"
done
"#;
    let out = exec_ok(d, helper, &["sh", "-c", SWEEP, "sh", MOUNT]).await?;
    let mut swept = Swept::default();
    for line in out.stdout.lines() {
        match line.split_once(' ') {
            Some(("removed", n)) => swept.removed.push(n.to_string()),
            Some(("busy", n)) => swept.busy.push(n.to_string()),
            Some(("keep", n)) => swept.kept.push(n.to_string()),
            _ => {}
        }
    }
    Ok(swept)
}
