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
//!   3. the peak RSS (VmHWM, sampled by a poller thread) of every ward
//!      process, the CPU seconds it used, and the CPU seconds the S3 server
//!      used meanwhile (on this machine the server shares ward's two cores:
//!      what it spends is not spent compressing).
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

// A test or bench binary has no API: `pub` here means "shared between its
// modules", so the crate-wide `unreachable_pub` does not apply.
#![allow(unreachable_pub)]

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

/// One ward run: seconds, peak RSS in MiB, and the CPU seconds ward and the
/// S3 server spent (the server shares the machine's two cores with ward).
struct Measured {
    seconds: f64,
    peak_mib: f64,
    cpu_s: f64,
    server_cpu_s: f64,
}

/// CPU seconds (user + system, all threads) `pid` has used so far.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces), 1-based from
    // field 3: utime is field 14, stime field 15, in clock ticks (100 a second).
    let rest = stat.rsplit_once(") ")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Runs ward with `env`, sampling its peak RSS and CPU time from a poller
/// thread; `server` is the S3 server's pid, whose CPU time is read around it.
fn ward(args: &[String], env: &[(&str, &str)], server: u32) -> Measured {
    let server_before = cpu_seconds(server).unwrap_or(0.0);
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
            let (mut peak, mut cpu) = (0u64, 0.0f64);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                if let Some(kib) = vm_hwm(pid) {
                    peak = peak.max(kib);
                }
                if let Some(c) = cpu_seconds(pid) {
                    cpu = cpu.max(c);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (peak, cpu)
        })
    };
    let out = child.wait_with_output().unwrap();
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let (peak_kib, cpu_s) = poller.join().unwrap();
    assert!(
        out.status.success(),
        "ward {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Measured {
        seconds,
        peak_mib: peak_kib as f64 / 1024.0,
        cpu_s,
        server_cpu_s: cpu_seconds(server).unwrap_or(0.0) - server_before,
    }
}

/// One case of the bench: which store, encrypted or not.
struct Case<'a> {
    label: &'a str,
    store: &'a str,
    encrypted: bool,
}

impl Case<'_> {
    fn archive(&self) -> &'static str {
        if self.encrypted { "encrypted" } else { "plain" }
    }
}

/// Runs `step` for every case WARD_BENCH_ROUNDS times. Each case runs once a
/// round, and every round starts at another case: each case is first
/// (coldest page cache) once in four rounds, so no case is favoured by its
/// place; the median of the rounds is reported. `run` runs ward for a
/// case and the snapshot's name.
fn measure(
    step: &str,
    cases: &[Case],
    rounds: usize,
    run: &dyn Fn(&Case, &str) -> Measured,
) -> Vec<Vec<Measured>> {
    let mut measured: Vec<Vec<Measured>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 0..rounds {
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            let case = &cases[i];
            let m = run(case, &format!("r{round}c{i}"));
            eprintln!(
                "round {round}: {step} {:<5} {:<9} {:>6.1} s  peak {:>5.0} MiB  ward CPU {:>5.1} s  server CPU {:>5.1} s",
                case.label,
                case.archive(),
                m.seconds,
                m.peak_mib,
                m.cpu_s,
                m.server_cpu_s
            );
            measured[i].push(m);
        }
    }
    measured
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
    let cases = [
        Case {
            label: "local",
            store: &local_store,
            encrypted: false,
        },
        Case {
            label: "s3",
            store: &remote_store,
            encrypted: false,
        },
        Case {
            label: "local",
            store: &local_store,
            encrypted: true,
        },
        Case {
            label: "s3",
            store: &remote_store,
            encrypted: true,
        },
    ];
    let rounds: usize = std::env::var("WARD_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let server = s3.0.as_ref().map(Child::id).unwrap_or(0);
    let on = |verb: &str, case: &Case, snap: &str| -> Vec<String> {
        let mut args: Vec<String> = ["snapshot", verb, snap, "--container", &name, "--store"]
            .iter()
            .map(|a| a.to_string())
            .collect();
        args.push(case.store.to_string());
        args
    };
    let creates = measure("create", &cases, rounds, &|case, snap| {
        let mut args = on("create", case, snap);
        if case.encrypted {
            args.extend(["--encrypt-to".into(), recipient.clone()]);
        }
        ward(&args, &env, server)
    });
    sh(&format!("docker start {name} >/dev/null"));
    wait_ready(&name);
    let restores = measure("restore", &cases, rounds, &|case, snap| {
        let mut args = on("restore", case, snap);
        args.push("--yes".into());
        if case.encrypted {
            args.extend(["--identity".into(), identity_s.clone()]);
        }
        ward(&args, &env, server)
    });
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
        "{:<8} {:<6} {:<10} {:>9} {:>9} {:>10} {:>9} {:>11}   rounds (s)",
        "step", "store", "archive", "median s", "MiB/s", "peak RSS", "ward CPU", "server CPU"
    );
    let mib = raw as f64 / (1u64 << 20) as f64;
    for (step, runs) in [("create", &creates), ("restore", &restores)] {
        for (case, m) in cases.iter().zip(runs.iter()) {
            let each: Vec<String> = m.iter().map(|r| format!("{:.1}", r.seconds)).collect();
            let mean = |f: fn(&Measured) -> f64| m.iter().map(f).sum::<f64>() / m.len() as f64;
            println!(
                "{step:<8} {:<6} {:<10} {:>9.1} {:>9.1} {:>6.0} MiB {:>7.1} s {:>9.1} s   {}",
                case.label,
                case.archive(),
                median(m),
                mib / median(m),
                peak(m),
                mean(|r| r.cpu_s),
                mean(|r| r.server_cpu_s),
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
