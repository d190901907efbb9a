//! One module per subcommand: turn arguments into a plan, call the domain,
//! hand the result to `output`. No logic of their own.

pub mod backup;
pub mod check;
pub mod demo;
pub mod doctor;
pub mod seed;
pub mod snapshot;
