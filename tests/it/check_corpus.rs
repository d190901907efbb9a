//! `ward check` on two real diesel histories nobody here wrote (test data in
//! ../shared/corpus): crates.io's whole history, and Lemmy's first 247
//! migrations on the machine's PostgreSQL 15 (the 248th needs 16+), and both
//! whole histories on PostgreSQL 18 (the newest major Debian packages, in the
//! local test image `ward-test/postgres:18`). Each run must reach a verdict
//! with a JSON report, run every pending `up.sql` without a migration error,
//! and raise no finding from the known false alarms: wrong order, history
//! writes refused, ward's own copies blocking `DROP TYPE`.
//!
//! Windows: `--base VERSION` makes the schema up to VERSION the seeded
//! baseline; a history cut after M migrations (copied into a temp dir) ends it.
//!
//! CI time: the down round trip walks a window migration by migration once
//! it finds a broken down, which over a whole history dominated this file
//! (~13 min). Whole histories therefore run with `--round-trip false` (every
//! up, every assertion above), and the round trip runs on windows: the one
//! around crates.io's known broken down, the tails of both histories, and
//! the last 25 of Lemmy's 16+ migrations on PostgreSQL 18.

use std::path::{Path, PathBuf};

use crate::support::check::report;
use crate::support::server::Server;
use crate::support::*;
use serde_json::Value;

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpus");

/// Rules that fire on these histories only through a defect in ward.
const FALSE_ALARMS: &[&str] = &[
    "migration-error",
    "out-of-order",
    "history-mismatch",
    "dirty-history",
    "history-not-recorded",
];

/// The migration directories of `corpus` in diesel's order (the name up to
/// the first `_`, dashes removed, compared as strings).
fn diesel_order(corpus: &str) -> (PathBuf, Vec<String>) {
    let dir = Path::new(CORPUS).join(corpus).join("migrations");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| {
            panic!(
                "cannot read the corpus {}: {e} — it lives in ../shared/corpus beside the repository",
                dir.display()
            )
        })
        .flatten()
        .filter(|e| e.path().join("up.sql").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort_by_key(|n| version(n));
    (dir, names)
}

fn version(name: &str) -> String {
    name.split('_').next().unwrap().replace('-', "")
}

/// The first `n` migrations of `names` copied into `<tmp>/migrations`.
fn first(dir: &Path, names: &[String], n: usize) -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    for name in &names[..n] {
        let to = t.path().join("migrations").join(name);
        std::fs::create_dir_all(&to).unwrap();
        for f in std::fs::read_dir(dir.join(name)).unwrap().flatten() {
            std::fs::copy(f.path(), to.join(f.file_name())).unwrap();
        }
    }
    t
}

/// Whether a window runs the down round trip.
#[derive(Clone, Copy, PartialEq)]
enum Downs {
    RoundTrip,
    Skip,
}

/// Checks `migrations` with the first `base` of them as the seeded baseline;
/// asserts a verdict, every pending up run cleanly and no false alarm.
fn window(server: &str, migrations: &Path, names: &[String], base: usize, downs: Downs) -> Value {
    let started = std::time::Instant::now();
    let r = ward()
        .db(server)
        .args(["check", "--format", "json", "-n", "30", "--base"])
        .args([version(&names[base - 1])])
        .args([
            "--round-trip",
            if downs == Downs::RoundTrip {
                "true"
            } else {
                "false"
            },
        ])
        .arg_str("--migrations")
        .args([migrations])
        .run();
    let j = report(&r);
    assert!(
        j["server"].as_str().unwrap().starts_with("PostgreSQL "),
        "{j}"
    );
    let label = format!(
        "{} after {}{}",
        migrations.display(),
        names[base - 1],
        if downs == Downs::Skip {
            " (no round trip)"
        } else {
            ""
        }
    );
    eprintln!(
        "{label}: {} pending, {} in {:.1} s",
        j["pending"].as_array().unwrap().len(),
        j["verdict"],
        started.elapsed().as_secs_f64()
    );
    let pending = j["pending"].as_array().unwrap();
    assert_eq!(pending.len(), names.len() - base, "{label}");
    assert_eq!(
        pending[0].as_str().unwrap(),
        format!("migrations/{}/up.sql", names[base]),
        "{label}"
    );
    let runs = j["runs"].as_array().unwrap();
    assert_eq!(runs.len(), pending.len(), "{label}");
    for f in j["findings"].as_array().unwrap() {
        let rule = f["rule"].as_str().unwrap();
        assert!(
            downs == Downs::RoundTrip || rule != "down-migration",
            "{label}: {f:#}"
        );
        let message = f["message"].as_str().unwrap();
        assert!(!FALSE_ALARMS.contains(&rule), "{label}: {f:#}");
        // Lemmy's own downs drop columns its later views still use (real
        // 2BP01s); ward's copies must never be what blocks a drop.
        assert!(
            !message.contains("_ward_pre") && !message.contains("cannot drop type"),
            "{label}: {f:#}"
        );
    }
    j
}

