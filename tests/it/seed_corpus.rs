//! `ward seed --init-spec` then `--spec`, with no edits, on two real
//! applications' schemas at several points of their diesel histories
//! (`../shared/corpus`): Lemmy up to its 247th migration (the newest that
//! runs on PostgreSQL 15) and crates.io up to its head. One test per corpus
//! builds the schema progressively and seeds a copy at each point; every
//! table must get rows. Rows/s per point go to stderr for the record.

use crate::support::corpus::{History, migrations};
use crate::support::*;

/// Seeds a copy of the history at each point (a count of migrations) from
/// its unedited guessed spec.
fn seeds_every_point_unedited(corpus: &str, points: &[usize]) {
    let c = cluster();
    let all = migrations(corpus);
    let mut history = History::new(&c, "history");
    for &point in points {
        let point = point.min(all.len());
        history.apply_until(&all, point);
        let url = history.snapshot(&format!("at_{point}"));
        let tmp = tempfile::tempdir().unwrap();
        let spec = tmp.path().join("spec.toml");
        ward()
            .db(&url)
            .args(["seed", "--init-spec"])
            .args([&spec])
            .ok();
        let r = ward()
            .db(&url)
            .args(["seed", "--json", "--spec"])
            .args([&spec])
            .run();
        assert_eq!(
            r.code(),
            0,
            "{corpus} at migration {point} ({}): {}",
            all[point - 1].version,
            r.stderr()
        );
        let report = r.json();
        let empty: Vec<String> = sql(
            &url,
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
               AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'",
        )
        .into_iter()
        .map(|r| r[0].clone().unwrap())
        .filter(|t| int(&url, &format!("SELECT count(*) FROM (SELECT 1 FROM {t} LIMIT 1) x")) == 0)
        .collect();
        assert!(
            empty.is_empty(),
            "{corpus} at migration {point}: empty after seeding: {empty:?}"
        );
        eprintln!(
            "{corpus} at migration {point} ({}): {} rows in {:.2} s, {:.0} rows/s, 0 spec edits",
            all[point - 1].version,
            report["total_rows"],
            report["seconds"].as_f64().unwrap_or(0.0),
            report["rows_per_second"].as_f64().unwrap_or(0.0)
        );
    }
}

#[test]
fn lemmy_seeds_unedited_at_four_points_up_to_its_247th_migration() {
    seeds_every_point_unedited("lemmy", &[60, 130, 200, 247]);
}

#[test]
fn crates_io_seeds_unedited_at_four_points_and_its_head() {
    seeds_every_point_unedited("crates.io", &[70, 140, 210, usize::MAX]);
}
