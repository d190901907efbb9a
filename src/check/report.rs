//! Findings and the report of a check, and their renderings (human, JSON,
//! JUnit XML, GitHub annotations, Markdown). Rendering returns strings;
//! `output` prints them.

use serde::Serialize;

use super::apply::FileRun;
use super::rule::Rule;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Info,
    Warn,
    Fail,
}

impl Level {
    pub fn label(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
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
    pub fn new(level: Level, rule: Rule, message: impl Into<String>) -> Finding {
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
    pub fn count(mut self, n: i64) -> Self {
        self.count = Some(n);
        self
    }
    pub fn object(mut self, o: impl Into<String>) -> Self {
        self.object = Some(o.into());
        self
    }
    pub fn at(mut self, file: &str, line: usize, statement: &str) -> Self {
        self.file = Some(file.to_string());
        self.line = Some(line);
        self.statement = Some(short(statement));
        self
    }
    pub fn file(mut self, file: &str) -> Self {
        self.file = Some(file.to_string());
        self
    }
    pub fn evidence(mut self, e: impl Into<String>) -> Self {
        self.evidence.push(e.into());
        self
    }
    pub fn remedy(mut self, r: impl Into<String>) -> Self {
        self.remedy = r.into();
        self
    }
}

/// A statement on one line, shortened for reports.
pub fn short(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 160 {
        format!("{}…", one.chars().take(159).collect::<String>())
    } else {
        one
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
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
    pub runs: Vec<FileRun>,
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
    pub fn worst(&self) -> Option<Level> {
        self.findings.iter().map(|f| f.level).max()
    }
    /// "300 rows in 1 table".
    pub fn checked(&self) -> String {
        let s = |n: i64| if n == 1 { "" } else { "s" };
        format!(
            "{} row{} in {} table{}",
            self.rows_checked,
            s(self.rows_checked),
            self.tables_checked,
            s(self.tables_checked as i64)
        )
    }
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |l| self.findings.iter().filter(|f| f.level == l).count();
        (n(Level::Fail), n(Level::Warn), n(Level::Info))
    }
}

pub fn verdict(findings: &[Finding]) -> String {
    match findings.iter().map(|f| f.level).max() {
        Some(Level::Fail) => "FAIL",
        Some(Level::Warn) => "WARN",
        _ => "PASS",
    }
    .to_string()
}

pub fn human(r: &Report) -> String {
    let mut s = format!(
        "ward check — {} migration{} pending{} against {} on {}\n\n",
        r.pending.len(),
        if r.pending.len() == 1 { "" } else { "s" },
        r.format
            .as_ref()
            .map(|f| format!(" ({f})"))
            .unwrap_or_default(),
        r.against,
        r.server
    );
    for run in &r.runs {
        let status = if run.failure.is_some() {
            "FAILED"
        } else {
            "ok"
        };
        s += &format!(
            "  {:<6} {:<48} {:>9.1} ms  {}\n",
            status,
            run.file,
            run.ms,
            match run.mode {
                super::apply::Mode::Transaction => "transaction",
                super::apply::Mode::SingleQuery => "one query, no transaction",
                super::apply::Mode::Autocommit => "no transaction",
            }
        );
    }
    if !r.runs.is_empty() {
        s.push('\n');
    }
    for level in [Level::Fail, Level::Warn, Level::Info] {
        for f in r.findings.iter().filter(|f| f.level == level) {
            s += &format!("{} [{}] {}\n", f.level.label(), f.rule, f.message);
            if let Some(file) = &f.file {
                s += &format!(
                    "   --> {file}{}\n",
                    f.line.map(|l| format!(":{l}")).unwrap_or_default()
                );
            }
            if let Some(st) = &f.statement {
                s += &format!("    |  {st}\n");
            }
            for e in &f.evidence {
                s += &format!("    = {e}\n");
            }
            if !f.remedy.is_empty() {
                s += &format!("    fix: {}\n", f.remedy);
            }
            s.push('\n');
        }
    }
    for f in &r.ignored {
        s += &format!(
            "ignored {} [{}] at {}{} (ward:ignore)\n",
            f.level.label(),
            f.rule,
            f.file.as_deref().unwrap_or(""),
            f.line.map(|l| format!(":{l}")).unwrap_or_default()
        );
    }
    for f in &r.accepted {
        s += &format!(
            "accepted {} [{}] {}{}{}\n",
            f.level.label(),
            f.rule,
            f.message,
            f.file
                .as_ref()
                .map(|file| format!(
                    " at {file}{}",
                    f.line.map(|l| format!(":{l}")).unwrap_or_default()
                ))
                .unwrap_or_default(),
            f.accepted
                .as_ref()
                .map(|a| format!(" — {} ({})", a.reason, a.entry))
                .unwrap_or_default()
        );
    }
    if !r.ignored.is_empty() || !r.accepted.is_empty() {
        s.push('\n');
    }
    let (fail, warn, info) = r.counts();
    s += &format!(
        "{}: {fail} FAIL, {warn} WARN, {info} INFO · {} checked · {:.2} s\n",
        r.verdict,
        r.checked(),
        r.seconds
    );
    s
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn junit(r: &Report, strict: bool) -> String {
    let failing = |f: &&Finding| f.level == Level::Fail || (strict && f.level == Level::Warn);
    let failures = r.findings.iter().filter(failing).count();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"ward check\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">\n  <testsuite name=\"ward check\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">\n",
        (r.findings.len() + r.accepted.len()).max(1),
        r.seconds,
        (r.findings.len() + r.accepted.len()).max(1),
        r.seconds
    );
    if r.findings.is_empty() && r.accepted.is_empty() {
        s += "    <testcase classname=\"ward.check\" name=\"migrations keep the data intact\"/>\n";
    }
    for f in &r.findings {
        let name = format!(
            "{} {}{}",
            f.rule,
            f.file.as_deref().unwrap_or(""),
            f.line.map(|l| format!(":{l}")).unwrap_or_default()
        );
        s += &format!(
            "    <testcase classname=\"ward.check.{}\" name=\"{}\"",
            f.rule,
            xml(name.trim())
        );
        if failing(&f) {
            let body = std::iter::once(f.message.clone())
                .chain(f.evidence.iter().cloned())
                .chain((!f.remedy.is_empty()).then(|| format!("fix: {}", f.remedy)))
                .collect::<Vec<_>>()
                .join("\n");
            s += &format!(
                ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
                f.level.label(),
                xml(&f.message),
                xml(&body)
            );
        } else {
            s += &format!(
                ">\n      <system-out>{}: {}</system-out>\n    </testcase>\n",
                f.level.label(),
                xml(&f.message)
            );
        }
    }
    for f in &r.accepted {
        let why = f
            .accepted
            .as_ref()
            .map(|a| format!("accepted: {} ({})", a.reason, a.entry))
            .unwrap_or_default();
        s += &format!(
            "    <testcase classname=\"ward.check.{}\" name=\"{}\">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
            f.rule,
            xml(format!("{} {}", f.rule, f.file.as_deref().unwrap_or("")).trim()),
            xml(&format!("{}: {} — {why}", f.level.label(), f.message))
        );
    }
    s += "  </testsuite>\n</testsuites>\n";
    s
}

fn gh_escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_escape(s).replace(':', "%3A").replace(',', "%2C")
}

/// GitHub workflow commands: one annotation per finding.
/// A finding's file as a path from where ward ran: migration files are
/// named from their directory's own name (`migrations/1_x.sql`), which sits
/// at `dir`; other files (the seed spec) are already such paths.
fn path_in(file: &str, dir: Option<&str>) -> String {
    let Some(d) = dir else {
        return file.to_string();
    };
    let name = std::path::Path::new(d)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    match file.split_once('/') {
        Some((first, rest)) if first == name => format!("{}/{rest}", d.trim_end_matches('/')),
        _ => file.to_string(),
    }
}

/// SARIF's name for a level.
fn sarif_level(level: Level) -> &'static str {
    match level {
        Level::Fail => "error",
        Level::Warn => "warning",
        Level::Info => "note",
    }
}

