//! `ward check --against seed` on windows of two real diesel histories
//! (../shared/corpus), seeded with the project's own guessed spec: at each
//! point the schema is built as diesel would, `ward seed --init-spec` guesses
//! a spec for it (unedited), and the check seeds a baseline at that point
//! with it and applies the next WINDOW migrations. Each run must reach a
//! verdict, run every pending up.sql, and raise only the findings listed
//! below, each a real property of that migration on realistic data (the
//! justification beside it). The down round trip is left to
//! tests/check_corpus.rs (`--round-trip false` here).

use crate::support::check::report;
use crate::support::corpus::{History, Migration, migrations};
use crate::support::*;
use serde_json::Value;

/// Migrations applied after each point.
const WINDOW: usize = 12;

/// Rules that fire on these histories only through a defect in ward.
const FALSE_ALARMS: &[&str] = &[
    "out-of-order",
    "history-mismatch",
    "dirty-history",
    "history-not-recorded",
];

/// Findings that are real wherever they appear: facts read from the lock
/// trace and the catalog (an index built without CONCURRENTLY, a brief
/// ACCESS EXCLUSIVE, a new column filled by its DEFAULT), whatever the data.
const FACTS: &[&str] = &[
    "WARN blocking-lock ",
    "INFO metadata-lock ",
    "INFO default-filled ",
];

/// The first `n` migrations copied into `<tmp>/migrations`.
fn first(all: &[Migration], n: usize) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for m in &all[..n] {
        let to = t.path().join("migrations").join(m.dir.file_name().unwrap());
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(&m.dir).unwrap().flatten() {
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    }
    t
}

/// The findings of one window as `LEVEL rule object (file)`, for the record
/// and for the comparison with the expected ones.
fn shown(j: &Value) -> Vec<String> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            format!(
                "{} {} {} ({})",
                f["level"].as_str().unwrap_or(""),
                f["rule"].as_str().unwrap_or(""),
                f["object"].as_str().unwrap_or("-"),
                f["file"].as_str().unwrap_or("-")
            )
        })
        .collect()
}

/// Checks WINDOW migrations after each point against a baseline seeded by
/// the guessed spec; every finding must be a [`FACTS`] one or one of
/// `expected` (a substring of its `LEVEL rule object (file)` line, and why
/// it is real).
fn seeded_windows(corpus: &str, points: &[usize], expected: &[(&str, &str)]) {
    let c = cluster();
    let all = migrations(corpus);
    let mut history = History::new(&c, "history");
    for &point in points {
        history.apply_until(&all, point);
        let at = history.snapshot(&format!("at_{point}"));
        let tmp = tempfile::tempdir().unwrap();
        let spec = tmp.path().join("spec.toml");
        ward()
            .db(&at)
            .args(["seed", "--init-spec"])
            .args([&spec])
            .ok();
        let end = (point + WINDOW).min(all.len());
        let cut = first(&all, end);
        let started = std::time::Instant::now();
        let r = ward()
            .db(&c.url("postgres"))
            .args(["check", "--format", "json", "--against", "seed"])
            .args(["--round-trip", "false", "--timezone-check", "true"])
            .args(["--base", &all[point - 1].version, "--spec"])
            .args([&spec])
            .arg_str("--migrations")
            .args([cut.path().join("migrations").as_path()])
            .run();
        let label = format!("{corpus} after {} ({point})", all[point - 1].version);
        let j = report(&r);
        let found = shown(&j);
        let pending = j["pending"].as_array().unwrap();
        assert_eq!(pending.len(), end - point, "{label}: {j:#}");
        // Every pending up ran, unless a listed, real migration error stopped the window.
        let stopped = found.iter().any(|f| f.contains(" migration-error "));
        let runs = j["runs"].as_array().unwrap().len();
        assert!(
            runs == end - point || stopped && runs < end - point,
            "{label}: {runs} runs: {j:#}"
        );
        assert!(j["rows_checked"].as_u64().unwrap() > 0, "{label}: {j:#}");
        eprintln!(
            "{label}: {} pending, {} rows, {} in {:.1} s",
            pending.len(),
            j["rows_checked"],
            j["verdict"],
            started.elapsed().as_secs_f64()
        );
        for f in &found {
            eprintln!("  {f}");
        }
        for (f, v) in found.iter().zip(j["findings"].as_array().unwrap()) {
            let rule = v["rule"].as_str().unwrap();
            assert!(!FALSE_ALARMS.contains(&rule), "{label}: {v:#}");
            assert!(
                FACTS.iter().any(|e| f.starts_with(e))
                    || expected.iter().any(|(e, _why)| f.contains(e)),
                "{label}: a finding not known to be real: {f}\n{v:#}"
            );
        }
    }
}

#[test]
fn lemmy_windows_seeded_with_the_guessed_spec_raise_only_real_findings() {
    seeded_windows(
        "lemmy",
        &[130, 200],
        &[
            (
                "FAIL migration-error community.hidden (migrations/2023-04-14-175955_add_listingtype_sorttype_enums/up.sql)",
                "`hidden` is nullable (added with DEFAULT false), the guessed spec leaves some rows NULL, and the \
                 migration runs SET NOT NULL without a backfill: it relies on an invariant the schema never enforced",
            ),
            (
                "FAIL dropped-data local_site.open_registration (migrations/2022-12-05-110642_registration_mode/up.sql)",
                "the migration folds open_registration and require_application into registration_mode and drops them: intended",
            ),
            (
                "FAIL dropped-data local_site.require_application (migrations/2022-12-05-110642_registration_mode/up.sql)",
                "as above",
            ),
            (
                "FAIL dropped-data local_site.federation_debug (migrations/2023-02-05-102549_drop-site-federation-debug/up.sql)",
                "the migration drops the setting and its values: intended",
            ),
            (
                "FAIL values-changed site_aggregates.communities (migrations/2024-02-24-034523_replaceable-schema/up.sql)",
                "\"Fix values that might be incorrect because of the old triggers\": the migration recomputes the \
                 denormalised aggregates from the base tables, and the guessed spec fills the aggregate tables on \
                 their own, so they disagree and are rewritten — a real change, by design",
            ),
            (
                "FAIL values-changed community_aggregates.comments (migrations/2024-02-24-034523_replaceable-schema/up.sql)",
                "as above (UPDATE community_aggregates SET comments = counted.comments)",
            ),
            (
                "FAIL values-changed post_aggregates.featured_community (migrations/2024-02-24-034523_replaceable-schema/up.sql)",
                "as above (post_aggregates.featured_* set from post)",
            ),
            (
                "FAIL values-changed post_aggregates.featured_local (migrations/2024-02-24-034523_replaceable-schema/up.sql)",
                "as above",
            ),
        ],
    );
}

#[test]
fn crates_io_windows_seeded_with_the_guessed_spec_raise_only_real_findings() {
    seeded_windows(
        "crates.io",
        &[140, 210],
        &[
            (
                "FAIL seed-broken - (",
                "a spec guessed before the window has no generator for a NOT NULL column without a DEFAULT \
                 the window adds (2017-10-08-193512_category_trees: categories.path, filled by its own UPDATE \
                 and trigger): the spec must change with the migration, and the finding says so",
            ),
            (
                "FAIL dropped-data badges (migrations/2024-02-19-113226_delete-badges-table/up.sql)",
                "the migration drops the badges table with its rows: intended",
            ),
        ],
    );
}
