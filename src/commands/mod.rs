//! One module per subcommand: turn arguments into a plan, call the domain,
//! hand the result to `output`. No logic of their own.

pub(crate) mod backup;
pub(crate) mod check;
pub(crate) mod demo;
pub(crate) mod doctor;
pub(crate) mod seed;
pub(crate) mod snapshot;
