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
//!
//! Work that stops a container or replaces data runs on its own thread
//! ([`shielded`]) so that Ctrl-C cannot abandon it half-way: the interrupt is
//! turned into a cancel that the work notices, and it restarts the container
//! or puts the safety snapshot back before ward exits.

pub mod archive;
pub mod checked;
pub mod copy;
pub mod crypt;
pub mod datadir;
pub mod manifest;
pub mod migration_head;
pub mod retention;
pub mod store;
pub mod template;
pub mod throwaway;
pub mod throwaway_native;
pub mod volume;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Result;
use chrono::Utc;
use serde::Serialize;

use crate::progress::Progress;
use crate::target::Target;
use manifest::Manifest;
use store::{Listed, Store};

/// How to take a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Cold,
    Online,
}

#[derive(Debug, Clone)]
pub struct CreateOptions {
    pub name: Option<String>,
    pub method: Method,
    pub stop_timeout: u32,
    pub labels: BTreeMap<String, String>,
}

/// What `create` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Created {
    pub name: String,
    pub id: String,
    pub method: Method,
    pub target: String,
    pub file_count: u64,
    pub total_bytes: u64,
    pub compressed_bytes: u64,
    pub seconds: f64,
    pub downtime_seconds: Option<f64>,
    pub archive: String,
    /// Whether the container was running before and is running again.
    pub restarted: bool,
    /// What ward repaired or noticed on the way (an interrupted ward's
    /// leftovers), for the command to show; domains do not print.
    #[serde(skip)]
    pub notes: Vec<String>,
}

impl Created {
    /// The report of a snapshot whose manifest `m` was just committed to `store`.
    pub(crate) fn of(
        store: &Store,
        m: &Manifest,
        method: Method,
        target: String,
        started: std::time::Instant,
        restarted: bool,
    ) -> Created {
        Created {
            name: m.name.clone(),
            id: m.id.clone(),
            method,
            target,
            file_count: m.file_count,
            total_bytes: m.total_bytes,
            compressed_bytes: m.compressed_bytes,
            seconds: started.elapsed().as_secs_f64(),
            downtime_seconds: m.downtime_seconds,
            archive: store.archive_location(&m.name),
            restarted,
            notes: Vec::new(),
        }
    }
}

/// What `restore` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Restored {
    pub name: String,
    pub target: String,
    pub safety_snapshot: Option<String>,
    pub seconds: f64,
    pub running: bool,
    pub sanity: Option<String>,
    /// Restore phases (volume restores): unpacking into the staging
    /// directory while the app runs, the renames, start to ready, and the
    /// application's downtime (stopped → ready).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub swap_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downtime_seconds: Option<f64>,
    /// What ward repaired or noticed on the way, for the command to show.
    #[serde(skip)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub safety: bool,
    pub stop_timeout: u32,
}

/// Warnings for each database of `m` whose recorded migration head is
/// behind or ahead of the migrations in `dir` (never a refusal).
pub fn migration_warnings(m: &manifest::Manifest, dir: &std::path::Path) -> Vec<String> {
    m.database
        .iter()
        .flat_map(|f| &f.databases)
        .filter_map(|db| {
            let head = db.migration_head.as_ref()?;
            migration_head::compare(head, &db.name, dir)
        })
        .collect()
}

/// Answers "go ahead?" for destructive operations (the command layer prompts).
pub type Confirm = Arc<dyn Fn(&str) -> Result<bool> + Send + Sync>;

/// The result of `verify`.
#[derive(Debug, Clone, Serialize)]
pub struct Verified {
    pub name: String,
    pub ok: bool,
    pub problems: Vec<String>,
    pub entries: u64,
    pub bytes: u64,
    pub deep: Option<String>,
    /// What was checked: "contents" (every file against its hash),
    /// [`SCOPE_STORED`] (an encrypted archive without its identity: the
    /// stored ciphertext's size and SHA-256), or "in-cluster copy".
    pub scope: &'static str,
}

/// [`Verified::scope`] of an encrypted archive checked without its identity.
pub const SCOPE_STORED: &str = "stored bytes";

