//! A patient's clinical history: conditions (by age- and sex-specific
//! prevalence), prescriptions for them, allergies, appointments in clinic
//! hours, and observations plausible for age and conditions.
//!
//! Every event falls between birth and the patient's last day (before death,
//! not after the world's "today"); prescriptions start on or after the onset
//! of the condition they treat.

use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Weekday};

use super::{Patient, World, add_days, day_between, years_between};
use crate::seed::encode::Encoder;
use crate::seed::model::TableId;
use crate::seed::rng::{Stream, Weighted};
use crate::seed::spec::by_age;

/// Running ids while emitting a chunk.
pub struct Ids {
    pub next: i64,
    pub next_condition: i64,
}

impl Ids {
    fn take(&mut self) -> i64 {
        self.next += 1;
        self.next - 1
    }
}

pub struct Condition {
    /// Index into `Lists::conditions`.
    pub kind: usize,
    pub onset: NaiveDate,
    pub resolved: Option<NaiveDate>,
}

fn age_band(age: u32) -> usize {
    match age {
        0..=17 => 0,
        18..=39 => 1,
        40..=64 => 2,
        _ => 3,
    }
}

const BAND_START: [u32; 4] = [0, 18, 40, 65];

/// The patient's conditions, in list order.
pub fn conditions(w: &World, p: &Patient) -> Vec<Condition> {
    let mut rng = Stream::new(w.seed, "conditions", p.index);
    let last = p.last_day(w.as_of);
    let age = years_between(p.dob, last);
    let sex = if p.female { 0 } else { 1 };
    let spec = &w.spec.conditions;
    let mut out = Vec::new();
    for (kind, c) in w.lists.conditions.iter().enumerate() {
        let prevalence = c.prevalence[sex][age_band(age)] / 100.0 * spec.prevalence_scale;
        if !rng.chance(prevalence) {
            continue;
        }
        // Onset no younger than the first age band where the condition occurs.
        let first_band = c.prevalence[sex].iter().position(|&x| x > 0.0).unwrap_or(0);
        let youngest = add_days(p.dob, BAND_START[first_band] as i64 * 365 + 1);
        let years = if c.chronic {
            spec.chronic_within_years
        } else {
            spec.acute_within_years
        };
        let from = add_days(last, -(years as i64) * 365)
            .max(youngest)
            .min(last);
        let onset = day_between(&mut rng, from, last);
        let resolved = if c.chronic {
            None
        } else {
            Some(add_days(onset, rng.range(5, 40))).filter(|d| *d <= last)
        };
        out.push(Condition {
            kind,
            onset,
            resolved,
        });
    }
    out
}

pub struct Prescription {
    /// Index into the patient's conditions.
    pub condition: usize,
    pub medicine: usize,
    pub issued: NaiveDate,
    pub practitioner: i64,
}

fn practitioner(w: &World, p: &Patient, rng: &mut Stream) -> i64 {
    let practice = &w.practices[p.practice];
    practice.first_practitioner + rng.below(practice.practitioners as u64) as i64
}

pub fn prescriptions(w: &World, p: &Patient, conditions: &[Condition]) -> Vec<Prescription> {
    let mut rng = Stream::new(w.seed, "prescriptions", p.index);
    let spec = &w.spec.prescriptions;
    let last = p.last_day(w.as_of);
    let mut out = Vec::new();
    for (ci, c) in conditions.iter().enumerate() {
        let meds = &w.lists.conditions[c.kind].medicines;
        if meds.is_empty() {
            continue;
        }
        if w.lists.conditions[c.kind].chronic {
            let n = (1 + rng.below(spec.max_medicines as u64)).min(meds.len() as u64);
            let first = rng.below(meds.len() as u64);
            for m in 0..n {
                let medicine = meds[((first + m) % meds.len() as u64) as usize];
                let issues = rng.range(spec.repeat_issues.min, spec.repeat_issues.max);
                // The most recent issues, every 28 days, never before onset.
                let start = add_days(last, -(issues * 28)).max(c.onset);
                let who = practitioner(w, p, &mut rng);
                for k in 0..issues {
                    let issued = add_days(start, k * 28 + rng.range(0, 3));
                    if issued > last {
                        break;
                    }
                    out.push(Prescription {
                        condition: ci,
                        medicine,
                        issued,
                        practitioner: who,
                    });
                }
            }
        } else if rng.chance(spec.acute_course_share) {
            let medicine = *rng.pick(meds);
            let issued = add_days(c.onset, rng.range(0, 2)).min(last);
            out.push(Prescription {
                condition: ci,
                medicine,
                issued,
                practitioner: practitioner(w, p, &mut rng),
            });
        }
    }
    out
}

