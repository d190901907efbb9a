//! The word and code lists in `seeds/lists/`, embedded and parsed once.
//!
//! They ship with ward (not from a crate whose data may change) so generated
//! values stay stable; their sources and licences are in `seeds/SOURCES.md`.
//! The files are plain CSV without quoting; the parser is strict so a broken
//! list fails the unit tests rather than producing odd rows.

use std::collections::HashMap;
use std::sync::OnceLock;

use chrono::NaiveDate;

use super::rng::{Stream, Weighted};

macro_rules! list {
    ($file:literal) => {
        ($file, include_str!(concat!("../../seeds/lists/", $file)))
    };
}

/// A weighted list of strings.
#[derive(Debug)]
pub struct Names {
    pub items: Vec<String>,
    weights: Weighted,
}

impl Names {
    pub fn sample(&self, rng: &mut Stream) -> &str {
        &self.items[self.weights.sample(rng)]
    }
}

#[derive(Debug)]
pub struct District {
    pub district: String,
    pub town: String,
}

#[derive(Debug)]
pub struct Condition {
    pub snomed: String,
    pub term: String,
    pub icd10: String,
    pub tag: String,
    pub chronic: bool,
    /// Percent prevalence by [sex][age band]: sex 0 = female, 1 = male; bands
    /// 0–17, 18–39, 40–64, 65+.
    pub prevalence: [[f64; 4]; 2],
    /// Indices into `Lists::medicines`.
    pub medicines: Vec<usize>,
}

#[derive(Debug)]
pub struct Medicine {
    pub name: String,
    pub dose: String,
    pub quantity: i32,
    /// Ages (in whole years, inclusive) the formulation is prescribed at.
    pub min_age: u32,
    pub max_age: u32,
    /// Drug class: allergies contraindicate classes, and a patient is on at
    /// most one repeat medicine of a class.
    pub class: String,
    /// Chronic: the chance a patient with the condition is on it. Acute: the
    /// weight among the condition's eligible alternatives.
    pub uptake: f64,
    /// Chronic medicines sharing a group are alternatives (one at most).
    pub group: String,
    /// When the medicine became a first-line treatment here (its NICE
    /// appraisal); a course for an older diagnosis starts no earlier.
    /// `NaiveDate::MIN` for long-established medicines.
    pub first_line_from: NaiveDate,
}

#[derive(Debug)]
pub struct Allergen {
    pub snomed: String,
    pub substance: String,
    pub reactions: Vec<String>,
    /// Drug classes this allergy rules out.
    pub contraindicates: Vec<String>,
}

/// Reference height and weight for one sex and whole year of age (UK-WHO/UK90).
#[derive(Debug, Clone, Copy)]
pub struct Growth {
    pub height: f64,
    pub height_sd: f64,
    pub weight: f64,
    pub weight_sd: f64,
}

#[derive(Debug)]
pub struct ObservationKind {
    pub key: String,
    pub snomed: String,
    pub term: String,
    pub unit: String,
}

#[derive(Debug)]
pub struct Lists {
    pub female_names: Names,
    pub male_names: Names,
    pub family_names: Names,
    pub districts: Vec<District>,
    pub district_weights: Weighted,
    pub conditions: Vec<Condition>,
    pub medicines: Vec<Medicine>,
    pub allergens: Vec<Allergen>,
    pub allergen_weights: Weighted,
    pub observations: Vec<ObservationKind>,
    pub practice_prefixes: Vec<String>,
    pub practice_suffixes: Vec<String>,
    /// Given names by [female as usize][birth decade index from 1920].
    pub names_by_decade: [Vec<Names>; 2],
    /// Growth references by [female as usize][age − GROWTH_FROM].
    pub growth: [Vec<Growth>; 2],
    /// England and Wales bank holidays (seeds/bank_holidays.csv), sorted.
    pub bank_holidays: Vec<chrono::NaiveDate>,
}

/// The first birth decade of `names_by_decade` and the first age of `growth`.
pub(crate) const DECADE_FROM: i32 = 1920;
pub(crate) const GROWTH_FROM: u32 = 2;

/// Rows of a CSV list with exactly the expected header.
fn rows<'a>((file, text): (&str, &'a str), header: &str) -> Vec<Vec<&'a str>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let first = lines.next().unwrap_or_default().trim();
    assert_eq!(first, header, "seeds/lists/{file}: unexpected header");
    let n = header.split(',').count();
    lines
        .enumerate()
        .map(|(i, line)| {
            let cols: Vec<&str> = line
                .trim_end_matches('\r')
                .split(',')
                .map(str::trim)
                .collect();
            assert_eq!(
                cols.len(),
                n,
                "seeds/lists/{file} line {}: expected {n} columns",
                i + 2
            );
            cols
        })
        .collect()
}

