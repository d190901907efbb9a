//! Restoring a snapshot into a volume by staging, then swapping (see
//! [`super::swap`]): in one helper container, sweep stale swap directories,
//! probe the target image, unpack the archive through the checked reader
//! into a swap directory inside the volume while the container keeps
//! running; then [`super::complete`] stops it, exchanges old and new
//! contents by renames, starts it and proves it runs the snapshot's cluster
//! — and swaps the previous contents back if any step after the stop fails.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::Utc;

use super::complete::{Live, complete};
use super::container::{image_and_data_facts, postgres_user};
use super::create::cold;
use super::journal::{JournalFile, TargetJournal, recover};
use super::swap::{MOUNT, Swap};
use super::upload::{Upload, stream_checked};
use crate::docker::{self, Docker, Helper};
use crate::progress::Progress;
use crate::snapshot::manifest::{Layout, Manifest};
use crate::snapshot::store::Store;
use crate::snapshot::{Confirm, CreateOptions, Method, RestoreOptions, Restored, fault};
use crate::target::VolumeTarget;

/// Restores a verified snapshot into the volume.
pub(crate) async fn restore(
    store: &Store,
    m: &Manifest,
    t: &VolumeTarget,
    opts: &RestoreOptions,
    keep_previous: bool,
    confirm: Confirm,
    progress: Arc<dyn Progress>,
) -> Result<Restored> {
    let started = Instant::now();
    let d = docker::connect().await?;
    let mut notes = recover(
        &d,
        store,
        "restore",
        t.container.as_ref().map(|c| c.name.as_str()),
    )
    .await?;
    notes.extend(super::heal::heal(&d, &t.volume.name, true).await?);
    let target_desc = crate::target::Target::Volume(Box::new(t.clone())).describe();
    if m.pgdata_rel != t.pgdata_rel {
        return crate::error::usage(format!(
            "incompatible layout: the snapshot keeps PGDATA at {:?} inside its volume, {target_desc} \
             keeps it at {:?} (PG 18 images mount /var/lib/postgresql and use 18/docker) — restore into \
             a container of the same image layout",
            m.pgdata_rel, t.pgdata_rel
        ));
    }
    // One helper for the whole restore — it sweeps stale swap directories,
    // probes the image and the current data, then stages — because every
    // container start is a second or so the restore (and a kill-trial) pays.
    let helper = Helper::start(&d, &t.image, &t.volume.name, MOUNT, false).await?;
    let r = restore_in(
        &d,
        &helper.name,
        Request {
            store,
            m,
            t,
            opts,
            keep_previous,
            target_desc,
        },
        &mut notes,
        confirm,
        progress,
    )
    .await;
    // The swap directory is gone (or the journal keeps it for the next
    // ward) whatever happened; the helper goes too.
    let removed = helper.remove(&d).await;
    let mut restored = r.inspect_err(|_| super::warn_dropped(&notes))?;
    removed?;
    restored.seconds = started.elapsed().as_secs_f64();
    restored.notes = notes;
    Ok(restored)
}

/// What is restored where, and how.
struct Request<'a> {
    store: &'a Store,
    m: &'a Manifest,
    t: &'a VolumeTarget,
    opts: &'a RestoreOptions,
    keep_previous: bool,
    target_desc: String,
}

