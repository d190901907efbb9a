//! The renderings code hosts read: SARIF 2.1.0 for code-scanning tools and
//! GitHub workflow commands (annotations). Both place a finding's file under
//! the migrations directory as given, so they share [`path_in`].

use super::{Finding, Level, Report};
use crate::check::rule::Rule;

fn gh_escape(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

fn gh_prop(s: &str) -> String {
    gh_escape(s).replace(':', "%3A").replace(',', "%2C")
}

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
pub(crate) fn sarif(report: &Report, dir: Option<&str>) -> String {
    let mut rules: Vec<Rule> = report
        .findings
        .iter()
        .chain(&report.ignored)
        .chain(&report.accepted)
        .map(|finding| finding.rule)
        .collect();
    rules.sort_unstable();
    rules.dedup();
    let results: Vec<serde_json::Value> = report
        .findings
        .iter()
        .map(|finding| (finding, false))
        .chain(report.ignored.iter().map(|finding| (finding, true)))
        .chain(report.accepted.iter().map(|finding| (finding, true)))
        .map(|(finding, ignored)| {
            let mut text = finding.message.clone();
            for e in &finding.evidence {
                text += &format!("\n{e}");
            }
            if !finding.remedy.is_empty() {
                text += &format!("\nfix: {}", finding.remedy);
            }
            let mut v = serde_json::json!({
                "ruleId": finding.rule,
                "level": sarif_level(finding.level),
                "message": { "text": text },
            });
            if let Some(file) = &finding.file {
                let mut loc = serde_json::json!({
                    "physicalLocation": { "artifactLocation": { "uri": path_in(file, dir) } }
                });
                if let Some(l) = finding.line {
                    loc["physicalLocation"]["region"] = serde_json::json!({ "startLine": l });
                }
                v["locations"] = serde_json::json!([loc]);
            }
            match (&finding.accepted, ignored) {
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

/// A workflow command's properties: the finding's file and line, and `title`.
fn annotation_props(finding: &Finding, dir: Option<&str>, title: &str) -> String {
    let mut props = Vec::new();
    if let Some(file) = &finding.file {
        props.push(format!("file={}", gh_prop(&path_in(file, dir))));
        if let Some(line) = finding.line {
            props.push(format!("line={line}"));
        }
    }
    props.push(format!("title={}", gh_prop(title)));
    props.join(",")
}

/// GitHub workflow commands: one annotation per finding.
pub(crate) fn github(report: &Report, dir: Option<&str>) -> String {
    let mut out = String::new();
    for finding in &report.findings {
        let cmd = match finding.level {
            Level::Fail => "error",
            Level::Warn => "warning",
            Level::Info => "notice",
        };
        let props = annotation_props(finding, dir, &format!("ward {}", finding.rule));
        let mut body = finding.message.clone();
        for e in &finding.evidence {
            body += &format!("\n{e}");
        }
        if !finding.remedy.is_empty() {
            body += &format!("\nfix: {}", finding.remedy);
        }
        out += &format!("::{cmd} {props}::{}\n", gh_escape(&body));
    }
    for finding in &report.accepted {
        let title = format!("ward {} (accepted)", finding.rule);
        let props = annotation_props(finding, dir, &title);
        let why = finding
            .accepted
            .as_ref()
            .map(|a| format!("\naccepted: {} ({})", a.reason, a.entry))
            .unwrap_or_default();
        out += &format!(
            "::notice {props}::{}\n",
            gh_escape(&format!("{}{why}", finding.message))
        );
    }
    let (fail, warn, info) = report.counts();
    out += &format!(
        "ward check: {} ({fail} FAIL, {warn} WARN, {info} INFO)\n",
        report.verdict
    );
    out
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
