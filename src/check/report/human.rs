//! The report for people on a terminal: each file's run, then the findings
//! by level with their statement, evidence and fix, then the verdict line.

use super::{Level, Report};
use crate::check::apply::Mode;

pub(crate) fn human(report: &Report) -> String {
    let mut out = format!(
        "ward check — {}{} against {} on {}\n\n",
        report.what_ran(),
        report
            .format
            .as_ref()
            .map(|runner| format!(" ({runner})"))
            .unwrap_or_default(),
        report.against,
        report.server
    );
    for run in &report.runs {
        let status = if run.failure.is_some() {
            "FAILED"
        } else {
            "ok"
        };
        out += &format!(
            "  {:<6} {:<48} {:>9.1} ms  {}\n",
            status,
            run.file,
            run.ms,
            match run.mode {
                Mode::Transaction => "transaction",
                Mode::SingleQuery => "one query, no transaction",
                Mode::Autocommit => "no transaction",
            }
        );
    }
    if !report.runs.is_empty() {
        out.push('\n');
    }
    for level in [Level::Fail, Level::Warn, Level::Info] {
        for finding in report
            .findings
            .iter()
            .filter(|finding| finding.level == level)
        {
            out += &format!(
                "{} [{}] {}\n",
                finding.level.label(),
                finding.rule,
                finding.message
            );
            if let Some(file) = &finding.file {
                out += &format!(
                    "   --> {file}{}\n",
                    finding.line.map(|l| format!(":{l}")).unwrap_or_default()
                );
            }
            if let Some(st) = &finding.statement {
                out += &format!("    |  {st}\n");
            }
            for e in &finding.evidence {
                out += &format!("    = {e}\n");
            }
            if !finding.remedy.is_empty() {
                out += &format!("    fix: {}\n", finding.remedy);
            }
            out.push('\n');
        }
    }
    for finding in &report.ignored {
        out += &format!(
            "ignored {} [{}] at {}{} (ward:ignore)\n",
            finding.level.label(),
            finding.rule,
            finding.file.as_deref().unwrap_or(""),
            finding.line.map(|l| format!(":{l}")).unwrap_or_default()
        );
    }
    for finding in &report.accepted {
        out += &format!(
            "accepted {} [{}] {}{}{}\n",
            finding.level.label(),
            finding.rule,
            finding.message,
            finding
                .file
                .as_ref()
                .map(|file| format!(
                    " at {file}{}",
                    finding.line.map(|l| format!(":{l}")).unwrap_or_default()
                ))
                .unwrap_or_default(),
            finding
                .accepted
                .as_ref()
                .map(|a| format!(" — {} ({})", a.reason, a.entry))
                .unwrap_or_default()
        );
    }
    if !report.ignored.is_empty() || !report.accepted.is_empty() {
        out.push('\n');
    }
    if !report.also_checked.is_empty() {
        out += &format!("also checked: {}\n\n", report.also_checked.join("; "));
    }
    let (fail, warn, info) = report.counts();
    out += &format!(
        "{}: {fail} FAIL, {warn} WARN, {info} INFO · {} checked · {:.2} s\n",
        report.verdict,
        report.checked(),
        report.seconds
    );
    out
}
