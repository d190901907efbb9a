//! Knowing what you restore: the migration head a snapshot's database was
//! at, read from the history table of the migration tool that made it (sqlx,
//! diesel, golang-migrate, dbmate, Flyway, refinery, Django), recorded in the
//! manifest and compared on restore with the migrations on disk — so ops see
//! "this snapshot is 3 migrations behind the code" before the app finds out.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The newest applied migration of one database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationHead {
    /// sqlx, diesel, golang-migrate, dbmate, flyway, refinery or django.
    pub tool: String,
    /// The newest applied version (Django: `app.name` of the last applied).
    pub version: String,
    /// How many migrations are recorded as applied.
    pub applied: i64,
}

/// Lists the history tables present in a database (user schemas on the search path).
pub(crate) const FIND_TABLES_SQL: &str = "SELECT c.relname || '|' || \
     (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'dirty' AND NOT a.attisdropped))::text \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r','p') AND n.nspname = ANY (current_schemas(false)) AND c.relname IN \
     ('_sqlx_migrations','__diesel_schema_migrations','schema_migrations','flyway_schema_history',\
     'refinery_schema_history','django_migrations') ORDER BY 1";

/// For a table found by [`FIND_TABLES_SQL`] (`name|has_dirty`), the tool
/// and the query returning `version|applied`.
pub(crate) fn head_query(found: &str) -> Option<(&'static str, &'static str)> {
    let (table, dirty) = found.trim().split_once('|')?;
    Some(match (table, dirty == "true") {
        ("_sqlx_migrations", _) => (
            "sqlx",
            "SELECT max(version)::text || '|' || count(*) FROM _sqlx_migrations WHERE success",
        ),
        ("__diesel_schema_migrations", _) => (
            "diesel",
            "SELECT max(version)::text || '|' || count(*) FROM __diesel_schema_migrations",
        ),
        ("schema_migrations", true) => (
            "golang-migrate",
            "SELECT max(version)::text || '|' || max(version)::text FROM schema_migrations WHERE NOT dirty",
        ),
        ("schema_migrations", false) => (
            "dbmate",
            "SELECT max(version)::text || '|' || count(*) FROM schema_migrations",
        ),
        ("flyway_schema_history", _) => (
            "flyway",
            "SELECT (SELECT version FROM flyway_schema_history WHERE success AND version IS NOT NULL \
             ORDER BY installed_rank DESC LIMIT 1) || '|' || count(*) FROM flyway_schema_history WHERE success",
        ),
        ("refinery_schema_history", _) => (
            "refinery",
            "SELECT max(version)::text || '|' || count(*) FROM refinery_schema_history",
        ),
        ("django_migrations", _) => (
            "django",
            "SELECT (SELECT app || '.' || name FROM django_migrations ORDER BY applied DESC, id DESC \
             LIMIT 1) || '|' || count(*) FROM django_migrations",
        ),
        _ => return None,
    })
}

/// Parses `version|applied` into a head.
pub(crate) fn parse_head(tool: &str, out: &str) -> Option<MigrationHead> {
    let (v, n) = out.trim().rsplit_once('|')?;
    if v.is_empty() {
        return None;
    }
    Some(MigrationHead {
        tool: tool.into(),
        version: v.to_string(),
        applied: n.trim().parse().unwrap_or(0),
    })
}

/// The version a migration file or directory name starts with, normalised
/// as the tools record it: `20240101120000_x.sql`, `V3__x.sql` (Flyway),
/// `U3__x.sql` (refinery), `2024-01-01-120000_x/` (diesel), `0003_x.py` (Django).
pub(crate) fn version_of(name: &str) -> Option<String> {
    let rest = name
        .strip_prefix('V')
        .or_else(|| name.strip_prefix('U'))
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(name);
    let token: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '-' || *c == '.')
        .filter(|c| *c != '-')
        .collect();
    let token = token.trim_end_matches('.').to_string();
    (!token.is_empty() && token.chars().any(|c| c.is_ascii_digit())).then_some(token)
}

/// Compares two versions numerically where both are numbers, else as text.
fn cmp_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let parts = |s: &str| -> Vec<u128> { s.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    if a.chars().all(|c| c.is_ascii_digit() || c == '.')
        && b.chars().all(|c| c.is_ascii_digit() || c == '.')
    {
        parts(a).cmp(&parts(b))
    } else {
        a.cmp(b)
    }
}

/// What the snapshot's head means against the migrations in `dir`: None
/// when they agree (or nothing can be said), else a one-paragraph warning
/// naming the files that differ.
pub(crate) fn compare(head: &MigrationHead, db: &str, dir: &Path) -> Option<String> {
    if head.tool == "django" {
        return None; // per-app histories: no single version to compare
    }
    let mut on_disk: Vec<(String, String)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            version_of(&n).map(|v| (v, n))
        })
        .collect();
    on_disk.sort_by(|a, b| cmp_versions(&a.0, &b.0));
    on_disk.dedup_by(|a, b| a.0 == b.0);
    let newest = on_disk.last()?;
    let newer: Vec<&str> = on_disk
        .iter()
        .filter(|(v, _)| cmp_versions(v, &head.version).is_gt())
        .map(|(_, n)| n.as_str())
        .collect();
    if !newer.is_empty() {
        let shown: Vec<&str> = newer.iter().take(5).copied().collect();
        return Some(format!(
            "warning: snapshot database {db} is at {} migration {} but {} holds {} newer one(s) \
             ({}{}) — the snapshot is BEHIND the code; run the pending migrations after the restore",
            head.tool,
            head.version,
            dir.display(),
            newer.len(),
            shown.join(", "),
            if newer.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        ));
    }
    if cmp_versions(&head.version, &newest.0).is_gt() {
        return Some(format!(
            "warning: snapshot database {db} is at {} migration {}, newer than the newest in {} \
             ({}) — the snapshot is AHEAD of the code (its schema may not match this version of the app)",
            head.tool,
            head.version,
            dir.display(),
            newest.1
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_read_like_the_tools_record_them() {
        assert_eq!(
            version_of("20240101120000_add.sql").as_deref(),
            Some("20240101120000")
        );
        assert_eq!(
            version_of("2024-01-01-120000_add").as_deref(),
            Some("20240101120000")
        );
        assert_eq!(version_of("V3__init.sql").as_deref(), Some("3"));
        assert_eq!(version_of("V1.2__x.sql").as_deref(), Some("1.2"));
        assert_eq!(version_of("0003_auto.py").as_deref(), Some("0003"));
        assert_eq!(version_of("README.md"), None);
    }

    #[test]
    fn behind_and_ahead_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["1_a.sql", "2_b.sql", "3_c.sql"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let head = |v: &str| MigrationHead {
            tool: "sqlx".into(),
            version: v.into(),
            applied: 1,
        };
        let w = compare(&head("1"), "app", dir.path()).unwrap();
        assert!(
            w.contains("BEHIND") && w.contains("2_b.sql") && w.contains("3_c.sql"),
            "{w}"
        );
        assert!(compare(&head("3"), "app", dir.path()).is_none());
        let w = compare(&head("4"), "app", dir.path()).unwrap();
        assert!(w.contains("AHEAD") && w.contains("3_c.sql"), "{w}");
    }
}
