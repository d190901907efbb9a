//! `cargo bench --bench snapshot`: `ward snapshot` against the baselines of
//! issue #4, in one run, on one Docker volume of seeded data.
//!
//! A container of the local test image (never pulled) gets N patients from
//! `ward seed` (default 170,000 ≈ 1 GB of database), is stopped cleanly, and then:
//!   1. create: `ward snapshot create` (container already stopped, so this is the
//!      helper + pg_controldata proof + engine archive stream + zstd + hashes)
//!      vs `tar -cf - | zstd -T0 -1` with tar in a helper container of the same
//!      image and zstd on the host (the image has no zstd binary);
//!   2. restore: `ward snapshot restore --yes` into the running container
//!      (stage: one checked decompression into the volume while Postgres runs;
//!      swap: stop + renames; start: until ready + identity check), with its
//!      phases and the downtime (stopped → ready) from `--json`, vs a clear
//!      (`find -delete`, timed apart) then `zstd -d | tar -x` into the volume
//!      through a helper container; ward
//!      deletes the replaced data in the background once the new data runs:
//!      the bench waits for that delete before going on, and prints it;
//!   3. logical: `pg_dump -Fc` and `pg_restore` of the same database inside the
//!      container;
//!   4. ward's peak RSS (VmHWM, sampled) during create and restore.
//!
//! Each physical step runs twice, alternating ward and baseline; the best run counts.
//!
//! Environment: WARD_BENCH_SNAPSHOT_PATIENTS (default 170000).

// A test or bench binary has no API: `pub` here means "shared between its
// modules", so the crate-wide `unreachable_pub` does not apply.
#![allow(unreachable_pub)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/docker.rs"]
mod docker;
use docker::{Cleanup, IMAGE, sh, wait_ready};

fn timed(cmd: &str) -> f64 {
    let t = Instant::now();
    sh(cmd);
    t.elapsed().as_secs_f64()
}

/// Runs ward, sampling its peak RSS; returns (seconds, peak KiB).
fn ward(args: &[&str]) -> (f64, u64) {
    let (s, kb, _) = ward_out(args);
    (s, kb)
}

