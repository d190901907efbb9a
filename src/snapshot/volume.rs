//! Snapshots and restores of a Postgres data directory in a Docker volume,
//! through the engine's archive endpoints and helper containers of the
//! target's own image (reference/snapshots.md §6.3).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use chrono::Utc;
use futures_util::StreamExt;

use super::archive::{self, ChannelReader, ChannelWriter};
use super::manifest::{DatabaseFacts, DatabaseInfo, Layout, Manifest, Origin};
use super::store::Store;
use super::{
    Cleanup, Confirm, CreateOptions, Created, Method, RestoreOptions, Restored, control_field,
    fault, parse_major,
};
use crate::docker::{self, ContainerFacts, Docker, ExecOutput, Helper};
use crate::seed::Progress;
use crate::target::VolumeTarget;

/// Restarts a container that ward stopped — on every path: explicitly on
/// success, and from `Drop` on errors, panics and Ctrl-C.
#[derive(Debug)]
pub struct RestartGuard {
    name: String,
    armed: bool,
}

impl RestartGuard {
    fn new(name: &str, was_running: bool) -> Self {
        RestartGuard {
            name: name.to_string(),
            armed: was_running,
        }
    }

    async fn restart(mut self, d: &Docker) -> Result<bool> {
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

fn postgres_user(t: &VolumeTarget) -> String {
    t.container
        .as_ref()
        .map_or_else(|| "postgres".into(), container_user)
}

/// The superuser role the official image was initialised with.
fn container_user(c: &ContainerFacts) -> String {
    c.env
        .get("POSTGRES_USER")
        .cloned()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "postgres".into())
}

pub(super) async fn psql(
    d: &Docker,
    container: &str,
    user: &str,
    db: &str,
    sql: &str,
) -> Result<String> {
    let out = docker::exec(
        d,
        container,
        Some("postgres"),
        &[
            "psql",
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-U",
            user,
            "-d",
            db,
            "-c",
            sql,
        ],
    )
    .await?;
    if !out.ok() {
        bail!("psql in {container} failed: {}", out.stderr.trim());
    }
    Ok(out.stdout)
}

/// Database names and sizes, row estimates and a schema fingerprint (best effort).
async fn database_facts(d: &Docker, container: &str, user: &str) -> Result<DatabaseFacts> {
    let list = psql(
        d,
        container,
        user,
        "postgres",
        "SELECT datname || '|' || pg_database_size(datname) FROM pg_database \
         WHERE NOT datistemplate AND datallowconn ORDER BY datname",
    )
    .await?;
    let mut facts = DatabaseFacts::default();
    for line in list.lines().take(50) {
        let Some((name, size)) = line.rsplit_once('|') else {
            continue;
        };
        let tables = psql(
            d,
            container,
            user,
            name,
            "SELECT n.nspname || '.' || c.relname || '|' || c.reltuples::bigint FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r','p') \
             AND n.nspname NOT IN ('pg_catalog','information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
        )
        .await
        .unwrap_or_default();
        let fingerprint = psql(
            d,
            container,
            user,
            name,
            super::template::SCHEMA_FINGERPRINT_SQL,
        )
        .await
        .unwrap_or_default();
        facts.databases.push(DatabaseInfo {
            name: name.to_string(),
            size_bytes: size.trim().parse().unwrap_or(0),
            tables: tables
                .lines()
                .filter_map(|l| {
                    let (t, n) = l.rsplit_once('|')?;
                    Some((t.to_string(), n.trim().parse().unwrap_or(-1)))
                })
                .collect::<BTreeMap<_, _>>(),
            schema_fingerprint: fingerprint.trim().to_string(),
        });
    }
    Ok(facts)
}

async fn exec_ok(d: &Docker, c: &str, cmd: &[&str]) -> Result<ExecOutput> {
    let out = docker::exec(d, c, None, cmd).await?;
    if !out.ok() {
        bail!(
            "`{}` in helper container failed (exit {}): {}",
            cmd.join(" "),
            out.code,
            out.stderr.trim()
        );
    }
    Ok(out)
}

/// Streams `stream` into a compressed archive on a blocking thread.
async fn compress_stream<S>(
    stream: S,
    file: std::fs::File,
    pgdata_in_tar: String,
    progress: Arc<dyn Progress>,
    fault_after: Option<u64>,
) -> Result<archive::Written>
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
            file,
            &pgdata_in_tar,
            threads,
            progress.as_ref(),
        )
    })
    .await
    .context("the compression thread failed")??;
    pump.abort();
    Ok(written.0)
}

