//! `--apply-cmd`: any framework's migrator, run on the clone with the
//! connection in `DATABASE_URL` and the `PG*` variables. ward cannot trace
//! its statements, so a failure is one finding with the command's last lines.

use std::time::Instant;

use anyhow::Result;
use tokio_postgres::Config;
use tokio_postgres::config::Host;

use super::report::{Finding, Level};
use super::rule::Rule;
use crate::error::UsageError;
use crate::pg::url_of;

/// Runs `cmd` against the database of `cfg` with session zone `tz`; a
/// finding when it fails.
pub(super) async fn run_apply_cmd(cmd: &str, cfg: &Config, tz: &str) -> Result<Option<Finding>> {
    let host = match cfg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "localhost".into(),
    };
    let password = cfg
        .get_password()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .unwrap_or_default();
    let started = Instant::now();
    let out = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .env("DATABASE_URL", url_of(cfg))
        .env("PGHOST", &host)
        .env(
            "PGPORT",
            cfg.get_ports().first().copied().unwrap_or(5432).to_string(),
        )
        .env("PGUSER", cfg.get_user().unwrap_or("postgres"))
        .env("PGPASSWORD", &password)
        .env("PGDATABASE", cfg.get_dbname().unwrap_or("postgres"))
        .env("PGTZ", tz)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| UsageError(format!("cannot run --apply-cmd ({e}) — is `sh` available?")))?;
    tracing::info!("--apply-cmd finished in {:.2?}", started.elapsed());
    if out.status.success() {
        return Ok(None);
    }
    let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
    if text.trim().is_empty() {
        text = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    if !password.is_empty() {
        crate::redact::register(&password);
    }
    text = crate::redact::text(&text);
    let tail: Vec<&str> = text
        .trim()
        .lines()
        .rev()
        .take(5)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let mut f = Finding::new(
        Level::Fail,
        Rule::MigrationError,
        format!(
            "--apply-cmd exited with {} on the clone",
            out.status
                .code()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "a signal".into())
        ),
    )
    .remedy("run the command against a copy of the data and fix the migration it reports");
    for l in tail {
        f = f.evidence(l.to_string());
    }
    Ok(Some(f))
}