pub struct Appointment {
    pub starts_at: NaiveDateTime,
    pub minutes: u32,
    pub practitioner: i64,
    pub mode: usize,
    pub status: usize,
}

/// Moves a weekend day to the nearest weekday inside `from..=to`, if any.
fn weekday_within(d: NaiveDate, from: NaiveDate, to: NaiveDate) -> Option<NaiveDate> {
    let (fwd, back) = match d.weekday() {
        Weekday::Sat => (2, 1),
        Weekday::Sun => (1, 2),
        _ => return Some(d),
    };
    [add_days(d, fwd), add_days(d, -back)]
        .into_iter()
        .find(|x| (from..=to).contains(x))
}

/// A time on `day` inside clinic hours, on a 5-minute grid, ending by closing.
fn clinic_time(w: &World, rng: &mut Stream, day: NaiveDate, minutes: u32) -> NaiveDateTime {
    let a = &w.spec.appointments;
    let open = a.opens.num_seconds_from_midnight() / 60;
    let close = a.closes.num_seconds_from_midnight() / 60;
    let slots = (close.saturating_sub(open + minutes)) / 5 + 1;
    let start = open + rng.below(slots as u64) as u32 * 5;
    day.and_time(NaiveTime::from_hms_opt(start / 60, start % 60, 0).unwrap())
}

pub fn appointments(w: &World, p: &Patient) -> Vec<Appointment> {
    let a = &w.spec.appointments;
    let mut rng = Stream::new(w.seed, "appointments", p.index);
    let last = p.last_day(w.as_of);
    let from = add_days(last, -(a.within_years as i64) * 365)
        .max(p.registered)
        .max(p.dob);
    if from > last {
        return Vec::new();
    }
    let age = years_between(p.dob, last);
    let factor = if p.female && age >= 16 {
        a.female_factor
    } else {
        1.0
    };
    let days = (last - from).num_days() as f64 + 1.0;
    let mean = by_age(&a.per_year, age) * factor * days / 365.0;
    let n = ((mean * (0.25 + 1.5 * rng.unit())).round() as u32).min(a.max_per_patient);
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let day = day_between(&mut rng, from, last);
        let minutes = *rng.pick(&a.durations);
        let mut mode = a.modes.sample_index(&mut rng);
        if a.modes.names[mode] == "home_visit" && age < 65 {
            mode = a.modes.index_of("face_to_face").unwrap_or(mode);
        }
        let status = a.statuses.sample_index(&mut rng);
        let who = practitioner(w, p, &mut rng);
        let Some(day) = weekday_within(day, from, last) else {
            continue;
        };
        out.push(Appointment {
            starts_at: clinic_time(w, &mut rng, day, minutes),
            minutes,
            practitioner: who,
            mode,
            status,
        });
    }
    out.sort_by_key(|x| x.starts_at);
    out
}

pub struct Observation {
    /// Index into `Lists::observations`.
    pub kind: usize,
    /// Value in tenths.
    pub tenths: i64,
    pub at: NaiveDateTime,
}

fn tenths(x: f64) -> i64 {
    (x * 10.0).round() as i64
}

