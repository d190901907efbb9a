//! `ward snapshot`: verified snapshots and safe restores of Postgres data in
//! Docker volumes (and native data directories).
//!
//! - [`archive`]: tar ⇄ zstd streams, per-file hashes, the entry allow-list.
//! - [`manifest`]: the JSON beside each archive.
//! - [`store`]: the directory of snapshots (atomic writes, lock, free space).
//! - [`retention`]: grandfather-father-son selection for `prune`.
//! - [`volume`]: cold / online snapshots and restores through the engine.
//! - [`datadir`]: the same for a native, stopped cluster.
//! - [`throwaway`]: a Postgres server on a restored copy (`verify --deep`,
//!   `check --against snapshot:NAME`); [`throwaway_native`] is the same for
//!   data-directory snapshots, on this machine's own server binaries.
//! - `verify`, `pruning`: checking and deleting stored snapshots; `reports`:
//!   the options and results of the verbs; `target_lock`: one ward per
//!   target at a time; `shield`: Ctrl-C-proof work and fault injection.
//!
//! Work that stops a container or replaces data runs on its own thread
//! ([`shielded`]) so that Ctrl-C cannot abandon it half-way: the interrupt is
//! turned into a cancel that the work notices, and it restarts the container
//! or puts the safety snapshot back before ward exits.

pub mod archive;
pub(crate) mod checked;
pub(crate) mod copy;
pub(crate) mod crypt;
pub(crate) mod datadir;
pub mod manifest;
pub(crate) mod migration_head;
mod pruning;
mod reports;
pub(crate) mod retention;
mod shield;
pub(crate) mod store;
mod target_lock;
pub mod template;
pub(crate) mod throwaway;
pub(crate) mod throwaway_native;
mod verify;
pub(crate) mod volume;

pub(crate) use pruning::{ForDeletion, Pruning, for_deletion, prune};
pub(crate) use reports::{
    Confirm, CreateOptions, Created, Method, RestoreOptions, Restored, SCOPE_STORED, Verified,
};
pub(crate) use shield::{fault, shielded};
pub(crate) use target_lock::open_lock_file;
pub use target_lock::{TargetLock, lock_target, target_lock_path};
use target_lock::{target_key, try_lock_key, volume_key};
pub(crate) use verify::{deep_verify, verify};

use std::sync::Arc;

use anyhow::Result;
use chrono::Utc;
use serde::Serialize;

use crate::progress::Progress;
use crate::target::Target;
use store::Store;

/// Warnings for each database of `m` whose recorded migration head is
/// behind or ahead of the migrations in `dir` (never a refusal).
pub(crate) fn migration_warnings(m: &manifest::Manifest, dir: &std::path::Path) -> Vec<String> {
    m.database
        .iter()
        .flat_map(|f| &f.databases)
        .filter_map(|db| {
            let head = db.migration_head.as_ref()?;
            migration_head::compare(head, &db.name, dir)
        })
        .collect()
}

/// A default snapshot name: `<stem>-<UTC timestamp>`.
pub(crate) fn default_name(target: &Target) -> String {
    format!("{}-{}", target.stem(), Utc::now().format("%Y%m%d-%H%M%S"))
}

/// A fresh snapshot id.
pub(crate) fn new_id() -> String {
    crate::docker::unique_name("s")
        .trim_start_matches("s-")
        .to_string()
}

/// Before any command does its own work: finishes or undoes what killed
/// wards left on any target of this user (journals in ward's state
/// directory, wherever they ran from and whatever their store), and
/// restarts the containers they stopped. Journals of wards still running
/// (their target is locked, or their owner is alive) are left alone. Never
/// fails the command: problems become notes (the command's own work on the
/// same target then refuses with the full error). Returns the notes.
pub(crate) async fn heal_interrupted() -> Vec<String> {
    let mut notes = Vec::new();
    let mut docker = None;
    for (kind, path) in volume::journal_files() {
        let outcome = async {
            if kind == "datadir" {
                let Some(dir) = datadir::journal_dir(&path) else {
                    return Ok(Some(format!(
                        "warning: ignoring the unreadable journal {}",
                        path.display()
                    )));
                };
                let target = Target::Datadir(dir.clone());
                let Some(_lock) = try_lock_key(&target_key(&target))? else {
                    return Ok(None);
                };
                return datadir::heal(&dir, false);
            }
            let Some(name) = volume::journal_volume(&path) else {
                return Ok(Some(format!(
                    "warning: ignoring the unreadable journal {}",
                    path.display()
                )));
            };
            let Some(_lock) = try_lock_key(&volume_key(&name))? else {
                return Ok(None);
            };
            if docker.is_none() {
                docker = Some(crate::docker::connect().await?);
            }
            let d = docker.as_ref().expect("connected above");
            volume::heal(d, &name, false).await
        }
        .await;
        match outcome {
            Ok(Some(note)) => notes.push(note),
            Ok(None) => {}
            Err(e) if crate::error::cancelled() => {
                notes.push(format!("interrupted while repairing ({e:#})"));
                break;
            }
            Err(e) => notes.push(format!(
                "warning: could not finish what an interrupted ward left ({}): {e:#} — \
                 `ward snapshot recover` on that target retries",
                path.display()
            )),
        }
    }
    notes
}

