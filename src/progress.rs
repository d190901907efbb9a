//! Progress reporting for long work, apart from any one domain.
//!
//! Seeding, snapshots, checks and the demo all report how far they are, and
//! `output` draws that as a bar. The trait lives in its own module so that
//! `snapshot` or `check` can take a `&dyn Progress` without importing `seed`
//! (which would tie the domains into an import cycle).

/// Reports progress of long work; `output` implements it with a progress bar.
pub(crate) trait Progress: Send + Sync {
    /// A new stage of `total` units (rows) named `label`.
    fn stage(&self, label: &str, total: u64);
    fn advance(&self, n: u64);
    fn finish(&self);
}

/// A `Progress` that shows nothing.
pub(crate) struct NoProgress;

impl Progress for NoProgress {
    fn stage(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}