pub fn observations(w: &World, p: &Patient, conditions: &[Condition]) -> Vec<Observation> {
    let spec = &w.spec.observations;
    let l = w.lists;
    let mut rng = Stream::new(w.seed, "observations", p.index);
    let last = p.last_day(w.as_of);
    let from = add_days(last, -(spec.within_years as i64) * 365).max(p.dob);
    let age = years_between(p.dob, last);
    let has = |tag: &str| conditions.iter().any(|c| l.conditions[c.kind].tag == tag);
    let (diabetic, hypertensive, obese, ckd) = (
        has("diabetes"),
        has("hypertension"),
        has("obesity"),
        has("ckd"),
    );

    // Traits that hold across a patient's visits.
    let adult_height = if p.female {
        rng.normal(162.0, 7.0, 140.0, 190.0)
    } else {
        rng.normal(175.5, 7.5, 150.0, 205.0)
    };
    let bmi_base = match (age >= 18, obese) {
        (true, true) => rng.normal(34.0, 3.5, 30.0, 55.0),
        (true, false) => rng.normal(26.0, 3.8, 17.0, 29.9),
        (false, true) => rng.normal(24.0, 2.0, 21.0, 35.0),
        (false, false) => rng.normal(16.8, 1.8, 13.0, 21.0),
    };
    let bp_shift = rng.normal(0.0, 6.0, -15.0, 15.0) + if hypertensive { 14.0 } else { 0.0 };

    let mean = by_age(&spec.checkups, age) * spec.within_years as f64;
    let visits = (mean * (0.5 + rng.unit())).round() as u32;
    let k = |key| l.observation(key);
    let mut out = Vec::new();
    let mut push = |kind, value: f64, at| {
        out.push(Observation {
            kind,
            tenths: tenths(value),
            at,
        })
    };
    for _ in 0..visits {
        let day = day_between(&mut rng, from, last);
        let at = clinic_time(w, &mut rng, day, 10);
        let a = years_between(p.dob, day) as f64;
        let hr = match a as u32 {
            0 => rng.normal(130.0, 12.0, 90.0, 180.0),
            1..=4 => rng.normal(105.0, 10.0, 75.0, 150.0),
            5..=11 => rng.normal(88.0, 10.0, 60.0, 130.0),
            _ => rng.normal(72.0, 9.0, 45.0, 120.0),
        };
        push(k("heart_rate"), hr.round(), at);
        if a >= 5.0 {
            let (sys, dia) = if a < 18.0 {
                (
                    rng.normal(105.0, 8.0, 80.0, 135.0),
                    rng.normal(64.0, 6.0, 45.0, 85.0),
                )
            } else {
                let sys = 112.0 + 0.5 * (a - 18.0) + bp_shift + rng.normal(0.0, 7.0, -20.0, 20.0);
                let dia =
                    72.0 + 0.15 * (a - 18.0) + bp_shift / 2.0 + rng.normal(0.0, 5.0, -12.0, 12.0);
                (
                    sys.clamp(85.0, 210.0),
                    dia.clamp(45.0, 125.0).min(sys - 20.0),
                )
            };
            push(k("systolic_bp"), sys.round(), at);
            push(k("diastolic_bp"), dia.round(), at);
        }
        if a >= 2.0 {
            let height = if a >= 18.0 {
                adult_height
            } else if a <= 12.0 {
                87.0 + 6.0 * (a - 2.0)
            } else {
                147.0 + (adult_height - 147.0) * (a - 12.0) / 6.0
            };
            let bmi = (bmi_base + rng.normal(0.0, 0.6, -2.0, 2.0)).max(12.0);
            let weight = bmi * (height / 100.0) * (height / 100.0);
            push(k("height"), (height * 10.0).round() / 10.0, at);
            push(k("weight"), (weight * 10.0).round() / 10.0, at);
            push(k("bmi"), (bmi * 10.0).round() / 10.0, at);
        }
        if a >= 40.0 && rng.chance(0.3) {
            push(
                k("cholesterol"),
                (rng.normal(5.1, 0.9, 2.5, 9.0) * 10.0).round() / 10.0,
                at,
            );
        }
        if ckd || (a >= 50.0 && rng.chance(0.3)) {
            let egfr = if ckd {
                rng.normal(45.0, 9.0, 15.0, 59.0)
            } else {
                rng.normal(100.0 - 0.6 * (a - 20.0), 9.0, 60.0, 120.0)
            };
            push(k("egfr"), egfr.round(), at);
        }
        if !diabetic && a >= 40.0 && rng.chance(0.2) {
            push(k("hba1c"), rng.normal(37.0, 3.5, 25.0, 47.0).round(), at);
        }
    }
    // Diabetes reviews: an HbA1c every few months since diagnosis (within the window).
    for c in conditions
        .iter()
        .filter(|c| l.conditions[c.kind].tag == "diabetes")
    {
        let mut day = c.onset.max(from);
        let step = spec.hba1c_every_months as i64 * 30;
        while day <= last {
            let at = clinic_time(w, &mut rng, day, 10);
            push(k("hba1c"), rng.normal(58.0, 11.0, 40.0, 110.0).round(), at);
            day = add_days(day, step + rng.range(-10, 10).max(1 - step));
        }
    }
    // A temperature at the onset of acute conditions in the window.
    for c in conditions.iter().filter(|c| !l.conditions[c.kind].chronic) {
        if c.onset >= from {
            let at = clinic_time(w, &mut rng, c.onset, 10);
            push(
                k("temperature"),
                (rng.normal(37.6, 0.5, 36.0, 40.0) * 10.0).round() / 10.0,
                at,
            );
        }
    }
    out.sort_by_key(|o| o.at);
    out
}

