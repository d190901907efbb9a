//! Surviving a ward that dies half-way. Every operation that stops a
//! container writes a journal entry first; the next ward reads the entries
//! of dead processes and restarts what they stopped, or refuses to snapshot a
//! volume a dead restore left half-replaced. While ward lives, [`RestartGuard`]
//! restarts the container on every path out.

use anyhow::Result;
use chrono::Utc;

use super::container::{container_user, settle};
pub(crate) use super::owner::Owner;
use crate::docker::{self, Docker};
use crate::snapshot::store::Store;

/// Restarts a container that ward stopped — on every path: explicitly on
/// success, and from `Drop` on errors, panics and Ctrl-C.
#[derive(Debug)]
pub(crate) struct RestartGuard {
    name: String,
    armed: bool,
}

impl RestartGuard {
    pub(super) fn new(name: &str, was_running: bool) -> Self {
        RestartGuard {
            name: name.to_string(),
            armed: was_running,
        }
    }

    /// ward has put the container in the state it wants; nothing to do on drop.
    pub(super) fn disarm(mut self) {
        self.armed = false;
    }

    pub(super) async fn restart(mut self, d: &Docker) -> Result<bool> {
        if !self.armed {
            return Ok(false);
        }
        self.armed = false;
        docker::start_container(d, &self.name).await?;
        Ok(true)
    }
}

impl Drop for RestartGuard {
    fn drop(&mut self) {
        if self.armed {
            let name = self.name.clone();
            tracing::info!("restarting container {name} (ward stopped it)");
            docker::blocking(move |d| async move { docker::start_container(&d, &name).await });
        }
    }
}

/// Repairs what ward processes that died (kill -9, power cut) left behind,
/// from their journals: restarts containers they stopped; refuses to snapshot
/// a container whose volume a dead restore left half-replaced, and says how to
/// put the previous data back. Returns the notes to show.
pub(super) async fn recover(
    d: &Docker,
    store: &Store,
    op: &str,
    container: Option<&str>,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    for (path, j) in store.stale_journals() {
        let Some(facts) = docker::inspect_container(d, &j.container).await? else {
            let _ = std::fs::remove_file(&path);
            continue;
        };
        let user = container_user(&facts);
        let same = container == Some(j.container.as_str());
        if j.phase == "replacing" {
            let fix = match &j.safety {
                Some(sf) => format!(
                    "ward snapshot restore {sf} --container {} --no-safety --yes",
                    j.container
                ),
                None => format!(
                    "restore a snapshot into it (ward snapshot restore NAME --container {})",
                    j.container
                ),
            };
            if same && op == "restore" {
                notes.push(format!(
                    "note: an interrupted ward (pid {}) left the volume of {} half-replaced; this restore replaces it",
                    j.pid, j.container
                ));
                let _ = std::fs::remove_file(&path);
            } else if same {
                return crate::error::usage(format!(
                    "an interrupted restore (ward pid {}, {}) left container {} with partially replaced \
                     data and stopped — put the previous data back first: {fix}",
                    j.pid,
                    j.started_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    j.container
                ));
            } else {
                notes.push(format!(
                    "warning: an interrupted restore left container {} with partially replaced data — {fix}",
                    j.container
                ));
            }
            continue;
        }
        if j.was_running && !docker::is_running(d, &j.container).await? {
            docker::start_container(d, &j.container).await?;
            settle(d, &j.container, &user).await;
            notes.push(format!(
                "note: restarted container {}, which an interrupted ward (pid {}) had stopped",
                j.container, j.pid
            ));
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(notes)
}

/// What a create or restore is doing to one volume, kept per target (not per
/// store) in ward's state directory, so that any later ward that resolves the
/// target — from any store and any working directory — finds it. Written
/// durably at every phase (temp file, fsync, rename, fsync of the directory).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct TargetJournal {
    /// The ward that writes it; a live owner's journal is left alone.
    #[serde(flatten)]
    pub owner: Owner,
    /// "create" or "restore".
    pub operation: String,
    pub container: Option<String>,
    pub volume: String,
    /// The image helper containers run.
    pub image: String,
    /// The superuser role of the container (for readiness checks).
    pub user: String,
    pub was_running: bool,
    /// staging, staged, stopping (a stop may be in flight in the engine),
    /// stopped, swapped-out, swapped-in, started, done —
    /// what the last durable write said; the volume's own markers decide.
    pub phase: String,
    /// The swap directory's id (`.ward-swap-<id>` at the volume root).
    pub swap_id: Option<String>,
    /// The staged volume root's name inside `<swap>/stage`.
    pub root: String,
    pub pgdata_rel: String,
    /// Where the snapshot being restored lives (to prove identity after a resume).
    pub store: Option<std::path::PathBuf>,
    pub snapshot: String,
    pub keep_previous: bool,
    pub started_at: chrono::DateTime<Utc>,
}

impl TargetJournal {
    /// A restore of `t` about to stage into the swap directory `swap_id`,
    /// the staged volume root named `root`; the caller says what is
    /// restored (store, snapshot, keep_previous).
    pub(crate) fn restore(
        t: &crate::target::VolumeTarget,
        was_running: bool,
        swap_id: String,
        root: String,
    ) -> TargetJournal {
        TargetJournal {
            owner: Owner::me(),
            operation: "restore".into(),
            container: t.container.as_ref().map(|c| c.name.clone()),
            volume: t.volume.name.clone(),
            image: t.image.clone(),
            user: super::container::postgres_user(t),
            was_running,
            phase: "staging".into(),
            swap_id: Some(swap_id),
            root,
            pgdata_rel: t.pgdata_rel.clone(),
            store: None,
            snapshot: String::new(),
            keep_previous: false,
            started_at: Utc::now(),
        }
    }
}

/// The live journal file of a target; removed only by [`JournalFile::finish`]
/// once the job is over. Any other way out (an error ward could not undo, a
/// panic, a kill) leaves it for the next ward, which finishes or undoes the job.
#[derive(Debug)]
pub(crate) struct JournalFile {
    path: std::path::PathBuf,
    pub entry: TargetJournal,
}

/// ward's per-user state directory: `$WARD_STATE_DIR`, else
/// `$XDG_STATE_HOME/ward`, else `~/.local/state/ward`.
pub(crate) fn state_dir() -> std::path::PathBuf {
    use std::path::PathBuf;
    if let Some(d) = std::env::var_os("WARD_STATE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("ward");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => PathBuf::from(h).join(".local/state/ward"),
        None => std::env::temp_dir().join(format!("ward-{}-state", nix::unistd::Uid::effective())),
    }
}

/// Where the journal of `volume` lives.
pub(crate) fn journal_path(volume: &str) -> std::path::PathBuf {
    state_dir().join(format!(
        "journal-volume-{:016x}.json",
        crate::seed::rng::fnv1a(format!("volume:{volume}").as_bytes())
    ))
}

/// The journal files of all targets in ward's state directory, with the
/// kind of target each is for (`volume` or `datadir`).
pub(crate) fn journal_files() -> Vec<(&'static str, std::path::PathBuf)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(state_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_suffix(".json") else {
            continue;
        };
        if rest.starts_with("journal-volume-") {
            out.push(("volume", e.path()));
        } else if rest.starts_with("journal-datadir-") {
            out.push(("datadir", e.path()));
        }
    }
    out.sort();
    out
}

