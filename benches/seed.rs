//! `cargo bench --bench seed`: ward's seed against the baselines of issue #2, in one run.
//!
//! On one throwaway cluster (fsync off for all three, so the comparison is of
//! loading, not of disks), the same rows — ward's own export of N patients —
//! are loaded three ways, each into a fresh schema that ends with the same keys
//! and indexes:
//!   1. `ward seed` (generate + binary COPY, keys and indexes after the load);
//!   2. server-side `COPY … FROM 'file' (FORMAT csv)` of the exported files;
//!   3. multi-row `INSERT … VALUES (…), (…)` of the same rows, 1,000 rows a statement.
//!
//! Then ward's peak RSS at the largest count the NHS test range allows.
//!
//! Environment: WARD_BENCH_PATIENTS (default 100000), WARD_BENCH_RSS_PATIENTS
//! (default 909091; 0 skips the RSS run).

// A test or bench binary has no API: `pub` here means "shared between its
// modules", so the crate-wide `unreachable_pub` does not apply.
#![allow(unreachable_pub)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use ward::pg::cluster::Cluster;
use ward::seed::model::{CONSTRAINTS_SQL, SCHEMA_SQL, TABLES};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct WardRun {
    seconds: f64,
    rows: u64,
    /// Time spent in the COPY of rows (the rest: plan, create, keys and indexes).
    copy_seconds: f64,
    peak_rss_kib: u64,
}

