//! The stale-swap sweep: swap and trash directories no journal accounts
//! for (the journal was lost, or another state directory holds it) are
//! judged by their markers alone (see [`super::swap`]) — removed when they
//! hold nothing of the user's, kept when they may hold the previous data,
//! left alone when a live ward's helper holds their lock, and reported as
//! `unkept` when the new data is in place but `--keep-previous` had not
//! finished copying the previous contents out (the caller finishes that
//! copy: [`super::previous::finish_keep`]).

use anyhow::Result;

use super::container::exec_ok;
use super::swap::MOUNT;
use crate::docker::Docker;

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
    /// Finished swaps (`committed`) whose `--keep-previous` copy had not
    /// finished (`keep-previous` without `kept`): `old/` is the only whole
    /// copy of the contents the user asked to keep. Left alone.
    pub unkept: Vec<String>,
}

/// Finds ward's swap and trash directories that no journal accounts for
/// (the journal was lost, or another state directory holds it) and removes
/// those that hold nothing of the user's: trash, staging leftovers (nothing
/// of the previous data ever moved aside: no `old/` entry, no `out-done`,
/// `in-begun` or `back`) and finished swaps (`committed`: the new data is in
/// place) — unless `--keep-previous` had not finished copying `old/` out
/// (`keep-previous` or `prev-cleared` without `kept`: unkept). On PG ≤ 17 images the volume root is PGDATA, so a leftover would
/// otherwise ride along in every later cold snapshot and `pg_basebackup`.
/// A swap directory that may hold any of the previous data — even a part
/// of it, from a ward killed in the middle of moving it aside — is kept.
/// One whose `lock` a live helper holds (another ward staging right now,
/// see the swap's `HOLD_LOCK`) is busy. Runs in `helper`, which mounts the volume
/// read-write at [`MOUNT`] — a restore's own staging helper, before it
/// creates its swap directory, so no container is started for the sweep
/// alone. Call holding the target lock, after the journal was handled.
pub(super) async fn sweep_in(d: &Docker, helper: &str) -> Result<Swept> {
    const SWEEP: &str = r#"
cd "$1" || exit 1
have_flock=""
if command -v flock >/dev/null 2>&1; then have_flock=1; fi
# Whether swap directory $1 holds nothing of the previous data: "ok", "keep"
# or "unkept" (committed, but its --keep-previous copy is unfinished).
decide() {
  # (prev-cleared without keep-previous: the keep of an older ward.)
  if [ -e "$1/committed" ] && [ ! -e "$1/kept" ] \
     && { [ -e "$1/keep-previous" ] || [ -e "$1/prev-cleared" ]; }; then
    echo unkept; return
  fi
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
          unkept) echo "unkept $w";;
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
            Some(("unkept", n)) => swept.unkept.push(n.to_string()),
            _ => {}
        }
    }
    Ok(swept)
}
