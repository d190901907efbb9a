//! `blocking-lock` (WARN): a statement takes a lock at or above SHARE on a
//! populated table while it rewrites, scans or indexes it — writes (and for
//! ACCESS EXCLUSIVE, reads) wait for as long as that takes, which grows with
//! the table. `metadata-lock` (INFO): ACCESS EXCLUSIVE held only briefly,
//! for a catalog change.
//!
//! Locks are held until the transaction ends: in a file the runner wraps in
//! one transaction, a backfill `UPDATE` after an `ADD COLUMN` scans the table
//! under the ACCESS EXCLUSIVE lock the `ALTER` took, and a statement's mode
//! is the strongest its transaction holds on the table, not only what the
//! statement adds. The evidence gives the span (from the statement that took
//! the lock to COMMIT) and the fix text fits the statement's kind. Several
//! such statements in one transaction are one finding ([`per_transaction`]):
//! the span, each statement under it, and the tables' sizes.

use std::collections::HashMap;

use crate::check::apply::{FileRun, Mode, StatementTrace};
use crate::check::fingerprint::{Fingerprint, Table};
use crate::check::report::{Finding, Level};
use crate::check::rule::Rule;
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

pub(crate) fn findings(
    runs: &[FileRun],
    pre: &Fingerprint,
    production: Option<&ProductionStats>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for run in runs {
        // Locks last until the transaction ends: a statement works under
        // every lock its file took before it, not only the ones it adds.
        // Table oid → (strongest blocking mode, index of the statement that took it).
        let mut held: HashMap<u32, (usize, usize)> = HashMap::new();
        let in_transaction = run.mode == Mode::Transaction;
        for (index, statement) in run.statements.iter().enumerate() {
            if !in_transaction {
                held.clear();
            }
            if !statement.traced {
                continue;
            }
            for lock in &statement.locks {
                if let Some(rank) = BLOCKING.iter().position(|mode| *mode == lock.mode)
                    && held
                        .get(&lock.oid)
                        .is_none_or(|(strongest, _)| *strongest < rank)
                {
                    held.insert(lock.oid, (rank, index));
                }
            }
            for (oid, table) in &pre.tables {
                if table.rows == 0 {
                    continue;
                }
                let Some(&(rank, taken)) = held.get(oid) else {
                    continue;
                };
                let under = UnderLock {
                    run,
                    index,
                    statement,
                    oid: *oid,
                    table,
                    mode: BLOCKING[rank],
                    taken,
                };
                out.extend(under.finding(production));
            }
        }
    }
    out
}

/// A statement of `run` working while its transaction holds a blocking lock
/// on a populated table.
struct UnderLock<'a> {
    run: &'a FileRun,
    /// The statement's index in `run.statements`.
    index: usize,
    statement: &'a StatementTrace,
    oid: u32,
    table: &'a Table,
    /// The strongest blocking mode held on the table.
    mode: &'static str,
    /// The index of the statement that took it.
    taken: usize,
}