/// [`ward`], also returning stdout.
fn ward_out(args: &[&str]) -> (f64, u64, String) {
    let t = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ward"))
        .args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(s) = std::fs::read_to_string(&status)
            && let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "ward {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        t.elapsed().as_secs_f64(),
        peak,
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let ok = Command::new("docker")
        .args(["image", "inspect", IMAGE])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "image {IMAGE} missing: run .ci/test-image.sh");
    let patients: u64 = std::env::var("WARD_BENCH_SNAPSHOT_PATIENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(170_000);
    let id = format!("ward-bench-{}", std::process::id());
    let c = Cleanup {
        container: id.clone(),
        volume: format!("{id}-data"),
    };
    let (name, vol) = (c.container.as_str(), c.volume.as_str());
    sh(&format!(
        "docker volume create --label ward.test=1 {vol} >/dev/null"
    ));
    sh(&format!(
        "docker run -d --name {name} --label ward.test=1 -e POSTGRES_PASSWORD=bench -e POSTGRES_DB=app \
         -v {vol}:/var/lib/postgresql/data {IMAGE} >/dev/null"
    ));
    wait_ready(name);
    let ip = sh(&format!(
        "docker inspect -f '{{{{range .NetworkSettings.Networks}}}}{{{{.IPAddress}}}}{{{{end}}}}' {name}"
    ));
    let url = format!("postgres://postgres:bench@{}:5432/app", ip.trim());
    let t = Instant::now();
    ward(&["seed", "-n", &patients.to_string(), "--database-url", &url]);
    let db_size = sh(&format!(
        "docker exec -u postgres {name} psql -XAtq -d app -c \"select pg_size_pretty(pg_database_size('app'))\""
    ));
    eprintln!(
        "seeded {patients} patients ({}) in {:.1} s",
        db_size.trim(),
        t.elapsed().as_secs_f64()
    );

    // Logical baseline first, while the server runs.
    let dump = timed(&format!(
        "docker exec -u postgres {name} pg_dump -Fc -d app -f /tmp/app.dump"
    ));
    sh(&format!(
        "docker exec -u postgres {name} createdb app_restored"
    ));
    let pg_restore = timed(&format!(
        "docker exec -u postgres {name} pg_restore --no-owner --no-acl -d app_restored /tmp/app.dump"
    ));
    sh(&format!(
        "docker exec -u postgres {name} dropdb app_restored && docker exec {name} rm /tmp/app.dump"
    ));

    sh(&format!(
        "docker exec -u postgres {name} psql -XAtq -c checkpoint && docker stop -t 120 {name} >/dev/null"
    ));
    let raw: u64 = sh(&format!(
        "docker run --rm --network none -v {vol}:/data:ro --entrypoint du {IMAGE} -sb /data"
    ))
    .split_whitespace()
    .next()
    .unwrap()
    .parse()
    .unwrap();
    let gib = raw as f64 / (1u64 << 30) as f64;
    eprintln!("volume: {:.2} GiB", gib);

    let store = tempfile::Builder::new()
        .prefix("ward-bench-store")
        .tempdir_in("/var/tmp")
        .unwrap();
    let st = store.path().display().to_string();
    let base = store.path().join("baseline.tar.zst");
    let base_s = base.display().to_string();
    let (mut w_create, mut b_create, mut w_restore, mut b_restore) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX);
    let mut rss = 0u64;
    for round in 0..2 {
        let b = timed(&format!(
            "docker run --rm --network none --log-driver none -v {vol}:/data:ro --entrypoint tar {IMAGE} \
             -cf - -C /data . | zstd -T0 -1 -q -f -o {base_s}"
        ));
        b_create = b_create.min(b);
        let snap = format!("bench{round}");
        let (w, r) = ward(&[
            "snapshot",
            "create",
            &snap,
            "--container",
            name,
            "--store",
            &st,
            "-q",
        ]);
        w_create = w_create.min(w);
        rss = rss.max(r);
        eprintln!("round {round}: create ward {w:.2} s, tar|zstd {b:.2} s");
    }
    let ward_size = std::fs::metadata(store.path().join("bench0.tar.zst"))
        .unwrap()
        .len();
    let base_size = std::fs::metadata(&base).unwrap().len();
    // (stage, swap, start, downtime) of ward's best restore.
    let mut phases = (0.0, 0.0, 0.0, 0.0);
    // Of the same run: the previous data's delete after ward returned.
    let mut background = 0.0;
    // The baseline's clear of the old data, of its best round.
    let mut b_clear = 0.0;
    for round in 0..2 {
        sh(&format!("docker stop -t 120 {name} >/dev/null"));
        let clear = timed(&format!(
            "docker run --rm --network none --log-driver none -v {vol}:/data --entrypoint find {IMAGE} \
             /data -mindepth 1 -delete"
        ));
        let b = timed(&format!(
            "zstd -dc -q {base_s} | docker run -i --rm --network none \
             --log-driver none -v {vol}:/data --entrypoint tar {IMAGE} -xf - -C /data"
        ));
        if b < b_restore {
            b_clear = clear;
        }
        b_restore = b_restore.min(b);
        // ward restores into the running container: the app stays up while it stages.
        sh(&format!("docker start {name} >/dev/null"));
        wait_ready(name);
        let (w, r, out) = ward_out(&[
            "snapshot",
            "restore",
            "bench0",
            "--container",
            name,
            "--store",
            &st,
            "--yes",
            "--json",
            "-q",
        ]);
        // The replaced data is deleted in the background in the container
        // once the new data runs: wait for it, so that the next step starts
        // on a quiet disk and the baseline never deletes ward's leftovers.
        let bg = Instant::now();
        while sh(&format!(
            "docker exec {name} sh -c 'ls -A /var/lib/postgresql/data | grep -c \"^.ward-trash-\" || true'"
        ))
        .trim()
            != "0"
        {
            assert!(bg.elapsed() < Duration::from_secs(300), "the background delete never ended");
            std::thread::sleep(Duration::from_millis(100));
        }
        let bg = bg.elapsed().as_secs_f64();
        let j: serde_json::Value = serde_json::from_str(&out).unwrap();
        let f = |k: &str| j[k].as_f64().unwrap_or(f64::NAN);
        if w < w_restore {
            phases = (
                f("stage_seconds"),
                f("swap_seconds"),
                f("start_seconds"),
                f("downtime_seconds"),
            );
            background = bg;
        }
        w_restore = w_restore.min(w);
        rss = rss.max(r);
        eprintln!(
            "round {round}: restore ward {w:.2} s (stage {:.2}, swap {:.2}, start {:.2}, downtime {:.2}; \
             then the old data's background delete {bg:.2} s), clear {clear:.2} s + zstd -d|tar -x {b:.2} s",
            f("stage_seconds"),
            f("swap_seconds"),
            f("start_seconds"),
            f("downtime_seconds")
        );
    }
    // ward restored the data last: prove it is the database we seeded.
    wait_ready(name);
    let n = sh(&format!(
        "docker exec -u postgres {name} psql -XAtq -d app -c 'select count(*) from patients'"
    ));
    assert_eq!(n.trim(), patients.to_string());

    let mib = |b: u64| b as f64 / (1u64 << 20) as f64;
    let verdict = |ok: bool| if ok { "ok" } else { "MISSED" };
    println!(
        "\nward snapshot benchmark — {patients} patients, database {}, volume {gib:.2} GiB",
        db_size.trim()
    );
    println!("{:<44} {:>9} {:>11}", "step", "seconds", "GiB/s raw");
    for (label, s) in [
        ("ward snapshot create (stopped container)", w_create),
        ("tar -cf - | zstd -T0 -1 (tar in a helper)", b_create),
        ("ward snapshot restore (whole command)", w_restore),
        ("  stage (app still running)", phases.0),
        ("  swap (renames)", phases.1),
        ("  start (until ready + identity)", phases.2),
        ("  then: old data deleted in the background", background),
        ("clear (find -delete, helper)", b_clear),
        ("zstd -d | tar -x (helper)", b_restore),
        ("pg_dump -Fc", dump),
        ("pg_restore", pg_restore),
    ] {
        println!("{label:<44} {s:>9.2} {:>11.2}", gib / s);
    }
    println!(
        "archive: ward {:.0} MiB, tar|zstd {:.0} MiB",
        mib(ward_size),
        mib(base_size)
    );
    let cr = w_create / b_create;
    // ward's command returns before the old data is deleted; the baseline's
    // clear is timed apart, so both sides compare with and without it.
    let rr = w_restore / b_restore;
    let rr_all = (w_restore + background) / (b_clear + b_restore);
    // pg_restore writes into a new database (nothing to delete): against
    // the command ward's user waits for, and with the delete added too.
    let vs_logical = pg_restore / w_restore;
    let vs_logical_all = pg_restore / (w_restore + background);
    println!(
        "create  / tar|zstd      = {cr:.2}× (target ≤ 1.15×) {}",
        verdict(cr <= 1.15)
    );
    println!(
        "restore / zstd -d|tar   = {rr:.2}× (target ≤ 1.15×; neither side deletes) {}",
        verdict(rr <= 1.15)
    );
    println!(
        "(restore + its background delete) / (clear + zstd -d|tar) = {rr_all:.2}× {}",
        verdict(rr_all <= 1.15)
    );
    println!(
        "stage / zstd -d|tar     = {:.2}× (the unpack alone, while the app runs)",
        phases.0 / b_restore
    );
    println!(
        "downtime (stop → ready) = {:.2} s (target ≤ 5 s at 1 GB) {}",
        phases.3,
        verdict(phases.3 <= 5.0)
    );
    println!(
        "pg_restore / restore    = {vs_logical:.1}× faster (target ≥ 5×) {}",
        verdict(vs_logical >= 5.0)
    );
    println!(
        "pg_restore / (restore + its background delete) = {vs_logical_all:.1}× {}",
        verdict(vs_logical_all >= 5.0)
    );
    println!(
        "peak RSS of ward        = {:.0} MiB (target < 200 MiB) {}",
        rss as f64 / 1024.0,
        verdict(rss < 200 * 1024)
    );
    let _ = Path::new(&st);
}
