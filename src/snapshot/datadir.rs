//! Snapshots and restores of a native (non-Docker) Postgres data directory.
//! The server must be stopped; ward checks `postmaster.pid` and
//! `pg_controldata` and says so if it is not.
//!
//! Restores unpack into a new sibling directory (entries checked against the
//! manifest and the allow-list while they stream), fix the mode to 0700 and
//! the owner to the old directory's, and only then swap the directories: the
//! old one is kept until the swap succeeded.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::Utc;

use super::manifest::{Layout, Manifest, Origin};
use super::store::Store;
use super::{
    Cleanup, Confirm, CreateOptions, Created, Method, RestoreOptions, Restored, control_field,
    fault,
};
use super::{archive, checked};
use crate::progress::Progress;

/// Refuses to work on a data directory whose server is running.
fn ensure_stopped(dir: &Path) -> Result<()> {
    let pid_file = dir.join("postmaster.pid");
    if let Ok(text) = std::fs::read_to_string(&pid_file) {
        let pid: i32 = text
            .lines()
            .next()
            .unwrap_or("")
            .trim()
            .parse()
            .unwrap_or(0);
        let alive = pid > 0 && Path::new(&format!("/proc/{pid}")).exists();
        if alive {
            return crate::error::usage(format!(
                "the Postgres server of {} is running (pid {pid}) — stop it first \
                 (pg_ctl -D {} stop), then run ward again",
                dir.display(),
                dir.display()
            ));
        }
    }
    Ok(())
}

/// `pg_controldata` of the directory, run with the host's server binaries.
fn controldata(dir: &Path) -> Result<String> {
    let bindir = crate::pg::cluster::find_bindir()?;
    let out = std::process::Command::new(bindir.join("pg_controldata"))
        .arg("-D")
        .arg(dir)
        .env("LC_ALL", "C")
        .output()
        .context("cannot run pg_controldata")?;
    if !out.status.success() {
        bail!(
            "pg_controldata {} failed: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn dir_size(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if let Ok(md) = e.path().symlink_metadata() {
                if md.is_dir() {
                    stack.push(e.path());
                } else {
                    total += md.len();
                }
            }
        }
    }
    total
}

pub async fn create(
    store: &Store,
    dir: &Path,
    name: &str,
    opts: &CreateOptions,
    progress: Arc<dyn Progress>,
) -> Result<Created> {
    let store = store.clone();
    let dir = dir.to_path_buf();
    let name = name.to_string();
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || create_blocking(&store, &dir, &name, &opts, progress))
        .await
        .context("the snapshot thread failed")?
}

fn create_blocking(
    store: &Store,
    dir: &Path,
    name: &str,
    opts: &CreateOptions,
    progress: Arc<dyn Progress>,
) -> Result<Created> {
    let started = Instant::now();
    let notes: Vec<String> = heal(dir, true)?.into_iter().collect();
    ensure_stopped(dir)?;
    let control = controldata(dir)?;
    let state = control_field(&control, "Database cluster state").unwrap_or_default();
    if state != "shut down" {
        return crate::error::usage(format!(
            "the cluster in {} is not cleanly shut down (pg_controldata says {state:?}) — start it \
             and stop it cleanly (pg_ctl stop -m fast), then try again",
            dir.display()
        ));
    }
    let size = dir_size(dir);
    super::check_space(store, size)?;
    let sink = store.new_archive(name)?;
    let (reader, writer) = std::io::pipe().context("cannot create a pipe")?;
    let dir2 = dir.to_path_buf();
    let producer = std::thread::spawn(move || archive::tar_datadir(&dir2, writer));
    progress.stage(&format!("archiving {name}"), size);
    let written = archive::compress(
        reader,
        sink,
        "",
        crate::config::default_jobs().min(4) as u32,
        progress.as_ref(),
    );
    progress.finish();
    let produced = producer
        .join()
        .map_err(|_| anyhow::anyhow!("the archiving thread panicked"))?;
    let (written, sink) = written?;
    produced?;
    let stored = sink.finish()?;
    fault("create:after-stream")?;
    let md = std::fs::metadata(dir)?;
    let mut m = Manifest::archived(
        name,
        Origin {
            method: "cold",
            source: crate::target::SourceFacts {
                datadir_owner: nix::unistd::User::from_uid(md.uid().into())
                    .ok()
                    .flatten()
                    .map(|u| u.name),
                ..crate::target::Target::Datadir(dir.to_path_buf()).source_facts()
            },
            pg_major: written
                .pg_version
                .as_deref()
                .and_then(super::parse_major)
                .context("the data directory has no PG_VERSION")?,
            system_identifier: control_field(&control, "Database system identifier"),
            pgdata: Some(dir.display().to_string()),
            pgdata_rel: String::new(),
            layout: Layout::Pgdata,
            owner: Some((md.uid(), md.gid())),
            downtime_seconds: None,
            labels: opts.labels.clone(),
            database: None,
        },
        written,
    );
    store.commit(stored, &mut m)?;
    Ok(Created {
        notes,
        ..Created::of(
            store,
            &m,
            Method::Cold,
            format!("data directory {}", dir.display()),
            started,
            false,
        )
    })
}

