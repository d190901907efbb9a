//! Taking a snapshot of a volume: cold (the container is stopped and restarted,
//! the copy is exact) or online (`pg_basebackup` while it runs, no downtime).
//! Both stream the data straight into a compressed archive in the store.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;

use super::container::{
    database_facts, exec_ok, postgres_user, psql, refuse_linked_pgdata, settle, wait_ready,
};
use super::journal::{FinishOnDrop, JournalFile, RestartGuard, TargetJournal, recover};
use crate::docker::{self, Docker, Helper};
use crate::progress::Progress;
use crate::snapshot::archive::Written;
use crate::snapshot::archive::{self, ChannelReader};
use crate::snapshot::manifest::{DatabaseFacts, Layout, Manifest, Origin};
use crate::snapshot::store::{ArchiveWriter, Store, Stored};
use crate::snapshot::{CreateOptions, Created, Method, control_field, fault};
use crate::target::VolumeTarget;

/// Takes a snapshot of the volume.
pub(crate) async fn create(
    store: &Store,
    t: &VolumeTarget,
    name: &str,
    opts: &CreateOptions,
    progress: Arc<dyn Progress>,
) -> Result<Created> {
    let d = docker::connect().await?;
    let mut notes = recover(
        &d,
        store,
        "create",
        t.container.as_ref().map(|c| c.name.as_str()),
    )
    .await?;
    notes.extend(super::heal::heal_and_sweep(&d, &t.image, &t.volume.name).await?);
    let mut created = match opts.method {
        Method::Cold => cold(&d, store, t, name, opts, progress, true).await,
        Method::Online => online(&d, store, t, name, opts, progress).await,
    }
    .inspect_err(|_| super::warn_dropped(&notes))?;
    created.notes = notes;
    Ok(created)
}

