//! `ward doctor`.

use anyhow::Result;

use crate::config::Config;
use crate::error::Exit;
use crate::{doctor, output};

pub(crate) async fn run(cfg: &Config) -> Result<Exit> {
    let report = doctor::run(
        cfg.database_url.as_deref(),
        &cfg.snapshot_target(&Default::default()),
    )
    .await;
    output::doctor_report(&report, cfg.json);
    Ok(if report.all_ok() {
        Exit::Ok
    } else {
        Exit::Findings
    })
}