/// [`restore`] with its helper (the volume read-write at [`MOUNT`]) started.
async fn restore_in(
    d: &Docker,
    helper: &str,
    req: Request<'_>,
    notes: &mut Vec<String>,
    confirm: Confirm,
    progress: Arc<dyn Progress>,
) -> Result<Restored> {
    let Request {
        store,
        m,
        t,
        opts,
        keep_previous,
        target_desc,
    } = req;
    let d = d.clone();
    if keep_previous {
        // Refused before anything is staged or stopped.
        super::previous::previous_state(&d, &t.volume.name).await?;
    }
    notes.extend(super::heal::sweep(&d, &t.image, helper, &t.volume.name).await?);
    // The image's facts and the current data's version, through the helper.
    let pg_version = format!("{}/PG_VERSION", join(MOUNT, &t.pgdata_rel));
    let ((major, uid, gid), current) = image_and_data_facts(&d, helper, &pg_version).await?;
    let current_major = current.as_deref().and_then(crate::pg::parse_major);
    if let Some(maj) = major.or(current_major)
        && maj != m.pg_major
    {
        return crate::error::usage(format!(
            "snapshot {:?} holds a PostgreSQL {} data directory but {target_desc} runs PostgreSQL {maj}; \
             a physical copy only starts on the same major version — restore into a PostgreSQL {} \
             container, or move the data across versions with pg_upgrade or pg_dump/pg_restore",
            m.name, m.pg_major, m.pg_major
        ));
    }
    let question = format!(
        "Replace the data of {target_desc} with snapshot {:?} (taken {})?{}",
        m.name,
        m.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
        if opts.safety && current_major.is_some() {
            " A safety snapshot of the current data is taken first."
        } else {
            ""
        }
    );
    if !confirm(&question)? {
        return crate::error::usage("restore cancelled: nothing was changed");
    }
    // --safety: an extra copy of the current data into the store. The swap
    // itself does not need it (the previous data stays on disk until the
    // new data runs).
    let safety = if opts.safety && current_major.is_some() {
        let name = format!(
            "safety-{}-{}",
            crate::target::Target::Volume(Box::new(t.clone())).stem(),
            Utc::now().format("%Y%m%d-%H%M%S")
        );
        let mut labels = BTreeMap::new();
        labels.insert("ward.safety".to_string(), "1".to_string());
        labels.insert("ward.safety.before-restore-of".to_string(), m.name.clone());
        let copts = CreateOptions {
            name: Some(name.clone()),
            method: Method::Cold,
            stop_timeout: opts.stop_timeout,
            labels,
        };
        cold(&d, store, t, &name, &copts, progress.clone(), true)
            .await
            .context("taking the safety snapshot (nothing was changed)")?;
        Some(name)
    } else {
        None
    };

    let was_running = match &t.container {
        Some(c) => docker::is_running(&d, &c.name).await?,
        None => false,
    };
    let (root, upload_rel) = match &m.layout {
        Layout::Volume { root, .. } => (root.clone(), String::new()),
        Layout::Pgdata => ("vol".to_string(), join("vol", &t.pgdata_rel)),
    };
    let id = crate::snapshot::new_id();
    let mut journal = JournalFile::begin(TargetJournal {
        store: Some(store.dir.clone()),
        snapshot: m.name.clone(),
        keep_previous,
        ..TargetJournal::restore(t, was_running, id.clone(), root.clone())
    })?;
    let sw = Swap {
        d: &d,
        helper,
        id,
        root,
        pgdata_rel: t.pgdata_rel.clone(),
        uid,
        gid,
    };
    let stage_started = Instant::now();
    let room = Room {
        volume: &t.volume.name,
        keep_previous,
    };
    if let Err(e) = stage(&sw, store, m, &upload_rel, &room, progress.clone()).await {
        // Nothing but the staging directory was touched.
        crate::error::uncancel();
        sw.discard().await?;
        journal.finish();
        if crate::error::is_error_not_finding(&e)
            || e.downcast_ref::<crate::snapshot::Damaged>().is_some()
        {
            return Err(e);
        }
        return Err(e.context(format!(
            "staging the restore failed; {target_desc} was not touched"
        )));
    }
    let stage_seconds = stage_started.elapsed().as_secs_f64();
    journal.set("staged")?;
    let live = Live {
        container: t.container.as_ref().map(|c| c.name.clone()),
        user: postgres_user(t),
        was_running,
        stop_timeout: opts.stop_timeout,
        keep_previous,
    };
    let outcome = complete(&sw, &live, Some(m), &mut journal).await;
    let swapped = match outcome {
        Ok(s) => s,
        Err(e) => {
            // Rolled back: nothing left to repair. Otherwise the journal
            // stays for the next ward.
            if journal.entry.phase == "rolled-back" {
                journal.finish();
            }
            return Err(e);
        }
    };
    let kept = if keep_previous {
        Some(super::previous::keep(&sw, &t.image, &t.volume.name).await?)
    } else {
        notes.extend(dispose(&sw, t, swapped.running).await?);
        None
    };
    journal.finish();
    if let Some(v) = &kept {
        notes.push(format!(
            "the previous contents are kept in volume {v} (outside PGDATA); put them back with \
             `ward snapshot restore --previous` on this target"
        ));
    }
    tracing::info!(
        "restore phases: stage {stage_seconds:.2} s, swap {:.2} s, start {:.2} s, downtime {:.2} s",
        swapped.swap_seconds,
        swapped.start_seconds,
        swapped.downtime_seconds
    );
    Ok(Restored {
        name: m.name.clone(),
        target: target_desc,
        safety_snapshot: safety,
        // The caller's clock: it started before the helper.
        seconds: 0.0,
        running: swapped.running,
        sanity: swapped.sanity,
        stage_seconds: Some(stage_seconds),
        swap_seconds: Some(swapped.swap_seconds),
        start_seconds: Some(swapped.start_seconds),
        downtime_seconds: Some(swapped.downtime_seconds),
        notes: Vec::new(),
    })
}