/// Repairs what ward processes that died (kill -9, power cut) left behind,
/// from their journals: restarts containers they stopped; refuses to snapshot
/// a container whose volume a dead restore left half-replaced, and says how to
/// put the previous data back.
async fn recover(d: &Docker, store: &Store, op: &str, container: Option<&str>) -> Result<()> {
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
                crate::output::note(&format!(
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
                crate::output::note(&format!(
                    "warning: an interrupted restore left container {} with partially replaced data — {fix}",
                    j.container
                ));
            }
            continue;
        }
        if j.was_running && !docker::is_running(d, &j.container).await? {
            docker::start_container(d, &j.container).await?;
            settle(d, &j.container, &user).await;
            crate::output::note(&format!(
                "note: restarted container {}, which an interrupted ward (pid {}) had stopped",
                j.container, j.pid
            ));
        }
        let _ = std::fs::remove_file(&path);
    }
    Ok(())
}

/// Waits (bounded) until Postgres in a running container answers. A stop
/// signal that arrives while the entrypoint shell is still PID 1 is lost and
/// Docker kills Postgres after the timeout (docker-library/postgres#1207), so
/// ward never stops a container that is still starting.
async fn settle(d: &Docker, container: &str, user: &str) {
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        wait_ready(d, container, user),
    )
    .await;
}

fn journal(
    store: &Store,
    op: &str,
    container: &str,
    was_running: bool,
    snapshot: &str,
) -> Result<super::store::Journal> {
    store.journal(super::store::JournalEntry {
        pid: std::process::id(),
        operation: op.into(),
        container: container.into(),
        was_running,
        phase: "stopped".into(),
        snapshot: snapshot.into(),
        safety: None,
        started_at: Utc::now(),
    })
}

/// Takes a snapshot of the volume.
pub async fn create(
    store: &Store,
    t: &VolumeTarget,
    name: &str,
    opts: &CreateOptions,
    progress: Arc<dyn Progress>,
) -> Result<Created> {
    let d = docker::connect().await?;
    recover(
        &d,
        store,
        "create",
        t.container.as_ref().map(|c| c.name.as_str()),
    )
    .await?;
    match opts.method {
        Method::Cold => cold(&d, store, t, name, opts, progress, true).await,
        Method::Online => online(&d, store, t, name, opts, progress).await,
    }
}

/// Cold snapshot: checkpoint, stop, prove a clean shutdown, stream the volume
/// out, restart. With `manage_container = false` the container is already
/// stopped by the caller (a restore's safety snapshot).
async fn cold(
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
            super::check_space(store, kb * 1024)?;
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
    let _journal = match &t.container {
        Some(c) if manage_container => Some(journal(store, "create", &c.name, was_running, name)?),
        _ => None,
    };
    let guard = match &t.container {
        Some(c) if manage_container => {
            progress.stage(&format!("stopping {}", c.name), 0);
            let guard = RestartGuard::new(&c.name, was_running);
            let code = docker::stop_container(d, &c.name, opts.stop_timeout).await?;
            if code != 0 {
                tracing::warn!("container {} exited with code {code} on stop", c.name);
            }
            Some(guard)
        }
        _ => None,
    };
    fault("create:after-stop")?;
    let helper = Helper::start(d, &t.image, &t.volume.name, &t.mount, true).await?;
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
        super::check_space(store, size_kb * 1024)?;
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
    let (tmp, file) = store.temp_archive(name)?;
    let tmp_guard = Cleanup::new(tmp.clone());
    progress.stage(&format!("archiving {name}"), size_kb * 1024);
    let fault_after = (std::env::var("WARD_FAULT").ok().as_deref() == Some("create:mid-stream"))
        .then_some(1024 * 1024);
    let stream = docker::download(d, &helper.name, &t.mount);
    let written = compress_stream(stream, file, pgdata_in_tar, progress.clone(), fault_after).await;
    progress.finish();
    helper.remove(d).await?;
    let written = written?;
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
    let pg_major = written
        .pg_version
        .as_deref()
        .and_then(parse_major)
        .context("the archive has no PG_VERSION where PGDATA should be")?;
    let m = Manifest::archived(
        name,
        Origin {
            method: "cold",
            source: crate::target::Target::Volume(Box::new(t.clone())).source_facts(),
            pg_major,
            system_identifier: system_id,
            pgdata: Some(t.pgdata.clone()),
            pgdata_rel: t.pgdata_rel.clone(),
            layout: Layout::Volume { root },
            owner: written.owner,
            downtime_seconds: downtime,
            labels: opts.labels.clone(),
            database: db_facts,
        },
        written,
    );
    store.commit(&tmp, &m)?;
    tmp_guard.disarm();
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
    super::check_space(store, size)?;
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
    let (tmp, file) = store.temp_archive(name)?;
    let tmp_guard = Cleanup::new(tmp.clone());
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
    let written = compress_stream(stdout, file, String::new(), progress.clone(), None).await;
    progress.finish();
    let code = docker::exec_exit_code(d, &exec_id).await?;
    if code != 0 {
        let msg = stderr.lock().unwrap().trim().to_string();
        bail!("pg_basebackup in {} failed (exit {code}): {msg}", c.name);
    }
    let written = written?;
    let pg_major = written
        .pg_version
        .as_deref()
        .and_then(parse_major)
        .context("pg_basebackup's output has no PG_VERSION")?;
    let m = Manifest::archived(
        name,
        Origin {
            method: "online",
            source: crate::target::Target::Volume(Box::new(t.clone())).source_facts(),
            pg_major,
            system_identifier: system_id,
            pgdata: Some(t.pgdata.clone()),
            pgdata_rel: t.pgdata_rel.clone(),
            layout: Layout::Pgdata,
            owner: written.owner,
            downtime_seconds: None,
            labels: opts.labels.clone(),
            database: db_facts,
        },
        written,
    );
    store.commit(&tmp, &m)?;
    tmp_guard.disarm();
    Ok(Created::of(
        store,
        &m,
        Method::Online,
        crate::target::Target::Volume(Box::new(t.clone())).describe(),
        started,
        false,
    ))
}

