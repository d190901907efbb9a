//! JUnit XML: one test case per finding, failing for FAIL (and WARN under
//! `--strict`), skipped for accepted ones.

use super::{Finding, Level, Report};

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(crate) fn junit(report: &Report, strict: bool) -> String {
    let failing = |finding: &&Finding| {
        finding.level == Level::Fail || (strict && finding.level == Level::Warn)
    };
    let failures = report.findings.iter().filter(failing).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"ward check\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">\n  <testsuite name=\"ward check\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">\n",
        (report.findings.len() + report.accepted.len()).max(1),
        report.seconds,
        (report.findings.len() + report.accepted.len()).max(1),
        report.seconds
    );
    if report.findings.is_empty() && report.accepted.is_empty() {
        out +=
            "    <testcase classname=\"ward.check\" name=\"migrations keep the data intact\"/>\n";
    }
    for finding in &report.findings {
        let name = format!(
            "{} {}{}",
            finding.rule,
            finding.file.as_deref().unwrap_or(""),
            finding.line.map(|l| format!(":{l}")).unwrap_or_default()
        );
        out += &format!(
            "    <testcase classname=\"ward.check.{}\" name=\"{}\"",
            finding.rule,
            xml(name.trim())
        );
        if failing(&finding) {
            let body = std::iter::once(finding.message.clone())
                .chain(finding.evidence.iter().cloned())
                .chain((!finding.remedy.is_empty()).then(|| format!("fix: {}", finding.remedy)))
                .collect::<Vec<_>>()
                .join("\n");
            out += &format!(
                ">\n      <failure type=\"{}\" message=\"{}\">{}</failure>\n    </testcase>\n",
                finding.level.label(),
                xml(&finding.message),
                xml(&body)
            );
        } else {
            out += &format!(
                ">\n      <system-out>{}: {}</system-out>\n    </testcase>\n",
                finding.level.label(),
                xml(&finding.message)
            );
        }
    }
    for finding in &report.accepted {
        let why = finding
            .accepted
            .as_ref()
            .map(|a| format!("accepted: {} ({})", a.reason, a.entry))
            .unwrap_or_default();
        out += &format!(
            "    <testcase classname=\"ward.check.{}\" name=\"{}\">\n      <skipped message=\"{}\"/>\n    </testcase>\n",
            finding.rule,
            xml(format!("{} {}", finding.rule, finding.file.as_deref().unwrap_or("")).trim()),
            xml(&format!(
                "{}: {} — {why}",
                finding.level.label(),
                finding.message
            ))
        );
    }
    out += "  </testsuite>\n</testsuites>\n";
    out
}
