//! The generated world: practices, their practitioners, and patients with
//! their clinical histories, derived entity by entity from keyed streams.
//!
//! Each table's rows for a patient come from that table's own stream for that
//! patient, plus the patient's core facts (sex, birth, death, practice), which
//! every table re-derives from the `patient` stream. Re-deriving is cheap and
//! is what lets every table be generated (and counted) independently, in any
//! order and on any thread.

pub mod address;
pub(crate) mod calendar;
pub(crate) mod clinical;
pub mod nhs;
pub(crate) mod observations;
pub mod person;
pub(crate) mod prescribing;

use std::ops::Range;

use chrono::{Datelike, Days, NaiveDate};

use super::encode::Encoder;
use super::lists::Lists;
use super::model::TableId;
use super::rng::{Stream, Weighted, mix64};
use super::spec::{Spec, by_age};
use calendar::Calendar;

/// A practice and the ids of its practitioners.
#[derive(Debug, Clone)]
pub(crate) struct Practice {
    pub id: i64,
    /// Index into `Lists::districts`, when known.
    pub district: Option<usize>,
    pub first_practitioner: i64,
    pub practitioners: i64,
}

/// The facts about one patient that other tables depend on.
#[derive(Debug, Clone)]
pub(crate) struct Patient {
    pub index: u64,
    pub id: i64,
    pub female: bool,
    pub dob: NaiveDate,
    pub death: Option<NaiveDate>,
    pub registered: NaiveDate,
    pub practice: usize,
    /// The patient's place among the practice's patients (owns its slots).
    pub rank: u64,
}

impl Patient {
    /// The last day anything can happen to this patient: the day before
    /// death, or the world's "today".
    pub(crate) fn last_day(&self, as_of: NaiveDate) -> NaiveDate {
        self.death.map_or(as_of, |d| d.pred_opt().unwrap())
    }
}

/// Whole years from `from` to `to`.
pub(crate) fn years_between(from: NaiveDate, to: NaiveDate) -> u32 {
    let mut y = to.year() - from.year();
    if (to.month(), to.day()) < (from.month(), from.day()) {
        y -= 1;
    }
    y.max(0) as u32
}

pub(crate) fn add_days(d: NaiveDate, n: i64) -> NaiveDate {
    if n >= 0 {
        d.checked_add_days(Days::new(n as u64)).unwrap()
    } else {
        d.checked_sub_days(Days::new(n.unsigned_abs())).unwrap()
    }
}

/// A uniformly random day in `from..=to` (`from` if the range is empty).
pub(crate) fn day_between(rng: &mut Stream, from: NaiveDate, to: NaiveDate) -> NaiveDate {
    let span = (to - from).num_days();
    if span <= 0 {
        return from;
    }
    add_days(from, rng.range(0, span))
}

/// Everything needed to generate rows: the spec, the lists, the seed, and
/// which patients (and practices) this run covers.
pub(crate) struct World {
    pub spec: Spec,
    pub lists: &'static Lists,
    pub seed: u64,
    pub as_of: NaiveDate,
    /// 0-based index of the first patient generated in this run (non-zero when appending).
    pub first_patient: u64,
    pub patients: u64,
    pub practices: Vec<Practice>,
    /// Whether the practices and practitioners are generated in this run
    /// (false when appending to existing ones).
    pub new_practices: bool,
    /// Each practice's calendar, by index into `practices`.
    pub calendars: Vec<Calendar>,
    /// Diagnoses never recorded together, as groups of `Lists::conditions` indices.
    pub exclusive: Vec<Vec<usize>>,
    /// Indices of the appointment statuses and modes the model reasons about.
    pub attended: Option<usize>,
    pub face_to_face: Option<usize>,
    pub home_visit: Option<usize>,
    /// Every condition's chance by sex and age (see [`clinical::Prevalence`]).
    pub prevalence: clinical::Prevalence,
    age_weights: Weighted,
}

/// Patients per chunk: the unit of parallel work. Part of nothing observable:
/// ids and values do not depend on it.
pub(crate) const CHUNK: u64 = 1000;

