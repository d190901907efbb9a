//! The report of `ward check`, in the format asked for.

use super::out;

pub fn check_report(
    r: &crate::check::report::Report,
    format: crate::cli::CheckFormat,
    strict: bool,
) {
    use crate::check::report;
    use crate::cli::CheckFormat;
    let dir = r.migrations_dir.as_deref();
    let text = match format {
        CheckFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(r).expect("reports serialise")
        ),
        CheckFormat::Human => report::human(r),
        CheckFormat::Junit => report::junit(r, strict),
        CheckFormat::Github => report::github(r, dir),
        CheckFormat::Markdown => report::markdown(r),
        CheckFormat::Sarif => report::sarif(r, dir),
    };
    // Reports quote SQL, error text and command output that may hold a
    // password (issue #14's threat model): none of it reaches stdout.
    out(&crate::redact::text(&text));
}
