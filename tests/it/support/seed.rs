//! Support for the tests of seeding one's own schema: a database per
//! schema on a shared cluster, the guessed spec (`--init-spec`) and a seed
//! from it (`--spec`), and the check that every table got rows.

use std::path::{Path, PathBuf};

use crate::support::*;

/// A fresh database `name` on `c` holding `ddl`; returns its URL.
pub fn database(c: &Cluster, name: &str, ddl: &str) -> String {
    sql(&c.url("postgres"), &format!("CREATE DATABASE {name}"));
    let url = c.url(name);
    sql(&url, ddl);
    url
}

/// Writes the guessed spec for `url` into `dir` and returns it with its text.
pub fn guess(url: &str, dir: &Path) -> (PathBuf, String) {
    let path = dir.join("spec.toml");
    ward()
        .db(url)
        .args(["seed", "--init-spec"])
        .args([&path])
        .ok();
    let text = std::fs::read_to_string(&path).unwrap();
    (path, text)
}

pub fn seed(url: &str, spec: &Path, extra: &[&str]) -> Run {
    ward()
        .db(url)
        .args(["seed", "-q", "--spec"])
        .args([spec])
        .args(extra)
        .run()
}

/// Every ordinary table of the public schema holds at least one row.
pub fn assert_every_table_has_rows(url: &str) {
    let tables = sql(
        url,
        "SELECT relname::text FROM pg_class WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace ORDER BY 1",
    );
    for t in tables {
        let t = t[0].clone().unwrap();
        assert!(
            int(url, &format!("SELECT count(*) FROM public.{t}")) > 0,
            "{t} is empty"
        );
    }
}

/// The guessed spec seeds `ddl` unedited; returns the URL and the spec text.
pub fn seeds_unedited(c: &Cluster, name: &str, ddl: &str) -> (String, String) {
    let url = database(c, name, ddl);
    let tmp = tempfile::tempdir().unwrap();
    let (spec, text) = guess(&url, tmp.path());
    let r = seed(&url, &spec, &[]);
    assert_eq!(r.code(), 0, "{}\n{text}", r.stderr());
    assert_every_table_has_rows(&url);
    (url, text)
}

/// `text` (a spec) with table `qualified`'s block replaced by `skip = true`.
pub fn skip_table(text: &str, qualified: &str) -> String {
    let header = format!("\"{qualified}\"]");
    text.split("[tables.")
        .map(|block| {
            if block.starts_with(&header) {
                format!("{header}\nskip = true\n\n")
            } else {
                block.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("[tables.")
}
