//! Restoring a snapshot into a volume: probe the target image, take a safety
//! snapshot, replace the volume's contents through a helper container, start
//! Postgres on them — and put the safety snapshot back if any step fails.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use chrono::Utc;

use super::container::{exec_ok, image_facts, postgres_user, prove_identity, settle, wait_ready};
use super::create::cold;
use super::journal::{RestartGuard, journal, recover};
use crate::docker::{self, Docker, Helper};
use crate::seed::Progress;
use crate::snapshot::archive::ChannelWriter;
use crate::snapshot::checked;
use crate::snapshot::manifest::{Layout, Manifest};
use crate::snapshot::store::{Journal, Store};
use crate::snapshot::{
    Confirm, CreateOptions, Method, RestoreOptions, Restored, fault, parse_major,
};
use crate::target::VolumeTarget;

/// Restores a verified snapshot into the volume.
pub async fn restore(
    store: &Store,
    m: &Manifest,
    t: &VolumeTarget,
    opts: &RestoreOptions,
    confirm: Confirm,
    progress: Arc<dyn Progress>,
) -> Result<Restored> {
    let started = Instant::now();
    let d = docker::connect().await?;
    recover(
        &d,
        store,
        "restore",
        t.container.as_ref().map(|c| c.name.as_str()),
    )
    .await?;
    let target_desc = crate::target::Target::Volume(Box::new(t.clone())).describe();
    if m.pgdata_rel != t.pgdata_rel {
        return crate::error::usage(format!(
            "incompatible layout: the snapshot keeps PGDATA at {:?} inside its volume, {target_desc} \
             keeps it at {:?} (PG 18 images mount /var/lib/postgresql and use 18/docker) — restore into \
             a container of the same image layout",
            m.pgdata_rel, t.pgdata_rel
        ));
    }
    // Probe the target image (and the current data) with a read-only helper.
    let probe = Helper::start(&d, &t.image, &t.volume.name, &t.mount, true).await?;
    let (major, uid, gid) = image_facts(&d, &probe.name).await?;
    let current = docker::exec(
        &d,
        &probe.name,
        None,
        &["cat", &format!("{}/PG_VERSION", t.pgdata)],
    )
    .await?;
    probe.remove(&d).await?;
    let current_major = if current.ok() {
        parse_major(&current.stdout)
    } else {
        None
    };
    let image_major = major.or(current_major);
    if let Some(maj) = image_major
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

    let was_running = match &t.container {
        Some(c) => docker::is_running(&d, &c.name).await?,
        None => false,
    };
    let mut journal = match &t.container {
        Some(c) => Some(journal(store, "restore", &c.name, was_running, &m.name)?),
        None => None,
    };
    let guard = t
        .container
        .as_ref()
        .map(|c| RestartGuard::new(&c.name, was_running));
    if let Some(c) = &t.container {
        progress.stage(&format!("stopping {}", c.name), 0);
        if was_running {
            settle(&d, &c.name, &postgres_user(t)).await;
        }
        docker::stop_container(&d, &c.name, opts.stop_timeout).await?;
    }
    // Safety snapshot of what is there now.
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
        cold(&d, store, t, &name, &copts, progress.clone(), false)
            .await
            .context("taking the safety snapshot (nothing was changed)")?;
        Some(name)
    } else {
        if current_major.is_some() {
            crate::output::note("--no-safety: no safety snapshot of the current data is taken");
        }
        None
    };

    if let Some(j) = journal.as_mut() {
        j.set("replacing", safety.clone())?;
    }
    let outcome = replace_and_start(
        &d,
        store,
        m,
        t,
        uid,
        gid,
        progress.clone(),
        journal.as_mut(),
    )
    .await;
    match outcome {
        Ok(sanity) => {
            let running = finish_running_state(&d, t, was_running, guard).await?;
            Ok(Restored {
                name: m.name.clone(),
                target: target_desc,
                safety_snapshot: safety,
                seconds: started.elapsed().as_secs_f64(),
                running,
                sanity,
            })
        }
        Err(e) => {
            let cancelled = crate::error::cancelled();
            let Some(safety_name) = &safety else {
                drop(guard);
                return Err(e.context(
                    "restore failed and there is no safety snapshot to put back (--no-safety or empty \
                     volume) — the volume may hold partial data",
                ));
            };
            tracing::info!("restore failed ({e:#}); putting safety snapshot {safety_name} back");
            // Un-cancel so the rollback itself can run to the end.
            if let Some(j) = journal.as_mut() {
                j.set("replacing", None)?;
            }
            let sm = store.load(safety_name)?;
            let back = rollback(&d, store, &sm, t, uid, gid, progress.clone()).await;
            let _ = finish_running_state(&d, t, was_running, guard).await;
            match &back {
                Ok(()) => {
                    if let Some(j) = journal.as_mut() {
                        j.set("stopped", None)?;
                    }
                }
                // Keep the journal: the next ward refuses to snapshot the
                // half-replaced volume and says how to put the data back.
                Err(_) => std::mem::forget(journal.take()),
            }
            match back {
                Ok(()) if cancelled => Err(crate::error::Interrupted.into()),
                Ok(()) => Err(e.context(format!(
                    "restore failed; the previous data was put back from safety snapshot {safety_name}"
                ))),
                Err(e2) => Err(e.context(format!(
                    "restore failed AND putting safety snapshot {safety_name} back failed ({e2:#}) — \
                     restore it by hand: ward snapshot restore {safety_name}"
                ))),
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn replace_and_start(
    d: &Docker,
    store: &Store,
    m: &Manifest,
    t: &VolumeTarget,
    uid: u32,
    gid: u32,
    progress: Arc<dyn Progress>,
    journal: Option<&mut Journal>,
) -> Result<Option<String>> {
    let (mount, _, _) = restore_paths(m, &t.pgdata_rel);
    let helper = Helper::start(d, &t.image, &t.volume.name, &mount, false).await?;
    let stage = format!("restoring {}", m.name);
    let r = replace_contents(
        d,
        &helper.name,
        store,
        m,
        &t.pgdata_rel,
        uid,
        gid,
        progress,
        &stage,
    )
    .await;
    helper.remove(d).await?;
    r?;
    // The new data is completely in place: from here a killed ward leaves a
    // whole (restored) volume, not a half-replaced one.
    if let Some(j) = journal {
        j.set("restored", None)?;
    }
    if let Some(c) = &t.container {
        docker::start_container(d, &c.name).await?;
        fault("restore:after-start")?;
        let user = postgres_user(t);
        let answered = wait_ready(d, &c.name, &user).await?;
        let sanity = prove_identity(d, &c.name, &user, m, &answered).await?;
        return Ok(Some(sanity));
    }
    Ok(None)
}

/// Puts the safety snapshot back (cancellation is ignored: this must finish).
async fn rollback(
    d: &Docker,
    store: &Store,
    sm: &Manifest,
    t: &VolumeTarget,
    uid: u32,
    gid: u32,
    progress: Arc<dyn Progress>,
) -> Result<()> {
    crate::error::uncancel();
    if let Some(c) = &t.container {
        if docker::is_running(d, &c.name).await? {
            settle(d, &c.name, &postgres_user(t)).await;
        }
        docker::stop_container(d, &c.name, 120).await?;
    }
    let (mount, _, _) = restore_paths(sm, &t.pgdata_rel);
    let helper = Helper::start(d, &t.image, &t.volume.name, &mount, false).await?;
    let r = replace_contents(
        d,
        &helper.name,
        store,
        sm,
        &t.pgdata_rel,
        uid,
        gid,
        progress,
        &format!("restoring {}", sm.name),
    )
    .await;
    helper.remove(d).await?;
    r
}

/// Leaves the container as it was found: running if it was (waiting until
/// ready), stopped if it was stopped.
async fn finish_running_state(
    d: &Docker,
    t: &VolumeTarget,
    was_running: bool,
    guard: Option<RestartGuard>,
) -> Result<bool> {
    let Some(c) = &t.container else {
        return Ok(false);
    };
    if was_running {
        if let Some(g) = guard {
            g.restart(d).await?;
        }
        docker::start_container(d, &c.name).await?;
        wait_ready(d, &c.name, &postgres_user(t)).await?;
        Ok(true)
    } else {
        drop(guard);
        docker::stop_container(d, &c.name, 120).await?;
        Ok(false)
    }
}

/// Where the helper mounts the volume for a restore, where the archive is
/// uploaded, and where PGDATA ends up (all inside the helper).
pub(in crate::snapshot) fn restore_paths(
    m: &Manifest,
    pgdata_rel: &str,
) -> (String, String, String) {
    let join = |a: &str, b: &str| {
        if b.is_empty() {
            a.to_string()
        } else {
            format!("{a}/{b}")
        }
    };
    match &m.layout {
        Layout::Volume { root } => {
            let mount = format!("/ward-restore/{root}");
            let pgdata = join(&mount, pgdata_rel);
            (mount, "/ward-restore".into(), pgdata)
        }
        Layout::Pgdata => {
            let mount = "/ward-restore/vol".to_string();
            let pgdata = join(&mount, pgdata_rel);
            (mount, pgdata.clone(), pgdata)
        }
    }
}

/// Replaces the volume's contents with the archive `archive_of` (already
/// verified), then fixes ownership and mode. The helper mounts the volume.
#[allow(clippy::too_many_arguments)]
pub(in crate::snapshot) async fn replace_contents(
    d: &Docker,
    helper: &str,
    store: &Store,
    m: &Manifest,
    pgdata_rel: &str,
    uid: u32,
    gid: u32,
    progress: Arc<dyn Progress>,
    stage: &str,
) -> Result<()> {
    let (mount, upload_to, pgdata) = restore_paths(m, pgdata_rel);
    exec_ok(d, helper, &["find", &mount, "-mindepth", "1", "-delete"]).await?;
    fault("restore:after-clear")?;
    exec_ok(d, helper, &["mkdir", "-p", &upload_to]).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(16);
    let path = store.archive_path(&m.name);
    let m2 = m.clone();
    progress.stage(stage, m.tar_bytes);
    let p2 = progress.clone();
    let checker = tokio::task::spawn_blocking(move || {
        let mut w = ChannelWriter::new(tx);
        let r = {
            let builder = tar::Builder::new(&mut w as &mut dyn std::io::Write);
            checked::check(&path, &m2, checked::Destination::Tar(builder), p2.as_ref())
        };
        let r = match r {
            Ok(c) if c.problems.is_empty() => {
                use std::io::Write;
                w.flush().map(|_| ()).map_err(anyhow::Error::from)
            }
            Ok(c) => {
                let msg = c.problems.join("; ");
                w.fail(&msg);
                Err(anyhow::anyhow!(
                    "the archive changed since it was verified: {msg}"
                ))
            }
            Err(e) => {
                w.fail(&e.to_string());
                Err(e)
            }
        };
        drop(w);
        r
    });
    let body = tokio_stream_from(rx);
    let uploaded = docker::upload(d, helper, &upload_to, body).await;
    let checked = checker.await.context("the archive reader failed")?;
    progress.finish();
    checked?;
    uploaded?;
    let owner = format!("{uid}:{gid}");
    exec_ok(d, helper, &["chown", "-R", &owner, &mount]).await?;
    exec_ok(d, helper, &["chmod", "0700", &pgdata]).await?;
    Ok(())
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
