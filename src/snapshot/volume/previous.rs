//! `--keep-previous` and `restore --previous`: after a successful swap the
//! previous contents can be kept in a volume of their own,
//! `<volume>-ward-previous` — outside PGDATA and outside the target volume,
//! so no later base backup or cold snapshot ever includes them — and put
//! back later by the same stage-then-swap (the contents they replace are
//! kept in their place, so `--previous` twice is a no-op).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};

use super::complete::{Live, complete};
use super::container::{image_facts, postgres_user};
use super::journal::{JournalFile, TargetJournal};
use super::swap::{MOUNT, PREVIOUS_COMPLETE, PREVIOUS_MOUNT, Swap, previous_volume};
use crate::docker::{self, Docker, Helper};
use crate::progress::Progress;
use crate::snapshot::{Confirm, RestoreOptions, Restored};
use crate::target::VolumeTarget;

/// Copies the swap's previous contents into the previous-contents volume
/// (created if missing) and deletes the swap directory. Returns the
/// volume's name.
pub(super) async fn keep(sw: &Swap<'_>, image: &str, volume: &str) -> Result<String> {
    keep_with(sw, image, volume, false).await
}

/// [`keep`], taking the swap directory's lock first (`lock`) when no
/// helper of this ward holds it already.
async fn keep_with(sw: &Swap<'_>, image: &str, volume: &str, lock: bool) -> Result<String> {
    let d = sw.d;
    let prev = previous_volume(volume);
    let state = previous_state(d, volume).await?;
    if state == PreviousState::Older {
        // About to be emptied anyway: made again with this format's label,
        // so that a copy cut short is never taken for a whole one.
        docker::remove_volume(d, &prev).await?;
    }
    if state != PreviousState::Current {
        let labels = HashMap::from([
            (PREVIOUS_OF.to_string(), volume.to_string()),
            (PREVIOUS_FORMAT.to_string(), "2".to_string()),
        ]);
        docker::create_volume(d, &prev, labels).await?;
    }
    let helper = Helper::start_two(d, image, volume, MOUNT, &prev, PREVIOUS_MOUNT).await?;
    let two = Swap {
        helper: &helper.name,
        ..sw.clone()
    };
    let r = async {
        if lock {
            two.hold_lock().await?;
            // Judged again under the lock: another ward may have finished it.
            let markers = two.markers().await?.unwrap_or_default();
            let has = |m: &str| markers.iter().any(|x| x == m);
            // (`prev-cleared` without `keep-previous`: an older ward's keep.)
            if !(has("committed") && (has("keep-previous") || has("prev-cleared"))) || has("kept") {
                return two.discard().await;
            }
        }
        two.keep_previous().await?;
        two.discard().await
    }
    .await;
    helper.remove(d).await?;
    r?;
    Ok(prev)
}

/// The label ward puts on a previous-contents volume: the target volume's name.
const PREVIOUS_OF: &str = "ward.previous-of";
/// The label saying the volume holds [`PREVIOUS_COMPLETE`] exactly while
/// its copy is whole ("2"); volumes of older wards lack it.
const PREVIOUS_FORMAT: &str = "ward.previous-format";

/// What `<volume>-ward-previous` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PreviousState {
    Missing,
    /// Made by an older ward: no completeness marker to go by.
    Older,
    /// Holds [`PREVIOUS_COMPLETE`] exactly while its copy is whole.
    Current,
}

/// What `volume`'s previous-contents volume is; an error when a volume of
/// that name exists that ward did not make for `volume` (no
/// [`PREVIOUS_OF`] label naming it) — ward never empties or puts back what
/// it did not keep. Asked before anything is stopped.
pub(super) async fn previous_state(d: &Docker, volume: &str) -> Result<PreviousState> {
    let prev = previous_volume(volume);
    match docker::inspect_volume(d, &prev).await? {
        None => Ok(PreviousState::Missing),
        Some(v) if v.labels.get(PREVIOUS_OF).map(String::as_str) == Some(volume) => Ok(
            if v.labels.get(PREVIOUS_FORMAT).map(String::as_str) == Some("2") {
                PreviousState::Current
            } else {
                PreviousState::Older
            },
        ),
        Some(_) => crate::error::usage(format!(
            "volume {prev} exists but ward did not make it to keep the previous contents of \
             volume {volume} (it lacks the label {PREVIOUS_OF}={volume}) — ward neither empties \
             nor restores it; rename or remove it, or restore without --keep-previous (nothing \
             was changed)"
        )),
    }
}

/// Finishes the `--keep-previous` copy of a committed swap directory
/// (`dir`, `.ward-swap-<id>` at the volume root) that no journal accounts
/// for — a ward killed while copying, whose journal was lost — found by
/// the sweep (`unkept`): its `old/` is the only whole copy of the contents
/// the user asked to keep, and the previous-contents volume may hold a
/// partial one. Returns the previous-contents volume's name.
pub(super) async fn finish_keep(
    d: &Docker,
    image: &str,
    volume: &str,
    dir: &str,
) -> Result<String> {
    let id = dir
        .strip_prefix(".ward-swap-")
        .filter(|id| crate::snapshot::manifest::is_plain_name(id))
        .with_context(|| format!("not a swap directory: {dir:?}"))?;
    let sw = Swap {
        d,
        helper: "",
        id: id.to_string(),
        // Only the swap directory and old/ are used.
        root: String::new(),
        pgdata_rel: String::new(),
        uid: 0,
        gid: 0,
    };
    if let Err(e) = previous_state(d, volume).await {
        if e.downcast_ref::<crate::error::UsageError>().is_none() {
            return Err(e);
        }
        let prev = previous_volume(volume);
        return crate::error::usage(format!(
            "volume {volume} holds {dir} from an interrupted restore --keep-previous whose journal \
             is gone: its old/ is the only whole copy of the contents that restore replaced, and \
             ward cannot finish keeping it because volume {prev} is not ward's (no label \
             {PREVIOUS_OF}={volume}) — rename {prev} so the next ward run finishes the keep, or \
             move {dir}/old out of the volume by hand and then remove {dir}"
        ));
    }
    keep_with(&sw, image, volume, true).await
}

