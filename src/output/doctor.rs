//! The report of `ward doctor`.

use super::{json, out};
use crate::doctor;

pub(crate) fn doctor_report(report: &doctor::Report, as_json: bool) {
    if as_json {
        return json(report);
    }
    let mut text = String::new();
    for c in &report.checks {
        let mark = match c.status {
            doctor::Status::Ok => "ok     ",
            doctor::Status::Skipped => "skipped",
            doctor::Status::Missing => "MISSING",
        };
        text += &format!("{mark}  {:<26} {}\n", c.name, c.detail);
        if let Some(fix) = &c.fix {
            text += &format!("         {:<26} fix: {fix}\n", "");
        }
    }
    out(&text);
}
