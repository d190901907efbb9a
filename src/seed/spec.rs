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

pub const BUILTIN: &str = include_str!("../../seeds/patients.toml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
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
pub struct Range {
    pub min: i64,
    pub max: i64,
}

/// A value that steps with age: the last entry whose `min_age` ≤ age applies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgeStep {
    pub min_age: u32,
    #[serde(alias = "share")]
    pub rate: f64,
}

pub fn by_age(steps: &[AgeStep], age: u32) -> f64 {
    steps
        .iter()
        .rev()
        .find(|s| s.min_age <= age)
        .map_or(0.0, |s| s.rate)
}

/// A weighted choice among named values, from a TOML table `{ name = weight }`.
#[derive(Debug)]
pub struct Choice {
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
    pub fn sample(&self, rng: &mut Stream) -> &str {
        &self.names[self.sample_index(rng)]
    }

    pub fn sample_index(&self, rng: &mut Stream) -> usize {
        self.weights.sample(rng)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Practices {
    pub patients_per_practice: u64,
    pub practitioners: Range,
    pub roles: Choice,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patients {
    pub female_share: f64,
    pub age_bands: Vec<f64>,
    pub email_share: f64,
    pub phone_share: f64,
    pub mobile_share: f64,
    pub deceased: Vec<AgeStep>,
    pub death_within_years: u32,
    pub registered_within_years: u32,
    pub local_share: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    pub chronic_within_years: u32,
    pub acute_within_years: u32,
    pub prevalence_scale: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prescriptions {
    pub max_medicines: u32,
    pub repeat_issues: Range,
    pub acute_course_share: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Appointments {
    pub per_year: Vec<AgeStep>,
    pub female_factor: f64,
    pub within_years: u32,
    pub max_per_patient: u32,
    #[serde(with = "hhmm")]
    pub opens: NaiveTime,
    #[serde(with = "hhmm")]
    pub closes: NaiveTime,
    pub durations: Vec<u32>,
    pub modes: Choice,
    pub statuses: Choice,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observations {
    pub within_years: u32,
    pub checkups: Vec<AgeStep>,
    pub hba1c_every_months: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allergies {
    pub count_weights: Vec<u64>,
    pub severities: Choice,
}

mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveTime, D::Error> {
        let s = String::deserialize(d)?;
        NaiveTime::parse_from_str(&s, "%H:%M").map_err(serde::de::Error::custom)
    }
}

impl Spec {
    pub fn builtin() -> Result<Spec> {
        let spec: Spec = toml::from_str(BUILTIN).context("seeds/patients.toml is invalid")?;
        spec.validate()?;
        Ok(spec)
    }

    fn validate(&self) -> Result<()> {
        let p = &self.patients;
        for (name, v) in [
            ("female_share", p.female_share),
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
        if a.opens >= a.closes || a.durations.is_empty() {
            bail!("seeds/patients.toml: appointments need opens < closes and some durations");
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
