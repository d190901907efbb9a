//! Prescriptions: who may prescribe, what is safe for this patient, and when.
//!
//! Only clinicians whose role prescribes issue anything. A medicine is never
//! given outside its formulation's age band, nor from a class a recorded
//! allergy contraindicates, nor twice from one class on repeat. Chronic
//! conditions start courses at their medicines' published uptake (alternatives
//! in a group exclusive) and reissue them on working days from the course's
//! start — or from when the patient registered with the practice, since
//! earlier issues belong to another practice's record — to the patient's last
//! day, every repeat cycle plus a few days' lateness and an occasional missed
//! cycle (see `seeds/patients.toml`). An acute illness gets one course from the
//! prescriber who diagnosed it, on the day of that appointment.

use chrono::NaiveDate;

use super::calendar::working_day_from;
use super::clinical::{Appointment, Condition, allergies};
use super::{Patient, World, add_days, years_between};
use crate::seed::lists::Medicine;
use crate::seed::rng::Stream;

pub(crate) struct Prescription {
    /// Index into the patient's conditions.
    pub condition: usize,
    pub medicine: usize,
    pub issued: NaiveDate,
    pub practitioner: i64,
}

fn fits_age(m: &Medicine, age: u32) -> bool {
    (m.min_age..=m.max_age).contains(&age)
}

pub(crate) fn prescriptions(
    w: &World,
    p: &Patient,
    conditions: &[Condition],
    appts: &[Appointment],
) -> Vec<Prescription> {
    let spec = &w.spec.prescriptions;
    let l = w.lists;
    // Repeat histories reach back before the appointment window, so a patient
    // who died before it opened still has the issues of their last years.
    let last = p.last_day(w.as_of);
    let mut rng = Stream::new(w.seed, "prescriptions", p.index);
    // Issue timing draws from its own stream, so which courses a patient is
    // on does not depend on how long their histories are.
    let mut timing = Stream::new(w.seed, "repeat_issues", p.index);
    let contraindicated: Vec<&str> = allergies(w, p)
        .iter()
        .flat_map(|a| {
            l.allergens[a.allergen]
                .contraindicates
                .iter()
                .map(String::as_str)
        })
        .collect();
    let practice = &w.practices[p.practice];
    let prescribers: Vec<i64> = w.calendars[p.practice]
        .prescribers(&w.spec.practices.staff)
        .map(|i| practice.first_practitioner + i as i64)
        .collect();
    let age_on = |d: NaiveDate| years_between(p.dob, d);
    let mut on_repeat: Vec<&str> = Vec::new();
    let mut out = Vec::new();
    for (ci, c) in conditions.iter().enumerate() {
        let kind = &l.conditions[c.kind];
        if kind.medicines.is_empty() {
            continue;
        }
        if !kind.chronic {
            // Only illnesses diagnosed at one of the patient's appointments get a course.
            let Some(encounter) = c.encounter else {
                continue;
            };
            if !rng.chance(spec.acute_course_share) {
                continue;
            }
            let age = age_on(c.onset);
            let eligible: Vec<usize> = kind
                .medicines
                .iter()
                .copied()
                .filter(|&m| fits_age(&l.medicines[m], age))
                .filter(|&m| !contraindicated.contains(&l.medicines[m].class.as_str()))
                .collect();
            let total: f64 = eligible.iter().map(|&m| l.medicines[m].uptake).sum();
            let mut x = rng.unit() * total;
            let Some(&medicine) = eligible.iter().find(|&&m| {
                x -= l.medicines[m].uptake;
                x < 0.0
            }) else {
                continue;
            };
            out.push(Prescription {
                condition: ci,
                medicine,
                issued: appts[encounter].starts_at.date(),
                practitioner: appts[encounter].practitioner,
            });
            continue;
        }
        // Chronic: decide each medicine (or group of alternatives) in list order.
        let mut groups_done: Vec<&str> = Vec::new();
        for &m in &kind.medicines {
            let med = &l.medicines[m];
            let candidates: Vec<usize> = if med.group.is_empty() {
                if !rng.chance(med.uptake) {
                    continue;
                }
                vec![m]
            } else {
                if groups_done.contains(&med.group.as_str()) {
                    continue;
                }
                groups_done.push(&med.group);
                let group: Vec<usize> = kind
                    .medicines
                    .iter()
                    .copied()
                    .filter(|&g| l.medicines[g].group == med.group)
                    .collect();
                let mut x = rng.unit();
                let Some(pick) = group.iter().position(|&g| {
                    x -= l.medicines[g].uptake;
                    x < 0.0
                }) else {
                    continue;
                };
                // The chosen alternative first, then the others if it does not suit.
                group[pick..]
                    .iter()
                    .chain(&group[..pick])
                    .copied()
                    .collect()
            };
            let start = add_days(c.onset, rng.range(0, spec.start_within_days as i64));
            // A medicine newer than the diagnosis starts when it became first line.
            let course_start = |g: &Medicine| working_day_from(l, start.max(g.first_line_from));
            let Some(medicine) = candidates.into_iter().find(|&g| {
                let g = &l.medicines[g];
                fits_age(g, age_on(course_start(g).min(last)))
                    && fits_age(g, age_on(last))
                    && !contraindicated.contains(&g.class.as_str())
                    && !on_repeat.contains(&g.class.as_str())
            }) else {
                continue;
            };
            on_repeat.push(&l.medicines[medicine].class);
            let practitioner = *rng.pick(&prescribers);
            let first = course_start(&l.medicines[medicine]).max(p.registered);
            for issued in repeat_issues(w, &mut timing, first, last) {
                out.push(Prescription {
                    condition: ci,
                    medicine,
                    issued,
                    practitioner,
                });
            }
        }
    }
    out
}

/// The issue dates of a repeat course from `first` to `last`: each issue a
/// repeat cycle after the one before plus up to `late_days_max` days (patients
/// order when they run low, and the practice turns requests round in a day or
/// two), with `missed_issue_share` of cycles skipped altogether, and every
/// issue on a working day.
fn repeat_issues(w: &World, rng: &mut Stream, first: NaiveDate, last: NaiveDate) -> Vec<NaiveDate> {
    let spec = &w.spec.prescriptions;
    let every = spec.repeat_every_days as i64;
    let mut out = Vec::new();
    let mut issued = working_day_from(w.lists, first);
    while issued <= last {
        out.push(issued);
        let mut due = add_days(issued, every + rng.range(0, spec.late_days_max as i64));
        if rng.chance(spec.missed_issue_share) {
            due = add_days(due, every);
        }
        issued = working_day_from(w.lists, due);
    }
    out
}
