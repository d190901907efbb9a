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

fn ward_seed(url: &str, patients: u64, schema: &str) -> (f64, u64, u64) {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_ward"))
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
        .output()
        .expect("run ward");
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = report["total_rows"].as_u64().unwrap();
    (seconds, rows, max_rss_kib())
}

/// Peak RSS of the largest child so far (getrusage RUSAGE_CHILDREN), KiB.
fn max_rss_kib() -> u64 {
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    usage.max_rss() as u64
}

async fn exec(client: &tokio_postgres::Client, sql: &str) {
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{e}: {}", &sql[..sql.len().min(200)]));
}

async fn server_copy(client: &tokio_postgres::Client, dir: &Path) -> f64 {
    let started = Instant::now();
    exec(
        client,
        "BEGIN; CREATE SCHEMA copy_run; SET LOCAL search_path TO copy_run",
    )
    .await;
    exec(client, SCHEMA_SQL).await;
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
    exec(client, CONSTRAINTS_SQL).await;
    exec(client, "COMMIT").await;
    started.elapsed().as_secs_f64()
}

fn literal(field: &str, quoted_empty: bool) -> String {
    if field.is_empty() && !quoted_empty {
        "NULL".into()
    } else {
        format!("'{}'", field.replace('\'', "''"))
    }
}

async fn multi_row_insert(client: &tokio_postgres::Client, dir: &Path) -> f64 {
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
    for s in &statements {
        exec(client, s).await;
    }
    exec(client, CONSTRAINTS_SQL).await;
    exec(client, "COMMIT").await;
    started.elapsed().as_secs_f64()
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
        ward::config::default_jobs()
    );
    let (ward_s, rows, _) = ward_seed(&url, patients, "ward_run");
    let ward_rate = rows as f64 / ward_s;

    // The same rows, exported by ward, readable by the server process.
    let dir = cluster.dir().join("export");
    let status = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(["seed", "-q", "--export"])
        .arg(&dir)
        .args(["--format", "csv", "-n", &patients.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in std::fs::read_dir(&dir).unwrap() {
        std::fs::set_permissions(f.unwrap().path(), std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }

    let copy_s = rt.block_on(server_copy(&client, &dir));
    let copy_rate = rows as f64 / copy_s;
    let insert_s = rt.block_on(multi_row_insert(&client, &dir));
    let insert_rate = rows as f64 / insert_s;

    // The three schemas must hold the same rows.
    let count = |schema: &str| -> i64 {
        rt.block_on(client.query_one(&format!("SELECT count(*) FROM {schema}.observations"), &[]))
            .unwrap()
            .get(0)
    };
    assert_eq!(count("ward_run"), count("copy_run"));
    assert_eq!(count("ward_run"), count("insert_run"));

    println!(
        "\n{:<44} {:>9} {:>14} {:>10}",
        "load (create + rows + keys/indexes)", "seconds", "rows/s", "ward ×"
    );
    let line = |name: &str, s: f64, r: f64| {
        println!("{name:<44} {s:>9.2} {:>14.0} {:>10.2}", r, ward_rate / r);
    };
    line("ward seed (generate + binary COPY)", ward_s, ward_rate);
    line("server-side COPY FROM file (CSV)", copy_s, copy_rate);
    line(
        "multi-row INSERT (1,000 rows/statement)",
        insert_s,
        insert_rate,
    );
    println!(
        "\n{rows} rows; ward = {:.2} × server-side COPY (target ≥ 0.8), {:.1} × INSERT (target ≥ 4), {:.0} rows/s (target ≥ 400,000)",
        ward_rate / copy_rate,
        ward_rate / insert_rate,
        ward_rate
    );

    if rss_patients > 0 {
        let (s, rows, rss) = ward_seed(&url, rss_patients, "rss_run");
        println!(
            "\npeak RSS of `ward seed -n {rss_patients}`: {:.1} MiB (target < 200 MiB); {rows} rows in {s:.1} s = {:.0} rows/s",
            rss as f64 / 1024.0,
            rows as f64 / s
        );
    }
}