/// Cold snapshot: checkpoint, stop, prove a clean shutdown, stream the volume
/// out, restart. With `manage_container = false` the container is already
/// stopped by the caller (a restore's safety snapshot).
pub(super) async fn cold(
    d: &Docker,
    store: &Store,
    t: &VolumeTarget,
    name: &str,
    opts: &CreateOptions,
    progress: Arc<dyn Progress>,
    manage_container: bool,
) -> Result<Created> {
    let started = Instant::now();
    let user = postgres_user(t);
    let mut db_facts = None;
    let was_running = match &t.container {
        Some(c) => docker::is_running(d, &c.name).await?,
        None => false,
    };
    if let (Some(c), true) = (&t.container, was_running && manage_container) {
        refuse_linked_pgdata(d, &c.name, t).await?;
        settle(d, &c.name, &user).await;
        // Size for the free-space check, facts for the manifest, and a
        // checkpoint so the shutdown checkpoint is short.
        if let Ok(out) = docker::exec(d, &c.name, None, &["du", "-sk", &t.mount]).await
            && out.ok()
            && let Some(kb) = out
                .stdout
                .split_whitespace()
                .next()
                .and_then(|s| s.parse::<u64>().ok())
        {
            crate::snapshot::check_space(store, kb * 1024)?;
        }
        match database_facts(d, &c.name, &user).await {
            Ok(f) => db_facts = Some(f),
            Err(e) => tracing::warn!("cannot read database facts: {e:#}"),
        }
        if let Err(e) = psql(d, &c.name, &user, "postgres", "CHECKPOINT").await {
            tracing::warn!("CHECKPOINT before stopping failed: {e:#}");
        }
    }
    let stop_at = Instant::now();
    // Per target, so that any later ward restarts the container if this one dies.
    let mut journal = FinishOnDrop(match &t.container {
        Some(c) if manage_container => Some(JournalFile::begin(TargetJournal {
            owner: super::journal::Owner::me(),
            operation: "create".into(),
            container: Some(c.name.clone()),
            volume: t.volume.name.clone(),
            image: t.image.clone(),
            user: user.clone(),
            was_running,
            // "stopping" until the engine says it stopped: a stop ward
            // asked for goes on in the engine after a kill.
            phase: "stopping".into(),
            swap_id: None,
            root: String::new(),
            pgdata_rel: t.pgdata_rel.clone(),
            store: Some(store.dir.clone()),
            snapshot: name.to_string(),
            keep_previous: false,
            started_at: chrono::Utc::now(),
        })?),
        _ => None,
    });
    let guard = match &t.container {
        Some(c) if manage_container => {
            progress.stage(&format!("stopping {}", c.name), 0);
            let guard = RestartGuard::new(&c.name, was_running);
            let code = docker::stop_container(d, &c.name, opts.stop_timeout).await?;
            if let Some(j) = journal.0.as_mut() {
                j.set("stopped")?;
            }
            if code != 0 {
                tracing::warn!("container {} exited with code {code} on stop", c.name);
            }
            Some(guard)
        }
        _ => None,
    };
    fault("create:after-stop")?;
    let helper = Helper::start(d, &t.image, &t.volume.name, &t.mount, true).await?;
    if !(was_running && manage_container) {
        // Nothing was stopped: the helper sees the volume where the target does.
        refuse_linked_pgdata(d, &helper.name, t).await?;
    }
    let control = exec_ok(d, &helper.name, &["pg_controldata", "-D", &t.pgdata]).await?;
    let state = control_field(&control.stdout, "Database cluster state").unwrap_or_default();
    if state != "shut down" {
        bail!(
            "the cluster in volume {} is not cleanly shut down (pg_controldata says {state:?}) — \
             a copy now would only be crash-consistent; start the container, let Postgres finish, \
             then try again (or use --online)",
            t.volume.name
        );
    }
    let system_id = control_field(&control.stdout, "Database system identifier");
    let size_kb = exec_ok(d, &helper.name, &["du", "-sk", &t.mount])
        .await
        .ok()
        .and_then(|o| o.stdout.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0);
    if !was_running || !manage_container {
        crate::snapshot::check_space(store, size_kb * 1024)?;
    }
    let root = t
        .mount
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .to_string();
    if root.is_empty() {
        bail!("the volume is mounted at / — ward cannot snapshot that");
    }
    let pgdata_in_tar = if t.pgdata_rel.is_empty() {
        root.clone()
    } else {
        format!("{root}/{}", t.pgdata_rel)
    };
    let sink = store.new_archive(name)?;
    progress.stage(&format!("archiving {name}"), size_kb * 1024);
    let fault_after = (std::env::var("WARD_FAULT").ok().as_deref() == Some("create:mid-stream"))
        .then_some(1024 * 1024);
    let stream = docker::download(d, &helper.name, &t.mount);
    let written = compress_stream(stream, sink, pgdata_in_tar, progress.clone(), fault_after).await;
    progress.finish();
    helper.remove(d).await?;
    let (written, stored) = written?;
    let restarted = match guard {
        Some(g) => g.restart(d).await?,
        None => false,
    };
    if let (true, Some(c)) = (restarted, &t.container) {
        // Downtime ends when Postgres answers again, not when the process starts.
        wait_ready(d, &c.name, &user).await?;
    }
    let downtime = manage_container
        .then(|| stop_at.elapsed().as_secs_f64())
        .filter(|_| was_running);
    let written_link = written.data_link;
    let mut m = volume_manifest(
        name,
        t,
        opts,
        written,
        Taken {
            method: "cold",
            layout: Layout::Volume {
                root,
                data_link: written_link,
            },
            downtime_seconds: downtime,
            system_identifier: system_id,
            database: db_facts,
        },
    )?;
    store.commit(stored, &mut m)?;
    Ok(Created::of(
        store,
        &m,
        Method::Cold,
        crate::target::Target::Volume(Box::new(t.clone())).describe(),
        started,
        restarted,
    ))
}