fn weight(file: &str, s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|_| panic!("seeds/lists/{file}: bad weight {s:?}"))
}

fn names(src: (&str, &str)) -> Names {
    let rows = rows(src, "name,weight");
    Names {
        weights: Weighted::new(rows.iter().map(|r| weight(src.0, r[1]))),
        items: rows.iter().map(|r| r[0].to_string()).collect(),
    }
}

fn names_by_decade() -> [Vec<Names>; 2] {
    let src = list!("given_names_by_decade.csv");
    let rows = rows(src, "decade,sex,name,weight");
    [false, true].map(|female| {
        let sex = if female { "F" } else { "M" };
        let mut decades = Vec::new();
        for decade in (DECADE_FROM..).step_by(10) {
            let of: Vec<_> = rows
                .iter()
                .filter(|r| r[1] == sex && r[0].parse::<i32>() == Ok(decade))
                .collect();
            if of.is_empty() {
                break;
            }
            decades.push(Names {
                weights: Weighted::new(of.iter().map(|r| weight(src.0, r[3]))),
                items: of.iter().map(|r| r[2].to_string()).collect(),
            });
        }
        assert!(
            !decades.is_empty(),
            "seeds/lists/given_names_by_decade.csv: no {sex} names"
        );
        decades
    })
}

fn growth() -> [Vec<Growth>; 2] {
    let src = list!("growth.csv");
    let rows = rows(src, "sex,age,height_cm,height_sd,weight_kg,weight_sd");
    [false, true].map(|female| {
        let sex = if female { "F" } else { "M" };
        let of: Vec<_> = rows.iter().filter(|r| r[0] == sex).collect();
        of.iter()
            .enumerate()
            .map(|(i, r)| {
                assert_eq!(
                    r[1].parse::<u32>().ok(),
                    Some(GROWTH_FROM + i as u32),
                    "growth.csv: ages in order"
                );
                let f = |j: usize| -> f64 { r[j].parse().expect("growth.csv: number") };
                Growth {
                    height: f(2),
                    height_sd: f(3),
                    weight: f(4),
                    weight_sd: f(5),
                }
            })
            .collect()
    })
}

