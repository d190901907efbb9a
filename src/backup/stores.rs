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

/// Re-reads snapshot `name` in `store` and hashes it against its manifest
/// with `snapshot::verify`: every file when the archive is readable here,
/// else (encrypted, the identity kept off this machine) the stored bytes'
/// size and SHA-256. Returns what was read (`Verified::scope`); damage is a
/// [`snapshot::Damaged`] error.
pub(crate) async fn verify(
    store: &Store,
    name: &str,
    progress: Arc<dyn Progress>,
) -> Result<&'static str> {
    let (store, name) = (store.clone(), name.to_string());
    blocking(move || {
        let verified = snapshot::verify(&store, &name, progress.as_ref())?;
        let mut problems = verified.problems;
        if let Err(e) = snapshot::fault("backup:verify") {
            problems.push(e.to_string());
        }
        if problems.is_empty() {
            Ok(verified.scope)
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

/// Whether `e` says only that another ward holds a lock (a typed
/// [`crate::error::Busy`], whichever lock it was).
fn is_busy(e: &anyhow::Error) -> bool {
    e.downcast_ref::<crate::error::Busy>().is_some()
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

#[cfg(test)]
mod tests {
    use super::is_busy;
    use crate::error::{Busy, UsageError};

    #[test]
    fn busy_is_known_by_its_type_not_its_words() {
        assert!(is_busy(&Busy("the store is held".into()).into()));
        assert!(is_busy(
            &anyhow::Error::new(Busy("held".into())).context("creating the backup")
        ));
        assert!(!is_busy(
            &UsageError("another ward process is writing to the snapshot store".into()).into()
        ));
    }
}
