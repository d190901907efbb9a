//! `cargo bench --bench backup`: issue #12's targets for remote, encrypted
//! backups, in one run, on one Docker volume of WARD_BENCH_GB GB (default 2).
//!
//! A container of the local test image (never pulled) is filled inside the
//! container with barely compressible rows (`generate_series` of md5 hex: a
//! realistic ~2:1 for zstd, so the upload is not trivially small), stopped
//! cleanly, and then, with a private s3s-fs (the server `.ci/s3-server.sh`
//! installs) on a free port:
//!   1. `ward snapshot create` into a local store and into the bucket, in
//!      the clear and encrypted with age (four creates of the same data);
//!   2. `ward snapshot restore --yes` back from each of the four;
//!   3. the peak RSS (VmHWM, sampled by a poller thread) of every ward process.
//!
//! Each case runs WARD_BENCH_ROUNDS times (default 3), in an order rotated
//! every round so that no case always runs first on a cold page cache or
//! last on a warm one; medians are compared (single runs on this shared
//! machine disagree by more than the effects measured).
//!
//! Then a table and the ratios against the targets: remote create ≤ 1.2 ×
//! local create, encryption overhead ≤ 10 %, peak RSS < 200 MB. The load
//! average is printed with them: this machine is shared.
//!
//! Environment: WARD_BENCH_GB (default 2), WARD_BENCH_ROUNDS (default 3),
//! WARD_TEST_S3S (the s3s-fs binary,
//! default /opt/ward-ci/bin/s3s-fs).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[path = "common/docker.rs"]
mod docker;
use docker::{Cleanup, IMAGE, sh, wait_ready};

/// The S3 server, killed on drop (before the container's clean-up: it is
/// declared after it).
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const KEY: &str = "ward-bench-key";
const SECRET: &str = "ward-bench-secret-key-0123456789";
const BUCKET: &str = "ward-bench";
/// Rows of ~590 bytes on disk (four 128-character hex columns): ~1 GB.
const ROWS_PER_GB: u64 = 1_800_000;