/// A fault-injection point for the tests (`WARD_FAULT=<point>`, or several
/// separated by commas); each fires once per process (so a rollback through
/// the same code path succeeds); inert without the variable.
/// `<point>:kill` kills the process there with SIGKILL instead (a kill -9 at
/// an exact point: nothing is cleaned up); `<point>:sleep` pauses there for
/// three seconds (time for a test to pull a server from under it).
pub fn fault(point: &str) -> Result<()> {
    static FIRED: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let Ok(wanted) = std::env::var("WARD_FAULT") else {
        return Ok(());
    };
    for w in wanted.split(',') {
        if w.strip_suffix(":kill") == Some(point) {
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
        if w.strip_suffix(":sleep") == Some(point) {
            std::thread::sleep(std::time::Duration::from_secs(3));
        }
        if w == point {
            let mut fired = FIRED.lock().unwrap_or_else(|e| e.into_inner());
            if !fired.iter().any(|f| f == point) {
                fired.push(point.to_string());
                anyhow::bail!("injected fault at {point} (WARD_FAULT)");
            }
        }
    }
    Ok(())
}

/// Runs `work` on its own thread and runtime; if the caller is dropped (Ctrl-C),
/// the work is told to cancel and the drop waits until it has cleaned up.
pub async fn shielded<T, F, Fut>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T>>,
{
    struct JoinOnDrop(Option<std::thread::JoinHandle<()>>);
    impl Drop for JoinOnDrop {
        fn drop(&mut self) {
            if let Some(h) = self.0.take() {
                if !h.is_finished() {
                    crate::error::cancel();
                }
                let _ = h.join();
            }
        }
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let handle = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build();
        let result = match rt {
            Ok(rt) => rt.block_on(work()),
            Err(e) => Err(anyhow::anyhow!("cannot start a runtime: {e}")),
        };
        let _ = tx.send(result);
    });
    let mut guard = JoinOnDrop(Some(handle));
    let result = rx
        .await
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the snapshot worker thread panicked")));
    if let Some(h) = guard.0.take() {
        let _ = h.join();
    }
    result
}

/// A default snapshot name: `<stem>-<UTC timestamp>`.
pub fn default_name(target: &Target) -> String {
    format!("{}-{}", target.stem(), Utc::now().format("%Y%m%d-%H%M%S"))
}

/// A fresh snapshot id.
pub fn new_id() -> String {
    crate::docker::unique_name("s")
        .trim_start_matches("s-")
        .to_string()
}

/// Held while ward reads or replaces a target's data; released on drop (and
/// by the OS if ward dies).
#[derive(Debug)]
pub struct TargetLock {
    _file: std::fs::File,
}

/// The key a target is locked and journalled under.
fn target_key(target: &Target) -> String {
    match target {
        Target::Volume(v) => volume_key(&v.volume.name),
        Target::Datadir(d) => format!(
            "datadir:{}",
            std::fs::canonicalize(d)
                .unwrap_or_else(|_| d.clone())
                .display()
        ),
    }
}

fn volume_key(volume: &str) -> String {
    format!("volume:{volume}")
}

/// Where a target's lock lives: one file per volume or data directory, in
/// ward's state directory — the same directory, derived by the same
/// function, as the targets' journals — which every ward of this user on
/// this host shares whatever its store or working directory. So a restore
/// from one store and a snapshot into another cannot interleave on the same
/// data, and whoever holds a target's lock is the only one who may read or
/// repair its journal.
pub fn target_lock_path(target: &Target) -> std::path::PathBuf {
    key_lock_path(&target_key(target))
}

fn key_lock_path(key: &str) -> std::path::PathBuf {
    volume::state_dir().join("locks").join(format!(
        "target-{:016x}.lock",
        crate::seed::rng::fnv1a(key.as_bytes())
    ))
}

/// Opens (creating it, 0600, in a 0700 directory) the file an flock is taken
/// on. Shared by the target locks and `ward backup`'s run lock.
pub(crate) fn open_lock_file(path: &std::path::Path) -> Result<std::fs::File> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| {
                anyhow::anyhow!("cannot create ward's lock directory {}: {e}", dir.display())
            })?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot open the lock {}: {e}", path.display()))
}

/// Takes the lock of `key`: `None` if another ward holds it.
fn try_lock_key(key: &str) -> Result<Option<TargetLock>> {
    let path = key_lock_path(key);
    let file = open_lock_file(&path)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => Ok(Some(TargetLock { _file: file })),
        Err(fs4::TryLockError::WouldBlock) => Ok(None),
        Err(fs4::TryLockError::Error(e)) => {
            Err(anyhow::anyhow!("cannot lock {}: {e}", path.display()))
        }
    }
}