impl World {
    /// A fresh world of `patients` patients with newly generated practices.
    pub(crate) fn new(spec: Spec, seed: u64, patients: u64) -> World {
        let lists = Lists::get();
        let count = patients
            .div_ceil(spec.practices.patients_per_practice)
            .max(1);
        let mut practices = Vec::with_capacity(count as usize);
        let mut next_practitioner = 1;
        for i in 0..count {
            let mut rng = Stream::new(seed, "practices", i);
            let district = lists.district_weights.sample(&mut rng);
            let r = spec.practices.practitioners;
            let n = rng.range(r.min, r.max);
            practices.push(Practice {
                id: i as i64 + 1,
                district: Some(district),
                first_practitioner: next_practitioner,
                practitioners: n,
            });
            next_practitioner += n;
        }
        Self::with_practices(spec, seed, 0, patients, practices, true)
    }

    /// A world that appends patients after `first_patient` existing ones, to existing practices.
    pub(crate) fn with_practices(
        spec: Spec,
        seed: u64,
        first_patient: u64,
        patients: u64,
        practices: Vec<Practice>,
        new_practices: bool,
    ) -> World {
        let age_weights = Weighted::new(
            spec.patients
                .age_bands
                .iter()
                .map(|w| (w * 1000.0).round() as u64),
        );
        let lists = Lists::get();
        let calendars = practices
            .iter()
            .map(|p| {
                let mut rng = Stream::new(seed, "practices.calendar", p.id as u64);
                let saturdays = rng.chance(spec.practices.saturday_share);
                let key = mix64(seed ^ mix64(p.id as u64));
                Calendar::new(&spec, lists, p.practitioners, saturdays, key)
            })
            .collect();
        let exclusive = spec
            .conditions
            .exclusive
            .iter()
            .map(|group| {
                group
                    .iter()
                    .filter_map(|code| lists.conditions.iter().position(|c| &c.snomed == code))
                    .collect()
            })
            .collect();
        let a = &spec.appointments;
        World {
            prevalence: clinical::Prevalence::new(lists, spec.conditions.prevalence_scale),
            attended: a.statuses.index_of("attended"),
            face_to_face: a.modes.index_of("face_to_face"),
            home_visit: a.modes.index_of("home_visit"),
            as_of: spec.as_of,
            lists,
            calendars,
            exclusive,
            spec,
            seed,
            first_patient,
            patients,
            practices,
            new_practices,
            age_weights,
        }
    }

    /// The days a patient can have encounters: the appointment window, from
    /// registration (or birth) to their last day; `None` when empty.
    pub(crate) fn encounter_window(&self, p: &Patient) -> Option<(NaiveDate, NaiveDate)> {
        let years = self.spec.appointments.within_years as i64;
        let from = add_days(self.as_of, -years * 365)
            .max(p.registered)
            .max(p.dob);
        let last = p.last_day(self.as_of);
        (from <= last).then_some((from, last))
    }

    pub(crate) fn practitioner_count(&self) -> u64 {
        self.practices.iter().map(|p| p.practitioners as u64).sum()
    }

    /// How many entities (the unit rows are generated per) a table has in this run.
    pub(crate) fn entities(&self, t: TableId) -> u64 {
        match t {
            TableId::Practices if self.new_practices => self.practices.len() as u64,
            TableId::Practitioners if self.new_practices => self.practitioner_count(),
            TableId::Practices | TableId::Practitioners => 0,
            _ => self.patients,
        }
    }

    /// The chunks of a table's entities, in order.
    pub(crate) fn chunks(&self, t: TableId) -> Vec<Range<u64>> {
        let n = self.entities(t);
        (0..n.div_ceil(CHUNK))
            .map(|c| c * CHUNK..((c + 1) * CHUNK).min(n))
            .collect()
    }

