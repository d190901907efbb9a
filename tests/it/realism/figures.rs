//! The realism figures: each rate issue #15 names, computed from an export
//! alone (no knowledge of how ward generated it), so a regression anywhere in
//! the model shows up as a figure outside its band.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{Datelike, Days, NaiveDate, Weekday};

use super::data::{Export, age, date};

const T2D: &str = "44054006";
const T1D: &str = "46635009";
const HYPERTENSION: &str = "59621000";
const ASTHMA: &str = "195967001";
const IHD: &str = "414545008";
const DEPRESSION: &str = "35489007";
const HBA1C: &str = "999791000000106";
const HEIGHT: &str = "50373000";
const TEMPERATURE: &str = "386725007";
const HEART_RATE: &str = "364075005";

/// Roles that may issue prescriptions (issue #15: GPs, nurse and pharmacist prescribers).
const PRESCRIBERS: [&str; 3] = ["GP", "Nurse prescriber", "Clinical pharmacist"];
/// Girls' names of the 1930s–60s that ONS lists never show in the 2010s–20s top 100.
const OLD_GIRLS_NAMES: [&str; 16] = [
    "Susan",
    "Margaret",
    "Patricia",
    "Linda",
    "Barbara",
    "Brenda",
    "Christine",
    "Carol",
    "Janet",
    "Jean",
    "Sandra",
    "Pauline",
    "Maureen",
    "Shirley",
    "Doreen",
    "Valerie",
];

