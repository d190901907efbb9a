//! Shared test support: throwaway clusters (ward's own), a fluent builder for
//! running the `ward` binary, and a small synchronous SQL helper.

pub mod check;
pub mod corpus;
pub mod disk;
pub mod django;
pub mod docker;
pub mod hook;
pub mod s3;
pub mod seed;
pub mod server;
pub mod snapshot;

use std::path::{Path, PathBuf};
use std::process::Output;

pub use ward::pg::cluster::Cluster;

/// A new throwaway cluster; fails the test loudly if none can be started.
pub fn cluster() -> Cluster {
    Cluster::start().unwrap_or_else(|e| panic!("cannot start a throwaway Postgres cluster: {e:#}"))
}

/// A stopped cluster holding `rows` rows in `t`.
pub fn stopped_cluster(rows: u32) -> Cluster {
    let mut c = cluster();
    sql(
        &c.url("postgres"),
        &format!(
            "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, {rows}) g"
        ),
    );
    c.stop().unwrap();
    c
}

/// Runs the `ward` binary in a clean environment and a private working directory.
pub struct Ward {
    cmd: std::process::Command,
    dir: tempfile::TempDir,
}

/// ward's state directory (target locks and journals) for the wards one test
/// runs: shared between them, like a user's, but never with another test nor
/// with the user running the tests. Every ward finishes or undoes the jobs of
/// dead wards whose journals it finds there, so a shared directory would let
/// one test heal another's deliberately killed ward before that test looks.
/// Keyed by the test's thread name (libtest names each test's thread after
/// it; with --test-threads=1 every test runs on "main" and they share one,
/// which is safe only because nothing then runs at the same time), all under
/// one directory per run. A test may set its own
/// (`.env("WARD_STATE_DIR", …)`).
fn state_dir() -> PathBuf {
    static RUN: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    let run = RUN.get_or_init(|| tempfile::tempdir().unwrap()).path();
    // A thread a test spawned has no name: it would share no test's directory.
    let test = std::thread::current()
        .name()
        .expect("ward() is built on a test's own thread (libtest names it)")
        .replace(|c: char| !c.is_ascii_alphanumeric() && c != '_', "-");
    let dir = run.join(test);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn ward() -> Ward {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ward"));
    for var in [
        "DATABASE_URL",
        "WARD_PATIENTS",
        "WARD_SEED",
        "WARD_JOBS",
        "WARD_SCHEMA",
        "WARD_LOG",
        "WARD_STORE",
        "WARD_FAULT",
        "WARD_STOP_TIMEOUT",
        "COMPOSE_PROJECT_NAME",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_ENDPOINT",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ALLOW_HTTP",
        "WARD_AGE_IDENTITY",
        "WARD_AGE_RECIPIENTS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("NO_COLOR", "1")
        .env("RUST_BACKTRACE", "0")
        .env("WARD_STATE_DIR", state_dir())
        .current_dir(dir.path());
    Ward { cmd, dir }
}

impl Ward {
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        self.cmd.args(args);
        self
    }

    /// One argument (e.g. a shell command with spaces).
    pub fn arg_str(mut self, arg: &str) -> Self {
        self.cmd.arg(arg);
        self
    }

    pub fn db(self, url: &str) -> Self {
        self.args(["--database-url", url])
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.cmd.env(k, v);
        self
    }

    /// Writes a file into the working directory (e.g. `ward.toml`).
    pub fn file(self, name: &str, text: &str) -> Self {
        std::fs::write(self.dir.path().join(name), text).unwrap();
        self
    }

    /// Runs in `dir` instead of the fresh working directory.
    pub fn cwd(mut self, dir: &Path) -> Self {
        self.cmd.current_dir(dir);
        self
    }

    pub fn workdir(&self) -> &Path {
        self.dir.path()
    }

    pub fn spawn(mut self) -> (std::process::Child, tempfile::TempDir) {
        self.cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        (self.cmd.spawn().unwrap(), self.dir)
    }

    pub fn run(mut self) -> Run {
        let out = self.cmd.output().expect("ward runs");
        Run { out }
    }

    /// Runs and asserts exit code 0.
    pub fn ok(self) -> Run {
        let r = self.run();
        assert_eq!(
            r.code(),
            0,
            "ward failed:\nstdout: {}\nstderr: {}",
            r.stdout(),
            r.stderr()
        );
        r
    }
}

pub struct Run {
    pub out: Output,
}

impl Run {
    pub fn code(&self) -> i32 {
        self.out.status.code().unwrap_or(-1)
    }
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", self.stdout()))
    }
    /// Asserts a clean error: the exit code, one line on stderr containing `needle`.
    pub fn fails_with(&self, code: i32, needle: &str) -> String {
        let err = self.stderr();
        assert_eq!(
            self.code(),
            code,
            "stderr: {err}\nstdout: {}",
            self.stdout()
        );
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "error is not one line: {err}"
        );
        assert!(err.starts_with("error: "), "{err}");
        assert!(err.contains(needle), "expected {needle:?} in: {err}");
        err
    }
}

/// Runs SQL and returns every row as text (NULL as `None`).
pub fn sql(url: &str, query: &str) -> Vec<Vec<Option<String>>> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = ward::pg::connect(url).await.unwrap();
        let msgs = client
            .simple_query(query)
            .await
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        msgs.into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    })
}

/// The single value of a query.
pub fn value(url: &str, query: &str) -> String {
    sql(url, query)[0][0].clone().unwrap_or_default()
}

pub fn int(url: &str, query: &str) -> i64 {
    value(url, query).parse().unwrap()
}

/// An order-independent checksum of each of ward's tables in `schema`.
pub fn table_checksums(url: &str, schema: &str) -> Vec<(String, String)> {
    ward::seed::model::TABLES
        .iter()
        .map(|t| {
            let sum = value(
                url,
                &format!(
                    "SELECT count(*) || ':' || coalesce(md5(string_agg(md5(x::text), '' ORDER BY md5(x::text))), '')
                     FROM {schema}.{} x",
                    t.name
                ),
            );
            (t.name.to_string(), sum)
        })
        .collect()
}

/// Files of an export directory, sorted by name.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}
