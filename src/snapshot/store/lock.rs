//! The writer lock of a bucket prefix: an object `.ward/lock` naming its
//! owner (host, pid) and an expiry, created with a conditional put
//! (`If-None-Match: *`, `PutMode::Create`) so that of two wards racing for
//! it exactly one wins where the service supports conditional writes (AWS S3
//! since 2024, MinIO, R2, Garage). Where it does not, ward reads the lock
//! first and again after writing it, which narrows the race to the moment
//! between the two but cannot close it — the README says so.
//!
//! A holder refreshes the expiry while it works; a lock whose expiry has
//! passed, or whose owner is a process of this host that is gone (a killed
//! ward), is taken over.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::remote::Remote;
use crate::error::UsageError;

const LOCK: &str = ".ward/lock";
/// How long a lock holds without a refresh.
const LEASE: Duration = Duration::from_secs(10 * 60);
/// How often a holder refreshes it.
const REFRESH: Duration = Duration::from_secs(60);

#[derive(Debug, Serialize, Deserialize)]
struct Owner {
    host: String,
    pid: u32,
    token: String,
    expires_at: DateTime<Utc>,
}

impl Owner {
    fn me(token: &str) -> Owner {
        Owner {
            host: host(),
            pid: std::process::id(),
            token: token.to_string(),
            expires_at: Utc::now() + chrono::Duration::from_std(LEASE).unwrap_or_default(),
        }
    }

    /// Expired, or its process on this host is gone.
    fn stale(&self) -> bool {
        if self.expires_at < Utc::now() {
            return true;
        }
        self.host == host()
            && self.pid != std::process::id()
            && nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid as i32), None)
                == Err(nix::errno::Errno::ESRCH)
    }
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Held while writing; the object is removed on drop (and expires if ward
/// dies).
pub(crate) struct RemoteLock {
    remote: Arc<Remote>,
    token: String,
    stop: Arc<AtomicBool>,
}

impl std::fmt::Debug for RemoteLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteLock({:?})", self.remote)
    }
}

fn read(remote: &Remote) -> Result<Option<Owner>> {
    Ok(remote
        .get_small(LOCK)?
        .map(|b| serde_json::from_slice::<Owner>(&b).ok())
        .map(|o| {
            // An unreadable lock object is treated as a stale one.
            o.unwrap_or(Owner {
                host: String::new(),
                pid: 0,
                token: String::new(),
                expires_at: DateTime::<Utc>::MIN_UTC,
            })
        }))
}

/// Takes the lock, or fails at once if another live ward holds it.
pub(super) fn acquire(remote: &Arc<Remote>) -> Result<RemoteLock> {
    let token = super::super::new_id();
    for _ in 0..3 {
        if let Some(held) = read(remote)? {
            if !held.stale() {
                return Err(busy(remote, &held));
            }
            tracing::info!(
                "taking over the lock of {} left by pid {} on {:?}",
                remote.url(),
                held.pid,
                held.host
            );
            remote.delete(LOCK)?;
        }
        if !remote.put_if_absent(LOCK, serde_json::to_vec(&Owner::me(&token))?)? {
            continue;
        }
        match read(remote)? {
            Some(o) if o.token == token => {
                let stop = Arc::new(AtomicBool::new(false));
                refresh_in_background(remote.clone(), token.clone(), stop.clone());
                return Ok(RemoteLock {
                    remote: remote.clone(),
                    token,
                    stop,
                });
            }
            Some(o) => return Err(busy(remote, &o)),
            None => continue,
        }
    }
    crate::error::usage(format!(
        "cannot take the lock of the snapshot store {} (another ward keeps taking it) — try again",
        remote.url()
    ))
}

fn busy(remote: &Remote, o: &Owner) -> anyhow::Error {
    UsageError(format!(
        "another ward process (pid {} on {:?}) is writing to the snapshot store {} — wait for it \
         to finish (its lock expires at {} if it died)",
        o.pid,
        o.host,
        remote.url(),
        o.expires_at.format("%Y-%m-%d %H:%M:%S UTC")
    ))
    .into()
}

fn refresh_in_background(remote: Arc<Remote>, token: String, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        loop {
            for _ in 0..REFRESH.as_secs() {
                std::thread::sleep(Duration::from_secs(1));
                if stop.load(Ordering::SeqCst) {
                    return;
                }
            }
            match read(&remote) {
                Ok(Some(o)) if o.token == token => {
                    if let Ok(bytes) = serde_json::to_vec(&Owner::me(&token))
                        && let Err(e) = remote.put_small(LOCK, bytes, false)
                    {
                        tracing::warn!("cannot refresh the lock of {}: {e:#}", remote.url());
                    }
                }
                Ok(_) => {
                    tracing::warn!("the lock of {} was taken over", remote.url());
                    return;
                }
                Err(e) => tracing::warn!("cannot read the lock of {}: {e:#}", remote.url()),
            }
        }
    });
}

impl Drop for RemoteLock {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Ok(Some(o)) = read(&self.remote)
            && o.token == self.token
        {
            let _ = self.remote.delete(LOCK);
        }
    }
}
