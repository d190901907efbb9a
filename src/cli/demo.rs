//! `ward demo`'s flags and examples.

use clap::Args;

pub(super) const DEMO_EXAMPLES: &str = "Examples:
  ward demo                  seed 1,000 patients into a throwaway cluster, summarise, clean up
  ward demo --keep           leave the cluster running and print how to connect and stop it";

#[derive(Debug, Args, Clone, Default)]
pub(crate) struct DemoArgs {
    /// Leave the throwaway cluster running and print how to stop it.
    #[arg(long)]
    pub keep: bool,

    /// Patients to seed in the demo.
    #[arg(long, short = 'n', default_value_t = 1000, value_name = "N")]
    pub patients: u64,
}