/// Puts the contents kept by `--keep-previous` back: staged from the
/// previous-contents volume, then swapped in like any restore.
pub(crate) async fn restore_previous(
    t: &VolumeTarget,
    opts: &RestoreOptions,
    confirm: Confirm,
    progress: Arc<dyn Progress>,
) -> Result<Restored> {
    let started = Instant::now();
    let d = docker::connect().await?;
    // Stale swap directories are swept first, before this restore journals
    // anything, in a helper that mounts only the target volume: finishing
    // an interrupted keep may make the previous-contents volume again,
    // which no container may hold mounted then.
    let mut notes = super::heal::heal_and_sweep(&d, &t.image, &t.volume.name).await?;
    let target_desc = crate::target::Target::Volume(Box::new(t.clone())).describe();
    let prev = previous_volume(&t.volume.name);
    let state = previous_state(&d, &t.volume.name).await?;
    if state == PreviousState::Missing {
        return crate::error::usage(format!(
            "no previous contents are kept for {target_desc} (volume {prev} does not exist) — \
             `--previous` puts back what a restore with --keep-previous kept"
        ));
    }
    let helper =
        Helper::start_two(&d, &t.image, &t.volume.name, MOUNT, &prev, PREVIOUS_MOUNT).await?;
    // Only a whole copy goes back (a keep killed half-way, its swap
    // directory gone, leaves a partial one). An older ward's volume has no
    // marker to go by: put back, saying so.
    let whole = docker::exec(
        &d,
        &helper.name,
        None,
        &[
            "test",
            "-e",
            &format!("{PREVIOUS_MOUNT}/{PREVIOUS_COMPLETE}"),
        ],
    )
    .await?;
    if state == PreviousState::Older {
        notes.push(format!(
            "note: volume {prev} was made by an older ward, which recorded no proof that its copy \
             is whole; putting it back as it is"
        ));
    } else if !whole.ok() {
        return crate::error::usage(format!(
            "the previous contents kept in volume {prev} are incomplete: a ward was interrupted \
             while copying them there, and nothing is left to finish the copy from — they cannot \
             be put back; {target_desc} was not touched (remove the volume with `docker volume \
             rm {prev}` once you no longer need what it holds)"
        ));
    }
    if !confirm(&format!(
        "Replace the data of {target_desc} with the previous contents kept in volume {prev}?"
    ))? {
        return crate::error::usage("restore cancelled: nothing was changed");
    }
    let was_running = match &t.container {
        Some(c) => docker::is_running(&d, &c.name).await?,
        None => false,
    };
    let id = crate::snapshot::new_id();
    let mut journal = JournalFile::begin(TargetJournal {
        snapshot: format!("(previous contents in {prev})"),
        keep_previous: true,
        ..TargetJournal::restore(t, was_running, id.clone(), "prev".into())
    })?;
    let (_, uid, gid) = image_facts(&d, &helper.name).await?;
    let sw = Swap {
        d: &d,
        helper: &helper.name,
        id,
        root: "prev".into(),
        pgdata_rel: t.pgdata_rel.clone(),
        uid,
        gid,
    };
    progress.stage(&format!("staging the previous contents from {prev}"), 0);
    let stage_at = Instant::now();
    let staged = async {
        sw.stage_previous(state == PreviousState::Current).await?;
        sw.seal(false).await
    }
    .await;
    progress.finish();
    if let Err(e) = staged {
        crate::error::uncancel();
        let cleaned = sw.discard().await;
        helper.remove(&d).await?;
        cleaned?;
        journal.finish();
        return Err(e.context(format!(
            "staging the previous contents failed; {target_desc} was not touched"
        )));
    }
    let stage_seconds = stage_at.elapsed().as_secs_f64();
    journal.set("staged")?;
    let live = Live {
        container: t.container.as_ref().map(|c| c.name.clone()),
        user: postgres_user(t),
        was_running,
        stop_timeout: opts.stop_timeout,
        keep_previous: true,
    };
    let swapped = match complete(&sw, &live, None, &mut journal).await {
        Ok(s) => s,
        Err(e) => {
            let _ = helper.remove(&d).await;
            if journal.entry.phase == "rolled-back" {
                journal.finish();
            }
            return Err(e);
        }
    };
    // What was just replaced becomes the kept previous contents.
    let r = async {
        sw.keep_previous().await?;
        sw.discard().await
    }
    .await;
    helper.remove(&d).await?;
    r?;
    journal.finish();
    Ok(Restored {
        name: format!("(previous contents from volume {prev})"),
        target: target_desc,
        safety_snapshot: None,
        seconds: started.elapsed().as_secs_f64(),
        running: swapped.running,
        sanity: swapped.sanity,
        stage_seconds: Some(stage_seconds),
        swap_seconds: Some(swapped.swap_seconds),
        start_seconds: Some(swapped.start_seconds),
        downtime_seconds: Some(swapped.downtime_seconds),
        notes,
    })
}