/// Takes a snapshot of `target` into `store`.
pub(crate) async fn create(
    store: &Store,
    target: &Target,
    opts: &CreateOptions,
    progress: Arc<dyn Progress>,
) -> Result<Created> {
    let name = match &opts.name {
        Some(n) => n.clone(),
        None => default_name(target),
    };
    store::check_name(&name)?;
    store.check_writable()?;
    let _lock = store.lock()?;
    let _target_lock = lock_target(target)?;
    if store.exists(&name)? {
        return crate::error::usage(format!(
            "a snapshot named {name:?} already exists in {} — pick another name or delete it first",
            store.location()
        ));
    }
    let free_at_start = store.available().ok();
    let made = match target {
        Target::Volume(v) => volume::create(store, v, &name, opts, progress).await,
        Target::Datadir(dir) => {
            if opts.method == Method::Online {
                return crate::error::usage(
                    "--online needs a running container; for --datadir stop the server and take a cold snapshot",
                );
            }
            datadir::create(store, dir, &name, opts, progress).await
        }
    };
    made.map_err(|e| explain_full_store(e, store, &name, free_at_start))
}

/// A store that fills up mid-write is named, with how much was written;
/// the partial archive is already gone (the writers' cleanup) and no
/// manifest was written, so the error says nothing was kept.
fn explain_full_store(
    e: anyhow::Error,
    store: &Store,
    name: &str,
    free_at_start: Option<u64>,
) -> anyhow::Error {
    let full = e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::StorageFull)
            || cause.to_string().contains("No space left on device")
    });
    if !full {
        return e;
    }
    let written = match free_at_start {
        Some(bytes) => format!(
            "about {} written (all that was free)",
            crate::units::human_bytes(bytes)
        ),
        None => "the free space used up".to_string(),
    };
    crate::error::UsageError(format!(
        "the snapshot store {} is full: snapshot {name:?} needed more than it had — {written}; \
         the partial archive was removed and no snapshot was kept — free space there, prune \
         old snapshots, or pass another --store",
        store.location()
    ))
    .into()
}

/// Restores snapshot `name` into `target`.
pub(crate) async fn restore(
    store: &Store,
    name: &str,
    target: &Target,
    opts: &RestoreOptions,
    confirm: Confirm,
    progress: Arc<dyn Progress>,
) -> Result<Restored> {
    restore_keeping(store, name, target, opts, false, confirm, progress).await
}

/// [`restore`]; with `keep_previous`, a volume's replaced contents are kept
/// in `<volume>-ward-previous` instead of deleted.
pub(crate) async fn restore_keeping(
    store: &Store,
    name: &str,
    target: &Target,
    opts: &RestoreOptions,
    keep_previous: bool,
    confirm: Confirm,
    progress: Arc<dyn Progress>,
) -> Result<Restored> {
    let m = store.load(name)?;
    // No separate verify pass for volumes: the restore unpacks through the
    // checked reader into a staging directory inside the volume (one
    // decompression), and any problem deletes the staging copy before
    // anything else is touched. Only the cheap checks run first.
    let problem = match store.archive_size(name)? {
        None => Some(format!(
            "the archive {} is missing",
            store.archive_location(name)
        )),
        Some(n) if n != m.compressed_bytes => Some(format!(
            "the archive is {n} bytes, the manifest says {} (truncated or appended to)",
            m.compressed_bytes
        )),
        Some(_) => None,
    };
    if let Some(p) = problem {
        return Err(Damaged(format!(
            "snapshot {name:?} failed verification, nothing was changed: {p}"
        ))
        .into());
    }
    // A data directory's staging copy is a sibling of it, outside anything
    // ward owns: a damaged snapshot is refused before even that is created.
    if matches!(target, Target::Datadir(_)) {
        let v = verify(store, name, progress.as_ref())?;
        if !v.ok {
            return Err(Damaged(format!(
                "snapshot {name:?} failed verification, nothing was changed: {}",
                v.problems.join("; ")
            ))
            .into());
        }
    }
    if m.encryption.is_some() {
        // A missing or wrong identity is said now, before anything is
        // stopped, confirmed or copied (only the age header is read).
        store.keys().decrypt(store.open_archive(name)?, name)?;
    }
    if opts.safety {
        store.check_writable()?;
    }
    if opts.safety && m.encryption.is_some() && !store.keys().encrypting() {
        return crate::error::usage(format!(
            "snapshot {name:?} is encrypted, and the safety snapshot of the current data would \
             go into {} unencrypted — pass --encrypt-to (or WARD_AGE_RECIPIENTS, ward.toml \
             [store] encrypt_to), or restore without --safety",
            store.location()
        ));
    }
    let _lock = store.lock()?;
    let _target_lock = lock_target(target)?;
    match target {
        Target::Volume(t) => {
            volume::restore(store, &m, t, opts, keep_previous, confirm, progress).await
        }
        Target::Datadir(_) if keep_previous => crate::error::usage(
            "--keep-previous works on Docker volume targets; a data-directory restore deletes \
             the replaced directory once the new one is in place (take a snapshot first to keep it)",
        ),
        Target::Datadir(dir) => datadir::restore(store, &m, dir, opts, confirm, progress).await,
    }
}

