//! `ward backup` against the real Docker engine, a real Postgres container
//! and a real HTTP receiver (`support::hook`, a std TcpListener): two stores,
//! both verified, GFS pruning of only ward's own backups, the success and
//! failure signals, a store that fails, a webhook that is down, the run
//! lock, and the systemd units (checked by `systemd-analyze verify`).

use std::net::TcpListener;
use std::path::Path;

use crate::support::docker::Pg;
use crate::support::hook::Receiver;
use crate::support::*;

/// A port nothing listens on.
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Names of the snapshots in `store`, sorted.
fn names(store: &Path) -> Vec<String> {
    let j = ward()
        .args(["snapshot", "list", "--json", "--store", &s(store)])
        .ok()
        .json();
    let mut v: Vec<String> = j["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// A copy of snapshot `from` in `store` named `name`, created at `at`, with
/// the backup label set to `label` (None: removed).
fn plant(store: &Path, from: &str, name: &str, at: &str, label: Option<&str>) {
    let text = std::fs::read_to_string(store.join(format!("{from}.json"))).unwrap();
    let mut m: serde_json::Value = serde_json::from_str(&text).unwrap();
    m["name"] = name.into();
    m["archive_file"] = format!("{name}.tar.zst").into();
    m["created_at"] = at.into();
    match label {
        Some(l) => m["labels"]["ward.backup"] = l.into(),
        None => {
            m["labels"].as_object_mut().unwrap().remove("ward.backup");
        }
    }
    std::fs::copy(
        store.join(format!("{from}.tar.zst")),
        store.join(format!("{name}.tar.zst")),
    )
    .unwrap();
    std::fs::write(store.join(format!("{name}.json")), m.to_string()).unwrap();
}

fn strs(v: &serde_json::Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

const CHECK: &str = "0f2b6a4e-7d1c-secret-check-uuid";

#[test]
fn backup_into_two_stores_verifies_both_prunes_only_its_own_and_signals_success() {
    let pg = Pg::start();
    pg.psql(
        "create table notes(id int primary key, body text); \
         insert into notes select g, md5(g::text) from generate_series(1, 2000) g",
    );
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let state = tempfile::tempdir().unwrap();
    let hook = Receiver::start();
    let toml = format!(
        "[backup]\nstores = [\"{}\", \"{}\"]\ncontainer = \"{}\"\nnotify = \"{}/hooks/ward\"\nping = \"{}/ping/{CHECK}\"\n",
        s(a.path()),
        s(b.path()),
        pg.name,
        hook.base,
        hook.base
    );
    let backup = || {
        ward()
            .file("ward.toml", &toml)
            .env("WARD_STATE_DIR", &s(state.path()))
            .args(["backup", "--json"])
    };

    // 1. No retention policy yet: create, copy, verify; nothing pruned.
    let run = backup().ok();
    let r = run.json();
    assert_eq!(r["status"], "ok", "{r:#}");
    assert_eq!(r["method"], "online");
    assert!(r["create"]["downtime_seconds"].is_null(), "{r:#}");
    assert!(pg.running(), "an online backup never stops the container");
    let first = r["snapshot"].as_str().unwrap().to_string();
    assert!(first.starts_with("backup-"), "{first}");
    assert_eq!(r["stores"][0]["arrived"], "created");
    assert_eq!(r["stores"][1]["arrived"], "copied");
    for st in r["stores"].as_array().unwrap() {
        assert_eq!(st["ok"], true, "{st:#}");
        assert_eq!(st["verified"], true, "{st:#}");
    }
    assert!(
        run.stderr().contains("no retention policy"),
        "{}",
        run.stderr()
    );
    for store in [a.path(), b.path()] {
        assert_eq!(names(store), vec![first.clone()]);
        ward()
            .args(["snapshot", "verify", &first, "--store", &s(store)])
            .ok();
    }
    // The check heard start then success; the webhook got the JSON body.
    let got = hook.requests();
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            format!("/ping/{CHECK}/start").as_str(),
            format!("/ping/{CHECK}").as_str(),
            "/hooks/ward"
        ],
        "{got:?}"
    );
    assert!(got.iter().all(|r| r.method == "POST"));
    let body: serde_json::Value = serde_json::from_str(&got[2].body).unwrap();
    assert_eq!(body["status"], "ok", "{body:#}");
    assert_eq!(body["snapshot"], first.as_str());
    assert!(body["compressed_bytes"].as_u64().unwrap() > 0, "{body:#}");
    assert!(body["seconds"].as_f64().unwrap() > 0.0, "{body:#}");
    assert_eq!(body["stores"].as_array().unwrap().len(), 2);
    assert!(body["error"].is_null());
    // The check's UUID is a secret: never printed.
    assert!(
        !run.stdout().contains(CHECK) && !run.stderr().contains(CHECK),
        "{}\n{}",
        run.stdout(),
        run.stderr()
    );

    // 2. A second run while the first holds the lock does nothing, says
    // why, exits 2 and sends no signal.
    let lock_path = std::fs::read_dir(state.path().join("locks"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("backup-")
        })
        .expect("the backup lock file");
    let held = std::fs::OpenOptions::new()
        .write(true)
        .open(&lock_path)
        .unwrap();
    fs4::FileExt::try_lock(&held).unwrap();
    let busy = backup().run();
    busy.fails_with(2, "another `ward backup`");
    assert_eq!(hook.requests().len(), 3, "a refused run sends nothing");
    assert_eq!(names(a.path()), vec![first.clone()]);
    drop(held);

    // 3. Older backups of this target, one foreign snapshot and another
    // target's backup, all old; then a run with a GFS policy from flags.
    let label = {
        let m: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(a.path().join(format!("{first}.json"))).unwrap(),
        )
        .unwrap();
        m["labels"]["ward.backup"].as_str().unwrap().to_string()
    };
    // The name's stem (the volume's name, made name-safe).
    let stem = &first["backup-".len()..first.len() - "-20261203-030000".len()];
    let old = |d: &str| format!("backup-{stem}-{d}-120000");
    for store in [a.path(), b.path()] {
        for (d, at) in [
            ("20200310", "2020-03-10T12:00:00Z"),
            ("20200305", "2020-03-05T12:00:00Z"),
            ("20200220", "2020-02-20T12:00:00Z"),
            ("20200115", "2020-01-15T12:00:00Z"),
        ] {
            plant(store, &first, &old(d), at, Some(&label));
        }
        plant(store, &first, "manual-2019", "2019-01-01T00:00:00Z", None);
        // Our volume's name and label, but another cluster (another host
        // deployed from the same repository): never ours to prune.
        plant(
            store,
            &first,
            &old("20190301"),
            "2019-03-01T12:00:00Z",
            Some(&label),
        );
        let p = store.join(format!("{}.json", old("20190301")));
        let mut m: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        m["system_identifier"] = "7000000000000000001".into();
        std::fs::write(&p, m.to_string()).unwrap();
        // Named like ours, but another volume's (another compose project's
        // `db`): the label decides, and it is not ours.
        plant(
            store,
            &first,
            &old("20190601"),
            "2019-06-01T12:00:00Z",
            Some("staging_pgdata"),
        );
        plant(
            store,
            &first,
            "backup-otherdb-20190101-000000",
            "2019-01-01T00:00:00Z",
            Some("otherdb"),
        );
    }
    std::thread::sleep(std::time::Duration::from_millis(1100)); // a new name
    let r = backup()
        .args(["--keep-last", "1", "--keep-monthly", "3"])
        .ok()
        .json();
    assert_eq!(r["status"], "ok", "{r:#}");
    let second = r["snapshot"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    let pruned = {
        let mut v = vec![first.clone(), old("20200305"), old("20200115")];
        v.sort();
        v
    };
    let kept = {
        let mut v = vec![second.clone(), old("20200310"), old("20200220")];
        v.sort();
        v
    };
    for (i, store) in [a.path(), b.path()].into_iter().enumerate() {
        let st = &r["stores"][i];
        assert_eq!(strs(&st["pruned"]), pruned, "{st:#}");
        assert_eq!(strs(&st["kept"]), kept, "{st:#}");
        let mut left = kept.clone();
        left.extend([
            "manual-2019".into(),
            "backup-otherdb-20190101-000000".into(),
            old("20190601"),
            old("20190301"),
        ]);
        left.sort();
        assert_eq!(names(store), left, "only this target's backups are pruned");
        ward()
            .args(["snapshot", "verify", &second, "--store", &s(store)])
            .ok();
    }
    let got = hook.requests();
    assert_eq!(got.len(), 6, "{got:?}");
    let body: serde_json::Value = serde_json::from_str(&got[5].body).unwrap();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["stores"][1]["pruned"], 3, "{body:#}");
}

