//! The reports of `ward seed`, `ward seed --init-spec` and `ward demo`.

use super::{json, out};
use crate::seed::{InitReport, SeedReport};
use crate::units::{human_bytes, thousands};

pub(crate) fn seed_report(report: &SeedReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    let what = match &report.spec {
        Some(spec) => format!("{} rows by {spec}", thousands(report.total_rows)),
        None => format!("{} patients", thousands(report.patients)),
    };
    let mut text = format!(
        "Seeded {what} into {} (seed {}, {} job{}){}\n\n",
        report.target,
        report.seed,
        report.jobs,
        if report.jobs == 1 { "" } else { "s" },
        if report.created_schema {
            ", created ward's tables"
        } else {
            ""
        }
    );
    let width = report
        .tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(5)
        .max(15);
    text += &format!("  {:<width$} {:>12} {:>14}\n", "table", "rows", "rows/s");
    for t in &report.tables {
        text += &format!(
            "  {:<width$} {:>12} {:>14}\n",
            t.table,
            thousands(t.rows),
            thousands(t.rows_per_second as u64)
        );
    }
    text += &format!(
        "  {:<width$} {:>12} {:>14}\n\n{:.2} s · {} rows/s",
        "total",
        thousands(report.total_rows),
        thousands(report.rows_per_second as u64),
        report.seconds,
        thousands(report.rows_per_second as u64),
    );
    if report.spec.is_none() {
        text += &format!(
            " · {} patients/s",
            thousands(report.patients_per_second as u64)
        );
    }
    text.push('\n');
    out(&text);
}

pub(crate) fn init_spec_report(report: &InitReport, as_json: bool) {
    if as_json {
        return json(report);
    }
    let mut text = format!(
        "Wrote {}: {} tables to seed, {} columns with guessed generators.\n",
        report.path.display(),
        report.tables,
        report.columns
    );
    if !report.skipped.is_empty() {
        text += &format!(
            "Skipped (migration history and the like): {}\n",
            report.skipped.join(", ")
        );
    }
    for c in &report.unread_checks {
        text += &format!("Check by hand (ward cannot read this CHECK): {c}\n");
    }
    text += &format!(
        "Review it, then: ward seed --spec {}\n",
        report.path.display()
    );
    out(&text);
}

pub(crate) fn demo_summary(demo: &crate::demo::DemoSummary, as_json: bool) {
    if as_json {
        return json(demo);
    }
    seed_report(&demo.seed, false);
    let mut text =
        String::from("\nA few patients (all fake, NHS numbers from the never-issued 999 range):\n");
    for row in &demo.sample {
        text += &format!("  {}\n", row.join("  "));
    }
    if let Some(snapshot) = &demo.snapshot {
        text += &format!(
            "\nSnapshot: {} ({}, {:.1} s) → dropped table {} ({} rows) → restored in {:.1} s → {} rows are back\n",
            snapshot.name,
            human_bytes(snapshot.archive_bytes),
            snapshot.snapshot_seconds,
            snapshot.dropped_table,
            thousands(snapshot.rows_before as u64),
            snapshot.restore_seconds,
            thousands(snapshot.rows_after_restore as u64)
        );
    }
    if let Some(fast) = &demo.fast {
        text += &format!(
            "Quick reset: fast snapshot in {:.1} s → deleted {} appointments → restored in {:.1} s → {} are back\n",
            fast.snapshot_seconds,
            thousands(fast.deleted_rows as u64),
            fast.restore_seconds,
            thousands(fast.rows_after_restore as u64)
        );
    }
    for (report, name) in demo.checks.iter().zip(&demo.check_names) {
        text += &format!(
            "\n— ward check of the {name} example migration{} on a clone of this data —\n\n",
            if report.pending.len() == 1 { "" } else { "s" }
        );
        text += &crate::check::report::human(report);
    }
    match (&demo.database_url, &demo.stop_command) {
        (Some(url), Some(stop)) => {
            text +=
                &format!("\nThe cluster keeps running:\n  psql '{url}'\nStop it with:\n  {stop}\n");
        }
        _ => {
            text +=
                "\nThe throwaway cluster has been stopped and removed (use --keep to keep it).\n"
        }
    }
    out(&text);
}
