//! The reports of `ward seed`, `ward seed --init-spec` and `ward demo`.

use super::{json, out, thousands};
use crate::seed::{InitReport, SeedReport};
use crate::snapshot::human_bytes;

pub fn seed_report(r: &SeedReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    let what = match &r.spec {
        Some(spec) => format!("{} rows by {spec}", thousands(r.total_rows)),
        None => format!("{} patients", thousands(r.patients)),
    };
    let mut s = format!(
        "Seeded {what} into {} (seed {}, {} job{}){}\n\n",
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
    let w = r
        .tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(5)
        .max(15);
    s += &format!("  {:<w$} {:>12} {:>14}\n", "table", "rows", "rows/s");
    for t in &r.tables {
        s += &format!(
            "  {:<w$} {:>12} {:>14}\n",
            t.table,
            thousands(t.rows),
            thousands(t.rows_per_second as u64)
        );
    }
    s += &format!(
        "  {:<w$} {:>12} {:>14}\n\n{:.2} s · {} rows/s",
        "total",
        thousands(r.total_rows),
        thousands(r.rows_per_second as u64),
        r.seconds,
        thousands(r.rows_per_second as u64),
    );
    if r.spec.is_none() {
        s += &format!(" · {} patients/s", thousands(r.patients_per_second as u64));
    }
    s.push('\n');
    out(&s);
}

pub fn init_spec_report(r: &InitReport, as_json: bool) {
    if as_json {
        return json(r);
    }
    let mut s = format!(
        "Wrote {}: {} tables to seed, {} columns with guessed generators.\n",
        r.path.display(),
        r.tables,
        r.columns
    );
    if !r.skipped.is_empty() {
        s += &format!(
            "Skipped (migration history and the like): {}\n",
            r.skipped.join(", ")
        );
    }
    for c in &r.unread_checks {
        s += &format!("Check by hand (ward cannot read this CHECK): {c}\n");
    }
    s += &format!("Review it, then: ward seed --spec {}\n", r.path.display());
    out(&s);
}

pub fn demo_summary(d: &crate::demo::DemoSummary, as_json: bool) {
    if as_json {
        return json(d);
    }
    seed_report(&d.seed, false);
    let mut s =
        String::from("\nA few patients (all fake, NHS numbers from the never-issued 999 range):\n");
    for row in &d.sample {
        s += &format!("  {}\n", row.join("  "));
    }
    if let Some(sn) = &d.snapshot {
        s += &format!(
            "\nSnapshot: {} ({}, {:.1} s) → dropped table {} ({} rows) → restored in {:.1} s → {} rows are back\n",
            sn.name,
            human_bytes(sn.archive_bytes),
            sn.snapshot_seconds,
            sn.dropped_table,
            thousands(sn.rows_before as u64),
            sn.restore_seconds,
            thousands(sn.rows_after_restore as u64)
        );
    }
    if let Some(f) = &d.fast {
        s += &format!(
            "Quick reset: fast snapshot in {:.1} s → deleted {} appointments → restored in {:.1} s → {} are back\n",
            f.snapshot_seconds,
            thousands(f.deleted_rows as u64),
            f.restore_seconds,
            thousands(f.rows_after_restore as u64)
        );
    }
    for (report, name) in d.checks.iter().zip(&d.check_names) {
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
