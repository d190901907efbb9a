//! The JSON manifest written beside every archive: where the data came from,
//! what Postgres it is, and a SHA-256 of the archive and of every file in it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::archive::Written;
use crate::target::SourceFacts;

/// Bumped when the manifest changes shape incompatibly.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub ward_version: String,
    /// "cold" or "online".
    pub method: String,
    pub source: SourceFacts,
    pub pg_major: u32,
    pub system_identifier: Option<String>,
    /// PGDATA inside the container (when a container was involved).
    pub pgdata: Option<String>,
    /// PGDATA relative to the volume root ("" when they coincide).
    pub pgdata_rel: String,
    /// What the archive's paths are relative to.
    pub layout: Layout,
    /// Owner of PGDATA in the source.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub file_count: u64,
    /// Sum of the sizes of the files (bytes of data in the tar).
    pub total_bytes: u64,
    /// Size of the uncompressed tar stream.
    pub tar_bytes: u64,
    pub compressed_bytes: u64,
    pub archive_sha256: String,
    pub archive_file: String,
    /// The archive opens with a frame carrying `id` (manifests written
    /// before ward bound the two lack it; `verify` then checks the hash only).
    #[serde(default)]
    pub archive_carries_id: bool,
    /// Seconds the database was unavailable (cold snapshots).
    pub downtime_seconds: Option<f64>,
    pub labels: BTreeMap<String, String>,
    pub database: Option<DatabaseFacts>,
    pub last_verified: Option<DateTime<Utc>>,
    pub entries: Vec<Entry>,
    /// For `--fast` snapshots (method "template"): the copy inside the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<super::template::TemplateFacts>,
    /// The archive is encrypted (age); `archive_sha256` and
    /// `compressed_bytes` are then of the stored ciphertext, the entries'
    /// hashes of the plaintext files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<super::crypt::Encryption>,
}

