//! Production sizes, to say how long a lock measured on a small seeded clone
//! would be held in production. Only counts ever come from production —
//! row estimates and byte sizes from the catalog, never a row of data — so a
//! stats file can be committed and a CI job needs no production access.
//!
//! The file is JSON: `{"public.appointments": {"rows": 12000000, "bytes":
//! 2400000000}, …}`; `--production-stats URL` reads the same from a
//! database's catalog (pg_class, read-only).

use std::collections::HashMap;
use std::path::Path;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::error::UsageError;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub(crate) struct TableStats {
    pub rows: i64,
    pub bytes: i64,
}

/// Table sizes by `schema.table`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(transparent)]
pub(crate) struct ProductionStats(pub HashMap<String, TableStats>);

/// The catalog query behind `--production-stats URL` (and the README's psql one-liner).
/// A partitioned table counts its partitions (its own size is zero).
pub(crate) const QUERY: &str = "SELECT n.nspname || '.' || c.relname, \
     CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(greatest(p.reltuples, 0)), 0)::bigint \
        FROM pg_partition_tree(c.oid) t JOIN pg_class p ON p.oid = t.relid WHERE t.isleaf) \
        ELSE greatest(c.reltuples, 0)::bigint END, \
     CASE WHEN c.relkind = 'p' THEN (SELECT coalesce(sum(pg_total_relation_size(t.relid)), 0)::bigint \
        FROM pg_partition_tree(c.oid) t WHERE t.isleaf) \
        ELSE pg_total_relation_size(c.oid) END \
     FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition \
     AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'";

impl ProductionStats {
    /// From a JSON file, or from the catalog of the database at a URL.
    pub(crate) async fn load(from: &str) -> Result<ProductionStats> {
        if from.starts_with("postgres://") || from.starts_with("postgresql://") {
            // ward speaks to Postgres without TLS: fine on this machine, not across a network.
            let cfg = crate::pg::parse_url(from)?;
            let local = cfg.get_hosts().iter().all(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => {
                    matches!(h.as_str(), "localhost" | "127.0.0.1" | "::1")
                }
                _ => true,
            });
            if !local {
                return Err(UsageError(format!(
                    "--production-stats reads a URL only on this machine (ward connects without TLS) — write the \
                     stats of {} to a file with psql (see README \"Production sizes\") and pass the file",
                    crate::pg::describe(&cfg)
                ))
                .into());
            }
            let client = crate::pg::connect(from).await?;
            let rows = client.query(QUERY, &[]).await?;
            return Ok(ProductionStats(
                rows.iter()
                    .map(|r| {
                        (
                            r.get::<_, String>(0),
                            TableStats {
                                rows: r.get(1),
                                bytes: r.get(2),
                            },
                        )
                    })
                    .collect(),
            ));
        }
        Self::parse(Path::new(from))
    }

    fn parse(path: &Path) -> Result<ProductionStats> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            UsageError(format!(
                "cannot read the production stats {}: {e} — check the path (see README \"Production sizes\")",
                path.display()
            ))
        })?;
        serde_json::from_str(&text).map_err(|e| {
            UsageError(format!(
                "{} is not a production stats file ({e}) — expected {{\"schema.table\": {{\"rows\": N, \"bytes\": N}}, …}}",
                path.display()
            ))
            .into()
        })
    }

    pub(crate) fn get(&self, schema: &str, table: &str) -> Option<TableStats> {
        self.0.get(&format!("{schema}.{table}")).copied()
    }

    /// How long `ms`, measured on a table of `bytes` here, would take on
    /// the production table: linear in size, as rewrites and scans are — a
    /// rough estimate (sorts grow a little faster; on a tiny clone the fixed
    /// cost of a statement is scaled up too).
    pub(crate) fn extrapolate(ms: f64, bytes: i64, prod: TableStats) -> f64 {
        if bytes <= 0 {
            return ms;
        }
        ms * (prod.bytes as f64 / bytes as f64).max(1.0)
    }
}

/// A duration for people: "850 ms", "12 s", "4.2 min", "1.5 h".
pub(crate) fn human_ms(ms: f64) -> String {
    if ms < 1000.0 {
        format!("{ms:.0} ms")
    } else if ms < 60_000.0 {
        format!("{:.0} s", ms / 1000.0)
    } else if ms < 3_600_000.0 {
        format!("{:.1} min", ms / 60_000.0)
    } else {
        format!("{:.1} h", ms / 3_600_000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_parse_and_times_scale_with_size() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("stats.json");
        std::fs::write(
            &p,
            r#"{"public.appointments": {"rows": 12000000, "bytes": 2400000000}}"#,
        )
        .unwrap();
        let s = ProductionStats::parse(&p).unwrap();
        let a = s.get("public", "appointments").unwrap();
        assert_eq!(a.rows, 12_000_000);
        assert!(s.get("public", "patients").is_none());
        // 3 ms on 2.4 MB → 3 s on 2.4 GB.
        assert_eq!(ProductionStats::extrapolate(3.0, 2_400_000, a), 3000.0);
        // Never faster than measured.
        assert_eq!(ProductionStats::extrapolate(3.0, i64::MAX, a), 3.0,);
        assert_eq!(human_ms(3000.0), "3 s");
        assert_eq!(human_ms(252_000.0), "4.2 min");
        std::fs::write(&p, "[1]").unwrap();
        assert!(ProductionStats::parse(&p).is_err());
    }
}
