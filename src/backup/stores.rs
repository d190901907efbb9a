//! Every store operation `ward backup` needs, in one small place: open a
//! store by what the user wrote, verify a snapshot in it, copy one between
//! two stores (verified on arrival), prune this target's backups. When
//! stores become generic (a directory or `s3://…`) only this file changes.
//!
//! Blocking file work runs on tokio's blocking pool, so Ctrl-C is still
//! noticed while a large archive is hashed or copied.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::progress::Progress;
use crate::snapshot::{self, manifest::Manifest, retention, store::Listed, store::Store};

/// Opens the store `spec` names (today: a directory, created if missing).
pub(crate) fn open(spec: &str) -> Result<Store> {
    if spec.contains("://") {
        return crate::error::usage(format!(
            "store {spec:?} is a URL, and this ward only knows directory stores — give a \
             directory path"
        ));
    }
    Store::open(std::path::Path::new(spec))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("a store task failed: {e}")))
}

/// Re-reads snapshot `name` in `store` and hashes it against its manifest;
/// damage is a [`snapshot::Damaged`] error.
pub(crate) async fn verify(store: &Store, name: &str, progress: Arc<dyn Progress>) -> Result<()> {
    let (store, name) = (store.clone(), name.to_string());
    blocking(move || {
        let v = snapshot::verify(&store, &name, progress.as_ref())?;
        let mut problems = v.problems;
        if let Err(e) = snapshot::fault("backup:verify") {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(snapshot::Damaged(format!(
                "snapshot {name:?} in {} failed verification: {}",
                store.dir.display(),
                problems.join("; ")
            ))
            .into())
        }
    })
    .await
}

/// Deletes this run's own snapshot `name` from `store` when `why` proved it
/// damaged (a damaged backup must not be counted by the next prune); any
/// other failure (an unreadable file, a missing key) leaves it. Returns
/// whether it was deleted.
pub(crate) async fn discard(store: &Store, name: &str, why: &anyhow::Error) -> Result<bool> {
    if why.downcast_ref::<snapshot::Damaged>().is_none() {
        return Ok(false);
    }
    let (store, name) = (store.clone(), name.to_string());
    let mut notes = Vec::new();
    when_free(&mut notes, || {
        let (store, name) = (store.clone(), name.clone());
        blocking(move || {
            let _lock = store.lock()?;
            store.delete(&name)
        })
    })
    .await
    .map(|()| true)
}

/// How long a step waits for a lock another ward holds (a `snapshot create`
/// or `prune` by hand, another target's backup into the same store).
const BUSY_WAIT: Duration = Duration::from_secs(600);
const BUSY_POLL: Duration = Duration::from_secs(3);

/// Runs `attempt` again while it fails only because another ward holds a
/// lock it needs (the store's or the target's), for up to [`BUSY_WAIT`]:
/// an unattended run should wait its turn, not fail. A wait is noted.
pub(crate) async fn when_free<T, F, Fut>(notes: &mut Vec<String>, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let started = Instant::now();
    loop {
        match attempt().await {
            Err(e)
                if is_busy(&e) && started.elapsed() < BUSY_WAIT && !crate::error::cancelled() =>
            {
                tokio::time::sleep(BUSY_POLL).await;
            }
            done => {
                if started.elapsed() >= BUSY_POLL {
                    notes.push(format!(
                        "note: waited {:.0} s for another ward process to release a lock",
                        started.elapsed().as_secs_f64()
                    ));
                }
                return done;
            }
        }
    }
}

/// Whether `e` says only that another ward holds a lock.
fn is_busy(e: &anyhow::Error) -> bool {
    e.downcast_ref::<crate::error::UsageError>()
        .is_some_and(|u| u.0.starts_with("another ward process"))
}

/// Copies snapshot `name` from `from` into `to` (temporary name, fsync,
/// rename, manifest last: the store's own commit), then verifies it there.
/// A copy that fails verification is deleted again: a damaged backup must
/// not be listed as one. Returns the seconds the verification took.
pub(crate) async fn copy(
    from: &Store,
    to: &Store,
    name: &str,
    progress: Arc<dyn Progress>,
) -> Result<f64> {
    let (src, dst, n) = (from.clone(), to.clone(), name.to_string());
    blocking(move || place_copy(&src, &dst, &n)).await?;
    let t = Instant::now();
    if let Err(e) = verify(to, name, progress).await {
        return Err(match discard(to, name, &e).await {
            Ok(true) => e.context("the copy was deleted again"),
            Ok(false) => e,
            Err(d) => e.context(format!(
                "deleting the copy failed too ({d:#}) — delete it: ward snapshot delete {name} \
                 --store {}",
                to.dir.display()
            )),
        });
    }
    Ok(t.elapsed().as_secs_f64())
}

fn place_copy(from: &Store, to: &Store, name: &str) -> Result<()> {
    let manifest: Manifest = from.load(name)?;
    let _lock = to.lock()?;
    if to.exists(name) {
        return crate::error::usage(format!(
            "a snapshot named {name:?} already exists in {} — nothing was copied",
            to.dir.display()
        ));
    }
    to.available()
        .ok()
        .filter(|free| *free < manifest.compressed_bytes)
        .map_or(Ok(()), |free| {
            crate::error::usage(format!(
                "not enough free space in {}: {} available, {} needed",
                to.dir.display(),
                snapshot::human_bytes(free),
                snapshot::human_bytes(manifest.compressed_bytes)
            ))
        })?;
    let (temp, mut file) = to.temp_archive(name)?;
    let written = (|| -> Result<()> {
        let source = from.archive_path(name);
        let mut reader = std::fs::File::open(&source)
            .with_context(|| format!("cannot read {}", source.display()))?;
        std::io::copy(&mut reader, &mut file)
            .and_then(|_| file.flush())
            .and_then(|()| file.sync_all())
            .with_context(|| format!("cannot write {}", temp.display()))?;
        drop(file);
        snapshot::fault("backup:copy")?;
        to.commit(&temp, &manifest)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    written
}

/// Prunes `store` by `policy`, considering only the backups of this target:
/// snapshots labelled [`super::LABEL`] = `owner` whose name starts with
/// `<prefix>-`. Everything else in the store is never touched. All under
/// the store's lock, so what is deleted is what was decided.
pub(crate) async fn prune(
    store: &Store,
    policy: retention::Policy,
    owner: &str,
    prefix: &str,
) -> Result<Vec<retention::Decision>> {
    let (store, owner, prefix) = (store.clone(), owner.to_string(), format!("{prefix}-"));
    blocking(move || {
        let _lock = store.lock()?;
        let ours: Vec<(String, chrono::DateTime<chrono::Utc>)> = store
            .list()?
            .into_iter()
            .filter_map(|l| match l {
                Listed::Ok(m) => Some(m),
                Listed::Unreadable { .. } | Listed::Incomplete { .. } => None,
            })
            .filter(|m| is_backup_of(m, &owner, &prefix))
            .map(|m| (m.name.clone(), m.created_at))
            .collect();
        let decisions = retention::select(&ours, policy);
        for d in decisions.iter().filter(|d| !d.keep) {
            store.delete(&d.name)?;
        }
        Ok(decisions)
    })
    .await
}

/// Whether `m` is one of `ward backup`'s own backups of the target `owner`.
fn is_backup_of(m: &Manifest, owner: &str, prefix: &str) -> bool {
    m.template.is_none()
        && m.name.starts_with(prefix)
        && m.labels.get(super::LABEL).map(String::as_str) == Some(owner)
}