pub struct Allergy {
    pub allergen: usize,
    pub reaction: usize,
    pub severity: usize,
    pub recorded: NaiveDate,
}

pub fn allergies(w: &World, p: &Patient) -> Vec<Allergy> {
    let spec = &w.spec.allergies;
    let mut rng = Stream::new(w.seed, "allergies", p.index);
    let count = Weighted::new(spec.count_weights.iter().copied()).sample(&mut rng);
    let last = p.last_day(w.as_of);
    let mut out: Vec<Allergy> = Vec::with_capacity(count);
    for _ in 0..count {
        let allergen = w.lists.allergen_weights.sample(&mut rng);
        let reaction = rng.below(w.lists.allergens[allergen].reactions.len() as u64) as usize;
        let severity = spec.severities.sample_index(&mut rng);
        let recorded = day_between(&mut rng, p.dob, last);
        if out.iter().all(|a| a.allergen != allergen) {
            out.push(Allergy {
                allergen,
                reaction,
                severity,
                recorded,
            });
        }
    }
    out
}

/// Rows of a per-patient clinical table for one patient.
pub fn count(w: &World, t: TableId, p: &Patient) -> u64 {
    (match t {
        TableId::Conditions => conditions(w, p).len(),
        TableId::Allergies => allergies(w, p).len(),
        TableId::Appointments => appointments(w, p).len(),
        TableId::Prescriptions => prescriptions(w, p, &conditions(w, p)).len(),
        TableId::Observations => observations(w, p, &conditions(w, p)).len(),
        _ => unreachable!("not a clinical table"),
    }) as u64
}

pub fn emit<E: Encoder>(w: &World, t: TableId, p: &Patient, ids: &mut Ids, enc: &mut E) {
    let l = w.lists;
    match t {
        TableId::Conditions => {
            for c in conditions(w, p) {
                let kind = &l.conditions[c.kind];
                enc.begin_row();
                enc.int(ids.take());
                enc.int(p.id);
                enc.text(&kind.snomed);
                enc.text(&kind.term);
                enc.text(&kind.icd10);
                enc.date(c.onset);
                enc.opt_date(c.resolved);
                enc.text(if c.resolved.is_some() {
                    "resolved"
                } else {
                    "active"
                });
                enc.end_row();
            }
        }
        TableId::Allergies => {
            for a in allergies(w, p) {
                let allergen = &l.allergens[a.allergen];
                enc.begin_row();
                enc.int(ids.take());
                enc.int(p.id);
                enc.text(&allergen.snomed);
                enc.text(&allergen.substance);
                enc.text(&allergen.reactions[a.reaction]);
                enc.text(&w.spec.allergies.severities.names[a.severity]);
                enc.date(a.recorded);
                enc.end_row();
            }
        }
        TableId::Appointments => {
            let spec = &w.spec.appointments;
            for a in appointments(w, p) {
                enc.begin_row();
                enc.int(ids.take());
                enc.int(p.id);
                enc.int(a.practitioner);
                enc.timestamp(a.starts_at);
                enc.int4(a.minutes as i32);
                enc.text(&spec.modes.names[a.mode]);
                enc.text(&spec.statuses.names[a.status]);
                enc.end_row();
            }
        }
        TableId::Prescriptions => {
            let conds = conditions(w, p);
            for rx in prescriptions(w, p, &conds) {
                let med = &l.medicines[rx.medicine];
                enc.begin_row();
                enc.int(ids.take());
                enc.int(p.id);
                enc.int(ids.next_condition + rx.condition as i64);
                enc.int(rx.practitioner);
                enc.text(&med.name);
                enc.text(&med.dose);
                enc.int4(med.quantity);
                enc.date(rx.issued);
                enc.end_row();
            }
            ids.next_condition += conds.len() as i64;
        }
        TableId::Observations => {
            for o in observations(w, p, &conditions(w, p)) {
                let kind = &l.observations[o.kind];
                enc.begin_row();
                enc.int(ids.take());
                enc.int(p.id);
                enc.text(&kind.snomed);
                enc.text(&kind.term);
                enc.numeric(o.tenths, 1);
                enc.text(&kind.unit);
                enc.timestamp(o.at);
                enc.end_row();
            }
        }
        _ => unreachable!("not a clinical table"),
    }
}