/// SARIF 2.1.0, for code-scanning tools (GitHub's upload-sarif among them).
pub fn sarif(r: &Report, dir: Option<&str>) -> String {
    let mut rules: Vec<Rule> = r
        .findings
        .iter()
        .chain(&r.ignored)
        .chain(&r.accepted)
        .map(|f| f.rule)
        .collect();
    rules.sort_unstable();
    rules.dedup();
    let results: Vec<serde_json::Value> = r
        .findings
        .iter()
        .map(|f| (f, false))
        .chain(r.ignored.iter().map(|f| (f, true)))
        .chain(r.accepted.iter().map(|f| (f, true)))
        .map(|(f, ignored)| {
            let mut text = f.message.clone();
            for e in &f.evidence {
                text += &format!("\n{e}");
            }
            if !f.remedy.is_empty() {
                text += &format!("\nfix: {}", f.remedy);
            }
            let mut v = serde_json::json!({
                "ruleId": f.rule,
                "level": sarif_level(f.level),
                "message": { "text": text },
            });
            if let Some(file) = &f.file {
                let mut loc = serde_json::json!({
                    "physicalLocation": { "artifactLocation": { "uri": path_in(file, dir) } }
                });
                if let Some(l) = f.line {
                    loc["physicalLocation"]["region"] = serde_json::json!({ "startLine": l });
                }
                v["locations"] = serde_json::json!([loc]);
            }
            match (&f.accepted, ignored) {
                (Some(a), _) => {
                    v["suppressions"] = serde_json::json!([{
                        "kind": "external",
                        "justification": format!("{} ({})", a.reason, a.entry),
                    }]);
                }
                (None, true) => {
                    v["suppressions"] = serde_json::json!([{ "kind": "inSource" }]);
                }
                (None, false) => {}
            }
            v
        })
        .collect();
    let doc = serde_json::json!({
        "version": "2.1.0",
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "runs": [{
            "tool": { "driver": {
                "name": "ward",
                "version": env!("CARGO_PKG_VERSION"),
                "rules": rules.iter().map(|rule| serde_json::json!({
                    "id": rule.name(),
                    "shortDescription": { "text": rule.help() },
                    "defaultConfiguration": { "level": sarif_level(rule.level()) },
                })).collect::<Vec<_>>(),
            }},
            "results": results,
        }],
    });
    serde_json::to_string_pretty(&doc).expect("SARIF serialises") + "\n"
}