#[test]
fn a_failing_store_fails_the_run_keeps_the_other_and_pings_fail() {
    let pg = Pg::start();
    let good = tempfile::tempdir().unwrap();
    // A store path under a regular file can never be created, even by root.
    let blocker = tempfile::NamedTempFile::new().unwrap();
    let bad = blocker.path().join("store");
    let hook = Receiver::start();
    let run = ward()
        .args(["backup", "--json", "--container", &pg.name])
        .args(["--store", &s(&bad), "--store", &s(good.path())])
        .args(["--ping", &format!("{}/ping/{CHECK}", hook.base)])
        .args(["--notify", &format!("{}/hook", hook.base)])
        .args(["--keep-last", "3"])
        .run();
    assert_eq!(run.code(), 1, "{}\n{}", run.stdout(), run.stderr());
    let r = run.json();
    assert_eq!(r["status"], "partial", "{r:#}");
    let failed = &r["stores"][0];
    assert_eq!(failed["ok"], false);
    assert_eq!(failed["failed_step"], "open");
    assert!(
        failed["error"].as_str().unwrap().contains(&s(&bad)),
        "the failed store is named: {failed:#}"
    );
    // The first store failed: the backup was created in the next one, and kept.
    let kept = &r["stores"][1];
    assert_eq!(kept["arrived"], "created", "{kept:#}");
    assert_eq!(kept["verified"], true);
    let name = r["snapshot"].as_str().unwrap();
    assert_eq!(names(good.path()), vec![name.to_string()]);
    ward()
        .args(["snapshot", "verify", name, "--store", &s(good.path())])
        .ok();
    let got = hook.requests();
    let paths: Vec<&str> = got.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            format!("/ping/{CHECK}/start").as_str(),
            format!("/ping/{CHECK}/fail").as_str(),
            "/hook"
        ]
    );
    assert!(got[1].body.contains(&s(&bad)), "{:?}", got[1].body);
    let body: serde_json::Value = serde_json::from_str(&got[2].body).unwrap();
    assert_eq!(body["status"], "partial");
    assert_eq!(body["stores"][0]["failed_step"], "open");

    // A store that opens but whose copy fails half-way: reported, nothing
    // half-written left there, and not pruned; the first store keeps the
    // backup and is pruned.
    let other = tempfile::tempdir().unwrap();
    for ext in ["json", "tar.zst"] {
        std::fs::copy(
            good.path().join(format!("{name}.{ext}")),
            other.path().join(format!("{name}.{ext}")),
        )
        .unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = ward()
        .args(["backup", "--json", "--container", &pg.name])
        .args(["--store", &s(good.path()), "--store", &s(other.path())])
        .args(["--keep-last", "1"])
        .env("WARD_FAULT", "backup:copy")
        .run();
    assert_eq!(run.code(), 1, "{}\n{}", run.stdout(), run.stderr());
    let r = run.json();
    assert_eq!(r["status"], "partial", "{r:#}");
    assert_eq!(r["stores"][0]["ok"], true);
    assert_eq!(r["stores"][0]["pruned"], serde_json::json!([name]));
    assert_eq!(r["stores"][1]["failed_step"], "copy", "{r:#}");
    assert!(r["stores"][1]["pruned"].as_array().unwrap().is_empty());
    let newer = r["snapshot"].as_str().unwrap().to_string();
    assert_eq!(names(good.path()), vec![newer.clone()]);
    assert_eq!(names(other.path()), vec![name.to_string()], "not pruned");
    let leftovers: Vec<String> = std::fs::read_dir(other.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.') && n != ".lock")
        .collect();
    assert!(leftovers.is_empty(), "half-written: {leftovers:?}");

    // A backup that fails its verification is deleted again: the next
    // prune must never count it as a backup.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let run = ward()
        .args(["backup", "--json", "--container", &pg.name])
        .args(["--store", &s(good.path())])
        .env("WARD_FAULT", "backup:verify")
        .run();
    assert_eq!(run.code(), 1, "{}\n{}", run.stdout(), run.stderr());
    let r = run.json();
    assert_eq!(r["status"], "failed", "{r:#}");
    assert_eq!(r["stores"][0]["failed_step"], "verify");
    assert!(
        r["stores"][0]["error"]
            .as_str()
            .unwrap()
            .contains("deleted again"),
        "{r:#}"
    );
    assert_eq!(names(good.path()), vec![newer]);

    // The human report names the failed store too.
    let human = ward()
        .args(["backup", "--container", &pg.name])
        .args(["--store", &s(&bad), "--store", &s(good.path())])
        .run();
    assert_eq!(human.code(), 1, "{}", human.stderr());
    assert!(
        human.stdout().contains("PARTIAL") && human.stdout().contains("FAILED at open"),
        "{}",
        human.stdout()
    );
}

#[test]
fn a_missing_target_is_exit_2_and_still_pings_fail() {
    let store = tempfile::tempdir().unwrap();
    let hook = Receiver::start();
    let run = ward()
        .args(["backup", "--container", "ward-test-no-such-container-7c1e"])
        .args(["--store", &s(store.path())])
        .args(["--ping", &format!("{}/ping/{CHECK}", hook.base)])
        .run();
    assert_eq!(run.code(), 2, "{}\n{}", run.stdout(), run.stderr());
    assert!(run.stdout().contains("FAILED"), "{}", run.stdout());
    let got = hook.requests();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].path, format!("/ping/{CHECK}/fail"));
    assert!(got[0].body.contains("no-such-container"), "{}", got[0].body);
    assert!(names(store.path()).is_empty());
}

