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

mod journal;

use journal::DirJournal;
pub(super) use journal::{heal, journal_dir};

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

pub(crate) async fn create(
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
                .and_then(crate::pg::parse_major)
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

pub(crate) async fn restore(
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
        .and_then(|s| crate::pg::parse_major(&s));
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
            crate::units::human_bytes(need),
            crate::units::human_bytes(free)
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
    crate::pg::cluster::chown_tree(&fresh, uid, gid)?;
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

/// Flushes a staged tree to disk before it is swapped in (best effort:
/// `syncfs` of the file system holding it).
fn sync_tree(dir: &Path) {
    if let Ok(f) = std::fs::File::open(dir) {
        let _ = nix::unistd::syncfs(&f);
    }
}
