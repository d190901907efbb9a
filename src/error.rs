//! Error types that callers branch on, and the mapping of outcomes to exit codes.
//!
//! Domain code returns `anyhow::Error` at the edges; the few errors that change
//! what ward does next (an interrupt, a finding) are typed here so `run` can
//! downcast them into the documented exit codes.

use thiserror::Error;

/// The process exit code contract (see README "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// Everything worked.
    Ok,
    /// The command ran and found problems (e.g. `doctor` found something missing).
    Findings,
    /// Bad input or an unreachable service.
    Error,
    /// Interrupted by Ctrl-C.
    Interrupted,
}

impl Exit {
    pub(crate) fn as_u8(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Findings => 1,
            Exit::Error => 2,
            Exit::Interrupted => 130,
        }
    }
}

/// Raised when the user pressed Ctrl-C; the work in flight was rolled back.
/// `run` words the message for the command that was stopped.
#[derive(Debug, Error)]
#[error("interrupted")]
pub(crate) struct Interrupted;

/// A problem with what the user asked for, with the fix in the message.
///
/// Used where the caller needs to know the difference between "the input is
/// wrong" and "something broke"; both exit 2, but tests and `doctor` branch on it.
#[derive(Debug, Error)]
#[error("{0}")]
pub(crate) struct UsageError(pub String);

/// Another ward process holds a lock this step needs (a snapshot store's
/// writer lock, local or remote, or a target's lock). Exit 2 like a
/// [`UsageError`], but typed apart so that an unattended caller (`ward
/// backup`) can wait its turn instead of failing, without reading messages.
#[derive(Debug, Error)]
#[error("{0}")]
pub(crate) struct Busy(pub String);

/// A service ward needs did not answer: an S3 endpoint that refused the
/// connection or timed out. Exit 2 for a command run by hand, like a
/// [`UsageError`]; typed apart because `ward backup` reports it as a failed
/// step (exit 1) — at 3 a.m. a bucket that is down is an outage to be told,
/// not a configuration to be fixed.
#[derive(Debug, Error)]
#[error("{0}")]
pub(crate) struct Unreachable(pub String);

/// Whether `e` means ward could not do the work — bad input, another ward's
/// lock, a service that did not answer — rather than that the work found
/// something wrong (damage, a failed check). Such errors exit 2, never 1.
pub(crate) fn is_error_not_finding(e: &anyhow::Error) -> bool {
    e.downcast_ref::<UsageError>().is_some()
        || e.downcast_ref::<Busy>().is_some()
        || e.downcast_ref::<Unreachable>().is_some()
}

/// Shorthand for returning a [`UsageError`].
pub(crate) fn usage<T>(msg: impl Into<String>) -> anyhow::Result<T> {
    Err(UsageError(msg.into()).into())
}

static CANCELLED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks the process as interrupted; long-running loops poll [`cancelled`]
/// and stop, so work on other threads (an export) cleans up after itself.
pub(crate) fn cancel() {
    CANCELLED.store(true, std::sync::atomic::Ordering::SeqCst);
}

pub(crate) fn cancelled() -> bool {
    CANCELLED.load(std::sync::atomic::Ordering::SeqCst)
}

/// Clears the interrupt flag so that a rollback, which must finish, can run
/// to the end after Ctrl-C (the command still exits 130).
pub(crate) fn uncancel() {
    CANCELLED.store(false, std::sync::atomic::Ordering::SeqCst);
}
