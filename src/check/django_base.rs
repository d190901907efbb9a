//! `ward check --runner django --against seed`: the baseline is a fresh
//! database that Django itself migrates to the `--base` state (`manage.py
//! migrate APP MIGRATION` for each), seeded there — by the project's seed
//! spec, or else by a spec ward guesses from that schema and the project's
//! models (`ward seed --init-spec --django`). The migrations after it are
//! the window the check applies.

use anyhow::Result;

use super::options::{Options, SeedSource};
use super::scratch::{Scratch, with_db};
use super::seeding::fill_realistic;
use crate::django::Project;
use crate::error::UsageError;

/// The seeded baseline database and how the report describes it.
pub(super) async fn seeded_baseline(
    opts: &Options,
    project: &Project,
    targets: &[(String, String)],
    scratch: &mut Scratch,
) -> Result<(String, String)> {
    let db = scratch.create("base", None).await?;
    let url = crate::pg::url_of(&with_db(&scratch.server, &db));
    let done = super::django_trace::migrate(project, &url, targets, None).await?;
    let shown = targets
        .iter()
        .map(|(a, m)| format!("manage.py migrate {a} {m}"))
        .collect::<Vec<_>>()
        .join(", ");
    if let Some(out) = &done.output {
        return Err(UsageError(format!(
            "`{shown}` fails while building the baseline: {} — check --base and the project's migrations",
            crate::django::last_error_line(out, "")
        ))
        .into());
    }
    let mut c = scratch.connect(&db).await?;
    super::apply::prepare_session(&c, "UTC").await?;
    let (source, how, _tmp) = match &opts.seed {
        SeedSource::Spec { path, .. } => (
            opts.seed.clone(),
            format!("the seed spec {}", path.display()),
            None,
        ),
        SeedSource::Builtin { jobs, .. } => {
            // ward's built-in tables are not the project's: guess a spec for its own.
            let tmp = tempfile::tempdir()?;
            let path = tmp.path().join("spec.toml");
            let models = project.models(&url).await?;
            crate::seed::custom::init_spec(&c, &path, Some(&models)).await?;
            (
                SeedSource::Spec {
                    path,
                    seed: None,
                    jobs: *jobs,
                },
                "a spec ward guessed from the schema and the models (ward seed --init-spec --django)"
                    .to_string(),
                Some(tmp),
            )
        }
    };
    fill_realistic(&mut c, &source).await?;
    Ok((db, format!("a database seeded with {how} after {shown}")))
}

/// `--base APP.MIGRATION[,APP.MIGRATION…]` as `migrate` targets (checked
/// before any server is reached).
pub(super) fn targets(base: Option<&str>) -> Result<Vec<(String, String)>> {
    let usage = || {
        UsageError(
            "--runner django --against seed needs --base APP.MIGRATION (e.g. records.0003_encounter; several \
             separated by commas): the state Django migrates the fresh database to before ward seeds it"
                .into(),
        )
    };
    let base = base.ok_or_else(usage)?;
    base.split(',')
        .map(|t| {
            let (app, name) = t.trim().split_once('.').ok_or_else(usage)?;
            if app.is_empty() || name.is_empty() {
                return Err(usage().into());
            }
            Ok((app.to_string(), name.to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names_one_or_more_app_migrations() {
        assert_eq!(
            targets(Some("records.0003_encounter, billing.zero")).unwrap(),
            vec![
                ("records".to_string(), "0003_encounter".to_string()),
                ("billing".to_string(), "zero".to_string())
            ]
        );
        for bad in [None, Some("0003"), Some("records."), Some(".x")] {
            let e = targets(bad).unwrap_err().to_string();
            assert!(e.contains("--base APP.MIGRATION"), "{e}");
        }
    }
}
