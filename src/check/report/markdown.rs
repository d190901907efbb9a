//! A Markdown PR comment: the verdict, accepted findings, a table of
//! findings and, folded, the locks each statement took.

use super::{Report, short};

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown PR comment.
pub(crate) fn markdown(report: &Report) -> String {
    let icon = match report.verdict.as_str() {
        "FAIL" => "❌",
        "WARN" => "⚠️",
        _ => "✅",
    };
    let (fail, warn, info) = report.counts();
    let mut out = format!(
        "## {icon} ward check: {}\n\n{} against {} on {} · {fail} FAIL, {warn} WARN, {info} INFO · {} checked\n\n",
        report.verdict,
        match (&report.applied_by, report.pending.len()) {
            (Some(cmd), 0) => format!("Migrations applied by `{cmd}`"),
            (_, n) => format!("{n} pending migration{}", if n == 1 { "" } else { "s" }),
        },
        report.against,
        report.server,
        report.checked()
    );
    if !report.ignored.is_empty() {
        out += &format!(
            "{} finding{} accepted by `ward:ignore` comments: {}\n\n",
            report.ignored.len(),
            if report.ignored.len() == 1 { "" } else { "s" },
            report
                .ignored
                .iter()
                .map(|finding| format!("`{}`", finding.rule))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !report.accepted.is_empty() {
        out += "Accepted by the accept file (not in the verdict):\n\n";
        for finding in &report.accepted {
            let (reason, entry) = finding
                .accepted
                .as_ref()
                .map(|a| (a.reason.as_str(), a.entry.as_str()))
                .unwrap_or_default();
            out += &format!(
                "- {} `{}` {}{} — {} (`{entry}`)\n",
                finding.level.label(),
                finding.rule,
                md_cell(&finding.message),
                finding
                    .file
                    .as_ref()
                    .map(|file| format!(" in `{file}`"))
                    .unwrap_or_default(),
                md_cell(reason)
            );
        }
        out.push('\n');
    }
    if !report.findings.is_empty() {
        out += "| level | rule | where | finding | fix |\n|---|---|---|---|---|\n";
        for finding in &report.findings {
            let at = finding
                .file
                .as_ref()
                .map(|file| {
                    format!(
                        "`{file}{}`",
                        finding.line.map(|l| format!(":{l}")).unwrap_or_default()
                    )
                })
                .unwrap_or_default();
            let mut cell = md_cell(&finding.message);
            for e in &finding.evidence {
                cell += &format!("<br>{}", md_cell(e));
            }
            out += &format!(
                "| {} | `{}` | {at} | {cell} | {} |\n",
                finding.level.label(),
                finding.rule,
                md_cell(&finding.remedy)
            );
        }
        out.push('\n');
    }
    let traced: Vec<_> = report
        .runs
        .iter()
        .flat_map(|run| run.statements.iter().map(move |st| (run, st)))
        .filter(|(_, st)| !st.locks.is_empty())
        .collect();
    if !traced.is_empty() {
        out += "<details><summary>Locks per statement</summary>\n\n| file:line | statement | locks | ms |\n|---|---|---|---|\n";
        for (run, st) in traced {
            let locks = st
                .locks
                .iter()
                .map(|l| format!("{} {}", l.table, l.mode))
                .collect::<Vec<_>>()
                .join(", ");
            out += &format!(
                "| `{}:{}` | `{}` | {} | {:.1} |\n",
                run.file,
                st.line,
                md_cell(&short(&st.sql)),
                md_cell(&locks),
                st.ms
            );
        }
        out += "\n</details>\n";
    }
    out
}
