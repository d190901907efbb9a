//! The report of `ward doctor`.

use super::{json, out};
use crate::doctor;

pub fn doctor_report(r: &doctor::Report, as_json: bool) {
    if as_json {
        return json(r);
    }
    let mut s = String::new();
    for c in &r.checks {
        let mark = match c.status {
            doctor::Status::Ok => "ok     ",
            doctor::Status::Skipped => "skipped",
            doctor::Status::Missing => "MISSING",
        };
        s += &format!("{mark}  {:<26} {}\n", c.name, c.detail);
        if let Some(fix) = &c.fix {
            s += &format!("         {:<26} fix: {fix}\n", "");
        }
    }
    out(&s);
}