impl Lists {
    /// The parsed lists (parsed on first use, then shared).
    pub fn get() -> &'static Lists {
        static LISTS: OnceLock<Lists> = OnceLock::new();
        LISTS.get_or_init(Lists::parse)
    }

    fn parse() -> Lists {
        let districts_src = list!("postcode_districts.csv");
        let district_rows = rows(districts_src, "district,town,weight");

        let med_src = list!("medicines.csv");
        let med_rows = rows(
            med_src,
            "condition_snomed_id,medicine,strength,dose,quantity,min_age,max_age,class,uptake,group,first_line_from",
        );
        let mut meds_by_condition: HashMap<&str, Vec<usize>> = HashMap::new();
        let medicines = med_rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                meds_by_condition.entry(r[0]).or_default().push(i);
                Medicine {
                    name: r[1].to_string(),
                    dose: r[3].to_string(),
                    quantity: r[4].parse().expect("medicines.csv: quantity"),
                    min_age: r[5].parse().expect("medicines.csv: min_age"),
                    max_age: r[6].parse().expect("medicines.csv: max_age"),
                    class: r[7].to_string(),
                    uptake: r[8].parse().expect("medicines.csv: uptake"),
                    group: r[9].to_string(),
                    first_line_from: match r[10] {
                        "" => NaiveDate::MIN,
                        day => NaiveDate::parse_from_str(day, "%Y-%m-%d")
                            .expect("medicines.csv: first_line_from"),
                    },
                }
            })
            .collect();

        let cond_src = list!("conditions.csv");
        let conditions = rows(
            cond_src,
            "snomed_id,term,icd10,tag,chronic,f_0_17,f_18_39,f_40_64,f_65,m_0_17,m_18_39,m_40_64,m_65",
        )
        .iter()
        .map(|r| {
            let p = |i: usize| -> f64 { r[i].parse().expect("conditions.csv: prevalence") };
            Condition {
                snomed: r[0].to_string(),
                term: r[1].to_string(),
                icd10: r[2].to_string(),
                tag: r[3].to_string(),
                chronic: r[4] == "true",
                prevalence: [[p(5), p(6), p(7), p(8)], [p(9), p(10), p(11), p(12)]],
                medicines: meds_by_condition.get(r[0]).cloned().unwrap_or_default(),
            }
        })
        .collect();

        let all_src = list!("allergens.csv");
        let all_rows = rows(
            all_src,
            "snomed_id,term,substance,weight,reactions,contraindicates",
        );

        let obs_rows = rows(list!("observations.csv"), "key,snomed_id,term,unit");
        let parts = rows(list!("practice_name_parts.csv"), "part,kind");
        let part = |kind: &str| -> Vec<String> {
            parts
                .iter()
                .filter(|r| r[1] == kind)
                .map(|r| r[0].to_string())
                .collect()
        };

        Lists {
            female_names: names(list!("given_names_female.csv")),
            male_names: names(list!("given_names_male.csv")),
            family_names: names(list!("family_names.csv")),
            district_weights: Weighted::new(
                district_rows.iter().map(|r| weight(districts_src.0, r[2])),
            ),
            districts: district_rows
                .iter()
                .map(|r| District {
                    district: r[0].to_string(),
                    town: r[1].to_string(),
                })
                .collect(),
            conditions,
            medicines,
            allergen_weights: Weighted::new(all_rows.iter().map(|r| weight(all_src.0, r[3]))),
            allergens: all_rows
                .iter()
                .map(|r| Allergen {
                    snomed: r[0].to_string(),
                    substance: r[2].to_string(),
                    reactions: r[4].split('|').map(str::to_string).collect(),
                    contraindicates: r[5]
                        .split('|')
                        .filter(|c| !c.is_empty())
                        .map(str::to_string)
                        .collect(),
                })
                .collect(),
            observations: obs_rows
                .iter()
                .map(|r| ObservationKind {
                    key: r[0].to_string(),
                    snomed: r[1].to_string(),
                    term: r[2].to_string(),
                    unit: r[3].to_string(),
                })
                .collect(),
            practice_prefixes: part("prefix"),
            practice_suffixes: part("suffix"),
            names_by_decade: names_by_decade(),
            growth: growth(),
            bank_holidays: {
                let src = (
                    "bank_holidays.csv",
                    include_str!("../../seeds/bank_holidays.csv"),
                );
                let mut days: Vec<chrono::NaiveDate> = rows(src, "date,name")
                    .iter()
                    .map(|r| r[0].parse().expect("bank_holidays.csv: date"))
                    .collect();
                days.sort();
                days
            },
        }
    }

    /// The given-name list for people of this sex born in this year.
    pub fn names_for(&self, female: bool, birth_year: i32) -> &Names {
        let by = &self.names_by_decade[female as usize];
        let i = ((birth_year - DECADE_FROM).max(0) / 10) as usize;
        &by[i.min(by.len() - 1)]
    }

    pub fn is_bank_holiday(&self, d: chrono::NaiveDate) -> bool {
        self.bank_holidays.binary_search(&d).is_ok()
    }

    /// The observation kind with this key (see seeds/lists/observations.csv).
    pub fn observation(&self, key: &str) -> usize {
        self.observations
            .iter()
            .position(|o| o.key == key)
            .unwrap_or_else(|| panic!("seeds/lists/observations.csv lacks {key}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::seed::generate::address::is_valid_postcode;

    #[test]
    fn lists_parse_and_are_sane() {
        let l = Lists::get();
        assert!(l.female_names.items.len() >= 100);
        assert!(l.male_names.items.len() >= 100);
        assert!(l.family_names.items.len() >= 200);
        assert!(l.districts.len() >= 200);
        assert!(l.conditions.len() >= 25);
        assert!(l.conditions.iter().any(|c| c.tag == "diabetes"));
        assert!(l.conditions.iter().filter(|c| c.chronic).all(|c| {
            c.prevalence
                .iter()
                .flatten()
                .all(|p| (0.0..=100.0).contains(p))
        }));
        assert!(!l.practice_prefixes.is_empty() && !l.practice_suffixes.is_empty());
        for key in [
            "systolic_bp",
            "diastolic_bp",
            "heart_rate",
            "bmi",
            "weight",
            "height",
            "hba1c",
            "cholesterol",
            "egfr",
            "temperature",
        ] {
            l.observation(key);
        }
    }

    #[test]
    fn every_district_makes_rule_valid_postcodes() {
        for d in &Lists::get().districts {
            let pc = format!("{} 1AB", d.district);
            assert!(is_valid_postcode(&pc), "{pc}");
        }
    }
}