/// Where the archive's paths start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layout {
    /// Paths start with `root/` and cover the whole volume (the engine's archive
    /// of the mount point; `root` is the mount point's base name).
    Volume {
        root: String,
        /// The volume root holds the `data -> .` link of the postgres:18.0
        /// image ([`super::archive::DATA_LINK`]): listed among the entries,
        /// never followed, recreated by restores.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        data_link: bool,
    },
    /// Paths are relative to PGDATA (pg_basebackup, native data dirs).
    Pgdata,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    pub mode: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What the database looked like, when it was reachable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DatabaseFacts {
    pub databases: Vec<DatabaseInfo>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DatabaseInfo {
    pub name: String,
    pub size_bytes: i64,
    /// Row estimates (pg_class.reltuples) of user tables, `schema.table` → rows.
    pub tables: BTreeMap<String, i64>,
    /// md5 over the user schema (tables, columns, types, constraints, indexes).
    pub schema_fingerprint: String,
    /// The newest applied migration, when a known history table exists
    /// (absent in manifests of older wards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_head: Option<super::migration_head::MigrationHead>,
}

/// What an archived snapshot's source says about itself; the archive
/// ([`Written`]) says the rest. Cold, online and data-directory snapshots
/// differ only here.
pub struct Origin {
    /// "cold" or "online".
    pub method: &'static str,
    pub source: SourceFacts,
    pub pg_major: u32,
    pub system_identifier: Option<String>,
    pub pgdata: Option<String>,
    pub pgdata_rel: String,
    pub layout: Layout,
    /// Owner (uid, gid) of PGDATA in the source.
    pub owner: Option<(u32, u32)>,
    pub downtime_seconds: Option<f64>,
    pub labels: BTreeMap<String, String>,
    pub database: Option<DatabaseFacts>,
}

impl Manifest {
    /// The manifest of a new snapshot `name` whose archive was just written.
    pub(crate) fn archived(name: &str, origin: Origin, written: Written) -> Manifest {
        Manifest {
            format: FORMAT,
            id: written.id.clone(),
            name: name.to_string(),
            created_at: Utc::now(),
            ward_version: env!("CARGO_PKG_VERSION").into(),
            method: origin.method.into(),
            source: origin.source,
            pg_major: origin.pg_major,
            system_identifier: origin.system_identifier,
            pgdata: origin.pgdata,
            pgdata_rel: origin.pgdata_rel,
            layout: origin.layout,
            uid: origin.owner.map(|o| o.0),
            gid: origin.owner.map(|o| o.1),
            file_count: written.file_count,
            total_bytes: written.total_bytes,
            tar_bytes: written.tar_bytes,
            // Of the bytes as stored: set by `Store::commit`.
            compressed_bytes: 0,
            archive_sha256: String::new(),
            archive_file: format!("{name}{}", super::store::ARCHIVE_EXT),
            archive_carries_id: true,
            downtime_seconds: origin.downtime_seconds,
            labels: origin.labels,
            database: origin.database,
            last_verified: None,
            entries: written.entries,
            template: None,
            encryption: None,
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("manifests serialise")
    }

    /// The names under which a manifest file may be found.
    pub fn parse(text: &str) -> anyhow::Result<Manifest> {
        let m: Manifest = serde_json::from_str(text)?;
        if m.format != FORMAT {
            anyhow::bail!(
                "manifest format {} is not supported by this ward (expects {FORMAT})",
                m.format
            );
        }
        m.check_paths()?;
        Ok(m)
    }

    /// Refuses names the manifest gives that ward later joins into paths or
    /// helper scripts: the volume root and PGDATA's place inside it. A store
    /// may hold a manifest written by someone else, so these are checked as
    /// soon as it is read, before anything uses them.
    fn check_paths(&self) -> anyhow::Result<()> {
        if let Layout::Volume { root, .. } = &self.layout
            && !is_plain_name(root)
        {
            anyhow::bail!(
                "the manifest's volume root {root:?} is not a plain directory name (letters, digits, '.', '_', '-')"
            );
        }
        if !is_plain_relative_path(&self.pgdata_rel) {
            anyhow::bail!(
                "the manifest's PGDATA path {:?} is not a plain relative path",
                self.pgdata_rel
            );
        }
        Ok(())
    }
}

/// One path component ward may use unquoted: letters, digits, `.`, `_`, `-`;
/// never empty, `.` or `..`.
pub(crate) fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `""` or plain names joined by `/` (no leading `/`, no `..`).
pub(crate) fn is_plain_relative_path(path: &str) -> bool {
    path.is_empty() || path.split('/').all(is_plain_name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_used_in_paths_must_be_plain() {
        for good in ["data", "postgresql", "pg-18_x.v2"] {
            assert!(is_plain_name(good), "{good}");
        }
        for bad in [
            "",
            ".",
            "..",
            "x;rm -rf $V;#",
            "a/b",
            "x$(id)",
            "a b",
            "\u{1b}[2J",
        ] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
        assert!(is_plain_relative_path(""));
        assert!(is_plain_relative_path("18/docker"));
        assert!(!is_plain_relative_path("/etc"));
        assert!(!is_plain_relative_path("18/../.."));
        assert!(!is_plain_relative_path("18/"));
    }

    #[test]
    fn manifest_round_trips_through_json() {
        let m = Manifest {
            format: FORMAT,
            id: "abc".into(),
            name: "n".into(),
            created_at: Utc::now(),
            ward_version: "0".into(),
            method: "cold".into(),
            source: SourceFacts::default(),
            pg_major: 15,
            system_identifier: Some("1".into()),
            pgdata: None,
            pgdata_rel: String::new(),
            layout: Layout::Volume {
                root: "data".into(),
                data_link: false,
            },
            uid: Some(100),
            gid: Some(102),
            file_count: 1,
            total_bytes: 3,
            tar_bytes: 2048,
            compressed_bytes: 100,
            archive_sha256: "00".into(),
            archive_file: "n.tar.zst".into(),
            archive_carries_id: true,
            downtime_seconds: None,
            labels: BTreeMap::new(),
            database: None,
            last_verified: None,
            entries: vec![Entry {
                path: "data/PG_VERSION".into(),
                kind: Kind::File,
                mode: 0o600,
                size: 3,
                sha256: Some("ab".into()),
                link: None,
            }],
            template: None,
            encryption: None,
        };
        let back = Manifest::parse(&m.to_json()).unwrap();
        assert_eq!(back.entries, m.entries);
        assert_eq!(back.layout, m.layout);
        let mut bad: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
        bad["format"] = 99.into();
        assert!(Manifest::parse(&bad.to_string()).is_err());
    }
}