/// Findings of `rule` whose object is `object`, with the file they blame.
fn blamed<'a>(j: &'a Value, rule: &str, object: &str) -> Vec<&'a str> {
    j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == rule && f["object"] == object)
        .map(|f| f["file"].as_str().unwrap_or(""))
        .collect()
}

#[test]
fn crates_io_whole_history_and_windows_check_without_false_alarms() {
    let c = cluster();
    let server = c.url("postgres");
    let (dir, names) = diesel_order("crates.io");
    assert!(names.len() > 280, "{}", names.len());
    // Mixed 14- and 18-digit versions: diesel's order is not the file names'.
    let mut by_file = names.clone();
    by_file.sort();
    assert_ne!(by_file, names);
    let whole = first(&dir, &names, names.len());
    let m = whole.path().join("migrations");
    // The whole history on top of its first migration, and a long window.
    window(&server, &m, &names, 1, Downs::Skip);
    window(&server, &m, &names, 100, Downs::Skip);
    // The round trip on the window around the down.sql crates.io ships
    // broken (it drops a constraint its up.sql never made: an index): it is
    // found, and each finding is blamed on a down (or on the up that cannot
    // run again after it).
    let broken = names
        .iter()
        .position(|n| n.starts_with("2024-10-25-112826_make-unique-version-unique"))
        .unwrap();
    let end = broken + 16;
    let cut = first(&dir, &names, end);
    let j = window(
        &server,
        &cut.path().join("migrations"),
        &names[..end],
        broken - 14,
        Downs::RoundTrip,
    );
    let downs: Vec<&Value> = j["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "down-migration")
        .collect();
    assert!(
        downs.iter().any(|f| {
            f["message"].as_str().unwrap().contains("does not exist")
                && f["file"] == format!("migrations/{}/down.sql", names[broken]).as_str()
        }),
        "{downs:#?}"
    );
    for f in downs {
        let file = f["file"].as_str().unwrap_or("");
        let message = f["message"].as_str().unwrap();
        assert!(
            file.ends_with("/down.sql") || message.contains("after its down migration"),
            "{f:#}"
        );
    }
    // The tail of the history, round trip included.
    window(&server, &m, &names, 250, Downs::RoundTrip);
}

#[test]
fn lemmy_first_247_migrations_and_windows_check_without_false_alarms() {
    let c = cluster();
    let server = c.url("postgres");
    let (dir, names) = diesel_order("lemmy");
    assert_eq!(names.len(), 342);
    let upto = first(&dir, &names, 247);
    let m = upto.path().join("migrations");
    let names = &names[..247];
    window(&server, &m, names, 1, Downs::Skip);
    // A window whose migration drops person.inbox_url and renames
    // shared_inbox_url to it: the drop is blamed on that statement, not on an
    // earlier one that merely mentions the name.
    let j = window(&server, &m, names, 200, Downs::RoundTrip);
    let drop = names
        .iter()
        .position(|n| n.contains("no-individual-inboxes"))
        .unwrap();
    assert_eq!(
        blamed(&j, "dropped-empty", "person.inbox_url"),
        [format!("migrations/{}/up.sql", names[drop])],
        "{j:#}"
    );
    // A window that ends earlier: the history cut after 60 migrations.
    let (base, end) = (20, 60);
    let cut = first(&dir, names, end);
    window(
        &server,
        &cut.path().join("migrations"),
        &names[..end],
        base,
        Downs::RoundTrip,
    );
}

#[test]
fn whole_histories_check_without_false_alarms_on_postgres_18() {
    let pg18 = Server::start(18);
    let server = pg18.url("postgres");
    for corpus in ["lemmy", "crates.io"] {
        let (dir, names) = diesel_order(corpus);
        let whole = first(&dir, &names, names.len());
        let m = whole.path().join("migrations");
        let j = window(&server, &m, &names, 1, Downs::Skip);
        assert!(
            j["server"].as_str().unwrap().starts_with("PostgreSQL 18"),
            "{j}"
        );
        // The tail of Lemmy's migrations that need 16+ (some downs in 18
        // syntax), round trip included (all 95 of them took ~5 min).
        if corpus == "lemmy" {
            window(&server, &m, &names, names.len() - 25, Downs::RoundTrip);
        }
    }
}