/// Deletes the previous contents once the new data has run and proved its
/// identity: in the background, inside the running target container (the
/// app is back up; the restore ends without waiting the seconds a GiB of
/// deletes takes), else here. A container stopped mid-delete leaves the
/// rest as `.ward-trash-<id>`, which the next ward's sweep removes before
/// anything snapshots the volume.
/// Returns the note that says so when the delete goes on in the background.
async fn dispose(sw: &Swap<'_>, t: &VolumeTarget, running: bool) -> Result<Option<String>> {
    if let (Some(c), true) = (&t.container, running) {
        let trash = sw.retire().await?;
        fault("restore:before-background-delete")?;
        let path = format!("{}/{trash}", t.mount.trim_end_matches('/'));
        // As root: the swap directory's own entries are root's.
        match docker::exec_detached(sw.d, &c.name, Some("0"), &["rm", "-rf", &path]).await {
            Ok(()) => {
                return Ok(Some(format!(
                    "note: the replaced data is being deleted in the background in container {} \
                     ({path}); until that ends the volume holds both copies — if it is cut short \
                     (the container stopped), the next `ward snapshot create`/`restore` or `ward \
                     doctor` on this target removes what is left",
                    c.name
                )));
            }
            Err(e) => tracing::info!(
                "deleting {path} in {} failed ({e:#}); deleting it here",
                c.name
            ),
        }
    }
    sw.discard().await?;
    Ok(None)
}

/// What must fit in the volume besides the staged copy.
struct Room<'a> {
    volume: &'a str,
    /// `--keep-previous` copies the current data into another volume,
    /// which the local driver keeps on the same file system.
    keep_previous: bool,
}

/// Headroom left free beside the staged copy: the application keeps
/// running on the old data while ward stages, and its WAL and tables keep
/// growing — 10 % of the snapshot, at least 64 MiB.
pub(crate) fn staging_headroom(total_bytes: u64) -> u64 {
    (total_bytes / 10).max(64 * 1024 * 1024)
}

/// Unpacks the archive through the checked reader into the swap directory
/// (one decompression; every file hashed against the manifest as it
/// streams), after checking the volume has room for it.
async fn stage(
    sw: &Swap<'_>,
    store: &Store,
    m: &Manifest,
    upload_rel: &str,
    room: &Room<'_>,
    progress: Arc<dyn Progress>,
) -> Result<()> {
    let previous = if room.keep_previous {
        sw.current_bytes().await?
    } else {
        0
    };
    let need = m.total_bytes + staging_headroom(m.total_bytes) + previous;
    let free = sw.free_bytes().await?;
    if free < need {
        let human = crate::units::human_bytes;
        return crate::error::usage(format!(
            "not enough free space in volume {} to restore snapshot {:?}: {} free, about {} needed \
             ({} for the staged copy, {} headroom for the running database{}) — grow the volume \
             or free space in it and try again (nothing was changed)",
            room.volume,
            m.name,
            human(free),
            human(need),
            human(m.total_bytes),
            human(staging_headroom(m.total_bytes)),
            if room.keep_previous {
                format!(", {} for the --keep-previous copy", human(previous))
            } else {
                String::new()
            }
        ));
    }
    let upload_to = join(&format!("{}/stage", sw.dir()), upload_rel);
    sw.prepare(&upload_to).await?;
    let streamed = stream_checked(
        Upload {
            d: sw.d,
            helper: sw.helper,
            store,
            m,
            progress,
            stage: &format!("staging {}", m.name),
        },
        &upload_to,
    )
    .await;
    if let Err(e) = streamed {
        // A full volume is not a damaged snapshot: say what is full.
        let text = format!("{e:#}").to_lowercase();
        let free_now = sw.free_bytes().await.unwrap_or(u64::MAX);
        if e.downcast_ref::<crate::snapshot::Damaged>().is_none()
            && (text.contains("no space left") || free_now < 4 * 1024 * 1024)
        {
            return crate::error::usage(format!(
                "volume {} filled up while staging snapshot {:?} ({} free now; the snapshot \
                 needs {} plus headroom, and the running database kept writing) — grow the \
                 volume or free space in it and restore again; the snapshot is fine and the \
                 current data was not touched",
                room.volume,
                m.name,
                crate::units::human_bytes(free_now),
                crate::units::human_bytes(m.total_bytes)
            ));
        }
        return Err(e);
    }
    fault("restore:mid-stage")?;
    let data_link = matches!(
        m.layout,
        Layout::Volume {
            data_link: true,
            ..
        }
    );
    sw.seal(data_link).await
}

fn join(a: &str, b: &str) -> String {
    if b.is_empty() {
        a.to_string()
    } else {
        format!("{a}/{b}")
    }
}
