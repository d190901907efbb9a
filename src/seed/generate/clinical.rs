//! A patient's clinical history: appointments in the practice's free slots,
//! conditions (by age- and sex-specific prevalence; acute ones diagnosed at an
//! appointment), and allergies; prescriptions and observations live in their
//! own modules and hang off the same appointments.
//!
//! Every event falls between birth and the patient's last day (before death,
//! not after the world's "today"), on a day the practice is open.

use chrono::{NaiveDate, NaiveDateTime};

use super::calendar::working_day_from;
use super::observations::observations;
use super::prescribing::prescriptions;
use super::{Patient, World, add_days, day_between, years_between};
use crate::seed::encode::Encoder;
use crate::seed::lists::Lists;
use crate::seed::model::TableId;
use crate::seed::rng::{Stream, Weighted};
use crate::seed::spec::by_age;

/// Running ids while emitting a chunk.
pub(crate) struct Ids {
    pub next: i64,
    pub next_condition: i64,
}

impl Ids {
    fn take(&mut self) -> i64 {
        self.next += 1;
        self.next - 1
    }
}

pub(crate) struct Condition {
    /// Index into `Lists::conditions`.
    pub kind: usize,
    pub onset: NaiveDate,
    pub resolved: Option<NaiveDate>,
    /// The appointment (index into the patient's) it was diagnosed at.
    pub encounter: Option<usize>,
}

const BAND_START: [u32; 4] = [0, 18, 40, 65];
/// The ages the band figures are taken to hold at (about each band's middle).
const BAND_MIDDLE: [f64; 4] = [9.0, 28.5, 52.0, 75.0];

/// Percent prevalence at an exact age, between the bands' middles, so a
/// 41-year-old is not given the whole 40–64 band's figure. Prevalence of the
/// age-related conditions grows about geometrically with age, so between two
/// positive figures the step is geometric (`a · (b/a)^t`, computed by
/// repeated square roots so no platform-dependent `powf` enters the rows);
/// towards or from zero it is linear.
fn prevalence_at(bands: &[f64; 4], age: u32) -> f64 {
    let a = age as f64;
    let i = BAND_MIDDLE.partition_point(|&m| m <= a);
    if i == 0 || i == 4 {
        return bands[i.min(3)];
    }
    let (lo, hi) = (bands[i - 1], bands[i]);
    let t = (a - BAND_MIDDLE[i - 1]) / (BAND_MIDDLE[i] - BAND_MIDDLE[i - 1]);
    if lo <= 0.0 || hi <= 0.0 {
        return lo + (hi - lo) * t;
    }
    // (hi/lo)^t from t's binary digits: ratio^(1/2), ^(1/4), … (sqrt is exact IEEE).
    let (mut factor, mut root, mut rest) = (1.0, hi / lo, t);
    for _ in 0..20 {
        root = root.sqrt();
        rest *= 2.0;
        if rest >= 1.0 {
            factor *= root;
            rest -= 1.0;
        }
    }
    lo * factor
}

/// Ages with an entry of their own in [`Prevalence`]; older patients share the
/// last one (past the oldest band's middle every figure is flat).
const PREVALENCE_AGES: usize = 131;

/// Each condition's chance for each sex and age, exactly as `conditions` would
/// compute it, built once per world: its square roots, per condition per
/// patient, were a fifth of the time spent seeding.
pub(crate) struct Prevalence(Vec<f64>);

impl Prevalence {
    pub(crate) fn new(lists: &Lists, scale: f64) -> Prevalence {
        let mut chances = Vec::with_capacity(lists.conditions.len() * 2 * PREVALENCE_AGES);
        for c in &lists.conditions {
            for bands in &c.prevalence {
                chances.extend(
                    (0..PREVALENCE_AGES as u32)
                        .map(|age| prevalence_at(bands, age) / 100.0 * scale),
                );
            }
        }
        Prevalence(chances)
    }

    fn chance(&self, kind: usize, sex: usize, age: u32) -> f64 {
        let age = (age as usize).min(PREVALENCE_AGES - 1);
        self.0[(kind * 2 + sex) * PREVALENCE_AGES + age]
    }
}

/// The first working day on or after `day`, or the last one before it when
/// that would pass `last`.
fn working_day_within(w: &World, day: NaiveDate, last: NaiveDate) -> NaiveDate {
    let next = working_day_from(w.lists, day);
    if next <= last {
        return next;
    }
    let mut d = day;
    while d > add_days(last, -7) && !super::calendar::is_working_day(w.lists, d, false) {
        d = add_days(d, -1);
    }
    d.min(last)
}

