//! `ward demo`.

use anyhow::Result;

use crate::cli::DemoArgs;
use crate::config::Config;
use crate::error::Exit;
use crate::{demo, output};

pub(crate) async fn run(cfg: &Config, args: &DemoArgs) -> Result<Exit> {
    let bar = output::Bar::new(cfg.quiet);
    let summary = demo::run(args.patients, args.keep, &bar).await?;
    output::demo_summary(&summary, cfg.json);
    Ok(Exit::Ok)
}
