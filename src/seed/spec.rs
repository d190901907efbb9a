//! The built-in seed spec (`seeds/patients.toml`): row counts per patient and
//! the distributions of the patient-records model, parsed and validated.
//!
//! The file is embedded at build time, so a ward binary always carries the
//! spec its golden hash was pinned with.

use std::collections::BTreeMap;

use anyhow::{Context, Result, bail};
use chrono::{NaiveDate, NaiveTime};
use serde::Deserialize;

use super::rng::{Stream, Weighted};

pub(crate) const BUILTIN: &str = include_str!("../../seeds/patients.toml");
/// The layout of `seeds/patients.toml` this code reads (its `version`).
const BUILTIN_VERSION: u32 = 3;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Spec {
    pub version: u32,
    pub seed: u64,
    pub as_of: NaiveDate,
    pub practices: Practices,
    pub patients: Patients,
    pub conditions: Conditions,
    pub prescriptions: Prescriptions,
    pub appointments: Appointments,
    pub observations: Observations,
    pub allergies: Allergies,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(crate) struct Range {
    pub min: i64,
    pub max: i64,
}

/// A value that steps with age: the last entry whose `min_age` ≤ age applies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AgeStep {
    pub min_age: u32,
    #[serde(alias = "share")]
    pub rate: f64,
}

pub(crate) fn by_age(steps: &[AgeStep], age: u32) -> f64 {
    steps
        .iter()
        .rev()
        .find(|s| s.min_age <= age)
        .map_or(0.0, |s| s.rate)
}

/// A weighted choice among named values, from a TOML table `{ name = weight }`.
#[derive(Debug)]
pub(crate) struct Choice {
    pub names: Vec<String>,
    weights: Weighted,
}

impl<'de> Deserialize<'de> for Choice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // BTreeMap: the order of keys in the file must not matter.
        let map = BTreeMap::<String, u64>::deserialize(d)?;
        if map.values().sum::<u64>() == 0 {
            return Err(serde::de::Error::custom("weights must not all be zero"));
        }
        Ok(Choice {
            names: map.keys().cloned().collect(),
            weights: Weighted::new(map.values().copied()),
        })
    }
}

impl Choice {
    pub(crate) fn sample_index(&self, rng: &mut Stream) -> usize {
        self.weights.sample(rng)
    }

