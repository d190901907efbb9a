//! The only module that prints: reports on stdout (tables for people, JSON
//! with `--json`), errors and progress bars on stderr, and the logging setup.
//!
//! Progress bars appear only when stderr is a terminal and not `--quiet`;
//! colour is off under `NO_COLOR` or without a terminal. A closed stdout
//! (`ward … | head`) is not an error.
//!
//! This file holds what every report shares (stdout that tolerates a closed
//! pipe, JSON, errors, notes, the terminal questions); each report kind has
//! its own file, and `bar.rs` the progress bars.

use std::io::{IsTerminal, Write};

use serde::Serialize;

mod backup;
mod bar;
mod check;
mod doctor;
mod seed;
mod snapshot;

pub(crate) use backup::{backup_report, backup_units};
pub(crate) use bar::Bar;
pub(crate) use check::{ReportFormat, check_report};
pub(crate) use doctor::doctor_report;
pub(crate) use seed::{demo_summary, init_spec_report, seed_report};
pub(crate) use snapshot::{
    fast_snapshot_created, fast_snapshot_restored, snapshot_copied, snapshot_created,
    snapshot_deleted, snapshot_list, snapshot_pruned, snapshot_recovered, snapshot_restored,
    snapshot_show, snapshot_verified,
};

/// Logs go to stderr, filtered by `WARD_LOG` (e.g. `debug`, `ward=trace`) or -v/-q.
pub(crate) fn init_logging(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (_, 0) => "warn",
        (_, 1) => "info",
        (_, 2) => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("WARD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| crate::redact::Stderr)
        .with_ansi(colour())
        .with_target(false)
        .try_init();
}

fn colour() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// Writes to stdout; a closed pipe ends output quietly.
fn out(text: &str) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
        && e.kind() == std::io::ErrorKind::BrokenPipe
    {
        std::process::exit(0);
    }
}

fn json<T: Serialize>(value: &T) {
    out(&format!(
        "{}\n",
        serde_json::to_string_pretty(value).expect("reports serialise")
    ));
}

/// An error, on one line, on stderr (a spec with several mistakes: one line each).
pub(crate) fn error(err: &anyhow::Error) {
    let prefix = if colour() {
        "\x1b[31merror:\x1b[0m"
    } else {
        "error:"
    };
    if let Some(many) = err.downcast_ref::<crate::seed::SpecErrors>() {
        for line in &many.0 {
            eprintln!("{prefix} {}", crate::redact::text(line).replace('\n', " "));
        }
        return;
    }
    let msg = crate::redact::text(&format!("{err:#}")).replace('\n', " ");
    eprintln!("{prefix} {msg}");
}

/// A note for the user on stderr (not data).
pub(crate) fn note(msg: &str) {
    eprintln!("{msg}");
}

pub(crate) fn can_prompt() -> bool {
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Asks a yes/no question on the terminal; `yes` answers it in advance.
/// Without a terminal and without `yes`, refuses with a usage error.
pub(crate) fn confirm(question: &str, yes: bool) -> anyhow::Result<bool> {
    if yes {
        return Ok(true);
    }
    if !can_prompt() {
        return crate::error::usage(
            "this replaces or deletes data and needs confirmation, but there is no terminal to ask on — pass --yes",
        );
    }
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}