/// Online snapshot: `pg_basebackup` (tar format, WAL included) inside the
/// running container, streamed out; no downtime.
async fn online(
    d: &Docker,
    store: &Store,
    t: &VolumeTarget,
    name: &str,
    opts: &CreateOptions,
    progress: Arc<dyn Progress>,
) -> Result<Created> {
    let started = Instant::now();
    let Some(c) = &t.container else {
        return crate::error::usage(
            "--online needs a running container (--container or --compose-service), not a bare --volume",
        );
    };
    if !docker::is_running(d, &c.name).await? {
        return crate::error::usage(format!(
            "--online needs the container to be running, and {} is stopped — start it, or take a cold snapshot",
            c.name
        ));
    }
    let user = postgres_user(t);
    let db_facts = database_facts(d, &c.name, &user).await.ok();
    let size: u64 = db_facts
        .as_ref()
        .map(|f| f.databases.iter().map(|x| x.size_bytes.max(0) as u64).sum())
        .unwrap_or(0);
    crate::snapshot::check_space(store, size)?;
    let system_id = psql(
        d,
        &c.name,
        &user,
        "postgres",
        "SELECT system_identifier FROM pg_control_system()",
    )
    .await
    .ok()
    .map(|s| s.trim().to_string());
    let sink = store.new_archive(name)?;
    progress.stage(&format!("pg_basebackup {name}"), size);
    let (exec_id, stdout, stderr) = docker::exec_stdout(
        d,
        &c.name,
        Some("postgres"),
        &[
            "pg_basebackup",
            "-D",
            "-",
            "-Ft",
            "-X",
            "fetch",
            "-c",
            "fast",
            "--no-manifest",
            "-U",
            &user,
        ],
    )
    .await?;
    let written = compress_stream(stdout, sink, String::new(), progress.clone(), None).await;
    progress.finish();
    let code = docker::exec_exit_code(d, &exec_id).await?;
    if code != 0 {
        let msg = stderr.lock().unwrap().trim().to_string();
        bail!("pg_basebackup in {} failed (exit {code}): {msg}", c.name);
    }
    let (written, stored) = written?;
    let mut m = volume_manifest(
        name,
        t,
        opts,
        written,
        Taken {
            method: "online",
            layout: Layout::Pgdata,
            downtime_seconds: None,
            system_identifier: system_id,
            database: db_facts,
        },
    )?;
    store.commit(stored, &mut m)?;
    Ok(Created::of(
        store,
        &m,
        Method::Online,
        crate::target::Target::Volume(Box::new(t.clone())).describe(),
        started,
        false,
    ))
}

/// Streams `stream` into a compressed archive on a blocking thread; the
/// archive is finished (stored, not yet committed) when this returns.
/// What differs between a cold copy and an online base backup of a volume;
/// the rest of the manifest comes from the target and the archive.
struct Taken {
    method: &'static str,
    layout: Layout,
    downtime_seconds: Option<f64>,
    system_identifier: Option<String>,
    database: Option<DatabaseFacts>,
}

/// The manifest of a volume target's archive.
fn volume_manifest(
    name: &str,
    t: &VolumeTarget,
    opts: &CreateOptions,
    written: Written,
    taken: Taken,
) -> Result<Manifest> {
    let pg_major = written
        .pg_version
        .as_deref()
        .and_then(crate::pg::parse_major)
        .with_context(|| {
            format!(
                "the {} copy has no PG_VERSION where PGDATA should be",
                taken.method
            )
        })?;
    let origin = Origin {
        method: taken.method,
        source: crate::target::Target::Volume(Box::new(t.clone())).source_facts(),
        pg_major,
        system_identifier: taken.system_identifier,
        pgdata: Some(t.pgdata.clone()),
        pgdata_rel: t.pgdata_rel.clone(),
        layout: taken.layout,
        owner: written.owner,
        downtime_seconds: taken.downtime_seconds,
        labels: opts.labels.clone(),
        database: taken.database,
    };
    Ok(Manifest::archived(name, origin, written))
}

async fn compress_stream<S>(
    stream: S,
    sink: ArchiveWriter,
    pgdata_in_tar: String,
    progress: Arc<dyn Progress>,
    fault_after: Option<u64>,
) -> Result<(archive::Written, Stored)>
where
    S: futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(32);
    let pump = tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        let mut sent = 0u64;
        while let Some(item) = stream.next().await {
            if let Ok(b) = &item {
                sent += b.len() as u64;
                if fault_after.is_some_and(|n| sent > n) {
                    let _ = tx
                        .send(Err(std::io::Error::other(
                            "injected fault mid-stream (WARD_FAULT)",
                        )))
                        .await;
                    return;
                }
            }
            if tx.send(item).await.is_err() {
                return;
            }
        }
    });
    let threads = crate::config::default_jobs().min(4) as u32;
    let written = tokio::task::spawn_blocking(move || {
        archive::compress(
            ChannelReader::new(rx),
            sink,
            &pgdata_in_tar,
            threads,
            progress.as_ref(),
        )
        .and_then(|(written, sink)| Ok((written, sink.finish()?)))
    })
    .await
    .context("the compression thread failed")??;
    pump.abort();
    Ok(written)
}
