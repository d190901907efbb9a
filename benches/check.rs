//! `cargo bench --bench check`: ward check against plainly applying the
//! same migrations with psql, in the same run.
//!
//! A throwaway cluster is seeded with ~1,000,000 rows of ward's patient
//! records (WARD_BENCH_PATIENTS, default 24,000 patients), then ten
//! realistic migrations are
//!   1. applied with `psql -1 -f` to a template clone (the baseline: clone
//!      time and apply time are measured separately), and
//!   2. checked with `ward check --against URL` (clone, fingerprints, traced
//!      apply, diff, health, seed check, clean-up).
//!
//! The target: check wall time ≤ 1.5 × plain apply + clone time.
//!
//! Figures (2026-12-03, 2 shared cores, load average 3.3–4): synthetic set
//! 1.20× and 1.30× of apply + clone before the round trip ran beside the
//! run, 1.27× and 1.60× after (no round trip or time-zone run there: the
//! difference is the machine's load). The corpus window stays far from the
//! target — see [`corpus_window`].
//!
//! Then a corpus window ([`corpus_window`]): 20 consecutive crates.io
//! migrations on a database built up to its 210th and seeded with the
//! guessed spec (WARD_BENCH_CORPUS=0 skips it; WARD_BENCH_SYNTHETIC=0 skips
//! the synthetic set).

// A test or bench binary has no API: `pub` here means "shared between its
// modules", so the crate-wide `unreachable_pub` does not apply.
#![allow(unreachable_pub)]

use std::process::Command;
use std::time::Instant;

use ward::pg::cluster::Cluster;

#[path = "check/corpus_window.rs"]
mod corpus_window;

const MIGRATIONS: &[(&str, &str)] = &[
    (
        "20240101000001_preferred_name.sql",
        "ALTER TABLE patients ADD COLUMN preferred_name text;",
    ),
    (
        "20240101000002_active.sql",
        "ALTER TABLE patients ADD COLUMN is_active boolean NOT NULL DEFAULT true;",
    ),
    (
        "20240101000003_appointments_status_idx.sql",
        "CREATE INDEX appointments_status_idx ON appointments (status);",
    ),
    (
        "20240101000004_quantity_check.sql",
        "ALTER TABLE prescriptions ADD CONSTRAINT quantity_positive CHECK (quantity > 0) NOT VALID;",
    ),
    (
        "20240101000005_validate_quantity.sql",
        "ALTER TABLE prescriptions VALIDATE CONSTRAINT quantity_positive;",
    ),
    (
        "20240101000006_duration_bigint.sql",
        "ALTER TABLE appointments ALTER COLUMN duration_minutes TYPE bigint;",
    ),
    (
        "20240101000007_observation_note.sql",
        "ALTER TABLE observations ADD COLUMN note text;\nCREATE INDEX observations_snomed_idx ON observations (snomed_code);",
    ),
    (
        "20240101000008_email_lower.sql",
        "CREATE INDEX patients_email_lower_idx ON patients (lower(email));",
    ),
    (
        "20240101000009_condition_status.sql",
        "ALTER TABLE conditions ADD CONSTRAINT conditions_status_check CHECK (status IN ('active', 'resolved'));",
    ),
    (
        "20240101000010_practice_ods.sql",
        "ALTER TABLE practices ADD COLUMN ods_code text;\nUPDATE practices SET ods_code = 'Y' || lpad(id::text, 5, '0');",
    ),
];

fn psql(url: &str, args: &[&str]) {
    let out = Command::new("psql")
        .arg(url)
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn main() {
    let runs: usize = std::env::var("WARD_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    if std::env::var("WARD_BENCH_SYNTHETIC").as_deref() != Ok("0") {
        synthetic(runs);
    }
    if std::env::var("WARD_BENCH_CORPUS").as_deref() != Ok("0") {
        corpus_window::run(psql, runs);
    }
}

fn synthetic(runs: usize) {
    let patients: u64 = std::env::var("WARD_BENCH_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(24_000);
    let cluster = Cluster::start().expect("a throwaway cluster");
    let url = cluster.url("postgres");
    psql(&url, &["-c", "CREATE DATABASE src"]);
    let src = cluster.url("src");
    let ward = env!("CARGO_BIN_EXE_ward");
    let t = Instant::now();
    let out = Command::new(ward)
        .args([
            "--database-url",
            &src,
            "--quiet",
            "seed",
            "-n",
            &patients.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: i64 = {
        psql(&src, &["-c", "VACUUM ANALYZE"]);
        let o2 = Command::new("psql")
            .arg(&src)
            .args(["-X", "-At", "-c", "SELECT (SELECT count(*) FROM patients) + (SELECT count(*) FROM appointments) + (SELECT count(*) FROM prescriptions) + (SELECT count(*) FROM observations) + (SELECT count(*) FROM conditions) + (SELECT count(*) FROM allergies) + (SELECT count(*) FROM practitioners) + (SELECT count(*) FROM practices)"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o2.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    };
    println!(
        "seeded {patients} patients = {rows} rows in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    let dir = tempfile::tempdir().unwrap();
    let mdir = dir.path().join("migrations");
    std::fs::create_dir_all(&mdir).unwrap();
    for (n, sql) in MIGRATIONS {
        std::fs::write(mdir.join(n), sql).unwrap();
    }

    let (mut clone_s, mut apply_s, mut check_s) = (f64::MAX, f64::MAX, f64::MAX);
    for i in 0..runs {
        // Baseline: clone by template, then psql each file in its own transaction.
        let db = format!("plain{i}");
        let t = Instant::now();
        psql(
            &url,
            &[
                "-c",
                &format!("CREATE DATABASE {db} TEMPLATE src STRATEGY FILE_COPY"),
            ],
        );
        let c = t.elapsed().as_secs_f64();
        let target = cluster.url(&db);
        let t = Instant::now();
        for (n, _) in MIGRATIONS {
            psql(&target, &["-1", "-f", mdir.join(n).to_str().unwrap()]);
        }
        let a = t.elapsed().as_secs_f64();
        psql(&url, &["-c", &format!("DROP DATABASE {db}")]);

        let t = Instant::now();
        let out = Command::new(ward)
            .args([
                "check",
                "--quiet",
                "--format",
                "json",
                "--against",
                &src,
                "--migrations",
            ])
            .arg(&mdir)
            .output()
            .unwrap();
        let k = t.elapsed().as_secs_f64();
        assert!(
            out.status.code() == Some(0) || out.status.code() == Some(1),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        if i == 0 {
            let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let f = j["findings"].as_array().unwrap();
            println!(
                "ward check verdict {} with {} findings ({} rows checked)",
                j["verdict"],
                f.len(),
                j["rows_checked"]
            );
            for x in f {
                println!("  {} {} {}", x["level"], x["rule"], x["message"]);
            }
        }
        println!("run {i}: clone {c:.2} s · plain psql apply {a:.2} s · ward check {k:.2} s");
        clone_s = clone_s.min(c);
        apply_s = apply_s.min(a);
        check_s = check_s.min(k);
    }
    let budget = 1.5 * apply_s + clone_s;
    println!(
        "\nbest of {runs}: clone {clone_s:.2} s · plain apply {apply_s:.2} s · ward check {check_s:.2} s\n\
         target: check ≤ 1.5 × apply + clone = {budget:.2} s → {} ({:.2}× of apply + clone)",
        if check_s <= budget { "met" } else { "NOT met" },
        check_s / (apply_s + clone_s)
    );
}
