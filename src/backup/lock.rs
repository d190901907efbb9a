//! One `ward backup` per target at a time. A daily timer whose run takes
//! longer than a day, or a cron line beside a timer, would otherwise start a
//! second backup of the same data; the second one refuses at once, says who
//! holds the lock and since when, does nothing and sends no signal (the
//! running one reports its own outcome). The lock is an `flock` on a file in
//! ward's state directory, beside the target locks: the OS releases it when
//! ward exits, however it exits, so a killed run never blocks the next.

use std::io::{Read, Seek, Write};

use anyhow::Result;

use crate::target::Target;

/// Held for the whole run.
#[derive(Debug)]
pub(crate) struct RunLock {
    _file: std::fs::File,
}

/// Where the backup lock of `target` lives.
pub(crate) fn path(target: &Target) -> std::path::PathBuf {
    let target_lock = crate::snapshot::target_lock_path(target);
    let file = target_lock
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    target_lock.with_file_name(format!("backup-{file}"))
}

/// Takes the backup lock of `target`, or fails (exit 2) naming the holder.
pub(crate) fn take(target: &Target) -> Result<RunLock> {
    let path = path(target);
    let mut file = crate::snapshot::open_lock_file(&path)?;
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                String::new()
            } else {
                format!(" ({holder})")
            };
            return crate::error::usage(format!(
                "another `ward backup` of {} is still running{holder} — this run did nothing; \
                 it ends by itself (or stop that process), the next timer run backs up again",
                target.describe()
            ));
        }
        Err(fs4::TryLockError::Error(e)) => {
            return Err(anyhow::anyhow!("cannot lock {}: {e}", path.display()));
        }
    }
    // Who holds it, for the message a second run prints (best effort).
    let _ = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| {
        write!(
            file,
            "pid {}, started {}",
            std::process::id(),
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S UTC")
        )
    });
    Ok(RunLock { _file: file })
}