    /// The core facts of patient `index` (global, 0-based).
    pub(crate) fn patient(&self, index: u64) -> Patient {
        let p = &self.spec.patients;
        let mut rng = Stream::new(self.seed, "patient", index);
        let band = self.age_weights.sample(&mut rng) as i64;
        let age = band * 5 + rng.below(5) as i64;
        let dob = add_days(self.as_of, -(age * 365 + age / 4 + rng.range(0, 364)));
        let dob = dob.min(add_days(self.as_of, -1));
        let age_now = years_between(dob, self.as_of);
        let female = rng.chance(by_age(&p.female_share, age_now));
        let mortality = if female {
            &p.mortality_female
        } else {
            &p.mortality_male
        };
        // Survival over the years a death stays on the list (plain products:
        // `powi`'s precision is unspecified, and the rows must not vary by platform).
        let yearly = 1.0 - by_age(mortality, age_now);
        let survive = (0..p.death_within_years).fold(1.0, |s, _| s * yearly);
        let death = rng.chance(1.0 - survive).then(|| {
            let within = p.death_within_years as i64 * 365;
            add_days(self.as_of, -rng.range(0, within)).max(add_days(dob, 1))
        });
        let last = death.map_or(self.as_of, |d| d.pred_opt().unwrap());
        let registered_from = add_days(self.as_of, -(p.registered_within_years as i64 * 365));
        let registered = day_between(&mut rng, registered_from.max(dob), last).clamp(dob, last);
        // Round robin: every practice's patients get consecutive ranks, so
        // their slots never overlap (see calendar.rs).
        let n = self.practices.len() as u64;
        Patient {
            index,
            id: index as i64 + 1,
            female,
            dob,
            death,
            registered,
            practice: (index % n) as usize,
            rank: index / n,
        }
    }

    /// Rows of every clinical table for the patients in `range`, indexed by
    /// [`TableId`]: each patient's history is built once for all of them.
    pub(crate) fn clinical_counts(&self, range: Range<u64>) -> [u64; TableId::ALL.len()] {
        range.fold([0; TableId::ALL.len()], |mut sum, i| {
            let counts = clinical::counts(self, &self.patient(self.first_patient + i));
            sum.iter_mut().zip(counts).for_each(|(s, c)| *s += c);
            sum
        })
    }

    /// Encodes the rows of `t` for the entities in `range`. `first_id` is the id
    /// of the first row; `first_condition_id` is that of the chunk's first
    /// condition (prescriptions reference them).
    pub(crate) fn emit<E: Encoder>(
        &self,
        t: TableId,
        range: Range<u64>,
        first_id: i64,
        first_condition_id: i64,
        enc: &mut E,
    ) {
        match t {
            TableId::Practices => range.for_each(|i| self.emit_practice(i, enc)),
            TableId::Practitioners => range.for_each(|i| self.emit_practitioner(i, enc)),
            TableId::Patients => {
                range.for_each(|i| self.emit_patient(&self.patient(self.first_patient + i), enc))
            }
            _ => {
                let mut ids = clinical::Ids {
                    next: first_id,
                    next_condition: first_condition_id,
                };
                for i in range {
                    let p = self.patient(self.first_patient + i);
                    clinical::emit(self, t, &p, &mut ids, enc);
                }
            }
        }
    }

    fn emit_practice<E: Encoder>(&self, i: u64, enc: &mut E) {
        let practice = &self.practices[i as usize];
        let mut rng = Stream::new(self.seed, "practices.details", i);
        let l = self.lists;
        let district = &l.districts[practice.district.unwrap_or(0)];
        let name = format!(
            "{} {}",
            rng.pick(&l.practice_prefixes),
            rng.pick(&l.practice_suffixes)
        );
        enc.begin_row();
        enc.int(practice.id);
        enc.text(&name);
        enc.text(&district.town);
        enc.text(&address::postcode(&mut rng, &district.district));
        enc.text(&person::landline_for(&mut rng, &district.district));
        enc.end_row();
    }