pub async fn restore(
    store: &Store,
    m: &Manifest,
    dir: &Path,
    opts: &RestoreOptions,
    confirm: Confirm,
    progress: Arc<dyn Progress>,
) -> Result<Restored> {
    let store = store.clone();
    let m = m.clone();
    let dir = dir.to_path_buf();
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || {
        restore_blocking(&store, &m, &dir, &opts, confirm, progress)
    })
    .await
    .context("the restore thread failed")?
}

fn restore_blocking(
    store: &Store,
    m: &Manifest,
    dir: &Path,
    opts: &RestoreOptions,
    confirm: Confirm,
    progress: Arc<dyn Progress>,
) -> Result<Restored> {
    let started = Instant::now();
    if m.layout != Layout::Pgdata || !m.pgdata_rel.is_empty() {
        return crate::error::usage(format!(
            "snapshot {:?} is of a Docker volume; restore it into a container (--container / \
             --compose-service), not a --datadir",
            m.name
        ));
    }
    let notes: Vec<String> = heal(dir, true)?.into_iter().collect();
    ensure_stopped(dir)?;
    let current = std::fs::read_to_string(dir.join("PG_VERSION"))
        .ok()
        .and_then(|s| super::parse_major(&s));
    if let Some(maj) = current
        && maj != m.pg_major
    {
        return crate::error::usage(format!(
            "snapshot {:?} holds PostgreSQL {} data but {} holds PostgreSQL {maj} — a physical copy \
             only starts on the same major version (use pg_upgrade or pg_dump/pg_restore)",
            m.name,
            m.pg_major,
            dir.display()
        ));
    }
    let q = format!(
        "Replace the data directory {} with snapshot {:?}?",
        dir.display(),
        m.name
    );
    if !confirm(&q)? {
        return crate::error::usage("restore cancelled: nothing was changed");
    }
    let safety = if opts.safety && current.is_some() {
        let name = format!(
            "safety-{}-{}",
            crate::target::Target::Datadir(dir.to_path_buf()).stem(),
            Utc::now().format("%Y%m%d-%H%M%S")
        );
        let mut labels = std::collections::BTreeMap::new();
        labels.insert("ward.safety".to_string(), "1".to_string());
        let copts = CreateOptions {
            name: Some(name.clone()),
            method: Method::Cold,
            stop_timeout: opts.stop_timeout,
            labels,
        };
        create_blocking(store, dir, &name, &copts, progress.clone())
            .context("taking the safety snapshot (nothing was changed)")?;
        Some(name)
    } else {
        None
    };
    let parent = dir.parent().context("the data directory has no parent")?;
    let base = dir
        .file_name()
        .context("bad data directory name")?
        .to_string_lossy();
    // The copy is unpacked beside the old directory before the swap: both
    // must fit. Say so now rather than fail half-way.
    let need = m.total_bytes + m.total_bytes / 10 + 16 * 1024 * 1024;
    let free = fs4::available_space(parent).unwrap_or(u64::MAX);
    if free < need {
        return crate::error::usage(format!(
            "not enough free space in {} to restore snapshot {:?}: about {} needed beside the \
             current data, {} free — free some space there and try again (nothing was changed)",
            parent.display(),
            m.name,
            super::human_bytes(need),
            super::human_bytes(free)
        ));
    }
    let fresh = parent.join(format!(".{base}.ward-restore-{}", std::process::id()));
    let old = parent.join(format!(".{base}.ward-old-{}", std::process::id()));
    let mut journal = DirJournal {
        owner: super::volume::Owner::me(),
        dir: dir.to_path_buf(),
        fresh: fresh.clone(),
        old: old.clone(),
        phase: "staging".into(),
        snapshot: m.name.clone(),
    };
    journal.set("staging")?;
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir(&fresh).with_context(|| format!("cannot create {}", fresh.display()))?;
    let cleanup = Cleanup::new(fresh.clone());
    if let Err(e) = unpack(store, m, &fresh, progress.as_ref()) {
        drop(cleanup);
        journal.finish();
        return Err(e);
    }
    fault("restore:after-unpack")?;
    let (uid, gid) = match std::fs::metadata(dir) {
        Ok(md) => (md.uid(), md.gid()),
        Err(_) => (m.uid.unwrap_or(0), m.gid.unwrap_or(0)),
    };
    chown_tree(&fresh, uid, gid)?;
    std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o700))?;
    sync_tree(&fresh);
    journal.set("staged")?;
    fault("datadir:after-staged")?;
    // From the first rename on, the journal (and heal) own `fresh`: a
    // failure must never delete it while the old data is aside.
    cleanup.disarm();
    // Swap: old → aside, fresh → in place, then drop the old.
    if dir.exists() {
        std::fs::rename(dir, &old)
            .with_context(|| format!("cannot move {} aside", dir.display()))?;
    }
    journal.set("swapped-out")?;
    if let Err(e) = fault("restore:after-swap-out") {
        if old.exists() {
            std::fs::rename(&old, dir).context(
                "cannot move the previous data back (the journal is kept: the next ward finishes it)",
            )?;
        }
        let _ = std::fs::remove_dir_all(&fresh);
        journal.finish();
        return Err(e.context("the previous data is back in place"));
    }
    if let Err(e) = std::fs::rename(&fresh, dir) {
        if old.exists() {
            std::fs::rename(&old, dir).with_context(|| {
                format!(
                    "cannot move the restored directory into place ({e}) AND cannot move the \
                     previous data back from {} — the journal is kept: the next ward finishes it",
                    old.display()
                )
            })?;
        }
        let _ = std::fs::remove_dir_all(&fresh);
        journal.finish();
        return Err(e)
            .context("cannot move the restored directory into place (the old one is back)");
    }
    journal.set("swapped-in")?;
    let _ = std::fs::remove_dir_all(&old);
    journal.finish();
    Ok(Restored {
        name: m.name.clone(),
        target: format!("data directory {}", dir.display()),
        safety_snapshot: safety,
        seconds: started.elapsed().as_secs_f64(),
        running: false,
        sanity: None,
        stage_seconds: None,
        swap_seconds: None,
        start_seconds: None,
        downtime_seconds: None,
        notes,
    })
}