/// Where the helper mounts the volume for a restore, where the archive is
/// uploaded, and where PGDATA ends up (all inside the helper).
pub(super) fn restore_paths(m: &Manifest, pgdata_rel: &str) -> (String, String, String) {
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

/// The target image's Postgres major version and postgres uid/gid.
pub(super) async fn image_facts(d: &Docker, helper: &str) -> Result<(Option<u32>, u32, u32)> {
    let v = docker::exec(d, helper, None, &["postgres", "-V"]).await?;
    let major = v
        .stdout
        .split_whitespace()
        .last()
        .and_then(|s| s.split('.').next())
        .and_then(|s| s.parse().ok());
    let uid = exec_ok(d, helper, &["id", "-u", "postgres"]).await?;
    let gid = exec_ok(d, helper, &["id", "-g", "postgres"]).await?;
    let parse = |o: &ExecOutput, what: &str| -> Result<u32> {
        o.stdout
            .trim()
            .parse()
            .with_context(|| format!("cannot read the {what} of the image's postgres user"))
    };
    Ok((major, parse(&uid, "uid")?, parse(&gid, "gid")?))
}

/// Replaces the volume's contents with the archive `archive_of` (already
/// verified), then fixes ownership and mode. The helper mounts the volume.
#[allow(clippy::too_many_arguments)]
pub(super) async fn replace_contents(
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
        let r = archive::check(&path, &m2, Some(&mut w), p2.as_ref());
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

/// Waits until Postgres in the container accepts connections, then runs a
/// sanity query. Returns the query's answer.
pub(super) async fn wait_ready(d: &Docker, container: &str, user: &str) -> Result<String> {
    let deadline = Instant::now() + std::time::Duration::from_secs(90);
    loop {
        if crate::error::cancelled() {
            return Err(crate::error::Interrupted.into());
        }
        if !docker::is_running(d, container).await? {
            bail!(
                "container {container} stopped while starting on the restored data (see `docker logs {container}`)"
            );
        }
        let r = docker::exec(
            d,
            container,
            Some("postgres"),
            &["pg_isready", "-q", "-U", user],
        )
        .await;
        if matches!(&r, Ok(o) if o.ok()) {
            // The entrypoint may still be in its init phase on a fresh volume;
            // a real query answers only from the final server.
            if let Ok(out) = psql(
                d,
                container,
                user,
                "postgres",
                "SELECT count(*) || ' databases, ' || (SELECT count(*) FROM pg_class) || ' relations' FROM pg_database",
            )
            .await
            {
                return Ok(out.trim().to_string());
            }
        }
        if Instant::now() > deadline {
            bail!("Postgres in {container} did not become ready within 90 s on the restored data");
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
}

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
    journal: Option<&mut super::store::Journal>,
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
        let sanity = wait_ready(d, &c.name, &postgres_user(t)).await?;
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

/// `verify --deep`: restore into a throwaway volume, start Postgres of the
/// snapshot's image on it, run `pg_amcheck` and a sanity query.
pub async fn deep_verify(
    store: &Store,
    m: &Manifest,
    progress: Arc<dyn Progress>,
) -> Result<String> {
    if m.source.image.is_none() || m.source.mount.is_none() || m.pgdata.is_none() {
        return crate::error::usage(
            "--deep works on snapshots of Docker volumes (it starts the snapshot's own image); \
             this one is of a native data directory",
        );
    }
    let d = docker::connect().await?;
    let server = super::throwaway::Throwaway::start(
        &d,
        store,
        m,
        super::throwaway::Reach::Internal,
        progress,
    )
    .await?;
    let result = async {
        let check = docker::exec(
            &d,
            server.container(),
            Some("postgres"),
            &[
                "pg_amcheck",
                "-U",
                &server.user,
                "--all",
                "--install-missing",
            ],
        )
        .await?;
        if !check.ok() {
            bail!(
                "pg_amcheck found problems: {}",
                format!("{}{}", check.stdout, check.stderr)
                    .lines()
                    .take(5)
                    .collect::<Vec<_>>()
                    .join(" / ")
            );
        }
        Ok(format!(
            "Postgres started on a restored copy; pg_amcheck clean; {}",
            server.sanity
        ))
    }
    .await;
    server.remove().await?;
    result
}
