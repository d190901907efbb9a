//! Finishing what a killed ward left on a volume, with no person needed: the
//! next ward that resolves the target (or `ward snapshot recover`) reads the
//! target's journal, looks at the swap directory's markers in the volume and
//! decides, most final first:
//!
//! - a rollback had begun (`back`): finish it;
//! - the new data had run (`committed`, or `in-done` with the journal at
//!   `starting`/`started`/`done`: once its start was asked for, it may
//!   have run): it may hold writes since — never roll back, never
//!   stop the container, only clean up (discard or keep the previous data);
//! - staging had not finished, or the container was never stopped (no
//!   `out-done`: it kept running on the old data and may have taken writes):
//!   put back whatever had moved aside and discard the staged copy;
//! - otherwise (old data aside, container stopped): complete the swap.
//!
//! Then it leaves the container running if the dead ward had found it
//! running.

use anyhow::Result;

use super::complete::{Live, complete};
use super::container::{image_facts, settle};
use super::journal::{JournalFile, TargetJournal, read_journal};
use super::swap::{MOUNT, Swap};
use crate::docker::{self, Docker, Helper};
use crate::snapshot::Leftovers;
use crate::snapshot::store::Store;
use crate::target::VolumeTarget;

/// Repairs `volume` if a dead ward left a journal for it (call holding the
/// target lock). Returns the note to show (what was done, or why a journal
/// was left alone), if there was a journal. A journal whose owner may still
/// run (another ward, alive: e.g. one that took the lock under an older
/// ward's lock path) is never acted on: a note, or with `must_own` (the
/// caller is about to work on the volume itself) a usage error.
pub(crate) async fn heal(d: &Docker, volume: &str, must_own: bool) -> Result<Option<String>> {
    let (path, j) = match read_journal(volume) {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(None),
        Err(note) => return Ok(Some(note)),
    };
    let target = match &j.container {
        Some(c) => format!("container {c}"),
        None => format!("volume {}", j.volume),
    };
    if j.owner.may_be_alive() {
        if must_own {
            return crate::error::usage(format!(
                "ward {} is still working on {target} ({} of {:?}, phase {:?}) — wait for it to \
                 finish",
                j.owner.describe(),
                j.operation,
                j.snapshot,
                j.phase
            ));
        }
        return Ok(Some(format!(
            "note: ward {} is still working on {target} ({} of {:?}, phase {:?}); left its \
             journal alone",
            j.owner.describe(),
            j.operation,
            j.snapshot,
            j.phase
        )));
    }
    if docker::inspect_volume(d, &j.volume).await?.is_none() {
        // Nothing left to finish or undo; a helper would create it afresh.
        let _ = std::fs::remove_file(&path);
        return Ok(Some(format!(
            "note: an interrupted ward ({}) had left a journal for volume {}, which no longer \
             exists; removed the journal",
            j.owner.describe(),
            j.volume
        )));
    }
    let done = heal_journal(d, JournalFile::adopt(path, j.clone())).await?;
    Ok(Some(format!(
        "note: an interrupted ward ({}, {} of {:?}, last phase {:?}) had left {target} \
         unfinished: {done}",
        j.owner.describe(),
        j.operation,
        j.snapshot,
        j.phase,
    )))
}

/// [`heal`], then (the journal handled) removes swap directories nobody
/// accounts for, in a helper of its own, before the caller — a snapshot
/// command that starts no read-write helper early, such as `create` —
/// works on the volume (see [`sweep`]). Returns the notes.
pub(super) async fn heal_and_sweep(d: &Docker, image: &str, volume: &str) -> Result<Vec<String>> {
    let mut notes: Vec<String> = heal(d, volume, true).await?.into_iter().collect();
    if docker::inspect_volume(d, volume).await?.is_none() {
        return Ok(notes);
    }
    let helper = Helper::start(d, image, volume, MOUNT, false).await?;
    let swept = sweep(d, image, &helper.name, volume).await;
    helper.remove(d).await?;
    notes.extend(swept?);
    Ok(notes)
}