pub fn github(r: &Report, dir: Option<&str>) -> String {
    let mut s = String::new();
    for f in &r.findings {
        let cmd = match f.level {
            Level::Fail => "error",
            Level::Warn => "warning",
            Level::Info => "notice",
        };
        let mut props = Vec::new();
        if let Some(file) = &f.file {
            props.push(format!("file={}", gh_prop(&path_in(file, dir))));
            if let Some(l) = f.line {
                props.push(format!("line={l}"));
            }
        }
        props.push(format!("title={}", gh_prop(&format!("ward {}", f.rule))));
        let mut body = f.message.clone();
        for e in &f.evidence {
            body += &format!("\n{e}");
        }
        if !f.remedy.is_empty() {
            body += &format!("\nfix: {}", f.remedy);
        }
        s += &format!("::{cmd} {}::{}\n", props.join(","), gh_escape(&body));
    }
    for f in &r.accepted {
        let mut props = Vec::new();
        if let Some(file) = &f.file {
            props.push(format!("file={}", gh_prop(&path_in(file, dir))));
            if let Some(l) = f.line {
                props.push(format!("line={l}"));
            }
        }
        props.push(format!(
            "title={}",
            gh_prop(&format!("ward {} (accepted)", f.rule))
        ));
        let why = f
            .accepted
            .as_ref()
            .map(|a| format!("\naccepted: {} ({})", a.reason, a.entry))
            .unwrap_or_default();
        s += &format!(
            "::notice {}::{}\n",
            props.join(","),
            gh_escape(&format!("{}{why}", f.message))
        );
    }
    let (fail, warn, info) = r.counts();
    s += &format!(
        "ward check: {} ({fail} FAIL, {warn} WARN, {info} INFO)\n",
        r.verdict
    );
    s
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown PR comment.
pub fn markdown(r: &Report) -> String {
    let icon = match r.verdict.as_str() {
        "FAIL" => "❌",
        "WARN" => "⚠️",
        _ => "✅",
    };
    let (fail, warn, info) = r.counts();
    let mut s = format!(
        "## {icon} ward check: {}\n\n{} pending migration{} against {} on {} · {fail} FAIL, {warn} WARN, {info} INFO · {} checked\n\n",
        r.verdict,
        r.pending.len(),
        if r.pending.len() == 1 { "" } else { "s" },
        r.against,
        r.server,
        r.checked()
    );
    if !r.ignored.is_empty() {
        s += &format!(
            "{} finding{} accepted by `ward:ignore` comments: {}\n\n",
            r.ignored.len(),
            if r.ignored.len() == 1 { "" } else { "s" },
            r.ignored
                .iter()
                .map(|f| format!("`{}`", f.rule))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !r.accepted.is_empty() {
        s += "Accepted by the accept file (not in the verdict):\n\n";
        for f in &r.accepted {
            let (reason, entry) = f
                .accepted
                .as_ref()
                .map(|a| (a.reason.as_str(), a.entry.as_str()))
                .unwrap_or_default();
            s += &format!(
                "- {} `{}` {}{} — {} (`{entry}`)\n",
                f.level.label(),
                f.rule,
                md_cell(&f.message),
                f.file
                    .as_ref()
                    .map(|file| format!(" in `{file}`"))
                    .unwrap_or_default(),
                md_cell(reason)
            );
        }
        s.push('\n');
    }
    if !r.findings.is_empty() {
        s += "| level | rule | where | finding | fix |\n|---|---|---|---|---|\n";
        for f in &r.findings {
            let at = f
                .file
                .as_ref()
                .map(|file| {
                    format!(
                        "`{file}{}`",
                        f.line.map(|l| format!(":{l}")).unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            let mut finding = md_cell(&f.message);
            for e in &f.evidence {
                finding += &format!("<br>{}", md_cell(e));
            }
            s += &format!(
                "| {} | `{}` | {at} | {finding} | {} |\n",
                f.level.label(),
                f.rule,
                md_cell(&f.remedy)
            );
        }
        s.push('\n');
    }
    let traced: Vec<_> = r
        .runs
        .iter()
        .flat_map(|run| run.statements.iter().map(move |st| (run, st)))
        .filter(|(_, st)| !st.locks.is_empty())
        .collect();
    if !traced.is_empty() {
        s += "<details><summary>Locks per statement</summary>\n\n| file:line | statement | locks | ms |\n|---|---|---|---|\n";
        for (run, st) in traced {
            let locks = st
                .locks
                .iter()
                .map(|l| format!("{} {}", l.table, l.mode))
                .collect::<Vec<_>>()
                .join(", ");
            s += &format!(
                "| `{}:{}` | `{}` | {} | {:.1} |\n",
                run.file,
                st.line,
                md_cell(&short(&st.sql)),
                md_cell(&locks),
                st.ms
            );
        }
        s += "\n</details>\n";
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn migration_files_are_placed_under_their_directory() {
        let d = Some("db/migrations");
        assert_eq!(
            super::path_in("migrations/1_x.sql", d),
            "db/migrations/1_x.sql"
        );
        assert_eq!(super::path_in("seeds/spec.toml", d), "seeds/spec.toml");
        assert_eq!(
            super::path_in("migrations/1_x.sql", None),
            "migrations/1_x.sql"
        );
    }
}