#[test]
fn a_webhook_that_is_down_leaves_a_good_backup_exit_0_with_a_warning() {
    let pg = Pg::start();
    let store = tempfile::tempdir().unwrap();
    let port = closed_port();
    let secret_url = format!(
        "http://ops:hunter2pass@127.0.0.1:{port}/hooks/abcdefghijklmnop-token?token=qsecret123"
    );
    let run = ward()
        .args(["backup", "--json", "--container", &pg.name])
        .args(["--store", &s(store.path()), "--notify", &secret_url])
        .ok();
    let r = run.json();
    assert_eq!(r["status"], "ok", "{r:#}");
    let sig = &r["signals"][0];
    assert_eq!(sig["what"], "webhook");
    assert_eq!(sig["ok"], false);
    assert_eq!(sig["to"], format!("http://127.0.0.1:{port}/…"));
    assert!(
        run.stderr().contains("warning: the webhook")
            && run
                .stderr()
                .contains("the backup's own result is unchanged"),
        "{}",
        run.stderr()
    );
    let all = format!("{}{}", run.stdout(), run.stderr());
    for secret in ["hunter2pass", "abcdefghijklmnop-token", "qsecret123"] {
        assert!(!all.contains(secret), "{secret} leaked: {all}");
    }
    assert_eq!(names(store.path()).len(), 1);
}

