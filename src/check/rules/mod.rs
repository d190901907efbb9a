//! Rules that turn traces into findings: a failed migration (with the
//! offending rows found by a diagnostic query) and the lock trace.

pub(crate) mod locks;
pub(crate) mod migration_error;
