//! Realism of the built-in model (issue #15): export a population, compute
//! every rate a clinician or a feature test would notice, and hold each one
//! to the target band named in `seeds/targets.toml` (figure, band, public
//! source). A regression fails with the figure, its band and its source.
//!
//! The population is 20,000 patients: about 2 s to export in a debug build,
//! and large enough that every asserted band is several standard errors wide.
//! `WARD_REALISM_EXPORT=DIR` measures an existing CSV export instead (e.g. a
//! 100,000-patient one); it is still asserted.

mod data;
mod figures;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use data::{Export, date};
use figures::Seeds;
use serde::Deserialize;

const PATIENTS: u32 = 20_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Target {
    what: String,
    /// The published (or derived) figure the model aims at.
    target: f64,
    min: f64,
    max: f64,
    source: String,
    /// Set when the model does not aim at this figure yet: it is computed and
    /// printed, never asserted, and the reason is printed beside it.
    #[serde(default)]
    not_yet: Option<String>,
}

fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds")
}

fn read_seeds() -> Seeds {
    let dir = seeds_dir();
    let spec: toml::Table = std::fs::read_to_string(dir.join("patients.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let csv = |file: &str| -> Vec<HashMap<String, String>> {
        let mut r = csv::Reader::from_path(dir.join(file)).unwrap();
        let header: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
        r.records()
            .map(|rec| {
                header
                    .iter()
                    .cloned()
                    .zip(rec.unwrap().iter().map(str::to_string))
                    .collect()
            })
            .collect()
    };
    let num = |s: &str| -> f64 { s.parse().unwrap_or_else(|e| panic!("{s:?}: {e}")) };
    Seeds {
        as_of: date(spec["as_of"].as_str().unwrap()),
        bank_holidays: csv("bank_holidays.csv")
            .iter()
            .map(|r| date(&r["date"]))
            .collect(),
        age_bands: csv("lists/medicines.csv")
            .iter()
            .map(|r| {
                let key = (r["condition_snomed_id"].clone(), r["medicine"].clone());
                (key, (num(&r["min_age"]) as i32, num(&r["max_age"]) as i32))
            })
            .collect(),
        growth: csv("lists/growth.csv")
            .iter()
            .map(|r| {
                let key = (r["sex"] == "F", num(&r["age"]) as i32);
                (key, (num(&r["height_cm"]), num(&r["height_sd"])))
            })
            .collect(),
    }
}

#[test]
fn an_exported_population_meets_every_target_band() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = match std::env::var_os("WARD_REALISM_EXPORT") {
        Some(d) => PathBuf::from(d),
        None => {
            crate::support::ward()
                .args(["seed", "--export"])
                .args([tmp.path()])
                .args(["--format", "csv", "-n", &PATIENTS.to_string(), "-j", "2"])
                .ok();
            tmp.path().to_path_buf()
        }
    };
    let figures = figures::compute(&Export::read(&dir), &read_seeds());
    let targets: BTreeMap<String, Target> =
        toml::from_str(&std::fs::read_to_string(seeds_dir().join("targets.toml")).unwrap())
            .unwrap();

    let mut failures = Vec::new();
    println!("{:<45} {:>12}  {:<22} target", "figure", "value", "band");
    for (name, value) in &figures {
        let Some(t) = targets.get(*name) else {
            failures.push(format!(
                "{name} = {value:.4} has no target in seeds/targets.toml"
            ));
            continue;
        };
        let band = format!("[{}, {}]", t.min, t.max);
        let note = match &t.not_yet {
            Some(why) => format!("NOT ASSERTED: {why}"),
            None if (t.min..=t.max).contains(value) => "ok".to_string(),
            None => {
                failures.push(format!(
                    "{name} ({}) = {value:.4}, outside {band} (target {}; {})",
                    t.what, t.target, t.source
                ));
                "FAIL".to_string()
            }
        };
        println!("{name:<45} {value:>12.4}  {band:<22} {} {note}", t.target);
    }
    for name in targets.keys().filter(|n| !figures.contains_key(n.as_str())) {
        failures.push(format!(
            "seeds/targets.toml names {name}, which the suite does not compute"
        ));
    }
    assert!(
        failures.is_empty(),
        "realism figures outside their bands:\n  {}",
        failures.join("\n  ")
    );
}