pub(super) fn chown_tree(dir: &Path, uid: u32, gid: u32) -> Result<()> {
    if !nix::unistd::Uid::effective().is_root() {
        return Ok(());
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        std::os::unix::fs::lchown(&p, Some(uid), Some(gid))
            .with_context(|| format!("cannot chown {}", p.display()))?;
        if p.symlink_metadata()?.is_dir() {
            for e in std::fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        }
    }
    Ok(())
}

/// Unpacks the verified archive into `dst` (an empty new directory) with
/// ward's own checking reader: every entry is checked as it is written, and
/// nothing else parses the archive.
pub(super) fn unpack(
    store: &Store,
    m: &Manifest,
    dst: &Path,
    progress: &dyn Progress,
) -> Result<()> {
    progress.stage(&format!("restoring {}", m.name), m.tar_bytes);
    let checked = checked::check(store, m, checked::Destination::Directory(dst), progress);
    progress.finish();
    let checked = checked?;
    if !checked.problems.is_empty() {
        return Err(super::Damaged(format!(
            "snapshot {:?} failed verification, nothing was changed: {}",
            m.name,
            checked.problems.join("; ")
        ))
        .into());
    }
    Ok(())
}

/// A data-directory restore in progress, kept durably in ward's state
/// directory so the next ward can finish or undo it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(super) struct DirJournal {
    /// The ward that writes it; a live owner's journal is left alone.
    #[serde(flatten)]
    owner: super::volume::Owner,

    dir: std::path::PathBuf,
    fresh: std::path::PathBuf,
    old: std::path::PathBuf,
    /// staging, staged, swapped-out, swapped-in.
    phase: String,
    snapshot: String,
}