/// Peak RSS (VmHWM, KiB) of `pid` so far, if it is still there.
fn vm_hwm(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// One ward run: seconds and peak RSS in MiB.
struct Measured {
    seconds: f64,
    peak_mib: f64,
}

/// Runs ward with `env`, sampling its peak RSS from a poller thread.
fn ward(args: &[&str], env: &[(&str, &str)]) -> Measured {
    let started = Instant::now();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ward"));
    cmd.args(args)
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    let pid = child.id();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(kib) = vm_hwm(pid) {
                    peak = peak.max(kib);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let out = child.wait_with_output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let peak_kib = poller.join().unwrap();
    assert!(
        out.status.success(),
        "ward {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Measured {
        seconds,
        peak_mib: peak_kib as f64 / 1024.0,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts s3s-fs on a free port with an empty bucket in `data`.
fn start_s3(data: &Path) -> (Child, String) {
    let bin = std::env::var_os("WARD_TEST_S3S")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/ward-ci/bin/s3s-fs"));
    assert!(
        bin.is_file(),
        "{} is missing: run `bash .ci/s3-server.sh`",
        bin.display()
    );
    std::fs::create_dir_all(data.join(BUCKET)).unwrap();
    let port = free_port();
    let child = Command::new(bin)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--access-key", KEY, "--secret-key", SECRET])
        .arg(data)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "s3s-fs did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, format!("http://127.0.0.1:{port}"))
}

/// The median of a case's rounds, in seconds.
fn median(runs: &[Measured]) -> f64 {
    let mut seconds: Vec<f64> = runs.iter().map(|m| m.seconds).collect();
    seconds.sort_by(f64::total_cmp);
    let mid = seconds.len() / 2;
    if seconds.len() % 2 == 1 {
        seconds[mid]
    } else {
        (seconds[mid - 1] + seconds[mid]) / 2.0
    }
}

/// The highest peak RSS of a case's rounds, in MiB.
fn peak(runs: &[Measured]) -> f64 {
    runs.iter().map(|m| m.peak_mib).fold(0.0, f64::max)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
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
    let gb: u64 = std::env::var("WARD_BENCH_GB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    eprintln!("load average at start: {}", load_average());
    let id = format!("ward-bench-backup-{}", std::process::id());
    let c = Cleanup {
        container: id.clone(),
        volume: format!("{id}-data"),
    };
    let mut s3 = KillOnDrop(None);
    let (name, vol) = (c.container.clone(), c.volume.clone());
    sh(&format!(
        "docker volume create --label ward.test=1 {vol} >/dev/null"
    ));
    sh(&format!(
        "docker run -d --name {name} --label ward.test=1 -e POSTGRES_PASSWORD=bench -e POSTGRES_DB=app \
         -v {vol}:/var/lib/postgresql/data {IMAGE} >/dev/null"
    ));
    wait_ready(&name);
    let fill = Instant::now();
    let hex =
        "md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text)";
    sh(&format!(
        "docker exec -u postgres {name} psql -XAtq -d app -v ON_ERROR_STOP=1 -c \
         \"set synchronous_commit = off; create table bulk(id bigint, a text, b text, c text, d text); \
         insert into bulk select g, {hex}, {hex}, {hex}, {hex} \
         from generate_series(1, {}) g\" -c checkpoint",
        gb * ROWS_PER_GB
    ));
    sh(&format!("docker stop -t 120 {name} >/dev/null"));
    let raw: u64 = sh(&format!(
        "docker run --rm --network none -v {vol}:/data:ro --entrypoint du {IMAGE} -sb /data"
    ))
    .split_whitespace()
    .next()
    .unwrap()
    .parse()
    .unwrap();
    let gib = raw as f64 / (1u64 << 30) as f64;
    eprintln!(
        "volume: {gib:.2} GiB, filled in {:.0} s",
        fill.elapsed().as_secs_f64()
    );

    let work = tempfile::Builder::new()
        .prefix("ward-bench-backup")
        .tempdir_in("/tmp")
        .unwrap();
    let local = work.path().join("local");
    let state = work.path().join("state");
    let (child, endpoint) = start_s3(&work.path().join("s3"));
    s3.0 = Some(child);
    let identity = work.path().join("ops.key");
    let recipient = {
        use age::secrecy::ExposeSecret;
        let key = age::x25519::Identity::generate();
        std::fs::write(&identity, format!("{}\n", key.to_string().expose_secret())).unwrap();
        key.to_public().to_string()
    };
    let local_store = local.display().to_string();
    let remote_store = format!("s3://{BUCKET}/bench");
    let state_s = state.display().to_string();
    let env: Vec<(&str, &str)> = vec![
        ("WARD_STATE_DIR", &state_s),
        ("AWS_ENDPOINT_URL", &endpoint),
        ("AWS_ACCESS_KEY_ID", KEY),
        ("AWS_SECRET_ACCESS_KEY", SECRET),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ALLOW_HTTP", "true"),
    ];
    let identity_s = identity.display().to_string();
    // (label, store, encrypted)
    let cases = [
        ("local", local_store.as_str(), false),
        ("s3", remote_store.as_str(), false),
        ("local", local_store.as_str(), true),
        ("s3", remote_store.as_str(), true),
    ];
    // Each case runs once a round, and every round starts at another case:
    // each case is first (coldest page cache) once in four rounds, so no
    // case is favoured by its place; the median of the rounds is reported.
    let rounds: usize = std::env::var("WARD_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let order = |round: usize| (0..cases.len()).map(move |k| (round + k) % cases.len());
    let mut creates: Vec<Vec<Measured>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for i in order(round) {
            let (label, store, encrypted) = cases[i];
            let snap = format!("r{round}c{i}");
            let mut args = vec![
                "snapshot",
                "create",
                &snap,
                "--container",
                &name,
                "--store",
                store,
            ];
            if encrypted {
                args.extend(["--encrypt-to", recipient.as_str()]);
            }
            let m = ward(&args, &env);
            eprintln!(
                "round {round}: create {label:<5} {:<9} {:>6.1} s  peak {:>5.0} MiB",
                if encrypted { "encrypted" } else { "plain" },
                m.seconds,
                m.peak_mib
            );
            creates[i].push(m);
        }
    }
    sh(&format!("docker start {name} >/dev/null"));
    wait_ready(&name);
    let mut restores: Vec<Vec<Measured>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for i in order(round) {
            let (label, store, encrypted) = cases[i];
            let snap = format!("r{round}c{i}");
            let mut args = vec![
                "snapshot",
                "restore",
                &snap,
                "--container",
                &name,
                "--store",
                store,
                "--yes",
            ];
            if encrypted {
                args.extend(["--identity", identity_s.as_str()]);
            }
            let m = ward(&args, &env);
            eprintln!(
                "round {round}: restore {label:<5} {:<9} {:>6.1} s  peak {:>5.0} MiB",
                if encrypted { "encrypted" } else { "plain" },
                m.seconds,
                m.peak_mib
            );
            restores[i].push(m);
        }
    }
    let rows = sh(&format!(
        "docker exec -u postgres {name} psql -XAtq -d app -c 'select count(*) from bulk'"
    ));
    assert_eq!(
        rows.trim().parse::<u64>().unwrap(),
        gb * ROWS_PER_GB,
        "the last restore lost rows"
    );

    println!(
        "\nward backup bench: {gib:.2} GiB volume ({gb} GB asked), load average now {}",
        load_average()
    );
    println!(
        "{:<8} {:<6} {:<10} {:>9} {:>9} {:>10}   rounds (s)",
        "step", "store", "archive", "median s", "MiB/s", "peak RSS"
    );
    let mib = raw as f64 / (1u64 << 20) as f64;
    for (step, runs) in [("create", &creates), ("restore", &restores)] {
        for ((label, _, encrypted), m) in cases.iter().zip(runs.iter()) {
            let each: Vec<String> = m.iter().map(|r| format!("{:.1}", r.seconds)).collect();
            println!(
                "{step:<8} {label:<6} {:<10} {:>9.1} {:>9.1} {:>7.0} MiB   {}",
                if *encrypted { "encrypted" } else { "plain" },
                median(m),
                mib / median(m),
                peak(m),
                each.join(" ")
            );
        }
    }
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!();
    for (what, local, remote) in [
        ("plain", &creates[0], &creates[1]),
        ("encrypted", &creates[2], &creates[3]),
    ] {
        let ratio = median(remote) / median(local);
        println!(
            "remote/local create ({what}, medians): {ratio:.2} × (target ≤ 1.20: {})",
            verdict(ratio <= 1.2)
        );
    }
    for (what, plain, sealed) in [
        ("local create", &creates[0], &creates[2]),
        ("s3 create", &creates[1], &creates[3]),
        ("local restore", &restores[0], &restores[2]),
        ("s3 restore", &restores[1], &restores[3]),
    ] {
        let overhead = median(sealed) / median(plain) - 1.0;
        println!(
            "encryption overhead ({what}, medians): {:+.1} % (target ≤ 10 %: {})",
            overhead * 100.0,
            verdict(overhead <= 0.10)
        );
    }
    let top = creates
        .iter()
        .chain(restores.iter())
        .map(|m| peak(m))
        .fold(0.0, f64::max);
    println!(
        "peak RSS of any ward process: {top:.0} MiB (target < 200 MB = {:.0} MiB: {})",
        200e6 / (1u64 << 20) as f64,
        verdict(top * (1u64 << 20) as f64 / 1e6 < 200.0)
    );
    drop(c);
}