    pub(crate) fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Practices {
    pub patients_per_practice: u64,
    pub practitioners: Range,
    /// The practice's team: each role's share of it and how it works.
    pub staff: Vec<Staff>,
    /// Share of practices that opt in to Saturday-morning clinics.
    pub saturday_share: f64,
}

/// A role in the practice team.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Staff {
    pub role: String,
    /// Relative share of the team (the roster is apportioned by these).
    pub share: u32,
    /// Whether the role may issue prescriptions.
    pub prescriber: bool,
    /// Length of one appointment slot.
    pub slot_minutes: u32,
    /// Appointments a clinician of this role offers a day (half each session).
    pub daily_slots: u32,
    /// Whether the role does home visits.
    #[serde(default)]
    pub home_visits: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Patients {
    /// Share of patients who are female, by age.
    pub female_share: Vec<AgeStep>,
    pub age_bands: Vec<f64>,
    pub email_share: f64,
    pub phone_share: f64,
    pub mobile_share: f64,
    /// Annual probability of death by age, for women and for men.
    pub mortality_female: Vec<AgeStep>,
    pub mortality_male: Vec<AgeStep>,
    /// Deaths are kept on the list for this many years before as_of.
    pub death_within_years: u32,
    /// Share of given names drawn from the decade next to the birth decade
    /// (names rise and fall across decade boundaries).
    pub adjacent_decade_name_share: f64,
    pub registered_within_years: u32,
    pub local_share: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Conditions {
    pub chronic_within_years: u32,
    pub acute_within_years: u32,
    pub prevalence_scale: f64,
    /// Groups of SNOMED codes never recorded together: the first drawn wins.
    pub exclusive: Vec<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Prescriptions {
    /// Days between repeat issues.
    pub repeat_every_days: u32,
    /// A repeat course starts within this many days of the condition's onset.
    pub start_within_days: u32,
    /// A repeat is issued up to this many days after it falls due.
    pub late_days_max: u32,
    /// The share of repeat cycles a patient skips (no issue that cycle).
    pub missed_issue_share: f64,
    pub acute_course_share: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Appointments {
    pub per_year: Vec<AgeStep>,
    pub female_factor: f64,
    pub within_years: u32,
    pub max_per_patient: u32,
    /// How much a patient's yearly rate varies: uniform in mean × (1 ± spread).
    pub spread: f64,
    /// Session starts (local time); each session holds half a role's daily slots.
    #[serde(with = "hhmm")]
    pub morning: NaiveTime,
    #[serde(with = "hhmm")]
    pub afternoon: NaiveTime,
    pub modes: Choice,
    pub statuses: Choice,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Observations {
    /// In-person appointments a year at which routine measurements are taken, by age.
    pub checkups: Vec<AgeStep>,
    /// People with diabetes get an HbA1c at an in-person appointment at least this many days after the last.
    pub hba1c_every_days: u32,
    /// Share of people without diabetes in the screening ages with an HbA1c in the window.
    pub hba1c_screening_share: f64,
    pub hba1c_screening_ages: Range,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Allergies {
    pub count_weights: Vec<u64>,
    pub severities: Choice,
}

mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer};

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let s = String::deserialize(d)?;
        NaiveTime::parse_from_str(&s, "%H:%M").map_err(serde::de::Error::custom)
    }
}

impl Spec {
    pub(crate) fn builtin() -> Result<Spec> {
        let spec: Spec = toml::from_str(BUILTIN).context("seeds/patients.toml is invalid")?;
        if spec.version != BUILTIN_VERSION {
            anyhow::bail!(
                "seeds/patients.toml is version {}, this ward reads version {BUILTIN_VERSION}",
                spec.version
            );
        }
        spec.validate()?;
        Ok(spec)
    }

    fn validate(&self) -> Result<()> {
        let p = &self.patients;
        for (name, v) in [
            ("email_share", p.email_share),
            ("phone_share", p.phone_share),
            ("mobile_share", p.mobile_share),
            ("local_share", p.local_share),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bail!("seeds/patients.toml: patients.{name} must be between 0 and 1");
            }
        }
        if p.age_bands.is_empty() || p.age_bands.iter().any(|w| *w < 0.0) {
            bail!("seeds/patients.toml: patients.age_bands must be non-negative weights");
        }
        let a = &self.appointments;
        if a.morning >= a.afternoon {
            bail!("seeds/patients.toml: appointments.morning must come before afternoon");
        }
        let staff = &self.practices.staff;
        if !staff.iter().any(|s| s.prescriber && s.share > 0)
            || staff
                .iter()
                .any(|s| s.daily_slots < 2 || s.slot_minutes == 0)
        {
            bail!(
                "seeds/patients.toml: practices.staff needs a prescriber and at least 2 slots a day per role"
            );
        }
        if self.practices.practitioners.min < 1
            || self.practices.practitioners.min > self.practices.practitioners.max
        {
            bail!("seeds/patients.toml: practices.practitioners needs 1 ≤ min ≤ max");
        }
        if self.allergies.count_weights.iter().sum::<u64>() == 0 {
            bail!("seeds/patients.toml: allergies.count_weights must not all be zero");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_spec_parses_and_validates() {
        let spec = Spec::builtin().unwrap();
        assert_eq!(spec.patients.age_bands.len(), 20);
        assert!(spec.as_of <= chrono::Utc::now().date_naive());
    }

    #[test]
    fn by_age_takes_the_last_step_not_above_age() {
        let steps = vec![
            AgeStep {
                min_age: 0,
                rate: 1.0,
            },
            AgeStep {
                min_age: 65,
                rate: 2.0,
            },
        ];
        assert_eq!(by_age(&steps, 64), 1.0);
        assert_eq!(by_age(&steps, 65), 2.0);
    }
}