#[test]
fn print_systemd_writes_units_that_systemd_analyze_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let toml = "[backup]\nstores = [\"/var/backups/ward\"]\ncompose_service = \"db\"\n\
                on_calendar = \"Mon..Fri *-*-* 02:30:00\"\nrandomized_delay = \"45min\"\n";
    let w = ward().file("ward.toml", toml);
    let workdir = w.workdir().to_path_buf();
    let out = w
        .args(["backup", "--print-systemd", "--systemd-dir", &s(dir.path())])
        .ok()
        .stdout();
    assert!(out.contains("ward-backup.timer"), "{out}");
    let service = std::fs::read_to_string(dir.path().join("ward-backup.service")).unwrap();
    let timer = std::fs::read_to_string(dir.path().join("ward-backup.timer")).unwrap();
    let lines = |t: &str| -> Vec<String> { t.lines().map(str::to_string).collect() };
    let svc = lines(&service);
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_ward")).unwrap();
    for want in [
        "Type=oneshot".to_string(),
        format!("ExecStart=\"{}\" backup", s(&exe)),
        format!("WorkingDirectory={}", s(&workdir)),
        "KillSignal=SIGINT".to_string(),
    ] {
        assert!(svc.contains(&want), "{want} missing in:\n{service}");
    }
    let tmr = lines(&timer);
    for want in [
        "OnCalendar=Mon..Fri *-*-* 02:30:00",
        "Persistent=true",
        "RandomizedDelaySec=45min",
        "Unit=ward-backup.service",
        "WantedBy=timers.target",
    ] {
        assert!(tmr.iter().any(|l| l == want), "{want} missing in:\n{timer}");
    }
    let verify = std::process::Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .arg(dir.path().join("ward-backup.timer"))
        .arg(dir.path().join("ward-backup.service"))
        .output()
        .expect("systemd-analyze (Debian package systemd; .ci/run installs it)");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    // Printed (no --systemd-dir): both units on stdout.
    let printed = ward()
        .file("ward.toml", toml)
        .args(["backup", "--print-systemd"])
        .ok()
        .stdout();
    assert!(
        printed.contains("[Timer]") && printed.contains("[Service]"),
        "{printed}"
    );
    // Flags would not reach the unit: refused, as is a missing ward.toml.
    ward()
        .file("ward.toml", toml)
        .args(["backup", "--print-systemd", "--store", "/x"])
        .run()
        .fails_with(2, "ward.toml [backup]");
    ward()
        .args(["backup", "--print-systemd"])
        .run()
        .fails_with(2, "no ward.toml");
    // A line break cannot smuggle a directive into the timer.
    ward()
        .file(
            "ward.toml",
            "[backup]\non_calendar = \"daily\\nExecStartPre=/bin/sh\"\n",
        )
        .args(["backup", "--print-systemd"])
        .run()
        .fails_with(2, "OnCalendar");
}