/// Runs the stale-swap sweep ([`super::sweep::sweep_in`]) in `helper` (the
/// volume read-write at [`MOUNT`]; call after [`heal`]), finishes the
/// `--keep-previous` copies it found unfinished (in a helper of `image`
/// that mounts both volumes), and turns what it found into notes — or into
/// an error when a swap directory may hold the previous data (kept, for a
/// person to sort out) or another ward's helper holds one (busy: that ward
/// is restoring right now).
pub(super) async fn sweep(
    d: &Docker,
    image: &str,
    helper: &str,
    volume: &str,
) -> Result<Vec<String>> {
    let swept = super::sweep::sweep_in(d, helper).await?;
    let mut notes = Vec::new();
    for dir in &swept.unkept {
        let prev = super::previous::finish_keep(d, image, volume, dir).await?;
        notes.push(unkept_note(volume, dir, &prev));
    }
    if !swept.kept.is_empty() {
        anyhow::bail!(
            "volume {volume} holds {} from an interrupted restore whose journal is gone: the \
             previous data was moved aside into it and may be the only copy — ward neither \
             snapshots it nor deletes it; look inside (old/ is the previous data, stage/ the \
             restored one), move the right contents back to the volume root, then remove it",
            swept.kept.join(", ")
        );
    }
    if !swept.busy.is_empty() {
        // Its journal and lock are elsewhere (another state directory, sudo,
        // another user), but its helper holds the swap directory's lock.
        return crate::error::usage(format!(
            "another ward is restoring into volume {volume} right now ({} in it is locked by \
             that ward's helper) — wait for it to finish, then try again",
            swept.busy.join(", ")
        ));
    }
    notes.extend((!swept.removed.is_empty()).then(|| {
        format!(
            "note: removed {} left in volume {volume} by an interrupted ward (no journal \
             accounted for it; it held none of the data in use)",
            swept.removed.join(", ")
        )
    }));
    Ok(notes)
}

fn unkept_note(volume: &str, dir: &str, prev: &str) -> String {
    format!(
        "note: an interrupted restore --keep-previous (no journal accounted for it) had left the \
         previous contents in {dir} of volume {volume}: finished keeping them in volume {prev}"
    )
}

/// `ward doctor`: [`heal`] (a journal of a live ward is left alone, and
/// then so is the volume), then the stale-swap sweep in a helper of its
/// own, reporting what it removed, kept and found busy instead of failing.
/// Call holding the target lock.
pub(crate) async fn sweep_leftovers(t: &VolumeTarget) -> Result<Leftovers> {
    let d = docker::connect().await?;
    let volume = &t.volume.name;
    let mut found = Leftovers {
        volume: volume.clone(),
        ..Leftovers::default()
    };
    found.notes.extend(heal(&d, volume, false).await?);
    if matches!(read_journal(volume), Ok(Some(_))) {
        found.notes.push(format!(
            "left volume {volume} alone: a journal of a running ward is still open for it"
        ));
        return Ok(found);
    }
    if docker::inspect_volume(&d, volume).await?.is_none() {
        return Ok(found);
    }
    let helper = Helper::start(&d, &t.image, volume, MOUNT, false).await?;
    let swept = super::sweep::sweep_in(&d, &helper.name).await;
    helper.remove(&d).await?;
    let swept = swept?;
    for dir in &swept.unkept {
        let prev = super::previous::finish_keep(&d, &t.image, volume, dir).await?;
        found.notes.push(unkept_note(volume, dir, &prev));
    }
    found.removed = swept.removed;
    found.kept = swept.kept;
    found.busy = swept.busy;
    Ok(found)
}

