//! The reports of `ward backup` and `ward backup --print-systemd`.

use super::{json, note, out};
use crate::units::{human_bytes, thousands};

/// `ward backup`: the notes (stderr), then the report — a table for people,
/// the whole report with `--json`.
pub(crate) fn backup_report(report: &crate::backup::Report, as_json: bool) {
    use crate::backup::Status;
    report.notes.iter().for_each(|n| note(n));
    for s in report.signals.iter().filter(|s| !s.ok) {
        note(&format!(
            "warning: the {} to {} failed ({}); the backup's own result is unchanged",
            s.what,
            s.to,
            s.error.as_deref().unwrap_or("?")
        ));
    }
    if as_json {
        return json(report);
    }
    let head = match report.status {
        Status::Ok => "OK",
        Status::Partial => "PARTIAL (a store failed)",
        Status::Failed => "FAILED",
    };
    let mut text = format!(
        "Backup {} of {}: {head} in {:.1} s\n",
        report.snapshot.as_deref().unwrap_or("(none)"),
        report.target,
        report.seconds
    );
    if let Some(e) = &report.error {
        text += &format!("  error: {e}\n");
    }
    if let Some(c) = &report.create {
        text += &format!(
            "  created {:?} in {:.1} s: {} files, {} → {}{}\n",
            report.method,
            c.seconds,
            thousands(c.file_count),
            human_bytes(c.total_bytes),
            human_bytes(c.compressed_bytes),
            c.downtime_seconds
                .map(|d| format!(", downtime {d:.1} s"))
                .unwrap_or_else(|| ", no downtime".into())
        );
    }
    for st in &report.stores {
        let what = if st.ok {
            let mut w = format!("{} and verified", st.arrived.unwrap_or("?"),);
            if let Some(c) = st.copy_seconds {
                w += &format!(" (copy {c:.1} s)");
            }
            if !st.pruned.is_empty() || !st.kept.is_empty() {
                w += &format!(
                    "; pruned {}, kept {} backup(s)",
                    st.pruned.len(),
                    st.kept.len()
                );
            }
            w
        } else if st.failed_step == Some("skipped") {
            format!("skipped: {}", st.error.as_deref().unwrap_or("?"))
        } else {
            format!(
                "FAILED at {}: {}",
                st.failed_step.unwrap_or("?"),
                st.error.as_deref().unwrap_or("?")
            )
        };
        text += &format!("  store {:<32} {what}\n", st.store);
    }
    for sig in &report.signals {
        text += &format!(
            "  {:<12} {:<28} {}\n",
            sig.what,
            sig.to,
            if sig.ok { "sent" } else { "NOT delivered" }
        );
    }
    out(&text);
}

/// `ward backup --print-systemd`: the units, or where they were written.
pub(crate) fn backup_units(
    u: &crate::backup::systemd::Units,
    written: Option<&[std::path::PathBuf]>,
    as_json: bool,
) {
    if as_json {
        return json(&serde_json::json!({
            "service": u.service,
            "timer": u.timer,
            "written": written,
        }));
    }
    match written {
        Some(paths) => {
            let mut text = String::new();
            for p in paths {
                text += &format!("Wrote {}\n", p.display());
            }
            text += "Then: systemctl daemon-reload && systemctl enable --now ward-backup.timer\n";
            out(&text);
        }
        None => out(&format!(
            "# ward-backup.service\n{}\n# ward-backup.timer\n{}",
            u.service, u.timer
        )),
    }
}
