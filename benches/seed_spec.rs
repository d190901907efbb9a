//! `cargo bench --bench seed_spec`: `ward seed --spec` on the Django-shaped
//! test schema (tests/fixtures/django.sql), with the guessed spec scaled to
//! WARD_BENCH_ROOT_ROWS rows per root table (default 50000). Prints rows/s per
//! table as ward reports them, and the end-to-end rate.

// A test or bench binary has no API: `pub` here means "shared between its
// modules", so the crate-wide `unreachable_pub` does not apply.
#![allow(unreachable_pub)]

use std::process::Command;
use std::time::Instant;

use ward::pg::cluster::Cluster;

fn main() {
    let root_rows: u64 = std::env::var("WARD_BENCH_ROOT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let cluster = Cluster::start().expect("a throwaway cluster");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = rt
        .block_on(ward::pg::connect(&cluster.url("postgres")))
        .unwrap();
    rt.block_on(admin.batch_execute("CREATE DATABASE app"))
        .unwrap();
    let url = cluster.url("app");
    let app = rt.block_on(ward::pg::connect(&url)).unwrap();
    rt.block_on(app.batch_execute(include_str!("../tests/fixtures/django.sql")))
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("spec.toml");
    let ward = env!("CARGO_BIN_EXE_ward");
    let ok = Command::new(ward)
        .args(["seed", "-q", "--database-url", &url, "--init-spec"])
        .arg(&spec)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("rows = 100", &format!("rows = {root_rows}"))
        // A unique phone column holds at most the 15,000 Ofcom drama numbers.
        .replace(
            "columns.phone = \"phone.uk\"",
            "columns.phone = \"default\"",
        );
    std::fs::write(&spec, text).unwrap();

    let started = Instant::now();
    let out = Command::new(ward)
        .args(["seed", "-q", "--json", "--database-url", &url, "--spec"])
        .arg(&spec)
        .output()
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    println!("ward seed --spec on the Django-shaped schema ({root_rows} rows per root table)\n");
    println!("{:<28} {:>10} {:>12}", "table", "rows", "rows/s");
    for t in report["tables"].as_array().unwrap() {
        println!(
            "{:<28} {:>10} {:>12.0}",
            t["table"].as_str().unwrap(),
            t["rows"],
            t["rows_per_second"].as_f64().unwrap()
        );
    }
    let rows = report["total_rows"].as_u64().unwrap();
    println!(
        "\n{rows} rows in {seconds:.2} s end to end (introspection, plan, COPY, cycle fix-up, sequences) = {:.0} rows/s",
        rows as f64 / seconds
    );
}
