//! `cargo bench --bench fast_snapshot`: fast (template) snapshot create and
//! restore of a ~1 GB seeded database, against `pg_dump -Fc` / `pg_restore`
//! of the same database, in one run on one throwaway cluster.
//!
//! WARD_BENCH_PATIENTS (default 170000 ≈ 1 GB with indexes) sets the size.

// A test or bench binary has no API: `pub` here means "shared between its
// modules", so the crate-wide `unreachable_pub` does not apply.
#![allow(unreachable_pub)]

use std::process::Command;
use std::time::Instant;

use ward::pg::cluster::Cluster;
use ward::snapshot::template;

fn main() {
    let patients: u64 = std::env::var("WARD_BENCH_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(170_000);
    let cluster = Cluster::start().expect("a throwaway cluster");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let admin = rt
        .block_on(ward::pg::connect(&cluster.url("postgres")))
        .unwrap();
    rt.block_on(admin.batch_execute("CREATE DATABASE app"))
        .unwrap();
    let url = cluster.url("app");
    let ok = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args([
            "seed",
            "-q",
            "--database-url",
            &url,
            "-n",
            &patients.to_string(),
        ])
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(ok.success());
    let size: i64 = rt
        .block_on(admin.query_one("SELECT pg_database_size('app')", &[]))
        .unwrap()
        .get(0);
    let checksum = |db: &str| -> String {
        let c = rt.block_on(ward::pg::connect(&cluster.url(db))).unwrap();
        rt.block_on(c.query_one(
            "SELECT md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))) FROM observations x",
            &[],
        ))
        .unwrap()
        .get(0)
    };
    let original = checksum("app");
    println!(
        "fast snapshot benchmark: {patients} patients, database {:.0} MB",
        size as f64 / 1e6
    );

    let t = Instant::now();
    let facts = rt.block_on(template::create(&url, "bench", false)).unwrap();
    let create_s = t.elapsed().as_secs_f64();
    rt.block_on(admin.batch_execute("SELECT 1")).unwrap();
    {
        let c = rt.block_on(ward::pg::connect(&url)).unwrap();
        rt.block_on(c.batch_execute("DELETE FROM observations WHERE id % 3 = 0"))
            .unwrap();
    }
    let t = Instant::now();
    rt.block_on(template::restore(&url, &facts, false)).unwrap();
    let restore_s = t.elapsed().as_secs_f64();
    assert_eq!(
        checksum("app"),
        original,
        "the restore must give back the same rows"
    );

    // Baseline: a logical dump and restore of the same database.
    let dump = cluster.dir().join("app.dump");
    let bin = |b: &str| cluster.bindir().join(b);
    let pgpass = [("PGPASSWORD", cluster.password())];
    let t = Instant::now();
    let st = Command::new(bin("pg_dump"))
        .envs(pgpass)
        .args([
            "-Fc",
            "-h",
            "127.0.0.1",
            "-p",
            &cluster.port().to_string(),
            "-U",
            "postgres",
            "-f",
        ])
        .arg(&dump)
        .arg("app")
        .status()
        .unwrap();
    assert!(st.success());
    let dump_s = t.elapsed().as_secs_f64();
    // pg_restore as the issue names it (one job), and with a job per core for reference.
    let pg_restore = |db: &str, jobs: &str| -> f64 {
        rt.block_on(admin.batch_execute(&format!("CREATE DATABASE {db}")))
            .unwrap();
        let t = Instant::now();
        let port = cluster.port().to_string();
        let st = Command::new(bin("pg_restore"))
            .envs(pgpass)
            .args([
                "-j",
                jobs,
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                db,
            ])
            .arg(&dump)
            .status()
            .unwrap();
        assert!(st.success());
        let s = t.elapsed().as_secs_f64();
        assert_eq!(checksum(db), original);
        s
    };
    let pg_restore_s = pg_restore("app_restored", "1");
    let pg_restore_j2_s = pg_restore("app_restored_j2", "2");

    println!("\n{:<44} {:>9}", "", "seconds");
    println!("{:<44} {create_s:>9.2}", "ward snapshot create --fast");
    println!("{:<44} {restore_s:>9.2}", "ward snapshot restore (fast)");
    println!("{:<44} {dump_s:>9.2}", "pg_dump -Fc");
    println!(
        "{:<44} {pg_restore_s:>9.2}",
        "pg_restore (into an empty database)"
    );
    println!(
        "{:<44} {pg_restore_j2_s:>9.2}",
        "pg_restore -j 2 (for reference)"
    );
    println!(
        "\nrestore: {:.2} s per GB (target ≤ 3 s for 1 GB), {:.1} × faster than pg_restore (target ≥ 10 ×; {:.1} × than -j 2); create {:.1} × faster than pg_dump",
        restore_s / (size as f64 / 1e9),
        pg_restore_s / restore_s,
        pg_restore_j2_s / restore_s,
        dump_s / create_s
    );
}