/// Takes the target's lock, or fails at once if another ward holds it.
pub fn lock_target(target: &Target) -> Result<TargetLock> {
    match try_lock_key(&target_key(target))? {
        Some(lock) => Ok(lock),
        None => Err(crate::error::Busy(format!(
            "another ward process is snapshotting or restoring {} (from this or another store) — \
             wait for it to finish",
            target.describe()
        ))
        .into()),
    }
}

/// Before any command does its own work: finishes or undoes what killed
/// wards left on any target of this user (journals in ward's state
/// directory, wherever they ran from and whatever their store), and
/// restarts the containers they stopped. Journals of wards still running
/// (their target is locked, or their owner is alive) are left alone. Never
/// fails the command: problems become notes (the command's own work on the
/// same target then refuses with the full error). Returns the notes.
pub async fn heal_interrupted() -> Vec<String> {
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
pub async fn create(
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
        Some(bytes) => format!("about {} written (all that was free)", human_bytes(bytes)),
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

/// Re-hashes a snapshot against its manifest.
pub fn verify(store: &Store, name: &str, progress: &dyn Progress) -> Result<Verified> {
    let m = store.load(name)?;
    if store.archive_size(name)?.is_none() {
        return Ok(Verified {
            name: name.into(),
            ok: false,
            problems: vec![format!(
                "the archive {} is missing",
                store.archive_location(name)
            )],
            entries: 0,
            bytes: 0,
            deep: None,
            scope: "contents",
        });
    }
    if m.encryption.is_some() && !store.keys().has_identity() {
        return verify_stored(store, &m, progress);
    }
    progress.stage(&format!("verifying {name}"), m.tar_bytes);
    let checked = checked::check(store, &m, checked::Destination::Nowhere, progress)?;
    progress.finish();
    Ok(Verified {
        name: name.into(),
        ok: checked.problems.is_empty(),
        problems: checked.problems,
        entries: checked.entries,
        bytes: checked.bytes,
        deep: None,
        scope: "contents",
    })
}

/// Verifies an encrypted archive without its identity: its stored bytes
/// (the ciphertext) against the size and SHA-256 the manifest records —
/// corruption is found without the key (a backup host keeps none).
fn verify_stored(store: &Store, m: &Manifest, progress: &dyn Progress) -> Result<Verified> {
    progress.stage(
        &format!("verifying {} (as stored)", m.name),
        m.compressed_bytes,
    );
    let (mut tally, result) = archive::Tally::new(store.open_archive(&m.name)?);
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        if crate::error::cancelled() {
            return Err(crate::error::Interrupted.into());
        }
        match std::io::Read::read(&mut tally, &mut buf) {
            Ok(0) => break,
            Ok(n) => progress.advance(n as u64),
            Err(_) => return Err(result.transport_error()),
        }
    }
    progress.finish();
    let (sha, size) = result.finish();
    let mut problems = Vec::new();
    if size != m.compressed_bytes {
        problems.push(format!(
            "the archive is {size} bytes, the manifest says {} (truncated or appended to)",
            m.compressed_bytes
        ));
    } else if sha != m.archive_sha256 {
        problems.push(
            "the archive's SHA-256 does not match the manifest (the file was altered)".into(),
        );
    }
    Ok(Verified {
        name: m.name.clone(),
        ok: problems.is_empty(),
        problems,
        entries: 0,
        bytes: size,
        deep: None,
        scope: SCOPE_STORED,
    })
}

/// `verify --deep`: start Postgres on a throwaway restored copy, run
/// pg_amcheck and a sanity query; records "last verified" in the manifest.
pub async fn deep_verify(store: &Store, name: &str, progress: Arc<dyn Progress>) -> Result<String> {
    let m = store.load(name)?;
    let msg = volume::deep_verify(store, &m, progress).await?;
    let _lock = store.lock()?;
    let mut m = store.load(name)?;
    m.last_verified = Some(Utc::now());
    store.write_manifest(&m)?;
    Ok(msg)
}

/// Restores snapshot `name` into `target`.
pub async fn restore(
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
pub async fn restore_keeping(
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
pub async fn restore_previous(
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
pub struct Leftovers {
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
pub async fn sweep_leftovers(target: &Target) -> Result<Option<Leftovers>> {
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
pub async fn recover(target: &Target) -> Result<Option<String>> {
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
pub struct Damaged(pub String);

/// Whether [`prune`] deletes or only decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pruning {
    DryRun,
    Delete,
}

/// Decides what `policy` keeps and, unless a dry run, asks `approve` (with
/// the number to delete) and deletes the rest — all under one store lock, so
/// what is deleted is exactly what was decided and approved. `drop_copy`
/// runs first for each deleted snapshot (a fast snapshot's in-cluster copy).
/// Unreadable manifests and incomplete archives are never pruned (`delete
/// NAME` removes them).
pub async fn prune(
    store: &Store,
    policy: retention::Policy,
    plan: Pruning,
    approve: impl FnOnce(usize) -> Result<bool>,
    mut drop_copy: impl AsyncFnMut(&Manifest) -> Result<()>,
) -> Result<Vec<retention::Decision>> {
    let _lock = store.lock()?;
    let listed: Vec<Manifest> = store
        .list()?
        .into_iter()
        .filter_map(|l| match l {
            Listed::Ok(m) => Some(*m),
            Listed::Unreadable { .. } | Listed::Incomplete { .. } => None,
        })
        .collect();
    let ages: Vec<(String, chrono::DateTime<Utc>)> = listed
        .iter()
        .map(|m| (m.name.clone(), m.created_at))
        .collect();
    let decisions = retention::select(&ages, policy);
    let doomed: Vec<&Manifest> = decisions
        .iter()
        .filter(|d| !d.keep)
        .filter_map(|d| listed.iter().find(|m| m.name == d.name))
        .collect();
    if plan == Pruning::DryRun || doomed.is_empty() {
        return Ok(decisions);
    }
    if !approve(doomed.len())? {
        return crate::error::usage("prune cancelled: nothing was deleted");
    }
    for m in doomed {
        drop_copy(m).await?;
        store.delete(&m.name)?;
    }
    Ok(decisions)
}

/// What `delete NAME` found under the name.
#[derive(Debug)]
pub enum ForDeletion {
    /// A whole snapshot, its manifest trusted.
    Whole(Box<Manifest>),
    /// A damaged manifest, and why: the snapshot's own files are removed by
    /// name without trusting anything inside them.
    Damaged(String),
    /// An archive without a manifest (a create interrupted between its two
    /// renames): only the archive, by name.
    Incomplete,
}

/// Looks up a snapshot about to be deleted.
pub fn for_deletion(store: &Store, name: &str) -> Result<ForDeletion> {
    store::check_name(name)?;
    if store.incomplete(name)? {
        return Ok(ForDeletion::Incomplete);
    }
    match store.load(name) {
        Ok(m) => Ok(ForDeletion::Whole(Box::new(m))),
        Err(e) => match e.downcast::<Damaged>() {
            Ok(damage) => Ok(ForDeletion::Damaged(damage.0)),
            Err(other) => Err(other),
        },
    }
}

/// Host-side facts used by the datadir path and messages.
pub fn human_bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", units[i])
    }
}

/// The major version in a PG_VERSION file's contents ("15", "9.6" → 9).
pub fn parse_major(text: &str) -> Option<u32> {
    text.trim().split('.').next()?.parse().ok()
}

/// Returns the manifest of a finished snapshot (tests, `show`).
pub fn load(store: &Store, name: &str) -> Result<Manifest> {
    store.load(name)
}

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
pub fn check_space(store: &Store, raw_bytes: u64) -> Result<()> {
    // Postgres data compresses 2–7× with zstd -1; reserve 60 % plus slack.
    let need = raw_bytes / 10 * 6 + 16 * 1024 * 1024;
    let have = store.available()?;
    if have < need {
        return crate::error::usage(format!(
            "not enough free space in {}: {} available, about {} needed for {} of data — free some \
             space, prune old snapshots, or use another --store",
            store.dir.display(),
            human_bytes(have),
            human_bytes(need),
            human_bytes(raw_bytes)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majors_parse() {
        assert_eq!(parse_major("15\n"), Some(15));
        assert_eq!(parse_major("9.6"), Some(9));
        assert_eq!(parse_major("x"), None);
    }

    #[test]
    fn bytes_are_human() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