/// The patient's conditions, in list order. Acute conditions whose onset falls
/// in the encounter window are diagnosed at one of the patient's attended
/// in-person appointments with a prescriber (or moved before the window when
/// there is none).
pub(crate) fn conditions(w: &World, p: &Patient, appts: &[Appointment]) -> Vec<Condition> {
    let mut rng = Stream::new(w.seed, "conditions", p.index);
    let last = p.last_day(w.as_of);
    let age = years_between(p.dob, last);
    let sex = if p.female { 0 } else { 1 };
    let spec = &w.spec.conditions;
    let window = w.encounter_window(p).map(|(from, _)| from);
    let mut free: Vec<usize> = (0..appts.len())
        .filter(|&i| appts[i].in_person_attended && appts[i].prescriber)
        .collect();
    let mut out: Vec<Condition> = Vec::new();
    for (kind, c) in w.lists.conditions.iter().enumerate() {
        if !rng.chance(w.prevalence.chance(kind, sex, age)) {
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
        let mut onset = day_between(&mut rng, from, last);
        let mut encounter = None;
        if let Some(window) = window.filter(|w| !c.chronic && onset >= *w) {
            if free.is_empty() {
                if from >= window {
                    continue;
                }
                onset = day_between(&mut rng, from, add_days(window, -1));
            } else {
                let i = free.remove(rng.below(free.len() as u64) as usize);
                onset = appts[i].starts_at.date();
                encounter = Some(i);
            }
        }
        if encounter.is_none() {
            onset = working_day_within(w, onset, last);
        }
        let resolved = if c.chronic {
            None
        } else {
            Some(add_days(onset, rng.range(5, 40))).filter(|d| *d <= last)
        };
        out.push(Condition {
            kind,
            onset,
            resolved,
            encounter,
        });
    }
    // Mutually exclusive diagnoses: the first of a group present wins.
    for group in &w.exclusive {
        if let Some(&keep) = group.iter().find(|k| out.iter().any(|c| c.kind == **k)) {
            out.retain(|c| c.kind == keep || !group.contains(&c.kind));
        }
    }
    out
}

pub(crate) struct Appointment {
    pub starts_at: NaiveDateTime,
    pub minutes: u32,
    pub practitioner: i64,
    pub mode: usize,
    pub status: usize,
    /// Attended, face to face or at home: an encounter that can produce observations.
    pub in_person_attended: bool,
    /// With a clinician who may prescribe.
    pub prescriber: bool,
}

/// The patient's appointments: as many as their consultation rate asks for,
/// drawn from the slots they own in their practice's calendar, in time order.
pub(crate) fn appointments(w: &World, p: &Patient) -> Vec<Appointment> {
    let a = &w.spec.appointments;
    let staff = &w.spec.practices.staff;
    let Some((from, last)) = w.encounter_window(p) else {
        return Vec::new();
    };
    let mut rng = Stream::new(w.seed, "appointments", p.index);
    let age = years_between(p.dob, last);
    let factor = if p.female && age >= 16 {
        a.female_factor
    } else {
        1.0
    };
    let days = (last - from).num_days() as f64 + 1.0;
    let mean = by_age(&a.per_year, age) * factor * days / 365.0;
    let want = (mean * (1.0 - a.spread + 2.0 * a.spread * rng.unit())).round() as u64;
    let calendar = &w.calendars[p.practice];
    let owned = calendar.owned(p.rank, w.spec.practices.patients_per_practice, from, last);
    let mut need = want.min(a.max_per_patient as u64).min(owned.len() as u64);
    let practice = &w.practices[p.practice];
    let mut out = Vec::with_capacity(need as usize);
    // Selection sampling: each owned slot is taken with the chance that leaves
    // exactly `need` taken, uniformly over the window.
    for (i, &s) in owned.iter().enumerate() {
        let left = (owned.len() - i) as u64;
        if need == 0 || rng.below(left) >= need {
            continue;
        }
        need -= 1;
        let slot = calendar.slot(&w.spec, s);
        let mut mode = a.modes.sample_index(&mut rng);
        if w.home_visit == Some(mode) && (age < 65 || !staff[slot.role].home_visits) {
            mode = w.face_to_face.unwrap_or(mode);
        }
        let status = a.statuses.sample_index(&mut rng);
        out.push(Appointment {
            starts_at: slot.at,
            minutes: slot.minutes,
            practitioner: practice.first_practitioner + slot.position as i64,
            mode,
            status,
            in_person_attended: w.attended == Some(status)
                && (w.face_to_face == Some(mode) || w.home_visit == Some(mode)),
            prescriber: staff[slot.role].prescriber,
        });
    }
    out
}

pub(crate) struct Allergy {
    pub allergen: usize,
    pub reaction: usize,
    pub severity: usize,
    pub recorded: NaiveDate,
}

pub(crate) fn allergies(w: &World, p: &Patient) -> Vec<Allergy> {
    let spec = &w.spec.allergies;
    let mut rng = Stream::new(w.seed, "allergies", p.index);
    let count = Weighted::new(spec.count_weights.iter().copied()).sample(&mut rng);
    let last = p.last_day(w.as_of);
    let mut out: Vec<Allergy> = Vec::with_capacity(count);
    for _ in 0..count {
        let allergen = w.lists.allergen_weights.sample(&mut rng);
        let reaction = rng.below(w.lists.allergens[allergen].reactions.len() as u64) as usize;
        let severity = spec.severities.sample_index(&mut rng);
        let recorded = working_day_within(w, day_between(&mut rng, p.dob, last), last);
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
/// Rows each clinical table gets for patient `p`, indexed by [`TableId`]
/// (zero for the others). One pass: the appointments and conditions that the
/// later tables depend on are built once, not once per table.
pub(crate) fn counts(w: &World, p: &Patient) -> [u64; TableId::ALL.len()] {
    let appts = appointments(w, p);
    let conds = conditions(w, p, &appts);
    let mut n = [0; TableId::ALL.len()];
    n[TableId::Allergies as usize] = allergies(w, p).len() as u64;
    n[TableId::Prescriptions as usize] = prescriptions(w, p, &conds, &appts).len() as u64;
    n[TableId::Observations as usize] = observations(w, p, &conds, &appts).len() as u64;
    n[TableId::Appointments as usize] = appts.len() as u64;
    n[TableId::Conditions as usize] = conds.len() as u64;
    n
}

pub(crate) fn emit<E: Encoder>(w: &World, t: TableId, p: &Patient, ids: &mut Ids, enc: &mut E) {
    let l = w.lists;
    match t {
        TableId::Conditions => {
            for c in conditions(w, p, &appointments(w, p)) {
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
            let appts = appointments(w, p);
            let conds = conditions(w, p, &appts);
            for rx in prescriptions(w, p, &conds, &appts) {
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
            let appts = appointments(w, p);
            for o in observations(w, p, &conditions(w, p, &appts), &appts) {
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