/// `restore --previous`: puts back what `--keep-previous` kept.
pub(crate) async fn restore_previous(
    target: &Target,
    opts: &RestoreOptions,
    confirm: Confirm,
    progress: Arc<dyn Progress>,
) -> Result<Restored> {
    let _target_lock = lock_target(target)?;
    match target {
        Target::Volume(t) => volume::restore_previous(t, opts, confirm, progress).await,
        Target::Datadir(_) => crate::error::usage(
            "--previous works on Docker volume targets (data-directory restores keep no previous copy)",
        ),
    }
}

/// What `ward doctor` found and did about ward's own leftovers in a target's
/// volume: swap and trash directories of interrupted restores that no
/// journal accounts for.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct Leftovers {
    pub volume: String,
    /// What repairing a dead ward's journal did first.
    pub notes: Vec<String>,
    /// Deleted: trash, staging leftovers, finished swaps.
    pub removed: Vec<String>,
    /// Left alone: may hold (part of) the previous data.
    pub kept: Vec<String>,
    /// Left alone: a live ward's helper holds its lock (a restore right now).
    pub busy: Vec<String>,
}

/// `ward doctor`: repairs `target`'s journal if a dead ward left one, then
/// sweeps its volume's stale swap directories (the restore rules: keep any
/// that may hold previous data or that a live helper locks). None for a
/// data-directory target (its leftovers are siblings a journal names).
pub(crate) async fn sweep_leftovers(target: &Target) -> Result<Option<Leftovers>> {
    let Target::Volume(t) = target else {
        return Ok(None);
    };
    let Some(_target_lock) = try_lock_key(&target_key(target))? else {
        // Busy, not broken: that ward sweeps before it works on the volume.
        return Ok(Some(Leftovers {
            volume: t.volume.name.clone(),
            notes: vec![format!(
                "another ward is working on {} right now; left it alone",
                target.describe()
            )],
            ..Leftovers::default()
        }));
    };
    volume::sweep_leftovers(t).await.map(Some)
}

/// `ward snapshot recover`: finishes or undoes what an interrupted ward left
/// on `target`. Returns what was done (None: nothing was left).
pub(crate) async fn recover(target: &Target) -> Result<Option<String>> {
    let _target_lock = lock_target(target)?;
    match target {
        Target::Volume(t) => {
            let d = crate::docker::connect().await?;
            volume::heal(&d, &t.volume.name, true).await
        }
        Target::Datadir(dir) => datadir::heal(dir, true),
    }
}

/// A snapshot failed verification (exit 1).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Damaged(pub String);

/// The value of `field` in `pg_controldata` output ("Database cluster state").
fn control_field(out: &str, field: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| v.trim_start_matches(':').trim().to_string())
}

/// Removes a temporary file or directory unless disarmed: a snapshot or
/// restore that fails half-way leaves nothing behind.
struct Cleanup(Option<std::path::PathBuf>);

impl Cleanup {
    fn new(path: std::path::PathBuf) -> Cleanup {
        Cleanup(Some(path))
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            if p.is_dir() {
                let _ = std::fs::remove_dir_all(&p);
            } else {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// Checks there is room for roughly `raw_bytes` of data compressed.
pub(crate) fn check_space(store: &Store, raw_bytes: u64) -> Result<()> {
    // Postgres data compresses 2–7× with zstd -1; reserve 60 % plus slack.
    let need = raw_bytes / 10 * 6 + 16 * 1024 * 1024;
    let have = store.available()?;
    if have < need {
        return crate::error::usage(format!(
            "not enough free space in {}: {} available, about {} needed for {} of data — free some \
             space, prune old snapshots, or use another --store",
            store.dir.display(),
            crate::units::human_bytes(have),
            crate::units::human_bytes(need),
            crate::units::human_bytes(raw_bytes)
        ));
    }
    Ok(())
}
