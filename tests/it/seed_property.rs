//! Property test: random application schemas — foreign-key graphs with
//! cycles and self-references, nullable and NOT NULL keys, composite and
//! partial uniques, CHECKs ward cannot read (implications, `IS NOT NULL`
//! disjunctions, column inequalities), skipped tables — go through
//! `--init-spec` then `--spec`, which must seed (Postgres enforced every
//! constraint on the way in) — or, when the test skipped tables by hand, exit
//! 2 with `spec.toml:LINE:` errors (one line each) — within a time bound:
//! no panic, no hang.
//!
//! Cases and time: CASES = 24 schemas per run, on one throwaway cluster,
//! from the fixed seed DEFAULT_SEED so CI runs the same schemas every time:
//! 10 s alone on the 2-core machine, 37 s while other builds ran. PROPTEST_RNG_SEED=1…5 (24 cases
//! each) took 11–32 s and all pass; they found the two defects covered by
//! `seed_spec_regressions.rs` (a NOT NULL cycle beside a parallel nullable
//! key spun for ever in planning; a key filled after the load broke a
//! partial unique index). Set PROPTEST_RNG_SEED=N (and PROPTEST_CASES) to
//! explore others; proptest shrinks a failing schema to a small one.

use std::time::{Duration, Instant};

use crate::support::seed::skip_table;
use crate::support::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed, TestCaseError, TestRunner};

const CASES: u32 = 24;
/// The schemas CI runs; another seed explores others (see the module docs).
const DEFAULT_SEED: u64 = 20_261_202;
const TIME_BOUND: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
struct TableDesc {
    /// (referenced table, NOT NULL)
    fks: Vec<(usize, bool)>,
    unique_fk_and_name: bool,
    partial_unique: bool,
    /// bit 0: NOT a OR b; bit 1: e IS NOT NULL OR p IS NOT NULL; bit 2: s < f
    checks: u8,
    skip: bool,
}

fn schema() -> impl Strategy<Value = Vec<TableDesc>> {
    (2usize..6).prop_flat_map(|n| {
        prop::collection::vec(
            (
                prop::collection::vec((0..n, any::<bool>()), 0..3),
                any::<bool>(),
                any::<bool>(),
                0u8..8,
                prop::bool::weighted(0.15),
            )
                .prop_map(|(fks, unique_fk_and_name, partial_unique, checks, skip)| {
                    TableDesc {
                        fks,
                        unique_fk_and_name,
                        partial_unique,
                        checks,
                        skip,
                    }
                }),
            n,
        )
    })
}

fn ddl(tables: &[TableDesc]) -> String {
    let mut out = String::new();
    for (i, t) in tables.iter().enumerate() {
        let mut checks = Vec::new();
        if t.checks & 1 != 0 {
            checks.push(", CHECK (NOT a OR b)");
        }
        if t.checks & 2 != 0 {
            checks.push(", CHECK (e IS NOT NULL OR p IS NOT NULL)");
        }
        if t.checks & 4 != 0 {
            checks.push(", CHECK (s < f)");
        }
        out.push_str(&format!(
            "CREATE TABLE t{i} (id serial PRIMARY KEY, name text NOT NULL, a bool NOT NULL, b bool NOT NULL,
               e text, p text, s timestamptz NOT NULL, f timestamptz NOT NULL{});\n",
            checks.concat()
        ));
    }
    for (i, t) in tables.iter().enumerate() {
        for (k, (j, not_null)) in t.fks.iter().enumerate() {
            out.push_str(&format!(
                "ALTER TABLE t{i} ADD COLUMN r{k} int {} REFERENCES t{j};\n",
                if *not_null { "NOT NULL" } else { "" }
            ));
        }
        if !t.fks.is_empty() && t.unique_fk_and_name {
            out.push_str(&format!("ALTER TABLE t{i} ADD UNIQUE (r0, name);\n"));
        }
        if !t.fks.is_empty() && t.partial_unique {
            out.push_str(&format!(
                "CREATE UNIQUE INDEX t{i}_one_a ON t{i} (r0, a) WHERE a;\n"
            ));
        }
    }
    out
}

fn one_case(c: &Cluster, case: usize, tables: &[TableDesc]) -> Result<(), TestCaseError> {
    let db = format!("prop_{case}");
    sql(&c.url("postgres"), &format!("CREATE DATABASE {db}"));
    let url = c.url(&db);
    sql(&url, &ddl(tables));
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    let init = ward()
        .db(&url)
        .args(["seed", "--init-spec"])
        .args([&spec])
        .run();
    prop_assert_eq!(init.code(), 0, "init-spec: {}", init.stderr());
    let mut text = std::fs::read_to_string(&spec).unwrap();
    for (i, t) in tables.iter().enumerate() {
        if t.skip {
            text = skip_table(&text, &format!("public.t{i}"));
        }
    }
    std::fs::write(&spec, &text).unwrap();
    let (mut child, _dir) = ward()
        .db(&url)
        .args(["seed", "-q", "--spec"])
        .args([&spec])
        .spawn();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > TIME_BOUND {
            let _ = child.kill();
            return Err(TestCaseError::fail(format!(
                "no answer within {TIME_BOUND:?}:\n{}\n{text}",
                ddl(tables)
            )));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    match status.code() {
        Some(0) => {}
        // The guessed spec, unedited, is never one `--spec` refuses (issue
        // 10: a cycle of NOT NULL keys was): only a skip by hand may be.
        Some(2) if tables.iter().all(|t| !t.skip) => {
            return Err(TestCaseError::fail(format!(
                "the unedited guessed spec was refused: {err}\n{}\n{text}",
                ddl(tables)
            )));
        }
        Some(2) => {
            // One line per problem (validation reports them all), each with its line.
            let has_file_line = |line: &str| {
                line.split_once("spec.toml:").is_some_and(|(_, rest)| {
                    rest.split(':')
                        .next()
                        .is_some_and(|n| n.parse::<u32>().is_ok())
                })
            };
            prop_assert!(
                !err.trim().is_empty()
                    && err
                        .trim_end()
                        .lines()
                        .all(|l| l.starts_with("error: ") && has_file_line(l)),
                "exit 2 without spec.toml:LINE errors: {err}\n{}",
                ddl(tables)
            );
        }
        other => {
            return Err(TestCaseError::fail(format!(
                "exit {other:?}: {err}\n{}",
                ddl(tables)
            )));
        }
    }
    Ok(())
}

#[test]
fn random_schemas_seed_or_fail_with_a_spec_line() {
    let c = cluster();
    let seed = std::env::var("PROPTEST_RNG_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(CASES);
    let mut runner = TestRunner::new(Config {
        cases,
        rng_seed: RngSeed::Fixed(seed),
        failure_persistence: None,
        ..Config::default()
    });
    let case = std::cell::Cell::new(0usize);
    let result = runner.run(&schema(), |tables| {
        case.set(case.get() + 1);
        one_case(&c, case.get(), &tables)
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
