//! The only module that prints: reports on stdout (tables for people, JSON
//! with `--json`), errors and progress bars on stderr, and the logging setup.
//!
//! Progress bars appear only when stderr is a terminal and not `--quiet`;
//! colour is off under `NO_COLOR` or without a terminal. A closed stdout
//! (`ward … | head`) is not an error.

use std::io::{IsTerminal, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use crate::doctor;
use crate::seed::{Progress, SeedReport};

/// Logs go to stderr, filtered by `WARD_LOG` (e.g. `debug`, `ward=trace`) or -v/-q.
pub fn init_logging(verbose: u8, quiet: bool) {
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
        .with_writer(std::io::stderr)
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

/// An error, on one line, on stderr.
pub fn error(err: &anyhow::Error) {
    let msg = format!("{err:#}").replace('\n', " ");
    let prefix = if colour() {
        "\x1b[31merror:\x1b[0m"
    } else {
        "error:"
    };
    eprintln!("{prefix} {msg}");
}

/// A note for the user on stderr (not data).
pub fn note(msg: &str) {
    eprintln!("{msg}");
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn seed_report(r: &SeedReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    let mut s = format!(
        "Seeded {} patients into {} (seed {}, {} job{}){}\n\n",
        thousands(r.patients),
        r.target,
        r.seed,
        r.jobs,
        if r.jobs == 1 { "" } else { "s" },
        if r.created_schema {
            ", created ward's tables"
        } else {
            ""
        }
    );
    s += &format!("  {:<15} {:>12} {:>14}\n", "table", "rows", "rows/s");
    for t in &r.tables {
        s += &format!(
            "  {:<15} {:>12} {:>14}\n",
            t.table,
            thousands(t.rows),
            thousands(t.rows_per_second as u64)
        );
    }
    s += &format!(
        "  {:<15} {:>12} {:>14}\n\n{:.2} s · {} rows/s · {} patients/s\n",
        "total",
        thousands(r.total_rows),
        thousands(r.rows_per_second as u64),
        r.seconds,
        thousands(r.rows_per_second as u64),
        thousands(r.patients_per_second as u64)
    );
    out(&s);
}

pub fn doctor_report(r: &doctor::Report, as_json: bool) {
    if as_json {
        return json(r);
    }
    let mut s = String::new();
    for c in &r.checks {
        let mark = match c.status {
            doctor::Status::Ok => "ok     ",
            doctor::Status::Skipped => "skipped",
            doctor::Status::Missing => "MISSING",
        };
        s += &format!("{mark}  {:<26} {}\n", c.name, c.detail);
        if let Some(fix) = &c.fix {
            s += &format!("         {:<26} fix: {fix}\n", "");
        }
    }
    out(&s);
}

/// What `ward demo` shows after seeding.
#[derive(Debug, Serialize)]
pub struct DemoSummary {
    pub seed: SeedReport,
    /// Connection string of the cluster (only when kept running).
    pub database_url: Option<String>,
    /// How to stop the kept cluster.
    pub stop_command: Option<String>,
    /// A few sample patients.
    pub sample: Vec<Vec<String>>,
    /// `ward check` of the example migrations (one safe, one data-breaking).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<crate::check::report::Report>,
}

pub fn demo_summary(d: &DemoSummary, as_json: bool) {
    if as_json {
        return json(d);
    }
    seed_report(&d.seed, false);
    let mut s =
        String::from("\nA few patients (all fake, NHS numbers from the never-issued 999 range):\n");
    for row in &d.sample {
        s += &format!("  {}\n", row.join("  "));
    }
    for (report, (name, _)) in d.checks.iter().zip(crate::demo::EXAMPLE_MIGRATIONS) {
        s += &format!(
            "\n— ward check of the {name} example migration{} on a clone of this data —\n\n",
            if report.pending.len() == 1 { "" } else { "s" }
        );
        s += &crate::check::report::human(report);
    }
    match (&d.database_url, &d.stop_command) {
        (Some(url), Some(stop)) => {
            s +=
                &format!("\nThe cluster keeps running:\n  psql '{url}'\nStop it with:\n  {stop}\n");
        }
        _ => s += "\nThe throwaway cluster has been stopped and removed (use --keep to keep it).\n",
    }
    out(&s);
}

/// An indicatif bar on stderr, drawn only on a terminal.
pub struct Bar {
    bar: ProgressBar,
}

impl Bar {
    pub fn new(quiet: bool) -> Bar {
        let visible = !quiet && std::io::stderr().is_terminal();
        let target = if visible {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Bar {
            bar: ProgressBar::with_draw_target(None, target),
        }
    }
}

impl Progress for Bar {
    fn stage(&self, label: &str, total: u64) {
        if total > 0 {
            self.bar.set_style(
                ProgressStyle::with_template(
                    "{msg:>12} [{bar:40}] {human_pos}/{human_len} rows ({per_sec}, {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            self.bar.set_length(total);
            self.bar.set_position(0);
        } else {
            self.bar.set_style(
                ProgressStyle::with_template("{spinner} {msg}").expect("valid template"),
            );
            self.bar
                .enable_steady_tick(std::time::Duration::from_millis(120));
        }
        self.bar.set_message(label.to_string());
    }
    fn advance(&self, n: u64) {
        self.bar.inc(n);
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// The report of `ward check` in the chosen format, on stdout.
pub fn check_report(
    r: &crate::check::report::Report,
    format: crate::cli::CheckFormat,
    strict: bool,
) {
    use crate::check::report;
    use crate::cli::CheckFormat;
    let dir = r.migrations_dir.as_deref();
    match format {
        CheckFormat::Json => json(r),
        CheckFormat::Human => out(&report::human(r)),
        CheckFormat::Junit => out(&report::junit(r, strict)),
        CheckFormat::Github => out(&report::github(r, dir)),
        CheckFormat::Markdown => out(&report::markdown(r)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