/// The volume a journal file is for, if it can be read.
pub(crate) fn journal_volume(path: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str::<TargetJournal>(&text)
        .ok()
        .map(|j| j.volume)
}

/// Reads the journal a dead ward left for `volume` (call holding the target
/// lock): `Err` with a note when a journal is there but unusable.
pub(crate) fn read_journal(
    volume: &str,
) -> std::result::Result<Option<(std::path::PathBuf, TargetJournal)>, String> {
    let path = journal_path(volume);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    match serde_json::from_str::<TargetJournal>(&text) {
        Ok(j)
            if j.volume == volume
                && (j.root.is_empty() || crate::snapshot::manifest::is_plain_name(&j.root))
                && crate::snapshot::manifest::is_plain_relative_path(&j.pgdata_rel)
                && j.swap_id
                    .as_deref()
                    .is_none_or(crate::snapshot::manifest::is_plain_name) =>
        {
            Ok(Some((path, j)))
        }
        _ => Err(format!(
            "warning: ignoring the unreadable journal {}",
            path.display()
        )),
    }
}

/// Writes `value` so that a crash leaves either the old or the new file.
pub(crate) fn write_durably<T: serde::Serialize>(path: &std::path::Path, value: &T) -> Result<()> {
    use anyhow::Context;
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    let dir = path.parent().context("journal path has no directory")?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create ward's state directory {}", dir.display()))?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("cannot write the journal {}", tmp.display()))?;
        f.write_all(serde_json::to_string_pretty(value)?.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot write the journal {}", path.display()))?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

impl JournalFile {
    /// Starts (or takes over) the journal of `entry.volume`.
    pub(crate) fn begin(entry: TargetJournal) -> Result<JournalFile> {
        let path = journal_path(&entry.volume);
        write_durably(&path, &entry)?;
        Ok(JournalFile { path, entry })
    }

    /// Takes over a dead ward's journal (recovery).
    pub(crate) fn adopt(path: std::path::PathBuf, mut entry: TargetJournal) -> JournalFile {
        entry.owner = Owner::me();
        JournalFile { path, entry }
    }

    pub(crate) fn set(&mut self, phase: &str) -> Result<()> {
        self.entry.phase = phase.to_string();
        write_durably(&self.path, &self.entry)
    }

    /// The job is over: remove the journal (and fsync its directory).
    pub(crate) fn finish(self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent()
            && let Ok(f) = std::fs::File::open(dir)
        {
            let _ = f.sync_all();
        }
    }
}

/// A journal removed on every way out of the process that is not a kill
/// (for a cold snapshot, whose [`RestartGuard`] restarts the container on
/// those paths, so only a kill leaves something to repair).
#[derive(Debug)]
pub(crate) struct FinishOnDrop(pub Option<JournalFile>);

impl Drop for FinishOnDrop {
    fn drop(&mut self) {
        if let Some(j) = self.0.take() {
            j.finish();
        }
    }
}
