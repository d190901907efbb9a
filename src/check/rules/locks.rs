//! `blocking-lock` (WARN): a statement takes a lock at or above SHARE on a
//! populated table while it rewrites, scans or indexes it — writes (and for
//! ACCESS EXCLUSIVE, reads) wait for as long as that takes, which grows with
//! the table. `metadata-lock` (INFO): ACCESS EXCLUSIVE held only briefly,
//! for a catalog change.

use crate::check::apply::FileRun;
use crate::check::fingerprint::Fingerprint;
use crate::check::report::{Finding, Level};
use crate::check::stats::{ProductionStats, human_ms};

const BLOCKING: &[&str] = &[
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
];

fn blocks(mode: &str) -> &'static str {
    match mode {
        "AccessExclusiveLock" => "blocks reads and writes",
        _ => "blocks writes",
    }
}

fn human_bytes(b: i64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

pub fn findings(
    runs: &[FileRun],
    pre: &Fingerprint,
    production: Option<&ProductionStats>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for run in runs {
        for st in &run.statements {
            if !st.traced {
                continue;
            }
            // Strongest new lock per table.
            let mut seen: Vec<u32> = Vec::new();
            for (oid, t) in &pre.tables {
                if t.rows == 0 || seen.contains(oid) {
                    continue;
                }
                let mode = BLOCKING
                    .iter()
                    .rev()
                    .find(|m| st.locks.iter().any(|l| l.oid == *oid && l.mode == **m));
                let Some(mode) = mode else { continue };
                seen.push(*oid);
                let mut what = Vec::new();
                if st.rewritten.contains(oid) {
                    what.push("rewrites");
                }
                if st.indexed.contains(oid) {
                    what.push("indexes");
                }
                if st.scanned.contains(oid) && !st.rewritten.contains(oid) {
                    what.push("scans");
                }
                let evidence = format!(
                    "{mode} on {} ({} rows, {}) for {:.1} ms on this clone; it {}",
                    t.display(),
                    t.rows,
                    human_bytes(t.bytes),
                    st.ms,
                    blocks(mode)
                );
                if what.is_empty() {
                    if *mode == "AccessExclusiveLock" {
                        out.push(
                            Finding::new(
                                Level::Info,
                                "metadata-lock",
                                format!("brief ACCESS EXCLUSIVE lock on {} (catalog-only change, no rewrite or scan)", t.display()),
                            )
                            .at(&run.file, st.line, &st.sql)
                            .object(t.display())
                            .count(t.rows)
                            .evidence(evidence)
                            .remedy("run with a short lock_timeout (and retry) so a long-running query does not queue everyone behind it"),
                        );
                    }
                    continue;
                }
                // How long the same lock would be held on the production table.
                let in_production = production
                    .and_then(|p| p.get(&t.schema, &t.name))
                    .map(|prod| {
                        let ms = ProductionStats::extrapolate(st.ms, t.bytes, prod);
                        format!(
                            "in production ({} rows, {}): about {} under {mode} (scaled by size from this clone)",
                            prod.rows,
                            human_bytes(prod.bytes),
                            human_ms(ms)
                        )
                    });
                let remedy = if st.indexed.contains(oid) {
                    "CREATE INDEX CONCURRENTLY in its own no-transaction file"
                } else if st.rewritten.contains(oid) {
                    "avoid the rewrite: add the column without a volatile default and backfill in batches, or change the type in a new column"
                } else {
                    "add the constraint NOT VALID, then VALIDATE CONSTRAINT in a separate migration (SHARE UPDATE EXCLUSIVE does not block writes)"
                };
                let mut f = Finding::new(
                    Level::Warn,
                    "blocking-lock",
                    format!(
                        "{} {} {} while holding {mode}",
                        st_kind(&what),
                        t.display(),
                        what_rows(t.rows)
                    ),
                )
                .at(&run.file, st.line, &st.sql)
                .object(t.display())
                .count(t.rows)
                .evidence(evidence)
                .remedy(remedy);
                if let Some(e) = in_production {
                    f = f.evidence(e);
                }
                out.push(f);
            }
        }
    }
    out
}

fn st_kind(what: &[&str]) -> String {
    let mut s = what.join(" and ");
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + &s[1..];
    }
    s
}

fn what_rows(rows: i64) -> String {
    format!("({rows} rows)")
}
