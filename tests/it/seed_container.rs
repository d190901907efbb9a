//! `ward seed` without a URL reaches the database the way `ward snapshot`
//! finds its target: the container's published 5432 port and its
//! `POSTGRES_*` environment — on a real container of the local test image.
//! The password never shows in ward's output; a container that publishes no
//! port or is not running is a clear one-line error.

use crate::support::docker::{self, IMAGE};
use crate::support::*;

/// A Postgres container, removed on drop (also when the test panics).
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::process::Command::new("docker")
            .args(["rm", "-f", "-v", &self.0])
            .output();
    }
}

const PASSWORD: &str = "container-secret-pw";

/// Starts a container of the test image; `publish` maps 5432 to a free host port.
fn start(publish: bool) -> Container {
    docker::require_image();
    let name = docker::unique("ward-seed-pg");
    let c = Container(name.clone());
    let mut args = vec![
        "run".to_string(),
        "-d".into(),
        "--name".into(),
        name.clone(),
        "--label".into(),
        "ward.test=1".into(),
        "-e".into(),
        format!("POSTGRES_PASSWORD={PASSWORD}"),
        "-e".into(),
        "POSTGRES_DB=appdb".into(),
    ];
    if publish {
        // An empty host port: Docker picks a free one.
        args.extend(["-p".into(), "127.0.0.1::5432".into()]);
    }
    args.push(IMAGE.into());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker::docker(&args);
    docker::wait_ready(&name);
    c
}

#[test]
fn seed_reaches_the_container_database_without_a_url() {
    let c = start(true);
    docker::psql_in(
        &c.0,
        "appdb",
        "CREATE TABLE item (id serial PRIMARY KEY, name text NOT NULL)",
    );
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    let init = ward()
        .args(["seed", "--container", &c.0, "--init-spec"])
        .args([&spec])
        .run();
    assert_eq!(init.code(), 0, "{}", init.stderr());
    let r = ward()
        .args(["seed", "--container", &c.0, "--spec"])
        .args([&spec])
        .run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    let out = format!("{}{}{}", init.stdout(), r.stdout(), r.stderr());
    assert!(!out.contains(PASSWORD), "the password leaked: {out}");
    assert!(out.contains("appdb"), "names the database it seeded: {out}");
    assert_eq!(
        docker::psql_in(&c.0, "appdb", "SELECT count(*) FROM item").trim(),
        "100"
    );
    // ward.toml's [snapshot] container works the same.
    let r = ward()
        .file(
            "ward.toml",
            &format!("[snapshot]\ncontainer = \"{}\"\n", c.0),
        )
        .args(["seed", "-n", "5"])
        .run();
    assert_eq!(r.code(), 0, "{}", r.stderr());
    assert!(!format!("{}{}", r.stdout(), r.stderr()).contains(PASSWORD));
    assert_eq!(
        docker::psql_in(&c.0, "appdb", "SELECT count(*) FROM patients").trim(),
        "5"
    );

    // Stopped: a one-line error saying so, not a connection timeout.
    docker::docker(&["stop", "-t", "5", &c.0]);
    ward()
        .args(["seed", "--container", &c.0, "-n", "5"])
        .run()
        .fails_with(2, "is not running — start it");
}

#[test]
fn a_container_that_publishes_no_port_is_a_clear_error() {
    let c = start(false);
    let err = ward()
        .args(["seed", "--container", &c.0, "-n", "5"])
        .run()
        .fails_with(2, "publishes no port for 5432");
    assert!(
        err.contains(&c.0) && err.contains("--database-url"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
}