fn dir_journal_path(dir: &Path) -> std::path::PathBuf {
    let key = std::fs::canonicalize(dir)
        .or_else(|_| {
            dir.parent()
                .map(|p| {
                    std::fs::canonicalize(p).map(|p| p.join(dir.file_name().unwrap_or_default()))
                })
                .unwrap_or_else(|| Ok(dir.to_path_buf()))
        })
        .unwrap_or_else(|_| dir.to_path_buf());
    super::volume::state_dir().join(format!(
        "journal-datadir-{:016x}.json",
        crate::seed::rng::fnv1a(format!("datadir:{}", key.display()).as_bytes())
    ))
}

/// Errors before anything was moved need no repair: the staged copy is
/// removed by its own guard, so the journal goes too. After a move, only
/// [`DirJournal::finish`] removes it.
impl Drop for DirJournal {
    fn drop(&mut self) {
        if self.phase == "staging" || self.phase == "staged" {
            self.finish();
        }
    }
}

impl DirJournal {
    fn set(&mut self, phase: &str) -> Result<()> {
        self.phase = phase.into();
        // A journal write that fails (full disk, I/O error), for the tests.
        fault(&format!("datadir-journal:{phase}"))?;
        super::volume::write_durably(&dir_journal_path(&self.dir), self)
    }

    fn finish(&self) {
        let _ = std::fs::remove_file(dir_journal_path(&self.dir));
    }
}

/// The data directory a journal file is for, if it can be read.
pub(super) fn journal_dir(path: &Path) -> Option<std::path::PathBuf> {
    let text = std::fs::read_to_string(path).ok()?;
    // Read, not owned: dropping it must not remove the journal.
    serde_json::from_str::<DirJournal>(&text)
        .ok()
        .map(|j| std::mem::ManuallyDrop::new(j).dir.clone())
}

/// Finishes or undoes what an interrupted data-directory restore left: a
/// copy whose staging had finished is swapped in, one that had not is
/// removed, and whatever was moved aside is put back or deleted. Returns
/// the note to show, if there was a journal. A journal whose owner may
/// still run is left alone (with `must_own`: refused).
pub(super) fn heal(dir: &Path, must_own: bool) -> Result<Option<String>> {
    let path = dir_journal_path(dir);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let Ok(parsed) = serde_json::from_str::<DirJournal>(&text) else {
        return Ok(Some(format!(
            "warning: ignoring the unreadable journal {}",
            path.display()
        )));
    };
    // Read, not owned: only an explicit `finish` below removes the journal
    // (its drop would on "staging"/"staged", even when a repair fails).
    let j = std::mem::ManuallyDrop::new(parsed);
    if j.owner.may_be_alive() {
        let msg = format!(
            "ward {} is still restoring {:?} into {} (phase {:?})",
            j.owner.describe(),
            j.snapshot,
            j.dir.display(),
            j.phase
        );
        if must_own {
            return crate::error::usage(format!("{msg} — wait for it to finish"));
        }
        return Ok(Some(format!("note: {msg}; left its journal alone")));
    }
    if let Err(why) = check_journal_paths(&j) {
        return Ok(Some(format!(
            "warning: ignoring the journal {}: {why} — ward deletes nothing it names; remove \
             the journal file once the data directory is as it should be",
            path.display()
        )));
    }
    // "staged" with the data directory still in place: the server may have
    // been started on it again since and taken writes, so the staged copy
    // is discarded (as a volume heal does), never swapped in over it.
    let never_moved = j.phase == "staged" && j.dir.exists() && !j.old.exists();
    let done = if j.phase == "staging" || never_moved {
        let _ = std::fs::remove_dir_all(&j.fresh);
        if !j.dir.exists() && j.old.exists() {
            std::fs::rename(&j.old, &j.dir)?;
        }
        "the swap had not begun: removed the staged copy; the previous data is untouched"
    } else {
        if j.fresh.exists() {
            if j.dir.exists() {
                // Never move a directory a live postmaster runs on.
                ensure_stopped(&j.dir)?;
                std::fs::rename(&j.dir, &j.old)
                    .with_context(|| format!("cannot move {} aside", j.dir.display()))?;
            }
            std::fs::rename(&j.fresh, &j.dir)
                .with_context(|| format!("cannot move {} into place", j.fresh.display()))?;
        }
        if j.dir.exists() {
            let _ = std::fs::remove_dir_all(&j.old);
        } else if j.old.exists() {
            // Neither the new copy nor the live directory: put the old back.
            std::fs::rename(&j.old, &j.dir)
                .with_context(|| format!("cannot move {} back", j.old.display()))?;
        }
        "staging had finished: completed the swap"
    };
    j.finish();
    let msg = format!(
        "{done} (restore of {:?} into {}, interrupted in phase {:?})",
        j.snapshot,
        j.dir.display(),
        j.phase
    );
    Ok(Some(format!(
        "note: an interrupted ward ({}) left a restore unfinished: {msg}",
        j.owner.describe()
    )))
}