/// Runs `ward seed` as a child process, sampling its peak RSS (VmHWM).
fn ward_seed(url: &str, patients: u64, schema: &str) -> WardRun {
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args([
            "seed",
            "--json",
            "-q",
            "--database-url",
            url,
            "--schema",
            schema,
        ])
        .args(["-n", &patients.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run ward");
    let status_path = format!("/proc/{}/status", child.id());
    let mut peak = 0;
    // VmHWM is the process's own high-water mark, so the last reading before
    // exit is its peak (sampling only risks missing a rise in the final 20 ms).
    // stdout is read after exit: the JSON summary is far below a pipe's buffer.
    while child.try_wait().unwrap().is_none() {
        if let Some(kib) = std::fs::read_to_string(&status_path)
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            })
        {
            peak = peak.max(kib);
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(out.status.success());
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let copy_seconds = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["seconds"].as_f64().unwrap())
        .sum();
    WardRun {
        seconds,
        rows: report["total_rows"].as_u64().unwrap(),
        copy_seconds,
        peak_rss_kib: peak,
    }
}

async fn exec(client: &tokio_postgres::Client, sql: &str) {
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", &sql[..sql.len().min(200)]));
}

/// (total seconds, seconds loading rows)
async fn server_copy(client: &tokio_postgres::Client, dir: &Path) -> (f64, f64) {
    let started = Instant::now();
    exec(
        client,
        "BEGIN; CREATE SCHEMA copy_run; SET LOCAL search_path TO copy_run",
    )
    .await;
    exec(client, SCHEMA_SQL).await;
    let rows_started = Instant::now();
    for t in TABLES.iter() {
        let path = dir.join(format!("{}.csv", t.name));
        exec(
            client,
            &format!(
                "COPY {} FROM '{}' (FORMAT csv, HEADER)",
                t.name,
                path.display()
            ),
        )
        .await;
    }
    let rows_s = rows_started.elapsed().as_secs_f64();
    exec(client, CONSTRAINTS_SQL).await;
    exec(client, "COMMIT").await;
    (started.elapsed().as_secs_f64(), rows_s)
}

fn literal(field: &str, quoted_empty: bool) -> String {
    if field.is_empty() && !quoted_empty {
        "NULL".into()
    } else {
        format!("'{}'", field.replace('\'', "''"))
    }
}

/// (total seconds, seconds loading rows)
async fn multi_row_insert(client: &tokio_postgres::Client, dir: &Path) -> (f64, f64) {
    // Statements are built before the clock starts: this measures the server.
    let mut statements = Vec::new();
    for t in TABLES.iter() {
        let text = std::fs::read_to_string(dir.join(format!("{}.csv", t.name))).unwrap();
        let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
        let cols: Vec<&str> = t.columns.iter().map(|c| c.name).collect();
        let mut values = Vec::new();
        for (record, line) in reader.records().zip(text.lines().skip(1)) {
            let record = record.unwrap();
            // An empty unquoted field is NULL in ward's CSV; `""` is an empty string.
            let row: Vec<String> = record
                .iter()
                .map(|f| literal(f, f.is_empty() && line.contains("\"\"")))
                .collect();
            values.push(format!("({})", row.join(",")));
            if values.len() == 1000 {
                statements.push(format!(
                    "INSERT INTO {} ({}) VALUES {}",
                    t.name,
                    cols.join(","),
                    values.join(",")
                ));
                values.clear();
            }
        }
        if !values.is_empty() {
            statements.push(format!(
                "INSERT INTO {} ({}) VALUES {}",
                t.name,
                cols.join(","),
                values.join(",")
            ));
        }
    }
    let started = Instant::now();
    exec(
        client,
        "BEGIN; CREATE SCHEMA insert_run; SET LOCAL search_path TO insert_run",
    )
    .await;
    exec(client, SCHEMA_SQL).await;
    let rows_started = Instant::now();
    for s in &statements {
        exec(client, s).await;
    }
    let rows_s = rows_started.elapsed().as_secs_f64();
    exec(client, CONSTRAINTS_SQL).await;
    exec(client, "COMMIT").await;
    (started.elapsed().as_secs_f64(), rows_s)
}

fn main() {
    let patients = env_u64("WARD_BENCH_PATIENTS", 100_000);
    let rss_patients = env_u64("WARD_BENCH_RSS_PATIENTS", ward::seed::MAX_PATIENTS);
    let cluster = Cluster::start()
        .expect("a throwaway cluster (are the Postgres server binaries installed?)");
    let url = cluster.url("postgres");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = rt.block_on(ward::pg::connect(&url)).unwrap();

    println!(
        "seed benchmark: {patients} patients, {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let w = ward_seed(&url, patients, "ward_run");
    let rows = w.rows;

    // The same rows, exported by ward, readable by the server process.
    let dir = cluster.dir().join("export");
    let status = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["seed", "-q", "--export"])
        .arg(&dir)
        .args(["--format", "csv", "-n", &patients.to_string()])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in std::fs::read_dir(&dir).unwrap() {
        std::fs::set_permissions(f.unwrap().path(), std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }

    let (copy_s, copy_rows_s) = rt.block_on(server_copy(&client, &dir));
    let (insert_s, insert_rows_s) = rt.block_on(multi_row_insert(&client, &dir));

    // The three schemas must hold the same rows.
    let count = |schema: &str| -> i64 {
        rt.block_on(client.query_one(&format!("SELECT count(*) FROM {schema}.observations"), &[]))
            .unwrap()
            .get(0)
    };
    assert_eq!(count("ward_run"), count("copy_run"));
    assert_eq!(count("ward_run"), count("insert_run"));

    let rate = |s: f64| rows as f64 / s;
    println!(
        "\n{:<42} {:>8} {:>12} {:>8}   {:>8} {:>12} {:>8}",
        "", "total s", "rows/s", "ward ×", "rows s", "rows/s", "ward ×"
    );
    let line = |name: &str, total: f64, rows_only: f64| {
        println!(
            "{name:<42} {total:>8.2} {:>12.0} {:>8.2}   {rows_only:>8.2} {:>12.0} {:>8.2}",
            rate(total),
            total / w.seconds,
            rate(rows_only),
            rows_only / w.copy_seconds
        );
    };
    line(
        "ward seed (generate + binary COPY)",
        w.seconds,
        w.copy_seconds,
    );
    line("server-side COPY FROM file (CSV)", copy_s, copy_rows_s);
    line(
        "multi-row INSERT (1,000 rows/statement)",
        insert_s,
        insert_rows_s,
    );
    println!(
        "\n{rows} rows. total = create tables + load rows + keys/indexes (+ ward's id plan); rows = loading rows only.\n\
         end to end: ward = {:.2} x server-side COPY (target >= 0.8), {:.2} x INSERT (target >= 4), {:.0} rows/s (target >= 400,000)\n\
         rows only:  ward = {:.2} x server-side COPY, {:.2} x INSERT",
        copy_s / w.seconds,
        insert_s / w.seconds,
        rate(w.seconds),
        copy_rows_s / w.copy_seconds,
        insert_rows_s / w.copy_seconds,
    );
    println!(
        "peak RSS of `ward seed -n {patients}`: {:.1} MiB",
        w.peak_rss_kib as f64 / 1024.0
    );

    if rss_patients > 0 {
        let r = ward_seed(&url, rss_patients, "rss_run");
        println!(
            "peak RSS of `ward seed -n {rss_patients}`: {:.1} MiB (target < 200 MiB); {} rows in {:.1} s = {:.0} rows/s",
            r.peak_rss_kib as f64 / 1024.0,
            r.rows,
            r.seconds,
            r.rows as f64 / r.seconds
        );
    }
}
