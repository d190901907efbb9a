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
use crate::error::Busy;

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
        self.host == host() && self.pid != std::process::id() && !alive_here(&self.host, self.pid)
    }
}

/// Whether `pid` on `host` is a live process of this host.
pub(super) fn alive_here(on: &str, pid: u32) -> bool {
    on == host()
        && pid != 0
        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None)
            != Err(nix::errno::Errno::ESRCH)
}

pub(super) fn host() -> String {
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
    Ok(read_tagged(remote)?.map(|(o, _)| o))
}

/// The lock's owner and ETag; an unreadable lock object counts as stale.
fn read_tagged(remote: &Remote) -> Result<Option<(Owner, Option<String>)>> {
    Ok(remote.get_tagged(LOCK)?.map(|(b, tag)| {
        let o = serde_json::from_slice::<Owner>(&b).unwrap_or(Owner {
            host: String::new(),
            pid: 0,
            token: String::new(),
            expires_at: DateTime::<Utc>::MIN_UTC,
        });
        (o, tag)
    }))
}

/// Takes the lock, or fails at once if another live ward holds it.
pub(super) fn acquire(remote: &Arc<Remote>) -> Result<RemoteLock> {
    let token = super::super::new_id();
    for _ in 0..3 {
        let mine = serde_json::to_vec(&Owner::me(&token))?;
        let placed = match read_tagged(remote)? {
            Some((held, _)) if !held.stale() => return Err(busy(remote, &held)),
            Some((held, tag)) => {
                tracing::info!(
                    "taking over the lock of {} left by pid {} on {:?}",
                    remote.url(),
                    held.pid,
                    held.host
                );
                // Replaced only if it is still the stale lock just read: of
                // two wards taking it over, one wins.
                match tag.map(|t| remote.replace_if(LOCK, &t, mine.clone())) {
                    Some(Err(e)) => return Err(e),
                    Some(Ok(Some(won))) => won,
                    // No ETag or no conditional update: delete, then create.
                    _ => {
                        remote.delete(LOCK)?;
                        remote.put_if_absent(LOCK, mine)?
                    }
                }
            }
            None => remote.put_if_absent(LOCK, mine)?,
        };
        if !placed {
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
    Err(Busy(format!(
        "cannot take the lock of the snapshot store {} (another ward keeps taking it) — try again",
        remote.url()
    ))
    .into())
}

fn busy(remote: &Remote, o: &Owner) -> anyhow::Error {
    Busy(format!(
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