impl UnderLock<'_> {
    /// `blocking-lock` when the statement rewrites, indexes or scans the
    /// table; `metadata-lock` for a brief ACCESS EXCLUSIVE it took itself.
    fn finding(&self, production: Option<&ProductionStats>) -> Option<Finding> {
        let (statement, table, oid, mode) = (self.statement, self.table, &self.oid, self.mode);
        // Whether the lock came with this statement (else an earlier one holds it).
        let new_here = self.taken == self.index;
        let works_on_it = statement.rewritten.contains(oid)
            || statement.scanned.contains(oid)
            || statement.indexed.contains(oid);
        // An earlier lock matters to this statement only if it does work on the table.
        if !(new_here || works_on_it) {
            return None;
        }
        let mut what = Vec::new();
        if statement.rewritten.contains(oid) {
            what.push("rewrites");
        }
        if statement.indexed.contains(oid) {
            what.push("indexes");
        }
        if statement.scanned.contains(oid) && !statement.rewritten.contains(oid) {
            what.push("scans");
        }
        let evidence = self.evidence(new_here);
        if what.is_empty() {
            return (mode == "AccessExclusiveLock" && new_here).then(|| {
                Finding::new(
                    Level::Info,
                    Rule::MetadataLock,
                    format!("brief ACCESS EXCLUSIVE lock on {} (catalog-only change, no rewrite or scan)", table.display()),
                )
                .at(&self.run.file, statement.line, &statement.sql)
                .object(table.display())
                .count(table.rows)
                .evidence(evidence)
                .remedy("run with a short lock_timeout (and retry) so a long-running query does not queue everyone behind it")
            });
        }
        // How long the same lock would be held on the production table.
        let in_production = production
            .and_then(|stats| stats.get(&table.schema, &table.name))
            .map(|prod| {
                let ms = ProductionStats::extrapolate(statement.ms, table.bytes, prod);
                format!(
                    "in production ({} rows, {}): about {} under {mode} (scaled by size from this clone)",
                    prod.rows,
                    human_bytes(prod.bytes),
                    human_ms(ms)
                )
            });
        let mut finding = Finding::new(
            Level::Warn,
            Rule::BlockingLock,
            format!(
                "{} {} {} while holding {mode}",
                st_kind(&what),
                table.display(),
                what_rows(table.rows)
            ),
        )
        .at(&self.run.file, statement.line, &statement.sql)
        .object(table.display())
        .count(table.rows)
        .evidence(evidence)
        .remedy(self.remedy(new_here));
        if let Some(estimate) = in_production {
            finding = finding.evidence(estimate);
        }
        Some(finding)
    }

    /// The lock, the table's size, the time on the clone and, in a
    /// transaction, the span the lock is held for.
    fn evidence(&self, new_here: bool) -> String {
        let (run, table, mode) = (self.run, self.table, self.mode);
        let mut evidence = format!(
            "{mode} on {} ({} rows, {}) for {:.1} ms on this clone; it {}",
            table.display(),
            table.rows,
            human_bytes(table.bytes),
            self.statement.ms,
            blocks(mode)
        );
        if run.mode == Mode::Transaction {
            let span = &run.statements[self.taken..];
            let held_ms: f64 = span.iter().map(|statement| statement.ms).sum();
            evidence += &format!(
                "; taken at line {}{} and held until COMMIT: {:.1} ms, {} statement{} under it",
                run.statements[self.taken].line,
                if new_here {
                    ""
                } else {
                    " by an earlier statement"
                },
                held_ms,
                span.len(),
                if span.len() == 1 { "" } else { "s" }
            );
        }
        evidence
    }

    /// The fix that fits the statement's kind.
    fn remedy(&self, new_here: bool) -> &'static str {
        let kind = self
            .statement
            .sql
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase();
        let sql = self.statement.sql.to_uppercase();
        let adds_unique = kind.starts_with("ALTER TABLE")
            && (sql.contains(" UNIQUE") || sql.contains(" PRIMARY KEY"))
            && sql.contains(" ADD ");
        let writes_rows = ["UPDATE", "DELETE", "INSERT"]
            .iter()
            .any(|k| kind.starts_with(k));
        if kind.starts_with("CREATE INDEX")
            || kind.starts_with("CREATE UNIQUE INDEX")
            || kind.starts_with("REINDEX")
        {
            "CREATE INDEX CONCURRENTLY in its own no-transaction file"
        } else if adds_unique {
            "build the index first with CREATE UNIQUE INDEX CONCURRENTLY in its own no-transaction file, then ADD CONSTRAINT … UNIQUE USING INDEX (a brief lock)"
        } else if self.statement.rewritten.contains(&self.oid) && kind.starts_with("ALTER TABLE") {
            "avoid the rewrite: add the column without a volatile default and backfill in batches, or change the type in a new column"
        } else if !new_here && writes_rows {
            "move this statement to its own migration (its own transaction), so it does not run under the lock an earlier statement took; backfill in batches"
        } else if !new_here {
            "move this statement to its own migration (its own transaction), so it does not run under the lock an earlier statement took"
        } else {
            "add the constraint NOT VALID, then VALIDATE CONSTRAINT in a separate migration (SHARE UPDATE EXCLUSIVE does not block writes)"
        }
    }
}

/// One finding per transaction span: the blocking-lock findings of one
/// file the runner wraps in a transaction (those not ignored) become one,
/// at its first statement, listing every statement that worked under the
/// locks, its table and size — the locks are all held until the same COMMIT.
pub(crate) fn per_transaction(findings: Vec<Finding>, runs: &[FileRun]) -> Vec<Finding> {
    let in_tx = |f: &Finding| {
        f.rule == Rule::BlockingLock
            && runs
                .iter()
                .any(|r| r.mode == Mode::Transaction && Some(&r.file) == f.file.as_ref())
    };
    let mut out: Vec<Finding> = Vec::new();
    let mut groups: Vec<(String, Vec<Finding>)> = Vec::new();
    for f in findings {
        if !in_tx(&f) {
            out.push(f);
            continue;
        }
        let file = f.file.clone().unwrap_or_default();
        match groups.iter_mut().find(|(g, _)| *g == file) {
            Some((_, v)) => v.push(f),
            None => groups.push((file, vec![f])),
        }
    }
    for (file, mut group) in groups {
        if group.len() == 1 {
            out.extend(group);
            continue;
        }
        group.sort_by_key(|f| f.line);
        let run_ms = runs
            .iter()
            .find(|r| r.file == file)
            .map(|r| r.ms)
            .unwrap_or_default();
        let mut tables: Vec<String> = Vec::new();
        for f in &group {
            if let Some(o) = &f.object
                && !tables.contains(o)
            {
                tables.push(o.clone());
            }
        }
        let first = &group[0];
        let mut merged = Finding::new(
            Level::Warn,
            Rule::BlockingLock,
            format!(
                "one transaction holds blocking locks on {} until COMMIT ({:.1} ms on this clone) while {} statements rewrite, scan or index {}",
                tables.join(", "),
                run_ms,
                group.len(),
                if tables.len() == 1 { "it" } else { "them" }
            ),
        )
        .count(group.iter().filter_map(|f| f.count).max().unwrap_or(0));
        merged.file = first.file.clone();
        merged.line = first.line;
        merged.statement = first.statement.clone();
        merged.object = first.object.clone();
        let mut remedies: Vec<String> = Vec::new();
        for f in &group {
            merged = merged.evidence(format!(
                "line {}: {} — {}",
                f.line.unwrap_or(0),
                f.message,
                f.evidence.join("; ")
            ));
            if !remedies.contains(&f.remedy) {
                remedies.push(f.remedy.clone());
            }
        }
        out.push(merged.remedy(remedies.join("; ")));
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.level));
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
