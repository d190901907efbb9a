//! Real diesel migration histories from `../shared/corpus` (test data, read
//! in place): the migrations in diesel's order, and a database built up to a
//! point of the history on a throwaway cluster, the way diesel's runner does.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;

use super::{Cluster, sql};

/// One migration: diesel's version and its directory.
pub struct Migration {
    pub version: String,
    pub dir: PathBuf,
}

/// The corpus folder `name` (`lemmy`, `crates.io`) beside the repository.
pub fn dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus")
        .join(name)
        .join("migrations")
}

/// The migrations of corpus `name` in diesel's order: the version is the
/// directory name up to the first `_` with every `-` removed, compared as a
/// string (not a number).
pub fn migrations(name: &str) -> Vec<Migration> {
    let root = dir(name);
    let mut out: Vec<Migration> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| {
            panic!(
                "cannot read the corpus {}: {e} — it lives in ../shared/corpus beside the repository",
                root.display()
            )
        })
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("up.sql").is_file())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let version = name.split('_').next().unwrap_or("").replace('-', "");
            Migration {
                version,
                dir: e.path(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.version.cmp(&b.version));
    out
}

/// A database that follows a history: created empty with diesel's table.
pub struct History<'c> {
    cluster: &'c Cluster,
    pub db: String,
    applied: usize,
}

impl<'c> History<'c> {
    pub fn new(cluster: &'c Cluster, db: &str) -> Self {
        sql(&cluster.url("postgres"), &format!("CREATE DATABASE {db}"));
        sql(
            &cluster.url(db),
            "CREATE TABLE __diesel_schema_migrations (version varchar(50) PRIMARY KEY,
                run_on timestamp NOT NULL DEFAULT current_timestamp)",
        );
        History {
            cluster,
            db: db.to_string(),
            applied: 0,
        }
    }

    /// Applies the migrations up to `upto` (a count from the start), one
    /// psql run each: in one transaction unless `metadata.toml` says
    /// `run_in_transaction = false`, the version recorded as diesel does
    /// (with triggers off: one of Lemmy's forbids direct inserts there).
    pub fn apply_until(&mut self, all: &[Migration], upto: usize) {
        for m in &all[self.applied..upto] {
            let up = std::fs::read_to_string(m.dir.join("up.sql")).unwrap();
            let in_tx = std::fs::read_to_string(m.dir.join("metadata.toml")).map_or(true, |t| {
                !t.lines()
                    .any(|l| l.replace(' ', "") == "run_in_transaction=false")
            });
            let script = format!(
                "{up}\n;\nALTER TABLE __diesel_schema_migrations DISABLE TRIGGER ALL;
                 INSERT INTO __diesel_schema_migrations (version) VALUES ('{}');
                 ALTER TABLE __diesel_schema_migrations ENABLE TRIGGER ALL;\n",
                m.version
            );
            let mut cmd = self.cluster.command("psql");
            cmd.args(["-q", "-X", "-v", "ON_ERROR_STOP=1", "-d"])
                .arg(self.cluster.url(&self.db))
                .args(if in_tx {
                    &["-1", "-f", "-"][..]
                } else {
                    &["-f", "-"][..]
                })
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("psql runs");
            child
                .stdin
                .take()
                .unwrap()
                .write_all(script.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "migration {} failed: {}",
                m.dir.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        self.applied = upto;
    }

    /// A copy of the database as it stands, named `name`.
    pub fn snapshot(&self, name: &str) -> String {
        sql(
            &self.cluster.url("postgres"),
            &format!("CREATE DATABASE {name} TEMPLATE {}", self.db),
        );
        self.cluster.url(name)
    }
}
