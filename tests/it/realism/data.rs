//! An export read back into memory: the rows the realism figures are computed
//! from, parsed with the `csv` crate exactly as a consumer of the export would.

use std::collections::HashMap;
use std::path::Path;

use chrono::{Datelike, NaiveDate, NaiveDateTime};

pub struct Patient {
    pub female: bool,
    pub dob: NaiveDate,
    pub death: Option<NaiveDate>,
    pub given_name: String,
    pub registered: NaiveDate,
}

pub struct Condition {
    pub id: i64,
    pub patient: i64,
    pub snomed: String,
    pub onset: NaiveDate,
    pub acute: bool,
}

pub struct Appointment {
    pub patient: i64,
    pub practitioner: i64,
    pub starts_at: NaiveDateTime,
    pub minutes: i64,
}

pub struct Prescription {
    pub patient: i64,
    pub condition: i64,
    pub practitioner: i64,
    pub medicine: String,
    pub issued: NaiveDate,
}

pub struct Observation {
    pub patient: i64,
    pub snomed: String,
    pub value: f64,
    pub at: NaiveDateTime,
}

pub struct Export {
    pub patients: HashMap<i64, Patient>,
    pub roles: HashMap<i64, String>,
    pub conditions: Vec<Condition>,
    /// Substances of each patient's recorded allergies.
    pub allergies: HashMap<i64, Vec<String>>,
    pub appointments: Vec<Appointment>,
    pub prescriptions: Vec<Prescription>,
    pub observations: Vec<Observation>,
}

fn rows(dir: &Path, table: &str) -> Vec<HashMap<String, String>> {
    let mut r = csv::Reader::from_path(dir.join(format!("{table}.csv"))).unwrap();
    let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            header
                .iter()
                .cloned()
                .zip(rec.iter().map(str::to_string))
                .collect()
        })
        .collect()
}

pub fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn opt_date(s: &str) -> Option<NaiveDate> {
    (!s.is_empty()).then(|| date(s))
}

fn timestamp(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

fn int(s: &str) -> i64 {
    s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

/// Whole years from `from` to `to`.
pub fn age(from: NaiveDate, to: NaiveDate) -> i32 {
    let mut y = to.year() - from.year();
    if (to.month(), to.day()) < (from.month(), from.day()) {
        y -= 1;
    }
    y
}

impl Export {
    pub fn read(dir: &Path) -> Export {
        let patients = rows(dir, "patients")
            .into_iter()
            .map(|r| {
                let p = Patient {
                    female: r["sex"] == "F",
                    dob: date(&r["date_of_birth"]),
                    death: opt_date(&r["date_of_death"]),
                    given_name: r["given_name"].clone(),
                    registered: date(&r["registered_on"]),
                };
                (int(&r["id"]), p)
            })
            .collect();
        let roles = rows(dir, "practitioners")
            .into_iter()
            .map(|r| (int(&r["id"]), r["role"].clone()))
            .collect();
        let conditions = rows(dir, "conditions")
            .into_iter()
            .map(|r| Condition {
                id: int(&r["id"]),
                patient: int(&r["patient_id"]),
                snomed: r["snomed_code"].clone(),
                onset: date(&r["onset_date"]),
                acute: !r["resolved_date"].is_empty() || r["status"] == "resolved",
            })
            .collect();
        let mut allergies: HashMap<i64, Vec<String>> = HashMap::new();
        for r in rows(dir, "allergies") {
            allergies
                .entry(int(&r["patient_id"]))
                .or_default()
                .push(r["substance"].clone());
        }
        let appointments = rows(dir, "appointments")
            .into_iter()
            .map(|r| Appointment {
                patient: int(&r["patient_id"]),
                practitioner: int(&r["practitioner_id"]),
                starts_at: timestamp(&r["starts_at"]),
                minutes: int(&r["duration_minutes"]),
            })
            .collect();
        let prescriptions = rows(dir, "prescriptions")
            .into_iter()
            .map(|r| Prescription {
                patient: int(&r["patient_id"]),
                condition: int(&r["condition_id"]),
                practitioner: int(&r["practitioner_id"]),
                medicine: r["medicine"].clone(),
                issued: date(&r["issued_on"]),
            })
            .collect();
        let observations = rows(dir, "observations")
            .into_iter()
            .map(|r| Observation {
                patient: int(&r["patient_id"]),
                snomed: r["snomed_code"].clone(),
                value: r["value"].parse().unwrap(),
                at: timestamp(&r["observed_at"]),
            })
            .collect();
        Export {
            patients,
            roles,
            conditions,
            allergies,
            appointments,
            prescriptions,
            observations,
        }
    }

    /// Patients with a condition of this SNOMED code.
    pub fn with_condition(&self, snomed: &str) -> std::collections::HashSet<i64> {
        self.conditions
            .iter()
            .filter(|c| c.snomed == snomed)
            .map(|c| c.patient)
            .collect()
    }

    /// Patients ever prescribed a medicine whose name passes `is`.
    pub fn prescribed(&self, is: impl Fn(&str) -> bool) -> std::collections::HashSet<i64> {
        self.prescriptions
            .iter()
            .filter(|rx| is(&rx.medicine))
            .map(|rx| rx.patient)
            .collect()
    }
}