async fn heal_journal(d: &Docker, mut jf: JournalFile) -> Result<String> {
    let j: TargetJournal = jf.entry.clone();
    let container = match &j.container {
        Some(c) if docker::inspect_container(d, c).await?.is_some() => Some(c.clone()),
        _ => None,
    };
    if let Some(c) = &container
        && j.phase == "stopping"
    {
        // The dead ward may have asked the engine to stop the container;
        // that stop goes on without it and could land after this repair
        // restarted the container. A second stop waits for the first, so
        // the container is surely down before anything below (and started
        // again at the end if it was running).
        docker::stop_container(d, c, 120).await?;
    }
    let mut done = String::from("nothing was half-done");
    if let (true, Some(id)) = (j.operation == "restore", &j.swap_id) {
        let helper = Helper::start(d, &j.image, &j.volume, MOUNT, false).await?;
        let r = async {
            let (_, uid, gid) = image_facts(d, &helper.name).await?;
            let sw = Swap {
                d,
                helper: &helper.name,
                id: id.clone(),
                root: j.root.clone(),
                pgdata_rel: j.pgdata_rel.clone(),
                uid,
                gid,
            };
            let live = Live {
                container: container.clone(),
                user: j.user.clone(),
                was_running: j.was_running,
                stop_timeout: crate::config::DEFAULT_STOP_TIMEOUT,
                keep_previous: j.keep_previous,
            };
            // Held from here on: no sweep may remove what this heal moves.
            sw.hold_lock().await?;
            let markers = sw.markers().await?;
            let has = |m: &str| markers.as_ref().is_some_and(|v| v.iter().any(|x| x == m));
            let new_data_ran = has("committed")
                || (has("in-done") && matches!(j.phase.as_str(), "starting" | "started" | "done"));
            let what = if markers.is_none() {
                // Perhaps killed while deleting a finished swap directory.
                sw.discard().await?;
                "the swap had finished or never started; removed what was left of it".to_string()
            } else if has("back") {
                if let Some(c) = &container {
                    docker::stop_container(d, c, 120).await?;
                }
                sw.swap_back().await?;
                "finished swapping the previous data back".to_string()
            } else if new_data_ran {
                if !has("committed") {
                    sw.commit(j.keep_previous).await?;
                }
                if j.keep_previous {
                    super::previous::keep(&sw, &j.image, &j.volume).await?;
                } else {
                    sw.discard().await?;
                }
                format!(
                    "the restore of {:?} had finished (the new data had run): kept it and \
                     cleaned up",
                    j.snapshot
                )
            } else if !has("out-done") && has("old") {
                // Stopped and partly moved aside, never fully: put it back.
                if let Some(c) = &container {
                    docker::stop_container(d, c, 120).await?;
                }
                sw.swap_back().await?;
                "the previous data was partly moved aside: put it back, removed the staged copy"
                    .to_string()
            } else if !has("staged") || !has("out-done") {
                sw.discard().await?;
                "the swap had not begun: removed the staged copy, the previous data is untouched"
                    .to_string()
            } else {
                let m = j
                    .store
                    .as_deref()
                    .and_then(|s| Store::open(s).ok())
                    .and_then(|s| s.load(&j.snapshot).ok());
                match complete(&sw, &live, m.as_ref(), &mut jf).await {
                    Ok(_) => {
                        if j.keep_previous {
                            super::previous::keep(&sw, &j.image, &j.volume).await?;
                        } else {
                            sw.discard().await?;
                        }
                        format!(
                            "staging had finished: completed the restore of {:?}",
                            j.snapshot
                        )
                    }
                    Err(e) if crate::error::cancelled() => return Err(e),
                    Err(e) if format!("{e:#}").contains("previous data is back") => {
                        format!("completing the restore failed ({e:#})")
                    }
                    Err(e) => return Err(e),
                }
            };
            anyhow::Ok(what)
        }
        .await;
        helper.remove(d).await?;
        done = r?;
    }
    if let Some(c) = &container
        && j.was_running
        && !docker::is_running(d, c).await?
    {
        docker::start_container(d, c).await?;
        settle(d, c, &j.user).await;
        done.push_str(&format!("; restarted container {c}, which it had stopped"));
    }
    jf.finish();
    Ok(done)
}
