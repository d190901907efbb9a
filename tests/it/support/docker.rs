//! Docker fixtures for the snapshot tests: Postgres containers and compose
//! projects on the local test image, uniquely named, labelled `ward.test=1`,
//! and removed on drop (also when a test panics). No image is ever pulled:
//! a missing image fails the test with the command that builds it.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const IMAGE: &str = "ward-test/postgres:15";

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is docker installed?)"))
}

/// Runs `docker …` and returns stdout; panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = run(Command::new("docker").args(args));
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Fails loudly when the test image is missing (tests never pull).
pub fn require_image() {
    let out = run(Command::new("docker").args(["image", "inspect", IMAGE]));
    assert!(
        out.status.success(),
        "image {IMAGE} missing: run .ci/test-image.sh (stderr: {})",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    format!(
        "{prefix}-{:x}-{}-{}",
        t & 0xffff_ffff,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A Postgres container on a named volume.
pub struct Pg {
    pub name: String,
    pub volume: String,
}

impl Pg {
    pub fn start() -> Pg {
        Pg::start_on(&[])
    }

    /// A container on a volume created with `volume_options` too (e.g. a
    /// small tmpfs: `--opt type=tmpfs …`).
    pub fn start_on(volume_options: &[&str]) -> Pg {
        require_image();
        let name = unique("ward-test-pg");
        let volume = format!("{name}-data");
        let mut create = vec!["volume", "create", "--label", "ward.test=1"];
        create.extend_from_slice(volume_options);
        create.push(&volume);
        docker(&create);
        let pg = Pg { name, volume };
        docker(&[
            "run",
            "-d",
            "--name",
            &pg.name,
            "--label",
            "ward.test=1",
            "-e",
            "POSTGRES_PASSWORD=test-secret-pw",
            "-v",
            &format!("{}:/var/lib/postgresql/data", pg.volume),
            IMAGE,
        ]);
        pg.wait_ready();
        pg
    }

    pub fn wait_ready(&self) {
        wait_ready(&self.name);
    }

    pub fn psql(&self, sql: &str) -> String {
        psql(&self.name, sql)
    }

    pub fn running(&self) -> bool {
        running(&self.name)
    }

    pub fn checksums(&self) -> Vec<(String, String)> {
        checksums(&self.name)
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        remove_helpers(&self.volume);
        // -v: the PG 18 image declares VOLUME /var/lib/postgresql, which
        // the named volume mounted at …/data does not cover; without it each
        // container left an anonymous volume behind.
        let _ = Command::new("docker")
            .args(["rm", "-f", "-v", &self.name])
            .output();
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.volume])
            .output();
    }
}

/// Runs a shell script in a throwaway container with `volume` at /v;
/// returns its stdout.
pub fn in_volume(volume: &str, script: &str) -> String {
    docker(&[
        "run",
        "--rm",
        "--entrypoint",
        "sh",
        "-v",
        &format!("{volume}:/v"),
        IMAGE,
        "-c",
        script,
    ])
}

/// When the container last started (changes on every stop/start).
pub fn started_at(container: &str) -> String {
    docker(&["inspect", "-f", "{{.State.StartedAt}}", container])
        .trim()
        .to_string()
}

/// Counts ward helper containers on a volume.
pub fn helpers(volume: &str) -> usize {
    String::from_utf8_lossy(
        &run(Command::new("docker").args([
            "ps",
            "-aq",
            "--filter",
            "label=ward.helper=1",
            "--filter",
            &format!("volume={volume}"),
        ]))
        .stdout,
    )
    .split_whitespace()
    .count()
}

/// Removes ward helper containers left on a volume (after a kill -9).
pub fn remove_helpers(volume: &str) -> usize {
    let ids = String::from_utf8_lossy(
        &run(Command::new("docker").args([
            "ps",
            "-aq",
            "--filter",
            "label=ward.helper=1",
            "--filter",
            &format!("volume={volume}"),
        ]))
        .stdout,
    )
    .into_owned();
    let ids: Vec<&str> = ids.split_whitespace().collect();
    for id in &ids {
        let _ = Command::new("docker").args(["rm", "-f", "-v", id]).output();
    }
    ids.len()
}

pub fn running(container: &str) -> bool {
    docker(&["inspect", "-f", "{{.State.Running}}", container]).trim() == "true"
}

pub fn wait_ready(container: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run(Command::new("docker").args([
            "exec", "-u", "postgres", container, "psql", "-XAtq", "-U", "postgres", "-c",
            "select 1",
        ]));
        if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "1" {
            // The entrypoint restarts the server after initdb: make sure it is the final one.
            std::thread::sleep(Duration::from_millis(300));
            let again = run(Command::new("docker").args([
                "exec", "-u", "postgres", container, "psql", "-XAtq", "-U", "postgres", "-c",
                "select 1",
            ]));
            if again.status.success() {
                return;
            }
        }
        assert!(
            Instant::now() < deadline,
            "postgres in {container} not ready: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

pub fn psql(container: &str, sql: &str) -> String {
    psql_in(container, "postgres", sql)
}

pub fn psql_in(container: &str, db: &str, sql: &str) -> String {
    docker(&[
        "exec",
        "-u",
        "postgres",
        container,
        "psql",
        "-XAtq",
        "-v",
        "ON_ERROR_STOP=1",
        "-U",
        "postgres",
        "-d",
        db,
        "-c",
        sql,
    ])
}

/// An order-independent checksum of every user table.
pub fn checksums(container: &str) -> Vec<(String, String)> {
    checksums_in(container, "postgres")
}

/// An order-independent checksum of every user table of database `db`.
pub fn checksums_in(container: &str, db: &str) -> Vec<(String, String)> {
    let psql = |c: &str, q: &str| psql_in(c, db, q);
    let tables = psql(
        container,
        "select schemaname||'.'||tablename from pg_tables \
         where schemaname not in ('pg_catalog','information_schema') order by 1",
    );
    tables
        .lines()
        .map(|t| {
            let sum = psql(
                container,
                &format!(
                    "select count(*) || ':' || coalesce(md5(string_agg(md5(x::text), '' order by md5(x::text))), '') from {t} x"
                ),
            );
            (t.to_string(), sum.trim().to_string())
        })
        .collect()
}

/// Some data: a table with text, numbers and an index.
pub fn fill(container: &str, rows: u32) {
    psql(
        container,
        &format!(
            "create table if not exists items(id int primary key, name text, price numeric, note text);
             insert into items select g, md5(g::text), g * 1.5, repeat('x', g % 50)
             from generate_series(1, {rows}) g on conflict do nothing;
             create table if not exists marks(id serial primary key, label text);"
        ),
    );
}

/// A docker-compose project with a `db` service on a named volume, like the team's.
pub struct Compose {
    pub project: String,
    pub dir: tempfile::TempDir,
}

impl Compose {
    pub fn up() -> Compose {
        require_image();
        let project = unique("wardtest").replace('-', "");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("docker-compose.yml"),
            format!(
                "version: \"3.8\"
services:
  db:
    image: {IMAGE}
    environment:
      POSTGRES_PASSWORD: test-secret-pw
      POSTGRES_DB: app
    labels:
      ward.test: \"1\"
    volumes:
      - pgdata:/var/lib/postgresql/data
volumes:
  pgdata:
    labels:
      ward.test: \"1\"
"
            ),
        )
        .unwrap();
        let c = Compose { project, dir };
        c.compose(&["up", "-d"]);
        wait_ready(&c.container());
        c
    }

    pub fn compose(&self, args: &[&str]) -> String {
        let out = run(Command::new("docker-compose")
            .args(["-p", &self.project])
            .args(args)
            .current_dir(self.dir.path()));
        assert!(
            out.status.success(),
            "docker-compose {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    pub fn container(&self) -> String {
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
            "--filter",
            "label=com.docker.compose.service=db",
        ])
        .trim()
        .to_string()
    }

    pub fn volume(&self) -> String {
        format!("{}_pgdata", self.project)
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        remove_helpers(&self.volume());
        let _ = Command::new("docker-compose")
            .args(["-p", &self.project, "down", "-v", "-t", "5"])
            .current_dir(self.dir.path())
            .output();
    }
}

/// Flips one bit of a file at `offset`.
pub fn flip_bit(path: &Path, offset: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = (offset as usize).min(bytes.len() - 1);
    bytes[i] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

/// Removes a Docker volume when dropped (a volume ward makes beside a test's
/// own, such as `<volume>-ward-previous`).
pub struct RemoveVolume(pub String);

impl Drop for RemoveVolume {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.0])
            .output();
    }
}
