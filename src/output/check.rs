//! The report of `ward check`, in the format asked for.
//!
//! [`ReportFormat`] is output's own list of renderings: the command layer
//! maps the CLI's `--format` (and `--json`) onto it, so this module does not
//! depend on how the command line spells its choices.

use super::out;
use crate::check::report::{self, Report};

/// The renderings of a check report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReportFormat {
    Human,
    Json,
    Junit,
    Github,
    Markdown,
    Sarif,
}

pub(crate) fn check_report(report: &Report, format: ReportFormat, strict: bool) {
    let dir = report.migrations_dir.as_deref();
    let text = match format {
        ReportFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(report).expect("reports serialise")
        ),
        ReportFormat::Human => report::human(report),
        ReportFormat::Junit => report::junit(report, strict),
        ReportFormat::Github => report::github(report, dir),
        ReportFormat::Markdown => report::markdown(report),
        ReportFormat::Sarif => report::sarif(report, dir),
    };
    // Reports quote SQL, error text and command output that may hold a
    // password (issue #14's threat model): none of it reaches stdout.
    out(&crate::redact::text(&text));
}
