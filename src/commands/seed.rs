//! `ward seed`.

use anyhow::Result;

use crate::cli::SeedArgs;
use crate::config::Config;
use crate::error::Exit;
use crate::seed::load::{Existing, LoadOptions};
use crate::seed::{custom, export, load, spec::Spec};
use crate::{output, pg};

pub async fn run(cfg: &Config, args: &SeedArgs) -> Result<Exit> {
    let spec = Spec::builtin()?;
    let s = cfg.seed(args, spec.seed);
    crate::seed::pipeline::check_jobs(s.jobs)?;
    let bar = output::Bar::new(cfg.quiet);
    if let Some(path) = &args.init_spec {
        let url = database_url(cfg, args).await?;
        let client = pg::connect(&url).await?;
        let models = match django_project(args)? {
            Some(project) => Some(project.models(&crate::django::database_url(&url)?).await?),
            None => None,
        };
        let report = custom::init_spec(&client, path, models.as_ref()).await?;
        output::init_spec_report(&report, cfg.json);
        return Ok(Exit::Ok);
    }
    let report = if let Some(spec) = &s.spec {
        let url = database_url(cfg, args).await?;
        let target = pg::describe(&pg::parse_url(&url)?);
        let mut client = pg::connect(&url).await?;
        let run = custom::SpecRun {
            target,
            path: spec,
            seed: args.seed.or(cfg.file.seed.seed),
            jobs: s.jobs,
            truncate: s.truncate,
        };
        custom::seed_asking(
            &mut client,
            run,
            &|q: &str| output::confirm(q, args.yes),
            &bar,
        )
        .await?
    } else if let Some((dir, format)) = &s.export {
        let (dir, format) = (dir.clone(), *format);
        tokio::task::spawn_blocking(move || {
            export::export(&dir, format, s.seed, s.patients, s.jobs, &bar)
        })
        .await??
    } else {
        crate::seed::check_patients(0, s.patients)?;
        let url = database_url(cfg, args).await?;
        let target = pg::describe(&pg::parse_url(&url)?);
        let mut client = pg::connect(&url).await?;
        let opts = LoadOptions {
            schema: s.schema.clone(),
            seed: s.seed,
            patients: s.patients,
            jobs: s.jobs,
            existing: match (s.truncate, s.append) {
                (true, _) => Existing::Truncate,
                (_, true) => Existing::Append,
                _ => Existing::Refuse,
            },
        };
        load::load(&mut client, target, &opts, &bar).await?
    };
    output::seed_report(&report, cfg.json);
    Ok(Exit::Ok)
}

/// The Django project to ask, with `--django`, `--django-project`, or a
/// manage.py in the working directory.
fn django_project(args: &SeedArgs) -> Result<Option<crate::django::Project>> {
    let dj = &args.django_project;
    let wanted = args.django
        || dj.django_project.is_some()
        || crate::django::is_project(&std::env::current_dir()?);
    if !wanted {
        return Ok(None);
    }
    crate::django::Project::locate(dj.django_project.as_deref(), dj.python.as_deref()).map(Some)
}

/// --database-url / DATABASE_URL, else the target container's database.
async fn database_url(cfg: &Config, args: &SeedArgs) -> Result<String> {
    match &cfg.database_url {
        Some(url) => Ok(url.clone()),
        None => {
            let spec = cfg.db_container_target(&args.db);
            crate::target::database_url(&spec, &std::env::current_dir()?).await
        }
    }
}
