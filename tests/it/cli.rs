//! The command line as a user meets it: help with examples, `doctor`, `demo`.

use crate::support::*;

#[test]
fn help_shows_examples_for_every_command() {
    let top = ward().args(["--help"]).ok().stdout();
    assert!(
        top.contains("Examples:") && top.contains("Exit codes"),
        "{top}"
    );
    for cmd in ["seed", "demo", "doctor"] {
        let help = ward().args([cmd, "--help"]).ok().stdout();
        assert!(
            help.contains("Examples:"),
            "{cmd} --help has no examples:\n{help}"
        );
        assert!(help.contains(&format!("ward {cmd}")), "{help}");
    }
    let v = ward().args(["--version"]).ok().stdout();
    assert!(v.starts_with("ward "), "{v}");
}

#[test]
fn unknown_flags_exit_2() {
    assert_eq!(ward().args(["seed", "--patient", "5"]).run().code(), 2);
}

#[test]
fn doctor_reports_binaries_database_and_docker() {
    let c = cluster();
    let r = ward()
        .db(&c.url("postgres"))
        .args(["doctor", "--json"])
        .run();
    let report = r.json();
    let checks = report["checks"].as_array().unwrap();
    let find = |name: &str| checks.iter().find(|c| c["name"] == name).unwrap().clone();
    let bins = find("postgres server binaries");
    assert_eq!(bins["status"], "ok", "{bins}");
    assert!(
        bins["detail"].as_str().unwrap().contains("PostgreSQL"),
        "{bins}"
    );
    let db = find("database");
    assert_eq!(db["status"], "ok", "{db}");
    assert!(db["detail"].as_str().unwrap().contains("superuser"), "{db}");
    let docker = find("docker engine");
    assert_eq!(
        docker["status"], "ok",
        "the Docker engine must be reachable: {docker}"
    );
    assert!(
        docker["detail"].as_str().unwrap().contains("API 1."),
        "{docker}"
    );
    assert_eq!(r.code(), 0);
    // The human form says the same, and never shows the password.
    let human = ward().db(&c.url("postgres")).args(["doctor"]).ok().stdout();
    assert!(
        human.contains("ok") && !human.contains(c.password()),
        "{human}"
    );
}

#[test]
fn doctor_names_an_unreachable_database_and_exits_1() {
    let r = ward()
        .db("postgres://app:pw@127.0.0.1:1/app")
        .args(["doctor"])
        .run();
    assert_eq!(r.code(), 1, "{}", r.stdout());
    let out = r.stdout();
    assert!(out.contains("MISSING  database"), "{out}");
    assert!(out.contains("cannot reach the database"), "{out}");
}

#[test]
fn demo_seeds_a_throwaway_cluster_and_cleans_up() {
    let r = ward().args(["demo", "-n", "300", "--json"]).ok();
    let d = r.json();
    assert_eq!(d["seed"]["patients"], 300);
    assert!(d["seed"]["total_rows"].as_u64().unwrap() > 300 * 10);
    assert_eq!(d["sample"].as_array().unwrap().len(), 5);
    assert!(d["database_url"].is_null());
}

#[test]
fn demo_keep_leaves_a_cluster_to_connect_to_and_says_how_to_stop_it() {
    let r = ward().args(["demo", "-n", "100", "--keep", "--json"]).ok();
    let d = r.json();
    let url = d["database_url"].as_str().unwrap().to_string();
    let stop = d["stop_command"].as_str().unwrap().to_string();
    assert_eq!(int(&url, "SELECT count(*) FROM patients"), 100);
    let status = std::process::Command::new("sh")
        .args(["-c", &stop])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let dir = stop.rsplit(' ').next().unwrap();
    assert!(!std::path::Path::new(dir).exists(), "{dir} was not removed");
}