pub struct Seeds {
    pub as_of: NaiveDate,
    pub bank_holidays: HashSet<NaiveDate>,
    /// (condition SNOMED code, medicine name) → (min_age, max_age) at issue.
    pub age_bands: HashMap<(String, String), (i32, i32)>,
    /// (female, age) → (height median, sd).
    pub growth: HashMap<(bool, i32), (f64, f64)>,
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn minus_days(d: NaiveDate, n: u64) -> NaiveDate {
    d.checked_sub_days(Days::new(n)).unwrap()
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Days a patient spent alive (and, if `registered`, registered) in `from..to`, in years.
fn person_years(e: &Export, from: NaiveDate, to: NaiveDate, registered: bool) -> f64 {
    person_years_of(e, from, to, registered, &|_| true)
}

/// `person_years` of the patients `keep` selects.
fn person_years_of(
    e: &Export,
    from: NaiveDate,
    to: NaiveDate,
    registered: bool,
    keep: &dyn Fn(&super::data::Patient) -> bool,
) -> f64 {
    e.patients
        .values()
        .filter(|p| keep(p))
        .map(|p| {
            let start = from
                .max(p.dob)
                .max(if registered { p.registered } else { p.dob });
            let end = to.min(p.death.unwrap_or(to));
            (end - start).num_days().max(0) as f64 / 365.25
        })
        .sum()
}

pub fn compute(e: &Export, s: &Seeds) -> BTreeMap<&'static str, f64> {
    let mut f = BTreeMap::new();
    let year_ago = minus_days(s.as_of, 365);
    let alive = |id: &i64| e.patients[id].death.is_none();

    // Calendar.
    let appts = &e.appointments;
    let days =
        |p: &dyn Fn(NaiveDate) -> bool| appts.iter().filter(|a| p(a.starts_at.date())).count();
    f.insert(
        "appointments_monday_share",
        share(days(&|d| d.weekday() == Weekday::Mon), appts.len()),
    );
    f.insert(
        "appointments_weekend_share",
        share(days(&is_weekend), appts.len()),
    );
    f.insert(
        "appointments_on_bank_holidays",
        days(&|d| s.bank_holidays.contains(&d)) as f64,
    );
    let obs_weekend = e
        .observations
        .iter()
        .filter(|o| is_weekend(o.at.date()))
        .count();
    f.insert(
        "observations_weekend_share",
        share(obs_weekend, e.observations.len()),
    );
    let mut by_clinician: HashMap<i64, Vec<(chrono::NaiveDateTime, i64)>> = HashMap::new();
    for a in appts {
        by_clinician
            .entry(a.practitioner)
            .or_default()
            .push((a.starts_at, a.minutes));
    }
    let mut overlaps = 0;
    let mut per_day: HashMap<(i64, NaiveDate), usize> = HashMap::new();
    for (who, list) in &mut by_clinician {
        list.sort();
        for w in list.windows(2) {
            if w[1].0 < w[0].0 + chrono::Duration::minutes(w[0].1) {
                overlaps += 1;
            }
        }
        for (at, _) in list.iter() {
            *per_day.entry((*who, at.date())).or_default() += 1;
        }
    }
    f.insert("overlapping_bookings", overlaps as f64);
    f.insert(
        "max_appointments_per_clinician_day",
        per_day.values().copied().max().unwrap_or(0) as f64,
    );
    let mut hba1c_days: HashMap<NaiveDate, usize> = HashMap::new();
    for o in e.observations.iter().filter(|o| o.snomed == HBA1C) {
        *hba1c_days.entry(o.at.date()).or_default() += 1;
    }
    let mut counts: Vec<usize> = hba1c_days.values().copied().collect();
    counts.sort();
    let median = counts.get(counts.len() / 2).copied().unwrap_or(1).max(1);
    f.insert(
        "hba1c_peak_day_over_median",
        *counts.last().unwrap_or(&0) as f64 / median as f64,
    );
    let encounters: HashSet<(i64, chrono::NaiveDateTime)> =
        appts.iter().map(|a| (a.patient, a.starts_at)).collect();
    let off = e
        .observations
        .iter()
        .filter(|o| !encounters.contains(&(o.patient, o.at)))
        .count();
    f.insert(
        "observations_off_encounter_share",
        share(off, e.observations.len()),
    );
    let seen_by: HashSet<(i64, i64, NaiveDate)> = appts
        .iter()
        .map(|a| (a.patient, a.practitioner, a.starts_at.date()))
        .collect();
    let acute: HashSet<i64> = e
        .conditions
        .iter()
        .filter(|c| c.acute)
        .map(|c| c.id)
        .collect();
    let recent_acute: Vec<_> = e
        .prescriptions
        .iter()
        .filter(|rx| acute.contains(&rx.condition) && rx.issued > year_ago)
        .collect();
    let off = recent_acute
        .iter()
        .filter(|rx| !seen_by.contains(&(rx.patient, rx.practitioner, rx.issued)))
        .count();
    f.insert(
        "acute_prescriptions_off_encounter_share",
        share(off, recent_acute.len()),
    );

    // Prescribing.
    let rxs = &e.prescriptions;
    let non_prescriber = rxs
        .iter()
        .filter(|rx| !PRESCRIBERS.contains(&e.roles[&rx.practitioner].as_str()))
        .count();
    f.insert(
        "prescriptions_by_non_prescribers_share",
        share(non_prescriber, rxs.len()),
    );
    let penicillin_allergic: HashSet<i64> = e
        .allergies
        .iter()
        .filter(|(_, subs)| subs.iter().any(|s| s == "Penicillin" || s == "Amoxicillin"))
        .map(|(p, _)| *p)
        .collect();
    let contraindicated = rxs
        .iter()
        .filter(|rx| {
            penicillin_allergic.contains(&rx.patient)
                && rx.medicine.to_lowercase().contains("cillin")
        })
        .count();
    f.insert(
        "penicillins_for_penicillin_allergic",
        contraindicated as f64,
    );
    let t1 = e.with_condition(T1D);
    let t2 = e.with_condition(T2D);
    let insulin = e.prescribed(|m| m.starts_with("Insulin"));
    // Living patients diagnosed and registered at least two months ago (time for a first issue).
    let t1_established: HashSet<i64> = e
        .conditions
        .iter()
        .filter(|c| {
            let since = c.onset.max(e.patients[&c.patient].registered);
            c.snomed == T1D && since < minus_days(s.as_of, 60) && alive(&c.patient)
        })
        .map(|c| c.patient)
        .collect();
    f.insert(
        "type1_without_insulin_share",
        share(
            t1_established.difference(&insulin).count(),
            t1_established.len(),
        ),
    );
    f.insert(
        "type1_and_type2_together",
        t1.intersection(&t2).count() as f64,
    );
    let condition_code: HashMap<i64, &str> = e
        .conditions
        .iter()
        .map(|c| (c.id, c.snomed.as_str()))
        .collect();
    let outside = rxs
        .iter()
        .filter(|rx| {
            let a = age(e.patients[&rx.patient].dob, rx.issued);
            let key = (
                condition_code[&rx.condition].to_string(),
                rx.medicine.clone(),
            );
            let (lo, hi) = s
                .age_bands
                .get(&key)
                .copied()
                .unwrap_or_else(|| panic!("{key:?} not in medicines.csv"));
            a < lo || a > hi
        })
        .count();
    f.insert("formulations_outside_age_band", outside as f64);
    let uptake = |cond: &str, is: &dyn Fn(&str) -> bool, min_age: i32| {
        let had: HashSet<i64> = e
            .with_condition(cond)
            .into_iter()
            .filter(|p| alive(p) && age(e.patients[p].dob, s.as_of) >= min_age)
            .collect();
        share(had.intersection(&e.prescribed(is)).count(), had.len())
    };
    let statin = |m: &str| {
        ["Atorvastatin", "Simvastatin", "Rosuvastatin", "Pravastatin"]
            .iter()
            .any(|s| m.starts_with(s))
    };
    f.insert("statin_uptake_ihd", uptake(IHD, &statin, 18));
    f.insert("statin_uptake_type2_40_plus", uptake(T2D, &statin, 40));
    f.insert(
        "metformin_uptake_type2",
        uptake(T2D, &|m| m.starts_with("Metformin"), 18),
    );
    let antihypertensive = |m: &str| {
        [
            "Amlodipine",
            "Ramipril",
            "Lisinopril",
            "Losartan",
            "Candesartan",
            "Indapamide",
            "Bendroflumethiazide",
        ]
        .iter()
        .any(|s| m.starts_with(s))
    };
    f.insert(
        "antihypertensive_uptake_hypertension",
        uptake(HYPERTENSION, &antihypertensive, 18),
    );
    f.insert(
        "reliever_uptake_asthma",
        uptake(ASTHMA, &|m| m.starts_with("Salbutamol"), 0),
    );
    let chronic: Vec<_> = rxs
        .iter()
        .filter(|rx| !acute.contains(&rx.condition))
        .collect();
    let recent = chronic
        .iter()
        .filter(|rx| rx.issued > minus_days(s.as_of, 183))
        .count();
    f.insert(
        "chronic_prescriptions_in_last_183_days_share",
        share(recent, chronic.len()),
    );
    // A repeat course's history reaches back to its start: the first issue of
    // each course (condition, medicine) within 60 days of the diagnosis, or
    // of registration when that came later. (Medicines newer than the
    // diagnosis start later by design, so the share is just under 1.)
    let onset: HashMap<i64, NaiveDate> = e.conditions.iter().map(|c| (c.id, c.onset)).collect();
    let mut first_issue: HashMap<(i64, &str), (i64, NaiveDate)> = HashMap::new();
    for rx in &chronic {
        let entry = first_issue
            .entry((rx.condition, rx.medicine.as_str()))
            .or_insert((rx.patient, rx.issued));
        entry.1 = entry.1.min(rx.issued);
    }
    let from_start = first_issue
        .iter()
        .filter(|((condition, _), (patient, first))| {
            let since = onset[condition].max(e.patients[patient].registered);
            (*first - since).num_days() <= 60
        })
        .count();
    f.insert(
        "repeat_courses_issued_from_their_start_share",
        share(from_start, first_issue.len()),
    );

    // Observations.
    let diabetic: HashSet<i64> = t1.union(&t2).copied().collect();
    let hba1c: Vec<_> = e
        .observations
        .iter()
        .filter(|o| o.snomed == HBA1C)
        .collect();
    let non_diabetic = hba1c
        .iter()
        .filter(|o| !diabetic.contains(&o.patient))
        .count();
    f.insert("hba1c_non_diabetic_share", share(non_diabetic, hba1c.len()));
    // Living people with diabetes diagnosed and registered over a year ago:
    // an HbA1c within the last 15 months (the National Diabetes Audit's window).
    let reviewable: HashSet<i64> = e
        .conditions
        .iter()
        .filter(|c| (c.snomed == T1D || c.snomed == T2D) && alive(&c.patient))
        .filter(|c| c.onset.max(e.patients[&c.patient].registered) < year_ago)
        .map(|c| c.patient)
        .collect();
    let reviewed: HashSet<i64> = hba1c
        .iter()
        .filter(|o| o.at.date() > minus_days(s.as_of, 456))
        .map(|o| o.patient)
        .collect();
    f.insert(
        "diabetics_with_hba1c_in_15_months_share",
        share(reviewable.intersection(&reviewed).count(), reviewable.len()),
    );
    let mut z = [Vec::new(), Vec::new()];
    let mut young_heights = HashSet::new();
    for o in e.observations.iter().filter(|o| o.snomed == HEIGHT) {
        let p = &e.patients[&o.patient];
        let a = age(p.dob, o.at.date());
        if !(2..=17).contains(&a) {
            continue;
        }
        if a <= 11 {
            young_heights.insert((o.value * 10.0).round() as i64);
        }
        // The reference at the exact age: linear between whole years.
        let exact = (o.at.date() - p.dob).num_days() as f64 / 365.25;
        let t = exact - a as f64;
        let (m0, sd0) = s.growth[&(p.female, a)];
        let (m1, sd1) = s.growth[&(p.female, a + 1)];
        let (median, sd) = (m0 + (m1 - m0) * t, sd0 + (sd1 - sd0) * t);
        z[p.female as usize].push((o.value - median) / sd);
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    f.insert(
        "child_height_distinct_values_2_11",
        young_heights.len() as f64,
    );
    f.insert("child_height_mean_z_boys", mean(&z[0]));
    f.insert("child_height_mean_z_girls", mean(&z[1]));
    let all: Vec<f64> = z.concat();
    let m = mean(&all);
    f.insert(
        "child_height_z_sd",
        (all.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / all.len().max(1) as f64).sqrt(),
    );
    let vitals: HashSet<(i64, NaiveDate)> = e
        .observations
        .iter()
        .filter(|o| o.snomed == TEMPERATURE || o.snomed == HEART_RATE)
        .map(|o| (o.patient, o.at.date()))
        .collect();
    // Illnesses diagnosed at this practice: onset after registration.
    let acute_recent: Vec<_> = e
        .conditions
        .iter()
        .filter(|c| c.acute && c.onset > year_ago && c.onset >= e.patients[&c.patient].registered)
        .collect();
    let with_vitals = acute_recent
        .iter()
        .filter(|c| vitals.contains(&(c.patient, c.onset)))
        .count();
    f.insert(
        "vitals_at_acute_onset_share",
        share(with_vitals, acute_recent.len()),
    );

    // Population.
    let deaths_last_year = e
        .patients
        .values()
        .filter(|p| p.death.is_some_and(|d| d > year_ago))
        .count();
    f.insert(
        "deaths_per_1000_per_year",
        1000.0 * deaths_last_year as f64 / person_years(e, year_ago, s.as_of, false),
    );
    let deaths: Vec<_> = e
        .patients
        .values()
        .filter_map(|p| p.death.map(|d| age(p.dob, d)))
        .collect();
    f.insert(
        "deaths_under_45_share",
        share(deaths.iter().filter(|&&a| a < 45).count(), deaths.len()),
    );
    let female_share = |lo: i32, hi: i32| {
        let band: Vec<_> = e
            .patients
            .values()
            .filter(|p| p.death.is_none() && (lo..=hi).contains(&age(p.dob, s.as_of)))
            .collect();
        share(band.iter().filter(|p| p.female).count(), band.len())
    };
    f.insert("female_share_under_15", female_share(0, 14));
    f.insert("female_share_90_plus", female_share(90, 200));
    let young_girls: Vec<_> = e
        .patients
        .values()
        .filter(|p| p.female && p.dob >= date("2016-01-01"))
        .collect();
    let old_named = young_girls
        .iter()
        .filter(|p| OLD_GIRLS_NAMES.contains(&p.given_name.as_str()))
        .count();
    f.insert(
        "girls_born_2016_on_with_1950s_names_share",
        share(old_named, young_girls.len()),
    );
    let last_year = appts
        .iter()
        .filter(|a| a.starts_at.date() > year_ago)
        .count();
    f.insert(
        "appointments_per_person_year",
        last_year as f64 / person_years(e, year_ago, s.as_of, true),
    );
    let adult_rate = |female: bool| {
        let adult = |p: &super::data::Patient| p.female == female && age(p.dob, s.as_of) >= 16;
        let n = appts
            .iter()
            .filter(|a| a.starts_at.date() > year_ago && adult(&e.patients[&a.patient]))
            .count();
        n as f64 / person_years_of(e, year_ago, s.as_of, true, &adult)
    };
    f.insert(
        "appointments_women_to_men_16_plus",
        adult_rate(true) / adult_rate(false),
    );
    let prevalence = |cond: &str, lo: i32, hi: i32| {
        let with = e.with_condition(cond);
        let band: Vec<_> = e
            .patients
            .iter()
            .filter(|(_, p)| p.death.is_none() && (lo..=hi).contains(&age(p.dob, s.as_of)))
            .collect();
        share(
            band.iter().filter(|(id, _)| with.contains(id)).count(),
            band.len(),
        )
    };
    f.insert(
        "hypertension_prevalence_40_49",
        prevalence(HYPERTENSION, 40, 49),
    );
    f.insert("asthma_prevalence_all_ages", prevalence(ASTHMA, 0, 200));
    f.insert(
        "depression_prevalence_18_plus",
        prevalence(DEPRESSION, 18, 200),
    );
    f
}