    fn emit_practitioner<E: Encoder>(&self, i: u64, enc: &mut E) {
        let id = i as i64 + 1;
        let at = self
            .practices
            .iter()
            .position(|p| {
                (p.first_practitioner..p.first_practitioner + p.practitioners).contains(&id)
            })
            .expect("every practitioner belongs to a practice");
        let practice = &self.practices[at];
        let position = (id - practice.first_practitioner) as usize;
        let role = &self.spec.practices.staff[self.calendars[at].roles[position]].role;
        let mut rng = Stream::new(self.seed, "practitioners", i);
        let female = rng.chance(0.55);
        let given = person::given_name(&mut rng, self.lists, female);
        let family = self.lists.family_names.sample(&mut rng);
        enc.begin_row();
        enc.int(id);
        enc.int(practice.id);
        enc.text(given);
        enc.text(family);
        enc.text(role);
        enc.text(&person::email(&mut rng, given, family, id));
        enc.end_row();
    }

    fn emit_patient<E: Encoder>(&self, p: &Patient, enc: &mut E) {
        let spec = &self.spec.patients;
        let l = self.lists;
        let mut rng = Stream::new(self.seed, "patients", p.index);
        let mut born = p.dob.year();
        if rng.chance(spec.adjacent_decade_name_share) {
            born += if rng.chance(0.5) { -10 } else { 10 };
        }
        let given = l.names_for(p.female, born).sample(&mut rng);
        let family = l.family_names.sample(&mut rng);
        let practice = &self.practices[p.practice];
        let district = match practice.district {
            Some(d) if rng.chance(spec.local_share) => d,
            _ => l.district_weights.sample(&mut rng),
        };
        let postcode = address::postcode(&mut rng, &l.districts[district].district);
        let phone = rng.chance(spec.phone_share).then(|| {
            if rng.chance(spec.mobile_share) {
                person::mobile(&mut rng)
            } else {
                person::landline(&mut rng)
            }
        });
        let adult = years_between(p.dob, self.as_of) >= 16;
        let email = (adult && rng.chance(spec.email_share))
            .then(|| person::email(&mut rng, given, family, p.id));
        let nhs = nhs::for_patient(self.seed, p.index);
        enc.begin_row();
        enc.int(p.id);
        enc.text(std::str::from_utf8(&nhs).unwrap());
        enc.text(given);
        enc.text(family);
        enc.date(p.dob);
        enc.text(if p.female { "F" } else { "M" });
        enc.text(&postcode);
        enc.opt_text(phone.as_deref());
        enc.opt_text(email.as_deref());
        enc.opt_date(p.death);
        enc.int(practice.id);
        enc.date(p.registered);
        enc.end_row();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world(n: u64) -> World {
        World::new(Spec::builtin().unwrap(), 1, n)
    }

    #[test]
    fn patient_facts_are_consistent() {
        let w = world(5000);
        let mut deceased = 0;
        let mut female = 0;
        for i in 0..5000 {
            let p = w.patient(i);
            assert!(p.dob < w.as_of);
            assert!(p.registered >= p.dob && p.registered <= p.last_day(w.as_of));
            if let Some(d) = p.death {
                assert!(d > p.dob && d <= w.as_of);
                deceased += 1;
            }
            female += p.female as u32;
        }
        assert!((2300..2800).contains(&female), "{female}");
        assert!(deceased > 50 && deceased < 500, "{deceased}");
    }

    #[test]
    fn ages_follow_the_population_pyramid() {
        let w = world(20_000);
        let ages: Vec<u32> = (0..20_000)
            .map(|i| years_between(w.patient(i).dob, w.as_of))
            .collect();
        let children = ages.iter().filter(|&&a| a < 15).count() as f64 / 20_000.0;
        let over_85 = ages.iter().filter(|&&a| a >= 85).count() as f64 / 20_000.0;
        assert!((0.15..0.20).contains(&children), "{children}");
        assert!((0.015..0.04).contains(&over_85), "{over_85}");
        assert!(ages.iter().all(|&a| a < 101));
    }

    #[test]
    fn practitioners_are_partitioned_among_practices() {
        let w = world(20_000);
        assert_eq!(w.practices.len(), 4);
        assert_eq!(w.calendars.len(), 4);
        let mut next = 1;
        for p in &w.practices {
            assert_eq!(p.first_practitioner, next);
            next += p.practitioners;
        }
    }
}