/// A journal is read from disk and names paths heal deletes: both must be
/// siblings of the data directory with the names a restore gives them
/// (`.{base}.ward-restore-*`, `.{base}.ward-old-*`), else the journal is not
/// trusted.
fn check_journal_paths(j: &DirJournal) -> std::result::Result<(), String> {
    let base = j
        .dir
        .file_name()
        .map(|b| b.to_string_lossy().into_owned())
        .filter(|b| !b.is_empty() && b != ".." && b != ".")
        .ok_or_else(|| format!("{} is not a data directory path", j.dir.display()))?;
    for (path, kind) in [(&j.fresh, "ward-restore"), (&j.old, "ward-old")] {
        let prefix = format!(".{base}.{kind}-");
        let named = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .is_some_and(|n| n.len() > prefix.len() && n.starts_with(&prefix));
        let sibling = path.parent().is_some_and(|p| Some(p) == j.dir.parent());
        let plain = path
            .components()
            .all(|c| !matches!(c, std::path::Component::ParentDir));
        if !(named && sibling && plain) {
            return Err(format!(
                "{} is not a {prefix}* directory beside {}",
                path.display(),
                j.dir.display()
            ));
        }
    }
    Ok(())
}

/// Flushes a staged tree to disk before it is swapped in (best effort:
/// `syncfs` of the file system holding it).
fn sync_tree(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = nix::unistd::syncfs(&f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn journal(dir: &str, fresh: &str, old: &str) -> DirJournal {
        DirJournal {
            owner: crate::snapshot::volume::Owner::me(),
            dir: dir.into(),
            fresh: fresh.into(),
            old: old.into(),
            phase: "swapped-out".into(),
            snapshot: "s".into(),
        }
    }

    #[test]
    fn journal_paths_must_be_named_siblings_of_the_data_directory() {
        let ok = journal(
            "/srv/pg/data",
            "/srv/pg/.data.ward-restore-7",
            "/srv/pg/.data.ward-old-7",
        );
        assert_eq!(check_journal_paths(&ok), Ok(()));
        for (fresh, old) in [
            ("/srv/pg", "/srv/pg/.data.ward-old-7"),
            ("/srv/pg/.data.ward-restore-7", "/"),
            ("/home/me/.data.ward-restore-7", "/srv/pg/.data.ward-old-7"),
            ("/srv/pg/.other.ward-restore-7", "/srv/pg/.data.ward-old-7"),
            ("/srv/pg/.data.ward-restore-", "/srv/pg/.data.ward-old-7"),
            (
                "/srv/pg/.data.ward-restore-7",
                "/srv/pg/.data.ward-restore-7",
            ),
            (
                "/srv/pg/x/../.data.ward-restore-7",
                "/srv/pg/.data.ward-old-7",
            ),
        ] {
            let bad = journal("/srv/pg/data", fresh, old);
            assert!(check_journal_paths(&bad).is_err(), "{fresh} {old} accepted");
        }
        assert!(check_journal_paths(&journal("/", "/.ward-restore-1", "/.ward-old-1")).is_err());
    }
}
