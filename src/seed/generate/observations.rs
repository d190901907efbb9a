//! Observations, each taken at an in-person appointment for a reason: vital
//! signs when an acute illness is diagnosed, routine measurements at a share
//! of visits (growth-chart heights and weights for children), HbA1c reviews
//! for people with diabetes and a documented screening share for others.

use super::clinical::{Appointment, Condition};
use super::{Patient, World, years_between};
use crate::seed::lists::{GROWTH_FROM, Growth, Lists};
use crate::seed::rng::Stream;
use crate::seed::spec::by_age;
use chrono::NaiveDateTime;

pub(crate) struct Observation {
    /// Index into `Lists::observations`.
    pub kind: usize,
    /// Value in tenths.
    pub tenths: i64,
    pub at: NaiveDateTime,
}

fn tenths(x: f64) -> i64 {
    (x * 10.0).round() as i64
}

/// The growth reference at a fractional age (linear between whole years;
/// the last year's values for adults).
fn growth(l: &Lists, female: bool, age: f64) -> Growth {
    let table = &l.growth[female as usize];
    let x = (age - GROWTH_FROM as f64).clamp(0.0, (table.len() - 1) as f64);
    let (i, t) = (x.floor() as usize, x - x.floor());
    let (a, b) = (table[i], table[(i + 1).min(table.len() - 1)]);
    let mix = |p: f64, q: f64| p + (q - p) * t;
    Growth {
        height: mix(a.height, b.height),
        height_sd: mix(a.height_sd, b.height_sd),
        weight: mix(a.weight, b.weight),
        weight_sd: mix(a.weight_sd, b.weight_sd),
    }
}

/// Indices of `k` of `items`, chosen uniformly, in order.
fn choose(rng: &mut Stream, items: &[usize], k: usize) -> Vec<usize> {
    let mut need = k.min(items.len()) as u64;
    let mut out = Vec::with_capacity(need as usize);
    for (i, &x) in items.iter().enumerate() {
        if need > 0 && rng.below((items.len() - i) as u64) < need {
            out.push(x);
            need -= 1;
        }
    }
    out
}

pub(crate) fn observations(
    w: &World,
    p: &Patient,
    conditions: &[Condition],
    appts: &[Appointment],
) -> Vec<Observation> {
    let spec = &w.spec.observations;
    let l = w.lists;
    let Some((from, last)) = w.encounter_window(p) else {
        return Vec::new();
    };
    let mut rng = Stream::new(w.seed, "observations", p.index);
    let age = years_between(p.dob, last);
    let has = |tag: &str| conditions.iter().any(|c| l.conditions[c.kind].tag == tag);
    let (diabetic, hypertensive, obese, ckd) = (
        has("diabetes"),
        has("hypertension"),
        has("obesity"),
        has("ckd"),
    );
    let in_person: Vec<usize> = (0..appts.len())
        .filter(|&i| appts[i].in_person_attended)
        .collect();

    // Traits that hold across a patient's visits: a height centile, a weight
    // centile that follows it loosely, an adult BMI and a blood-pressure offset.
    let height_z = rng.normal(0.0, 1.0, -3.0, 3.0);
    let weight_z = 0.6 * height_z + rng.normal(0.0, 0.8, -2.5, 2.5) + if obese { 1.8 } else { 0.0 };
    let bmi_base = if obese {
        rng.normal(34.0, 3.5, 30.0, 55.0)
    } else {
        rng.normal(26.0, 3.8, 17.0, 29.9)
    };
    let bp_shift = rng.normal(0.0, 6.0, -15.0, 15.0) + if hypertensive { 14.0 } else { 0.0 };

    let k = |key| l.observation(key);
    let mut out = Vec::new();
    let mut push = |kind, value: f64, at| {
        out.push(Observation {
            kind,
            tenths: tenths(value),
            at,
        })
    };
    let heart_rate = |rng: &mut Stream, a: f64| match a as u32 {
        0 => rng.normal(130.0, 12.0, 90.0, 180.0),
        1..=4 => rng.normal(105.0, 10.0, 75.0, 150.0),
        5..=11 => rng.normal(88.0, 10.0, 60.0, 130.0),
        _ => rng.normal(72.0, 9.0, 45.0, 120.0),
    };
    let years_at = |at: NaiveDateTime| (at.date() - p.dob).num_days() as f64 / 365.25;

    // Vital signs where an acute illness was diagnosed.
    for c in conditions {
        let Some(i) = c.encounter else { continue };
        let at = appts[i].starts_at;
        let fever = rng.normal(37.6, 0.5, 36.0, 40.0);
        push(k("temperature"), (fever * 10.0).round() / 10.0, at);
        push(
            k("heart_rate"),
            (heart_rate(&mut rng, years_at(at)) + 8.0).round(),
            at,
        );
    }

    // Routine measurements at a share of in-person visits.
    let years = (last - from).num_days() as f64 / 365.25;
    let visits = (by_age(&spec.checkups, age) * years * (0.5 + rng.unit())).round() as usize;
    for i in choose(&mut rng, &in_person, visits) {
        let at = appts[i].starts_at;
        let a = years_at(at);
        push(k("heart_rate"), heart_rate(&mut rng, a).round(), at);
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
            let g = growth(l, p.female, a);
            let height = g.height + height_z * g.height_sd;
            let weight = if a >= 18.0 {
                (bmi_base + rng.normal(0.0, 0.6, -2.0, 2.0)) * ((height / 100.0) * (height / 100.0))
            } else {
                (g.weight + weight_z * g.weight_sd).max(g.weight * 0.6)
            };
            let bmi = weight / ((height / 100.0) * (height / 100.0));
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
    }

    // HbA1c: diabetes reviews at in-person visits, spaced by the review interval;
    // otherwise one screening test for a share of people at screening ages.
    if diabetic {
        let mut previous: Option<NaiveDateTime> = None;
        for &i in &in_person {
            let at = appts[i].starts_at;
            if previous.is_none_or(|d| (at - d).num_days() >= spec.hba1c_every_days as i64) {
                push(k("hba1c"), rng.normal(58.0, 11.0, 40.0, 110.0).round(), at);
                previous = Some(at);
            }
        }
    } else {
        let ages = spec.hba1c_screening_ages;
        let screened =
            (ages.min..=ages.max).contains(&(age as i64)) && rng.chance(spec.hba1c_screening_share);
        if let Some(&i) = screened
            .then(|| choose(&mut rng, &in_person, 1))
            .iter()
            .flatten()
            .next()
        {
            push(
                k("hba1c"),
                rng.normal(37.0, 3.5, 25.0, 47.0).round(),
                appts[i].starts_at,
            );
        }
    }
    out.sort_by_key(|o| o.at);
    out
}
