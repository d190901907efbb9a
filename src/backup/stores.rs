//! Every store operation `ward backup` needs, in one small place: open a
//! store by what the user wrote (a directory or `s3://bucket/prefix`, with
//! the `[store]` encryption keys), verify a snapshot in it, copy one between
//! two stores (`snapshot::copy`: hashed on the way, checked on arrival,
//! manifest last), prune this target's backups.
//!
//! Blocking file work runs on tokio's blocking pool, so Ctrl-C is still
//! noticed while a large archive is hashed or copied.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;

use crate::progress::Progress;
use crate::snapshot::{
    self, crypt::Keys, manifest::Manifest, retention, store::Listed, store::Store,
};

/// Opens the store `spec` names, with the keys new archives are encrypted to.
pub(crate) fn open(spec: &str, keys: &Keys) -> Result<Store> {
    Ok(Store::open(std::path::Path::new(spec))?.with_keys(keys.clone()))
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
        let m = store.load(&name)?;
        let mut problems = if m.encryption.is_some() && !store.keys().has_identity() {
            // The identity stays off this machine: prove the stored bytes
            // are the ones written (size and SHA-256 of the ciphertext).
            stored_bytes_problems(&store, &m)?
        } else {
            snapshot::verify(&store, &name, progress.as_ref())?.problems
        };
        if let Err(e) = snapshot::fault("backup:verify") {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(snapshot::Damaged(format!(
                "snapshot {name:?} in {} failed verification: {}",
                store.location(),
                problems.join("; ")
            ))
            .into())
        }
    })
    .await
}

/// Reads an archive back as stored and compares its size and SHA-256 with
/// the manifest's.
fn stored_bytes_problems(store: &Store, m: &Manifest) -> Result<Vec<String>> {
    let mut back = snapshot::archive::HashReader::new(store.open_archive(&m.name)?);
    std::io::copy(&mut back, &mut std::io::sink())
        .map_err(|e| anyhow::anyhow!("reading {} back: {e}", store.archive_location(&m.name)))?;
    let (sha, size) = back.finish();
    Ok(if size == m.compressed_bytes && sha == m.archive_sha256 {
        Vec::new()
    } else {
        vec![format!(
            "the archive reads back as {size} bytes (the manifest says {}){}",
            m.compressed_bytes,
            if sha == m.archive_sha256 {
                ""
            } else {
                " with another SHA-256"
            }
        )]
    })
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

/// Copies snapshot `name` from `from` into `to` with `snapshot::copy`: the
/// stored bytes hashed on the way against the manifest, checked on arrival
/// (every file when readable, else the stored bytes), manifest last; a copy
/// that fails its check is removed by it. Nothing is listed unchecked.
pub(crate) async fn copy(
    from: &Store,
    to: &Store,
    name: &str,
    progress: Arc<dyn Progress>,
) -> Result<snapshot::copy::Copied> {
    let (src, dst, n) = (from.clone(), to.clone(), name.to_string());
    blocking(move || {
        snapshot::fault("backup:copy")?;
        snapshot::copy::copy(&src, &dst, &n, progress.as_ref())
    })
    .await
}

/// Prunes `store` by `policy`, considering only the backups of this target:
/// snapshots labelled [`super::LABEL`] = `owner` whose name starts with
/// `<prefix>-`. Everything else in the store is never touched. All under
/// the store's lock, so what is deleted is what was decided.
pub(crate) async fn prune(
    store: &Store,
    policy: retention::Policy,
    owner: &str,
    system_identifier: Option<String>,
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
            .filter(|m| is_backup_of(m, &owner, system_identifier.as_deref(), &prefix))
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

/// Whether `m` is one of `ward backup`'s own backups of the target `owner`
/// — and of this cluster: two hosts deployed from one repository have
/// volumes of the same name, but clusters with different system
/// identifiers (kept by a physical restore, so a moved database's lineage
/// continues).
fn is_backup_of(m: &Manifest, owner: &str, system_identifier: Option<&str>, prefix: &str) -> bool {
    m.template.is_none()
        && m.name.starts_with(prefix)
        && m.labels.get(super::LABEL).map(String::as_str) == Some(owner)
        && (system_identifier.is_none() || m.system_identifier.as_deref() == system_identifier)
}
