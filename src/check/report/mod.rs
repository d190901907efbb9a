//! Findings and the report of a check; its renderings (human, JUnit XML,
//! SARIF and GitHub annotations, Markdown) are one file each beside this
//! one and return strings — `output` prints them (JSON is the report's own
//! `Serialize`).

mod code_scanning;
mod human;
mod junit;
mod markdown;

pub(crate) use code_scanning::{github, sarif};
pub(crate) use human::human;
pub(crate) use junit::junit;
pub(crate) use markdown::markdown;

use serde::Serialize;

use super::apply::FileRun;
use super::rule::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum Level {
    Info,
    Warn,
    Fail,
}

impl Level {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Finding {
    pub level: Level,
    pub rule: Rule,
    pub file: Option<String>,
    pub line: Option<usize>,
    pub statement: Option<String>,
    /// The table (and column) the finding is about, when there is one.
    pub object: Option<String>,
    pub message: String,
    /// The main count (rows, values, columns …) the message is about.
    pub count: Option<i64>,
    /// Counts, sample keys with old → new values, locks and timings.
    pub evidence: Vec<String>,
    pub remedy: String,
    /// The whole output of a failed migration command (JSON only; the
    /// terminal shows the message's first error line).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Set when an accept-file entry takes the finding out of the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<super::accept::Acceptance>,
}

impl Finding {
    pub(crate) fn new(level: Level, rule: Rule, message: impl Into<String>) -> Finding {
        Finding {
            level,
            rule,
            file: None,
            line: None,
            statement: None,
            object: None,
            message: message.into(),
            count: None,
            evidence: Vec::new(),
            remedy: String::new(),
            output: None,
            accepted: None,
        }
    }
    pub(crate) fn count(mut self, n: i64) -> Self {
        self.count = Some(n);
        self
    }
    pub(crate) fn object(mut self, o: impl Into<String>) -> Self {
        self.object = Some(o.into());
        self
    }
    pub(crate) fn at(mut self, file: &str, line: usize, statement: &str) -> Self {
        self.file = Some(file.to_string());
        self.line = Some(line);
        self.statement = Some(short(statement));
        self
    }
    pub(crate) fn file(mut self, file: &str) -> Self {
        self.file = Some(file.to_string());
        self
    }
    pub(crate) fn evidence(mut self, e: impl Into<String>) -> Self {
        self.evidence.push(e.into());
        self
    }
    pub(crate) fn remedy(mut self, r: impl Into<String>) -> Self {
        self.remedy = r.into();
        self
    }
}

/// A statement on one line, shortened for reports.
pub(crate) fn short(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 160 {
        format!("{}…", one.chars().take(159).collect::<String>())
    } else {
        one
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// PASS, WARN or FAIL.
    pub verdict: String,
    /// What the migrations ran against (never with a password).
    pub against: String,
    /// The server the migrations ran on, e.g. "PostgreSQL 15.18": results
    /// (locks, syntax, rewrites) depend on the major version.
    pub server: String,
    pub migrations_dir: Option<String>,
    pub format: Option<String>,
    pub pending: Vec<String>,
    /// `--apply-cmd`: the command that applied the migrations (ward cannot
    /// list them), secrets scrubbed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub applied_by: Option<String>,
    pub runs: Vec<FileRun>,
    /// The passes beside the run, when they ran to the end: the down
    /// round trip, the run under another TimeZone (said, so a clean
    /// report shows they happened).
    pub also_checked: Vec<String>,
    pub findings: Vec<Finding>,
    /// Findings the migrations accept with `-- ward:ignore RULE` comments:
    /// reported, but not in the verdict.
    pub ignored: Vec<Finding>,
    /// Findings an accept-file entry (`ward-accept.toml`) accepts, each with
    /// its reason and entry: reported, but not in the verdict.
    pub accepted: Vec<Finding>,
    pub rows_checked: i64,
    pub tables_checked: usize,
    pub seconds: f64,
}

impl Report {
    pub(crate) fn worst(&self) -> Option<Level> {
        self.findings.iter().map(|f| f.level).max()
    }
    /// "300 rows in 1 table".
    pub(crate) fn checked(&self) -> String {
        let s = |n: i64| if n == 1 { "" } else { "s" };
        format!(
            "{} row{} in {} table{}",
            self.rows_checked,
            s(self.rows_checked),
            self.tables_checked,
            s(self.tables_checked as i64)
        )
    }
    /// "3 migrations pending", or what applied them when ward cannot list
    /// them (`--apply-cmd`).
    pub(crate) fn what_ran(&self) -> String {
        match (&self.applied_by, self.pending.len()) {
            (Some(cmd), 0) => format!("migrations applied by `{cmd}`"),
            (_, n) => format!("{n} migration{} pending", if n == 1 { "" } else { "s" }),
        }
    }
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let n = |l| self.findings.iter().filter(|f| f.level == l).count();
        (n(Level::Fail), n(Level::Warn), n(Level::Info))
    }
}

pub(crate) fn verdict(findings: &[Finding]) -> String {
    match findings.iter().map(|f| f.level).max() {
        Some(Level::Fail) => "FAIL",
        Some(Level::Warn) => "WARN",
        _ => "PASS",
    }
    .to_string()
}
